"""What the instances of a deployment send each other (proto/dcii/v1/peer.proto), to and from the domain's
types: an accounting's question (search_service.privacy_person.AccountingQuery, a tracing with its subject)
and its disclosures; whom an access request is for (search_service.privacy_binding). A peer's request is
checked as any client's: every bad field named at once (never an SSN's digits)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from google.protobuf import timestamp_pb2

from dcii.v1 import peer_pb2, privacy_pb2, search_pb2, tracing_pb2
from indexer import edit_rules as rules
from indexer import edit_ssn
from indexer.agencies import SUBMITTING_AGENCIES
from indexer.exc import InvalidArgument
from indexer.model import PersonName, TracingKey, Violation
from search_service.accounting import Disclosure
from search_service.accreditation import Purpose
from search_service.convert import enum_name, key_in, name_in, timestamp
from search_service.privacy_binding import RequestPerson
from search_service.privacy_person import AccountingQuery
from search_service.privacy_requests import PrivacyRequest, RequestKind

# Bounds on one question: a person's names and records are a handful; these only keep a wrong caller's
# message from costing the answering instance a trail scan per entry without end.
MAX_NAMES, MAX_TRACINGS, NAME_PART_MAX = 1_000, 20_000, 200
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

# ---- out: the asking instance ----


def _name_out(name: PersonName) -> tracing_pb2.PersonName:
    return tracing_pb2.PersonName(
        surname=name.surname, given_name=name.given_name, middle_name=name.middle_name, suffix=name.suffix
    )


def _tracing_out(key: TracingKey, began: dt.datetime | None) -> peer_pb2.PeerTracing:
    out = peer_pb2.PeerTracing(key=tracing_pb2.TracingKey(agency=key.agency, record_number=key.record_number))
    if began is not None:
        out.life_began.CopyFrom(timestamp(began))
    return out


def person_request(query: AccountingQuery, *, withhold_law_enforcement: bool) -> peer_pb2.PersonAccountingRequest:
    return peer_pb2.PersonAccountingRequest(
        ssn=query.ssn,
        names=[_name_out(n) for n in query.names],
        tracings=[_tracing_out(key, began) for key, began in query.tracings],
        withhold_law_enforcement=withhold_law_enforcement,
    )


def tracing_request(
    key: TracingKey, subject: tuple[Sequence[PersonName], str] | None, began: dt.datetime | None
) -> peer_pb2.TracingAccountingRequest:
    out = peer_pb2.TracingAccountingRequest(tracing=_tracing_out(key, began), has_subject=subject is not None)
    if subject is not None:
        out.names.extend(_name_out(n) for n in subject[0])
        out.ssn = subject[1]
    return out


def disclosure_out(disclosure: Disclosure, target: privacy_pb2.Disclosure) -> None:
    target.disclosure_id = disclosure.disclosure_id
    target.tracing.agency, target.tracing.record_number = disclosure.tracing.agency, disclosure.tracing.record_number
    target.disclosed_at.CopyFrom(timestamp(disclosure.disclosed_at))
    target.method = disclosure.method
    known = disclosure.purpose in Purpose.__members__
    target.purpose = search_pb2.Purpose.Value(f"PURPOSE_{disclosure.purpose if known else 'UNSPECIFIED'}")
    target.recipient_activity, target.recipient_operator = disclosure.recipient_activity, disclosure.recipient_operator
    target.law_enforcement = disclosure.law_enforcement


def disclosures_in(answer: Iterable[privacy_pb2.Disclosure]) -> list[Disclosure]:
    """A peer's disclosures, already judged about the person by the peer (its trail's keyed hashes are its own)."""
    return [
        Disclosure(
            disclosure_id=d.disclosure_id,
            tracing=key_in(d.tracing),
            disclosed_at=d.disclosed_at.ToDatetime(dt.UTC),
            method=d.method,
            purpose=enum_name(search_pb2.Purpose, d.purpose).removeprefix("PURPOSE_").replace("UNSPECIFIED", ""),
            recipient_activity=d.recipient_activity,
            recipient_operator=d.recipient_operator,
            law_enforcement=d.law_enforcement,
        )
        for d in answer
    ]


def request_out(request: PrivacyRequest) -> privacy_pb2.PrivacyRequest:
    out = privacy_pb2.PrivacyRequest(
        request_number=request.request_number,
        kind=privacy_pb2.PrivacyRequestKind.Value(f"PRIVACY_REQUEST_KIND_{request.kind.value}"),
    )
    out.received_at.CopyFrom(timestamp(request.received_at))
    out.acknowledge_by.CopyFrom(timestamp(request.acknowledge_by))
    out.respond_by.CopyFrom(timestamp(request.respond_by))
    if request.acknowledged_at is not None:
        out.acknowledged_at.CopyFrom(timestamp(request.acknowledged_at))
    if request.responded_at is not None:
        out.responded_at.CopyFrom(timestamp(request.responded_at))
    return out


def request_person_out(told: RequestPerson) -> peer_pb2.RequestPerson.ValueType:
    return peer_pb2.RequestPerson.Value(f"REQUEST_PERSON_{told.value}")


def request_person_in(told: peer_pb2.RequestPerson.ValueType) -> RequestPerson:
    """ValueError for UNSPECIFIED or a value this version does not know (an answer that cannot be read)."""
    return RequestPerson(peer_pb2.RequestPerson.Name(told).removeprefix("REQUEST_PERSON_"))


def _moment(stamp: timestamp_pb2.Timestamp, present: bool) -> dt.datetime | None:
    return stamp.ToDatetime(dt.UTC) if present else None


def request_in(request: privacy_pb2.PrivacyRequest) -> PrivacyRequest:
    """A request another instance registered, as it holds it."""
    kind = privacy_pb2.PrivacyRequestKind.Name(request.kind).removeprefix("PRIVACY_REQUEST_KIND_")
    return PrivacyRequest(
        request.request_number,
        RequestKind(kind),
        request.received_at.ToDatetime(dt.UTC),
        request.acknowledge_by.ToDatetime(dt.UTC),
        request.respond_by.ToDatetime(dt.UTC),
        _moment(request.acknowledged_at, request.HasField("acknowledged_at")),
        _moment(request.responded_at, request.HasField("responded_at")),
    )


# ---- in: the answering instance ----


def _names_in(names: Sequence[tracing_pb2.PersonName], at: str, out: list[Violation]) -> tuple[PersonName, ...]:
    if len(names) > MAX_NAMES:
        out.append(Violation(at, f"at most {MAX_NAMES} names"))
        return ()
    for i, name in enumerate(names):
        parts = (name.surname, name.given_name, name.middle_name, name.suffix)
        if any(len(part) > NAME_PART_MAX or rules.has_control(part) for part in parts):
            out.append(Violation(f"{at}[{i}]", f"each part at most {NAME_PART_MAX} characters, no control characters"))
        elif not name.surname and not name.given_name:
            out.append(Violation(f"{at}[{i}]", "a surname, a given name or both"))
    return tuple(name_in(n) for n in names)


def _tracing_in(tracing: peer_pb2.PeerTracing, at: str, out: list[Violation]) -> tuple[TracingKey, dt.datetime | None]:
    agency = rules.code(tracing.key.agency, f"{at}.key.agency", out, allowed=SUBMITTING_AGENCIES, label="agency")
    record = rules.record_id(tracing.key.record_number, f"{at}.key.record_number", out, label="record number")
    began = None
    if tracing.HasField("life_began"):
        try:
            began = tracing.life_began.ToDatetime(dt.UTC)
        except (ValueError, OverflowError):
            out.append(Violation(f"{at}.life_began", "not a time"))
        else:
            if began < _EPOCH:
                out.append(Violation(f"{at}.life_began", "before 1970"))
    return TracingKey(agency, record), began


def ssn_in(ssn: str, out: list[Violation]) -> str:
    """The SSN's nine digits; a violation (naming the field, never the digits) if it is missing or malformed."""
    checked = edit_ssn.ssn(ssn, "ssn", out)
    if not checked and not ssn.strip():
        out.append(Violation("ssn", "the person's SSN is required"))
    return checked


def person_query_in(request: peer_pb2.PersonAccountingRequest) -> AccountingQuery:
    out: list[Violation] = []
    ssn = ssn_in(request.ssn, out)
    names = _names_in(request.names, "names", out)
    if not request.names:
        out.append(Violation("names", "at least the name asked"))
    tracings: list[tuple[TracingKey, dt.datetime | None]] = []
    if len(request.tracings) > MAX_TRACINGS:
        out.append(Violation("tracings", f"at most {MAX_TRACINGS}"))
    else:
        tracings = [_tracing_in(t, f"tracings[{i}]", out) for i, t in enumerate(request.tracings)]
    if out:
        raise InvalidArgument(out)
    return AccountingQuery(ssn, names, tuple(tracings))


def tracing_query_in(
    request: peer_pb2.TracingAccountingRequest,
) -> tuple[TracingKey, tuple[tuple[PersonName, ...], str] | None, dt.datetime | None]:
    """(the tracing, its subject's names and SSN or None, when its present life began)."""
    out: list[Violation] = []
    if not request.HasField("tracing"):
        out.append(Violation("tracing", "the tracing is required"))
    key, began = _tracing_in(request.tracing, "tracing", out)
    names = _names_in(request.names, "names", out)
    ssn = edit_ssn.ssn(request.ssn, "ssn", out) if request.ssn.strip() else ""
    if request.has_subject and not names:
        out.append(Violation("names", "a subject's names are required with has_subject"))
    if out:
        raise InvalidArgument(out)
    return key, ((names, ssn) if request.has_subject else None), began
