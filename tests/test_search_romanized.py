"""Through the server, on each backend: a Chinese or Korean surname asked in another romanization finds the
record and says why (fuzzy-9; fuzzy-10, fuzzy-11 and the default fuzzy-12 keep it). Scoring and keys case by case:
tests/test_matching_romanized.py; the table: tests/test_surname_romanizations.py."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dcii.v1 import search_pb2
from search_service.accreditation import Role
from search_service.matching_versions import DEFAULT_MATCHER
from tests import factories as f
from tests.support import Client, Index, make_index

FUZZY, PID_QUALIFIED = search_pb2.SEARCH_MODE_FUZZY, search_pb2.SEARCH_MODE_PID_QUALIFIED
RHEE_SSN = "318-52-4471"


@pytest.fixture(scope="module")
def querier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    index: Index = make_index(tmp_path_factory.mktemp("romanized"))
    index.start()
    try:
        ncis = index.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER])
        people = [
            f.person(record="YI-MINJUN", surname="Yi", given="Min Jun", middle="", ssn=""),
            f.person(record="MINJUN-YI", surname="Min Jun", given="Yi", middle="", ssn=""),  # family name first
            f.person(record="LEWIS-MINJUN", surname="Lewis", given="Min Jun", middle="", ssn=""),
            f.person(record="RHEE-SEUNGMAN", surname="Rhee", given="Seung Man", middle="", ssn=RHEE_SSN),
            f.person(record="CHOW-WEI", surname="Chow", given="Wei", middle="", ssn=""),
            f.person(record="HUANG-WEI", surname="Huang", given="Wei", middle="", ssn=""),
        ]
        assert {r.outcome for r in ncis.upsert(*people)} == {1}
        yield index.client("CCF-TERM-01", "ARMY-CCF", [Role.QUERIER])
    finally:
        index.stop()


def _surname_said(hit: search_pb2.Hit) -> str:
    names = [feature for feature in hit.explanation.features if feature.feature in ("surname", "given_name")]
    return " ".join(feature.detail for feature in names)


@pytest.mark.parametrize(
    ("surname", "given", "found"),
    [
        ("Lee", "Min Jun", {"YI-MINJUN", "MINJUN-YI"}),  # and not LEWIS, MIN JUN
        # The query's order swapped: YI, MIN JUN by the swapped alignment; not MIN JUN, YI, swapped as the query
        # is, whose given names are compared as given names, which the table does not relate (JIN, SONG, WEI).
        ("Min Jun", "Lee", {"YI-MINJUN"}),
        ("Zhou", "Wei", {"CHOW-WEI"}),  # not HUANG: another surname
    ],
)
def test_another_romanization_of_the_surname_is_found_and_explained(
    querier: Client, surname: str, given: str, found: set[str]
) -> None:
    response = querier.search(mode=FUZZY, name={"surname": surname, "given_name": given}, page_size=50)
    assert response.matcher_version == DEFAULT_MATCHER
    hits = {hit.tracing.key.record_number: hit for hit in response.hits}
    assert set(hits) == found
    for hit in hits.values():
        assert "another romanization of one surname" in _surname_said(hit)


def test_with_its_ssn_a_romanized_surname_is_a_pid_qualified_hit(querier: Client) -> None:
    response = querier.search(
        mode=PID_QUALIFIED, name={"surname": "Lee", "given_name": "Seung Man"}, identifiers={"ssn": RHEE_SSN}
    )
    assert [hit.tracing.key.record_number for hit in response.hits] == ["RHEE-SEUNGMAN"]
    assert response.hits[0].score >= 0.9
