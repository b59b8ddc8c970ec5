"""Name normalization for matching (exact now, fuzzy later).

Everything here runs at index time for every name of every tracing (about 10 million records), so
the work is done with precomputed `str.translate` tables and a pure-ASCII fast path that skips
transliteration; no regular expression is run per call.
"""

from __future__ import annotations

from dataclasses import dataclass

from anyascii import anyascii

from indexer.model import PersonName

# anyascii turns the typographic apostrophes (U+2019, U+2018, U+02BC) into "'" and the Hawaiian okina
# (U+02BB) into "`";
# both mark an elision or a glottal stop, not a word break, so O'BRIEN and OBRIEN must meet.
_APOSTROPHES = "'`"


def _ascii_table(*, keep_spaces: bool) -> dict[int, str | None]:
    """A translate table over ASCII: letters uppercased, digits kept, apostrophes deleted, and every
    other character turned into a space (fold) or deleted (exact key)."""
    table: dict[int, str | None] = {}
    for code in range(128):
        char = chr(code)
        if char.isalnum():
            table[code] = char.upper()
        elif char in _APOSTROPHES or not keep_spaces:
            table[code] = None
        else:
            table[code] = " "
    return table


_FOLD_TABLE = _ascii_table(keep_spaces=True)
_KEY_TABLE = _ascii_table(keep_spaces=False)


# The Catalan middle dot joins the two L of one sound (Col\u00b7lell is COLLELL); anyascii makes it a hyphen.
_BEFORE_ASCII = {0x00B7: None}


def _to_ascii(text: str) -> str:
    # Most names in the index are already ASCII; anyascii is the costly step, so skip it for them.
    return text if text.isascii() else anyascii(text.translate(_BEFORE_ASCII))


def fold(text: str) -> str:
    """ASCII, uppercase, no apostrophes, other punctuation as single spaces, stripped.

    "  Nguyễn-Van  d'Arc " -> "NGUYEN VAN DARC".
    """
    return " ".join(_to_ascii(text).translate(_FOLD_TABLE).split())


def exact_key(text: str) -> str:
    """The fold with all spaces removed, so spacing and hyphenation never separate two names:
    "de la Cruz", "DELACRUZ" and "De-La-Cruz" all give "DELACRUZ"."""
    # One translate that deletes what fold would turn into spaces: same result as
    # fold(text).replace(" ", ""), without building the intermediate string.
    return _to_ascii(text).translate(_KEY_TABLE)


# Canonical generational suffixes. Edit criteria refuse any suffix whose canonical form is not here.
SUFFIXES: frozenset[str] = frozenset({"JR", "SR", "II", "III", "IV", "V", "VI"})

# Spellings seen in repository data (keys are exact keys: no spaces, no periods). "2D"/"3D" are the
# military style of 2ND/3RD.
_SUFFIX_SPELLINGS: dict[str, str] = {
    "JR": "JR",
    "JNR": "JR",
    "JUNIOR": "JR",
    "SR": "SR",
    "SNR": "SR",
    "SENIOR": "SR",
    "II": "II",
    "2ND": "II",
    "2D": "II",
    "III": "III",
    "3RD": "III",
    "3D": "III",
    "IV": "IV",
    "4TH": "IV",
    "V": "V",
    "5TH": "V",
    "VI": "VI",
    "6TH": "VI",
}


def canonical_suffix(text: str) -> str:
    """JR./Jr/Junior -> JR, Senior -> SR, 2ND -> II, 3RD -> III, 4TH -> IV ...; "" stays "".

    An unknown suffix comes back as its fold (not in SUFFIXES), which the edit criteria refuse.
    """
    folded = fold(text)
    return _SUFFIX_SPELLINGS.get(folded.replace(" ", ""), folded)


@dataclass(frozen=True, slots=True)
class NameKey:
    """The exact-match form of a person's name."""

    surname: str
    given: str
    middle: str
    suffix: str


def name_key(name: PersonName) -> NameKey:
    return NameKey(
        surname=exact_key(name.surname),
        given=exact_key(name.given_name),
        middle=exact_key(name.middle_name),
        suffix=canonical_suffix(name.suffix),
    )


def title_key(title: str) -> str:
    """The search form of an impersonal title: the fold, keeping word breaks so that words can be
    matched on their own. A middle dot parts words here, as anyascii reads it: titles holding one were
    keyed so before names took it in (and no title is written anew), so their keys stay as stored."""
    return " ".join((title if title.isascii() else anyascii(title)).translate(_FOLD_TABLE).split())
