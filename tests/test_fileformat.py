"""The tracing file format (indexer.fileformat, docs/TRACING_FORMAT.md)."""

from __future__ import annotations

import csv
import json
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indexer import fileformat
from indexer.agencies import AGENCIES, NAC_TYPES, REQUESTER_CATEGORIES
from indexer.fileformat import (
    COLUMNS,
    ERRORS_COLUMN,
    RAW_LINE_KEY,
    REJECT_COLUMNS,
    ActionKind,
    FileAction,
    RowError,
    action_to_row,
    parse_row,
    read_actions,
    reject_row,
    tracing_to_row,
    write_csv,
    write_jsonl,
    write_rejects,
)
from indexer.model import (
    ClearanceDetails,
    ClearanceLevel,
    Details,
    FileDetails,
    Identifiers,
    ImpersonalTitleDetails,
    ImpersonalTitleKind,
    NacHistoryDetails,
    NacOutcome,
    NacPendingDetails,
    OpenCaseDetails,
    PartialDate,
    PersonName,
    PlaceOfBirth,
    Subject,
    SubjectCategory,
    SubjectRole,
    Tracing,
    TracingKey,
    TracingType,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"


BASE_SUBJECT = Subject(
    name=PersonName("HARTWELL", "DONALD", "JAMES"),
    aliases=(PersonName("HARTWELL", "DON", "J"),),
    role=SubjectRole.SUBJECT,
    identifiers=Identifiers("123-45-6789", PartialDate(1968, 3, 14), PlaceOfBirth(us_state="VA", city="Norfolk")),
)


def _tracing(
    record: str, details: Details | None, subject: Subject | None = None, version: int = 1741010400
) -> Tracing:
    return Tracing(TracingKey("DSS", record), version, subject, details)


TRACINGS: dict[str, Tracing] = {
    "file": _tracing("PSI-1998-04417", FileDetails("DSS", 1998, "98-04417-PSI"), BASE_SUBJECT),
    "open_case": _tracing(
        "IC-2025-000731",
        OpenCaseDetails("Columbia MD Field Office", 2025, "25-000731-IC"),
        replace(
            BASE_SUBJECT,
            name=PersonName("BRANDT", "KLAUS", "PETER"),
            aliases=(),
            identifiers=Identifiers("345-67-8901", PartialDate(1979), PlaceOfBirth(country="DE", city="Berlin")),
        ),
    ),
    "nac_pending": _tracing(
        "NAC-2025-118204",
        NacPendingDetails("25-118204", "CONTRACTOR", "T3"),
        replace(BASE_SUBJECT, name=PersonName("NGUYEN", "THANH", "VAN"), identifiers=Identifiers("567-89-0123")),
    ),
    "nac_history": _tracing(
        "NACH-2012-044180",
        NacHistoryDetails(PartialDate(2012, 8, 30), ("FBI", "OPM", "DSS"), NacOutcome.INCOMPLETE, "ENTNAC"),
        replace(BASE_SUBJECT, role=SubjectRole.VICTIM, identifiers=Identifiers(date_of_birth=PartialDate(1993, 4))),
    ),
    "clearance": _tracing(
        "DISCO-0391177",
        ClearanceDetails(
            granted_on=PartialDate(2016, 3, 22),
            eligibility_level=ClearanceLevel.TOP_SECRET,
            access_level=ClearanceLevel.SECRET,
            access_granted_on=PartialDate(2016, 3, 22),
            basis_investigation_type="NACLC",
            basis_investigation_date=PartialDate(2015, 12, 4),
            subject_category=SubjectCategory.CONTRACTOR,
            separation_date=PartialDate(2024, 9, 30),
            files_used=("15-88012-PSI", "16-00431-PSI"),
        ),
        replace(
            BASE_SUBJECT,
            name=PersonName("WASHINGTON", "TYRONE", "LEE", "JR"),
            aliases=(PersonName("WASHINGTON", "TY", "L", "JR"), PersonName("WASHINGTON", "TYRONE")),
            role=SubjectRole.CROSS_REFERENCE,
        ),
    ),
    "clearance_sparse": _tracing("DISCO-1", ClearanceDetails(None, None, None), replace(BASE_SUBJECT, aliases=())),
    "impersonal_title": _tracing(
        "IT-1995-00213",
        ImpersonalTitleDetails(
            "ACME PRECISION OPTICS INC, DAYTON OH",
            ImpersonalTitleKind.CONTRACTOR_LOCATION,
            "DSS",
            "95-00213-IT",
            1995,
        ),
    ),
    # Names and values that the compact cell forms cannot carry fall back to JSON and still read back.
    "awkward": _tracing(
        "PSI-2",
        NacHistoryDetails(None, ("FBI;OPM", "[DSS]"), None),
        replace(
            BASE_SUBJECT,
            name=PersonName("DE LA CRUZ", "MARY ANN"),
            aliases=(PersonName("SMITH", "MARY ANN", "B"), PersonName("O,NEIL"), PersonName("", "", "X")),
            identifiers=Identifiers("", None, PlaceOfBirth(us_state="VA", country="US", city="Norfolk")),
        ),
        version=-5,
    ),
    "no_type": _tracing("PSI-3", None, replace(BASE_SUBJECT, identifiers=Identifiers())),
}


@pytest.mark.parametrize("name", sorted(TRACINGS))
def test_round_trip_each_type(name: str) -> None:
    tracing = TRACINGS[name]
    row = tracing_to_row(tracing)
    assert list(row) == list(COLUMNS)
    action = parse_row(row, 7)
    assert action == FileAction(7, ActionKind.UPSERT, tracing, tracing.key, tracing.source_version)


def test_every_type_is_covered() -> None:
    assert {t.type for t in TRACINGS.values()} == {*TracingType, None}


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_round_trip_through_files(tmp_path: Path, suffix: str) -> None:
    tracings = [t for name, t in TRACINGS.items() if name != "no_type"]
    complete = FileAction(
        0, ActionKind.COMPLETE, TRACINGS["file"], TRACINGS["file"].key, 1741010400, replaces=TracingKey("DSS", "IC-1")
    )
    delete = FileAction(0, ActionKind.DELETE, None, TracingKey("DSS", "DISCO-9"), 9, delete_reason="REVOKED")
    path = tmp_path / f"out{suffix}"
    rows = [*map(tracing_to_row, tracings), action_to_row(complete), action_to_row(delete)]
    if suffix == ".csv":
        write_csv(rows, path)
    else:
        write_jsonl(rows, path)
    actions = list(read_actions(path))
    assert all(isinstance(a, FileAction) for a in actions), actions
    parsed = [a for a in actions if isinstance(a, FileAction)]
    assert [a.tracing for a in parsed[: len(tracings)]] == tracings
    first_line = 2 if suffix == ".csv" else 1
    assert parsed[-2] == replace(complete, line=first_line + len(tracings))
    assert parsed[-1] == replace(delete, line=first_line + len(tracings) + 1)


def _fields(action: FileAction) -> tuple[object, ...]:
    return (
        action.line,
        action.kind,
        action.tracing,
        action.key,
        action.source_version,
        action.delete_reason,
        action.replaces,
    )


# --- the example files ---------------------------------------------------------------------------


def test_example_files_parse_without_errors() -> None:
    from_csv = list(read_actions(EXAMPLES / "tracings.csv"))
    from_jsonl = list(read_actions(EXAMPLES / "tracings.jsonl"))
    assert [a for a in (*from_csv, *from_jsonl) if isinstance(a, RowError)] == []
    assert len(from_csv) == len(from_jsonl) >= 12
    # The same actions in both forms (the CSV's lines are one later: its header).
    assert [_fields(a)[1:] for a in from_csv if isinstance(a, FileAction)] == [
        _fields(a)[1:] for a in from_jsonl if isinstance(a, FileAction)
    ]
    actions = [a for a in from_csv if isinstance(a, FileAction)]
    assert {a.tracing.type for a in actions if a.tracing is not None} == set(TracingType)
    assert {a.kind for a in actions} == set(ActionKind)
    for action in actions:
        if action.kind is ActionKind.COMPLETE:
            assert action.tracing is not None and action.replaces is not None
            assert action.tracing.type in (TracingType.FILE, TracingType.NAC_HISTORY)


# --- malformed values -----------------------------------------------------------------------------

BAD_VALUES = [
    ({"source_version": "12x34"}, "source_version"),
    ({"source_version": "99999999999999999999"}, "source_version"),
    ({"year_indexed": "nineteen98"}, "year_indexed"),
    ({"date_of_birth": "14/03/1968"}, "date_of_birth"),
    ({"date_of_birth": "1968-03-14-01"}, "date_of_birth"),
    ({"date_of_birth": "١٩٦٨"}, "date_of_birth"),
    ({"type": "FOO"}, "type"),
    ({"action": "MERGE"}, "action"),
    ({"role": "WITNESS"}, "role"),
    ({"type": "NAC_HISTORY", "outcome": "MAYBE"}, "outcome"),
    ({"type": "NAC_HISTORY", "completed_on": "last tuesday"}, "completed_on"),
    ({"type": "NAC_HISTORY", "agencies_checked": "[FBI"}, "agencies_checked"),
    ({"type": "CLEARANCE", "eligibility_level": "COSMIC"}, "eligibility_level"),
    ({"type": "CLEARANCE", "subject_category": "ALIEN"}, "subject_category"),
    ({"type": "CLEARANCE", "separation_date": "2024-9-30x"}, "separation_date"),
    ({"type": "IMPERSONAL_TITLE", "kind": "BUILDING", "surname": ""}, "kind"),
    ({"place_of_birth": "Virginia"}, "place_of_birth"),
    ({"place_of_birth": "US-/Norfolk"}, "place_of_birth"),
    ({"place_of_birth": "/Norfolk"}, "place_of_birth"),
    ({"place_of_birth": '{"state": "VA"}'}, "place_of_birth"),
    ({"aliases": "SMITH, JOHN, JR, EXTRA"}, "aliases"),
    ({"aliases": '[{"surname": "SMITH", "nickname": "JJ"}]'}, "aliases"),
]


@pytest.mark.parametrize(("cells", "column"), BAD_VALUES)
def test_malformed_value_names_its_column_and_not_its_value(cells: dict[str, str], column: str) -> None:
    row = {"type": "FILE", "agency": "DSS", "record_number": "R-1", "surname": "HARTWELL", **cells}
    result = parse_row(row, 4)
    assert isinstance(result, RowError)
    assert result.line == 4
    assert [v.field for v in result.violations] == [column]
    value = cells[column]
    assert all(value not in v.description for v in result.violations)
    assert result.raw == row


def test_malformed_jsonl_values(tmp_path: Path) -> None:
    lines = [
        {"type": "FILE", "source_version": 1.5},
        {"type": "FILE", "source_version": True},
        {"type": "FILE", "year_indexed": 2**40},
        {"type": "FILE", "ssn": 123456789},
        {"type": "FILE", "aliases": 7},
        {"type": "FILE", "aliases": [["SMITH"]]},
        {"type": "FILE", "place_of_birth": ["US-VA"]},
        {"type": "FILE", "place_of_birth": {"us_state": 51}},
        {"type": "NAC_HISTORY", "agencies_checked": ["FBI", 3]},
        {"type": "FILE", "surname": "X", "surnmae": "Y"},
    ]
    path = tmp_path / "bad.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    results = list(read_actions(path))
    expected = [
        "source_version", "source_version", "year_indexed", "ssn", "aliases", "aliases",
        "place_of_birth", "place_of_birth", "agencies_checked", "surnmae",
    ]  # fmt: skip
    assert [r.violations[0].field if isinstance(r, RowError) else None for r in results] == expected
    assert [r.line for r in results] == list(range(1, len(lines) + 1))
    # Raw keeps a structured value as JSON text, which the reader accepts back.
    assert isinstance(results[5], RowError) and results[5].raw["aliases"] == '[["SMITH"]]'


@pytest.mark.parametrize(
    ("cells", "column", "description"),
    [
        ({"type": "FILE", "outcome": "FAVORABLE"}, "outcome", "not used by type FILE"),
        ({"type": "IMPERSONAL_TITLE", "surname": "SMITH"}, "surname", "not used by type IMPERSONAL_TITLE"),
        ({"type": "IMPERSONAL_TITLE", "role": "SUBJECT"}, "role", "not used by type IMPERSONAL_TITLE"),
        ({"custodian": "DSS"}, "custodian", "needs a type"),
        ({"action": "DELETE", "surname": "SMITH"}, "surname", "not used by a DELETE"),
        ({"type": "FILE", "delete_reason": "REVOKED"}, "delete_reason", "used only by a DELETE"),
        (
            {"type": "FILE", "replaces_record_number": "IC-1"},
            "replaces_record_number",
            "used only by a COMPLETE",
        ),
        ({"action": "COMPLETE", "type": "FILE"}, "replaces_record_number", "required by a COMPLETE"),
        ({"action": "complete", "type": "OPEN_CASE", "replaces_record_number": "IC-1"}, "type", "a COMPLETE"),
    ],
)
def test_columns_that_do_not_belong(cells: dict[str, str], column: str, description: str) -> None:
    result = parse_row({"agency": "DSS", "record_number": "R-1", **cells}, 2)
    assert isinstance(result, RowError)
    assert [(v.field, v.description[: len(description)]) for v in result.violations] == [(column, description)]


def test_delete_and_complete_actions() -> None:
    delete = parse_row(
        {"action": "delete", "type": "CLEARANCE", "agency": "DSS", "record_number": "D-1",
         "source_version": "9", "delete_reason": "REVOKED"},
        3,
    )  # fmt: skip
    assert delete == FileAction(3, ActionKind.DELETE, None, TracingKey("DSS", "D-1"), 9, "REVOKED")
    row = {**tracing_to_row(TRACINGS["nac_history"]), "action": "COMPLETE", "replaces_record_number": "NAC-1"}
    complete = parse_row(row, 4)
    assert isinstance(complete, FileAction) and complete.kind is ActionKind.COMPLETE
    assert complete.tracing == TRACINGS["nac_history"]
    assert complete.replaces == TracingKey("DSS", "NAC-1")
    assert action_to_row(complete) == row


def test_blank_means_absent_and_defaults() -> None:
    result = parse_row({"type": " file ", "agency": " DSS ", "record_number": "R", "role": " ", "aliases": ""}, 1)
    assert isinstance(result, FileAction)
    assert result.kind is ActionKind.UPSERT and result.source_version == 0
    assert result.tracing == Tracing(TracingKey("DSS", "R"), 0, Subject(PersonName("")), FileDetails("", 0, ""))


# --- aliases and place of birth -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("SMITH, JOHN", (PersonName("SMITH", "JOHN"),)),
        ("SMITH", (PersonName("SMITH"),)),
        ("SMITH, JOHN ALLEN MARK; JONES , J ; ",
         (PersonName("SMITH", "JOHN", "ALLEN MARK"), PersonName("JONES", "J"))),
        ("SMITH, JOHN A, JR", (PersonName("SMITH", "JOHN", "A", "JR"),)),
        ("SMITH, , III", (PersonName("SMITH", suffix="III"),)),
        ('[{"surname": "SMITH", "given_name": "MARY ANN"}]', (PersonName("SMITH", "MARY ANN"),)),
        ('["SMITH, JOHN", "JONES"]', (PersonName("SMITH", "JOHN"), PersonName("JONES"))),
        ([{"surname": "SMITH", "given_name": "MARY ANN", "middle_name": None}],
         (PersonName("SMITH", "MARY ANN"),)),
        (["SMITH, JOHN A, JR", {"surname": "JONES", "suffix": "II"}],
         (PersonName("SMITH", "JOHN", "A", "JR"), PersonName("JONES", suffix="II"))),
        ([], ()),
    ],
)  # fmt: skip
def test_alias_forms(value: object, expected: tuple[PersonName, ...]) -> None:
    result = parse_row({"type": "FILE", "aliases": value}, 1)
    assert isinstance(result, FileAction) and result.tracing is not None and result.tracing.subject is not None
    assert result.tracing.subject.aliases == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("US-VA", PlaceOfBirth(us_state="VA")),
        ("US-VA/Norfolk", PlaceOfBirth(us_state="VA", city="Norfolk")),
        ("us-va / Virginia Beach", PlaceOfBirth(us_state="va", city="Virginia Beach")),
        ("DE", PlaceOfBirth(country="DE")),
        ("DE/Berlin", PlaceOfBirth(country="DE", city="Berlin")),
        ("US", PlaceOfBirth(country="US")),
        ("GB/Stratford/upon/Avon", PlaceOfBirth(country="GB", city="Stratford/upon/Avon")),
        ({"us_state": "VA", "city": "Norfolk"}, PlaceOfBirth(us_state="VA", city="Norfolk")),
        ({"country": "DE", "city": None}, PlaceOfBirth(country="DE")),
        ('{"country": "FR", "city": "Lyon"}', PlaceOfBirth(country="FR", city="Lyon")),
        ({}, None),
        ("", None),
    ],
)
def test_place_of_birth_forms(value: object, expected: PlaceOfBirth | None) -> None:
    result = parse_row({"type": "FILE", "place_of_birth": value}, 1)
    assert isinstance(result, FileAction) and result.tracing is not None and result.tracing.subject is not None
    assert result.tracing.subject.identifiers.place_of_birth == expected


def test_list_forms() -> None:
    for value in ("FBI;OPM; ;DSS", ["FBI", " OPM", "", "DSS"], '["FBI", "OPM", "DSS"]'):
        result = parse_row({"type": "NAC_HISTORY", "agencies_checked": value}, 1)
        assert isinstance(result, FileAction) and result.tracing is not None
        assert isinstance(result.tracing.details, NacHistoryDetails)
        assert result.tracing.details.agencies_checked == ("FBI", "OPM", "DSS")


# --- files: header, BOM, CRLF, invalid bytes, bad lines -------------------------------------------

HEADER = "action,type,agency,record_number,source_version,surname,given_name,date_of_birth,custodian"


def _csv_row(record: str, surname: str = "HARTWELL", dob: str = "1968-03-14") -> str:
    return f"UPSERT,FILE,DSS,{record},7,{surname},DONALD,{dob},DSS"


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _lines_and_kinds(results: list[FileAction | RowError]) -> list[tuple[int, str]]:
    return [(r.line, "ok" if isinstance(r, FileAction) else "error") for r in results]


def test_unknown_header_column_is_reported_once(tmp_path: Path) -> None:
    data = HEADER.replace("surname", "surnmae") + ",colour\n" + _csv_row("R-1") + ",red\n" + _csv_row("R-2") + ",b\n"
    results = list(read_actions(_write(tmp_path, "t.csv", data.encode())))
    assert len(results) == 1
    error = results[0]
    assert isinstance(error, RowError) and error.line == 1
    assert [(v.field, v.description) for v in error.violations] == [
        ("surnmae", "unknown column (did you mean surname?)"),
        ("header", "column 10 has an unknown name (not repeated here: it may be data)"),
    ]
    assert error.raw == {RAW_LINE_KEY: data.splitlines()[0]}


def test_headerless_csv_does_not_echo_its_first_row(tmp_path: Path) -> None:
    data = f"{_csv_row('R-1')},123-45-6789\n{_csv_row('R-2')},123-45-6789\n".encode()
    results = list(read_actions(_write(tmp_path, "t.csv", data)))
    assert len(results) == 1 and isinstance(results[0], RowError)
    said = " ".join(f"{v.field} {v.description}" for v in results[0].violations).lower()
    for value in ("hartwell", "donald", "1968", "123-45-6789", "r-1"):
        assert value not in said


def test_header_problems(tmp_path: Path) -> None:
    for header in ("action,type,type", "action,,type", "ac\xfftion,type"):
        data = (header + "\nUPSERT,FILE,FILE\n").encode("latin-1")
        results = list(read_actions(_write(tmp_path, "h.csv", data)))
        assert len(results) == 1 and isinstance(results[0], RowError), header
    # Trailing unnamed columns (a spreadsheet's habit) are dropped, and blank cells under them allowed.
    data = f"{HEADER},,\n{_csv_row('R-1')},,\n".encode()
    assert _lines_and_kinds(list(read_actions(_write(tmp_path, "t.csv", data)))) == [(2, "ok")]


def test_bom_and_crlf(tmp_path: Path) -> None:
    csv_data = ("\ufeff" + HEADER + "\r\n" + _csv_row("R-1") + "\r\n\r\n" + _csv_row("R-2") + "\r\n").encode()
    results = list(read_actions(_write(tmp_path, "t.csv", csv_data)))
    assert _lines_and_kinds(results) == [(2, "ok"), (4, "ok")]
    first = results[0]
    assert isinstance(first, FileAction) and first.tracing is not None
    assert first.tracing.details == FileDetails("DSS", 0, "")
    assert first.key == TracingKey("DSS", "R-1")
    jsonl = ("\ufeff" + '{"type": "FILE", "record_number": "R-1"}\r\n' + '{"type": "FILE"}\r\n').encode()
    results = list(read_actions(_write(tmp_path, "t.ndjson", jsonl)))
    assert _lines_and_kinds(results) == [(1, "ok"), (2, "ok")]


def test_invalid_utf8_line_is_a_row_error(tmp_path: Path) -> None:
    data = (
        (HEADER + "\n" + _csv_row("R-1") + "\n").encode()
        + _csv_row("R-2", surname="HART\xffWELL").encode("latin-1")
        + b"\n"
        + (_csv_row("R-3") + "\n").encode()
    )
    results = list(read_actions(_write(tmp_path, "t.csv", data)))
    assert _lines_and_kinds(results) == [(2, "ok"), (3, "error"), (4, "ok")]
    error = results[1]
    assert isinstance(error, RowError)
    assert [v.field for v in error.violations] == ["surname"]
    assert error.raw["surname"] == "HART\ufffdWELL"
    assert error.raw["record_number"] == "R-2"

    jsonl = b'{"type": "FILE"}\n{"type": "FILE", "surname": "HART\xc3WELL"}\n\xff\xfe{\n{"type": "FILE"}\n'
    results = list(read_actions(_write(tmp_path, "t.jsonl", jsonl)))
    assert _lines_and_kinds(results) == [(1, "ok"), (2, "error"), (3, "error"), (4, "ok")]
    assert isinstance(results[1], RowError) and results[1].violations[0].field == "surname"
    # A lone surrogate escaped in JSON is not text either.
    results = list(read_actions(_write(tmp_path, "u.jsonl", b'{"type": "FILE", "given_name": "A\\ud800"}\n')))
    assert isinstance(results[0], RowError) and results[0].violations[0].field == "given_name"
    json.dumps(results[0].raw, ensure_ascii=False).encode("utf-8")


def test_bad_rows_do_not_stop_the_good_ones(tmp_path: Path) -> None:
    csv_lines = [
        HEADER,
        _csv_row("R-1"),
        'UPSERT,FILE,DSS,"R-2,7,HARTWELL',  # unterminated quote: that line only
        _csv_row("R-3", dob="03/14/1968"),
        "UPSERT,FILE,DSS",  # too few fields
        _csv_row("R-5") + ",EXTRA",  # too many
        'UPSERT,FILE,DSS,"R-6"x,7,A,B,1968,DSS',  # text after a closing quote
        ",,,,,,,,",  # an empty row is skipped
        _csv_row("R-8"),
    ]
    results = list(read_actions(_write(tmp_path, "t.csv", "\n".join(csv_lines).encode())))
    assert _lines_and_kinds(results) == [(2, "ok"), (3, "error"), (4, "error"), (5, "error"), (6, "error"),
                                         (7, "error"), (9, "ok")]  # fmt: skip
    assert isinstance(results[1], RowError) and results[1].raw == {RAW_LINE_KEY: csv_lines[2]}
    jsonl_lines = [
        '{"type": "FILE", "record_number": "R-1"}',
        '{"type": "FILE", "record_number": ',
        '["not", "an", "object"]',
        "[" * 100_000 + "]" * 100_000,
        '{"type": "FILE", "type": "CLEARANCE"}',
        '{"type": "FILE", "Type": "CLEARANCE"}',
        "NaN",
        '{"type": "FILE", "record_number": "R-8"}',
    ]
    results = list(read_actions(_write(tmp_path, "t.jsonl", "\n".join(jsonl_lines).encode())))
    assert _lines_and_kinds(results) == [(1, "ok"), *((n, "error") for n in range(2, 8)), (8, "ok")]


def test_overlong_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fileformat, "MAX_LINE_BYTES", 200)
    data = f"{HEADER}\n{_csv_row('R-1')}\n{_csv_row('R-2', surname='X' * 5000)}\n{_csv_row('R-3')}\n".encode()
    results = list(read_actions(_write(tmp_path, "t.csv", data)))
    assert _lines_and_kinds(results) == [(2, "ok"), (3, "error"), (4, "ok")]
    jsonl = b'{"type": "FILE"}\n{"surname": "' + b"X" * 5000 + b'"}\n{"type": "FILE"}'
    results = list(read_actions(_write(tmp_path, "t.jsonl", jsonl)))
    assert _lines_and_kinds(results) == [(1, "ok"), (2, "error"), (3, "ok")]


def test_empty_files_and_unknown_extension(tmp_path: Path) -> None:
    assert list(read_actions(_write(tmp_path, "e.csv", b""))) == []
    assert list(read_actions(_write(tmp_path, "h.csv", (HEADER + "\n\n").encode()))) == []
    assert list(read_actions(_write(tmp_path, "e.jsonl", b"\n  \n"))) == []
    with pytest.raises(ValueError, match="must end in"):
        read_actions(tmp_path / "tracings.xlsx")


def test_reject_file_can_be_fixed_and_resubmitted(tmp_path: Path) -> None:
    lines = [HEADER, _csv_row("R-1"), _csv_row("R-2", dob="14/03/1968"), 'UPSERT,FILE,"DSS', _csv_row("R-4")]
    results = list(read_actions(_write(tmp_path, "in.csv", "\n".join(lines).encode())))
    errors = [r for r in results if isinstance(r, RowError)]
    assert reject_row(errors[0])[ERRORS_COLUMN] == "line 3: date_of_birth: not a date (YYYY, YYYY-MM or YYYY-MM-DD)"
    assert write_rejects(errors, tmp_path / "rejects.csv") == 2
    text = (tmp_path / "rejects.csv").read_text(encoding="utf-8")
    assert text.splitlines()[0] == ",".join(REJECT_COLUMNS)
    # The operator fixes the date, rewrites the unsplittable line into its columns, and resubmits.
    with (tmp_path / "rejects.csv").open(encoding="utf-8", newline="") as stream:
        rejected = list(csv.DictReader(stream))
    assert rejected[1][RAW_LINE_KEY] == 'UPSERT,FILE,"DSS'
    rejected[0]["date_of_birth"] = "1968-03-14"
    rejected[1].update(action="UPSERT", type="FILE", agency="DSS", record_number="R-3")
    write_csv(rejected, tmp_path / "fixed.csv", REJECT_COLUMNS)
    again = list(read_actions(tmp_path / "fixed.csv"))
    assert [(r.line, r.key.record_number) for r in again if isinstance(r, FileAction)] == [(2, "R-2"), (3, "R-3")]

    jsonl = b'{"type": "FILE", "date_of_birth": "1968/03/14"}\n{"type": \n'
    errors = [r for r in read_actions(_write(tmp_path, "in.jsonl", jsonl)) if isinstance(r, RowError)]
    assert write_rejects(errors, tmp_path / "rejects.jsonl") == 2
    written = [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_text(encoding="utf-8").splitlines()]
    assert written[0] == {"type": "FILE", "date_of_birth": "1968/03/14", ERRORS_COLUMN: written[0][ERRORS_COLUMN]}
    assert written[1][RAW_LINE_KEY] == '{"type": '
    with pytest.raises(ValueError, match="must end in"):
        write_rejects(errors, tmp_path / "rejects.txt")


def test_the_documentation_lists_every_column_and_code() -> None:
    doc = (EXAMPLES.parent / "TRACING_FORMAT.md").read_text(encoding="utf-8")
    for column in COLUMNS:
        assert f"| `{column}` |" in doc, column
    for code in AGENCIES:
        assert f"| `{code}` |" in doc, code
    for code in (*NAC_TYPES, *REQUESTER_CATEGORIES, *ClearanceLevel, *ImpersonalTitleKind, *NacOutcome):
        assert f"`{code}`" in doc, code


def test_writers_refuse_what_would_not_read_back(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not in the header"):
        write_csv([{"colour": "red"}], tmp_path / "x.csv")
    with pytest.raises(ValueError, match="line break"):
        write_csv([{"surname": "A\nB"}], tmp_path / "x.csv")
    assert write_jsonl([{"surname": "A\nB", "given_name": ""}], tmp_path / "x.jsonl") == 1
    assert (tmp_path / "x.jsonl").read_text(encoding="utf-8") == '{"surname":"A\\nB"}\n'


# --- properties -----------------------------------------------------------------------------------

_text = st.text(max_size=12).filter(lambda s: s == s.strip())
_dates = st.builds(
    lambda y, m, d: PartialDate(y, m, d if m else 0),
    st.integers(1000, 9999),
    st.integers(0, 12),
    st.integers(0, 28),
)
_names = st.builds(PersonName, _text, _text, _text, _text)
_items = st.lists(_text.filter(bool), max_size=3).map(tuple)
_places = st.builds(PlaceOfBirth, _text, _text, _text).filter(lambda p: bool(p.us_state or p.country or p.city))
_subjects = st.builds(
    Subject,
    _names,
    st.lists(_names, max_size=3).map(tuple),
    st.sampled_from(SubjectRole),
    st.builds(Identifiers, _text, st.none() | _dates, st.none() | _places),
)
_int32 = st.integers(-(2**31), 2**31 - 1)
_details = st.one_of(
    st.builds(FileDetails, _text, _int32, _text),
    st.builds(OpenCaseDetails, _text, _int32, _text),
    st.builds(NacPendingDetails, _text, _text, _text),
    st.builds(NacHistoryDetails, st.none() | _dates, _items, st.none() | st.sampled_from(NacOutcome), _text),
    st.builds(
        ClearanceDetails,
        *(
            st.none() | _dates,
            st.none() | st.sampled_from(ClearanceLevel),
            st.none() | st.sampled_from(ClearanceLevel),
        ),
        *(st.none() | _dates, _text, st.none() | _dates, st.none() | st.sampled_from(SubjectCategory)),
        *(st.none() | _dates, _items),
    ),
)


@st.composite
def _tracings(draw: st.DrawFn) -> Tracing:
    key = TracingKey(draw(_text), draw(_text))
    version = draw(st.integers(-(2**63), 2**63 - 1))
    if draw(st.booleans()):
        kinds = st.none() | st.sampled_from(ImpersonalTitleKind)
        return Tracing(key, version, None, draw(st.builds(ImpersonalTitleDetails, _text, kinds, _text, _text, _int32)))
    return Tracing(key, version, draw(_subjects), draw(st.none() | _details))


@settings(max_examples=300, deadline=None)
@given(_tracings())
def test_round_trip_property(tracing: Tracing) -> None:
    assert parse_row(tracing_to_row(tracing), 1) == FileAction(
        1, ActionKind.UPSERT, tracing, tracing.key, tracing.source_version
    )


_GOOD_LINES = [
    HEADER.encode(),
    _csv_row("R-1").encode(),
    b'{"type": "FILE", "aliases": [{"surname": "A"}], "place_of_birth": {"country": "DE"}}',
    b'UPSERT,NAC_HISTORY,DSS,R,1,"A, B",C,1970,"[""FBI""]"',
]
_fragments = st.one_of(
    st.binary(max_size=60),
    st.sampled_from(_GOOD_LINES),
    st.sampled_from(_GOOD_LINES).flatmap(
        lambda line: st.binary(max_size=8).map(lambda junk: line[:20] + junk + line[20:])
    ),
    st.sampled_from([b'"', b",", b"\xef\xbb\xbf", b"\r", b"\x00", b"[{", b"\\ud800", b"\xed\xa0\x80", b'"\\u0000"']),
)


def _results(data: bytes, suffix: str) -> Iterator[FileAction | RowError]:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / f"fuzz{suffix}"
        path.write_bytes(data)
        yield from read_actions(path)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(_fragments, max_size=12),
    st.sampled_from([b"\n", b"\r\n", b""]),
    st.sampled_from([".csv", ".jsonl"]),
)
def test_hostile_bytes_give_row_errors_never_exceptions(fragments: list[bytes], sep: bytes, suffix: str) -> None:
    data = (_GOOD_LINES[0] + b"\n" if suffix == ".csv" else b"") + sep.join(fragments)
    for result in _results(data, suffix):
        assert isinstance(result, FileAction | RowError)
        if isinstance(result, RowError):
            assert result.violations
            json.dumps(result.raw, ensure_ascii=False).encode("utf-8")
        else:
            json.dumps(action_to_row(result), ensure_ascii=False).encode("utf-8")
