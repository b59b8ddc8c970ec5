"""FUZZY and PID_QUALIFIED through the real service: retrieve by match keys, score, rank, explain."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from dcii.v1 import search_pb2, tracing_pb2
from search_service.accreditation import Role
from search_service.errors import field_violations
from search_service.matching import DEFAULT_THRESHOLD, MATCHER_ENV, MATCHER_VERSION
from tests import factories as f
from tests.support import Client, Index, make_index

FUZZY, PID_QUALIFIED = search_pb2.SEARCH_MODE_FUZZY, search_pb2.SEARCH_MODE_PID_QUALIFIED

# The corpus: the true person, and namesakes that must not outrank them.
PEOPLE = [
    f.person(record="TRUE", surname="Whitfield", given="William", middle="James", ssn="318-52-4471", dob=(1971, 4, 12)),
    f.person(
        record="NAMESAKE-SSN",
        surname="Whitfield",
        given="William",
        middle="James",
        ssn="529-61-3380",
        dob=(1971, 4, 12),
    ),
    f.person(record="NAMESAKE-DOB", surname="Whitfield", given="William", middle="James", ssn="", dob=(1958, 9, 30)),
    f.person(record="CRUZ", surname="de la Cruz", given="Maria", middle="", ssn="412-77-9023", dob=(1985, 2, 17)),
    f.person(record="DOE", surname="Doe", given="John", middle="", ssn="301-44-1290", dob=(1990, 1, 5)),
    f.person(record="NGUYEN", surname="Nguyen", given="Thi Lan", middle="", ssn="", dob=(1979, 3, 8)),
    f.person(record="OTHER", surname="Kowalczyk", given="Beatrix", middle="", ssn="245-10-7788", dob=(1966, 6, 6)),
]


@pytest.fixture(scope="module")
def querier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    index: Index = make_index(Path(tmp_path_factory.mktemp("ranked")))
    index.start()
    try:
        submitter = index.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER])
        results = submitter.upsert(*PEOPLE)
        assert all(r.outcome == 1 for r in results), results
        yield index.client("CCF-TERM-01", "ARMY-CCF", [Role.QUERIER])
    finally:
        index.stop()


def ask(
    client: Client, mode: int, surname: str, given: str = "", ssn: str = "", dob: tuple[int, int, int] | None = None
) -> search_pb2.SearchResponse:
    identifiers = tracing_pb2.PersonalIdentifiers(ssn=ssn)
    if dob is not None:
        identifiers.date_of_birth.year, identifiers.date_of_birth.month, identifiers.date_of_birth.day = dob
    return client.search(mode=mode, name={"surname": surname, "given_name": given}, identifiers=identifiers)


def records(response: search_pb2.SearchResponse) -> list[str]:
    return [h.tracing.key.record_number for h in response.hits]


@pytest.mark.parametrize(
    ("mode", "surname", "given", "ids", "expected_first"),
    [
        (FUZZY, "Whitfield", "Bill", {}, {"TRUE", "NAMESAKE-SSN", "NAMESAKE-DOB"}),  # nickname
        (FUZZY, "William", "Whitfield", {}, {"TRUE", "NAMESAKE-SSN", "NAMESAKE-DOB"}),  # swapped order
        (FUZZY, "Whitfeild", "William", {}, {"TRUE", "NAMESAKE-SSN", "NAMESAKE-DOB"}),  # typo
        (FUZZY, "Cruz", "Maria", {}, {"CRUZ"}),  # compound surname part
        (FUZZY, "DELACRUZ", "María", {}, {"CRUZ"}),  # particle and diacritics
        (FUZZY, "Nguyen", "Lan", {}, {"NGUYEN"}),  # one word of a given name of two (fuzzy-7)
        (PID_QUALIFIED, "Nguyen", "Lan", {"dob": (1979, 3, 8)}, {"NGUYEN"}),
        (PID_QUALIFIED, "Whitfield", "William", {"ssn": "318-52-4417"}, {"TRUE"}),  # SSN adjacent swap
        (PID_QUALIFIED, "Whitfield", "William", {"ssn": "318-52-4479"}, {"TRUE"}),  # SSN one digit wrong
        (PID_QUALIFIED, "Whitfield", "Bill", {"dob": (1971, 12, 4)}, {"TRUE", "NAMESAKE-SSN"}),  # DOB swap
        (PID_QUALIFIED, "Whitfield", "William", {"ssn": "318-52-4471", "dob": (1971, 4, 12)}, {"TRUE"}),
    ],
)
def test_the_true_person_comes_first(
    querier: Client, mode: int, surname: str, given: str, ids: dict[str, Any], expected_first: set[str]
) -> None:
    response = ask(querier, mode, surname, given, **ids)
    assert response.hits, "no hit above the default threshold"
    assert records(response)[0] in expected_first
    assert response.matcher_version == MATCHER_VERSION
    assert response.marking == "FOR OFFICIAL USE ONLY - PRIVACY SENSITIVE"
    assert not response.candidates_truncated
    scores = [h.score for h in response.hits]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)


def test_namesakes_with_conflicting_pids_rank_below_the_true_person(querier: Client) -> None:
    response = ask(querier, PID_QUALIFIED, "Whitfield", "William", ssn="318-52-4471", dob=(1971, 4, 12))
    order = records(response)
    assert order[0] == "TRUE"
    for namesake in ("NAMESAKE-SSN", "NAMESAKE-DOB"):
        assert namesake not in order or order.index(namesake) > 0
    threshold = DEFAULT_THRESHOLD["PID_QUALIFIED"]
    assert all(h.score < threshold for h in response.hits if h.tracing.key.record_number == "NAMESAKE-SSN")


def test_john_doe_does_not_find_juan_doe_and_strangers_stay_out(querier: Client) -> None:
    assert "DOE" not in records(ask(querier, FUZZY, "Doe", "Juan"))
    assert records(ask(querier, FUZZY, "Kowalczyk", "Beatrix")) == ["OTHER"]


def test_every_hit_explains_itself(querier: Client) -> None:
    response = ask(querier, PID_QUALIFIED, "Whitfield", "Bill", ssn="318-52-4417")
    top = response.hits[0]
    features = {f.feature: f for f in top.explanation.features}
    assert {"surname", "given_name", "ssn"} <= set(features)
    assert features["ssn"].agreement == search_pb2.AGREEMENT_PARTIAL
    assert features["surname"].agreement == search_pb2.AGREEMENT_EXACT
    assert all(f.detail for f in top.explanation.features)
    assert top.tracing.subject.identifiers.ssn == "" and top.tracing.subject.identifiers.ssn_last_four == "4471"


def test_min_score_filters_and_pages_are_stable(querier: Client) -> None:
    everything = querier.search(
        mode=FUZZY, name={"surname": "Whitfield", "given_name": "William"}, min_score=0.01, page_size=1
    )
    seen = records(everything)
    token = everything.next_page_token
    while token:
        page = querier.search(
            mode=FUZZY,
            name={"surname": "Whitfield", "given_name": "William"},
            min_score=0.01,
            page_size=1,
            page_token=token,
        )
        seen += records(page)
        token = page.next_page_token
    assert len(seen) == len(set(seen)) >= 3
    strict = querier.search(mode=FUZZY, name={"surname": "Whitfield", "given_name": "William"}, min_score=0.999)
    assert all(h.score >= 0.999 for h in strict.hits)


def test_pages_concatenate_to_the_whole_ranking(querier: Client) -> None:
    """Only a page's hits are explained; paging through gives the one ranking, in order."""
    ask_for = {"mode": FUZZY, "name": {"surname": "Whitfield", "given_name": "William"}, "min_score": 0.001}
    whole = records(querier.search(**ask_for, page_size=100))
    paged: list[str] = []
    token = ""
    while True:
        page = querier.search(**ask_for, page_size=2, page_token=token)
        assert len(page.hits) <= 2
        paged += records(page)
        token = page.next_page_token
        if not token:
            break
    assert paged == whole and len(whole) >= 3


def test_a_ranked_page_resumes_after_its_last_hit_whatever_was_written_meanwhile(tmp_path: Path) -> None:
    """Tokens were offsets into a ranking computed again for each page: a hit of page 1 deleted before
    page 2 moved every later hit up a place, and the first of them, onto page 1's last slot, was never
    shown; an insertion showed one twice. Equal evidence for all nine: the order is the tracing keys'."""
    index = make_index(tmp_path)
    index.start()
    try:
        ncis = index.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER])
        ncis.upsert(*(f.person(record=f"K{n:02d}", surname="Okafor", given="Ngozi") for n in range(1, 10)))
        querier = index.client("CCF-TERM-01", "ARMY-CCF", [Role.QUERIER])
        ask_for = {"mode": FUZZY, "name": {"surname": "Okafor", "given_name": "Ngozi"}, "page_size": 3}
        first = querier.search(**ask_for)
        assert records(first) == ["K01", "K02", "K03"]
        assert ncis.push([f.delete("NCIS", "K01", 2)])[0].outcome == 1  # shown, then deleted
        ncis.upsert(f.person(record="K00", surname="Okafor", given="Ngozi"))  # would rank before all of them
        second = querier.search(**ask_for, page_token=first.next_page_token)
        assert records(second) == ["K04", "K05", "K06"]
        ncis.push([f.delete("NCIS", "K06", 2)])  # the last hit shown, gone before the next page
        third = querier.search(**ask_for, page_token=second.next_page_token)
        assert records(third) == ["K07", "K08", "K09"] and not third.next_page_token
        with pytest.raises(grpc.RpcError) as refused:  # the token of another query
            querier.search(
                **{**ask_for, "name": {"surname": "Okafor", "given_name": "Chidi"}}, page_token=first.next_page_token
            )
        assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
        assert [field for field, _ in field_violations(refused.value)] == ["page_token"]
    finally:
        index.stop()


def test_the_old_matcher_stays_selectable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server started with DCII_MATCHER=fuzzy-1 ranks with fuzzy-1 and says so."""
    monkeypatch.setenv(MATCHER_ENV, "fuzzy-1")
    index = make_index(tmp_path)
    index.start()
    try:
        assert all(r.outcome == 1 for r in index.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER]).upsert(*PEOPLE))
        client = index.client("CCF-TERM-01", "ARMY-CCF", [Role.QUERIER])
        response = ask(client, PID_QUALIFIED, "Whitfield", "William", ssn="318-52-4471", dob=(1971, 4, 12))
        assert response.matcher_version == "fuzzy-1" != MATCHER_VERSION
        assert records(response)[0] == "TRUE"
    finally:
        index.stop()


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"mode": FUZZY, "name": {"surname": "Whitfield"}, "identifiers": {"ssn": "318-52-4471"}}, "identifiers"),
        ({"mode": FUZZY, "name": {"surname": "Whitfield"}, "min_score": 1.5}, "min_score"),
        ({"mode": PID_QUALIFIED, "name": {"middle_name": "James"}}, "name.surname"),
        ({"mode": FUZZY, "name": {"surname": "Whitfield"}, "page_token": "bm9wZQ=="}, "page_token"),
    ],
)
def test_bad_ranked_queries_name_the_field(querier: Client, fields: dict[str, object], field: str) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        querier.search(**fields)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in {name for name, _ in field_violations(refused.value)}
