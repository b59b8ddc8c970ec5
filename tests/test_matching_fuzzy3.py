"""What fuzzy-3 added to the fuzzy scorer: a field absent on both sides (BOTH_MISSING), positives and
explicit negatives. The cases of tests/test_matching.py run against every version, fuzzy-3 too."""

from __future__ import annotations

import pytest

from indexer.model import Identifiers, PartialDate
from search_service import matching
from search_service.matching import Agreement, rank, score
from tests.test_matching import DOB, PID, SSN, Case, check_case, feature, ids, name, person, ranked_keys

FUZZY_3_CASES = [
    Case("given-absent-on-both-sides", name("Babic"), name("Babic"), "given_name", Agreement.MISSING,
         "absent in both"),
    Case("surname-absent-on-both-sides", name("", "Harold"), name("", "Harold"), "surname", Agreement.MISSING,
         "absent in both"),
    Case("given-absent-in-the-query-only", name("Babic"), name("Babic", "Alex"), "given_name",
         Agreement.MISSING, "absent in the query"),
    Case("given-absent-in-the-record-only", name("Babic", "Alex"), name("Babic"), "given_name",
         Agreement.MISSING, "absent in the record"),
    Case("dob-absent-on-both-sides", name("Whitfield", "Harold"), name("Whitfield", "Harold"), "date_of_birth",
         Agreement.MISSING, "absent in both", None, ids(SSN), ids(SSN), True),
    Case("dob-absent-in-the-record-only", name("Whitfield", "Harold"), name("Whitfield", "Harold"),
         "date_of_birth", Agreement.MISSING, "given by only one", None, ids(SSN, DOB), ids(SSN), True),
]  # fmt: skip


@pytest.mark.parametrize("case", FUZZY_3_CASES, ids=lambda c: c.id)
def test_fuzzy_3_feature_table(case: Case) -> None:
    check_case(case, "fuzzy-3")


def test_a_record_that_lacks_the_part_the_query_lacks_ranks_first() -> None:
    """A query without a given name: of two records with its surname, the one that has no given name
    either comes first (fuzzy-2 tied them, and the order of the candidates decided)."""
    query = name("Babic")
    records = [person(name("Babic", "Alex"), record="ALEX"), person(name("Babic"), record="BARE")]
    assert ranked_keys(query, ids(), records, use_pids=False, matcher="fuzzy-2") == ["ALEX", "BARE"]
    assert ranked_keys(query, ids(), records, use_pids=False, matcher="fuzzy-3") == ["BARE", "ALEX"]
    both = score(query, ids(), records[1], use_pids=False, matcher="fuzzy-3")
    assert both.score > score(query, ids(), records[1], use_pids=False, matcher="fuzzy-2").score
    # the same with the parts swapped in the record: given-less query, surname-less record holding it
    swapped = person(name("", "Babic"), record="SWAPPED")
    assert ranked_keys(query, ids(), [records[0], swapped], use_pids=False, matcher="fuzzy-3") == ["SWAPPED", "ALEX"]


def test_a_full_query_name_gives_a_record_without_a_given_name_nothing() -> None:
    query = name("Whitfield", "Harold")
    records = [person(name("Whitfield"), record="BARE"), person(name("Whitfield", "Harold"), record="FULL")]
    assert ranked_keys(query, ids(), records, use_pids=False, matcher="fuzzy-3") == ["FULL", "BARE"]
    for version in ("fuzzy-2", "fuzzy-3"):  # only a part absent on BOTH sides changes anything
        assert score(query, ids(), records[0], use_pids=False, matcher=version) == score(
            query, ids(), records[0], use_pids=False, matcher="fuzzy-2"
        )


@pytest.mark.parametrize(
    ("label", "query_ids", "namesake_ids"),
    [
        ("different DOB", ids(dob=DOB), ids(dob=PartialDate(1981, 9, 30))),
        ("different SSN", ids(SSN), ids("529017733")),
        ("different SSN and DOB", ids(SSN, DOB), ids("529017733", PartialDate(1981, 9, 30))),
    ],
)
def test_a_namesake_lacking_the_given_name_like_the_query_does_not_outrank_the_real_person(
    label: str, query_ids: Identifiers, namesake_ids: Identifiers
) -> None:
    """The query lacks the given name; the namesake lacks it too (BOTH_MISSING) but its identifiers
    conflict; the real person's record has the given name and the query's identifiers."""
    query = name("Whitfield")
    namesake = person(name("Whitfield"), namesake_ids, record="NAMESAKE")
    real = person(name("Whitfield", "Harold"), query_ids, record="REAL")
    assert ranked_keys(query, query_ids, [namesake, real], use_pids=True, matcher="fuzzy-3") == ["REAL", "NAMESAKE"]
    assert score(query, query_ids, namesake, use_pids=True, matcher="fuzzy-3").score < PID


def test_a_date_of_birth_absent_on_both_sides_never_lets_a_typo_outrank_the_exact_name() -> None:
    """BOTH_MISSING for the date of birth is one bit: enough to order records the name leaves tied,
    not enough to put a misspelt name above the exact one (a typo costs more than a bit)."""
    query, query_ids = name("Whitfield", "Harold"), ids(SSN)
    typo = person(name("Whitfeild", "Harold"), ids(SSN), record="TYPO")  # no DOB, like the query
    exact = person(name("Whitfield", "Harold"), ids(SSN, DOB), record="EXACT")
    assert ranked_keys(query, query_ids, [typo, exact], use_pids=True, matcher="fuzzy-3") == ["EXACT", "TYPO"]
    # two records of the same name and SSN: the one without a date of birth, like the query, first
    bare = person(name("Whitfield", "Harold"), ids(SSN), record="BARE")
    assert ranked_keys(query, query_ids, [exact, bare], use_pids=True, matcher="fuzzy-3") == ["BARE", "EXACT"]
    assert feature(rank(query, query_ids, [bare], use_pids=True, matcher="fuzzy-3")[0][1], "date_of_birth").detail == (
        "absent in both the query and the record"
    )


def test_fuzzy_3_keeps_fuzzy_2_wherever_nothing_is_absent_on_both_sides() -> None:
    records = [
        person(name("Whitfield", "Harold"), ids(SSN, DOB)),
        person(name("Smith-Jones", "Alice"), ids(dob=PartialDate(1970))),
        person(name("Harold", "Whitfield"), aliases=(name("Cruz", "Maria"),)),
        person(name("Whitfeild", "H", "James"), ids("318524741")),
    ]
    queries = [(name("Whitfeild", "Harold"), ids(SSN, DOB)), (name("Jones", "Alice"), ids(dob=DOB))]
    compiled = matching.compile_candidates(records)
    for use_pids in (True, False):
        names, pids = [q for q, _ in queries], [i for _, i in queries]
        second = matching.score_matrix(names, pids, compiled, use_pids=use_pids, matcher="fuzzy-2")
        third = matching.score_matrix(names, pids, compiled, use_pids=use_pids, matcher="fuzzy-3")
        assert (second == third).all()


def test_candidates_compiled_without_identifiers_serve_fuzzy_only() -> None:
    records = [person(name("Whitfield", "Harold"), ids(SSN, DOB))]
    bare = matching.compile_candidates(records, pids=False)
    assert bare.pids is None
    full = matching.compile_candidates(records)
    query = [name("Whitfield", "Harold")]
    assert (
        matching.score_matrix(query, [ids(SSN)], bare, use_pids=False)
        == matching.score_matrix(query, [ids(SSN)], full, use_pids=False)
    ).all()
    with pytest.raises(ValueError, match="without identifiers"):
        matching.score_matrix(query, [ids(SSN)], bare, use_pids=True)
