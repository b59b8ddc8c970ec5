"""Names and identifiers compiled into column arrays for the fuzzy matcher.

Each distinct name is analysed once (`indexer.analysis`) and packed into a `NameRow`: equality keys,
first letters, initial flags and its census term-frequency adjustment. Many rows stacked give the
`NameColumns` that `search_service.matching_names` compares; `compile_candidates` builds them (every
alias a row) together with the identifier columns of `search_service.matching_pids` (only when they
are compared: FUZZY ignores identifiers).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, cast

import numpy as np
import numpy.typing as npt

from indexer.analysis import NameAnalysis, analyze
from indexer.census import given_name_table, surname_table
from indexer.codec_head import head_fields, head_from_text, names_from_text
from indexer.model import PersonName, Subject
from search_service.matching_pids import Packed, PidColumns, compile_packed, compile_pids, packed, packed_from_fields

Ids = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]


def _key(text: str) -> int:
    """A 64-bit key for equality tests: the string's hash (cached by Python, never -1), 0 for "".
    Two different strings share a key with chance 2**-64; keys live only within one process."""
    return hash(text) if text else 0


@dataclass(frozen=True, slots=True)
class NameRow:
    """One analysed name, packed for the column arrays (cached per name)."""

    analysis: NameAnalysis
    # int64 x 16: keys (_key) of surname, given, middle, suffix, surname NYSIIS, surname Metaphone,
    # given NYSIIS, given Metaphone; first letters of surname, given, middle; given, middle a bare initial;
    # keys of given and middle written as one, in both orders (0 without a middle name: fuzzy-7); the given
    # name and the surname as given names of their own (`given_name_sex`: fuzzy-10).
    ints: bytes
    # float32 x 3: log2(u_average / u_name) of surname and given name, and of the surname read as a given name
    # (fuzzy-10, the swapped alignment), bits (_rarity)
    rarity: bytes


_INTS = 17


@functools.cache
def _census() -> tuple[dict[str, float], dict[str, float]]:
    return (
        dict(zip(surname_table().names, surname_table().frequencies, strict=True)),
        dict(zip(given_name_table().names, given_name_table().frequencies, strict=True)),
    )


# The chance that two different people share a surname (given name): sum of squared census shares.
_U_SURNAME, _U_GIVEN = 7.0e-4, 2.8e-3
_U_UNLISTED = 2.0e-6


def _rarity(value: str, table: dict[str, float], u_average: float) -> float:
    """How much more (or less) an agreement on `value` says than an average name's, in bits:
    log2(u_average / u_value), u_value the value's census share. Each matcher version scales and
    clips it (`search_service.matching_names.NameWeights.tf_scale`)."""
    if len(value) < 2:  # a bare initial agrees by INITIAL, which takes no adjustment
        return 0.0
    u = table.get(value, 0.0) / 100 or _U_UNLISTED
    return math.log2(u_average / u)


def given_rarity(given: str) -> float:
    """A given name's census rarity in bits, as NameRow.rarity holds it for a row's given name."""
    return _rarity(given, _census()[1], _U_GIVEN)


# A given name this common (percent of one sex) or more is a name of its own (fuzzy-10: one of the other sex
# a few letters away is rarely a misspelling of it; bench/given_names_fit.py). About 700 men's and 900 women's.
NAME_OF_ITS_OWN = 0.01
MALE, FEMALE, EITHER = 1, 2, 3


@functools.cache
def _given_name_sexes() -> dict[str, int]:
    men = dict(zip(given_name_table("M").names, given_name_table("M").frequencies, strict=True))
    women = dict(zip(given_name_table("F").names, given_name_table("F").frequencies, strict=True))
    sexes: dict[str, int] = {}
    for name in men.keys() | women.keys():
        man, woman = men.get(name, 0.0), women.get(name, 0.0)
        if max(man, woman) >= NAME_OF_ITS_OWN:
            sexes[name] = MALE if man >= 9 * woman else FEMALE if woman >= 9 * man else EITHER
    return sexes


def given_name_sex(given: str) -> int:
    """0 unless `given` is a given name of its own (at least NAME_OF_ITS_OWN percent of men or of women in the
    1990 census); then MALE or FEMALE when nine in ten of its holders are of that sex, else EITHER."""
    return _given_name_sexes().get(given, 0)


_ROWS: dict[PersonName, NameRow] = {}


def name_row(name: PersonName) -> NameRow:
    """The packed row of `name`, analysed once and cached."""
    found = _ROWS.get(name)
    if found is None:
        if len(_ROWS) >= 200_000:  # bounded like indexer.analysis.analyze
            _ROWS.clear()
        a = analyze(name)
        texts = (a.surname, a.given, a.middle, a.suffix)
        codes = (a.surname_nysiis, a.surname_metaphone, a.given_nysiis, a.given_metaphone)
        ints = [_key(t) for t in texts] + [_key("~" + c) if c else 0 for c in codes]
        ints += [ord(a.surname[:1] or "\0"), ord(a.given[:1] or "\0"), ord(a.middle[:1] or "\0")]
        ints += [len(a.given) == 1, len(a.middle) == 1]
        joined = (a.given + a.middle, a.middle + a.given) if a.given and a.middle else ("", "")
        ints += [_key(text) for text in joined]
        ints += [given_name_sex(a.given), given_name_sex(a.surname)]
        rarity = (
            _rarity(a.surname, _census()[0], _U_SURNAME),
            _rarity(a.given, _census()[1], _U_GIVEN),
            _rarity(a.surname, _census()[1], _U_GIVEN),
        )
        found = _ROWS[name] = NameRow(
            a, np.array(ints, dtype=np.int64).tobytes(), np.array(rarity, dtype=np.float32).tobytes()
        )
    return found


_EMPTY = PersonName("")


@dataclass(frozen=True, slots=True)
class NameColumns:
    """Many analysed names as columns, one row per name; `starts[i]` is record i's first row."""

    analyses: list[NameAnalysis]
    starts: npt.NDArray[np.intp]
    ints: Ids  # (rows, 17), see NameRow.ints
    rarity: npt.NDArray[np.float32]  # (rows, 3), see NameRow.rarity
    parts: list[str]  # surname parts, flat, every row at least one; empty unless compound
    part_starts: npt.NDArray[np.intp]
    compound: bool
    any_middle: bool
    any_given_words: bool  # some row's given name is of several words (fuzzy-7's word agreement applies)
    forms_index: dict[str, list[int]] = field(default_factory=dict)  # by given_forms
    words_index: dict[str, list[int]] = field(default_factory=dict)  # by given_words (fuzzy-7)
    # fuzzy-12, per table version: rows by the full forms of their given forms (matching_given_forms)
    hypocorism_index: dict[int, dict[str, list[int]]] = field(default_factory=dict)
    # Columns of text and their lengths, made once per column asked for (see `column`, `lengths`).
    texts: dict[str, list[str]] = field(default_factory=dict)
    sizes: dict[str, npt.NDArray[np.intp]] = field(default_factory=dict)
    flags: dict[str, Bools] = field(default_factory=dict)

    @property
    def ids(self) -> Ids:
        return self.ints[:, :8]

    @property
    def firsts(self) -> Ids:
        return self.ints[:, 8:11]

    @property
    def initial_only(self) -> Bools:
        result: Bools = self.ints[:, 11:13] != 0
        return result

    @property
    def sexes(self) -> Ids:
        """(rows, 2): `given_name_sex` of each row's given name and of its surname (fuzzy-10)."""
        return self.ints[:, 15:17]

    @property
    def given_with_middle(self) -> Ids:
        """(rows, 2): the keys of given and middle name written as one, in both orders (0: no middle)."""
        return self.ints[:, 13:15]

    def column(self, name: str) -> list[str]:
        found = self.texts.get(name)
        if found is None:
            found = self.texts[name] = [getattr(a, name) for a in self.analyses]
        return found

    def lengths(self, name: str) -> npt.NDArray[np.intp]:
        found = self.sizes.get(name)
        if found is None:
            found = self.sizes[name] = np.array([len(text) for text in self.column(name)], dtype=np.intp)
        return found

    def rows_with_forms(self, forms: frozenset[str]) -> list[int]:
        if not self.forms_index:
            for row, a in enumerate(self.analyses):
                for form in a.given_forms:
                    self.forms_index.setdefault(form, []).append(row)
        found: list[int] = []
        for form in forms:
            found.extend(self.forms_index.get(form, ()))
        return found

    def rows_with_word(self, word: str) -> list[int]:
        """The rows whose given name of several words holds `word` (NameAnalysis.given_words)."""
        if not self.words_index:
            for row, a in enumerate(self.analyses):
                for each in a.given_words:
                    self.words_index.setdefault(each, []).append(row)
            self.words_index.setdefault("", [])  # built, even when no row has words
        return self.words_index.get(word, [])

    @property
    def several_given_words(self) -> Bools:
        """Per row: the given name is of several words (made once per columns, when asked for)."""
        found = self.flags.get("several_given_words")
        if found is None:
            found = self.flags["several_given_words"] = np.array([bool(a.given_words) for a in self.analyses])
        return found


def compile_names(rows: list[NameRow], starts: npt.NDArray[np.intp]) -> NameColumns:
    """Stack `rows` into columns; `starts[i]` is the first row of record i (see NameColumns)."""
    analyses = [r.analysis for r in rows]
    n = len(rows)
    parts: list[str] = []
    part_starts = np.arange(n, dtype=np.intp)
    compound = any(len(a.surname_parts) > 1 for a in analyses)
    if compound:
        sizes = [len(a.surname_parts) or 1 for a in analyses]
        np.cumsum(sizes[:-1], out=part_starts[1:])
        parts = [p for a in analyses for p in (a.surname_parts or ("",))]
    return NameColumns(
        analyses=analyses,
        starts=starts,
        ints=np.frombuffer(b"".join([r.ints for r in rows]), dtype=np.int64).reshape(n, _INTS),
        rarity=np.frombuffer(b"".join([r.rarity for r in rows]), dtype=np.float32).reshape(n, 3),
        parts=parts,
        part_starts=part_starts,
        compound=compound,
        any_middle=any(a.middle for a in analyses),
        any_given_words=any(a.given_words for a in analyses),
    )


class HasSubject(Protocol):
    """What the matcher reads of a candidate: its subject only. A Tracing is one; so is the head of a stored
    tracing (indexer.store.base.TracingHead), which the service scores instead of decoding whole tracings."""

    @property
    def subject(self) -> Subject | None: ...


@dataclass(frozen=True, slots=True)
class Candidates:
    """Candidates compiled once for scoring: their names (every alias a row) and, unless left out,
    their identifiers. Candidates that carry the very same names may share one group of name rows:
    `groups[i]` is candidate i's group (the index into `names.starts`); None when every candidate has
    its own (group i is candidate i)."""

    tracings: Sequence[HasSubject]
    names: NameColumns
    pids: PidColumns | None
    groups: npt.NDArray[np.intp] | None = None

    def group(self, index: int) -> int:
        """The name group of candidate `index`."""
        return index if self.groups is None else int(self.groups[index])


class HeadCandidate:
    """A candidate as its head text (indexer.codec_head, `TracingStore.load_head_rows`): compiled from the
    text without decoding it; its subject is decoded only when asked for (to explain a hit on the page).
    A common name's query compiles thousands of these, most sharing one name: building a Subject for each
    was most of such a query's time."""

    __slots__ = ("_decoded", "_subject", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._decoded = False
        self._subject: Subject | None = None

    @property
    def subject(self) -> Subject | None:
        if not self._decoded:
            self._subject, self._decoded = head_from_text(self.text), True
        return self._subject


# The name rows of a head's names field (primary name and aliases), by that text: bounded like _ROWS.
_TEXT_ROWS: dict[str, tuple[NameRow, ...]] = {}


def _rows_of_text(names: str) -> tuple[NameRow, ...]:
    found = _TEXT_ROWS.get(names)
    if found is None:
        if len(_TEXT_ROWS) >= 200_000:
            _TEXT_ROWS.clear()
        found = _TEXT_ROWS[names] = tuple(name_row(name) for name in names_from_text(names))
    return found


def _compile_heads(candidates: Sequence[HeadCandidate], pids: bool) -> Candidates:
    # Namesakes share one group of name rows: the names are compared once per distinct names field, not
    # once per candidate (a common name's candidates carry about half as many distinct names as there
    # are of them). Comparing a name row depends on that row alone, so the scores are the same.
    rows: list[NameRow] = []
    starts: list[int] = []
    groups: list[int] = []
    group_of: dict[str, int] = {}
    records: list[Packed] = []
    for candidate in candidates:
        fields = head_fields(candidate.text)
        if fields is not None:
            group = group_of.get(fields[4])
            if group is None:
                group = group_of[fields[4]] = len(starts)
                starts.append(len(rows))
                rows.extend(_rows_of_text(fields[4]))
            groups.append(group)
            if pids:
                records.append(packed_from_fields(fields[1], fields[2], fields[3]))
            continue
        groups.append(len(starts))
        starts.append(len(rows))
        subject = candidate.subject  # no subject, or the rare JSON form: decoded
        if subject is None:
            rows.append(name_row(_EMPTY))
            records.append(packed(None))
        else:
            rows.extend(name_row(name) for name in subject.all_names())
            records.append(packed(subject.identifiers))
    names = compile_names(rows, np.array(starts, dtype=np.intp))
    shared = np.array(groups, dtype=np.intp) if len(starts) < len(candidates) else None
    return Candidates(candidates, names, compile_packed(records) if pids else None, shared)


def compile_candidates(candidates: Sequence[HasSubject], *, pids: bool = True) -> Candidates:
    """Compile `candidates` once for `search_service.matching.score_matrix` (and for `rank`); with
    `pids=False` without their identifiers (enough for scoring that ignores them: FUZZY)."""
    if candidates and all(type(candidate) is HeadCandidate for candidate in candidates):
        return _compile_heads(cast(Sequence[HeadCandidate], candidates), pids)
    subjects = [candidate.subject for candidate in candidates]
    ids = [None if subject is None else subject.identifiers for subject in subjects]
    pid_columns = compile_pids(ids) if pids else None
    if all(subject is not None and not subject.aliases for subject in subjects):  # the usual case
        rows = [name_row(subject.name) for subject in subjects if subject is not None]
        return Candidates(candidates, compile_names(rows, np.arange(len(rows), dtype=np.intp)), pid_columns)
    rows = []
    starts: list[int] = []
    for subject in subjects:
        starts.append(len(rows))
        if subject is None:
            rows.append(name_row(_EMPTY))
        else:
            rows.append(name_row(subject.name))
            rows.extend(name_row(alias) for alias in subject.aliases)
    return Candidates(candidates, compile_names(rows, np.array(starts, dtype=np.intp)), pid_columns)
