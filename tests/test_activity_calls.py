"""The per-activity cap on calls in progress (ServerConfig.max_calls_per_activity): one activity cannot hold
every worker thread; the call over its cap is refused at once with RESOURCE_EXHAUSTED and counted in the
metrics; other activities and health checks are served; and every call gives its slot back however it ends
(normal end, handler error, cancel, deadline, client gone), so no activity is locked out by its own past."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from dcii.v1 import batch_pb2, batch_pb2_grpc, ingest_pb2, search_pb2, tracing_pb2
from indexer.exc import ResourceExhausted
from search_service import pki
from search_service.accreditation import Role
from search_service.batch_worker import BatchSettings
from search_service.limits import CallLimiter
from search_service.server import ServerConfig
from tests import factories as f
from tests.metrics_support import samples, scrape, value
from tests.support import ROOT, Client, Index, held_ingest_streams, make_index

CAP = 2
T = TypeVar("T")
Login = tuple[pki.Issued, str, str]  # an accredited activity's certificate, account and password
INGEST = {"grpc_service": "dcii.v1.IngestService", "grpc_method": "Ingest", "mode": "none"}


# ---- the limiter itself ----


def test_each_activity_has_its_own_cap_and_a_slot_is_released_once() -> None:
    limiter = CallLimiter(2)
    first, second = limiter.acquire("A"), limiter.acquire("A")
    with pytest.raises(ResourceExhausted, match="activity A may have 2 calls in progress at once"):
        limiter.acquire("A")
    with limiter.acquire("B"):  # another activity is not affected
        assert limiter.in_progress("B") == 1
    assert limiter.in_progress("B") == 0
    first.release()
    first.release()  # a second release (the end-of-call callback after the handler's own) changes nothing
    assert limiter.in_progress("A") == 1
    third = limiter.acquire("A")
    second.release()
    third.release()
    assert limiter.in_progress("A") == 0 and not limiter._held  # no entry kept for an activity without calls


def test_a_cap_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        CallLimiter(0)


def test_the_default_cap_is_half_the_worker_pool() -> None:
    assert ServerConfig(Path(), Path()).calls_per_activity == ServerConfig(Path(), Path()).max_workers // 2
    assert ServerConfig(Path(), Path(), max_workers=8).calls_per_activity == 4
    assert ServerConfig(Path(), Path(), max_workers=1).calls_per_activity == 1
    assert ServerConfig(Path(), Path(), max_calls_per_activity=100).calls_per_activity == 100


# ---- a real server ----


@pytest.fixture
def index(tmp_path: Path) -> Iterator[Index]:
    built = make_index(tmp_path)
    built.start(max_calls_per_activity=CAP, metrics_port=0, batch=BatchSettings(threads=0))
    try:
        yield built
    finally:
        built.stop()


def _idle(hold: threading.Event, record: str) -> Iterator[ingest_pb2.IngestRequest]:
    """One action, then nothing until `hold` is set: the stream stays open, holding its call's slot."""
    yield f.upsert(f.person(record=record))
    hold.wait()


@contextmanager
def _held_streams(index: Index, cert: Login, count: int) -> Iterator[tuple[int, list[grpc.RpcError]]]:
    """`count` idle ingest streams of one activity, each on its own connection (tests.support)."""
    clients = [_connect(index, cert) for _ in range(count)]
    with held_ingest_streams(clients, lambda n: f.upsert(f.person(record=f"NCIS-H{n}")), timeout=30) as held:
        yield held


def _despite_the_cap(action: Callable[[], T], timeout: float = 10.0) -> T:
    """`action`, again while the cap refuses it: the calls of the step before, just cancelled, may still be
    unwinding on the server for a moment (a login is a call, and capped like any other)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return action()
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED or time.monotonic() > deadline:
                raise
        time.sleep(0.05)


def _connect(index: Index, login: Login) -> Client:
    cert, account, password = login
    client = index.connect(cert)
    _despite_the_cap(lambda: client.login(account, password))
    return client


def _whole_cap_free(index: Index, login: Login, timeout: float = 10.0) -> None:
    """The activity can hold exactly CAP streams at once again (retried while the server unwinds)."""
    deadline = time.monotonic() + timeout
    while True:
        with _held_streams(index, login, CAP + 1) as (accepted, refused):
            pass
        if accepted == CAP or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert accepted == CAP, f"{accepted} of {CAP} slots free: the others leaked"
    assert [error.code() for error in refused] == [grpc.StatusCode.RESOURCE_EXHAUSTED]


def test_calls_over_the_cap_are_refused_at_once_and_others_are_served(index: Index) -> None:
    busy_login = index.accredit("NCIS-RA-01", "NCIS", [Role.SUBMITTER])
    other = index.client("NCIS-RA-02", "NCIS", [Role.SUBMITTER])
    querier = index.client("CCF-TERM", "ARMY-CCF", [Role.QUERIER])
    busy = _connect(index, busy_login)
    with _held_streams(index, busy_login, CAP) as (accepted, _):
        assert accepted == CAP
        started = time.perf_counter()
        with pytest.raises(grpc.RpcError) as refused:
            busy.upsert(f.person(record="NCIS-OVER"))
        waited = time.perf_counter() - started
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and waited < 1.0, (refused.value, waited)
        assert refused.value.details() == (
            f"concurrency limit: activity NCIS-RA-01 may have {CAP} calls in progress at once; "
            "retry when one of them ends"
        )
        with pytest.raises(grpc.RpcError) as unary:  # a unary call is capped the same way
            busy.ingest.Delete(f.delete("NCIS", "NCIS-H0", 1).delete, metadata=busy.metadata, timeout=10)
        assert unary.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        # Others are served: another activity of the same agency, a querier, and a health check on the
        # busy activity's own connection (health checks are infrastructure, never capped).
        assert [r.outcome for r in other.upsert(f.person(record="NCIS-OTHER"))] == [ingest_pb2.INGEST_OUTCOME_APPLIED]
        querier.search(mode=search_pb2.SEARCH_MODE_NAME_ONLY, name={"surname": "Whitfield", "given_name": "Harold"})
        health = health_pb2_grpc.HealthStub(busy.channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
    # Once the streams end, the same activity is served again.
    _whole_cap_free(index, busy_login)
    after = _despite_the_cap(lambda: busy.upsert(f.person(record="NCIS-AFTER")))
    assert [r.outcome for r in after] == [ingest_pb2.INGEST_OUTCOME_APPLIED]

    assert index.running is not None and index.running.metrics is not None
    found = samples(scrape(index.running.metrics.port))
    # Counted like every refusal made before the handler: by method and code (no activity label).
    assert value(found, "dcii_rpc_errors_total", **INGEST, grpc_code="RESOURCE_EXHAUSTED") >= 2
    delete = {"grpc_service": "dcii.v1.IngestService", "grpc_method": "Delete", "mode": "none"}
    assert value(found, "dcii_rpc_errors_total", **delete, grpc_code="RESOURCE_EXHAUSTED") == 1


def _cancelled_after_first(client: Client, hold: threading.Event, n: int) -> None:
    call = client.ingest.Ingest(_idle(hold, f"NCIS-C{n}"), metadata=client.metadata, timeout=30)
    next(call)
    call.cancel()


def _cut_by_deadline(client: Client, hold: threading.Event, n: int) -> None:
    try:
        list(client.ingest.Ingest(_idle(hold, f"NCIS-D{n}"), metadata=client.metadata, timeout=0.3))
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
            return
        raise
    raise AssertionError("an idle stream outlived its deadline")


def _unary_past_deadline(client: Client, n: int) -> None:
    try:
        client.searcher.Search(
            search_pb2.SearchRequest(
                mode=search_pb2.SEARCH_MODE_FUZZY,
                name=tracing_pb2.PersonName(surname="Whitfield", given_name="Harold"),
                purpose=search_pb2.PURPOSE_SECURITY_CLEARANCE,
            ),
            metadata=client.metadata,
            timeout=0.001,
        )
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
            raise


def _refused_by_the_handler(client: Client, n: int) -> None:
    """Admitted, then refused inside the handler: another agency's tracing (PERMISSION_DENIED)."""
    try:
        client.ingest.Delete(f.delete("DIA", f"DIA-{n}", 1).delete, metadata=client.metadata, timeout=10)
    except grpc.RpcError as error:
        if error.code() == grpc.StatusCode.PERMISSION_DENIED:
            return
        raise
    raise AssertionError("another agency's tracing was deleted")


def _idle_batch_cancelled(client: Client, hold: threading.Event) -> None:
    """A client stream with a unary answer (SubmitBatch) left idle, then cancelled."""

    def requests() -> Iterator[batch_pb2.SubmitBatchRequest]:
        yield batch_pb2.SubmitBatchRequest(label="idle")
        hold.wait()

    future = batch_pb2_grpc.BatchServiceStub(client.channel).SubmitBatch.future(
        requests(), metadata=client.metadata, timeout=30
    )
    time.sleep(0.05)
    future.cancel()


def _client_gone(index: Index, login: Login, hold: threading.Event, n: int) -> None:
    """The client goes away mid-stream: its connection closes under the call."""
    gone = _connect(index, login)
    try:
        call = gone.ingest.Ingest(_idle(hold, f"NCIS-G{n}"), metadata=gone.metadata, timeout=30)
        next(call)
    finally:
        gone.close()


def test_no_slot_leaks_however_the_calls_end(index: Index, caplog: pytest.LogCaptureFixture) -> None:
    """Each step is retried while the cap refuses it (the step before may still be unwinding); what
    matters is the end: the activity holds its whole cap again. A client's cancel is not a server error."""
    login = index.accredit("NCIS-RA-01", "NCIS", [Role.SUBMITTER, Role.QUERIER, Role.BATCH])
    client = _connect(index, login)
    hold = threading.Event()
    try:
        for n in range(8):
            _despite_the_cap(lambda: _cancelled_after_first(client, hold, n))  # noqa: B023 (called at once)
            _despite_the_cap(lambda: _cut_by_deadline(client, hold, n))  # noqa: B023
            _despite_the_cap(lambda: _unary_past_deadline(client, n))  # noqa: B023
            _despite_the_cap(lambda: _refused_by_the_handler(client, n))  # noqa: B023
            _idle_batch_cancelled(client, hold)
            _despite_the_cap(lambda: _client_gone(index, login, hold, n))  # noqa: B023
            _despite_the_cap(lambda: client.upsert(f.person(record=f"NCIS-N{n}")))  # noqa: B023 (a normal end)
            if n % 4 == 3:
                _whole_cap_free(index, login)
    finally:
        hold.set()
    _whole_cap_free(index, login)
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_the_limits_are_documented_where_the_other_limits_are() -> None:
    security = (ROOT / "SECURITY.md").read_text()
    for setting in (
        "max_calls_per_activity",
        "max_streams_per_connection",
        "disclosures_per_activity_per_day",
        "rate_per_activity",
        "max_concurrent_rpcs",
        "max_workers",
    ):
        assert f"`{setting}`" in security, f"{setting} is not in SECURITY.md"
        assert setting in {field.name for field in dataclasses.fields(ServerConfig)}
