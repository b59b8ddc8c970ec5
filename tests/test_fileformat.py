"""The tracing file format (indexer.fileformat, docs/TRACING_FORMAT.md): every type and action written as a
row and read back (one by one, through CSV and JSON Lines files, and as a property over generated tracings), the
example files, and the documentation's list of columns and codes.

How cell values are read and refused is in tests/test_fileformat_values.py; files as a whole (header, BOM, CRLF,
invalid bytes, bad lines, reject files, hostile bytes) in tests/test_fileformat_files.py."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from indexer.agencies import AGENCIES, NAC_TYPES, REQUESTER_CATEGORIES
from indexer.fileformat import (
    COLUMNS,
    ActionKind,
    FileAction,
    RowError,
    action_to_row,
    parse_row,
    read_actions,
    tracing_to_row,
    write_csv,
    write_jsonl,
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


def test_the_documentation_lists_every_column_and_code() -> None:
    doc = (EXAMPLES.parent / "TRACING_FORMAT.md").read_text(encoding="utf-8")
    for column in COLUMNS:
        assert f"| `{column}` |" in doc, column
    for code in AGENCIES:
        assert f"| `{code}` |" in doc, code
    for code in (*NAC_TYPES, *REQUESTER_CATEGORIES, *ClearanceLevel, *ImpersonalTitleKind, *NacOutcome):
        assert f"`{code}`" in doc, code


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
