"""An access request's records say how the name asked compares with theirs (a privacy officer's acceptance
test, F7): found by the SSN under any name, a wrong name got the SSN holder's whole file, each record
explained by `ssn: equal` alone. Over the real gRPC service on real SQLite files; `dcii privacy access` over a
`dcii serve --demo` subprocess."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from dcii.cli.bootstrap import sample_subject
from dcii.cli.privacy_office import _print_answer
from dcii.v1 import privacy_pb2, privacy_pb2_grpc, search_pb2
from search_service.accreditation import Role
from tests import factories as f
from tests.support import Client, Index, free_port, server_process
from tests.test_cli import dcii
from tests.test_privacy import _officer, _open

SSN = "318-52-4471"
EXACT, PARTIAL, DISAGREE = search_pb2.AGREEMENT_EXACT, search_pb2.AGREEMENT_PARTIAL, search_pb2.AGREEMENT_DISAGREE
NONE_LINE = "the name asked agrees with none of these records: check the requester's identity before release"
IN_PART_LINE = "the name asked agrees with these records in part only: check the requester's identity before release"


def _load(index: Index) -> None:
    submitter = index.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER])
    submitter.upsert(
        # Angela Diane Smith, born Brown (her maiden name an alias on one record only).
        f.person(
            record="NCIS-A1", surname="Smith", given="Angela", middle="Diane", ssn=SSN, aliases=(("Brown", "Angela"),)
        ),
        f.person(record="NCIS-A2", surname="Smith", given="Angela", middle="Diane", ssn=SSN),
        f.person(record="NCIS-B1", surname="Okafor", given="Ngozi", middle="", ssn="212-44-8765"),
    )


Office = tuple[Client, privacy_pb2_grpc.PrivacyServiceStub]


def _answer(office: Office, number: str, surname: str, given: str, middle: str = "") -> privacy_pb2.AccessResponse:
    """The answer to a request registered under `number`, for this name and the SSN."""
    officer, privacy = office
    _open(privacy, officer, number)
    request = privacy_pb2.AccessRequest(request_number=number, ssn=SSN)
    request.name.surname, request.name.given_name, request.name.middle_name = surname, given, middle
    return privacy.AnswerAccessRequest(request, metadata=officer.metadata, timeout=10)


def _named(answer: privacy_pb2.AccessResponse) -> dict[str, tuple[int, str, str]]:
    """Each record's name feature: (agreement, detail, matched_name)."""
    out: dict[str, tuple[int, str, str]] = {}
    for hit in answer.tracings:
        [name] = [x for x in hit.explanation.features if x.feature == "name"]
        out[hit.tracing.key.record_number] = (name.agreement, name.detail, hit.explanation.matched_name)
    return out


def test_a_wrong_name_gets_the_file_and_says_it_agrees_with_none_of_its_names(index: Index) -> None:
    _load(index)
    answer = _answer(_officer(index), "PA-26-201", "Jones", "Bob")
    # Searching by the SSN under any name is intended (name changes): the records still come back ...
    assert sorted(h.tracing.key.record_number for h in answer.tracings) == ["NCIS-A1", "NCIS-A2"]
    # ... each saying that the name asked is none of its names, the SSN still equal.
    assert _named(answer) == {
        "NCIS-A1": (
            DISAGREE,
            "the name asked agrees with none of the record's names (the primary name and 1 alias)",
            "",
        ),
        "NCIS-A2": (DISAGREE, "the name asked agrees with none of the record's names (its one name)", ""),
    }
    assert all([x.feature for x in h.explanation.features] == ["name", "ssn"] for h in answer.tracings)
    details = " ".join(x.detail for h in answer.tracings for x in h.explanation.features).upper()
    assert "JONES" not in details and "BOB" not in details and "SMITH" not in details  # no value in a detail


PRIMARY = (EXACT, "normalized name equal", "primary")


def _in_part(rest: str) -> tuple[int, str, str]:
    return PARTIAL, f"the name asked agrees in part with the primary name: the same {rest}", ""


@pytest.mark.parametrize(
    ("surname", "given", "middle", "expected"),
    [
        ("Smith", "Angela", "", {"NCIS-A1": PRIMARY, "NCIS-A2": PRIMARY}),
        # Her maiden name: an alias of one record; the other agrees in the given name only.
        ("Brown", "Angela", "", {
            "NCIS-A1": (EXACT, "normalized name equal", "alias 1"),
            "NCIS-A2": _in_part("given name, another surname"),
        }),
        ("Smith", "Bob", "", dict.fromkeys(["NCIS-A1", "NCIS-A2"], _in_part("surname, another given name"))),
        # Surname and given name, another middle name than the records' (a middle name asked is compared).
        ("Smith", "Angela", "Marie", dict.fromkeys(
            ["NCIS-A1", "NCIS-A2"], _in_part("surname and given name, another middle name")
        )),
        ("Smith", "", "", dict.fromkeys(["NCIS-A1", "NCIS-A2"], _in_part("surname, no given name asked"))),
    ],
)  # fmt: skip
def test_the_name_asked_agrees_wholly_or_in_part(
    index: Index, surname: str, given: str, middle: str, expected: dict[str, tuple[int, str, str]]
) -> None:
    _load(index)
    assert _named(_answer(_officer(index), "PA-26-202", surname, given, middle)) == expected


def test_the_office_table_says_so_before_the_records(index: Index, capsys: pytest.CaptureFixture[str]) -> None:
    _load(index)
    office = _officer(index)
    for number, (surname, given), line in [
        ("PA-26-203", ("Jones", "Bob"), NONE_LINE),
        ("PA-26-204", ("Smith", "Bob"), IN_PART_LINE),
        ("PA-26-205", ("Brown", "Angela"), None),  # one record agrees: the column says how each does
    ]:
        _print_answer(_answer(office, number, surname, given))
        table = capsys.readouterr().out
        assert (NONE_LINE in table, IN_PART_LINE in table) == (line == NONE_LINE, line == IN_PART_LINE)
        if line is not None:
            assert table.index(line) < table.index("Records with the SSN asked")
        assert "name asked" in table
    assert "alias 1" in table and "the same given name, another surname" in table


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("office")
    with server_process(root / "data", root / "pki", free_port(), "--demo", "2000", "--seed", "9"):
        yield root / "data" / "profiles"


def test_dcii_privacy_access_with_a_wrong_name(demo: Path) -> None:
    tracing = sample_subject(2000, 9)
    assert tracing.subject is not None
    office, ssn = demo / "privacy.json", tracing.subject.identifiers.ssn
    dcii("privacy", "open", "PA-2026-0077", "--kind", "access", "--received", "2026-11-20", profile=office)
    wrong = ["--surname", "Quillfeather", "--given", "Zebulon"]  # no demo person's name
    answer = json.loads(
        dcii("privacy", "access", "PA-2026-0077", *wrong, "--ssn", ssn, "--json", profile=office).stdout
    )
    assert tracing.key.record_number in {t["tracing"]["key"]["record_number"] for t in answer["tracings"]}
    for hit in answer["tracings"]:
        [name] = [x for x in hit["explanation"]["features"] if x["feature"] == "name"]
        assert name["agreement"] == "AGREEMENT_DISAGREE" and "agrees with none" in name["detail"]
    table = dcii("privacy", "access", "PA-2026-0077", *wrong, "--ssn", ssn, profile=office).stdout
    assert table.index(NONE_LINE) < table.index("Records with the SSN asked")
