"""Name comparison for the fuzzy matcher: the name levels, their weights, and the vectorised comparison.

Q query names are compared with R candidate names (`search_service.matching_columns`) in a handful of
numpy operations: surname, given and middle name each fall in the best *level* that holds, weighted as
documented (and checked) in the `search_service.matching` docstring, graded within a Jaro-Winkler band
and adjusted for the name's census frequency; the straight and the swapped alignment are both scored
and the better kept. The result (`NameComparison`) also keeps the chosen levels for the explanation.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt
from rapidfuzz.distance import JaroWinkler
from rapidfuzz.process import cdist

from search_service.matching_columns import NameColumns

# The swapped alignment (query surname against the record's given name and the reverse) costs this
# much, so that a straight alignment as good wins.
SWAP_PENALTY = -1.0

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
Codes = npt.NDArray[np.int8]


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
UNUSED_WEIGHT = -99.0  # a level a field never takes (shown "-" in the docstring table)
_NAME_TABLE: dict[NameLevel, tuple[float, float, float]] = {  # surname, given, middle
    _N.MISSING: (-0.2, -0.4, 0.0),
    _N.EXACT: (8.5, 8.0, 6.0),
    _N.NICKNAME: (UNUSED_WEIGHT, 6.0, UNUSED_WEIGHT),
    _N.COMPOUND_PART: (7.0, UNUSED_WEIGHT, UNUSED_WEIGHT),
    _N.JW_94: (7.0, 6.5, 4.5),
    _N.JW_88_PHONETIC: (6.0, 5.5, 4.0),
    _N.JW_88: (5.0, 4.5, 3.0),
    _N.JW_80_PHONETIC: (3.0, 2.5, UNUSED_WEIGHT),
    _N.JW_80: (1.5, 0.5, UNUSED_WEIGHT),
    _N.PHONETIC: (0.5, 0.5, UNUSED_WEIGHT),
    _N.MIDDLE_AS_GIVEN: (UNUSED_WEIGHT, 4.0, UNUSED_WEIGHT),
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


def _jw(queries: list[str], choices: list[str], workers: int) -> npt.NDArray[np.float32]:
    result: npt.NDArray[np.float32] = cdist(
        queries, choices, scorer=JaroWinkler.normalized_similarity, dtype=np.float32, workers=workers
    )
    return result


_EXACT_SIM = 0.99999  # Jaro-Winkler is 1.0 only for equal strings


def _select(conditions: list[tuple[NameLevel, Bools]], weights: Floats, shape: tuple[int, int]) -> Codes:
    """The best-weighted level whose condition holds (DISAGREE where none does)."""
    ordered = sorted((c for c in conditions if weights[c[0]] > UNUSED_WEIGHT), key=lambda c: -weights[c[0]])
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
class NameComparison:
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

    def __init__(self, q: NameColumns, c: NameColumns, workers: int) -> None:
        self.q, self.c, self.workers = q, c, workers
        self.qi, self.ci = q.ids[:, None, :], c.ids[None, :, :]
        self.qf, self.cf = q.firsts[:, None, :], c.firsts[None, :, :]
        self.shape = (len(q.analyses), len(c.analyses))
        # Two bare initials that agree are an initial agreement, not an exact one.
        self.initials = q.initial_only[:, None, :] | c.initial_only[None, :, :]

    def same(self, a: int, b: int) -> Bools:
        """Same nonzero id in query column a and candidate column b (see matching_columns.NameRow.ints)."""
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


def compare_names(q: NameColumns, c: NameColumns, workers: int) -> NameComparison:
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
    return NameComparison(
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
