"""Prometheus metrics of the running server, on a plain-HTTP port of its own (ServerConfig.metrics_port).

What is measured (docs/RUNBOOK.md says what each means and what to alert on):
- every RPC, by `grpc_service`, `grpc_method`, search `mode` and final `grpc_code`: `dcii_rpc_requests_total`,
  `dcii_rpc_errors_total` (the same, non-OK codes only, so an alert divides one by the other) and the
  latency histogram `dcii_rpc_latency_seconds` (by service, method and mode); `dcii_rpc_in_flight`.
- ingest: `dcii_ingest_actions_total{outcome}` (APPLIED, UNCHANGED, REJECTED, NOT_FOUND, PERMISSION_DENIED).
- batch progress, read from the batch queue at scrape time: `dcii_batch_queries{state="pending"|"done"}`
  over the active batches, `dcii_batches_active{state="QUEUED"|"RUNNING"}`.
- calls on arrival, `dcii_rpc_received_total` (by service and method): also those the server refuses at once
  for its cap on calls in progress (gRPC's `maximum_concurrent_rpcs`, which answers them before any handler
  or interceptor's handler runs, so no other series sees them), and those abandoned while they waited for a
  thread. Received minus finished (`dcii_rpc_requests_total`) is what the server shed.
- the audit trail's writes, which every answered search waits for: `dcii_audit_write_seconds` (writer lock,
  transaction, fsync) and `dcii_audit_entries_total`; a disk that stalls shows here first.
- the store: `dcii_store_tracings` (TracingStore.size_hint, so any backend), `dcii_store_info{backend}` and
  `dcii_store_rebuilding` (a rebuild running or left cut short).
- the process (CPU, memory, open files, GC) from prometheus_client's own collectors.

No PII, by construction: every label value comes from a closed set fixed by the wire contract — method
names from the auth policy table (anything else is "unknown"), modes and ingest outcomes from the proto
enums (anything else is "OTHER"), status codes from grpc.StatusCode. Nothing from a request's content is
ever a label value. Activity ids are deliberately *not* a label: with thousands of accredited terminals
they would multiply every series (methods x modes x codes x histogram buckets) into an unbounded scrape,
and a per-activity time series would itself be a record of who searched when, which belongs in the audit
trail (with its access controls) and not on an unauthenticated metrics port. Refusals per activity are
in the audit trail (REFUSAL events); the metrics carry their codes only.

The per-RPC numbers are taken in a server interceptor placed before the AuthInterceptor, so refusals made
there (UNAUTHENTICATED, PERMISSION_DENIED, RESOURCE_EXHAUSTED) are counted with their codes. The store
size and batch gauges are computed lazily when scraped and cached for `refresh` seconds, never per request
(search_service.metrics_state).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIServer

import grpc
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from dcii.v1 import ingest_pb2, search_pb2
from indexer.store.base import TracingStore
from search_service.auth import POLICY
from search_service.batch_queue import BatchQueue
from search_service.metrics_http import serve_metrics
from search_service.metrics_state import StateCollector

log = logging.getLogger(__name__)

SEARCH_METHOD = "/dcii.v1.SearchService/Search"
INGEST_SERVICE = "/dcii.v1.IngestService/"
NO_MODE = "none"
UNKNOWN_METHOD = ("unknown", "unknown")

# From a sub-millisecond exact lookup to a slow batch submission; the ranked modes sit at 2-100 ms.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# An audit write with its fsync takes ~0.3 ms on a quiet local disk; a stalling one, up to its timeout.
AUDIT_WRITE_BUCKETS = (0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

_MODES = frozenset(search_pb2.SearchMode.keys())
_OUTCOMES = frozenset(ingest_pb2.IngestOutcome.keys())


def _split(method: str) -> tuple[str, str]:
    """("dcii.v1.SearchService", "Search") for a method the policy knows, else ("unknown", "unknown")."""
    if method not in POLICY:
        return UNKNOWN_METHOD
    service, _, name = method.lstrip("/").partition("/")
    return service, name


def search_mode(method: str, request: object) -> str:
    """The search mode of a Search request ("EXACT"...), "OTHER" for a number the contract lacks, else none."""
    if method != SEARCH_METHOD or not isinstance(request, search_pb2.SearchRequest):
        return NO_MODE
    name = search_pb2.SearchMode.Name(request.mode) if request.mode in search_pb2.SearchMode.values() else ""
    return name.removeprefix("SEARCH_MODE_") if name in _MODES else "OTHER"


def ingest_outcomes(response: object) -> collections.Counter[str]:
    """The outcomes an ingest answer carries: one for Ingest's, one per action for IngestBatches'."""
    if isinstance(response, ingest_pb2.IngestResult):
        results: Iterable[ingest_pb2.IngestResult] = (response,)
    elif isinstance(response, ingest_pb2.IngestBatchResult):
        results = response.results
    else:
        return collections.Counter()
    values = ingest_pb2.IngestOutcome.values()
    names = (ingest_pb2.IngestOutcome.Name(r.outcome) if r.outcome in values else "" for r in results)
    return collections.Counter(name.removeprefix("INGEST_OUTCOME_") if name in _OUTCOMES else "OTHER" for name in names)


def _code_of(context: grpc.ServicerContext, default: grpc.StatusCode) -> str:
    # grpc's server context returns the code set by abort() or set_code(), None when none was set (its
    # type stubs do not declare the method).
    read = getattr(context, "code", None)
    code = read() if callable(read) else None
    return (code if isinstance(code, grpc.StatusCode) else default).name


class _RpcMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ("grpc_service", "grpc_method", "mode")
        self.requests = Counter(
            "dcii_rpc_requests",
            "RPCs finished, by method, search mode and status code",
            (*labels, "grpc_code"),
            registry=registry,
        )
        self.errors = Counter(
            "dcii_rpc_errors",
            "RPCs finished with a status other than OK, by method, search mode and status code",
            (*labels, "grpc_code"),
            registry=registry,
        )
        self.latency = Histogram(
            "dcii_rpc_latency_seconds",
            "Time from the call's arrival to its status, by method and search mode",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.received = Counter(
            "dcii_rpc_received",
            "Calls on arrival, by method: also those refused at once for the cap on calls in progress",
            ("grpc_service", "grpc_method"),
            registry=registry,
        )
        self.in_flight = Gauge(
            "dcii_rpc_in_flight", "RPCs being handled now", ("grpc_service", "grpc_method"), registry=registry
        )
        self.ingest = Counter(
            "dcii_ingest_actions",
            "Ingest actions answered, by outcome (APPLIED, UNCHANGED, REJECTED, NOT_FOUND, PERMISSION_DENIED)",
            ("outcome",),
            registry=registry,
        )
        for outcome in ("APPLIED", "UNCHANGED", "REJECTED", "NOT_FOUND", "PERMISSION_DENIED"):
            self.ingest.labels(outcome)  # present at 0 from the start, so rate() works on the first scrape

    def finished(self, names: tuple[str, str], mode: str, code: str, started: float) -> None:
        self.latency.labels(*names, mode).observe(time.perf_counter() - started)
        self.requests.labels(*names, mode, code).inc()
        if code != "OK":
            self.errors.labels(*names, mode, code).inc()


class _Call:
    """One RPC being measured: started when it arrives, finished once with its status code."""

    def __init__(self, rpc: _RpcMetrics, method: str, names: tuple[str, str]) -> None:
        self._rpc = rpc
        self._method = method
        self._names = names
        self.mode = NO_MODE
        self._started = time.perf_counter()
        rpc.in_flight.labels(*names).inc()

    def response(self, response: object) -> None:
        for outcome, count in ingest_outcomes(response).items():
            self._rpc.ingest.labels(outcome).inc(count)

    def finish(self, code: str) -> None:
        if code == "INVALID_ARGUMENT" and self._method.startswith(INGEST_SERVICE):
            self._rpc.ingest.labels("REJECTED").inc()  # a unary ingest call refused by the edit criteria
        self._rpc.in_flight.labels(*self._names).dec()
        self._rpc.finished(self._names, self.mode, code, self._started)


Behavior = Callable[..., Any]


def _noting_mode(requests: Iterator[Any], call: _Call, method: str) -> Iterator[Any]:
    """The requests as they come, the call's search mode taken from the first (a Search carries one)."""
    for request in requests:
        if call.mode == NO_MODE:
            call.mode = search_mode(method, request)
        yield request


class MetricsInterceptor(grpc.ServerInterceptor):
    """Counts and times every call; put it first in the server's interceptors (outside the auth one)."""

    def __init__(self, rpc: _RpcMetrics) -> None:
        self._rpc = rpc

    def _unary(self, behavior: Behavior, method: str, names: tuple[str, str]) -> Behavior:
        def handler(request: Any, context: grpc.ServicerContext) -> Any:
            call = _Call(self._rpc, method, names)
            call.mode = search_mode(method, request)
            if method == SEARCH_METHOD and not isinstance(request, search_pb2.SearchRequest):
                # A Search reaches here as a stream of its one message (search_service.first_message).
                request = _noting_mode(request, call, method)
            try:
                response = behavior(request, context)
            except BaseException:
                call.finish(_code_of(context, grpc.StatusCode.UNKNOWN))
                raise
            call.response(response)
            call.finish(_code_of(context, grpc.StatusCode.OK))
            return response

        return handler

    def _stream(self, behavior: Behavior, method: str, names: tuple[str, str]) -> Behavior:
        def handler(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            call = _Call(self._rpc, method, names)
            call.mode = search_mode(method, request)
            try:
                for response in behavior(request, context):
                    call.response(response)
                    yield response
            except GeneratorExit:  # the client went away mid-stream
                call.finish(_code_of(context, grpc.StatusCode.CANCELLED))
                raise
            except BaseException:
                call.finish(_code_of(context, grpc.StatusCode.UNKNOWN))
                raise
            call.finish(_code_of(context, grpc.StatusCode.OK))

        return handler

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = continuation(handler_call_details)
        method = handler_call_details.method
        names = _split(method)
        # Counted here, on gRPC's polling thread, before gRPC checks its cap on calls in progress: a call it
        # refuses never reaches the handler below.
        self._rpc.received.labels(*names).inc()
        if handler is None:
            # grpc answers UNIMPLEMENTED itself; the method name the client sent is never a label value.
            self._rpc.requests.labels(*UNKNOWN_METHOD, NO_MODE, "UNIMPLEMENTED").inc()
            self._rpc.errors.labels(*UNKNOWN_METHOD, NO_MODE, "UNIMPLEMENTED").inc()
            return None
        codec = {
            "request_deserializer": handler.request_deserializer,
            "response_serializer": handler.response_serializer,
        }
        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(self._unary(handler.unary_unary, method, names), **codec)
        if handler.stream_unary is not None:
            return grpc.stream_unary_rpc_method_handler(self._unary(handler.stream_unary, method, names), **codec)
        if handler.unary_stream is not None:
            return grpc.unary_stream_rpc_method_handler(self._stream(handler.unary_stream, method, names), **codec)
        assert handler.stream_stream is not None
        return grpc.stream_stream_rpc_method_handler(self._stream(handler.stream_stream, method, names), **codec)


class ServerMetrics:
    """The server's metrics: made before the gRPC server (its interceptor goes in), then `start`ed."""

    def __init__(self, *, refresh: float = 30.0) -> None:
        self.registry = CollectorRegistry()
        self._rpc = _RpcMetrics(self.registry)
        self.interceptor = MetricsInterceptor(self._rpc)
        self._audit_seconds = Histogram(
            "dcii_audit_write_seconds",
            "One write of the audit trail: writer lock, transaction, fsync (answered searches wait for it)",
            buckets=AUDIT_WRITE_BUCKETS,
            registry=self.registry,
        )
        self._audit_entries = Counter(
            "dcii_audit_entries", "Entries made durable in the audit trail by this process", registry=self.registry
        )
        self._ready = Gauge(
            "dcii_ready",
            "1 while searches can be answered (the store read, the audit trail written), else 0",
            registry=self.registry,
        )
        self._ready.set(1)
        self._refresh = refresh
        self._httpd: WSGIServer | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)

    def audit_written(self, seconds: float, entries: int) -> None:
        """AuditLog.observe_writes' observer."""
        self._audit_seconds.observe(seconds)
        self._audit_entries.inc(entries)

    def readiness_changed(self, ready: bool) -> None:
        """Readiness's observer (search_service.readiness)."""
        self._ready.set(1 if ready else 0)

    def start(self, host: str, port: int, store: TracingStore, batch_queue: BatchQueue) -> int:
        """Watch the store and the batch queue and serve /metrics on host:port (0: any free port)."""
        self.registry.register(StateCollector(store, batch_queue, self._refresh))
        self._httpd, self._thread = serve_metrics(host, port, self.registry)
        self.port = int(self._httpd.server_port)
        return self.port

    def close(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
