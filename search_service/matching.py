"""The fuzzy scorer of the FUZZY (name only) and PID_QUALIFIED (name plus any PIDs) modes (issue 3).

The service retrieves candidates by blocking keys (`indexer.match_keys`); this module scores and ranks
them. Each compared field falls in one *level*, and each level carries a Fellegi-Sunter weight
w = log2(m/u): m the chance of the level between two records of one person, u between two people.
The weights are summed with a prior and passed through a logistic, giving one calibrated match
probability in [0, 1]:

    score = 1 / (1 + 2 ** -(PRIOR + sum of weights)),   PRIOR = log2(1 / 5000) - 1.5 = -13.8 bits

log2(1/5000): one person sought among about 5,000 compared (FEBRL brute force; a blocked candidate
set at 10 million tracings is of that order). The -1.5 bits are a Platt fit on FEBRL3: taking the best
of several alignments and names inflates the evidence of non-matches by about that much.

**Name parts.** Surname and given name are each put in the *best* level that holds: exact key,
nickname (the given names' canonical forms intersect, `indexer.analysis`), a part of a compound
surname, a Jaro-Winkler band (rapidfuzz), with or without phonetic agreement (NYSIIS or Metaphone,
jellyfish), sound-alike only, given name equal to the other's middle name, or initial (one side a
bare initial). Within a Jaro-Winkler band the weight rises by GRADE bits per unit of similarity, so
the closer of two typos ranks first. A value agreement (exact, nickname, part, band) is adjusted for
the name's frequency in the 1990 US census: 0.3 * log2(u_average / u_name), clipped to [-4, +3] bits,
the commoner of the two names counting (SMITH -1.2, JOHN -0.8, a name the census lacks +2.5 to +3).
Both alignments are scored, straight and with given and surname swapped (SWAP_PENALTY), and the
better kept; a candidate counts by its best name over the primary and every alias (`Scored.alias_no`).

**Identifiers** (PID_QUALIFIED only; FUZZY ignores them) are compared by structure, never as strings
(`search_service.matching_pids`). A field the query does not give weighs 0; MISSING weighs a field
the query gives and the record lacks.

Where the weights come from: `python bench/scoring.py --fit` counts each level among FEBRL3's true
pairs (m) and all other pairs (u); the name levels and the DOB typo levels are those fits, rounded,
with EXACT kept above every partial level. Identifier agreements are counted (u of one wrong digit
among 9: 81 numbers in 10^9). A different DOB floors m at 2 % (FEBRL: 6 %). A different full SSN is
policy, not fit: one person has one SSN (seed 002: often only the SSN identifies), so its m is set
at 2^-16 (FEBRL: 4 %) and a namesake with the same name and date of birth but another SSN stays under
the PID_QUALIFIED threshold; a wrong digit or a transposition is PARTIAL, not a conflict. FEBRL pays
for it where it replaced an SSN outright (see bench/scoring.py). Levels FEBRL lacks (nickname,
initial, middle name, suffix, compound, place of birth) are set by hand.

=================  =======  =====  ======  =================================================
level              surname  given  middle  meaning
=================  =======  =====  ======  =================================================
MISSING            -0.2     -0.4   0.0     the record lacks it (0 when the query lacks it)
EXACT              +8.5     +8.0   +6.0    same exact key
NICKNAME           -        +6.0   -       canonical forms intersect (BILL / WILLIAM)
COMPOUND_PART      +7.0     -      -       CRUZ vs DE LA CRUZ, JONES vs SMITH-JONES
JW_94              +7.0     +6.5   +4.5    Jaro-Winkler >= 0.94
JW_88_PHONETIC     +6.0     +5.5   +4.0    Jaro-Winkler >= 0.88 and same phonetic code
JW_88              +5.0     +4.5   +3.0    Jaro-Winkler >= 0.88
JW_80_PHONETIC     +3.0     +2.5   -       Jaro-Winkler >= 0.80 and same phonetic code
JW_80              +1.5     +0.5   -       Jaro-Winkler >= 0.80
PHONETIC           +0.5     +0.5   -       same NYSIIS or Metaphone only (JOHN / JUAN)
MIDDLE_AS_GIVEN    -        +4.0   -       given name is the other's middle name
INITIAL            +1.0     +3.0   +2.5    one side a bare initial, same letter
DISAGREE           -3.5     -3.0   -3.0    none of the above
=================  =======  =====  ======  =================================================

Suffix: same +1.0, different (JR / SR) -3.0, absent on either side 0. Swapped alignment -1.0.

=====================  =====  =====  =====  ==============================================
level                  SSN    DOB    POB    meaning
=====================  =====  =====  =====  ==============================================
MISSING                -1.0   -0.4   0.0    the record lacks it (0 when the query lacks it)
EXACT                  +20.0  +15.0  +3.0   same value
TRANSPOSED             +14.0  +6.0   -      two adjacent digits swapped
ONE_DIGIT              +12.0  +3.0   -      one digit wrong
LAST_FOUR              +8.0   -      -      only the last four known, and they agree
LAST_FOUR_DIFFERENT    -4.0   -      -      only the last four known, and they differ
DAY_MONTH_SWAPPED      -      +6.0   -      1970-05-12 / 1970-12-05
YEAR_OFF_BY_ONE        -      +6.0   -      same month and day, year +-1
PARTIAL_YEAR_MONTH     -      +9.0   -      a partial date agreeing to its month
PARTIAL_YEAR           -      +5.5   -      a partial date agreeing on its year
DISAGREE               -16.0  -5.5   -3.0   conflicting values
=====================  =====  =====  =====  ==============================================

Default thresholds (DEFAULT_THRESHOLD): FUZZY 0.5 ("more likely than not"; on FEBRL4 name only, 86 %
of the hits above it are right) and PID_QUALIFIED 0.9 (on FEBRL4 name + DOB, 99.7 % precision with
92 % of queries answered; name + DOB + SSN 100 % with 97.7 %). A namesake whose SSN conflicts with the
query's stays under 0.9; see bench/scoring.py for the measured table. tests/test_matching.py checks
these tables against the code.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np
import numpy.typing as npt
from rapidfuzz.distance import JaroWinkler
from rapidfuzz.process import cdist

from indexer.analysis import NameAnalysis, analyze
from indexer.census import given_name_table, surname_table
from indexer.model import Identifiers, PersonName, Tracing
from search_service.matching_pids import (
    DOB_WEIGHTS,
    POB_WEIGHTS,
    SSN_WEIGHTS,
    Agreement,
    Feature,
    PidColumns,
    compile_pids,
    dob_feature,
    dob_levels,
    pob_feature,
    pob_levels,
    ssn_feature,
    ssn_levels,
)

__all__ = [
    "DEFAULT_THRESHOLD",
    "MATCHER_VERSION",
    "Agreement",
    "Candidates",
    "Feature",
    "Scored",
    "compile_candidates",
    "rank",
    "score",
    "score_matrix",
]

MATCHER_VERSION = "fuzzy-1"

PRIOR = math.log2(1 / 5000) - 1.5
SWAP_PENALTY = -1.0

# FUZZY: "more likely than not". PID_QUALIFIED: 99.7 % precision on FEBRL4 name + DOB (bench/scoring.py),
# and a namesake whose identifiers conflict with the query's stays under it. See the module docstring.
DEFAULT_THRESHOLD: dict[str, float] = {"FUZZY": 0.5, "PID_QUALIFIED": 0.9}

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
Codes = npt.NDArray[np.int8]
Ids = npt.NDArray[np.int64]


class NameLevel(IntEnum):
    MISSING = 0
    EXACT = 1
    NICKNAME = 2
    COMPOUND_PART = 3
    JW_94 = 4
    JW_88_PHONETIC = 5
    JW_88 = 6
    JW_80_PHONETIC = 7
    JW_80 = 8
    PHONETIC = 9
    MIDDLE_AS_GIVEN = 10
    INITIAL = 11
    DISAGREE = 12


_N = NameLevel
_UNUSED = -99.0  # a level a field never takes
_NAME_TABLE: dict[NameLevel, tuple[float, float, float]] = {  # surname, given, middle
    _N.MISSING: (-0.2, -0.4, 0.0),
    _N.EXACT: (8.5, 8.0, 6.0),
    _N.NICKNAME: (_UNUSED, 6.0, _UNUSED),
    _N.COMPOUND_PART: (7.0, _UNUSED, _UNUSED),
    _N.JW_94: (7.0, 6.5, 4.5),
    _N.JW_88_PHONETIC: (6.0, 5.5, 4.0),
    _N.JW_88: (5.0, 4.5, 3.0),
    _N.JW_80_PHONETIC: (3.0, 2.5, _UNUSED),
    _N.JW_80: (1.5, 0.5, _UNUSED),
    _N.PHONETIC: (0.5, 0.5, _UNUSED),
    _N.MIDDLE_AS_GIVEN: (_UNUSED, 4.0, _UNUSED),
    _N.INITIAL: (1.0, 3.0, 2.5),
    _N.DISAGREE: (-3.5, -3.0, -3.0),
}
SURNAME_WEIGHTS = np.array([_NAME_TABLE[level][0] for level in NameLevel])
GIVEN_WEIGHTS = np.array([_NAME_TABLE[level][1] for level in NameLevel])
MIDDLE_WEIGHTS = np.array([_NAME_TABLE[level][2] for level in NameLevel])
SUFFIX_WEIGHTS = np.array([0.0, 1.0, -3.0])  # missing, same, different

_JW_LEVELS = ((_N.JW_94, 0.94), (_N.JW_88, 0.88), (_N.JW_80, 0.80))

# Within a Jaro-Winkler band the weight grows with the similarity (bits per unit of similarity from
# the band's floor), so that of two typos the closer ranks first; never past the next band's weight.
GRADE = 4.0
_FLOOR = np.zeros(len(NameLevel), dtype=np.float32)
_SLOPE = np.zeros(len(NameLevel), dtype=np.float32)
_BANDS = ((_N.JW_94, 0.94), (_N.JW_88_PHONETIC, 0.88), (_N.JW_88, 0.88), (_N.JW_80_PHONETIC, 0.8), (_N.JW_80, 0.8))
for _level, _floor in _BANDS:
    _FLOOR[_level], _SLOPE[_level] = _floor, GRADE


_TF_LEVELS = np.zeros(len(NameLevel), dtype=np.bool_)
_TF_LEVELS[[_N.EXACT, _N.NICKNAME, _N.COMPOUND_PART, *(level for level, _ in _BANDS)]] = True


def _graded(levels: Codes, sim: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    result: npt.NDArray[np.float32] = _SLOPE[levels] * (sim - _FLOOR[levels])
    return result


_EXACT_SIM = 0.99999  # Jaro-Winkler is 1.0 only for equal strings


def _key(text: str) -> int:
    """A 64-bit key for equality tests: the string's hash (cached by Python, never -1), 0 for "".
    Two different strings share a key with chance 2**-64; keys live only within one process."""
    return hash(text) if text else 0


@dataclass(frozen=True, slots=True)
class _Row:
    """One analysed name, packed for the column arrays (cached per name)."""

    analysis: NameAnalysis
    # int64 x 13: keys (_key) of surname, given, middle, suffix, surname NYSIIS, surname Metaphone,
    # given NYSIIS, given Metaphone; first letters of surname, given, middle; given, middle a bare initial.
    ints: bytes
    rarity: bytes  # float32 x 2: term-frequency adjustment of surname and given name, bits (_rarity)


_INTS = 13


@functools.cache
def _census() -> tuple[dict[str, float], dict[str, float]]:
    return (
        dict(zip(surname_table().names, surname_table().frequencies, strict=True)),
        dict(zip(given_name_table().names, given_name_table().frequencies, strict=True)),
    )


_TF_SCALE = 0.3
_TF_RANGE = (-4.0, 3.0)
# The chance that two different people share a surname (given name): sum of squared census shares.
_U_SURNAME, _U_GIVEN = 7.0e-4, 2.8e-3
_U_UNLISTED = 2.0e-6


def _rarity(value: str, table: dict[str, float], u_average: float) -> float:
    """How much more (or less) an agreement on `value` says than an average name's, in bits:
    log2(u_average / u_value), u_value the value's census share, scaled and clipped."""
    if len(value) < 2:  # a bare initial agrees by INITIAL, which takes no adjustment
        return 0.0
    u = table.get(value, 0.0) / 100 or _U_UNLISTED
    return min(max(_TF_SCALE * math.log2(u_average / u), _TF_RANGE[0]), _TF_RANGE[1])


_ROWS: dict[PersonName, _Row] = {}


def _row(name: PersonName) -> _Row:
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
        rarity = (_rarity(a.surname, _census()[0], _U_SURNAME), _rarity(a.given, _census()[1], _U_GIVEN))
        found = _ROWS[name] = _Row(
            a, np.array(ints, dtype=np.int64).tobytes(), np.array(rarity, dtype=np.float32).tobytes()
        )
    return found


_EMPTY = PersonName("")


@dataclass(frozen=True, slots=True)
class _Names:
    """Many analysed names as columns, one row per name; `starts[i]` is record i's first row."""

    analyses: list[NameAnalysis]
    starts: npt.NDArray[np.intp]
    ints: Ids  # (rows, 13), see _Row.ints
    rarity: npt.NDArray[np.float32]  # (rows, 2)
    parts: list[str]  # surname parts, flat, every row at least one; empty unless compound
    part_starts: npt.NDArray[np.intp]
    compound: bool
    any_middle: bool
    forms_index: dict[str, list[int]] = field(default_factory=dict)

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

    def column(self, name: str) -> list[str]:
        return [getattr(a, name) for a in self.analyses]

    def rows_with_forms(self, forms: frozenset[str]) -> list[int]:
        if not self.forms_index:
            for row, a in enumerate(self.analyses):
                for form in a.given_forms:
                    self.forms_index.setdefault(form, []).append(row)
        found: list[int] = []
        for form in forms:
            found.extend(self.forms_index.get(form, ()))
        return found


def _compile_names(rows: list[_Row], starts: npt.NDArray[np.intp]) -> _Names:
    analyses = [r.analysis for r in rows]
    n = len(rows)
    parts: list[str] = []
    part_starts = np.arange(n, dtype=np.intp)
    compound = any(len(a.surname_parts) > 1 for a in analyses)
    if compound:
        sizes = [len(a.surname_parts) or 1 for a in analyses]
        np.cumsum(sizes[:-1], out=part_starts[1:])
        parts = [p for a in analyses for p in (a.surname_parts or ("",))]
    return _Names(
        analyses=analyses,
        starts=starts,
        ints=np.frombuffer(b"".join([r.ints for r in rows]), dtype=np.int64).reshape(n, _INTS),
        rarity=np.frombuffer(b"".join([r.rarity for r in rows]), dtype=np.float32).reshape(n, 2),
        parts=parts,
        part_starts=part_starts,
        compound=compound,
        any_middle=any(a.middle for a in analyses),
    )


@dataclass(frozen=True, slots=True)
class Candidates:
    """Candidates compiled once for scoring: their names (every alias a row) and identifiers."""

    tracings: Sequence[Tracing]
    names: _Names
    pids: PidColumns


def compile_candidates(candidates: Sequence[Tracing]) -> Candidates:
    subjects = [tracing.subject for tracing in candidates]
    ids = [None if subject is None else subject.identifiers for subject in subjects]
    if all(subject is not None and not subject.aliases for subject in subjects):  # the usual case
        rows = [_row(subject.name) for subject in subjects if subject is not None]
        return Candidates(candidates, _compile_names(rows, np.arange(len(rows), dtype=np.intp)), compile_pids(ids))
    rows = []
    starts: list[int] = []
    for subject in subjects:
        starts.append(len(rows))
        if subject is None:
            rows.append(_row(_EMPTY))
        else:
            rows.append(_row(subject.name))
            rows.extend(_row(alias) for alias in subject.aliases)
    return Candidates(candidates, _compile_names(rows, np.array(starts, dtype=np.intp)), compile_pids(ids))


def _jw(queries: list[str], choices: list[str], workers: int) -> npt.NDArray[np.float32]:
    result: npt.NDArray[np.float32] = cdist(
        queries, choices, scorer=JaroWinkler.normalized_similarity, dtype=np.float32, workers=workers
    )
    return result


def _select(conditions: list[tuple[NameLevel, Bools]], weights: Floats, shape: tuple[int, int]) -> Codes:
    """The best-weighted level whose condition holds (DISAGREE where none does)."""
    ordered = sorted((c for c in conditions if weights[c[0]] > _UNUSED), key=lambda c: -weights[c[0]])
    masks = [np.broadcast_to(mask, shape) for _, mask in ordered]
    return np.select(masks, [np.int8(level) for level, _ in ordered], np.int8(_N.DISAGREE)).astype(np.int8)


def _part_levels(
    weights: Floats,
    sim: npt.NDArray[np.float32],
    exact: Bools,
    phonetic: Bools,
    missing: Bools,
    extra: list[tuple[NameLevel, Bools]],
) -> Codes:
    conditions: list[tuple[NameLevel, Bools]] = [(_N.EXACT, exact), *extra, (_N.PHONETIC, phonetic)]
    for level, floor in _JW_LEVELS:
        high = sim >= floor
        conditions.append((level, high))
        if level != _N.JW_94:
            conditions.append((NameLevel(level - 1), high & phonetic))
    levels = _select(conditions, weights, (sim.shape[0], sim.shape[1]))
    levels[np.broadcast_to(missing, levels.shape)] = _N.MISSING
    return levels


@dataclass(frozen=True, slots=True)
class _NameComparison:
    """(Q, rows) arrays: the total name weight and, for explanations, the chosen levels."""

    weight: Floats
    swapped: Bools
    surname: Codes
    given: Codes
    middle: Codes
    suffix: Codes
    surname_sim: npt.NDArray[np.float32]
    given_sim: npt.NDArray[np.float32]
    middle_sim: npt.NDArray[np.float32]


class _Pair:
    """Q query names against R candidate names: broadcast (Q, 1, k) and (1, R, k) columns."""

    def __init__(self, q: _Names, c: _Names, workers: int) -> None:
        self.q, self.c, self.workers = q, c, workers
        self.qi, self.ci = q.ids[:, None, :], c.ids[None, :, :]
        self.qf, self.cf = q.firsts[:, None, :], c.firsts[None, :, :]
        self.shape = (len(q.analyses), len(c.analyses))
        # Two bare initials that agree are an initial agreement, not an exact one.
        self.initials = q.initial_only[:, None, :] | c.initial_only[None, :, :]

    def same(self, a: int, b: int) -> Bools:
        """Same nonzero id in query column a and candidate column b (see _Row.ints)."""
        result: Bools = (self.qi[..., a] == self.ci[..., b]) & (self.qi[..., a] != 0)
        return result

    def missing(self, a: int, b: int) -> Bools:
        result: Bools = (self.qi[..., a] == 0) | (self.ci[..., b] == 0)
        return result

    def jw(self, a: str, b: str) -> npt.NDArray[np.float32]:
        return _jw(self.q.column(a), self.c.column(b), self.workers)


def _surname(p: _Pair) -> tuple[Codes, npt.NDArray[np.float32]]:
    sim = p.jw("surname", "surname")
    part_exact: Bools = np.zeros(p.shape, dtype=np.bool_)
    q, c = p.q, p.c
    if q.compound or c.compound:
        qp, cp = q.parts if q.compound else q.column("surname"), c.parts if c.compound else c.column("surname")
        parts = _jw(qp, cp, p.workers)
        parts = np.maximum.reduceat(np.maximum.reduceat(parts, q.part_starts, axis=0), c.part_starts, axis=1)
        part_exact = parts >= _EXACT_SIM
        sim = np.maximum(sim, parts)
    exact = p.same(0, 0)
    compound = [(_N.COMPOUND_PART, part_exact & ~exact)]
    levels = _part_levels(SURNAME_WEIGHTS, sim, exact, p.same(4, 4) | p.same(5, 5), p.missing(0, 0), compound)
    return levels, sim


def _given(p: _Pair) -> tuple[Codes, npt.NDArray[np.float32]]:
    nickname: Bools = np.zeros(p.shape, dtype=np.bool_)
    for i, a in enumerate(p.q.analyses):
        if a.given_forms and len(a.given) > 1:
            if p.shape[0] == 1:
                nickname[i] = [not a.given_forms.isdisjoint(b.given_forms) for b in p.c.analyses]
            else:
                nickname[i, p.c.rows_with_forms(a.given_forms)] = True
    bare = p.initials[..., 0]
    sim = np.where(bare, np.float32(0), p.jw("given", "given"))
    extra = [
        (_N.NICKNAME, nickname),
        (_N.MIDDLE_AS_GIVEN, p.same(1, 2) | p.same(2, 1)),
        (_N.INITIAL, bare & (p.qf[..., 1] == p.cf[..., 1])),
    ]
    levels = _part_levels(GIVEN_WEIGHTS, sim, p.same(1, 1) & ~bare, p.same(6, 6) | p.same(7, 7), p.missing(1, 1), extra)
    return levels, sim


def _middle(p: _Pair) -> tuple[Codes, npt.NDArray[np.float32]]:
    if not (p.q.any_middle and p.c.any_middle):
        return np.zeros(p.shape, dtype=np.int8), np.zeros(p.shape, dtype=np.float32)
    bare = p.initials[..., 1]
    sim = np.where(bare, np.float32(0), p.jw("middle", "middle"))
    initial = [(_N.INITIAL, bare & (p.qf[..., 2] == p.cf[..., 2]))]
    no_phonetic = np.zeros(p.shape, np.bool_)
    return _part_levels(MIDDLE_WEIGHTS, sim, p.same(2, 2) & ~bare, no_phonetic, p.missing(2, 2), initial), sim


def _tf_weight(table: Floats, levels: Codes, sim: npt.NDArray[np.float32], rarity: npt.NDArray[np.float32]) -> Floats:
    """Level weight, plus the grade within a Jaro-Winkler band, plus the term-frequency adjustment
    on a value agreement (exact, nickname, compound part, Jaro-Winkler bands)."""
    result: Floats = table[levels] + _graded(levels, sim) + np.where(_TF_LEVELS[levels], rarity, np.float32(0))
    return result


def _compare_names(q: _Names, c: _Names, workers: int) -> _NameComparison:
    p = _Pair(q, c, workers)
    surname, s_sim = _surname(p)
    given, g_sim = _given(p)
    # A field the query does not give is no evidence either way: weight 0 (MISSING weighs only a
    # field the query gives and the record lacks).
    asked_s, asked_g = p.qi[..., 0] != 0, p.qi[..., 1] != 0
    # Term frequency: an agreement on a rare name says more; the commoner of the two values counts.
    rare = np.minimum(q.rarity[:, None, :], c.rarity[None, :, :])
    straight = (
        _tf_weight(SURNAME_WEIGHTS, surname, s_sim, rare[..., 0]) * asked_s
        + _tf_weight(GIVEN_WEIGHTS, given, g_sim, rare[..., 1]) * asked_g
    )
    # Swapped alignment: the query's surname against the record's given name and the reverse.
    x_sim, y_sim = p.jw("surname", "given"), p.jw("given", "surname")
    swap_s = _part_levels(SURNAME_WEIGHTS, x_sim, p.same(0, 1), p.same(4, 6) | p.same(5, 7), p.missing(0, 1), [])
    swap_g = _part_levels(GIVEN_WEIGHTS, y_sim, p.same(1, 0), p.same(6, 4) | p.same(7, 5), p.missing(1, 0), [])
    crossed = (
        _tf_weight(SURNAME_WEIGHTS, swap_s, x_sim, np.minimum(q.rarity[:, None, 0], c.rarity[None, :, 1])) * asked_s
        + _tf_weight(GIVEN_WEIGHTS, swap_g, y_sim, np.minimum(q.rarity[:, None, 1], c.rarity[None, :, 0])) * asked_g
        + SWAP_PENALTY
    )
    swapped = crossed > straight
    middle, m_sim = _middle(p)
    suffix = np.where(p.missing(3, 3), 0, np.where(p.same(3, 3), 1, 2)).astype(np.int8)
    weight = np.where(swapped, crossed, straight) + MIDDLE_WEIGHTS[middle] + SUFFIX_WEIGHTS[suffix]
    return _NameComparison(
        weight=weight,
        swapped=swapped,
        surname=np.where(swapped, swap_s, surname),
        given=np.where(swapped, swap_g, given),
        middle=middle,
        suffix=suffix,
        surname_sim=np.where(swapped, x_sim, s_sim),
        given_sim=np.where(swapped, y_sim, g_sim),
        middle_sim=m_sim,
    )


@dataclass(frozen=True, slots=True)
class Scored:
    """One scored candidate: calibrated match probability, which of its names matched best (0 the
    primary, k its k-th alias), and one feature per compared field."""

    score: float
    alias_no: int
    features: tuple[Feature, ...]


@dataclass(frozen=True, slots=True)
class _Comparison:
    bits: Floats  # (Q, N) log2 odds of a match, prior included
    names: _NameComparison
    pids: tuple[Codes, Codes, Codes] | None


def _compare(
    names: Sequence[PersonName], ids: Sequence[Identifiers], cands: Candidates, use_pids: bool, workers: int
) -> _Comparison:
    query = _compile_names([_row(name) for name in names], np.arange(len(names), dtype=np.intp))
    compared = _compare_names(query, cands.names, workers)
    bits = compared.weight
    if bits.shape[1] > len(cands.tracings):  # some candidate has aliases: its best name counts
        bits = np.maximum.reduceat(bits, cands.names.starts, axis=1)
    bits = bits + PRIOR
    pids = None
    if use_pids:
        q = compile_pids(ids)
        pids = (ssn_levels(q, cands.pids), dob_levels(q, cands.pids), pob_levels(q, cands.pids))
        bits = bits + (
            SSN_WEIGHTS[pids[0]] * (q.ssn_kind != 0)[:, None]
            + DOB_WEIGHTS[pids[1]] * (q.year != 0)[:, None]
            + POB_WEIGHTS[pids[2]] * (q.pob != 0)[:, None]
        )
    return _Comparison(bits, compared, pids)


def score_matrix(
    names: Sequence[PersonName],
    ids: Sequence[Identifiers],
    cands: Candidates,
    *,
    use_pids: bool,
    workers: int = 1,
) -> Floats:
    """(Q, N) match evidence in bits (log2 odds, prior included) of Q queries against compiled
    candidates, for batch scoring; `to_score` turns bits into the calibrated score. Rank by bits:
    scores of very strong matches round to 1.0."""
    return _compare(names, ids, cands, use_pids, workers).bits


def to_score(bits: float) -> float:
    """The logistic: log2 odds to a probability in [0, 1]."""
    return 1.0 / (1.0 + math.pow(2.0, min(-float(bits), 1000.0)))


def _bits_at(score_value: float) -> float:
    """The least evidence (bits) whose score reaches `score_value`."""
    if score_value <= 0.0:
        return -math.inf
    if score_value >= 1.0:
        return math.inf
    return math.log2(score_value / (1.0 - score_value))


_NOMINAL = {_N.EXACT: 1.0, _N.NICKNAME: 0.9, _N.COMPOUND_PART: 0.95, _N.MIDDLE_AS_GIVEN: 0.9, _N.INITIAL: 0.5}


def _name_feature(
    field_name: str, level: int, sim: float, q: str, c: str, phonetic: tuple[str, ...], note: str
) -> Feature:
    lvl = NameLevel(level)
    if lvl == _N.MISSING:
        side = "query" if not q else "record"
        return Feature(field_name, Agreement.MISSING, 0.0, f"{note}absent in the {side}")
    if lvl == _N.EXACT:
        return Feature(field_name, Agreement.EXACT, 1.0, f"{note}exact ({c})")
    if lvl == _N.DISAGREE:
        return Feature(
            field_name, Agreement.DISAGREE, round(sim, 3), f"{note}different ({q} / {c}), Jaro-Winkler {sim:.2f}"
        )
    similarity = _NOMINAL.get(lvl, round(sim, 3))
    said = {
        _N.COMPOUND_PART: f"part of a compound surname ({q} / {c})",
        _N.MIDDLE_AS_GIVEN: f"given name is the other's middle name ({q} / {c})",
        _N.INITIAL: f"initial ({q} / {c})",
        _N.PHONETIC: f"sounds alike ({q} / {c}), Jaro-Winkler {sim:.2f}",
    }.get(lvl, f"Jaro-Winkler {sim:.2f} ({q} / {c})")
    if phonetic and lvl in (_N.PHONETIC, _N.JW_88_PHONETIC, _N.JW_80_PHONETIC, _N.JW_94, _N.JW_88, _N.JW_80):
        said += ", same " + " and ".join(phonetic)
    return Feature(field_name, Agreement.PARTIAL, similarity, note + said)


def _phonetic(q: NameAnalysis, c: NameAnalysis, q_field: str, c_field: str) -> tuple[str, ...]:
    found = []
    for code in ("nysiis", "metaphone"):
        value = getattr(q, f"{q_field}_{code}")
        if value and value == getattr(c, f"{c_field}_{code}"):
            found.append("NYSIIS" if code == "nysiis" else "Metaphone")
    return tuple(found)


def _explain(
    index: int, bits: float, cmp: _Comparison, qa: NameAnalysis, ids: Identifiers, cands: Candidates
) -> Scored:
    starts = cands.names.starts
    first = int(starts[index])
    last = int(starts[index + 1]) if index + 1 < len(starts) else len(cands.names.analyses)
    row = first + int(np.argmax(cmp.names.weight[0, first:last]))
    ca, n = cands.names.analyses[row], cmp.names
    features: list[Feature] = []
    if n.swapped[0, row]:
        note = "given and surname swapped: "
        features.append(_name_feature("surname", n.surname[0, row], float(n.surname_sim[0, row]), qa.surname,
                                      ca.given, _phonetic(qa, ca, "surname", "given"), note))  # fmt: skip
        features.append(_name_feature("given_name", n.given[0, row], float(n.given_sim[0, row]), qa.given,
                                      ca.surname, _phonetic(qa, ca, "given", "surname"), note))  # fmt: skip
    else:
        features.append(_name_feature("surname", n.surname[0, row], float(n.surname_sim[0, row]), qa.surname,
                                      ca.surname, _phonetic(qa, ca, "surname", "surname"), ""))  # fmt: skip
        given = _name_feature("given_name", n.given[0, row], float(n.given_sim[0, row]), qa.given, ca.given,
                              _phonetic(qa, ca, "given", "given"), "")  # fmt: skip
        if n.given[0, row] == _N.NICKNAME:
            common = sorted(qa.given_forms & ca.given_forms)
            full = max(common, key=len)
            given = Feature("given_name", Agreement.PARTIAL, 0.9, f"nickname of {full} ({qa.given} / {ca.given})")
        features.append(given)
    features.append(_name_feature("middle_name", n.middle[0, row], float(n.middle_sim[0, row]), qa.middle, ca.middle,
                                  (), ""))  # fmt: skip
    suffix_level = int(n.suffix[0, row])
    if suffix_level == 0:
        side = "query" if not qa.suffix else "record"
        features.append(Feature("suffix", Agreement.MISSING, 0.0, f"absent in the {side}"))
    elif suffix_level == 1:
        features.append(Feature("suffix", Agreement.EXACT, 1.0, f"same suffix ({ca.suffix})"))
    else:
        features.append(Feature("suffix", Agreement.DISAGREE, 0.0, f"different suffix ({qa.suffix} / {ca.suffix})"))
    if cmp.pids is not None:
        subject = cands.tracings[index].subject
        record = None if subject is None else subject.identifiers
        features.append(ssn_feature(int(cmp.pids[0][0, index]), ids, record))
        features.append(dob_feature(int(cmp.pids[1][0, index]), ids, record))
        features.append(pob_feature(int(cmp.pids[2][0, index]), ids, record))
    return Scored(to_score(bits), row - first, tuple(features))


def rank(
    query_name: PersonName,
    query_ids: Identifiers,
    candidates: Sequence[Tracing],
    *,
    use_pids: bool,
    min_score: float = 0.0,
    limit: int | None = None,
) -> list[tuple[int, Scored]]:
    """Score every candidate and return (index into candidates, scored), best first; ties keep the
    candidates' order. Only hits scoring at least `min_score`, and at most `limit` of them, are
    explained and returned (explaining is the costly part for thousands of candidates)."""
    if not candidates:
        return []
    cands = compile_candidates(candidates)
    cmp = _compare([query_name], [query_ids], cands, use_pids, 1)
    bits = cmp.bits[0]
    order = np.argsort(-bits, kind="stable")
    if min_score > 0.0:
        order = order[: int(np.count_nonzero(bits >= _bits_at(min_score)))]
    if limit is not None:
        order = order[:limit]
    qa = analyze(query_name)
    hits = [(int(i), _explain(int(i), float(bits[i]), cmp, qa, query_ids, cands)) for i in order]
    return [hit for hit in hits if hit[1].score >= min_score]


def score(query_name: PersonName, query_ids: Identifiers, candidate: Tracing, *, use_pids: bool) -> Scored:
    """The score of one candidate (see `rank`)."""
    return rank(query_name, query_ids, [candidate], use_pids=use_pids)[0][1]
