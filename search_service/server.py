"""The gRPC server. Mutual TLS only: there is no plaintext port, and a client without a certificate
from our CA never completes the handshake."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health

from dcii.v1 import (
    admin_pb2_grpc,
    ingest_pb2_grpc,
    search_pb2_grpc,
)
from indexer import name_shares
from indexer.retention import RetentionSchedule, retention_today
from indexer.store.base import TracingStore
from indexer.store.sqlite_backup import DataDirLock, hold_data_dir
from search_service.account_sweep import AccountSweep, record_disabled
from search_service.accounting import AuditLog
from search_service.accounts import AdminServicer, SessionServicer
from search_service.batch import add_batch_service
from search_service.batch_process import BatchProcess, batch_worker_for
from search_service.batch_queue import BatchPurge, BatchQueue
from search_service.batch_worker import BatchSettings, BatchWorker
from search_service.disclosure_budget import budget_for
from search_service.gc_tuning import tune_garbage_collector
from search_service.ingest import IngestServicer
from search_service.ingest_pool import IngestPool
from search_service.keepalive import Keepalive
from search_service.malloc_tuning import limit_malloc_arenas
from search_service.matching import configured_matcher
from search_service.metrics import ServerMetrics
from search_service.page_tokens import TokenEnvelope
from search_service.privacy import serve_privacy
from search_service.privacy_days import DEFAULT_TIME_ZONE, office_zone
from search_service.privacy_requests import PrivacyRequests
from search_service.readiness import Readiness
from search_service.registry import Registry
from search_service.search import SearchServicer
from search_service.server_files import metrics_for, open_files
from search_service.server_grpc import (
    before_any_file,
    grpc_server,
    health_and_reflection,
    listen,
    refusals_in_calls,
)
from search_service.serving_processes import ServingProcesses
from search_service.sqlite_files import opened
from search_service.ssn_probes import SsnProbes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerConfig:
    """Where the server keeps its state and finds its certificates."""

    data_dir: Path
    pki_dir: Path
    host: str = "127.0.0.1"
    port: int = 50051
    max_workers: int = 32
    # Calls in progress or waiting for a worker at once; beyond it a call is refused at once with
    # RESOURCE_EXHAUSTED instead of queueing without bound (None: no cap). See SECURITY.md, docs/RELIABILITY.md.
    max_concurrent_rpcs: int | None = 128
    # How long a disclosure waits for the audit trail before the caller gets UNAVAILABLE (fail closed).
    audit_timeout: float = 10.0
    # Calls a second each activity may make, and its burst (RESOURCE_EXHAUSTED beyond; see SECURITY.md).
    rate_per_activity: float = 1000.0
    burst_per_activity: float = 2000.0
    # Calls each activity may have in progress at once (RESOURCE_EXHAUSTED beyond; see SECURITY.md). None:
    # half of max_workers, so that one activity's idle streams can never hold every worker thread.
    max_calls_per_activity: int | None = None
    # Calls one client connection may have open at once (HTTP/2's SETTINGS_MAX_CONCURRENT_STREAMS; see
    # SECURITY.md). None: twice the calls an activity may have in progress, 32 at least, so that the calls a
    # client abandoned while they still run cannot fill it below the activity's own cap.
    max_streams_per_connection: int | None = None
    # Records each activity may receive a day from searches and batches (None: no budget; SECURITY.md).
    disclosures_per_activity_per_day: int | None = None
    # Retention runs inside the server this long after start, then at this interval (seconds).
    retention_first_delay: float = 60.0
    retention_interval: float = 24 * 3600.0
    # Operator accounts unused for three years are disabled as the server starts, then at this interval
    # (seconds; search_service.account_sweep).
    account_sweep_interval: float = 24 * 3600.0
    hostnames: tuple[str, ...] = field(default=("localhost",))
    # The background batch worker: threads, chunk size and duty cycle (its share of the server's time), and
    # whether it runs in a low-priority process of its own (the default) or as threads in the server.
    batch: BatchSettings = field(default_factory=BatchSettings)
    # Pings that close connections whose client vanished; clients' pings accepted (keepalive.py).
    keepalive: Keepalive = field(default_factory=Keepalive)
    # Worker processes that check and prepare bulk ingest outside the server's GIL (search_service.ingest_pool;
    # started at the first bulk write). 0: in the handler threads, as small writes always are.
    ingest_processes: int = 2
    # Prometheus metrics on a plain-HTTP port of their own, bound to `host` (None: off; 0: any free port).
    # They carry no PII (search_service.metrics).
    metrics_port: int | None = None
    # Processes that serve the port (search_service.serving_processes): 1, this one alone; N > 1 starts
    # N - 1 replicas beside it, each with a GIL of its own (about one core each; RUNBOOK, "Processes").
    processes: int = 1
    # 0: the primary; i > 0: replica i, started by the primary with its config (never set by hand).
    replica_index: int = 0
    # The privacy office's IANA time zone, whose days Privacy Act deadlines count (RUNBOOK, "Privacy Act deadlines").
    privacy_time_zone: str = DEFAULT_TIME_ZONE
    # Where the tracings live (indexer.store.factory): None is the embedded store at data_dir/index.db;
    # an opensearch+https://... URL the cluster (its password in a file or DCII_OPENSEARCH_PASSWORD, never in
    # the URL, which the batch worker process gets on its command line).
    store_url: str | None = None
    # The deployment's other instances (HOST:PORT each), asked for their part of every Privacy Act accounting
    # (search_service.peers; RUNBOOK, "Privacy Act duties with several instances"). Empty: this one alone.
    peers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        office_zone(self.privacy_time_zone)  # a mistyped zone fails the config, before any file is opened

    @property
    def calls_per_activity(self) -> int:
        """max_calls_per_activity, or its default derived from the worker pool."""
        if self.max_calls_per_activity is not None:
            return self.max_calls_per_activity
        return max(1, self.max_workers // 2)

    @property
    def streams_per_connection(self) -> int:
        return self.max_streams_per_connection or max(32, 2 * self.calls_per_activity)

    @property
    def store_location(self) -> str:
        return self.store_url or str(self.store_path)

    @property
    def store_path(self) -> Path:
        return self.data_dir / "index.db"

    @property
    def registry_path(self) -> Path:
        return self.data_dir / "registry.db"

    @property
    def audit_path(self) -> Path:
        return self.data_dir / "audit.db"

    @property
    def batch_path(self) -> Path:
        return self.data_dir / "batch.db"


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


@dataclass
class RunningServer:
    server: grpc.Server
    port: int
    store: TracingStore
    registry: Registry
    audit: AuditLog
    privacy_requests: PrivacyRequests
    retention: RetentionSchedule | None  # None in a replica: the primary alone runs what runs once
    health: health.HealthServicer
    batch_queue: BatchQueue
    batch_worker: BatchWorker | BatchProcess | None
    metrics: ServerMetrics | None = None
    data_lock: DataDirLock | None = None
    ingest_pool: IngestPool | None = None
    account_sweep: AccountSweep | None = None
    replicas: ServingProcesses | None = None
    batch_purge: BatchPurge | None = None  # None in a replica
    readiness: Readiness | None = None

    def stop(self, grace: float = 5.0) -> None:
        self.health.enter_graceful_shutdown()
        if self.readiness is not None:
            self.readiness.stop()
        if self.replicas is not None:  # they drain beside this process, then it waits for them
            self.replicas.terminate()
        self.server.stop(grace).wait()
        if self.replicas is not None:
            self.replicas.stop()
        if self.ingest_pool is not None:
            self.ingest_pool.close()
        if self.batch_worker is not None:
            self.batch_worker.stop()
        if self.batch_purge is not None:
            self.batch_purge.stop()
        if self.retention is not None:
            self.retention.stop()
        if self.account_sweep is not None:
            self.account_sweep.stop()
        self.store.close()
        self.registry.close()
        self.audit.close()
        self.privacy_requests.close()
        self.batch_queue.close()
        if self.metrics is not None:
            self.metrics.close()
        if self.data_lock is not None:
            self.data_lock.release()


def start_server(
    config: ServerConfig,
    *,
    store: TracingStore | None = None,
    today: Callable[[], dt.date] = _today,
) -> RunningServer:
    if config.processes > 1 and (store is not None or today is not _today):
        raise ValueError("several serving processes open the configured store, today: no store or clock given")
    credentials = before_any_file(config)
    name_shares.warm_up()  # the lookup tables of ranked queries, built before the first one, not during it
    # One server a directory (its replicas share it); `dcii restore` refuses a held directory.
    data_lock = hold_data_dir(config.data_dir, primary=config.replica_index == 0)
    try:
        return _start(config, store, today, credentials, data_lock)
    except BaseException:  # a start refused part-way lets go of the directory: another start may follow
        data_lock.release()
        raise


def _start(
    config: ServerConfig,
    store: TracingStore | None,
    today: Callable[[], dt.date],
    credentials: grpc.ServerCredentials,
    data_lock: DataDirLock,
) -> RunningServer:
    # A start refused part-way (a damaged batch.db, a port taken, a metrics port) closes what it opened:
    # its store's writer thread and file handles stayed in the process, which a retry met (diff review 8).
    with contextlib.ExitStack() as closing:
        own_store = store is None
        store, registry, audit = open_files(config, store, closing)

        metrics = metrics_for(config, audit)
        server = grpc_server(config, registry, audit, metrics)
        ingest_pool = IngestPool(config.ingest_processes)
        closing.callback(ingest_pool.close)
        ingest_pb2_grpc.add_IngestServiceServicer_to_server(
            IngestServicer(store, today, ingest_pool, refusals_in_calls(audit)), server
        )
        budget, guesses = budget_for(config), SsnProbes()  # both shared with a batch worker in this process
        searcher = SearchServicer(store, today, audit, budget=budget, ssn_guesses=guesses)
        search_pb2_grpc.add_SearchServiceServicer_to_server(searcher, server)
        admin_pb2_grpc.add_SessionServiceServicer_to_server(SessionServicer(registry), server)
        admin_pb2_grpc.add_AdminServiceServicer_to_server(AdminServicer(registry, audit), server)
        privacy_requests = serve_privacy(server, store, audit, config, closing)  # and the peers' PeerService
        batch_queue = opened(config.batch_path, "the batch queue", lambda: BatchQueue(config.batch_path))
        closing.callback(batch_queue.close)
        primary = config.replica_index == 0
        # In a replica none: the primary's serves the queue.
        batch_worker: BatchWorker | BatchProcess | None = None
        if primary:
            own_clock = today is _today
            separate = own_store and own_clock  # the process opens the same files, and keeps today's date
            answering = (store, today, audit, registry, budget, guesses)
            batch_worker = batch_worker_for(config, batch_queue, separate, answering)
        batch_purge = add_batch_service(  # in the primary, with the purge of expired results (its first run now)
            server,
            batch_queue,
            today,
            batch_worker.wake if batch_worker else _no_wake,
            store,
            config.batch,
            primary,
            TokenEnvelope(audit.key_for("page tokens")),
            refusals_in_calls(audit),
        )
        if batch_purge is not None:
            closing.callback(batch_purge.stop)
        health_servicer = health_and_reflection(server)
        # The store-bound services' health status, and the metrics' dcii_ready.
        watcher = None if metrics is None else metrics.readiness_changed
        readiness = Readiness(store, audit, health_servicer, on_change=watcher, registry=registry)
        readiness.start()
        closing.callback(readiness.stop)
        port = listen(server, config, credentials)
        closing.callback(lambda: server.stop(None))  # its port, bound: a retry in this process binds it again
        if metrics is not None and config.metrics_port is not None:  # before serving: a taken port fails the start
            metrics.start(config.host, config.metrics_port, store, batch_queue)
            closing.callback(metrics.close)
        account_sweep: AccountSweep | None = None
        retention: RetentionSchedule | None = None
        replicas: ServingProcesses | None = None
        if primary:
            account_sweep = AccountSweep(registry, audit, interval=config.account_sweep_interval)
            account_sweep.start()  # its first sweep before the first call
            closing.callback(account_sweep.stop)
        else:  # an account `login` finds dormant here is recorded as the primary's sweep would
            registry.on_disabled = lambda accounts: record_disabled(audit, accounts)
        server.start()
        if primary:
            retention, replicas = _primary_duties(config, store, today, batch_worker, port, closing)
        closing.pop_all()  # served: RunningServer.stop closes them
        return RunningServer(
            server,
            port,
            store,
            registry,
            audit,
            privacy_requests,
            retention,
            health_servicer,
            batch_queue,
            batch_worker,
            metrics=metrics,
            data_lock=data_lock,
            ingest_pool=ingest_pool,
            account_sweep=account_sweep,
            replicas=replicas,
            batch_purge=batch_purge,
            readiness=readiness,
        )


def _primary_duties(
    config: ServerConfig,
    store: TracingStore,
    today: Callable[[], dt.date],
    batch_worker: BatchWorker | BatchProcess | None,
    port: int,
    closing: contextlib.ExitStack,
) -> tuple[RetentionSchedule, ServingProcesses | None]:
    """What the primary alone runs once it serves: retention, the batch worker, the replicas; each stopped
    by `closing` if the start goes no further."""
    acts_as_of = retention_today if today is _today else today  # a test's clock, or the day begun everywhere
    retention = RetentionSchedule(
        store, acts_as_of, interval=config.retention_interval, first_delay=config.retention_first_delay
    )
    retention.start()
    closing.callback(retention.stop)
    if batch_worker is not None:
        batch_worker.start()
        closing.callback(batch_worker.stop)
    replicas = None
    if config.processes > 1:
        replicas = ServingProcesses(config, port)
        closing.callback(replicas.stop)
        replicas.start()
    return retention, replicas


def _no_wake() -> None:
    """A replica's batch submissions wake no worker: the primary's looks at the queue by itself."""


# SIGHUP too: a closed terminal or ssh session (or a `kill -HUP` out of habit) killed the server outright,
# without draining its calls or closing its files (an operator's test).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def stop_on_signals() -> tuple[threading.Event, list[int]]:
    """An event set by any of STOP_SIGNALS, and the signals received (the first one is logged). The serving
    replicas (search_service.serving_processes) stop on the same ones."""
    stop = threading.Event()
    received: list[int] = []

    def stopping(signum: int, _frame: object) -> None:
        received.append(signum)
        stop.set()

    for signum in STOP_SIGNALS:
        signal.signal(signum, stopping)
    return stop, received


def serve(config: ServerConfig, *, on_ready: Callable[[int], None] | None = None) -> None:
    """Run until SIGTERM, SIGINT or SIGHUP, then drain in-flight calls and close the store cleanly."""
    # Before the port opens: a signal that came while the server started (a client saw the port) ended
    # the process outright, SIGHUP's default, where it drains once started (a CI run of the stop's test).
    stop, received = stop_on_signals()
    limit_malloc_arenas()  # before start_server makes the threads
    running = start_server(config)
    tune_garbage_collector()
    if running.replicas is not None:
        running.replicas.wait_ready()  # "serving" then means every process serves
    # The ranked modes' matcher too: an upgrade may change the default one (RUNBOOK, "Upgrading").
    matcher = configured_matcher().version
    log.info(
        "serving",
        extra={"port": running.port, "metrics_port": running.metrics and running.metrics.port, "matcher": matcher},
    )
    if on_ready is not None:
        on_ready(running.port)
    stop.wait()
    # Logged, so that a stop is told from a crash or a kill, whose log just ends.
    log.info("stopping: draining calls in progress", extra={"signal": signal.Signals(received[0]).name})
    running.stop()
    log.info("stopped")
