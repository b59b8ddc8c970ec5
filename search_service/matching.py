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

**Versions.** The weights, levels and thresholds belong to a matcher version: `fuzzy-1` to `fuzzy-12` (the
default), defined in `search_service.matching_versions`, each with its tables and what it changed in
docs/MATCHERS.md, are all served;
a server picks one (`configured_matcher`, $DCII_MATCHER) and every response names it. A change of scoring
is a new version beside the old one.

**Name parts.** Surname and given name are each put in the *best* level that holds: exact key,
nickname (the given names' canonical forms intersect, `indexer.analysis`; from fuzzy-7 the words of a
given name of several count among its forms: LAN and THI LAN), a part of a compound
surname, a Jaro-Winkler band (rapidfuzz), with or without phonetic agreement (NYSIIS or Metaphone,
jellyfish), sound-alike only, given name equal to the other's middle name, initial (one side a bare
initial), and from fuzzy-2 one or two edits apart (optimal string alignment). Within a Jaro-Winkler
band the weight rises by a grade of 4 bits per unit of similarity, so the closer of two typos ranks
first. A value agreement (exact, nickname, part, band, edits) is adjusted for the name's frequency in
the 1990 US census: 0.3 * log2(u_average / u_name), clipped to [-4, +3] bits, the commoner of the two
names counting (SMITH -1.2, JOHN -0.8, a name the census lacks +2.5 to +3). Both alignments are
scored, straight and with given and surname swapped (-1 bit), and the better kept; a candidate counts
by its best name over the primary and every alias (`Scored.alias_no`).

**Identifiers** (PID_QUALIFIED only; FUZZY ignores them) are compared by structure, never as strings
(`search_service.matching_pids`). A field the query does not give weighs 0; MISSING weighs a field
the query gives and the record lacks; from fuzzy-3, BOTH_MISSING a name part or date of birth that
neither gives.

Where the weights come from: `python bench/scoring.py --fit` counts each level among FEBRL3's true
pairs (m) and all other pairs (u); the name levels and the DOB typo levels are those fits, rounded,
with EXACT kept above every partial level. Identifier agreements are counted (u of one wrong digit
among 9: 81 numbers in 10^9). A different DOB floors m at 2 % (FEBRL: 6 %). A different full SSN is
policy, not fit: one person has one SSN (seed 002: often only the SSN identifies); a wrong digit or a
transposition is PARTIAL, not a conflict. Levels FEBRL lacks (nickname, initial, middle name, suffix,
compound, place of birth) are set by hand. FEBRL3 fits, FEBRL4 checks (bench/scoring.py measures the
scorer alone on both; bench/misses.py sorts what it still misses).

What each version changed, and why (fuzzy-2's edit levels and SSN cap, fuzzy-3's BOTH_MISSING, and the
later ones), with the figures behind it: docs/MATCHERS.md.

Default thresholds (`Matcher.thresholds`, search_service.matching_threshold): PID_QUALIFIED 0.9 (FEBRL4
name + DOB: 99.7 % precision, 92 % answered); FUZZY 0.25 from fuzzy-8, 0.5 before, when a typo or a
nickname in a common name (which scores low however well it agrees) found nothing. A score is a
probability: a FUZZY hit under 0.5 is more likely someone else (on FEBRL a third of the pairs between 0.3
and 0.5 are the same person). A namesake whose SSN conflicts with the query's stays under 0.9, and from
fuzzy-11 so does a record that agrees with the name in one part only, unless its SSN vouches for it.

The code: `search_service.matching_columns` packs names and identifiers into column arrays,
`search_service.matching_names` compares names, `search_service.matching_pids` compares identifiers,
`search_service.matching_explain` words the features, `search_service.matching_versions` holds the
weights, `search_service.matching_one_part` says which records fuzzy-11 holds under its cap,
`search_service.matching_given_forms` which Spanish given names fuzzy-12 reads as short and full forms, and this module
combines the evidence into scores and ranks.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import ParamSpec

import numpy as np
import numpy.typing as npt

from indexer.analysis import NameAnalysis, analyze
from indexer.model import Identifiers, PersonName, Tracing
from search_service.matching_columns import Candidates, HasSubject, compile_candidates, compile_names, name_row
from search_service.matching_explain import explain
from search_service.matching_name_levels import NameLevel
from search_service.matching_names import NameComparison, compare_names
from search_service.matching_one_part import another_name, held_part, one_part_held, per_candidate
from search_service.matching_pids import (
    Agreement,
    DobLevel,
    Feature,
    SsnLevel,
    compile_pids,
    dob_levels,
    pob_levels,
    ssn_levels,
)
from search_service.matching_versions import DEFAULT_MATCHER, MATCHERS, Matcher

__all__ = [
    "DEFAULT_MATCHER",
    "DEFAULT_THRESHOLD",
    "MATCHERS",
    "MATCHER_VERSION",
    "Agreement",
    "Candidates",
    "Feature",
    "HasSubject",
    "Matcher",
    "NameLevel",
    "Scored",
    "compile_candidates",
    "configured_matcher",
    "matcher",
    "rank",
    "score",
    "score_matrix",
]

# The version a server uses unless configured otherwise; responses name the version that ranked them.
MATCHER_VERSION = DEFAULT_MATCHER

# The default matcher's thresholds; each version keeps its own (`Matcher.thresholds`).
DEFAULT_THRESHOLD: dict[str, float] = MATCHERS[DEFAULT_MATCHER].thresholds

Floats = npt.NDArray[np.float64]
Codes = npt.NDArray[np.int8]


def matcher(version: str = "") -> Matcher:
    """The matcher of that version (the default one for ""); ValueError for a version not served."""
    found = MATCHERS.get(version or DEFAULT_MATCHER)
    if found is None:
        raise ValueError(f"unknown matcher version {version!r}; served: {', '.join(sorted(MATCHERS))}")
    return found


# `matcher` under another name, for the functions whose `matcher` argument (a version) hides it.
_named = matcher

# The environment variable that selects the matcher version a server (and its batch worker) uses.
MATCHER_ENV = "DCII_MATCHER"


def configured_matcher(version: str = "") -> Matcher:
    """The matcher a server uses: `version` if given, else the one named by $DCII_MATCHER, else the
    default. ValueError for a version not served, so that a misconfigured server does not start."""
    return matcher(version or os.environ.get(MATCHER_ENV, ""))


@dataclass(frozen=True, slots=True)
class Scored:
    """One scored candidate: calibrated match probability, which of its names matched best (0 the
    primary, k its k-th alias), and one feature per compared field."""

    score: float
    alias_no: int
    features: tuple[Feature, ...]
    # The evidence behind the score (log2 odds): what ranks it, and where a ranked page's token resumes.
    bits: float = 0.0


@dataclass(frozen=True, slots=True)
class _Comparison:
    bits: Floats  # (Q, N) log2 odds of a match, prior included (a conflicting SSN's cap applied)
    names: NameComparison
    pids: tuple[Codes, Codes, Codes] | None
    given_held: npt.NDArray[np.bool_] | None = None  # (Q, N): held under Matcher.given_conflict_cap


_DOB_BOTH_MISSING = int(DobLevel.BOTH_MISSING)


def _bits_at(score_value: float) -> float:
    """The least evidence (bits) whose score reaches `score_value`."""
    if score_value <= 0.0:
        return -math.inf
    if score_value >= 1.0:
        return math.inf
    return math.log2(score_value / (1.0 - score_value))


def _squash(bits: Floats, cap: float) -> Floats:
    """Evidence held under `cap` (a score): unchanged up to one bit below it, then compressed so that
    more evidence still ranks higher but never reaches it."""
    top = _bits_at(cap)
    knee = top - 1.0
    over = np.maximum(bits - knee, 0.0)
    squashed: Floats = np.where(bits > knee, knee + (1.0 - np.exp2(-over)), bits)
    return squashed


def _compare(
    names: Sequence[PersonName],
    ids: Sequence[Identifiers],
    cands: Candidates,
    use_pids: bool,
    workers: int,
    *,
    matcher: str = "",
) -> _Comparison:
    m = _named(matcher)
    query = compile_names([name_row(name) for name in names], np.arange(len(names), dtype=np.intp))
    compared = compare_names(
        query,
        cands.names,
        m.names,
        workers,
        given_words=m.given_words,
        romanized=m.romanized_surnames,
        hypocorisms=m.hypocorisms,
    )
    bits = compared.weight
    if bits.shape[1] > len(cands.names.starts):  # some candidate has aliases: its best name counts
        bits = np.maximum.reduceat(bits, cands.names.starts, axis=1)
    if cands.groups is not None:  # from each group of names to its candidates
        bits = bits[:, cands.groups]
    bits = bits + m.prior
    pids = None
    if use_pids:
        if cands.pids is None:
            raise ValueError("candidates compiled without identifiers cannot be scored with them")
        q = compile_pids(ids)
        ssn_w, dob_w, pob_w = m.pids.arrays
        pids = (ssn_levels(q, cands.pids, ssn_w), dob_levels(q, cands.pids, dob_w), pob_levels(q, cands.pids))
        # A field the query does not give weighs 0, unless both sides lack it (DobLevel.BOTH_MISSING).
        dob_asked = (q.year != 0)[:, None]
        if not q.year.all():
            dob_asked = dob_asked | (pids[1] == _DOB_BOTH_MISSING)
        bits = bits + (
            ssn_w[pids[0]] * (q.ssn_kind != 0)[:, None]
            + dob_w[pids[1]] * dob_asked
            + pob_w[pids[2]] * (q.pob != 0)[:, None]
        )
        if m.ssn_conflict_cap is not None:
            bits = np.where(pids[0] == int(SsnLevel.DISAGREE), _squash(bits, m.ssn_conflict_cap), bits)
        if m.given_conflict_cap is not None:
            cap = m.given_conflict_cap
            if m.one_part_cap:  # fuzzy-11: one name part and a date of birth are no identification
                held = one_part_held(compared, pids[0], cands, query.ids[:, :2] != 0)
                noted = held & (bits > _bits_at(cap) - 1.0)  # explained only where the cap lowers the score
                return _Comparison(np.where(held, _squash(bits, cap), bits), compared, pids, noted)
            unvouched = pids[0] != int(SsnLevel.EXACT)  # no SSN of its own says it is the person
            ssn_differs = unvouched & (pids[0] != int(SsnLevel.MISSING))
            if m.romanized_surnames:  # fuzzy-9: another spelling of the surname is no better than the same one
                romanized = per_candidate(compared.surname == int(NameLevel.ROMANIZED), cands, every=False)
                ssn_differs = ssn_differs | (romanized & unvouched)
            held = per_candidate(another_name(compared.given), cands, every=True) & ssn_differs
            return _Comparison(np.where(held, _squash(bits, cap), bits), compared, pids, held)
    return _Comparison(bits, compared, pids)


def score_matrix(
    names: Sequence[PersonName],
    ids: Sequence[Identifiers],
    cands: Candidates,
    *,
    use_pids: bool,
    workers: int = 1,
    matcher: str = "",
) -> Floats:
    """(Q, N) match evidence in bits (log2 odds, prior included) of Q queries against compiled
    candidates, for batch scoring; `to_score` turns bits into the calibrated score. Rank by bits:
    scores of very strong matches round to 1.0."""
    return _compare(names, ids, cands, use_pids, workers, matcher=matcher).bits


def to_score(bits: float) -> float:
    """The logistic: log2 odds to a probability in [0, 1]."""
    return 1.0 / (1.0 + math.pow(2.0, min(-float(bits), 1000.0)))


def _explain(
    index: int, bits: float, cmp: _Comparison, qa: NameAnalysis, ids: Identifiers, cands: Candidates, m: Matcher
) -> Scored:
    alias_no, features = explain(
        index, cmp.names, cmp.pids, qa, ids, cands, given_words=m.given_words, hypocorisms=m.hypocorisms
    )
    if m.ssn_conflict_cap is not None and cmp.pids is not None and int(cmp.pids[0][0, index]) == SsnLevel.DISAGREE:
        features = tuple(
            replace(f, detail=f"{f.detail}; the score is held under {m.ssn_conflict_cap} (one person has one SSN)")
            if f.name == "ssn"
            else f
            for f in features
        )
    if cmp.given_held is not None and bool(cmp.given_held[0, index]):
        held_under = f"; the score is held under {m.given_conflict_cap}"
        if m.one_part_cap:  # fuzzy-11: on the part that is another name
            first = int(cands.names.starts[cands.group(index)])
            part = held_part(cmp.names, first + alias_no, first, bool(qa.given))
            note = f"{held_under} (the name agrees in one part only, and no SSN of its own vouches)"
        else:
            part, note = "given_name", f"{held_under} (another given name, and no SSN of its own to vouch)"
        features = tuple(replace(f, detail=f.detail + note) if f.name == part else f for f in features)
    return Scored(to_score(bits), alias_no, features, bits)


_P = ParamSpec("_P")


@dataclass(frozen=True, slots=True)
class Ranking:
    hits: list[tuple[int, Scored]]  # (index into candidates, scored), best first
    # The best score of a candidate under `min_score` (0.0 if none, or no min_score): an answer with no
    # hit whose closest record scored just under the threshold is not a clean check, and says so.
    best_below: float = 0.0


def ranking(
    query_name: PersonName,
    query_ids: Identifiers,
    candidates: Sequence[HasSubject],
    *,
    use_pids: bool,
    min_score: float = 0.0,
    limit: int | None = None,
    offset: int = 0,
    after: tuple[float, int] | None = None,
    matcher: str = "",
    below: float = 1.0,
) -> Ranking:
    """Score every candidate and return (index into candidates, scored), best first; ties keep the
    candidates' order. Only hits scoring at least `min_score`, and of those at most `limit` from the
    `offset`-th on, are explained and returned (explaining is the costly part). `after` (bits, index):
    only the candidates ranked after one with those bits at that index, i.e. with less evidence, or as
    much and a later index (a page that resumes after the last hit shown, wherever it now ranks).
    `matcher` names the version (default: DEFAULT_MATCHER). And the best score under `min_score` and
    under `below` (the caller's default threshold: a score a default answer would show as a hit, and
    account, is never given as a number alone, whatever `min_score` a caller sets)."""
    if not candidates:
        return Ranking([])
    cands = compile_candidates(candidates, pids=use_pids)
    cmp = _compare([query_name], [query_ids], cands, use_pids, 1, matcher=matcher)
    bits = cmp.bits[0]
    order = np.argsort(-bits, kind="stable")
    best_below = 0.0
    if min_score > 0.0:
        above = _at_or_above(bits, order, min_score)
        under = above if below >= min_score else _at_or_above(bits, order, below)
        best_below = to_score(float(bits[order[under]])) if under < len(order) else 0.0
        order = order[:above]
    if after is not None:
        last_bits, last_index = after
        ranked_bits = bits[order]
        order = order[(ranked_bits < last_bits) | ((ranked_bits == last_bits) & (order > last_index))]
    order = order[offset:] if limit is None else order[offset : offset + limit]
    qa = analyze(query_name)
    m = _named(matcher)
    hits = [(int(i), _explain(int(i), float(bits[i]), cmp, qa, query_ids, cands, m)) for i in order]
    return Ranking([hit for hit in hits if hit[1].score >= min_score], best_below)


def _at_or_above(bits: Floats, order: npt.NDArray[np.intp], min_score: float) -> int:
    """How many of `order` (best first) score at least `min_score`, judged on the score as a hit's is
    (`to_score`): the cut in bits alone differs from it in the last bit at the boundary, and a record asked
    for again at the very score an answer gave as its best under the threshold was left out."""
    above = int(np.count_nonzero(bits >= _bits_at(min_score)))
    while above > 0 and to_score(float(bits[order[above - 1]])) < min_score:
        above -= 1
    while above < len(order) and to_score(float(bits[order[above]])) >= min_score:
        above += 1
    return above


def _hits_of(ranked: Callable[_P, Ranking]) -> Callable[_P, list[tuple[int, Scored]]]:
    def hits(*args: _P.args, **kwargs: _P.kwargs) -> list[tuple[int, Scored]]:
        return ranked(*args, **kwargs).hits

    functools.update_wrapper(hits, ranked)  # its signature for help() and inspect, as for mypy
    hits.__name__ = hits.__qualname__ = "rank"
    hits.__doc__ = "`ranking`'s hits (its arguments, checked as its own)."
    return hits


rank = _hits_of(ranking)


def score(
    query_name: PersonName, query_ids: Identifiers, candidate: Tracing, *, use_pids: bool, matcher: str = ""
) -> Scored:
    """The score of one candidate (see `rank`)."""
    return rank(query_name, query_ids, [candidate], use_pids=use_pids, matcher=matcher)[0][1]
