"""The privacy office's requests checked against the edit criteria (seed 002): every bad field named at once,
before any peer is asked or anything read (search_service.privacy)."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from dcii.v1 import privacy_pb2
from indexer import edit_rules as rules
from indexer import edit_ssn
from indexer.agencies import SUBMITTING_AGENCIES
from indexer.edit_criteria_names import clean_person_name
from indexer.exc import InvalidArgument
from indexer.model import PersonName, TracingKey, Violation
from search_service.convert import enum_name, name_in
from search_service.privacy_requests import RequestKind, ssn_shaped_request_number

LOCATION_MAX = 200
SUMMARY_MAX = 1000


def check_access(request: privacy_pb2.AccessRequest) -> tuple[str, PersonName, str]:
    """(request number, cleaned name, SSN digits); every bad field reported at once."""
    out: list[Violation] = []
    number = rules.record_id(request.request_number, "request_number", out, label="request number")
    if (why := ssn_shaped_request_number(number)) is not None:  # before any peer is asked about it
        out.append(Violation("request_number", why))
    # A person known by one name asks by it (the edit criteria let either part stand alone, as a query may).
    name, name_violations = clean_person_name(name_in(request.name), "name", surname_required=False)
    out += name_violations
    if not name_violations and not name.surname and not name.given_name:
        out.append(Violation("name.surname", "the person's name is required: a surname, a given name or both"))
    ssn = edit_ssn.ssn(request.ssn, "ssn", out)
    if not ssn and not request.ssn.strip():
        out.append(Violation("ssn", "an access request needs the person's SSN"))
    if out:
        raise InvalidArgument(out)
    return number, name, ssn


def check_dispute(request: privacy_pb2.FileDisputeRequest) -> tuple[TracingKey, str, str]:
    out: list[Violation] = []
    agency = rules.code(request.tracing.agency, "tracing.agency", out, allowed=SUBMITTING_AGENCIES, label="agency")
    record = rules.record_id(request.tracing.record_number, "tracing.record_number", out, label="record number")
    location = rules.text(
        request.statement_location, "statement_location", out, label="statement location", max_len=LOCATION_MAX
    )
    summary = rules.collapse(request.summary)
    if len(summary) > SUMMARY_MAX or rules.has_control(request.summary) or not summary.isprintable():
        out.append(Violation("summary", f"at most {SUMMARY_MAX} printable characters"))
    if out:
        raise InvalidArgument(out)
    return TracingKey(agency, record), location, summary


PRIVACY_ACT_IN_EFFECT = dt.datetime(1975, 9, 27, tzinfo=dt.UTC)
_OUTPUT_ONLY: tuple[Literal["acknowledge_by", "respond_by", "acknowledged_at", "responded_at"], ...] = (
    "acknowledge_by",
    "respond_by",
    "acknowledged_at",
    "responded_at",
)


def check_open(request: privacy_pb2.PrivacyRequest, now: dt.datetime) -> tuple[str, RequestKind, dt.datetime]:
    out: list[Violation] = []
    number = rules.record_id(request.request_number, "request_number", out, label="request number")
    if (why := ssn_shaped_request_number(number)) is not None:  # before any peer is asked about it
        out.append(Violation("request_number", why))
    kind = RequestKind.__members__.get(
        enum_name(privacy_pb2.PrivacyRequestKind, request.kind).removeprefix("PRIVACY_REQUEST_KIND_")
    )
    if kind is None:
        out.append(Violation("kind", "ACCESS or AMENDMENT"))
    received = now
    if not request.HasField("received_at"):
        out.append(Violation("received_at", "when the request was received is required"))
    else:
        try:
            received = request.received_at.ToDatetime(dt.UTC)
        except (ValueError, OverflowError):  # seconds or nanos outside what a Timestamp may hold
            out.append(Violation("received_at", "not a representable date and time"))
        else:
            if received > now:
                out.append(Violation("received_at", "must not be in the future"))
            elif received < PRIVACY_ACT_IN_EFFECT:  # its deadlines would be overdue for ever
                out.append(Violation("received_at", "must not be before the Privacy Act took effect (1975-09-27)"))
    # The index sets these; one sent and dropped without a word would let a client believe it was recorded.
    out += [Violation(field, "output only: the index sets it") for field in _OUTPUT_ONLY if request.HasField(field)]
    if out:
        raise InvalidArgument(out)
    assert kind is not None
    return number, kind, received
