"""The fuzzy scorer's ranking (search_service.matching.rank): explicit negatives (a namesake with a conflicting
identifier never outranks the real person with a typo, whatever the version; a typo never outranks the exact
name; John Doe is not Juan Doe), the best name over aliases, ties in candidate order, impersonal titles, and batch
scores equal to single ones. Helpers and the feature tables: tests/test_matching.py."""

from __future__ import annotations

import pytest

from indexer.codec_head import head_to_text
from indexer.model import Identifiers, ImpersonalTitleDetails, PartialDate, Tracing, TracingKey
from search_service import matching
from search_service.matching import Agreement, rank, score
from search_service.matching_columns import HeadCandidate
from tests.test_matching import (
    DOB,
    FUZZY,
    NAME_FIELDS,
    PID,
    PID_FIELDS,
    SSN,
    VERSIONS,
    feature,
    ids,
    name,
    person,
    ranked_keys,
)

# ---- negatives: a namesake never outranks the real person -------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("label", "query_ids", "real_ids", "namesake_ids", "conflicts_all"),
    [
        ("different SSN", ids(SSN, DOB), ids(SSN, DOB), ids("529017733", DOB), False),
        ("different SSN, no DOB", ids(SSN), ids(SSN), ids("529017733"), True),
        ("different DOB", ids(dob=DOB), ids(dob=DOB), ids(dob=PartialDate(1981, 9, 30)), True),
        ("different DOB and SSN", ids(SSN, DOB), ids(SSN, DOB), ids("529017733", PartialDate(1981, 9, 30)), True),
        ("real SSN transposed", ids(SSN, DOB), ids("318524741", DOB), ids("529017733", DOB), False),
        ("real DOB day/month swapped", ids(dob=DOB), ids(dob=PartialDate(1970, 12, 5)),
         ids(dob=PartialDate(1981, 9, 30)), True),
    ],
)  # fmt: skip
def test_namesake_with_conflicting_pid_ranks_below_the_real_person_with_a_typo(
    label: str,
    query_ids: Identifiers,
    real_ids: Identifiers,
    namesake_ids: Identifiers,
    conflicts_all: bool,
    version: str,
) -> None:
    query = name("Smith", "John")
    # The namesake is listed first and has the query's exact name; the real person's record has a typo.
    namesake = person(name("Smith", "John"), namesake_ids, record="NAMESAKE")
    real = person(name("Smiht", "John"), real_ids, record="REAL")
    assert ranked_keys(query, query_ids, [namesake, real], use_pids=True, matcher=version) == ["REAL", "NAMESAKE"]
    assert score(query, query_ids, real, use_pids=True, matcher=version).score >= PID
    if conflicts_all:  # every identifier the query gives conflicts: the namesake is no hit
        assert score(query, query_ids, namesake, use_pids=True, matcher=version).score < PID


@pytest.mark.parametrize("version", VERSIONS)
def test_conflicting_identifier_outweighs_a_rare_full_name(version: str) -> None:
    """With a rare three-part name the name alone is strong evidence; one conflicting identifier
    still ranks the namesake under the real person with a typo, who carries the agreeing one."""
    query = name("Whitfield", "Harold", "James")
    for query_ids, namesake_ids in ((ids(SSN), ids("529017733")), (ids(dob=DOB), ids(dob=PartialDate(1981, 9, 30)))):
        namesake = person(query, namesake_ids, record="NAMESAKE")
        real = person(name("Whitfeild", "Harold", "J"), query_ids, record="REAL")
        assert ranked_keys(query, query_ids, [namesake, real], use_pids=True, matcher=version) == ["REAL", "NAMESAKE"]
        name_only = score(query, ids(), namesake, use_pids=True, matcher=version).score
        assert score(query, query_ids, namesake, use_pids=True, matcher=version).score < name_only


def test_fuzzy_2_holds_a_namesake_with_another_ssn_under_the_threshold_whatever_the_name() -> None:
    """Same rare name, middle name and date of birth, another SSN: fuzzy-1's -16 bits were outweighed
    by the rare name (+3 bits a part), and the namesake passed 0.9; fuzzy-2 holds it under 0.85."""
    query = name("Whitfield", "Harold", "Jameson")
    namesake = person(query, ids("529017733", DOB), record="NAMESAKE")
    assert score(query, ids(SSN, DOB), namesake, use_pids=True, matcher="fuzzy-1").score >= PID
    held = score(query, ids(SSN, DOB), namesake, use_pids=True, matcher="fuzzy-2")
    assert held.score <= 0.85
    assert "one person has one SSN" in feature(held, "ssn").detail
    # the cap is a ceiling, not a floor: less evidence still scores less, and ranks lower
    other_dob = score(query, ids(SSN, DOB), person(query, ids("529017733", PartialDate(1990, 1, 1))), use_pids=True)
    assert other_dob.score < held.score


def test_fuzzy_2_ranks_the_exact_name_with_a_mistyped_ssn_above_a_stranger_without_one() -> None:
    """The person sought, whose SSN was mistyped beyond one digit, against a stranger who shares only
    the surname and has no SSN on record (FEBRL4: Julia Clarke and Simon Clarke): fuzzy-1's -16 bits
    put the stranger first; neither is a hit at the default threshold."""
    query, query_ids = name("Clarke", "Julia"), ids(SSN)
    mistyped = person(name("Clarke", "Julia"), ids("318927004"), record="MISTYPED")
    stranger = person(name("Clarke", "Simon"), ids(), record="STRANGER")
    assert ranked_keys(query, query_ids, [stranger, mistyped], use_pids=True, matcher="fuzzy-1")[0] == "STRANGER"
    assert ranked_keys(query, query_ids, [stranger, mistyped], use_pids=True) == ["MISTYPED", "STRANGER"]
    assert rank(query, query_ids, [stranger, mistyped], use_pids=True, min_score=PID) == []


def test_two_john_smiths_with_different_pids_are_not_both_above_the_pid_threshold() -> None:
    first = person(name("Smith", "John"), ids("212457788", PartialDate(1965, 3, 14), "TX"), record="FIRST")
    second = person(name("Smith", "John"), ids("401663921", PartialDate(1978, 11, 2), "OH"), record="SECOND")
    for query_ids, expected in ((first.subject.identifiers, "FIRST"), (second.subject.identifiers, "SECOND")):  # type: ignore[union-attr]
        hits = rank(name("Smith", "John"), query_ids, [first, second], use_pids=True, min_score=PID)
        assert [first, second][hits[0][0]].key.record_number == expected
        assert len(hits) == 1


def test_john_doe_does_not_match_juan_doe_in_fuzzy() -> None:
    assert score(name("Doe", "John"), ids(), person(name("Doe", "Juan")), use_pids=False).score < FUZZY
    assert rank(name("Doe", "John"), ids(), [person(name("Doe", "Juan"))], use_pids=False, min_score=FUZZY) == []
    # ... while a real variant of John Doe does, and more likely than not (FUZZY's default is 0.25 from fuzzy-8).
    assert score(name("Doe", "John"), ids(), person(name("Doe", "Jon")), use_pids=False).score >= 0.5


def test_typo_never_outranks_exact_name() -> None:
    query = name("Smith", "John")
    records = [
        person(name("Smyth", "John"), record="TYPO"),
        person(name("Smith", "John"), record="EXACT"),
        person(name("Smith", "Johm"), record="GIVEN-TYPO"),
        person(name("John", "Smith"), record="SWAPPED"),
    ]
    assert ranked_keys(query, ids(), records, use_pids=False)[0] == "EXACT"


def test_fuzzy_ignores_pids() -> None:
    query = name("Whitfield", "Harold")
    plain = score(query, ids(SSN, DOB), person(query), use_pids=False)
    conflicting = score(query, ids(SSN, DOB), person(query, ids("529017733", PartialDate(1990, 1, 1))), use_pids=False)
    assert plain.score == conflicting.score
    assert all(f.name in NAME_FIELDS for f in conflicting.features)


def test_pid_qualified_without_pids_in_the_query_is_name_evidence_only() -> None:
    query = name("Whitfield", "Harold")
    record = person(query, ids(SSN, DOB))
    with_pids = score(query, ids(), record, use_pids=True)
    assert with_pids.score == pytest.approx(score(query, ids(), record, use_pids=False).score)
    assert feature(with_pids, "ssn").agreement == Agreement.MISSING


def test_best_name_over_aliases() -> None:
    record = person(name("Kowalski", "Anna"), aliases=(name("Smith", "Ann"), name("Whitfield", "Anna")))
    scored = score(name("Whitfield", "Anna"), ids(), record, use_pids=False)
    assert scored.alias_no == 2
    assert scored.score >= 0.5
    assert score(name("Kowalski", "Anna"), ids(), record, use_pids=False).alias_no == 0


def test_rank_is_best_first_with_ties_in_candidate_order() -> None:
    twin = person(name("Whitfield", "Harold"))
    records = [person(name("Jones", "Mary")), twin, person(name("Whitfeld", "Harold")), twin]
    ranked = rank(name("Whitfield", "Harold"), ids(), records, use_pids=False)
    assert [i for i, _ in ranked] == [1, 3, 2, 0]
    scores = [s.score for _, s in ranked]
    assert scores == sorted(scores, reverse=True)
    assert rank(name("Whitfield", "Harold"), ids(), records, use_pids=False, limit=2) == ranked[:2]
    assert rank(name("Whitfield", "Harold"), ids(), [], use_pids=False) == []


def test_impersonal_title_candidate_scores_nothing() -> None:
    title = Tracing(TracingKey("DSS", "T-1"), 1, None, ImpersonalTitleDetails("ACME CORP", None, "DSS", "F-1", 1990))
    ranked = rank(name("Whitfield", "Harold"), ids(SSN), [title, person(name("Whitfield", "Harold"))], use_pids=True)
    assert [i for i, _ in ranked] == [1, 0]
    assert ranked[1][1].score < 0.01
    assert len(ranked[1][1].features) == len(NAME_FIELDS + PID_FIELDS)


def test_batch_scores_equal_single_scores() -> None:
    records = [person(name("Whitfield", "Harold"), ids(SSN, DOB)), person(name("Smith-Jones", "Alice")),
               person(name("Harold", "Whitfield"), aliases=(name("Cruz", "Maria"),))]  # fmt: skip
    queries = [(name("Whitfeild", "Harold"), ids(SSN)), (name("Jones", "Alice"), ids()), (name("Cruz", "Maria"), ids())]
    compiled = matching.compile_candidates(records)
    bits = matching.score_matrix([q for q, _ in queries], [i for _, i in queries], compiled, use_pids=True)
    for row, (query, query_ids) in enumerate(queries):
        for col, record in enumerate(records):
            single = score(query, query_ids, record, use_pids=True).score
            assert matching.to_score(float(bits[row, col])) == pytest.approx(single)


@pytest.mark.parametrize("use_pids", [False, True])
def test_namesakes_compared_once_score_and_explain_as_each_alone(use_pids: bool) -> None:
    # Heads that carry the very same names share one group of name rows (matching_columns._compile_heads):
    # each must still score, rank and explain exactly as the same candidates decoded one by one.
    dob_a, dob_b = PartialDate(1970, 5, 12), PartialDate(1983, 2, 1)
    records = [
        person(name("Smith", "John"), ids(dob=dob_a), record="A"),
        person(name("Smyth", "Jon"), ids(SSN, dob_b), record="B"),
        person(name("Smith", "John"), ids(SSN, dob_b), record="C"),
        person(name("Kowalski", "Anna"), ids(dob=dob_a), aliases=(name("Smith", "John"),), record="D"),
        person(name("Smith", "John"), ids(), record="E"),
        person(name("Kowalski", "Anna"), ids(SSN), aliases=(name("Smith", "John"),), record="F"),
    ]
    heads = [HeadCandidate(head_to_text(r.subject)) for r in records]
    compiled = matching.compile_candidates(heads, pids=use_pids)
    assert compiled.groups is not None and len(compiled.names.starts) == 3  # three distinct names fields
    query, query_ids = name("Smith", "John"), ids(SSN, dob_b)
    from_heads = rank(query, query_ids, heads, use_pids=use_pids)
    assert from_heads == rank(query, query_ids, records, use_pids=use_pids)
    for index, scored in from_heads:
        assert scored == score(query, query_ids, records[index], use_pids=use_pids)
    if use_pids:  # namesakes told apart by their identifiers, though their names were compared once
        assert records[from_heads[0][0]].key.record_number == "C"
        assert feature(dict(from_heads)[5], "given_name").agreement == Agreement.EXACT
        assert dict(from_heads)[5].alias_no == 1
