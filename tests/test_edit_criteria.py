"""Edit criteria (seed 002): every rule with a case that passes and the cases that must be refused.

Here the tracing as a whole: what passes and what cleaning does, key, type and subject, the type-specific
details, and the request judged as a whole (every violation at once, each named by its request field). The
subject's fields, and the checks queries use, are in tests/test_edit_criteria_subject.py, which takes the valid
tracing and the helpers defined here."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from indexer.edit_criteria import check_tracing
from indexer.exc import InvalidArgument
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
    Violation,
)

TODAY = dt.date(2025, 6, 15)

NAME = PersonName(surname="  de  la Cruz ", given_name="Jos\u00e9", middle_name="M.", suffix="jr.")
IDS = Identifiers(
    ssn="123-45-6789",
    date_of_birth=PartialDate(1970, 5, 12),
    place_of_birth=PlaceOfBirth(us_state="va", city="Norfolk"),
)
SUBJECT = Subject(name=NAME, aliases=(PersonName("Smith", "Jon"),), role=SubjectRole.SUBJECT, identifiers=IDS)
KEY = TracingKey(agency=" ncis ", record_number="R-2025/001")

FILE = FileDetails(custodian="army-irr", year_indexed=1998, file_number="F-123/45")
OPEN_CASE = OpenCaseDetails(location="Fort  Meade, MD", year_indexed=2020, investigative_number="OC-2020-001")
NAC_PENDING = NacPendingDetails(case_number="C-1", requester_category="contractor", nac_type="t3")
NAC_HISTORY = NacHistoryDetails(
    completed_on=PartialDate(2015, 3, 1),
    agencies_checked=("FBI", "opm", "DSS"),
    outcome=NacOutcome.FAVORABLE,
    nac_type="NACLC",
)
CLEARANCE = ClearanceDetails(
    granted_on=PartialDate(2010, 1, 15),
    eligibility_level=ClearanceLevel.TOP_SECRET,
    access_level=ClearanceLevel.SECRET,
    access_granted_on=PartialDate(2010, 2, 1),
    basis_investigation_type="SSBI",
    basis_investigation_date=PartialDate(2009, 11, 30),
    subject_category=SubjectCategory.MILITARY,
    separation_date=None,
    files_used=("F-1", "F-2"),
)
TITLE = ImpersonalTitleDetails(
    title="Acme  Widgets, Inc.",
    kind=ImpersonalTitleKind.CONTRACTOR_LOCATION,
    custodian="dss",
    file_number="IT-77",
    year_indexed=1995,
)


def tracing(details: Details | None = FILE, subject: Subject | None = SUBJECT, **changes: Any) -> Tracing:
    value = Tracing(key=KEY, source_version=1, subject=subject, details=details)
    return dataclasses.replace(value, **changes)


def title_tracing(**changes: Any) -> Tracing:
    return tracing(dataclasses.replace(TITLE, **changes), subject=None)


def with_ids(**changes: Any) -> Tracing:
    return tracing(subject=dataclasses.replace(SUBJECT, identifiers=dataclasses.replace(IDS, **changes)))


def with_role(role: Any) -> Subject:
    """A subject whose role is whatever a client sent (the model does not check)."""
    return dataclasses.replace(SUBJECT, role=role)


def violations(value: Tracing) -> tuple[Violation, ...]:
    with pytest.raises(InvalidArgument) as raised:
        check_tracing(value, today=TODAY)
    return raised.value.violations


def assert_refused(value: Tracing, path: str, reason: str) -> None:
    """Exactly one violation, on `path`, whose description says `reason`."""
    found = violations(value)
    assert [v.field for v in found] == [path], found
    assert reason.lower() in found[0].description.lower(), found[0].description


# --- whole tracings that pass, and what cleaning does -------------------------------------------------


@pytest.mark.parametrize("details", [FILE, OPEN_CASE, NAC_PENDING, NAC_HISTORY, CLEARANCE])
def test_valid_person_tracings_pass(details: Details) -> None:
    cleaned = check_tracing(tracing(details), today=TODAY)
    assert cleaned.type is not None
    assert cleaned.subject is not None


def test_legacy_impersonal_title_passes_and_is_cleaned() -> None:
    cleaned = check_tracing(title_tracing(), today=TODAY)
    assert cleaned.details == ImpersonalTitleDetails(
        title="Acme Widgets, Inc.",
        kind=ImpersonalTitleKind.CONTRACTOR_LOCATION,
        custodian="DSS",
        file_number="IT-77",
        year_indexed=1995,
    )
    assert cleaned.subject is None


def test_cleaning() -> None:
    cleaned = check_tracing(tracing(), today=TODAY)
    assert cleaned.key == TracingKey("NCIS", "R-2025/001")
    assert cleaned.subject is not None
    assert cleaned.subject.name == PersonName("de la Cruz", "Jos\u00e9", "M.", "JR")
    assert cleaned.subject.identifiers == Identifiers(
        ssn="123456789",
        date_of_birth=PartialDate(1970, 5, 12),
        place_of_birth=PlaceOfBirth("VA", "", "Norfolk"),
    )
    assert cleaned.details == FileDetails("ARMY-IRR", 1998, "F-123/45")


@pytest.mark.parametrize(
    ("details", "expected"),
    [
        (OPEN_CASE, OpenCaseDetails("Fort Meade, MD", 2020, "OC-2020-001")),
        (NAC_PENDING, NacPendingDetails("C-1", "CONTRACTOR", "T3")),
        (NAC_HISTORY, dataclasses.replace(NAC_HISTORY, agencies_checked=("FBI", "OPM", "DSS"))),
        (CLEARANCE, CLEARANCE),
    ],
)
def test_details_cleaning(details: Details, expected: Details) -> None:
    assert check_tracing(tracing(details), today=TODAY).details == expected


def test_enum_values_given_as_strings_become_members() -> None:
    subject = with_role("VICTIM")
    cleaned = check_tracing(tracing(subject=subject), today=TODAY)
    assert cleaned.subject is not None
    assert cleaned.subject.role is SubjectRole.VICTIM


# --- key, type, subject -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "path", "reason"),
    [
        (tracing(key=TracingKey("XYZ", "R-1")), "tracing.key.agency", "not a known code"),
        # FBI is checked during a NAC but owns no tracings.
        (tracing(key=TracingKey("FBI", "R-1")), "tracing.key.agency", "not a known code"),
        (tracing(key=TracingKey("", "R-1")), "tracing.key.agency", "required"),
        (tracing(key=TracingKey("NCIS", "")), "tracing.key.record_number", "required"),
        (tracing(key=TracingKey("NCIS", "R" * 41)), "tracing.key.record_number", "longer than 40"),
        (tracing(key=TracingKey("NCIS", "R 1")), "tracing.key.record_number", "may contain only"),
        (tracing(key=TracingKey("NCIS", "R#1")), "tracing.key.record_number", "may contain only"),
        (tracing(source_version=0), "tracing.source_version", "1 or more"),
        (tracing(details=None), "tracing.kind", "type"),
        (tracing(subject=None), "tracing.subject", "required"),
        (tracing(TITLE, subject=SUBJECT), "tracing.subject", "must not carry a subject"),
    ],
)
def test_key_type_and_subject_refused(value: Tracing, path: str, reason: str) -> None:
    assert_refused(value, path, reason)


def test_record_number_accepts_its_alphabet() -> None:
    value = tracing(key=TracingKey("NCIS", "Ab-9_/.:" + "x" * 32))
    assert check_tracing(value, today=TODAY).key.record_number == value.key.record_number


# --- type-specific details --------------------------------------------------------------------------


def case(base: Details, path: str, reason: str, **changes: Any) -> tuple[Tracing, str, str]:
    subject = None if isinstance(base, ImpersonalTitleDetails) else SUBJECT
    return tracing(dataclasses.replace(base, **changes), subject=subject), path, reason


FI, OC, NP, NH, CL, IT = (
    "tracing.file",
    "tracing.open_case",
    "tracing.nac_pending",
    "tracing.nac_history",
    "tracing.clearance",
    "tracing.impersonal_title",
)


@pytest.mark.parametrize(
    ("value", "path", "reason"),
    [
        case(FILE, f"{FI}.custodian", "not a known code", custodian="Army Records"),
        case(FILE, f"{FI}.custodian", "required", custodian=""),
        case(FILE, f"{FI}.year_indexed", "between 1900", year_indexed=1899),
        case(FILE, f"{FI}.year_indexed", "current year", year_indexed=2026),
        case(FILE, f"{FI}.file_number", "required", file_number=""),
        case(FILE, f"{FI}.file_number", "may contain only", file_number="F 1"),
        case(OPEN_CASE, f"{OC}.location", "required", location="  "),
        case(OPEN_CASE, f"{OC}.location", "longer than 80", location="L" * 81),
        case(OPEN_CASE, f"{OC}.location", "printable", location="Fort\x00Meade"),
        case(OPEN_CASE, f"{OC}.year_indexed", "between 1900", year_indexed=1800),
        case(OPEN_CASE, f"{OC}.investigative_number", "longer than 40", investigative_number="9" * 41),
        case(NAC_PENDING, f"{NP}.case_number", "may contain only", case_number="C#1"),
        case(NAC_PENDING, f"{NP}.requester_category", "not a known code", requester_category="STUDENT"),
        case(NAC_PENDING, f"{NP}.nac_type", "not a known code", nac_type="T9"),
        case(NAC_PENDING, f"{NP}.nac_type", "required", nac_type=""),
        case(NAC_HISTORY, f"{NH}.completed_on", "required", completed_on=None),
        case(NAC_HISTORY, f"{NH}.completed_on", "full date", completed_on=PartialDate(2015, 3)),
        case(NAC_HISTORY, f"{NH}.completed_on", "future", completed_on=PartialDate(2025, 6, 16)),
        case(NAC_HISTORY, f"{NH}.completed_on", "before 1950", completed_on=PartialDate(1949, 12, 31)),
        case(NAC_HISTORY, f"{NH}.completed_on", "not a real date", completed_on=PartialDate(2015, 2, 30)),
        case(NAC_HISTORY, f"{NH}.completed_on", "past its retention", completed_on=PartialDate(2010, 6, 14)),
        case(NAC_HISTORY, f"{NH}.agencies_checked", "at least one", agencies_checked=()),
        case(NAC_HISTORY, f"{NH}.agencies_checked[1]", "not a known code", agencies_checked=("FBI", "CIA")),
        case(NAC_HISTORY, f"{NH}.agencies_checked[2]", "more than once", agencies_checked=("FBI", "OPM", "fbi")),
        case(NAC_HISTORY, f"{NH}.outcome", "required", outcome=None),
        case(NAC_HISTORY, f"{NH}.outcome", "not a known value", outcome="MAYBE"),
        case(NAC_HISTORY, f"{NH}.nac_type", "not a known code", nac_type="BI"),
        case(CLEARANCE, f"{CL}.granted_on", "required", granted_on=None),
        case(CLEARANCE, f"{CL}.granted_on", "full date", granted_on=PartialDate(2010)),
        case(CLEARANCE, f"{CL}.granted_on", "future", granted_on=PartialDate(2030, 1, 1), access_granted_on=None),
        case(CLEARANCE, f"{CL}.eligibility_level", "required", eligibility_level=None),
        case(CLEARANCE, f"{CL}.access_level", "required", access_level=None),
        case(
            CLEARANCE,
            f"{CL}.access_level",
            "exceed the eligibility",
            eligibility_level=ClearanceLevel.SECRET,
            access_level=ClearanceLevel.TOP_SECRET,
        ),
        case(
            CLEARANCE,
            f"{CL}.access_level",
            "exceed the eligibility",
            eligibility_level=ClearanceLevel.NONE,
            access_level=ClearanceLevel.CONFIDENTIAL,
        ),
        case(CLEARANCE, f"{CL}.access_granted_on", "before the clearance", access_granted_on=PartialDate(2010, 1, 14)),
        case(CLEARANCE, f"{CL}.access_granted_on", "future", access_granted_on=PartialDate(2025, 12, 1)),
        case(CLEARANCE, f"{CL}.access_granted_on", "full date", access_granted_on=PartialDate(2010, 2)),
        case(CLEARANCE, f"{CL}.basis_investigation_type", "not a known code", basis_investigation_type="XBI"),
        case(CLEARANCE, f"{CL}.basis_investigation_date", "future", basis_investigation_date=PartialDate(2026, 1, 1)),
        case(
            CLEARANCE,
            f"{CL}.basis_investigation_date",
            "not a real date",
            basis_investigation_date=PartialDate(2009, 2, 29),
        ),
        case(CLEARANCE, f"{CL}.subject_category", "required", subject_category=None),
        case(CLEARANCE, f"{CL}.separation_date", "future", separation_date=PartialDate(2025, 6, 16)),
        case(CLEARANCE, f"{CL}.files_used", "at most 50", files_used=("F-1",) * 51),
        case(CLEARANCE, f"{CL}.files_used[2]", "may contain only", files_used=("F-1", "F-2", "F 3")),
        case(TITLE, f"{IT}.year_indexed", "19 April 1997", year_indexed=1998),
        case(TITLE, f"{IT}.year_indexed", "19 April 1997", year_indexed=2025),
        case(TITLE, f"{IT}.year_indexed", "between 1900", year_indexed=1850),
        case(TITLE, f"{IT}.title", "required", title=""),
        case(TITLE, f"{IT}.title", "longer than 120", title="T" * 121),
        case(TITLE, f"{IT}.kind", "required", kind=None),
        case(TITLE, f"{IT}.custodian", "not a known code", custodian="ACME"),
        case(TITLE, f"{IT}.file_number", "may contain only", file_number="IT 77"),
    ],
)
def test_details_refused(value: Tracing, path: str, reason: str) -> None:
    assert_refused(value, path, reason)


@pytest.mark.parametrize(
    "changes",
    [
        {"eligibility_level": ClearanceLevel.SECRET, "access_level": ClearanceLevel.SECRET},
        {"eligibility_level": ClearanceLevel.TOP_SECRET_SCI, "access_level": ClearanceLevel.NONE},
        {"access_granted_on": PartialDate(2010, 1, 15)},  # same day as the grant
        {"access_granted_on": None, "basis_investigation_type": "", "basis_investigation_date": None},
        {"separation_date": PartialDate(2020, 9, 30), "files_used": ("F-1",) * 50},
    ],
)
def test_clearance_accepted(changes: dict[str, Any]) -> None:
    check_tracing(tracing(dataclasses.replace(CLEARANCE, **changes)), today=TODAY)


@pytest.mark.parametrize("year_indexed", [1997, 1990, 1900])
def test_legacy_impersonal_titles_accepted(year_indexed: int) -> None:
    check_tracing(title_tracing(year_indexed=year_indexed), today=TODAY)


def test_a_nac_history_is_indexed_until_the_day_its_retention_ends_everywhere() -> None:
    """Refused from the day after its due day in UTC: on the due day itself (UTC's date) it is not yet due
    at UTC-12, where a day begins last (the retention review: a US office lost histories a day early)."""
    due_today = NacHistoryDetails(PartialDate(2010, 6, 15), ("FBI",), NacOutcome.FAVORABLE)
    assert check_tracing(tracing(due_today), today=TODAY).details == due_today  # the next run removes it
    with pytest.raises(InvalidArgument) as refused:
        check_tracing(tracing(dataclasses.replace(due_today, completed_on=PartialDate(2010, 6, 14))), today=TODAY)
    assert [v.field for v in refused.value.violations] == ["tracing.nac_history.completed_on"]


def test_nac_history_optional_nac_type() -> None:
    check_tracing(tracing(dataclasses.replace(NAC_HISTORY, nac_type="")), today=TODAY)


# --- the request is judged as a whole ---------------------------------------------------------------


def test_all_violations_reported_together() -> None:
    value = dataclasses.replace(
        with_ids(ssn="666-12-3456"),
        key=TracingKey("NOPE", "R-1"),
        details=dataclasses.replace(FILE, year_indexed=2099),
    )
    assert {v.field for v in violations(value)} == {
        "tracing.key.agency",
        "tracing.subject.identifiers.ssn",
        "tracing.file.year_indexed",
    }
    assert len(violations(value)) == 3


def test_many_violations_across_subject_and_details() -> None:
    subject = dataclasses.replace(
        SUBJECT,
        name=PersonName(""),
        aliases=(PersonName("X1"),),
        identifiers=Identifiers(ssn="1", date_of_birth=PartialDate(1970, 2, 30), place_of_birth=PlaceOfBirth()),
    )
    value = tracing(
        dataclasses.replace(CLEARANCE, granted_on=None, access_level=None), subject=subject, source_version=0
    )
    assert [v.field for v in violations(value)] == [
        "tracing.source_version",
        "tracing.subject.name.surname",
        "tracing.subject.aliases[0].surname",
        "tracing.subject.identifiers.ssn",
        "tracing.subject.identifiers.date_of_birth",
        "tracing.subject.identifiers.place_of_birth",
        "tracing.clearance.granted_on",
        "tracing.clearance.access_level",
    ]


def test_prefix_names_the_request_field() -> None:
    found = violations_with_prefix(tracing(source_version=0), "tracings[3]")
    assert [v.field for v in found] == ["tracings[3].source_version"]


def violations_with_prefix(value: Tracing, prefix: str) -> tuple[Violation, ...]:
    with pytest.raises(InvalidArgument) as raised:
        check_tracing(value, today=TODAY, prefix=prefix)
    return raised.value.violations
