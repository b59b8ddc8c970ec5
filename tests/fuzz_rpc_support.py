"""What the RPC fuzzer's test modules (tests/test_fuzz_rpc.py, tests/test_fuzz_rpc_answers.py) share: the
server they call (the `fuzz` fixture: one real server over mutual TLS per module, seeded, with a logged-in client
for each role), the checks every answer and refusal must pass (a deliberate status, violations that name request
fields, no PII quoted), a unary call that counts and checks, a hypothesis run derandomized in CI, and the ingest
stream and search answer checks. Not a test module: each test module binds the fixture under its name."""

from __future__ import annotations

import ast
import dataclasses
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

from dcii.v1 import ingest_pb2, ingest_pb2_grpc, search_pb2
from search_service.accreditation import Purpose, Role
from search_service.errors import field_violations
from search_service.server import ServerConfig
from search_service.server_grpc import MAX_MESSAGE_BYTES
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
        login_cert, _, _ = index.accredit("FZ-LOGIN", "DSS", [Role.QUERIER])  # a role: an activity has one
        logout_cert, logout_account, logout_password = index.accredit("FZ-LOGOUT", "DSS", [Role.QUERIER])
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


# ---- the ingest stream and the answers' checks (the properties and the valid requests use them) ----


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
