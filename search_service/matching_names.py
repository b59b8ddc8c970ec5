"""Name comparison for the fuzzy matcher: the vectorised comparison (the levels and a version's weights for
them: `search_service.matching_name_levels`).

Q query names are compared with R candidate names (`search_service.matching_columns`) in a handful of
numpy operations: surname, given and middle name each fall in the best *level* that holds, weighted by
the matcher version's `NameWeights` (defined in `search_service.matching_versions`, tabulated, and checked
against the code, in docs/MATCHERS.md), graded within a Jaro-Winkler band and adjusted for the
name's census frequency; the straight and the swapped alignment are both scored and the better kept.
The result (`NameComparison`) also keeps the chosen levels for the explanation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from rapidfuzz.distance import OSA, JaroWinkler
from rapidfuzz.process import cdist

from search_service.matching_another_name import Another, another_names, unless
from search_service.matching_columns import NameColumns, _key
from search_service.matching_given_forms import table_pairs
from search_service.matching_levels import select_levels
from search_service.matching_name_levels import JW_LEVELS, NameArrays, NameLevel, NameWeights
from search_service.matching_romanized import romanized_pairs

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
Codes = npt.NDArray[np.int8]
Sims = npt.NDArray[np.float32]


def _jw(queries: list[str], choices: list[str], workers: int) -> Sims:
    result: Sims = cdist(queries, choices, scorer=JaroWinkler.normalized_similarity, dtype=np.float32, workers=workers)
    return result


def _osa(queries: list[str], choices: list[str], workers: int) -> npt.NDArray[np.int32]:
    """Optimal string alignment distance (insertions, deletions, substitutions, adjacent swaps), capped at 3."""
    result: npt.NDArray[np.int32] = cdist(
        queries, choices, scorer=OSA.distance, dtype=np.int32, workers=workers, score_cutoff=3
    )
    return result


_EXACT_SIM = 0.99999  # Jaro-Winkler is 1.0 only for equal strings


_N = NameLevel
# Level codes as numpy and plain ints: numpy probes an IntEnum for array interfaces, slowly.
_CODES = [np.int8(int(level)) for level in NameLevel]
_DISAGREE, _MISSING, _BOTH_MISSING = int(_N.DISAGREE), int(_N.MISSING), int(_N.BOTH_MISSING)


@dataclass(frozen=True, slots=True)
class NameComparison:
    """(Q, rows) arrays: the total name weight and, for explanations, the chosen levels."""

    weight: Floats
    swapped: Bools
    surname: Codes
    given: Codes
    middle: Codes
    suffix: Codes
    surname_sim: Sims
    given_sim: Sims
    middle_sim: Sims


class _Pair:
    """Q query names against R candidate names: broadcast (Q, 1, k) and (1, R, k) columns."""

    def __init__(
        self, q: NameColumns, c: NameColumns, w: NameWeights, workers: int, given_words: bool, romanized: int,
        hypocorisms: int,
    ) -> None:  # fmt: skip
        self.q, self.c, self.w, self.workers = q, c, w, workers
        self.given_words, self.romanized, self.hypocorisms = given_words, romanized, hypocorisms
        # fuzzy-12: short and full forms of a Spanish given name, and the rarity they are weighed at most
        self.table = table_pairs(q, c, hypocorisms) if hypocorisms else None
        self.qi, self.ci = q.ids, c.ids
        self.qf, self.cf = q.firsts[:, None, :], c.firsts[None, :, :]
        self.shape = (len(q.analyses), len(c.analyses))
        # Two bare initials that agree are an initial agreement, not an exact one.
        self.initials = q.initial_only[:, None, :] | c.initial_only[None, :, :]
        self.edits = w.uses(_N.ONE_EDIT) or w.uses(_N.TWO_EDITS)
        # Only a query that lacks a name part can have one absent on both sides: the usual query (both
        # parts given) skips the masks altogether.
        self.both_missing = w.uses(_N.BOTH_MISSING) and not (self.qi[:, :2] != 0).all()

    def same(self, a: int, b: int) -> Bools:
        """Same nonzero id in query column a and candidate column b (see matching_columns.NameRow.ints)."""
        q = self.qi[:, a, None]
        result: Bools = (q == self.ci[None, :, b]) & (q != 0)
        return result

    def missing(self, a: int, b: int) -> Bools:
        result: Bools = (self.qi[:, a, None] == 0) | (self.ci[None, :, b] == 0)
        return result

    def mark_both_missing(self, levels: Codes, a: int, b: int) -> Codes:
        """`levels` with BOTH_MISSING where query column a and candidate column b are both empty (for a
        version that uses the level)."""
        if self.both_missing:
            both = (self.qi[:, a, None] == 0) & (self.ci[None, :, b] == 0)
            np.copyto(levels, _CODES[_BOTH_MISSING], where=both)
        return levels

    def jw(self, a: str, b: str) -> Sims:
        return _jw(self.q.column(a), self.c.column(b), self.workers)

    def edit_levels(self, a: str, b: str) -> list[tuple[NameLevel, Bools]]:
        """ONE_EDIT and TWO_EDITS between query field a and candidate field b, for parts long enough."""
        if not self.edits:
            return []
        distance = _osa(self.q.column(a), self.c.column(b), self.workers)
        shorter = np.minimum(self.q.lengths(a)[:, None], self.c.lengths(b)[None, :])
        return [
            (_N.ONE_EDIT, (distance == 1) & (shorter >= self.w.edit_min_length)),
            (_N.TWO_EDITS, (distance == 2) & (shorter >= self.w.two_edit_min_length)),
        ]

    def levels(
        self,
        weights: Floats,
        sim: Sims,
        exact: Bools,
        phonetic: Bools,
        missing: Bools,
        extra: list[tuple[NameLevel, Bools]],
        another: Bools | None = None,
    ) -> Codes:
        """The best level per pair; where `another` holds (ANOTHER_NAME or ANOTHER_NAME_FAINT, in `extra`), none of the
        sound-alike and Jaro-Winkler levels (the caller leaves the edit levels out there too)."""
        if another is not None:
            phonetic = phonetic & ~another
            sim = np.where(another, np.float32(0), sim)
        conditions: list[tuple[NameLevel, Bools]] = [(_N.EXACT, exact), *extra, (_N.PHONETIC, phonetic)]
        for level, floor, sounding in JW_LEVELS:
            high = sim >= floor
            conditions.append((level, high))
            if sounding is not None:
                conditions.append((sounding, high & phonetic))
        levels = select_levels(conditions, weights, _DISAGREE, self.shape)
        np.copyto(levels, _CODES[_MISSING], where=missing)
        return levels


def _surname(p: _Pair) -> tuple[Codes, Sims]:
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
    extra = [(_N.COMPOUND_PART, part_exact & ~exact), *p.edit_levels("surname", "surname")]
    levels = p.levels(p.w.arrays.surname, sim, exact, p.same(4, 4) | p.same(5, 5), p.missing(0, 0), extra)
    return p.mark_both_missing(levels, 0, 0), sim


def _given(p: _Pair) -> tuple[Codes, Sims]:
    nickname: Bools = np.zeros(p.shape, dtype=np.bool_)
    for i, a in enumerate(p.q.analyses):
        if a.given_forms and len(a.given) > 1:
            if p.shape[0] == 1:
                nickname[i] = [not a.given_forms.isdisjoint(b.given_forms) for b in p.c.analyses]
            else:
                nickname[i, p.c.rows_with_forms(a.given_forms)] = True
    if p.table is not None:  # fuzzy-12: PEPE / JOSE as BILL / WILLIAM
        nickname |= p.table[0]
    words = p.given_words
    # fuzzy-7: a word of a given name of several counts as its nickname does (see _one_word); with no such
    # name on either side (most queries) nothing changes, and its per-row work is skipped.
    if words and (p.q.any_given_words or p.c.any_given_words):
        several = p.q.several_given_words[:, None] & p.c.several_given_words[None, :]
        nickname = (nickname & ~several) | _one_word(p)
    bare = p.initials[..., 0]
    sim = np.where(bare, np.float32(0), p.jw("given", "given"))
    edits = [(level, mask & ~bare) for level, mask in p.edit_levels("given", "given")]
    phonetic = p.same(6, 6) | p.same(7, 7)
    another = another_names(p.q, p.c, p.w, p.hypocorisms, (0, 0), p.w.arrays.given, sim, phonetic, edits, nickname)
    extra = [
        (_N.NICKNAME, nickname),
        (_N.MIDDLE_AS_GIVEN, p.same(1, 2) | p.same(2, 1)),
        (_N.INITIAL, bare & (p.qf[..., 1] == p.cf[..., 1])),
        *unless(edits, another),
    ]
    exact = p.same(1, 1)
    if words:
        exact = exact | _given_and_middle_as_one(p)
    exact = exact & ~bare
    levels = p.levels(p.w.arrays.given, sim, exact, phonetic, p.missing(1, 1), extra, _either(another))
    return p.mark_both_missing(levels, 1, 1), sim


def _either(another: Another | None) -> Bools | None:
    return None if another is None else another.either


def _one_word(p: _Pair) -> Bools:
    """fuzzy-7: one side's given name is a single word, and one of the words of the other's (LAN / THI LAN,
    PIERRE / JEAN PIERRE). Not two given names of several words that share one (JOSE LUIS / JUAN LUIS,
    NGOC LAN / THI LAN are other people; fuzzy-6 related them by a first word in common, fuzzy-7 does not).
    Its census adjustment is then the single word's (the commoner of the two given names: a name of
    several words is never in the census, so it counts as the rarest)."""
    result: Bools = np.zeros(p.shape, dtype=np.bool_)
    c_single = ~p.c.several_given_words
    for i, a in enumerate(p.q.analyses):
        if a.given_words:  # several words: the candidates whose single given name is one of them
            keys = np.array([_key(word) for word in a.given_words], dtype=np.int64)
            result[i] = np.isin(p.ci[:, 1], keys) & c_single
        elif len(a.given) > 1:
            result[i, p.c.rows_with_word(a.given)] = True
    return result


def _given_and_middle_as_one(p: _Pair) -> Bools:
    """fuzzy-7: one side's given name is the other's given and middle name written as one, in either order
    (MARY ANN / MARY, ANN; THI LAN / LAN, THI): the same name, EXACT. Before, giving the whole name in the
    given field scored lower than giving its first word alone (a word of it, NICKNAME, against EXACT)."""
    q_given, c_given = p.qi[:, 1, None], p.ci[None, :, 1]
    q_joined, c_joined = p.q.given_with_middle, p.c.given_with_middle
    theirs = (q_given == c_joined[None, :, 0]) | (q_given == c_joined[None, :, 1])
    ours = (q_joined[:, 0, None] == c_given) | (q_joined[:, 1, None] == c_given)
    result: Bools = (theirs & (q_given != 0)) | (ours & (c_given != 0))
    return result


def _middle(p: _Pair) -> tuple[Codes, Sims]:
    if not (p.q.any_middle and p.c.any_middle):
        return np.zeros(p.shape, dtype=np.int8), np.zeros(p.shape, dtype=np.float32)
    bare = p.initials[..., 1]
    sim = np.where(bare, np.float32(0), p.jw("middle", "middle"))
    initial = [(_N.INITIAL, bare & (p.qf[..., 2] == p.cf[..., 2]))]
    no_phonetic = np.zeros(p.shape, np.bool_)
    return p.levels(p.w.arrays.middle, sim, p.same(2, 2) & ~bare, no_phonetic, p.missing(2, 2), initial), sim


def _weigh(w: NameArrays, table: Floats, levels: Codes, sim: Sims, rarity: Sims) -> Floats:
    """Level weight, plus the grade within a Jaro-Winkler band, plus the
    term-frequency adjustment on a value agreement (exact, nickname, compound part, edit levels,
    Jaro-Winkler bands)."""
    graded = w.slope[levels] * (sim - w.floor[levels])  # 0 outside the bands (slope 0)
    result: Floats = table[levels] + graded + np.where(w.value[levels], rarity, np.float32(0))
    return result


def _romanize(
    p: _Pair, levels: Codes, bits: Floats, q_field: str, c_field: str, *, beside: Bools | None = None
) -> tuple[Codes, Floats, Bools | None]:
    """fuzzy-9: ROMANIZED where the query's `q_field` and the candidate's `c_field` are two spellings of one
    surname and that weighs more than the level the pair had (`search_service.matching_romanized`), so that
    no pair scores lower than it did. Not where `beside` (the other field of the swapped alignment) already
    is, which would relate two given names. The levels, the bits, and where it was laid (None: nowhere)."""
    found = romanized_pairs(p.q, p.c, p.romanized, q_field, c_field)
    if found is None:
        return levels, bits, None
    related, share_bits = found
    base = float(p.w.surname[_N.ROMANIZED] if q_field == "surname" else p.w.given[_N.ROMANIZED])
    laid = related & (base + share_bits > bits)
    if beside is not None:
        laid &= ~beside
    return np.where(laid, _CODES[_N.ROMANIZED], levels), np.where(laid, base + share_bits, bits), laid


def compare_names(
    q: NameColumns,
    c: NameColumns,
    weights: NameWeights,
    workers: int,
    *,
    given_words: bool = False,
    romanized: int = 0,
    hypocorisms: int = 0,
) -> NameComparison:
    """`given_words` (fuzzy-7): the words of a given name of several are forms of it (NICKNAME level).
    `romanized` (fuzzy-9): the version of the surname romanizations' table (ROMANIZED level; 0: none): between
    the surnames, and in the swapped alignment between a surname and the other's given-name field (on one
    side at most: the other compares two given names); never between the given names of the straight
    alignment, as many East Asian given names are spelt like another character's surname (JIN, MIN, SONG).
    `hypocorisms` (fuzzy-12): the version of the table of Spanish given names' short forms whose short and full
    forms agree at the NICKNAME level (0: none)."""
    p = _Pair(q, c, weights, workers, given_words, romanized, hypocorisms)
    w = weights.arrays
    surname, s_sim = _surname(p)
    given, g_sim = _given(p)
    # A field the query does not give is no evidence either way: weight 0 (MISSING weighs only a
    # field the query gives and the record lacks), unless the record lacks it too (BOTH_MISSING, from
    # fuzzy-3: its own weight).
    asked_s, asked_g = q.ids[:, 0, None] != 0, q.ids[:, 1, None] != 0

    def counted(levels: Codes, asked: Bools) -> Bools:
        if not p.both_missing:
            return asked
        result: Bools = asked | (levels == _BOTH_MISSING)
        return result

    # Term frequency: an agreement on a rare name says more; the commoner of the two values counts.
    low, high = weights.tf_range
    q_tf = np.clip(q.rarity * np.float32(weights.tf_scale), low, high)
    c_tf = np.clip(c.rarity * np.float32(weights.tf_scale), low, high)
    rare = np.minimum(q_tf[:, None, :], c_tf[None, :, :])
    rare_given = rare[..., 1]
    if p.table is not None:  # fuzzy-12: two short forms are no rarer than the name they stand for
        at_most = np.clip(p.table[1] * weights.tf_scale, low, high)
        rare_given = np.where(p.table[0] & (given == int(_N.NICKNAME)), np.minimum(rare_given, at_most), rare_given)
    surname, s_bits, _ = _romanize(p, surname, _weigh(w, w.surname, surname, s_sim, rare[..., 0]), "surname", "surname")
    straight = s_bits * counted(surname, asked_s) + _weigh(w, w.given, given, g_sim, rare_given) * counted(
        given, asked_g
    )
    # Swapped alignment: the query's surname against the record's given name and the reverse.
    x_sim, y_sim = p.jw("surname", "given"), p.jw("given", "surname")
    x_edits, y_edits = p.edit_levels("surname", "given"), p.edit_levels("given", "surname")
    x_phonetic = p.same(4, 6) | p.same(5, 7)
    x_another = another_names(q, c, weights, hypocorisms, (1, 0), w.surname, x_sim, x_phonetic, x_edits, None)
    swap_s = p.levels(
        w.surname, x_sim, p.same(0, 1), x_phonetic, p.missing(0, 1), unless(x_edits, x_another), _either(x_another)
    )
    y_phonetic = p.same(6, 4) | p.same(7, 5)
    y_another = another_names(q, c, weights, hypocorisms, (0, 1), w.given, y_sim, y_phonetic, y_edits, None)
    y_levels = unless(y_edits, y_another)
    swap_g = p.levels(w.given, y_sim, p.same(1, 0), y_phonetic, p.missing(1, 0), y_levels, _either(y_another))
    swap_s, swap_g = p.mark_both_missing(swap_s, 0, 1), p.mark_both_missing(swap_g, 1, 0)
    x_bits = _weigh(w, w.surname, swap_s, x_sim, np.minimum(q_tf[:, None, 0], c_tf[None, :, 1]))
    swap_s, x_bits, x_romanized = _romanize(p, swap_s, x_bits, "surname", "given")
    y_bits = _weigh(w, w.given, swap_g, y_sim, np.minimum(q_tf[:, None, 1], c_tf[None, :, 0]))
    swap_g, y_bits, _ = _romanize(p, swap_g, y_bits, "given", "surname", beside=x_romanized)
    crossed = x_bits * counted(swap_s, asked_s) + y_bits * counted(swap_g, asked_g) + weights.swap_penalty
    swapped = crossed > straight
    middle, m_sim = _middle(p)
    suffix = np.where(p.missing(3, 3), 0, np.where(p.same(3, 3), 1, 2)).astype(np.int8)
    weight = np.where(swapped, crossed, straight) + w.middle[middle] + w.suffix[suffix]
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
