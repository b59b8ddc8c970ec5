"""Bad input (issue 8): a property-based fuzzer over the request messages of every RPC the server serves.

Each generated request (tests.strategies: about half nearly valid, half hostile) goes to the real server
over mutual TLS from a logged-in client holding the role the RPC needs. Whatever was sent:

- the call never ends in INTERNAL or UNKNOWN (a crash, an unmapped exception), nor UNAVAILABLE (the
  audit is not broken here), and the server keeps answering its health check;
- the outcome is a correct answer, or INVALID_ARGUMENT with at least one field violation whose path
  names a field of the request message (dotted, `[i]` indexes, oneof names such as `kind`), or another
  deliberate status: PERMISSION_DENIED, NOT_FOUND, FAILED_PRECONDITION, RESOURCE_EXHAUSTED (and
  UNAUTHENTICATED for a failed login);
- a streamed ingest answers every action, in order: APPLIED, UNCHANGED, NOT_FOUND, or REJECTED /
  PERMISSION_DENIED with violations;
- a refusal never quotes an SSN, a name or a password the request carried.

The CI run is derandomized with a modest number of examples per RPC; the slow run
(`.venv/bin/pytest -m slow tests/test_fuzz_rpc.py`) sends more than 100,000 generated requests in all.
The server, the checks and the counts are in tests/fuzz_rpc_support.py; valid requests and the plain regression
tests on the minimal examples of the bugs the fuzzer found are in tests/test_fuzz_rpc_answers.py.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from hypothesis import strategies as st

from dcii.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    batch_pb2,
    batch_pb2_grpc,
    ingest_pb2,
    ingest_pb2_grpc,
    privacy_pb2,
    privacy_pb2_grpc,
    search_pb2,
    search_pb2_grpc,
)
from search_service.server_grpc import MAX_MESSAGE_BYTES
from tests import factories as f
from tests import fuzz_rpc_support
from tests import strategies as s
from tests.fuzz_rpc_support import (
    MARKING,
    OUTCOMES,
    SENT,
    TIMEOUT,
    Code,
    Fuzz,
    call,
    check_ingest_result,
    check_refusal,
    check_search_answer,
    fuzz_run,
    ingest_stream,
)

# The fixture these tests take (one server for the module), bound here by name so pytest finds it (importing it
# would do the same, but ruff reads each test's parameter of that name as a redefinition of an unused import).
fuzz = fuzz_rpc_support.fuzz


# ---- one property per RPC ----


def ingest_batches(fz: Fuzz, drawn: tuple[list[ingest_pb2.IngestRequest], list[int]]) -> None:
    """The same actions cut into batch messages at drawn places (empty batches included)."""
    requests, cuts = drawn
    edges = sorted({0, len(requests), *(c % (len(requests) + 1) for c in cuts)})
    batches = [requests[a:b] for a, b in itertools.pairwise(edges)] + ([[]] if len(cuts) % 3 == 0 else [])
    SENT["IngestBatches"] += len(requests)
    stub = ingest_pb2_grpc.IngestServiceStub(fz.submitter.channel)
    messages = [ingest_pb2.IngestBatchRequest(requests=batch) for batch in batches]
    try:
        answers = list(stub.IngestBatches(iter(messages), metadata=fz.submitter.metadata, timeout=TIMEOUT))
    except grpc.RpcError as error:
        OUTCOMES["IngestBatches", error.code().name] += 1
        size = max((m.ByteSize() for m in messages), default=0)
        check_refusal("IngestBatches", ingest_pb2.IngestBatchRequest(), error, size=size)
        assert size > MAX_MESSAGE_BYTES or error.code() == Code.RESOURCE_EXHAUSTED, (
            "a refused action stopped the stream"
        )
        return
    assert [len(a.results) for a in answers] == [len(b) for b in batches], "one answer a batch, a result an action"
    for request, result in zip(requests, [r for a in answers for r in a.results], strict=True):
        check_ingest_result(request, result)


def _ingest_unary(rpc: str) -> Callable[[Fuzz, Message], None]:
    def body(fz: Fuzz, request: Message) -> None:
        stub = ingest_pb2_grpc.IngestServiceStub(fz.submitter.channel)
        result = call(rpc, getattr(stub, rpc), request, fz.submitter)
        if result is not None:
            assert result.outcome in (
                ingest_pb2.INGEST_OUTCOME_APPLIED,
                ingest_pb2.INGEST_OUTCOME_UNCHANGED,
                ingest_pb2.INGEST_OUTCOME_NOT_FOUND,
            ), f"{rpc} answered a refusal as OK: {result}"
            assert not result.violations

    return body


def search(fz: Fuzz, request: search_pb2.SearchRequest) -> None:
    stub = search_pb2_grpc.SearchServiceStub(fz.querier.channel)
    response = call("Search", stub.Search, request, fz.querier)
    if response is not None:
        check_search_answer(request, response)


def login(fz: Fuzz, request: admin_pb2.LoginRequest) -> None:
    stub = admin_pb2_grpc.SessionServiceStub(fz.login.channel)
    response = call("Login", stub.Login, request, fz.login, also=frozenset({Code.UNAUTHENTICATED}))
    assert response is None or response.session_token


def logout(fz: Fuzz, request: admin_pb2.LogoutRequest) -> None:
    client, account, password = fz.logout_account
    client.login(account, password)
    assert call("Logout", admin_pb2_grpc.SessionServiceStub(client.channel).Logout, request, client) is not None


def list_activities(fz: Fuzz, request: admin_pb2.ListActivitiesRequest) -> None:
    response = call(
        "ListActivities", admin_pb2_grpc.AdminServiceStub(fz.admin.channel).ListActivities, request, fz.admin
    )
    assert response is not None
    assert {"FZ-SUBMIT", "FZ-ADMIN", *s.VICTIMS} <= {a.activity_id for a in response.activities}


def set_status(fz: Fuzz, request: admin_pb2.SetActivityStatusRequest) -> None:
    stub = admin_pb2_grpc.AdminServiceStub(fz.admin.channel)
    response = call("SetActivityStatus", stub.SetActivityStatus, request, fz.admin)
    if response is not None:
        assert response.activity_id == request.activity_id
        assert response.status == request.status


def set_access(fz: Fuzz, request: admin_pb2.SetActivityAccessRequest) -> None:
    stub = admin_pb2_grpc.AdminServiceStub(fz.admin.channel)
    response = call("SetActivityAccess", stub.SetActivityAccess, request, fz.admin)
    if response is not None:
        assert response.activity_id == request.activity_id and response.roles
        if request.HasField("roles"):
            assert set(response.roles) == set(request.roles.values)


def revoke_certificate(fz: Fuzz, request: admin_pb2.RevokeCertificateRequest) -> None:
    stub = admin_pb2_grpc.AdminServiceStub(fz.admin.channel)
    response = call("RevokeCertificate", stub.RevokeCertificate, request, fz.admin)
    assert response is None, "no generated fingerprint is a certificate of the activity"


def list_certificates(fz: Fuzz, request: admin_pb2.ListCertificatesRequest) -> None:
    stub = admin_pb2_grpc.AdminServiceStub(fz.admin.channel)
    response = call("ListCertificates", stub.ListCertificates, request, fz.admin)
    if response is not None:
        assert all(len(c.fingerprint) == 64 for c in response.certificates)


def answer_access(fz: Fuzz, request: privacy_pb2.AccessRequest) -> None:
    stub = privacy_pb2_grpc.PrivacyServiceStub(fz.privacy.channel)
    response = call("AnswerAccessRequest", stub.AnswerAccessRequest, request, fz.privacy)
    if response is not None:
        assert response.marking == MARKING
        assert len({h.tracing.subject.identifiers.ssn for h in response.tracings}) <= 1, "one person's records only"


def file_dispute(fz: Fuzz, request: privacy_pb2.FileDisputeRequest) -> None:
    stub = privacy_pb2_grpc.PrivacyServiceStub(fz.privacy.channel)
    response = call("FileDispute", stub.FileDispute, request, fz.privacy)
    if response is not None:
        assert response.dispute.dispute_id
        assert response.notices_queued >= 0


def open_request(fz: Fuzz, request: privacy_pb2.PrivacyRequest) -> None:
    stub = privacy_pb2_grpc.PrivacyServiceStub(fz.privacy.channel)
    response = call("OpenPrivacyRequest", stub.OpenPrivacyRequest, request, fz.privacy)
    if response is not None:
        assert response.request_number == request.request_number.strip()
        assert response.kind == request.kind
        assert response.respond_by.ToDatetime() > response.acknowledge_by.ToDatetime()


def list_requests(fz: Fuzz, request: privacy_pb2.ListPrivacyRequestsRequest) -> None:
    stub = privacy_pb2_grpc.PrivacyServiceStub(fz.privacy.channel)
    response = call("ListPrivacyRequests", stub.ListPrivacyRequests, request, fz.privacy)
    for registered in [] if response is None else response.requests:
        assert registered.request_number and registered.HasField("respond_by")


def batch_submit(fz: Fuzz, requests: list[batch_pb2.SubmitBatchRequest]) -> None:
    SENT["SubmitBatch"] += len(requests)
    stub = batch_pb2_grpc.BatchServiceStub(fz.batch.channel)
    try:
        status = stub.SubmitBatch(iter(requests), metadata=fz.batch.metadata, timeout=TIMEOUT)
    except grpc.RpcError as error:
        OUTCOMES["SubmitBatch", error.code().name] += 1
        whole = batch_pb2.SubmitBatchRequest()
        for request in requests:
            whole.MergeFrom(request)  # violations are numbered over the whole stream
        check_refusal("SubmitBatch", whole, error, size=max((r.ByteSize() for r in requests), default=0))
        return
    OUTCOMES["SubmitBatch", "OK"] += 1
    assert status.batch_id and status.total == sum(len(r.queries) for r in requests)
    for rpc in ("GetBatchStatus", "CancelBatch"):
        call(rpc, getattr(stub, rpc), batch_pb2.GetBatchRequest(batch_id=status.batch_id), fz.batch)


def batch_lookup(fz: Fuzz, request: batch_pb2.GetBatchRequest) -> None:
    stub = batch_pb2_grpc.BatchServiceStub(fz.batch.channel)
    for rpc in ("GetBatchStatus", "CancelBatch"):
        call(rpc, getattr(stub, rpc), request, fz.batch)
    SENT["StreamBatchResults"] += 1
    try:
        for result in stub.StreamBatchResults(request, metadata=fz.batch.metadata, timeout=TIMEOUT):
            assert result.query_id
    except grpc.RpcError as error:
        OUTCOMES["StreamBatchResults", error.code().name] += 1
        check_refusal("StreamBatchResults", request, error)


@dataclass(frozen=True)
class Case:
    rpc: str
    strategy: st.SearchStrategy[Any]
    body: Callable[[Fuzz, Any], None]
    ci: int  # examples in the CI run
    slow: int  # examples in the slow run


CASES = (
    Case("Ingest", s.ingest_streams, ingest_stream, 150, 4_000),  # ~6 requests an example
    Case(
        "IngestBatches",
        st.tuples(s.ingest_streams, st.lists(st.integers(0, 12), max_size=4)),
        ingest_batches,
        100,
        3_000,
    ),
    Case("Delete", s.delete_requests, _ingest_unary("Delete"), 200, 8_000),
    Case("CompleteOpenCaseTracing", s.open_case_completions, _ingest_unary("CompleteOpenCaseTracing"), 200, 8_000),
    Case("CompleteNacPendingTracing", s.nac_completions, _ingest_unary("CompleteNacPendingTracing"), 200, 8_000),
    Case("Search", s.search_requests, search, 500, 30_000),
    Case("Login", s.login_requests, login, 60, 2_000),
    Case("Logout", s.logout_requests, logout, 20, 500),
    Case("ListActivities", s.list_activities_requests, list_activities, 40, 2_000),
    Case("SetActivityStatus", s.status_changes, set_status, 200, 5_000),
    Case("SetActivityAccess", s.access_changes, set_access, 150, 4_000),
    Case("RevokeCertificate", s.certificate_revocations, revoke_certificate, 100, 2_000),
    Case("ListCertificates", s.certificate_lists, list_certificates, 60, 1_000),
    Case("AnswerAccessRequest", s.access_requests, answer_access, 200, 8_000),
    Case("FileDispute", s.dispute_requests, file_dispute, 200, 6_000),
    Case("OpenPrivacyRequest", s.privacy_requests, open_request, 200, 6_000),
    Case("ListPrivacyRequests", s.list_privacy_requests, list_requests, 20, 500),
)
BATCH_CASES = (
    Case("SubmitBatch", s.batch_submissions, batch_submit, 30, 3_000),
    Case("GetBatchStatus/CancelBatch/StreamBatchResults", s.batch_ids, batch_lookup, 20, 2_000),
)


def batch_served(fz: Fuzz) -> bool:
    stub = batch_pb2_grpc.BatchServiceStub(fz.batch.channel)
    try:
        stub.GetBatchStatus(batch_pb2.GetBatchRequest(batch_id="probe"), metadata=fz.batch.metadata, timeout=10)
    except grpc.RpcError as error:
        return error.code() != Code.UNIMPLEMENTED
    return True


def run_case(fz: Fuzz, case: Case, *, ci: bool) -> None:
    if case in BATCH_CASES:
        assert batch_served(fz), "BatchService is not registered in search_service/server.py"
    calls = 0

    def body(value: Any) -> None:
        nonlocal calls
        case.body(fz, value)
        calls += 1
        if calls % 50 == 0:
            fz.healthy()

    fuzz_run(case.strategy, case.ci if ci else case.slow, body, ci=ci)
    fz.healthy()


@pytest.mark.parametrize("case", CASES + BATCH_CASES, ids=lambda c: c.rpc)
def test_fuzz(fuzz: Fuzz, case: Case) -> None:
    run_case(fuzz, case, ci=True)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES + BATCH_CASES, ids=lambda c: c.rpc)
def test_fuzz_slow(fuzz: Fuzz, case: Case) -> None:
    run_case(fuzz, case, ci=False)


# ---- limits: oversized messages and streams ----


def test_every_rpc_a_terminal_may_call_has_a_case() -> None:
    """An RPC added without a case here went unfuzzed (three AdminService calls did). PeerService is the
    instances' own (the PEER role, no terminal): tests/test_privacy_peers.py."""
    fuzzed = {name for case in (*CASES, *BATCH_CASES) for name in case.rpc.split("/")}
    modules = (admin_pb2, batch_pb2, ingest_pb2, privacy_pb2, search_pb2)
    served = {m.name for module in modules for svc in module.DESCRIPTOR.services_by_name.values() for m in svc.methods}
    assert served - fuzzed == set()


def test_oversized_message_is_resource_exhausted(fuzz: Fuzz) -> None:
    request = search_pb2.SearchRequest(mode=search_pb2.SEARCH_MODE_NAME_ONLY, title="A" * (MAX_MESSAGE_BYTES + 1))
    request.purpose = search_pb2.PURPOSE_SECURITY_CLEARANCE
    stub = search_pb2_grpc.SearchServiceStub(fuzz.querier.channel)
    with pytest.raises(grpc.RpcError) as refused:
        stub.Search(request, metadata=fuzz.querier.metadata, timeout=TIMEOUT)
    assert refused.value.code() == Code.RESOURCE_EXHAUSTED

    tracing = f.person(s.OWN_AGENCY, "FZ-HUGE")
    tracing.file.file_number = "F" * (MAX_MESSAGE_BYTES + 1)
    stream = [f.upsert(f.person(s.OWN_AGENCY, "FZ-0")), f.upsert(tracing)]
    stub_i = ingest_pb2_grpc.IngestServiceStub(fuzz.submitter.channel)
    with pytest.raises(grpc.RpcError) as refused:
        list(stub_i.Ingest(iter(stream), metadata=fuzz.submitter.metadata, timeout=TIMEOUT))
    assert refused.value.code() == Code.RESOURCE_EXHAUSTED
    fuzz.healthy()
    assert fuzz.submitter.upsert(f.person(s.OWN_AGENCY, "FZ-1", 1))  # the connection and server go on


def _long_stream(templates: list[ingest_pb2.IngestRequest], count: int) -> list[ingest_pb2.IngestRequest]:
    out = []
    for i in range(count):
        request = ingest_pb2.IngestRequest()
        request.CopyFrom(templates[i % len(templates)])
        request.request_id = str(i)
        out.append(request)
    return out


long_streams = st.builds(_long_stream, st.lists(s.ingest_requests, min_size=1, max_size=6), st.integers(1_000, 4_000))


def test_oversized_stream(fuzz: Fuzz) -> None:
    """A few thousand actions in one stream (several write groups): each answered, in order."""
    fuzz_run(long_streams, 3, lambda requests: ingest_stream(fuzz, requests), ci=True)
    fuzz.healthy()


@pytest.mark.slow
def test_oversized_stream_slow(fuzz: Fuzz) -> None:
    fuzz_run(long_streams, 15, lambda requests: ingest_stream(fuzz, requests), ci=False)
    fuzz.healthy()


@pytest.mark.slow
def test_slow_run_sent_100000_requests(request: pytest.FixtureRequest) -> None:
    """Last in the module: the slow run as a whole sent at least 100,000 generated requests."""
    slow = [item for item in request.session.items if item.get_closest_marker("slow") and item is not request.node]
    if len(slow) < len(CASES) + 1:
        pytest.skip("only part of the slow run was selected")
    total = sum(SENT.values())
    print(f"generated requests sent: {total} {dict(SENT)}")
    assert total >= 100_000
