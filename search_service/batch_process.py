"""The batch worker in its own low-priority OS process, so batches never hold the server's GIL.

`BatchProcess` is what the server holds (the same `start` / `wake` / `stop` as a `BatchWorker`). It runs

    python -m search_service.batch_process --store index.db|URL --registry registry.db --audit audit.db \
        --audit-key audit.key --queue batch.db --settings '{"threads": 1, ...}'

which opens its own store (it only reads it), registry, audit trail (the trail flocks: several processes
may write it) and batch queue on the server's files, lowers its priority (`os.nice(settings.nice)`) and
runs the same `BatchWorker` loop as a thread worker would, with the same settings (duty, chunk).

- Started lazily: with the server when a batch is waiting, else at the first submission (a server that
  never sees a batch never pays for the process), or within `watch` seconds of a batch waiting (submitted
  to a replica, which wakes no worker). A worker that died is started again alike.
- Wake: one byte on the child's stdin (`wake`, from the submitting RPC; never blocks it).
- The server dies, the worker follows: the server's end of that pipe closes, the child reads EOF and
  stops as on SIGTERM.
- `stop`: SIGTERM, and the child lets the current query finish and stores its chunk; after `timeout`
  seconds, SIGKILL. A killed worker loses nothing: results are stored per query in batch.db, and at
  most the chunk in progress is answered (and accounted) again.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from indexer.store.factory import sqlite_path
from search_service.batch_queue import BatchQueue
from search_service.batch_worker import BatchSettings

if TYPE_CHECKING:
    from indexer.store.base import TracingStore
    from search_service.accounting import AuditLog
    from search_service.batch_worker import BatchWorker
    from search_service.disclosure_budget import DisclosureBudget
    from search_service.registry import Registry
    from search_service.server import ServerConfig
    from search_service.ssn_probes import SsnProbes
from indexer.failures import failure_fields
from search_service.code_identity import OTHER_CODE, code_identity, exit_unless_server_code
from search_service.gc_tuning import tune_garbage_collector
from search_service.malloc_tuning import limit_malloc_arenas

log = logging.getLogger(__name__)

STEADY_SECONDS = 60.0  # a worker that ran this long had started well: its exit resets the back-off
MAX_BACKOFF_SECONDS = 300.0


@dataclasses.dataclass(frozen=True)
class WorkerFiles:
    """The server's files the worker process opens."""

    store: str  # a path or a store URL (indexer.store.factory)
    registry: Path
    audit: Path
    audit_key: Path
    queue: Path

    def arguments(self) -> list[str]:
        """Paths made absolute (the worker may start elsewhere); a store URL passed as it is."""
        values: dict[str, object] = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        embedded = sqlite_path(self.store)
        if embedded is not None:
            values["store"] = embedded
        return [
            f"--{name.replace('_', '-')}={value.resolve() if isinstance(value, Path) else value}"
            for name, value in values.items()
        ]


class BatchProcess:
    """The server's handle on the worker process. Thread-safe."""

    def __init__(
        self,
        files: WorkerFiles,
        queue: BatchQueue,
        settings: BatchSettings,
        *,
        audit_timeout: float = 10.0,
        budget: int | None = None,
    ) -> None:
        self.files = files
        self._budget = budget  # records an activity may receive a day (search_service.disclosure_budget)
        self.settings = settings
        self._queue = queue
        self._audit_timeout = audit_timeout
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._stopped = False
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._code = code_identity()  # this server's program: the worker must run the same
        self._failures = 0  # starts in a row that died within STEADY_SECONDS
        self._started_at = 0.0
        self._start_after = 0.0  # monotonic: no start before it (backing off a worker that keeps dying)
        self._other_code = False  # the worker on disk is another program: never started again

    @property
    def pid(self) -> int | None:
        with self._lock:
            return None if self._process is None else self._process.pid

    def command(self) -> list[str]:
        settings = json.dumps(dataclasses.asdict(self.settings))
        level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
        return [
            sys.executable,
            "-P",  # the working directory is not on sys.path: another checkout there ran instead of ours
            "-m",
            "search_service.batch_process",
            f"--code={self._code}",
            *self.files.arguments(),
            f"--audit-timeout={self._audit_timeout}",
            *([] if self._budget is None else [f"--disclosures-per-day={self._budget}"]),
            f"--log-level={level}",
            f"--settings={settings}",
        ]

    def start(self, watch: float = 2.0) -> None:
        """Start the process now if a batch is waiting (else the first submission starts it), and watch it."""
        if not self.settings.threads:
            return
        if self._queue.runnable():
            with self._lock:
                self._spawn()
        self._watcher = threading.Thread(target=self._watch, args=(watch,), name="batch-process", daemon=True)
        self._watcher.start()

    def _watch(self, interval: float) -> None:
        """Start the worker while a batch waits for it: one that died, or one never started because the
        batch was submitted to another process serving the port (search_service.serving_processes)."""
        while not self._stop.wait(interval):
            try:
                with self._lock:
                    if (self._process is None or self._process.poll() is not None) and self._queue.runnable():
                        self._spawn()
            except Exception as error:  # the queue unavailable a moment: look again later
                log.warning("batch worker watch failed", extra=failure_fields(error))

    def _spawn(self) -> subprocess.Popen[bytes] | None:
        """The running process, started if need be (call with the lock held)."""
        if self._stopped or not self.settings.threads:
            return None
        if self._process is not None and self._process.poll() is None:
            return self._process
        if self._process is not None:
            self._exited(self._process)
        if self._other_code or time.monotonic() < self._start_after:
            return None
        root = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p))
        process = subprocess.Popen(self.command(), stdin=subprocess.PIPE, env=env)
        assert process.stdin is not None
        os.set_blocking(process.stdin.fileno(), False)
        self._process, self._started_at = process, time.monotonic()
        log.info("batch worker process started", extra={"pid": process.pid})
        return process

    def _exited(self, process: subprocess.Popen[bytes]) -> None:
        """Account for a worker that exited (call with the lock held): another program is never started
        again; one that died soon after starting is started again after 2, 4, 8 ... 300 s, not every 2 s for
        ever (a worker that could not start once logged 367 tracebacks in 12 minutes)."""
        self._close_pipe(process)
        self._process = None
        if process.returncode == OTHER_CODE:
            self._other_code = True
            log.error(
                "the batch worker on disk is another program than this server's: batches wait until dcii serve restarts"
            )
            return
        if time.monotonic() - self._started_at < STEADY_SECONDS:
            self._failures += 1
        else:
            self._failures = 0
        delay = min(MAX_BACKOFF_SECONDS, 2.0**self._failures) if self._failures else 0.0
        self._start_after = time.monotonic() + delay
        log.warning(
            "batch worker process exited; starting it again",
            extra={"code": process.returncode, "after_seconds": delay},
        )

    def wake(self) -> None:
        """A batch was submitted: start the process, or tell it to look at once. Never blocks."""
        with self._lock:
            process = self._spawn()
            if process is None or process.stdin is None:
                return
            # A full pipe is a wake-up already pending; a broken one, a dead worker (the watch restarts it).
            with contextlib.suppress(OSError):
                os.write(process.stdin.fileno(), b"w")

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM: the worker finishes its current query and stores its chunk; SIGKILL after `timeout`."""
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout)
        with self._lock:
            self._stopped = True
            process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("batch worker process did not stop; killing it", extra={"pid": process.pid})
                process.kill()
                process.wait()
        self._close_pipe(process)

    @staticmethod
    def _close_pipe(process: subprocess.Popen[bytes]) -> None:
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()


# ---- the worker process ----


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


def watch_parent(stop: threading.Event, wake: Callable[[], None] | None = None) -> None:
    """Read stdin until EOF (the server closed its end, or died), then stop; each read in between is a
    wake-up (`wake`). Also the serving replicas' (search_service.serving_processes) tie to their server."""
    fd = sys.stdin.fileno()
    while True:
        try:
            data = os.read(fd, 4096)
        except InterruptedError:
            continue
        except OSError:
            data = b""
        if not data:
            stop.set()
            return
        if wake is not None:
            wake()


def run(files: WorkerFiles, settings: BatchSettings, *, audit_timeout: float, budget: int | None = None) -> None:
    """The worker process's body: open the server's files, lower our priority, answer batches until told to
    stop (SIGTERM, SIGINT, SIGHUP, or EOF on stdin)."""
    from indexer.store.factory import open_store
    from search_service.accounting import AuditLog, load_or_create_key
    from search_service.batch_worker import BatchWorker, batch_answer
    from search_service.disclosure_budget import DisclosureBudget
    from search_service.registry import Registry

    stop = threading.Event()
    # SIGHUP as the server takes it: a closed terminal sends it to the whole process group.
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, lambda *_: stop.set())
    if settings.nice:
        try:
            os.nice(settings.nice)
        except OSError as error:
            log.warning("batch worker cannot lower its priority", extra=failure_fields(error))
    # Read-only: the worker only reads the store, and opened for writing it upgraded a store file of an
    # earlier schema under the server that serves it (a review of upgrades); such a file is refused here.
    store = open_store(files.store, read_only=True)
    registry = Registry(files.registry)
    audit = AuditLog(files.audit, key=load_or_create_key(files.audit_key), timeout=audit_timeout)
    queue = BatchQueue(files.queue)
    # The server's budget table, in its data directory, beside the trail.
    charged = None if budget is None else DisclosureBudget(budget, files.audit.parent)
    worker = BatchWorker(queue, batch_answer(store, _today, audit, charged), registry, settings)
    try:
        worker.start()
        threading.Thread(target=watch_parent, args=(stop, worker.wake), name="batch-parent", daemon=True).start()
        log.info("batch worker process running", extra={"pid": os.getpid(), "nice": settings.nice})
        stop.wait()
    finally:
        worker.stop()
        queue.close()
        audit.close()
        registry.close()
        store.close()
    log.info("batch worker process stopped", extra={"pid": os.getpid()})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m search_service.batch_process", description=__doc__)
    for f in dataclasses.fields(WorkerFiles):
        parser.add_argument(f"--{f.name.replace('_', '-')}", required=True, type=str if f.name == "store" else Path)
    parser.add_argument("--settings", default="{}", help="BatchSettings as JSON")
    parser.add_argument("--audit-timeout", type=float, default=10.0)
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument("--code", default="", help="the server's program (search_service.code_identity)")
    parser.add_argument("--disclosures-per-day", type=int, default=None, help="the activities' budget, if any")
    args = parser.parse_args(argv)
    from dcii.cli.logs import configure_logging

    configure_logging(logging.getLevelName(args.log_level.upper()))
    exit_unless_server_code(args.code, "batch worker")
    limit_malloc_arenas()
    files = WorkerFiles(*(getattr(args, f.name) for f in dataclasses.fields(WorkerFiles)))
    tune_garbage_collector()
    settings = BatchSettings(**json.loads(args.settings))
    run(files, settings, audit_timeout=args.audit_timeout, budget=args.disclosures_per_day)


if __name__ == "__main__":
    main()


def batch_worker_for(
    config: ServerConfig,
    queue: BatchQueue,
    separate: bool,
    answering: tuple[TracingStore, Callable[[], dt.date], AuditLog, Registry, DisclosureBudget | None, SsnProbes],
) -> BatchWorker | BatchProcess:
    """The primary's batch worker: a process of its own on the server's files (`config.batch.process`, the
    default, where `separate`: the server's own files and clock), else threads in the server answering
    with `answering` (its store, clock, audit trail, registry and disclosure budget)."""
    from search_service.batch_worker import BatchWorker, batch_answer

    if config.batch.process and separate:
        files = WorkerFiles(
            config.store_location,
            config.registry_path,
            config.audit_path,
            config.data_dir / "audit.key",
            config.batch_path,
        )
        per_day = config.disclosures_per_activity_per_day
        return BatchProcess(files, queue, config.batch, audit_timeout=config.audit_timeout, budget=per_day)
    store, today, audit, registry, budget, guesses = answering
    return BatchWorker(queue, batch_answer(store, today, audit, budget, guesses), registry, config.batch)
