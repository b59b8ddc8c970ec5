"""The edit criteria (DOMAIN.md "Edit criteria", seed 002).

"Online and batch edit criteria must be honored before any request or update takes effect: a malformed
update or query is refused as a whole, with a reason per field, and nothing partial is stored."

So every check here collects all violations before deciding, raises `InvalidArgument` with one
`Violation` per bad field (wire paths, e.g. "tracing.subject.identifiers.ssn"), and otherwise returns
the cleaned value (parts that needed no cleaning are the objects passed in, not copies: the models are
frozen): the only form in which a tracing, a name or identifiers go further. Field rules live
in `indexer.edit_rules`; this module knows which fields each tracing type has.
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Sequence

from indexer import edit_rules as rules
from indexer.agencies import AGENCIES, NAC_TYPES, REQUESTER_CATEGORIES, SUBMITTING_AGENCIES
from indexer.edit_criteria_names import clean_person_name
from indexer.exc import InvalidArgument
from indexer.model import (
    DETAILS_FIELD,
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
    PersonName,
    Subject,
    SubjectCategory,
    SubjectRole,
    Tracing,
    TracingKey,
    TracingType,
    Violation,
)
from indexer.retention import RETENTION_YEARS, due_on

MAX_ALIASES = 20
MAX_FILES_USED = 50
LOCATION_MAX = 80
TITLE_MAX = 120
# No impersonal title has been added since 19 April 1997; the index loads and corrects the legacy
# ones but refuses new ones. Only the year indexed is on the record, so the whole of 1997 passes.
LAST_IMPERSONAL_TITLE_YEAR = 1997
EARLIEST_NAC_YEAR = 1950

# Eligibility bounds access: access above the eligibility level is refused.
_LEVEL_RANK: dict[ClearanceLevel, int] = {
    ClearanceLevel.NONE: 0,
    ClearanceLevel.CONFIDENTIAL: 1,
    ClearanceLevel.SECRET: 2,
    ClearanceLevel.TOP_SECRET: 3,
    ClearanceLevel.TOP_SECRET_SCI: 4,
}


def _raise_if_any(violations: Sequence[Violation]) -> None:
    if violations:
        raise InvalidArgument(violations)


def check_name(name: PersonName, *, prefix: str, required_given: bool = False) -> PersonName:
    """A tracing subject's name or alias (surname required); cleaned, suffix canonical, a suffix keyed into
    the surname or given name moved to the suffix field (`indexer.edit_criteria_names`)."""
    cleaned, violations = clean_person_name(name, prefix, given_required=required_given)
    _raise_if_any(violations)
    return cleaned


def check_query_name(name: PersonName, prefix: str, surname_required: bool = True) -> PersonName:
    """A name in a search request: same character rules, given and middle names optional."""
    cleaned, violations = clean_person_name(name, prefix, surname_required=surname_required)
    _raise_if_any(violations)
    return cleaned


def check_identifiers(ids: Identifiers, *, today: dt.date, prefix: str) -> Identifiers:
    """Personal identifiers (of a tracing or a query); SSN compacted to 9 digits, codes uppercased."""
    cleaned, violations = rules.clean_identifiers(ids, prefix, today=today)
    _raise_if_any(violations)
    return cleaned


def check_key(key: TracingKey, path: str) -> TracingKey:
    """A key an action names without a tracing (a delete, the old record of a completion), cleaned as an
    upserted tracing's key is: the same spelling finds the same record, and a malformed one is refused."""
    out: list[Violation] = []
    agency = rules.code(key.agency, f"{path}.agency", out, allowed=SUBMITTING_AGENCIES, label="agency")
    record_number = rules.record_id(key.record_number, f"{path}.record_number", out, label="record number")
    _raise_if_any(out)
    return TracingKey(agency=agency, record_number=record_number)


def check_tracing(tracing: Tracing, *, today: dt.date, prefix: str = "tracing") -> Tracing:
    """The whole tracing, all violations at once; the cleaned copy is what may be stored."""
    out: list[Violation] = []
    key = tracing.key
    agency = rules.code(key.agency, f"{prefix}.key.agency", out, allowed=SUBMITTING_AGENCIES, label="agency")
    record_number = rules.record_id(key.record_number, f"{prefix}.key.record_number", out, label="record number")
    # Here and below, a part that is already clean is kept rather than copied: the copy would be equal,
    # and building frozen dataclasses costs time on every tracing ingested.
    if agency != key.agency or record_number != key.record_number or type(key) is not TracingKey:
        key = TracingKey(agency=agency, record_number=record_number)
    if tracing.source_version < 1:
        out.append(Violation(f"{prefix}.source_version", "source version must be 1 or more"))

    tracing_type = tracing.type
    subject = tracing.subject
    if tracing_type is None:
        # The oneof is named "kind" on the wire. Without a type the subject rule cannot be judged.
        out.append(
            Violation(
                f"{prefix}.kind",
                "a tracing type (file, open_case, nac_pending, nac_history, clearance or impersonal_title) is required",
            )
        )
    elif tracing_type is TracingType.IMPERSONAL_TITLE:
        if subject is not None:
            out.append(
                Violation(f"{prefix}.subject", "an impersonal title names no person and must not carry a subject")
            )
    elif subject is None:
        out.append(Violation(f"{prefix}.subject", "a subject is required for this tracing type"))
    if subject is not None:
        subject = _subject(subject, f"{prefix}.subject", out, today=today)

    details = tracing.details
    if details is not None and tracing_type is not None:
        details = _details(details, f"{prefix}.{DETAILS_FIELD[tracing_type]}", out, today=today)

    _raise_if_any(out)
    if key is tracing.key and subject is tracing.subject and details is tracing.details and type(tracing) is Tracing:
        return tracing
    return Tracing(key=key, source_version=tracing.source_version, subject=subject, details=details)


def _person_name(name: PersonName, path: str, out: list[Violation]) -> PersonName:
    """A subject's name or alias. Either part may stand alone: a person known by one name (a mononym, or a
    repository that lost the other part) is still a person to trace, and refusing the record would hide it.
    A suffix keyed into the surname or given name is moved to the suffix field, as queries do: the exact
    key of "Whitfield Jr" would otherwise never meet "Whitfield"."""
    cleaned, violations = clean_person_name(name, path, surname_required=False)
    out.extend(violations)
    if not violations and not cleaned.surname and not cleaned.given_name:
        out.append(Violation(f"{path}.surname", "a surname or a given name is required"))
    return cleaned


def _subject(subject: Subject, prefix: str, out: list[Violation], *, today: dt.date) -> Subject:
    name = _person_name(subject.name, f"{prefix}.name", out)
    aliases: list[PersonName] = []
    if len(subject.aliases) > MAX_ALIASES:  # refused whole: each judged, 150,000 made a 17 MB answer
        out.append(Violation(f"{prefix}.aliases", f"at most {MAX_ALIASES} aliases are accepted"))
    else:
        for index, alias in enumerate(subject.aliases):
            aliases.append(_person_name(alias, f"{prefix}.aliases[{index}]", out))
    role = rules.member(subject.role, SubjectRole, f"{prefix}.role", out, label="role")
    identifiers, violations = rules.clean_identifiers(subject.identifiers, f"{prefix}.identifiers", today=today)
    out.extend(violations)
    if (
        name is subject.name
        and role is subject.role
        and identifiers is subject.identifiers
        and type(subject.aliases) is tuple
        and all(map(operator.is_, aliases, subject.aliases))
        and type(subject) is Subject
    ):
        return subject  # already clean
    # An unknown role has been reported; the default only keeps the (never stored) copy well-typed.
    return Subject(name=name, aliases=tuple(aliases), role=role or SubjectRole.SUBJECT, identifiers=identifiers)


def _details(details: Details, prefix: str, out: list[Violation], *, today: dt.date) -> Details:
    match details:
        case FileDetails():
            return _file(details, prefix, out, today=today)
        case OpenCaseDetails():
            return _open_case(details, prefix, out, today=today)
        case NacPendingDetails():
            return _nac_pending(details, prefix, out)
        case NacHistoryDetails():
            return _nac_history(details, prefix, out, today=today)
        case ClearanceDetails():
            return _clearance(details, prefix, out, today=today)
        case ImpersonalTitleDetails():
            return _impersonal_title(details, prefix, out, today=today)


# Each detail type's fields are checked in their declaration order (the order of the violations), and the
# details are kept as they came when already clean (the year, dates and enum members come back as the
# very objects sent when valid; strings may come back as equal copies).


def _file(details: FileDetails, prefix: str, out: list[Violation], *, today: dt.date) -> FileDetails:
    custodian = rules.code(details.custodian, f"{prefix}.custodian", out, allowed=AGENCIES, label="custodian")
    year_indexed = rules.year(details.year_indexed, f"{prefix}.year_indexed", out, today=today)
    file_number = rules.record_id(details.file_number, f"{prefix}.file_number", out, label="file number")
    if custodian == details.custodian and file_number == details.file_number and type(details) is FileDetails:
        return details
    return FileDetails(custodian=custodian, year_indexed=year_indexed, file_number=file_number)


def _open_case(details: OpenCaseDetails, prefix: str, out: list[Violation], *, today: dt.date) -> OpenCaseDetails:
    location = rules.text(details.location, f"{prefix}.location", out, label="location", max_len=LOCATION_MAX)
    year_indexed = rules.year(details.year_indexed, f"{prefix}.year_indexed", out, today=today)
    number = rules.record_id(
        details.investigative_number, f"{prefix}.investigative_number", out, label="investigative number"
    )
    if location == details.location and number == details.investigative_number and type(details) is OpenCaseDetails:
        return details
    return OpenCaseDetails(location=location, year_indexed=year_indexed, investigative_number=number)


def _nac_pending(details: NacPendingDetails, prefix: str, out: list[Violation]) -> NacPendingDetails:
    case_number = rules.record_id(details.case_number, f"{prefix}.case_number", out, label="case number")
    requester_category = rules.code(
        details.requester_category,
        f"{prefix}.requester_category",
        out,
        allowed=REQUESTER_CATEGORIES,
        label="requester category",
    )
    nac_type = rules.code(details.nac_type, f"{prefix}.nac_type", out, allowed=NAC_TYPES, label="NAC type")
    if (
        case_number == details.case_number
        and requester_category == details.requester_category
        and nac_type == details.nac_type
        and type(details) is NacPendingDetails
    ):
        return details
    return NacPendingDetails(case_number=case_number, requester_category=requester_category, nac_type=nac_type)


def _nac_history(details: NacHistoryDetails, prefix: str, out: list[Violation], *, today: dt.date) -> NacHistoryDetails:
    completed_on = rules.date(
        details.completed_on,
        f"{prefix}.completed_on",
        out,
        today=today,
        label="completion date",
        required=True,
        min_year=EARLIEST_NAC_YEAR,
    )
    if completed_on is not None and completed_on.is_full and due_on(completed_on) < today:
        # Past its retention (DOMAIN.md: deleted 15 years after completion): stored, it would be disclosed
        # until the next sweep, and a reload would bring it back after every sweep. Refused from the day
        # after its due day in UTC (`today`): by then it is due everywhere (indexer.retention.retention_today,
        # the date at UTC-12); on the due day itself it may not be yet, and the next run removes it.
        out.append(
            Violation(
                f"{prefix}.completed_on",
                f"completed more than {RETENTION_YEARS} years ago: past its retention, a NAC history is not indexed",
            )
        )
    if not details.agencies_checked:
        out.append(Violation(f"{prefix}.agencies_checked", "at least one agency checked is required"))
    agencies: list[str] = []
    if len(details.agencies_checked) > len(AGENCIES):  # each listed once at most: refused whole
        out.append(Violation(f"{prefix}.agencies_checked", f"at most {len(AGENCIES)} agencies (each once)"))
    for index, raw in enumerate(details.agencies_checked[: len(AGENCIES)]):
        path = f"{prefix}.agencies_checked[{index}]"
        agency = rules.code(raw, path, out, allowed=AGENCIES, label="agency checked")
        if agency and agency in agencies:
            out.append(Violation(path, "agency checked is listed more than once"))
        agencies.append(agency)
    outcome = rules.member(details.outcome, NacOutcome, f"{prefix}.outcome", out, label="outcome")
    nac_type = rules.code(
        details.nac_type, f"{prefix}.nac_type", out, allowed=NAC_TYPES, label="NAC type", required=False
    )
    checked = tuple(agencies)
    if (
        completed_on is details.completed_on
        and checked == details.agencies_checked
        and outcome is details.outcome
        and nac_type == details.nac_type
        and type(details) is NacHistoryDetails
    ):
        return details
    return NacHistoryDetails(completed_on=completed_on, agencies_checked=checked, outcome=outcome, nac_type=nac_type)


def _clearance(details: ClearanceDetails, prefix: str, out: list[Violation], *, today: dt.date) -> ClearanceDetails:
    granted_on = rules.date(
        details.granted_on, f"{prefix}.granted_on", out, today=today, label="grant date", required=True
    )
    eligibility = rules.member(
        details.eligibility_level, ClearanceLevel, f"{prefix}.eligibility_level", out, label="eligibility level"
    )
    access = rules.member(details.access_level, ClearanceLevel, f"{prefix}.access_level", out, label="access level")
    if eligibility is not None and access is not None and _LEVEL_RANK[access] > _LEVEL_RANK[eligibility]:
        out.append(Violation(f"{prefix}.access_level", "access level must not exceed the eligibility level"))
    access_granted_on = rules.date(
        details.access_granted_on,
        f"{prefix}.access_granted_on",
        out,
        today=today,
        label="access grant date",
        required=False,
    )
    # Both are checked full, real dates here: comparing (year, month, day) is comparing the dates.
    if (
        granted_on is not None
        and access_granted_on is not None
        and (access_granted_on.year, access_granted_on.month, access_granted_on.day)
        < (granted_on.year, granted_on.month, granted_on.day)
    ):
        out.append(Violation(f"{prefix}.access_granted_on", "access cannot be granted before the clearance is"))
    if len(details.files_used) > MAX_FILES_USED:  # refused whole, without judging each
        out.append(Violation(f"{prefix}.files_used", f"at most {MAX_FILES_USED} files used are accepted"))
    files_used = tuple(
        rules.record_id(raw, f"{prefix}.files_used[{index}]", out, label="file number")
        for index, raw in enumerate(details.files_used[:MAX_FILES_USED])
    )
    basis_type = rules.code(
        details.basis_investigation_type,
        f"{prefix}.basis_investigation_type",
        out,
        allowed=NAC_TYPES,
        label="basis investigation type",
        required=False,
    )
    basis_date = rules.date(
        details.basis_investigation_date,
        f"{prefix}.basis_investigation_date",
        out,
        today=today,
        label="basis investigation date",
        required=False,
    )
    category = rules.member(
        details.subject_category, SubjectCategory, f"{prefix}.subject_category", out, label="subject category"
    )
    separation_date = rules.date(
        details.separation_date, f"{prefix}.separation_date", out, today=today, label="separation date", required=False
    )
    if (
        granted_on is details.granted_on
        and eligibility is details.eligibility_level
        and access is details.access_level
        and access_granted_on is details.access_granted_on
        and basis_type == details.basis_investigation_type
        and basis_date is details.basis_investigation_date
        and category is details.subject_category
        and separation_date is details.separation_date
        and files_used == details.files_used
        and type(details) is ClearanceDetails
    ):
        return details
    return ClearanceDetails(
        granted_on=granted_on,
        eligibility_level=eligibility,
        access_level=access,
        access_granted_on=access_granted_on,
        basis_investigation_type=basis_type,
        basis_investigation_date=basis_date,
        subject_category=category,
        separation_date=separation_date,
        files_used=files_used,
    )


def _impersonal_title(
    details: ImpersonalTitleDetails, prefix: str, out: list[Violation], *, today: dt.date
) -> ImpersonalTitleDetails:
    year_path = f"{prefix}.year_indexed"
    before = len(out)
    year_indexed = rules.year(details.year_indexed, year_path, out, today=today)
    if len(out) == before and year_indexed > LAST_IMPERSONAL_TITLE_YEAR:
        out.append(
            Violation(
                year_path,
                "new impersonal titles are not accepted: none have been added since "
                "19 April 1997 (year indexed must be 1997 or earlier)",
            )
        )
    return ImpersonalTitleDetails(
        title=rules.text(details.title, f"{prefix}.title", out, label="title", max_len=TITLE_MAX),
        kind=rules.member(details.kind, ImpersonalTitleKind, f"{prefix}.kind", out, label="kind"),
        custodian=rules.code(details.custodian, f"{prefix}.custodian", out, allowed=AGENCIES, label="custodian"),
        file_number=rules.record_id(details.file_number, f"{prefix}.file_number", out, label="file number"),
        year_indexed=year_indexed,
    )
