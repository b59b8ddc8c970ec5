"""Hypothesis strategies for the wire messages of dcii.v1: valid, nearly valid and hostile.

Every request strategy is a mix: about half the examples start from a valid message (a factory tracing,
a well-formed query) and spoil one field or two; the rest start from an empty message and set a handful
of fields to anything the wire allows. A field is spoiled by its type (descriptor-driven, so a field
added to a .proto is fuzzed without touching this file): strings get huge, control characters, mixed
scripts and combining marks; integers their extremes; enums numbers no contract defines (proto3 enums
are open); dates month 13, day 0, year 0 or 9999; timestamps outside the representable range; oneofs a
second member or none; repeated fields long lists. Lone surrogates cannot travel in a proto string and
are never generated.

This module holds the valid messages and the request strategies, one per RPC; the hostile values of single
fields (and the pools of keys the fuzzer writes to) are in tests/strategies_values.py, the descriptor-driven
spoiling in tests/strategies_spoil.py. The fuzz tests import this module alone (`__all__`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, cast

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

from dcii.v1 import admin_pb2, batch_pb2, ingest_pb2, privacy_pb2, search_pb2, tracing_pb2
from tests import factories as f
from tests.strategies_spoil import requests, with_unknown_fields
from tests.strategies_values import (
    DIGITS,
    LATIN,
    NAC_PENDINGS,
    NAMES,
    OPEN_CASES,
    OWN_AGENCY,
    RECEIVED,
    RECORDS,
    TIMESTAMP_MAX,
    TITLES,
    VICTIMS,
    hostile_text,
)

__all__ = [
    "NAC_PENDINGS",
    "OPEN_CASES",
    "OWN_AGENCY",
    "RECORDS",
    "TIMESTAMP_MAX",
    "VERSIONS",
    "VICTIMS",
    "access_changes",
    "access_requests",
    "batch_ids",
    "batch_submissions",
    "certificate_lists",
    "certificate_revocations",
    "delete_requests",
    "dispute_requests",
    "ingest_requests",
    "ingest_streams",
    "list_activities_requests",
    "list_privacy_requests",
    "login_requests",
    "logout_requests",
    "nac_completions",
    "open_case_completions",
    "privacy_requests",
    "search_requests",
    "status_changes",
    "tracing_kinds",
    "valid_access_changes",
    "valid_access_requests",
    "valid_batches",
    "valid_certificate_revocations",
    "valid_deletes",
    "valid_disputes",
    "valid_ingest_requests",
    "valid_nac_completions",
    "valid_open_case_completions",
    "valid_privacy_requests",
    "valid_searches",
    "valid_status_changes",
    "valid_tracings",
    "walk_strings",
]


# Source versions of valid actions: small ones meet the stored versions (UNCHANGED), large ones move on.
VERSIONS = st.one_of(st.integers(1, 50), st.integers(1, 2**40))


# ---- valid messages ----


def tracing_kinds(agency: str, record: str, version: int) -> dict[str, Callable[[], tracing_pb2.Tracing]]:
    def clearance() -> tracing_pb2.Tracing:
        t = f.person(agency, record, version)
        c = t.clearance
        c.granted_on.year, c.granted_on.month, c.granted_on.day = 2019, 3, 4
        c.eligibility_level = tracing_pb2.CLEARANCE_LEVEL_TOP_SECRET
        c.access_level = tracing_pb2.CLEARANCE_LEVEL_SECRET
        c.basis_investigation_type = "T5"
        c.subject_category = tracing_pb2.SUBJECT_CATEGORY_MILITARY
        c.files_used.extend(["F-1", "F-2"])
        return t

    def impersonal() -> tracing_pb2.Tracing:
        t = tracing_pb2.Tracing(source_version=version)
        t.key.agency, t.key.record_number = agency, record
        t.impersonal_title.title = "ACME DEFENSE WIDGETS INC"
        t.impersonal_title.kind = tracing_pb2.IMPERSONAL_TITLE_KIND_ORGANIZATION
        t.impersonal_title.custodian, t.impersonal_title.file_number = agency, f"T-{record}"
        t.impersonal_title.year_indexed = 1990
        return t

    return {
        "file": lambda: f.person(agency, record, version),
        "open_case": lambda: f.open_case(agency, record, version),
        "nac_pending": lambda: f.nac_pending(agency, record, version),
        "nac_history": lambda: f.nac_history(agency, record, version),
        "clearance": clearance,
        "impersonal_title": impersonal,
    }


KINDS = sorted(tracing_kinds(OWN_AGENCY, RECORDS[0], 1))


@st.composite
def valid_tracings(draw: st.DrawFn, kind: str | None = None) -> tracing_pb2.Tracing:
    kind = kind or draw(st.sampled_from(KINDS))
    records = TITLES if kind == "impersonal_title" else RECORDS
    tracing = tracing_kinds(OWN_AGENCY, draw(st.sampled_from(records)), draw(VERSIONS))[kind]()
    if tracing.HasField("subject") and draw(st.booleans()):
        name = tracing.subject.name
        name.surname, name.given_name = draw(st.sampled_from(NAMES)), draw(st.sampled_from(NAMES))
    return tracing


@st.composite
def valid_ingest_requests(draw: st.DrawFn) -> ingest_pb2.IngestRequest:
    request = ingest_pb2.IngestRequest(request_id=draw(st.text(LATIN + DIGITS, max_size=12)))
    action = draw(st.sampled_from(("upsert", "upsert", "delete", "complete_open_case", "complete_nac_pending")))
    if action == "upsert":
        request.upsert.CopyFrom(draw(valid_tracings()))
    elif action == "delete":
        request.delete.CopyFrom(draw(valid_deletes()))
    elif action == "complete_open_case":
        request.complete_open_case.CopyFrom(draw(valid_open_case_completions()))
    else:
        request.complete_nac_pending.CopyFrom(draw(valid_nac_completions()))
    return request


@st.composite
def valid_deletes(draw: st.DrawFn) -> ingest_pb2.DeleteTracing:
    request = ingest_pb2.DeleteTracing(
        source_version=draw(VERSIONS), reason=draw(st.sampled_from(("", "DENIED", "ENTERED_IN_ERROR")))
    )
    request.key.agency = OWN_AGENCY
    request.key.record_number = draw(st.sampled_from((*RECORDS, *TITLES, *OPEN_CASES, *NAC_PENDINGS)))
    return request


@st.composite
def valid_open_case_completions(draw: st.DrawFn) -> ingest_pb2.CompleteOpenCase:
    request = ingest_pb2.CompleteOpenCase()
    request.open_case.agency, request.open_case.record_number = OWN_AGENCY, draw(st.sampled_from(OPEN_CASES))
    request.file.CopyFrom(draw(valid_tracings("file")))
    return request


@st.composite
def valid_nac_completions(draw: st.DrawFn) -> ingest_pb2.CompleteNacPending:
    request = ingest_pb2.CompleteNacPending()
    request.nac_pending.agency, request.nac_pending.record_number = OWN_AGENCY, draw(st.sampled_from(NAC_PENDINGS))
    request.nac_history.CopyFrom(draw(valid_tracings("nac_history")))
    return request


@st.composite
def valid_searches(draw: st.DrawFn) -> search_pb2.SearchRequest:
    purposes = [p.number for p in search_pb2.Purpose.DESCRIPTOR.values if p.number]
    request = search_pb2.SearchRequest()
    request.purpose = cast(Any, draw(st.sampled_from(purposes)))
    surname, given = draw(st.sampled_from(("Whitfield", *NAMES))), draw(st.sampled_from(("Harold", *NAMES)))
    shape = draw(st.sampled_from(("exact", "name_only", "nonstandard", "fuzzy", "pid", "title", "title_prefix")))
    if shape == "exact":
        request.mode = search_pb2.SEARCH_MODE_EXACT
        request.name.surname, request.name.given_name = surname, given
        request.identifiers.ssn = "318-52-4471"
    elif shape == "name_only":
        request.mode = search_pb2.SEARCH_MODE_NAME_ONLY
        request.name.surname, request.name.given_name = surname, given
    elif shape == "nonstandard":
        request.mode = search_pb2.SEARCH_MODE_NONSTANDARD
        request.name.surname = surname
    elif shape == "fuzzy":
        request.mode = search_pb2.SEARCH_MODE_FUZZY
        request.name.surname, request.name.given_name = surname, given
    elif shape == "pid":
        request.mode = search_pb2.SEARCH_MODE_PID_QUALIFIED
        request.name.surname = surname
        request.identifiers.date_of_birth.year, request.identifiers.date_of_birth.month = 1971, 4
    else:
        request.mode = search_pb2.SEARCH_MODE_NAME_ONLY if shape == "title" else search_pb2.SEARCH_MODE_NONSTANDARD
        request.title = "ACME DEFENSE WIDGETS INC" if shape == "title" else "ACME"
    request.page_size = draw(st.sampled_from((0, 1, 5, 100)))
    if draw(st.booleans()):
        request.types.append(
            cast(Any, draw(st.sampled_from([t.number for t in tracing_pb2.TracingType.DESCRIPTOR.values][1:])))
        )
    return request


@st.composite
def valid_access_requests(draw: st.DrawFn) -> privacy_pb2.AccessRequest:
    request = privacy_pb2.AccessRequest(
        request_number=f"PA-{draw(st.integers(1, 40))}", ssn="318-52-4471", withhold_law_enforcement=draw(st.booleans())
    )
    request.name.surname, request.name.given_name = "Whitfield", "Harold"
    return request


@st.composite
def valid_disputes(draw: st.DrawFn) -> privacy_pb2.FileDisputeRequest:
    request = privacy_pb2.FileDisputeRequest(
        statement_location="PRIVACY OFFICE FILE 12", summary="The subject disputes it"
    )
    request.tracing.agency, request.tracing.record_number = OWN_AGENCY, draw(st.sampled_from(RECORDS))
    return request


@st.composite
def valid_privacy_requests(draw: st.DrawFn) -> privacy_pb2.PrivacyRequest:
    request = privacy_pb2.PrivacyRequest(
        request_number=f"PR-{draw(st.integers(1, 10**9))}", kind=cast(Any, draw(st.sampled_from((1, 2))))
    )
    request.received_at.seconds = RECEIVED + draw(st.integers(0, 10**7))
    return request


@st.composite
def valid_status_changes(draw: st.DrawFn) -> admin_pb2.SetActivityStatusRequest:
    return admin_pb2.SetActivityStatusRequest(
        activity_id=draw(st.sampled_from(VICTIMS)), status=cast(Any, draw(st.sampled_from((1, 2, 3))))
    )


@st.composite
def valid_access_changes(draw: st.DrawFn) -> admin_pb2.SetActivityAccessRequest:
    """Roles, purposes or both for a victim: QUERIER or BATCH with purposes (valid), or roles the registry
    refuses (PEER, none) among them."""
    request = admin_pb2.SetActivityAccessRequest(activity_id=draw(st.sampled_from(VICTIMS)))
    if draw(st.booleans()):
        request.roles.values.extend(
            cast(Any, draw(st.lists(st.sampled_from((2, 3, 1, 6)), min_size=1, max_size=3, unique=True)))
        )
    if draw(st.booleans()) or not request.HasField("roles"):
        request.purposes.values.extend(
            cast(Any, draw(st.lists(st.integers(1, 6), min_size=0, max_size=3, unique=True)))
        )
    return request


@st.composite
def valid_certificate_revocations(draw: st.DrawFn) -> admin_pb2.RevokeCertificateRequest:
    """A victim and a fingerprint that is not one of its certificates (NOT_FOUND), as openssl may print it."""
    fingerprint = draw(st.binary(min_size=32, max_size=32)).hex()
    if draw(st.booleans()):
        fingerprint = ":".join(fingerprint[i : i + 2] for i in range(0, 64, 2)).upper()
    return admin_pb2.RevokeCertificateRequest(activity_id=draw(st.sampled_from(VICTIMS)), fingerprint=fingerprint)


@st.composite
def valid_batches(draw: st.DrawFn) -> batch_pb2.SubmitBatchRequest:
    request = batch_pb2.SubmitBatchRequest(label=draw(st.sampled_from(("", "nightly"))))
    for i in range(draw(st.integers(1, 4))):
        request.queries.add(query_id=f"q{i}").query.CopyFrom(draw(valid_searches()))
    return request


# ---- the request strategies, one per RPC ----

ingest_requests = requests(valid_ingest_requests(), ingest_pb2.IngestRequest)
ingest_streams = st.lists(ingest_requests, min_size=0, max_size=12)
delete_requests = requests(valid_deletes(), ingest_pb2.DeleteTracing)
open_case_completions = requests(valid_open_case_completions(), ingest_pb2.CompleteOpenCase)
nac_completions = requests(valid_nac_completions(), ingest_pb2.CompleteNacPending)
search_requests = requests(valid_searches(), search_pb2.SearchRequest)
login_requests = requests(
    st.builds(
        admin_pb2.LoginRequest, account_code=st.just("fz-login-op"), password=st.text(LATIN, min_size=12, max_size=20)
    ),
    admin_pb2.LoginRequest,
)
logout_requests = with_unknown_fields(st.builds(admin_pb2.LogoutRequest))
list_activities_requests = with_unknown_fields(st.builds(admin_pb2.ListActivitiesRequest))
status_changes = requests(valid_status_changes(), admin_pb2.SetActivityStatusRequest)
access_changes = requests(valid_access_changes(), admin_pb2.SetActivityAccessRequest)
certificate_revocations = requests(valid_certificate_revocations(), admin_pb2.RevokeCertificateRequest)
certificate_lists = requests(
    st.builds(admin_pb2.ListCertificatesRequest, activity_id=st.sampled_from(VICTIMS)),
    admin_pb2.ListCertificatesRequest,
)
access_requests = requests(valid_access_requests(), privacy_pb2.AccessRequest)
dispute_requests = requests(valid_disputes(), privacy_pb2.FileDisputeRequest)
privacy_requests = requests(valid_privacy_requests(), privacy_pb2.PrivacyRequest)
list_privacy_requests = with_unknown_fields(
    st.builds(privacy_pb2.ListPrivacyRequestsRequest, overdue_only=st.booleans(), late_only=st.booleans())
)
batch_submissions = st.lists(requests(valid_batches(), batch_pb2.SubmitBatchRequest), min_size=0, max_size=3)
batch_ids = with_unknown_fields(
    st.builds(batch_pb2.GetBatchRequest, batch_id=st.one_of(hostile_text, st.uuids().map(lambda u: u.hex)))
)


def walk_strings(message: Message) -> Iterator[tuple[str, str]]:
    """(field name, value) of every string set anywhere in a message."""
    for field, value in message.ListFields():
        if field.message_type is not None:
            for item in value if field.is_repeated else [value]:
                yield from walk_strings(item)
        elif field.type == FieldDescriptor.TYPE_STRING:
            for item in value if field.is_repeated else [value]:
                yield field.name, item
