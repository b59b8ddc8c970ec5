"""Wire messages (dcii.v1) to the domain model and back.

Conversion never refuses: whatever the client sent becomes a model, and the edit criteria judge it,
so that every problem is reported with its field path in one answer.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any, TypeVar, cast

from google.protobuf import timestamp_pb2
from google.type import date_pb2

from dcii.v1 import ingest_pb2, search_pb2, tracing_pb2
from indexer import model as m
from indexer.model import PartialDate, PersonName

_E = TypeVar("_E", bound=StrEnum)


def _enum_in(enum: type[_E], proto_name: str, prefix: str) -> _E | None:
    """`CLEARANCE_LEVEL_SECRET` -> ClearanceLevel.SECRET; UNSPECIFIED (or unknown) -> None."""
    name = proto_name.removeprefix(prefix)
    return enum.__members__.get(name)


def enum_name(wrapper: Any, value: int) -> str:
    """The name of an enum value; "" for a number this contract does not define (proto3 lets those through)."""
    try:
        return str(wrapper.Name(value))
    except ValueError:
        return ""


def _enum_table(wrapper: Any, enum: type[_E], prefix: str) -> dict[int, _E]:
    """Wire number -> model member, for every number `_enum_in(enum, enum_name(wrapper, n), prefix)` maps to a
    member. Built once: looking a name up through the descriptor costs microseconds, and tracing_in runs for
    every ingested tracing. A number missing from the table (UNSPECIFIED, or one the contract does not
    define) is None, as before."""
    table: dict[int, _E] = {}
    for value in wrapper.DESCRIPTOR.values:
        member = _enum_in(enum, enum_name(wrapper, value.number), prefix)
        if member is not None:
            table[value.number] = member
    return table


_ROLES = _enum_table(tracing_pb2.SubjectRole, m.SubjectRole, "SUBJECT_ROLE_")
_NAC_OUTCOMES = _enum_table(tracing_pb2.NacOutcome, m.NacOutcome, "NAC_OUTCOME_")
_LEVELS = _enum_table(tracing_pb2.ClearanceLevel, m.ClearanceLevel, "CLEARANCE_LEVEL_")
_CATEGORIES = _enum_table(tracing_pb2.SubjectCategory, m.SubjectCategory, "SUBJECT_CATEGORY_")
_TITLE_KINDS = _enum_table(tracing_pb2.ImpersonalTitleKind, m.ImpersonalTitleKind, "IMPERSONAL_TITLE_KIND_")
_TYPES = _enum_table(tracing_pb2.TracingType, m.TracingType, "TRACING_TYPE_")


def _date_in(message: date_pb2.Date, present: bool) -> m.PartialDate | None:
    return PartialDate(message.year, message.month, message.day) if present else None


def _name_in(name: tracing_pb2.PersonName) -> m.PersonName:
    return PersonName(name.surname, name.given_name, name.middle_name, name.suffix)


def identifiers_in(ids: tracing_pb2.PersonalIdentifiers) -> m.Identifiers:
    if ids.HasField("date_of_birth"):
        dob = ids.date_of_birth
        date_of_birth: m.PartialDate | None = PartialDate(dob.year, dob.month, dob.day)
    else:
        date_of_birth = None
    if ids.HasField("place_of_birth"):
        pob = ids.place_of_birth
        place_of_birth: m.PlaceOfBirth | None = m.PlaceOfBirth(pob.us_state, pob.country, pob.city)
    else:
        place_of_birth = None
    return m.Identifiers(ssn=ids.ssn, date_of_birth=date_of_birth, place_of_birth=place_of_birth)


def output_only_violations(ids: tracing_pb2.PersonalIdentifiers, at: str) -> list[m.Violation]:
    """`ssn_last_four` is the index's answer, never a request's: sent in, it was ignored without a word (a
    query narrowed by it was not narrowed; a tracing sent with it alone was stored without an SSN)."""
    if not ids.ssn_last_four:
        return []
    why = "output only (set in answers when the full SSN is withheld): send the full number in ssn"
    return [m.Violation(f"{at}.ssn_last_four", why)]


def name_in(name: tracing_pb2.PersonName) -> m.PersonName:
    return _name_in(name)


def key_in(key: tracing_pb2.TracingKey) -> m.TracingKey:
    return m.TracingKey(key.agency, key.record_number)


def _role_in(number: int) -> m.SubjectRole:
    if number == tracing_pb2.SUBJECT_ROLE_UNSPECIFIED:
        return m.SubjectRole.SUBJECT  # the common case: the person the file is about
    # A number this contract does not define reaches the edit criteria as it is, and they refuse it: taken
    # for SUBJECT, a victim or a cross-reference became the subject of the investigation.
    return _ROLES.get(number) or cast(m.SubjectRole, str(number))


def _subject_in(subject: tracing_pb2.Subject) -> m.Subject:
    name = subject.name
    aliases = subject.aliases
    return m.Subject(
        name=PersonName(name.surname, name.given_name, name.middle_name, name.suffix),
        aliases=tuple([_name_in(a) for a in aliases]) if aliases else (),
        role=_role_in(subject.role),
        identifiers=identifiers_in(subject.identifiers),
    )


def _details_in(t: tracing_pb2.Tracing) -> m.Details | None:
    match t.WhichOneof("kind"):
        case "file":
            f = t.file
            return m.FileDetails(f.custodian, f.year_indexed, f.file_number)
        case "open_case":
            o = t.open_case
            return m.OpenCaseDetails(o.location, o.year_indexed, o.investigative_number)
        case "nac_pending":
            p = t.nac_pending
            return m.NacPendingDetails(p.case_number, p.requester_category, p.nac_type)
        case "nac_history":
            h = t.nac_history
            return m.NacHistoryDetails(
                completed_on=_date_in(h.completed_on, h.HasField("completed_on")),
                agencies_checked=tuple(h.agencies_checked),
                outcome=_NAC_OUTCOMES.get(h.outcome),
                nac_type=h.nac_type,
            )
        case "clearance":
            c = t.clearance
            return m.ClearanceDetails(
                granted_on=_date_in(c.granted_on, c.HasField("granted_on")),
                eligibility_level=_LEVELS.get(c.eligibility_level),
                access_level=_LEVELS.get(c.access_level),
                access_granted_on=_date_in(c.access_granted_on, c.HasField("access_granted_on")),
                basis_investigation_type=c.basis_investigation_type,
                basis_investigation_date=_date_in(c.basis_investigation_date, c.HasField("basis_investigation_date")),
                subject_category=_CATEGORIES.get(c.subject_category),
                separation_date=_date_in(c.separation_date, c.HasField("separation_date")),
                files_used=tuple(c.files_used),
            )
        case "impersonal_title":
            i = t.impersonal_title
            return m.ImpersonalTitleDetails(
                i.title, _TITLE_KINDS.get(i.kind), i.custodian, i.file_number, i.year_indexed
            )
    return None


def tracing_in(t: tracing_pb2.Tracing) -> m.Tracing:
    key = t.key
    return m.Tracing(
        m.TracingKey(key.agency, key.record_number),
        t.source_version,
        _subject_in(t.subject) if t.HasField("subject") else None,
        _details_in(t),
    )


# ---- model to wire ----


def _date_out(value: m.PartialDate | None, target: date_pb2.Date) -> None:
    if value is not None:
        target.year, target.month, target.day = value.year, value.month, value.day


def _name_out(name: m.PersonName, target: tracing_pb2.PersonName) -> None:
    target.surname, target.given_name = name.surname, name.given_name
    target.middle_name, target.suffix = name.middle_name, name.suffix


def _subject_out(subject: m.Subject, target: tracing_pb2.Subject, *, full_ssn: bool) -> None:
    _name_out(subject.name, target.name)
    for alias in subject.aliases:
        _name_out(alias, target.aliases.add())
    target.role = tracing_pb2.SubjectRole.Value(f"SUBJECT_ROLE_{subject.role.value}")
    ids, out = subject.identifiers, target.identifiers
    if ids.ssn:
        # Minimum disclosure (seed 003): the last four unless the caller's role needs the number.
        if full_ssn:
            out.ssn = ids.ssn
        else:
            out.ssn_last_four = ids.ssn[-4:]
    _date_out(ids.date_of_birth, out.date_of_birth)
    if ids.place_of_birth is not None:
        pob = ids.place_of_birth
        out.place_of_birth.us_state, out.place_of_birth.country = pob.us_state, pob.country
        out.place_of_birth.city = pob.city


def _enum_out(prefix: str, value: StrEnum | None) -> str:
    return f"{prefix}{value.value}" if value is not None else f"{prefix}UNSPECIFIED"


def _details_out(details: m.Details, t: tracing_pb2.Tracing) -> None:
    match details:
        case m.FileDetails():
            t.file.custodian, t.file.year_indexed = details.custodian, details.year_indexed
            t.file.file_number = details.file_number
        case m.OpenCaseDetails():
            t.open_case.location, t.open_case.year_indexed = details.location, details.year_indexed
            t.open_case.investigative_number = details.investigative_number
        case m.NacPendingDetails():
            t.nac_pending.case_number = details.case_number
            t.nac_pending.requester_category, t.nac_pending.nac_type = details.requester_category, details.nac_type
        case m.NacHistoryDetails():
            h = t.nac_history
            _date_out(details.completed_on, h.completed_on)
            h.agencies_checked.extend(details.agencies_checked)
            h.outcome = tracing_pb2.NacOutcome.Value(_enum_out("NAC_OUTCOME_", details.outcome))
            h.nac_type = details.nac_type
        case m.ClearanceDetails():
            c = t.clearance
            level = tracing_pb2.ClearanceLevel.Value
            _date_out(details.granted_on, c.granted_on)
            c.eligibility_level = level(_enum_out("CLEARANCE_LEVEL_", details.eligibility_level))
            c.access_level = level(_enum_out("CLEARANCE_LEVEL_", details.access_level))
            _date_out(details.access_granted_on, c.access_granted_on)
            c.basis_investigation_type = details.basis_investigation_type
            _date_out(details.basis_investigation_date, c.basis_investigation_date)
            c.subject_category = tracing_pb2.SubjectCategory.Value(
                _enum_out("SUBJECT_CATEGORY_", details.subject_category)
            )
            _date_out(details.separation_date, c.separation_date)
            c.files_used.extend(details.files_used)
        case m.ImpersonalTitleDetails():
            i = t.impersonal_title
            i.title, i.custodian, i.file_number = details.title, details.custodian, details.file_number
            i.kind = tracing_pb2.ImpersonalTitleKind.Value(_enum_out("IMPERSONAL_TITLE_KIND_", details.kind))
            i.year_indexed = details.year_indexed


def tracing_out(
    tracing: m.Tracing, target: tracing_pb2.Tracing, *, full_ssn: bool, indexed_at: dt.datetime | None = None
) -> None:
    target.key.agency, target.key.record_number = tracing.key.agency, tracing.key.record_number
    target.source_version = tracing.source_version
    if tracing.subject is not None:
        _subject_out(tracing.subject, target.subject, full_ssn=full_ssn)
    if tracing.details is not None:
        _details_out(tracing.details, target)
    if indexed_at is not None:
        target.indexed_at.CopyFrom(timestamp(indexed_at))


def type_out(kind: m.TracingType | None) -> tracing_pb2.TracingType.ValueType:
    return tracing_pb2.TracingType.Value(_enum_out("TRACING_TYPE_", kind))


def type_in(value: int) -> m.TracingType | None:
    return _TYPES.get(value)


def timestamp(moment: dt.datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def mode_name(mode: int) -> str:
    return enum_name(search_pb2.SearchMode, mode).removeprefix("SEARCH_MODE_")


def purpose_name(purpose: int) -> str:
    return enum_name(search_pb2.Purpose, purpose).removeprefix("PURPOSE_")


def outcome_value(name: str) -> ingest_pb2.IngestOutcome.ValueType:
    return ingest_pb2.IngestOutcome.Value(f"INGEST_OUTCOME_{name}")


def dispute_out(dispute: m.Dispute | None, target: search_pb2.Hit) -> None:
    """A record's statement of dispute on a hit that discloses it (none: nothing set)."""
    if dispute is not None:
        target.dispute.dispute_id, target.dispute.statement_location = dispute.dispute_id, dispute.statement_location
        target.dispute.summary = dispute.summary
