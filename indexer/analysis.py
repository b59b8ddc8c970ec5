"""Name analysis shared by index time and query time (issue 3, "Name analysis").

`analyze` turns a `PersonName` into the parts a matcher compares and the blocking keys are built
from: exact keys of each name part (ASCII, uppercase, no spaces or punctuation, see
`indexer.normalize`), the parts of a compound surname, the given name's nickname forms, initials, the
canonical suffix and phonetic codes (jellyfish NYSIIS and Metaphone).

Decisions, so that index time and query time agree:

- **Surname parts.** The surname is folded into words (hyphens and spaces both separate words). The
  first entry of `surname_parts` is always the whole surname's exact key ("DELACRUZ"); when the
  surname has more than one word, each word that is not a particle follows, in order ("CRUZ";
  "SMITH", "JONES"). Particles (DE, DEL, DE LA, DI, DA, DOS, DU, LA, LE, VAN, VAN DER, VON, TER,
  AL, EL, BIN, Y ...) are dropped only when they stand as a separate word and are not the last
  word: "Le" alone is a surname, "Le Blanc" gives the part "BLANC".
- **Mc / Mac / O'.** These are *not* split off: "McDonald" does not give a part "DONALD" (that would
  put every McDonald among the Donalds). O'Brien folds to "OBRIEN" (the apostrophe is deleted).
  McDonald and MacDonald still meet through the phonetic codes: NYSIIS rewrites a leading MAC as
  MC ("MCDANALD" for both) and Metaphone gives "MKTNLT" for both.
- **Particles glued to the name** ("Vanderberg", "Delacruz") are left whole: their exact key already
  equals the spaced form's ("VANDERBERG"), so nothing is lost.
- **Suffix.** The explicit suffix field wins. When it is empty, a suffix-looking last word of the
  surname ("SMITH JR") or of the given name ("JOHN III") is peeled into `suffix`; a one-word field is
  never peeled (a surname "Junior" stays a surname).
- **Given forms.** The given name's exact key plus the full (canonical) forms the `nicknames`
  package lists for it, uppercased: BILL -> {BILL, WILLIAM, ROBERT, WILL, WILLIS}. Only canonicals
  at least as long as the given name (the package also lists some nicknames as "canonicals" of a
  full name: BOB for ROBERT), and not every nickname of a full name (WILLIAM has dozens). Both
  sides of a comparison carry their own forms, so BILL meets WILLIAM and BILL meets WILL (both list
  WILLIAM). A multi-word given name ("Mary Ann") also lists its first word and that word's
  canonicals. Whatever the package says is kept: JUAN is not a form of JOHN (the package does not
  relate them), and JOHN's forms include IVAN and JOHANN (it does).
- **Initials** are the first letters of the given and middle names ("HJ"); empty parts give none.

`analyze` is cached (LRU, 200k names): the same name is analysed once per process.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import jellyfish
from nicknames import NickNamer

from indexer.model import PersonName
from indexer.normalize import SUFFIXES, canonical_suffix, exact_key, fold

# Surname particles, as separate folded words. Two-word particles (DE LA, VAN DER) are two
# particles in a row and need no entry of their own.
PARTICLES: frozenset[str] = frozenset(
    {
        "DE", "DEL", "DELA", "DELLA", "DELLE", "DEI", "DEGLI", "DELLO", "DI", "DA", "DAS", "DO", "DOS", "DU",
        "DES", "D", "LA", "LE", "LO", "LOS", "LAS", "LES", "L", "Y", "E",
        "VAN", "VON", "DER", "DEN", "TER", "TEN", "VANDER", "VANDEN", "VANDE", "VOM", "ZU", "ZUM", "ZUR",
        "AL", "EL", "BIN", "BEN", "IBN", "BINT",
    }
)  # fmt: skip

# Words that, as the last word of a multi-word surname or given name, are a generational suffix.
_SUFFIX_WORDS: frozenset[str] = frozenset(
    {"JR", "JNR", "JUNIOR", "SR", "SNR", "SENIOR", "II", "2ND", "2D", "III", "3RD", "3D", "IV", "4TH", "V", "5TH",
     "VI", "6TH"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class NameAnalysis:
    """One person name, analysed for matching. All strings are exact keys (A-Z and 0-9 only)."""

    surname: str  # exact key of the whole surname: "DELACRUZ", "SMITHJONES", "OBRIEN"
    surname_parts: tuple[str, ...]  # the whole first, then each non-particle word of a compound surname
    given: str  # exact key of the given name ("" if none)
    given_forms: frozenset[str]  # given plus the canonical full forms of it as a nickname (empty if no given)
    # given_forms plus every later word of a given name of several (THI LAN: LAN too; MARY ANN: ANN too):
    # what the blocking keys relate (given_forms when one word); the matcher relates given_words (fuzzy-7).
    given_word_forms: frozenset[str]
    given_words: tuple[str, ...]  # the words of a given name of several (no particles, no initials); () if one
    middle: str  # exact key of the middle name
    initials: str  # first letters of given and middle: "HJ"
    suffix: str  # canonical suffix: JR, SR, II ... ("" if none)
    surname_nysiis: str
    surname_metaphone: str
    given_nysiis: str
    given_metaphone: str


@functools.cache
def _nicknamer() -> NickNamer:
    return NickNamer()


@functools.lru_cache(maxsize=50_000)
def nickname_canonicals(given: str) -> frozenset[str]:
    """The full forms the `nicknames` package lists for `given` (an exact key), as exact keys,
    without `given` itself. BILL -> {WILLIAM, ROBERT, WILL, WILLIS}; JUAN -> {}.

    A full form is never shorter than its nickname: the package's relation runs both ways for some
    names (it lists BILL and BOB among the "canonicals" of ROBERT, IAN and JON among those of JOHN),
    and those shorter entries are nicknames, not full forms, so they are left out."""
    if len(given) < 2 or not given.isalpha():
        return frozenset()
    found = _nicknamer().canonicals_of(given.lower())
    forms = {exact_key(form) for form in found}
    return frozenset(form for form in forms if len(form) >= len(given) and form != given)


def _peel_suffix(words: list[str]) -> str:
    """Remove a suffix-looking last word from a multi-word field; return its canonical form or ""."""
    if len(words) > 1 and words[-1] in _SUFFIX_WORDS:
        suffix = canonical_suffix(words.pop())
        return suffix if suffix in SUFFIXES else ""
    return ""


def _surname_parts(whole: str, words: list[str]) -> tuple[str, ...]:
    if len(words) < 2:
        return (whole,) if whole else ()
    parts = [whole]
    last = len(words) - 1
    for index, word in enumerate(words):
        if (index != last and word in PARTICLES) or word in parts:
            continue
        parts.append(word)
    return tuple(parts)


@functools.lru_cache(maxsize=32_768)
def _phonetic(key: str) -> tuple[str, str]:
    """NYSIIS and Metaphone of an exact key. A surname or given name recurs across many full names (the
    analysis cache is per full name), and the two codes are a third of an analysis's cost. About 10 MB full."""
    return jellyfish.nysiis(key), jellyfish.metaphone(key)


@functools.lru_cache(maxsize=200_000)
def analyze(name: PersonName) -> NameAnalysis:
    """The analysis of one name. Fast and cached: it runs for every name at index time."""
    surname_words = fold(name.surname).split()
    given_words = fold(name.given_name).split()
    peeled = _peel_suffix(surname_words) or _peel_suffix(given_words)
    suffix = canonical_suffix(name.suffix) if name.suffix.strip() else peeled

    surname = "".join(surname_words)
    given = "".join(given_words)
    middle = exact_key(name.middle_name)

    given_forms = given_word_forms = frozenset[str]()
    words: tuple[str, ...] = ()
    if given:
        forms = {given}
        forms |= nickname_canonicals(given)
        if len(given_words) > 1:
            first = given_words[0]
            forms.add(first)
            forms |= nickname_canonicals(first)
        given_forms = given_word_forms = frozenset(forms)
        if len(given_words) > 1:
            words = tuple(word for word in given_words if len(word) > 1 and word not in PARTICLES)
            later = words[1:] if words[:1] == (given_words[0],) else words
            # The words themselves only: the nicknames package relates ANN to NANCY, ROXANNE and DEANNE, which
            # for the first word of a name (or the whole) it knows as a nickname, but for a second is too far.
            given_word_forms = given_forms.union(later)

    surname_nysiis, surname_metaphone = _phonetic(surname) if surname else ("", "")
    given_nysiis, given_metaphone = _phonetic(given) if given else ("", "")
    return NameAnalysis(
        surname=surname,
        surname_parts=_surname_parts(surname, surname_words),
        given=given,
        given_forms=given_forms,
        given_word_forms=given_word_forms,
        given_words=words,
        middle=middle,
        initials=given[:1] + middle[:1],
        suffix=suffix,
        surname_nysiis=surname_nysiis,
        surname_metaphone=surname_metaphone,
        given_nysiis=given_nysiis,
        given_metaphone=given_metaphone,
    )
