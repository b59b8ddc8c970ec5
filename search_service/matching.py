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

The code: `search_service.matching_columns` packs names and identifiers into column arrays,
`search_service.matching_names` holds the name levels and weights and compares names,
`search_service.matching_pids` compares identifiers, `search_service.matching_explain` words the
features, and this module combines the evidence into scores and ranks.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from indexer.analysis import NameAnalysis, analyze
from indexer.model import Identifiers, PersonName, Tracing
from search_service.matching_columns import Candidates, compile_candidates, compile_names, name_row
from search_service.matching_explain import explain
from search_service.matching_names import (
    GIVEN_WEIGHTS,
    GRADE,
    MIDDLE_WEIGHTS,
    SUFFIX_WEIGHTS,
    SURNAME_WEIGHTS,
    SWAP_PENALTY,
    UNUSED_WEIGHT,
    NameComparison,
    NameLevel,
    compare_names,
)
from search_service.matching_pids import (
    DOB_WEIGHTS,
    POB_WEIGHTS,
    SSN_WEIGHTS,
    Agreement,
    Feature,
    compile_pids,
    dob_levels,
    pob_levels,
    ssn_levels,
)

# The levels and weights the docstring documents are listed too: they live in matching_names now, and
# bench/scoring.py and tests/test_matching.py read them as `matching.<name>`.
__all__ = [
    "DEFAULT_THRESHOLD",
    "GIVEN_WEIGHTS",
    "GRADE",
    "MATCHER_VERSION",
    "MIDDLE_WEIGHTS",
    "SUFFIX_WEIGHTS",
    "SURNAME_WEIGHTS",
    "SWAP_PENALTY",
    "Agreement",
    "Candidates",
    "Feature",
    "NameLevel",
    "Scored",
    "compile_candidates",
    "rank",
    "score",
    "score_matrix",
]

MATCHER_VERSION = "fuzzy-1"

PRIOR = math.log2(1 / 5000) - 1.5

# FUZZY: "more likely than not". PID_QUALIFIED: 99.7 % precision on FEBRL4 name + DOB (bench/scoring.py),
# and a namesake whose identifiers conflict with the query's stays under it. See the module docstring.
DEFAULT_THRESHOLD: dict[str, float] = {"FUZZY": 0.5, "PID_QUALIFIED": 0.9}

# tests/test_matching.py renders the docstring tables' "-" cells from this, under its old name.
_UNUSED = UNUSED_WEIGHT

Floats = npt.NDArray[np.float64]
Codes = npt.NDArray[np.int8]


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
    names: NameComparison
    pids: tuple[Codes, Codes, Codes] | None


def _compare(
    names: Sequence[PersonName], ids: Sequence[Identifiers], cands: Candidates, use_pids: bool, workers: int
) -> _Comparison:
    query = compile_names([name_row(name) for name in names], np.arange(len(names), dtype=np.intp))
    compared = compare_names(query, cands.names, workers)
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


def _explain(
    index: int, bits: float, cmp: _Comparison, qa: NameAnalysis, ids: Identifiers, cands: Candidates
) -> Scored:
    alias_no, features = explain(index, cmp.names, cmp.pids, qa, ids, cands)
    return Scored(to_score(bits), alias_no, features)


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
