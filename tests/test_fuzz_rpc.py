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
The bugs the fuzzer found are kept at the end as plain regression tests on their minimal examples.
"""

from __future__ import annotations

import ast
import base64
import dataclasses
import itertools
import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
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
    tracing_pb2,
)
from search_service.accreditation import Purpose, Role
from search_service.errors import field_violations
from search_service.server import MAX_MESSAGE_BYTES, ServerConfig
from tests import factories as f
from tests import strategies as s
from tests.support import ROOT, Client, Index, make_index

M = TypeVar("M", bound=Message)
Code = grpc.StatusCode

TIMEOUT = 60.0
# Deliberate refusals; anything else (INTERNAL, UNKNOWN, UNAVAILABLE, UNIMPLEMENTED ...) fails the test.
DELIBERATE = frozenset(
    {
        Code.INVALID_ARGUMENT,
        Code.PERMISSION_DENIED,
        Code.NOT_FOUND,
        Code.FAILED_PRECONDITION,
        Code.RESOURCE_EXHAUSTED,
    }
)
PER_ITEM = frozenset(
    {
        ingest_pb2.INGEST_OUTCOME_APPLIED,
        ingest_pb2.INGEST_OUTCOME_UNCHANGED,
        ingest_pb2.INGEST_OUTCOME_REJECTED,
        ingest_pb2.INGEST_OUTCOME_NOT_FOUND,
        ingest_pb2.INGEST_OUTCOME_PERMISSION_DENIED,
    }
)
MARKING = "FOR OFFICIAL USE ONLY - PRIVACY SENSITIVE"
# The querier is accredited for every purpose but this one, so some queries are refused for purpose.
NOT_ACCREDITED = Purpose.COUNTERINTELLIGENCE

# Generated requests actually sent, by RPC (a stream's messages each count).
SENT: Counter[str] = Counter()
# How the calls ended, by RPC and status (or per-item outcome): what the run exercised.
OUTCOMES: Counter[tuple[str, str]] = Counter()


# ---- the server, once per module ----


@dataclass
class Fuzz:
    index: Index
    submitter: Client
    querier: Client
    privacy: Client
    admin: Client
    batch: Client
    login: Client  # certificate of an accredited activity, no session: Login only
    logout_account: tuple[Client, str, str]  # a client that logs in afresh before each Logout

    def healthy(self) -> None:
        stub = health_pb2_grpc.HealthStub(self.admin.channel)
        reply = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def _server_settings() -> dict[str, Any]:
    """No rate limit in the way of the fuzzer (when the server has one)."""
    names = {field.name for field in dataclasses.fields(ServerConfig)}
    wanted = {"rate_per_activity": 1e9, "burst_per_activity": 1e9}
    return {k: v for k, v in wanted.items() if k in names}


@pytest.fixture(scope="module")
def fuzz(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzz]:
    index = make_index(Path(tmp_path_factory.mktemp("fuzz")))
    index.start(**_server_settings())
    try:
        submitter = index.client("FZ-SUBMIT", s.OWN_AGENCY, [Role.SUBMITTER])
        querier = index.client(
            "FZ-QUERY", "ARMY-CCF", [Role.QUERIER], purposes=[p for p in Purpose if p is not NOT_ACCREDITED]
        )
        privacy = index.client("FZ-PRIVACY", "DSS", [Role.PRIVACY_OFFICER], purposes=[Purpose.PRIVACY_ACT_REQUEST])
        admin = index.client("FZ-ADMIN", "DSS", [Role.ADMINISTRATOR])
        batch = index.client("FZ-BATCH", "DSS", [Role.BATCH])
        for victim in s.VICTIMS:
            index.accredit(victim, "DSS", [Role.QUERIER])
        login_cert, _, _ = index.accredit("FZ-LOGIN", "DSS", [])
        logout_cert, logout_account, logout_password = index.accredit("FZ-LOGOUT", "DSS", [])
        _seed(submitter)
        yield Fuzz(
            index,
            submitter,
            querier,
            privacy,
            admin,
            batch,
            index.connect(login_cert),
            (index.connect(logout_cert), logout_account, logout_password),
        )
    finally:
        index.stop()


def _seed(submitter: Client) -> None:
    """Records for the deletes, completions, disputes and searches to meet."""
    tracings = [f.person(s.OWN_AGENCY, record) for record in s.RECORDS]
    tracings += [f.open_case(s.OWN_AGENCY, record) for record in s.OPEN_CASES]
    tracings += [f.nac_pending(s.OWN_AGENCY, record) for record in s.NAC_PENDINGS]
    results = submitter.upsert(*tracings)
    assert {r.outcome for r in results} == {ingest_pb2.INGEST_OUTCOME_APPLIED}


# ---- checks ----

_SEGMENT = re.compile(r"([a-z_][a-z0-9_]*)(\[\d+\])?")


def names_a_field(descriptor: Any, path: str) -> bool:
    """Whether a violation's path names a field of the request: every segment a field (or a oneof) of the
    message the previous one led to; `[i]` only on repeated fields."""
    current: Descriptor | None = descriptor
    for segment in path.split("."):
        match = _SEGMENT.fullmatch(segment)
        if match is None or current is None:
            return False
        name, index = match.groups()
        if name in current.fields_by_name:
            field = current.fields_by_name[name]
            if index is not None and not field.is_repeated:
                return False
            current = field.message_type
        elif name in current.oneofs_by_name and index is None:
            current = None  # a oneof is named as a whole: nothing below it
        else:
            return False
    return True


PII_FIELDS = frozenset({"ssn", "surname", "given_name", "middle_name", "password"})


def _server_literals() -> frozenset[str]:
    """Every string literal of the server's code (f-string parts included): what its messages are made of.
    Hypothesis draws text from these too; a "name" that is a piece of one proves no leak when quoted."""
    found: set[str] = set()
    for package in ("indexer", "search_service"):
        for source in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    found.add(node.value)
    return frozenset(found)


SERVER_LITERALS = _server_literals()


def secrets_of(request: Message) -> set[str]:
    """The SSNs, names and passwords in a request that are long enough to recognise verbatim (and are not
    part of the server's own wording)."""
    found: set[str] = set()
    for name, value in s.walk_strings(request):
        if name not in PII_FIELDS:
            continue
        text = value.strip()
        if name == "ssn":
            digits = "".join(c for c in text if c.isascii() and c.isdigit())
            found |= {t for t in (text, digits) if len(t) >= 9}
        elif len(text) >= 6 and any(c.isalpha() for c in text):
            found.add(text)
    return {secret for secret in found if not any(secret in literal for literal in SERVER_LITERALS)}


def assert_no_pii(request: Message, texts: Sequence[str]) -> None:
    leaked = [secret for secret in secrets_of(request) for text in texts if secret in text]
    assert not leaked, f"a refusal quoted what the request carried: {leaked[0][:80]!r}"


def violations_of(error: grpc.RpcError) -> list[tuple[str, str]]:
    """The BadRequest field violations of a status ([] when the status details did not arrive whole)."""
    try:
        return field_violations(error)
    except ValueError:  # the details say one code, the call another: the trailer was cut off
        return []


def _status_lost(error: grpc.RpcError) -> bool:
    """The status trailer outgrew the client's metadata limit (8 KB soft, 16 KB hard): the transport
    ended the call with its own RESOURCE_EXHAUSTED and the server's answer never arrived."""
    return error.code() == Code.RESOURCE_EXHAUSTED and "metadata size exceeds" in (error.details() or "")


def check_refusal(
    rpc: str, request: Message, error: grpc.RpcError, *, also: frozenset[Code] = frozenset(), size: int = 0
) -> None:
    """A refused call: a deliberate status, violations naming request fields, no PII quoted."""
    code = error.code()
    if size > MAX_MESSAGE_BYTES:
        assert code == Code.RESOURCE_EXHAUSTED, f"{rpc}: an oversized message got {code}"
        return
    violations = violations_of(error)
    assert_no_pii(request, [error.details() or "", *(description for _, description in violations)])
    assert code in DELIBERATE | also, f"{rpc} ended in {code}: {error.details()!r}"
    # The transport's own RESOURCE_EXHAUSTED when the status trailer outgrew the metadata limit is no
    # deliberate refusal: the server's real answer (and its violations) never reached the client.
    assert not _status_lost(error), f"{rpc}: status lost: {error.details()!r}"
    if code == Code.INVALID_ARGUMENT:
        assert violations, f"{rpc}: INVALID_ARGUMENT without field violations: {error.details()!r}"
        for path, _ in violations:
            assert names_a_field(request.DESCRIPTOR, path), f"{rpc}: violation names no request field: {path!r}"


def call(
    rpc: str,
    method: Callable[..., Any],
    request: M,
    client: Client,
    *,
    also: frozenset[Code] = frozenset(),
) -> Any | None:
    """A unary call; the answer, or None once the refusal has been checked."""
    SENT[rpc] += 1
    try:
        answer = method(request, metadata=client.metadata, timeout=TIMEOUT)
    except grpc.RpcError as error:
        OUTCOMES[rpc, error.code().name] += 1
        check_refusal(rpc, request, error, also=also, size=request.ByteSize())
        return None
    OUTCOMES[rpc, "OK"] += 1
    return answer


def fuzz_run(strategy: st.SearchStrategy[Any], examples: int, body: Callable[[Any], None], *, ci: bool) -> None:
    """Run `body` over `examples` generated values: derandomized in CI, random in the slow run."""

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=ci,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
    )
    @given(strategy)
    def run(value: Any) -> None:
        body(value)

    run()


# ---- one property per RPC ----


def ingest_stream(fz: Fuzz, requests: list[ingest_pb2.IngestRequest]) -> None:
    SENT["Ingest"] += len(requests)
    stub = ingest_pb2_grpc.IngestServiceStub(fz.submitter.channel)
    try:
        results = list(stub.Ingest(iter(requests), metadata=fz.submitter.metadata, timeout=TIMEOUT))
    except grpc.RpcError as error:
        OUTCOMES["Ingest", error.code().name] += 1
        size = max((r.ByteSize() for r in requests), default=0)
        check_refusal("Ingest", ingest_pb2.IngestRequest(), error, size=size)
        assert size > MAX_MESSAGE_BYTES or error.code() == Code.RESOURCE_EXHAUSTED, (
            "a refused action stopped the stream"
        )
        return
    assert len(results) == len(requests), "every action gets one result"
    for request, result in zip(requests, results, strict=True):
        check_ingest_result(request, result)


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


def check_ingest_result(request: ingest_pb2.IngestRequest, result: ingest_pb2.IngestResult) -> None:
    OUTCOMES["Ingest", ingest_pb2.IngestOutcome.Name(result.outcome)] += 1
    assert result.request_id == request.request_id, "results come back in order, echoing the request id"
    assert result.outcome in PER_ITEM, f"outcome {result.outcome}"
    refused = result.outcome in (ingest_pb2.INGEST_OUTCOME_REJECTED, ingest_pb2.INGEST_OUTCOME_PERMISSION_DENIED)
    if refused:
        assert result.violations, "a refused action says why"
        for violation in result.violations:
            assert names_a_field(request.DESCRIPTOR, violation.field), f"violation names no field: {violation.field!r}"
        assert_no_pii(request, [v.description for v in result.violations])
    else:
        assert not result.violations
    action = request.WhichOneof("action")
    if action is None:
        assert result.outcome == ingest_pb2.INGEST_OUTCOME_REJECTED
    if action == "upsert" and result.outcome == ingest_pb2.INGEST_OUTCOME_APPLIED:
        assert result.stored_version == request.upsert.source_version
    if action == "upsert" and result.outcome == ingest_pb2.INGEST_OUTCOME_UNCHANGED:
        assert result.stored_version >= request.upsert.source_version


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


def check_search_answer(request: search_pb2.SearchRequest, response: search_pb2.SearchResponse) -> None:
    assert len(response.hits) <= (request.page_size or 20)
    assert response.matcher_version
    assert (response.marking == MARKING) == bool(response.hits)
    assert bool(response.disclosure_id) == bool(response.hits), "every disclosure is accounted"
    for hit in response.hits:
        assert not hit.tracing.subject.identifiers.ssn, "a querier sees the last four only"
        assert 0.0 <= hit.score <= 1.0
        if request.types:
            assert hit.type in request.types, "hits are restricted to the types asked"


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
    if case in BATCH_CASES and not batch_served(fz):
        pytest.skip("BatchService is not registered in search_service/server.py")
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


# ---- valid requests get correct answers ----


def test_valid_requests_are_answered(fuzz: Fuzz) -> None:
    """Unspoiled requests are never refused for their content."""

    def body(requests: list[ingest_pb2.IngestRequest]) -> None:
        stub = ingest_pb2_grpc.IngestServiceStub(fuzz.submitter.channel)
        SENT["Ingest"] += len(requests)
        results = list(stub.Ingest(iter(requests), metadata=fuzz.submitter.metadata, timeout=TIMEOUT))
        for request, result in zip(requests, results, strict=True):
            check_ingest_result(request, result)
            assert result.outcome != ingest_pb2.INGEST_OUTCOME_REJECTED, f"valid action refused: {result}"

    fuzz_run(st.lists(s.valid_ingest_requests(), min_size=1, max_size=8), 30, body, ci=True)

    def query(request: search_pb2.SearchRequest) -> None:
        SENT["Search"] += 1
        stub = search_pb2_grpc.SearchServiceStub(fuzz.querier.channel)
        if request.purpose == search_pb2.PURPOSE_COUNTERINTELLIGENCE:  # not accredited for it
            with pytest.raises(grpc.RpcError) as refused:
                stub.Search(request, metadata=fuzz.querier.metadata, timeout=TIMEOUT)
            assert refused.value.code() == Code.PERMISSION_DENIED
            return
        check_search_answer(request, stub.Search(request, metadata=fuzz.querier.metadata, timeout=TIMEOUT))

    fuzz_run(s.valid_searches(), 40, query, ci=True)
    fuzz.healthy()


# ---- limits: oversized messages and streams ----


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


# ---- regressions: the minimal examples of the bugs this fuzzer found (all fixed in the server) ----


def test_forged_page_token_beyond_int64_is_invalid_argument(fuzz: Fuzz) -> None:
    stub = search_pb2_grpc.SearchServiceStub(fuzz.querier.channel)
    for token in ("WHITFIELD|9223372036854775808|0", "t|9223372036854775808"):
        request = search_pb2.SearchRequest(
            mode=search_pb2.SEARCH_MODE_NAME_ONLY,
            purpose=search_pb2.PURPOSE_SECURITY_CLEARANCE,
            page_token=base64.urlsafe_b64encode(token.encode()).decode(),
        )
        if token.startswith("t|"):
            request.title = "ACME"
        else:
            request.name.surname, request.name.given_name = "Whitfield", "Harold"
        with pytest.raises(grpc.RpcError) as refused:
            stub.Search(request, metadata=fuzz.querier.metadata, timeout=TIMEOUT)
        assert refused.value.code() == Code.INVALID_ARGUMENT, f"{token}: {refused.value.code()}"
        assert [path for path, _ in violations_of(refused.value)] == ["page_token"]


def test_unrepresentable_received_at_is_invalid_argument(fuzz: Fuzz) -> None:
    request = privacy_pb2.PrivacyRequest(request_number="PR-BUG-1", kind=privacy_pb2.PRIVACY_REQUEST_KIND_ACCESS)
    request.received_at.seconds = s.TIMESTAMP_MAX + 1
    stub = privacy_pb2_grpc.PrivacyServiceStub(fuzz.privacy.channel)
    with pytest.raises(grpc.RpcError) as refused:
        stub.OpenPrivacyRequest(request, metadata=fuzz.privacy.metadata, timeout=TIMEOUT)
    assert refused.value.code() == Code.INVALID_ARGUMENT
    assert [path for path, _ in violations_of(refused.value)] == ["received_at"]


def test_unary_ingest_violations_name_the_request_fields(fuzz: Fuzz) -> None:
    stub = ingest_pb2_grpc.IngestServiceStub(fuzz.submitter.channel)
    requests: list[tuple[Callable[..., Any], Message]] = [
        (stub.Delete, ingest_pb2.DeleteTracing()),
        (stub.CompleteOpenCaseTracing, ingest_pb2.CompleteOpenCase()),
        (stub.CompleteNacPendingTracing, ingest_pb2.CompleteNacPending()),
    ]
    for method, request in requests:
        with pytest.raises(grpc.RpcError) as refused:
            method(request, metadata=fuzz.submitter.metadata, timeout=TIMEOUT)
        paths = [path for path, _ in violations_of(refused.value)]
        assert paths and all(names_a_field(request.DESCRIPTOR, p) for p in paths), paths


def test_title_search_honours_types(fuzz: Fuzz) -> None:
    tracing = s.tracing_kinds(s.OWN_AGENCY, "FZ-TITLE-1", 1)["impersonal_title"]()
    fuzz.submitter.upsert(tracing)
    request = search_pb2.SearchRequest(
        mode=search_pb2.SEARCH_MODE_NAME_ONLY,
        purpose=search_pb2.PURPOSE_SECURITY_CLEARANCE,
        title="ACME DEFENSE WIDGETS INC",
        types=[tracing_pb2.TRACING_TYPE_FILE],
    )
    stub = search_pb2_grpc.SearchServiceStub(fuzz.querier.channel)
    response = stub.Search(request, metadata=fuzz.querier.metadata, timeout=TIMEOUT)
    assert [h.type for h in response.hits if h.type != tracing_pb2.TRACING_TYPE_FILE] == []
    del request.types[:]  # without the restriction the title is found
    response = stub.Search(request, metadata=fuzz.querier.metadata, timeout=TIMEOUT)
    assert "FZ-TITLE-1" in {h.tracing.key.record_number for h in response.hits}


def test_status_fits_the_client_metadata_limit(fuzz: Fuzz) -> None:
    admin = admin_pb2_grpc.AdminServiceStub(fuzz.admin.channel)
    with pytest.raises(grpc.RpcError) as refused:
        admin.SetActivityStatus(
            admin_pb2.SetActivityStatusRequest(activity_id="V" * 20_000, status=admin_pb2.ACTIVITY_STATUS_ACTIVE),
            metadata=fuzz.admin.metadata,
            timeout=TIMEOUT,
        )
    assert refused.value.code() == Code.NOT_FOUND, refused.value.details()

    request = ingest_pb2.CompleteOpenCase(file=f.person(s.OWN_AGENCY, "FZ-MANY"))
    request.open_case.agency, request.open_case.record_number = s.OWN_AGENCY, s.OPEN_CASES[0]
    for _ in range(300):
        request.file.subject.aliases.add(surname="1")
    stub = ingest_pb2_grpc.IngestServiceStub(fuzz.submitter.channel)
    with pytest.raises(grpc.RpcError) as refused:
        stub.CompleteOpenCaseTracing(request, metadata=fuzz.submitter.metadata, timeout=TIMEOUT)
    assert refused.value.code() == Code.INVALID_ARGUMENT, refused.value.details()
    assert violations_of(refused.value), "the violations arrive (the first ones, at least)"
