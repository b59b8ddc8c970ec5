"""Edit criteria (seed 002): every rule with a case that passes and the cases that must be refused."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from indexer.edit_criteria import check_identifiers, check_name, check_query_name, check_tracing
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


def with_name(**changes: Any) -> Tracing:
    return tracing(subject=dataclasses.replace(SUBJECT, name=dataclasses.replace(NAME, **changes)))


def with_ids(**changes: Any) -> Tracing:
    return tracing(subject=dataclasses.replace(SUBJECT, identifiers=dataclasses.replace(IDS, **changes)))


def with_pob(**changes: Any) -> Tracing:
    return with_ids(place_of_birth=PlaceOfBirth(**changes))


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


# --- names ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        PersonName("O'Brien"),
        PersonName("O\u2019Brien", "Se\u00e1n"),
        PersonName("Smith-Jones", "Mary Ann", "St. Clair", "III"),
        PersonName("Nguy\u1ec5n", "V\u0103n"),
        PersonName("\u0418\u0432\u0430\u043d\u043e\u0432", "\u0418\u0432\u0430\u043d"),
        PersonName("\u674e", "\u5c0f\u9f8d"),
        PersonName("\u0936\u0930\u094d\u092e\u093e"),  # Devanagari with a virama (a combining mark)
        PersonName("Zoe\u0308"),  # decomposed: stored composed
        PersonName("S" * 60, "G" * 60, "M" * 60),
    ],
)
def test_names_accepted(name: PersonName) -> None:
    check_tracing(with_name(**dataclasses.asdict(name)), today=TODAY)


@pytest.mark.parametrize(
    ("changes", "path", "reason"),
    [
        ({"surname": "", "given_name": ""}, "tracing.subject.name.surname", "a surname or a given name is required"),
        (
            {"surname": "   ", "given_name": " "},
            "tracing.subject.name.surname",
            "a surname or a given name is required",
        ),
        ({"surname": "S" * 61}, "tracing.subject.name.surname", "longer than 60"),
        ({"surname": "Smith4"}, "tracing.subject.name.surname", "digits"),
        ({"surname": "Sm\x00ith"}, "tracing.subject.name.surname", "control characters"),
        ({"surname": "Sm\x1fith"}, "tracing.subject.name.surname", "control characters"),
        ({"surname": "Sm\u200bith"}, "tracing.subject.name.surname", "control characters"),
        ({"surname": "Smith@home"}, "tracing.subject.name.surname", "only letters"),
        ({"surname": "Smith_Jones"}, "tracing.subject.name.surname", "only letters"),
        ({"surname": "- . '"}, "tracing.subject.name.surname", "at least one letter"),
        ({"given_name": "G" * 61}, "tracing.subject.name.given_name", "longer than 60"),
        ({"given_name": "J0hn"}, "tracing.subject.name.given_name", "digits"),
        ({"middle_name": "\u0661"}, "tracing.subject.name.middle_name", "digits"),  # Arabic-Indic one
        ({"middle_name": "Q;"}, "tracing.subject.name.middle_name", "only letters"),
        ({"suffix": "Esq."}, "tracing.subject.name.suffix", "one of JR"),
        ({"suffix": "J@R"}, "tracing.subject.name.suffix", "one of JR"),
        ({"suffix": "J\x07R"}, "tracing.subject.name.suffix", "control characters"),
    ],
)
def test_names_refused(changes: dict[str, Any], path: str, reason: str) -> None:
    assert_refused(with_name(**changes), path, reason)


@pytest.mark.parametrize(
    ("suffix", "canonical"),
    [("Jr.", "JR"), ("J.R.", "JR"), ("senior", "SR"), ("2nd", "II"), (" iii ", "III"), ("", "")],
)
def test_suffix_stored_canonical(suffix: str, canonical: str) -> None:
    assert check_name(PersonName("Smith", suffix=suffix), prefix="n").suffix == canonical


def test_alias_paths() -> None:
    aliases = (PersonName("Smith"), PersonName("Smyth", "J0n"), PersonName(""))
    found = violations(tracing(subject=dataclasses.replace(SUBJECT, aliases=aliases)))
    assert [v.field for v in found] == [
        "tracing.subject.aliases[1].given_name",
        "tracing.subject.aliases[2].surname",
    ]


def test_at_most_20_aliases() -> None:
    ok = dataclasses.replace(SUBJECT, aliases=(PersonName("Smith"),) * 20)
    check_tracing(tracing(subject=ok), today=TODAY)
    assert_refused(
        tracing(subject=dataclasses.replace(SUBJECT, aliases=(PersonName("Smith"),) * 21)),
        "tracing.subject.aliases",
        "at most 20",
    )


def test_unknown_role_refused() -> None:
    assert_refused(tracing(subject=with_role("WITNESS")), "tracing.subject.role", "role")


# --- SSN --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ssn", "reason"),
    [
        ("000-12-3456", "area 000 is never issued"),
        ("666-12-3456", "area 666 is never issued"),
        ("900-12-3456", "areas 900-999 are never issued"),
        ("999-12-3456", "areas 900-999 are never issued"),
        ("123-00-4567", "group 00 is never issued"),
        ("123-45-0000", "serial 0000 is never issued"),
        ("078-05-1120", "advertising"),  # the Woolworth wallet card
        ("219-09-9999", "advertising"),
        ("457-55-5462", "advertising"),
        ("12345678", "9 digits"),
        ("1234567890", "9 digits"),
        ("123-45-678X", "9 digits"),
        ("---", "9 digits"),
        ("\u0661\u0662\u0663456789", "9 digits"),  # Arabic-Indic digits are not SSN digits
    ],
)
def test_ssn_refused(ssn: str, reason: str) -> None:
    assert_refused(with_ids(ssn=ssn), "tracing.subject.identifiers.ssn", reason)
    with pytest.raises(InvalidArgument):
        check_identifiers(Identifiers(ssn=ssn), today=TODAY, prefix="q")


def test_ssn_several_reasons_in_one_violation() -> None:
    found = violations(with_ids(ssn="000-00-0000"))
    assert [v.field for v in found] == ["tracing.subject.identifiers.ssn"]
    for reason in ("area 000", "group 00", "serial 0000"):
        assert reason in found[0].description


@pytest.mark.parametrize(
    ("ssn", "cleaned"),
    [
        ("123-45-6789", "123456789"),
        ("123 45 6789", "123456789"),
        (" 123456789 ", "123456789"),
        ("123\u201345\u20146789", "123456789"),  # en and em dashes
        ("\uff11\uff12\uff13-45-6789", "123456789"),  # full-width digits, as some keyboards type them
        ("", ""),
        ("   ", ""),
    ],
)
def test_ssn_cleaned(ssn: str, cleaned: str) -> None:
    assert check_identifiers(Identifiers(ssn=ssn), today=TODAY, prefix="q").ssn == cleaned


# --- date of birth ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dob",
    [
        PartialDate(2000, 2, 29),  # leap year (divisible by 400)
        PartialDate(2024, 2, 29),
        PartialDate(1970),  # year only
        PartialDate(1970, 5),  # year and month
        PartialDate(2025, 6),  # partial that begins before today
        PartialDate(2025),
        PartialDate(2025, 6, 15),  # today
        PartialDate(1880, 1, 1),
    ],
)
def test_date_of_birth_accepted(dob: PartialDate) -> None:
    cleaned = check_identifiers(Identifiers(date_of_birth=dob), today=TODAY, prefix="q")
    assert cleaned.date_of_birth == dob


@pytest.mark.parametrize(
    ("dob", "reason"),
    [
        (PartialDate(2023, 2, 29), "not a real date"),  # not a leap year
        (PartialDate(1900, 2, 29), "not a real date"),  # century, not a leap year
        (PartialDate(1970, 2, 30), "not a real date"),
        (PartialDate(1970, 4, 31), "not a real date"),
        (PartialDate(1970, 13), "between 1 and 12"),
        (PartialDate(1970, 0, 5), "day but no month"),
        (PartialDate(1879, 12, 31), "before 1880"),
        (PartialDate(2025, 6, 16), "future"),
        (PartialDate(2025, 7), "future"),  # partial: its first day is after today
        (PartialDate(2026), "future"),
        (PartialDate(12000), "future"),
    ],
)
def test_date_of_birth_refused(dob: PartialDate, reason: str) -> None:
    assert_refused(with_ids(date_of_birth=dob), "tracing.subject.identifiers.date_of_birth", reason)


# --- place of birth ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"us_state": "va"}, PlaceOfBirth("VA")),
        ({"us_state": "PR", "city": "San Juan"}, PlaceOfBirth("PR", "", "San Juan")),
        ({"us_state": "DC"}, PlaceOfBirth("DC")),
        ({"country": "de", "city": "M\u00fcnchen"}, PlaceOfBirth("", "DE", "M\u00fcnchen")),
        ({"country": "BR", "city": "S\u00e3o  Paulo"}, PlaceOfBirth("", "BR", "S\u00e3o Paulo")),
        ({"country": "IE", "city": "St. Mary's-Cork"}, PlaceOfBirth("", "IE", "St. Mary's-Cork")),
    ],
)
def test_place_of_birth_accepted(changes: dict[str, str], expected: PlaceOfBirth) -> None:
    cleaned = check_identifiers(Identifiers(place_of_birth=PlaceOfBirth(**changes)), today=TODAY, prefix="q")
    assert cleaned.place_of_birth == expected


POB = "tracing.subject.identifiers.place_of_birth"


@pytest.mark.parametrize(
    ("changes", "path", "reason"),
    [
        ({"us_state": "VA", "country": "DE"}, POB, "not both"),
        ({}, POB, "set us_state"),
        ({"city": "Paris"}, POB, "set us_state"),
        ({"us_state": "AE"}, f"{POB}.us_state", "military mail"),
        ({"us_state": "AA"}, f"{POB}.us_state", "military mail"),
        ({"us_state": "ap"}, f"{POB}.us_state", "military mail"),
        ({"us_state": "ZZ"}, f"{POB}.us_state", "USPS"),
        ({"country": "US"}, f"{POB}.country", "us_state"),
        ({"country": "pr"}, f"{POB}.country", "us_state"),
        ({"country": "XX"}, f"{POB}.country", "ISO 3166-1"),
        ({"country": "DEU"}, f"{POB}.country", "ISO 3166-1"),
        ({"country": "DE", "city": "Berlin 10"}, f"{POB}.city", "digits"),
        ({"country": "DE", "city": "C" * 61}, f"{POB}.city", "longer than 60"),
    ],
)
def test_place_of_birth_refused(changes: dict[str, str], path: str, reason: str) -> None:
    assert_refused(with_pob(**changes), path, reason)


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


@pytest.mark.parametrize(
    "ssn",
    ["078-05-1120", "000-12-3456", "666-55-4444", "987-65-4321", "123-00-4567", "123-45-0000", "12345678"],
)
def test_messages_never_carry_the_ssn(ssn: str) -> None:
    found = violations(with_ids(ssn=ssn))
    digits = ssn.replace("-", "")
    for violation in found:
        assert ssn not in violation.description
        assert digits not in violation.description
        if not digits.endswith("0000"):  # "serial 0000 is never issued" names the rule, not the number
            assert digits[-4:] not in violation.description


@pytest.mark.parametrize(
    "changes",
    [
        {"surname": "Zzyzx4"},
        {"surname": "Qwerty@Zzyzx"},
        {"given_name": "Bartholomew" * 6},
        {"middle_name": "Xq\x00"},
        {"suffix": "Esquire"},
    ],
)
def test_messages_never_carry_the_name(changes: dict[str, str]) -> None:
    found = violations(with_name(**changes))
    assert found
    (value,) = changes.values()
    for violation in found:
        assert value.lower() not in violation.description.lower()
        assert value.strip("\x00@4").lower() not in violation.description.lower()


def test_messages_never_carry_the_date_of_birth() -> None:
    (violation,) = violations(with_ids(date_of_birth=PartialDate(1971, 2, 30)))
    assert "1971" not in violation.description
    assert "30" not in violation.description


# --- checks used by queries -------------------------------------------------------------------------


def test_check_name() -> None:
    assert check_name(PersonName(" Smith ", "John"), prefix="q.name") == PersonName("Smith", "John")
    with pytest.raises(InvalidArgument) as raised:
        check_name(PersonName("Smith"), prefix="q.name", required_given=True)
    assert [v.field for v in raised.value.violations] == ["q.name.given_name"]


@pytest.mark.parametrize(
    ("name", "surname_required", "paths"),
    [
        (PersonName("Smith"), True, []),
        (PersonName("Smith", "J"), True, []),
        (PersonName("", "John"), False, []),
        (PersonName("", "John"), True, ["query.name.surname"]),
        (PersonName("Sm1th", "J0hn"), True, ["query.name.surname", "query.name.given_name"]),
        (PersonName("Smith", suffix="Esq"), True, ["query.name.suffix"]),
    ],
)
def test_check_query_name(name: PersonName, surname_required: bool, paths: list[str]) -> None:
    if not paths:
        assert check_query_name(name, "query.name", surname_required=surname_required).surname == name.surname
        return
    with pytest.raises(InvalidArgument) as raised:
        check_query_name(name, "query.name", surname_required=surname_required)
    assert [v.field for v in raised.value.violations] == paths


def test_check_identifiers_collects_all() -> None:
    ids = Identifiers(ssn="000-00-0001", date_of_birth=PartialDate(2099), place_of_birth=PlaceOfBirth("AE"))
    with pytest.raises(InvalidArgument) as raised:
        check_identifiers(ids, today=TODAY, prefix="query.identifiers")
    assert [v.field for v in raised.value.violations] == [
        "query.identifiers.ssn",
        "query.identifiers.date_of_birth",
        "query.identifiers.place_of_birth.us_state",
    ]
