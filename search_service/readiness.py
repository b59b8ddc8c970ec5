"""Whether this server can answer searches now: the health service's status for the services that need the
store, the audit trail and the registry, for a load balancer's or Kubernetes' readiness probe.

The health service said SERVING while every search failed (a review of the OpenSearch backend: the cluster
unreachable, each search answered UNAVAILABLE, `dcii-healthcheck` exit 0), and so it did while the audit
trail could not be written (a full disk: every search that would disclose fails closed). Now:

- the store is read every `PROBE_SECONDS` (its count of live tracings, one request); after
  `STORE_FAILURES` failures in a row the store-bound services are NOT_SERVING, until a read succeeds;
- a write of the audit trail that fails makes them NOT_SERVING at once, and every `PROBE_SECONDS` the
  trail is tried with one entry of its own (kind `TRAIL_WRITABLE`: the trail records when it could be
  written again after refusing); once that entry is written they serve again;
- so with a write of the registry that the file refuses (search_service.registry: a full disk, a read-only
  file): every client logs in before it asks anything, and a login writes a session row. With the disk full
  every login failed while the health service said SERVING (an operator's test). Every `PROBE_SECONDS`
  the registry is written as a login writes it (and the row taken back); once that works they serve again.

The server as a whole ("" to the health service) stays SERVING: the process is alive and answers, which is
what a liveness probe asks (RUNBOOK, "Readiness and liveness"). Each change is logged (the reason only,
no PII) and is the metric `dcii_ready`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from grpc_health.v1 import health, health_pb2

from dcii.v1 import ingest_pb2, privacy_pb2, search_pb2
from indexer.failures import failure_fields
from indexer.store.base import TracingStore
from search_service.accounting import AuditLog
from search_service.registry import Registry

log = logging.getLogger(__name__)

PROBE_SECONDS = 5.0
STORE_FAILURES = 2
RESTORED = "TRAIL_WRITABLE"

# The services whose calls read the store, and (searches, access requests) record disclosures.
STORE_BOUND: tuple[str, ...] = (
    search_pb2.DESCRIPTOR.services_by_name["SearchService"].full_name,
    ingest_pb2.DESCRIPTOR.services_by_name["IngestService"].full_name,
    privacy_pb2.DESCRIPTOR.services_by_name["PrivacyService"].full_name,
)

SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING


class Readiness:
    """Keeps the store-bound services' health status in step with the store, the audit trail and the
    registry (None: not watched)."""

    def __init__(
        self,
        store: TracingStore,
        audit: AuditLog,
        health_servicer: health.HealthServicer,
        services: Sequence[str] = STORE_BOUND,
        on_change: Callable[[bool], None] | None = None,
        registry: Registry | None = None,
    ) -> None:
        self._store, self._audit, self._health, self._services = store, audit, health_servicer, tuple(services)
        self._on_change = on_change  # the metrics' dcii_ready
        self._lock = threading.Lock()
        self._applying = threading.Lock()  # held while a change of readiness reaches the health service
        self._store_failures = 0
        self._audit_failing = False
        self._registry, self._registry_failing = registry, False
        self._ready = True
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        audit.observe_writes(self._audit_written)
        if registry is not None:
            registry.observe_failures(self._registry_refused)

    @property
    def ready(self) -> bool:
        with self._lock:
            return self._ready

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="readiness", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            # Not for a probe that hangs on an unanswering cluster (up to its timeout): the thread is a daemon,
            # and what it reads or sets once stopped goes nowhere (the health service is shutting down).
            self._thread.join(timeout=1)

    def _run(self) -> None:
        while not self._stop.wait(PROBE_SECONDS):
            self.check()

    def check(self) -> None:
        """Read the store once, and try the audit trail and the registry if they have been refusing writes."""
        try:
            self._store.count()
        except Exception as error:  # any failure to read is a store that cannot answer; its type is logged
            with self._lock:
                self._store_failures += 1
            log.debug("store probe failed", extra=failure_fields(error))
        else:
            with self._lock:
                self._store_failures = 0
        with self._lock:
            audit_failing = self._audit_failing
        if audit_failing:
            try:
                self._audit.record_event(RESTORED, "server", {"probe": "the audit trail can be written again"})
            except Exception as error:  # still refusing: stays not ready (the failed write said so already)
                log.debug("audit probe failed", extra=failure_fields(error))
            else:
                with self._lock:
                    self._audit_failing = False
        with self._lock:
            registry = self._registry if self._registry_failing else None
        if registry is not None:
            try:
                registry.check_writable()
            except Exception as error:  # still refusing (the failed write said so already)
                log.debug("registry probe failed", extra=failure_fields(error))
            else:
                with self._lock:
                    self._registry_failing = False
        self._update()

    def _audit_written(self, seconds: float, entries: int) -> None:
        """AuditLog's observer: a write that made nothing durable failed."""
        if entries == 0:
            with self._lock:
                self._audit_failing = True
            self._update()

    def _registry_refused(self) -> None:
        """Registry's observer: a write the file refused."""
        with self._lock:
            self._registry_failing = True
        self._update()

    def _update(self) -> None:
        # One change at a time, whole: decided and applied apart, a probe's and a failed write's changes
        # could reach the health service in the other order and leave it saying the older one.
        with self._applying:
            with self._lock:
                store_down = self._store_failures >= STORE_FAILURES
                ready = not (store_down or self._audit_failing or self._registry_failing)
                reason = "store" if store_down else "audit trail" if self._audit_failing else "registry"
                if ready == self._ready:
                    return
                self._ready = ready
            for service in self._services:
                self._health.set(service, SERVING if ready else NOT_SERVING)
            if self._on_change is not None:
                self._on_change(ready)
        if ready:  # a warning too: at the default level the "not ready" line alone was logged
            log.warning("ready again: searches are answered")
        else:
            log.warning("not ready: searches cannot be answered", extra={"reason": reason})
