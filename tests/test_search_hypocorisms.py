"""Through the server, on each backend: a Spanish given name asked in its full form ranks the record filed under
its short form first and the other way round, and says why (fuzzy-12, the default); a PID_QUALIFIED answer by
name and date of birth shows it as a hit, where fuzzy-11 held it under the threshold as another given name.
This small index retrieves every record of the surname by the surname alone: that the other forms' keys reach
a record where the surname alone is too common to look up is tested on the keys themselves
(tests/test_matching_hypocorisms.py, with the scoring case by case; the table: tests/test_given_hypocorisms.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dcii.v1 import search_pb2
from search_service.accreditation import Role
from search_service.matching_versions import DEFAULT_MATCHER
from tests import factories as f
from tests.support import Client, Index, make_index

FUZZY, PID_QUALIFIED = search_pb2.SEARCH_MODE_FUZZY, search_pb2.SEARCH_MODE_PID_QUALIFIED
BORN = (1968, 9, 3)
DOB = {"date_of_birth": {"year": BORN[0], "month": BORN[1], "day": BORN[2]}}


@pytest.fixture(scope="module")
def querier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    index: Index = make_index(tmp_path_factory.mktemp("hypocorisms"))
    index.start()
    try:
        ncis = index.client("NCIS-HY-01", "NCIS", [Role.SUBMITTER])
        people = [
            f.person(record="HERNANDEZ-PACO", surname="Hernandez", given="Paco", middle="", ssn="", dob=BORN),
            f.person(record="HERNANDEZ-PEDRO", surname="Hernandez", given="Pedro", middle="", ssn="", dob=BORN),
            f.person(record="RUIZ-GUADALUPE", surname="Ruiz", given="Guadalupe", middle="", ssn="", dob=BORN),
        ]
        assert {r.outcome for r in ncis.upsert(*people)} == {1}
        yield index.client("CCF-TERM-01", "ARMY-CCF", [Role.QUERIER])
    finally:
        index.stop()


def _given_said(hit: search_pb2.Hit) -> str:
    return next(feature.detail for feature in hit.explanation.features if feature.feature == "given_name")


@pytest.mark.parametrize(
    ("surname", "given", "record", "full"),
    [
        ("Hernandez", "Francisco", "HERNANDEZ-PACO", "FRANCISCO"),
        ("Hernandez", "Pancho", "HERNANDEZ-PACO", "FRANCISCO"),  # another short form of the same name
        ("Ruiz", "Lupe", "RUIZ-GUADALUPE", "GUADALUPE"),
    ],
)
def test_the_other_form_is_a_fuzzy_hit_and_says_why(
    querier: Client, surname: str, given: str, record: str, full: str
) -> None:
    response = querier.search(mode=FUZZY, name={"surname": surname, "given_name": given}, page_size=50)
    assert response.matcher_version == DEFAULT_MATCHER
    hits = {hit.tracing.key.record_number: hit for hit in response.hits}
    assert response.hits[0].tracing.key.record_number == record
    assert _given_said(hits[record]).startswith(f"a Spanish short form of {full} (")
    assert "HERNANDEZ-PEDRO" not in hits  # PEDRO is another name


def test_a_pid_qualified_answer_by_name_and_date_shows_the_other_form(querier: Client) -> None:
    response = querier.search(
        mode=PID_QUALIFIED, name={"surname": "Hernandez", "given_name": "Francisco"}, identifiers=DOB
    )
    assert [hit.tracing.key.record_number for hit in response.hits] == ["HERNANDEZ-PACO"]
    assert response.hits[0].score >= 0.9
    assert 0.8 < response.best_below_threshold < 0.85  # PEDRO, born the same day: held as another given name
