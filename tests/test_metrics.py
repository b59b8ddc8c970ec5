"""Prometheus metrics of a real server: per-RPC counts, codes and latency by search mode, ingest outcomes,
batch progress and store size, on their own plain-HTTP port, with bounded labels only."""

from __future__ import annotations

import contextlib
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from dcii.v1 import batch_pb2, batch_pb2_grpc, ingest_pb2, search_pb2, tracing_pb2
from search_service import metrics_state
from search_service.accreditation import Role
from search_service.batch_worker import BatchSettings
from search_service.metrics import AUDIT_WRITE_BUCKETS, LATENCY_BUCKETS
from tests import factories
from tests.metrics_support import samples, scrape, value
from tests.support import ROOT, Index, make_index

SERVICES = {
    "dcii.v1.SearchService",
    "dcii.v1.IngestService",
    "dcii.v1.SessionService",
    "dcii.v1.AdminService",
    "dcii.v1.PrivacyService",
    "dcii.v1.BatchService",
    "grpc.health.v1.Health",
    "grpc.reflection.v1alpha.ServerReflection",
    "grpc.reflection.v1.ServerReflection",
    "unknown",
}
MODES = {"none", "EXACT", "NAME_ONLY", "NONSTANDARD", "FUZZY", "PID_QUALIFIED", "UNSPECIFIED", "OTHER"}
CODES = {code.name for code in grpc.StatusCode}


@pytest.fixture
def index(tmp_path: Path) -> Iterator[Index]:
    built = make_index(tmp_path)
    # No batch worker: a submitted batch stays pending, so its progress can be read exactly.
    built.start(metrics_port=0, batch=BatchSettings(threads=0))
    try:
        yield built
    finally:
        built.stop()


def test_rpcs_ingest_batch_and_store_are_measured(index: Index) -> None:
    assert index.running is not None and index.running.metrics is not None
    port = index.running.metrics.port
    submitter = index.client("NCIS-HQ", "NCIS", [Role.SUBMITTER])
    querier = index.client("ADJ-1", "DSS", [Role.QUERIER, Role.BATCH])

    tracings = [factories.person(record=f"NCIS-{i}") for i in range(3)]
    bad = factories.person(record="NCIS-BAD", ssn="000-12-3456")
    submitter.upsert(*tracings, bad)  # 3 applied, 1 rejected
    submitter.upsert(tracings[0])  # a replay: unchanged
    batched = [factories.person(record=f"NCIS-B{i}") for i in range(2)] + [
        factories.person(record="NCIS-BAD2", ssn="000-1")
    ]
    message = ingest_pb2.IngestBatchRequest(requests=[factories.upsert(t) for t in batched])
    answers = list(submitter.ingest.IngestBatches(iter([message]), metadata=submitter.metadata, timeout=30))
    assert len(answers[0].results) == 3  # the bulk path's actions count too (they were left out): 2 applied, 1 rejected
    with pytest.raises(grpc.RpcError):  # a unary ingest refused by the edit criteria
        submitter.ingest.Delete(ingest_pb2.DeleteTracing(source_version=0), metadata=submitter.metadata, timeout=10)

    querier.search(mode=search_pb2.SEARCH_MODE_EXACT, name={"surname": "Whitfield", "given_name": "Harold"}, **_ssn())
    querier.search(mode=search_pb2.SEARCH_MODE_EXACT, name={"surname": "Whitfield", "given_name": "Harold"}, **_ssn())
    querier.search(mode=search_pb2.SEARCH_MODE_FUZZY, name={"surname": "Whitfeld", "given_name": "Harold"})
    with pytest.raises(grpc.RpcError) as refused:
        querier.search(mode=99, name={"surname": "Whitfield", "given_name": "Harold"})  # a mode the contract lacks
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    anonymous = index.connect(index.accredit("TERM-2", "DSS", [Role.QUERIER])[0])  # never logged in
    with pytest.raises(grpc.RpcError) as unauthenticated:
        anonymous.search(mode=search_pb2.SEARCH_MODE_EXACT, name={"surname": "X", "given_name": "Y"}, **_ssn())
    assert unauthenticated.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as unknown:
        no_such: grpc.UnaryUnaryMultiCallable[bytes, bytes] = querier.channel.unary_unary(
            "/dcii.v1.SearchService/NoSuchMethod"
        )
        no_such(b"", timeout=10)
    assert unknown.value.code() == grpc.StatusCode.UNIMPLEMENTED

    queries = [
        batch_pb2.BatchQuery(
            query_id=str(i),
            query=search_pb2.SearchRequest(
                mode=search_pb2.SEARCH_MODE_NAME_ONLY,
                name=tracing_pb2.PersonName(surname="Whitfield", given_name="Harold"),
                purpose=search_pb2.PURPOSE_SECURITY_CLEARANCE,
            ),
        )
        for i in range(4)
    ]
    batch_pb2_grpc.BatchServiceStub(querier.channel).SubmitBatch(
        iter([batch_pb2.SubmitBatchRequest(label="m", queries=queries)]), metadata=querier.metadata, timeout=30
    )

    text = scrape(port)
    found = samples(text)
    runbook = (ROOT / "docs" / "RUNBOOK.md").read_text()
    for family in text_string_to_metric_families(text):
        name = family.name.removesuffix("_created")  # prometheus_client's creation-time series of a counter
        assert not name.startswith("dcii_") or name in runbook, f"{name} is not in the runbook"
    search = {"grpc_service": "dcii.v1.SearchService", "grpc_method": "Search"}
    assert value(found, "dcii_store_rebuilding") == 0
    assert value(found, "dcii_rpc_requests_total", **search, mode="EXACT", grpc_code="OK") == 2
    assert value(found, "dcii_rpc_requests_total", **search, mode="FUZZY", grpc_code="OK") == 1
    assert value(found, "dcii_rpc_errors_total", **search, mode="OTHER", grpc_code="INVALID_ARGUMENT") == 1
    # Refused on its headers, before its message is read (search_service.first_message): no mode known.
    assert value(found, "dcii_rpc_errors_total", **search, mode="none", grpc_code="UNAUTHENTICATED") == 1
    assert value(found, "dcii_rpc_errors_total", **search, mode="EXACT", grpc_code="OK") == 0
    assert value(found, "dcii_rpc_latency_seconds_count", **search, mode="EXACT") == 2
    # Every call on arrival, also those a handler never saw (here: none were shed, so the same five)
    assert value(found, "dcii_rpc_received_total", **search) == 5
    assert value(found, "dcii_rpc_received_total", grpc_service="unknown", grpc_method="unknown") == 1
    assert value(found, "dcii_rpc_latency_seconds_bucket", **search, mode="FUZZY", le="+Inf") == 1
    assert value(found, "dcii_rpc_latency_seconds_sum", **search, mode="FUZZY") > 0
    unknown_labels = {"grpc_service": "unknown", "grpc_method": "unknown", "mode": "none"}
    assert value(found, "dcii_rpc_errors_total", **unknown_labels, grpc_code="UNIMPLEMENTED") == 1
    login = {"grpc_service": "dcii.v1.SessionService", "grpc_method": "Login", "mode": "none", "grpc_code": "OK"}
    assert value(found, "dcii_rpc_requests_total", **login) == 2
    ingest = {"grpc_service": "dcii.v1.IngestService", "grpc_method": "Ingest", "mode": "none", "grpc_code": "OK"}
    assert value(found, "dcii_rpc_requests_total", **ingest) == 2

    assert value(found, "dcii_ingest_actions_total", outcome="APPLIED") == 5
    assert value(found, "dcii_ingest_actions_total", outcome="UNCHANGED") == 1
    assert value(found, "dcii_ingest_actions_total", outcome="REJECTED") == 3  # stream, batch, unary
    assert value(found, "dcii_store_tracings") == 5
    assert value(found, "dcii_store_info", backend="SqliteStore") == 1
    assert value(found, "dcii_batch_queries", state="pending") == 4
    assert value(found, "dcii_batch_queries", state="done") == 0
    assert value(found, "dcii_batches_active", state="QUEUED") == 1
    assert value(found, "dcii_rpc_in_flight", grpc_service="dcii.v1.SearchService", grpc_method="Search") == 0
    assert any(name == "process_resident_memory_bytes" for name, _ in found)

    # Every label value is from a closed set; nothing names an activity, an operator or a person.
    for name, labels in found:
        keys = dict(labels)
        assert keys.get("grpc_service", "unknown") in SERVICES, (name, keys)
        assert keys.get("mode", "none") in MODES, (name, keys)
        assert keys.get("grpc_code", "OK") in CODES, (name, keys)
        assert not {"activity", "activity_id", "operator", "agency"} & set(keys), (name, keys)


def test_audit_writes_are_timed_and_their_entries_counted(index: Index) -> None:
    """dcii_audit_write_seconds times each write of the trail (the searches wait for it) and
    dcii_audit_entries_total counts exactly the entries the trail gained from this server."""
    assert index.running is not None and index.running.metrics is not None
    port = index.running.metrics.port
    submitter = index.client("NCIS-HQ", "NCIS", [Role.SUBMITTER])
    querier = index.client("ADJ-1", "DSS", [Role.QUERIER])
    anonymous = index.connect(index.accredit("TERM-2", "DSS", [Role.QUERIER])[0])  # never logged in
    submitter.upsert(*[factories.person(record=f"NCIS-{i}") for i in range(3)])
    before, trail_before = samples(scrape(port)), _trail_entries(index)

    for _ in range(2):  # three hits each: three disclosures each
        querier.search(
            mode=search_pb2.SEARCH_MODE_EXACT, name={"surname": "Whitfield", "given_name": "Harold"}, **_ssn()
        )
    with pytest.raises(grpc.RpcError):  # a refusal, also in the trail
        anonymous.search(mode=search_pb2.SEARCH_MODE_EXACT, name={"surname": "X", "given_name": "Y"}, **_ssn())

    after, trail_after = samples(scrape(port)), _trail_entries(index)
    gained = trail_after - trail_before
    assert gained >= 7
    assert value(after, "dcii_audit_entries_total") - value(before, "dcii_audit_entries_total") == gained
    writes = value(after, "dcii_audit_write_seconds_count") - value(before, "dcii_audit_write_seconds_count")
    assert 3 <= writes <= gained  # one call after another: a write each, none shared
    assert value(after, "dcii_audit_write_seconds_sum") > value(before, "dcii_audit_write_seconds_sum")
    assert list(AUDIT_WRITE_BUCKETS) == sorted(AUDIT_WRITE_BUCKETS)


def _trail_entries(index: Index) -> int:
    with contextlib.closing(sqlite3.connect(index.data_dir / "audit.db")) as conn:
        return int(conn.execute("SELECT count(*) FROM entry").fetchone()[0])


def test_latency_buckets_are_sorted_and_the_port_closes_on_stop(tmp_path: Path) -> None:
    assert list(LATENCY_BUCKETS) == sorted(LATENCY_BUCKETS)
    built = make_index(tmp_path)
    built.start(metrics_port=0)
    assert built.running is not None and built.running.metrics is not None
    port = built.running.metrics.port
    assert "dcii_rpc_requests" in scrape(port)
    built.stop()
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0


def test_no_metrics_port_means_no_interceptor_and_no_listener(tmp_path: Path) -> None:
    built = make_index(tmp_path)
    built.start()
    try:
        assert built.running is not None and built.running.metrics is None
    finally:
        built.stop()


def _ssn() -> dict[str, object]:
    return {"identifiers": {"ssn": "318-52-4471"}}


def test_the_metrics_port_holds_a_bounded_number_of_connections(index: Index) -> None:
    # Each connection had a thread of its own, with no timeout and no cap: 500 half-sent requests (no
    # certificate needed) held 500 threads in the serving process.
    from search_service.metrics_http import MAX_CONNECTIONS

    assert index.running is not None and index.running.metrics is not None
    port = index.running.metrics.port
    before = threading.active_count()
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(100)]
    try:
        for connection in held:
            connection.sendall(b"GET /metrics HTTP/1.1\r\n")  # never finished
        time.sleep(0.5)
        assert threading.active_count() - before <= MAX_CONNECTIONS
    finally:
        for connection in held:
            connection.close()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            assert "dcii_store_tracings" in scrape(port)  # served again once they are gone
            break
        except OSError:
            time.sleep(0.2)
    else:
        raise AssertionError("the metrics port did not answer again")


def test_a_connection_that_idles_out_writes_no_traceback(index: Index, capfd: pytest.CaptureFixture[str]) -> None:
    # socketserver printed each timed-out connection's traceback to the server's stderr: any peer (no
    # certificate needed) could break the one-JSON-object-a-line log at will (ops review 6).
    from search_service.metrics_http import READ_TIMEOUT

    assert index.running is not None and index.running.metrics is not None
    with socket.create_connection(("127.0.0.1", index.running.metrics.port)) as idle:
        idle.sendall(b"GET /metrics HTTP/1.1\r\n")  # never finished
        time.sleep(READ_TIMEOUT + 1.5)
        assert idle.recv(1) == b""  # closed by the server
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Exception occurred" not in err, err


def test_a_gauge_whose_source_hangs_does_not_hold_the_scrape() -> None:
    """A hung cluster held every scrape past Prometheus's 10 s (the store's size read in the scrape): every
    instance looked down while its UNAVAILABLE counters were the story (a review of the OpenSearch backend)."""
    release = threading.Event()
    readings = iter([41, 42])

    def slow() -> int:
        release.wait(timeout=30)
        return next(readings)

    cached = metrics_state.Cached(slow, ttl=0.0, what="store")
    started = time.monotonic()
    assert cached.get() is None  # nothing read yet: the gauge is left out, at once
    assert time.monotonic() - started < 2
    release.set()
    deadline = time.monotonic() + 10
    while cached.get() is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert cached.get() in (41, 42)
