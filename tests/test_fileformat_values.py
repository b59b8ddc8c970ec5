"""The tracing file format's cell values (indexer.fileformat, docs/TRACING_FORMAT.md; tests/test_fileformat.py
has the round trips): a malformed value named by its column and never quoted, in CSV cells and JSON Lines values,
columns that do not belong to the row's type or action, blank cells, and the forms aliases, place of birth and
lists may take."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from indexer.fileformat import ActionKind, FileAction, RowError, parse_row, read_actions
from indexer.model import FileDetails, NacHistoryDetails, PersonName, PlaceOfBirth, Subject, Tracing, TracingKey

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
