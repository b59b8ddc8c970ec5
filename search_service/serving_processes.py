"""More than one process serving the same port: `dcii serve --processes N`.

Why: a Python process runs its handlers' Python under one GIL, so one server process keeps about one core
busy however many calls wait (docs/BENCHMARKS.md). With N > 1 the server (the primary) binds its port with
SO_REUSEPORT and starts N - 1 replica processes that bind the same port; the kernel hands each new
connection to one of them, and a channel's calls stay with the process that accepted its connection.

A replica opens the same files as the primary (the store, the registry, the audit trail and its key, the
privacy requests, the batch queue), as the batch worker process does: each is written under a lock that
holds across processes (SQLite's write lock; the trail's flock, which also chains its entries in one
order), and what a process keeps in memory of them is checked against the file (the registry's callers
by `PRAGMA data_version`). So every process serves every service, and a client cannot tell which one
answered. What must happen once runs in the primary only: retention, the sweep of dormant accounts and the
batch worker (a running worker looks at the queue every `idle_poll` seconds, and the primary's watch
starts one for a waiting batch within `watch` seconds, so a batch submitted to a replica is started within
about two). Each process counts its own calls against the capacity limits
(SECURITY.md) and, with a metrics port, serves its own metrics (replica i on the primary's port + i, or any
free port with 0).

Lifecycle, like the batch worker's (search_service.batch_process):
- Started after the primary serves; `wait_ready` waits until each has bound the port and answers.
- The primary dies, the replicas follow: its end of each replica's stdin pipe closes, the replica reads
  EOF and stops as on SIGTERM.
- A replica that dies is started again by a watch thread (within `watch` seconds); its calls in progress
  fail as on any lost connection (UNAVAILABLE), and its clients reconnect to a live process. One that dies
  before it serves (a start that fails: a file it cannot open, memory) is started again after a delay that
  doubles with each such failure in a row, up to `MAX_RESTART_DELAY`: a start that cannot succeed costs a
  logged warning a minute, not a new process every two seconds, for as long as the primary runs.
- `stop`: SIGTERM, the replica drains its calls in progress (the server's grace) and closes its files;
  SIGKILL after `timeout` seconds.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import math
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from indexer.failures import failure_fields
from search_service.code_identity import OTHER_CODE, code_identity, exit_unless_server_code

if TYPE_CHECKING:
    from search_service.server import ServerConfig

log = logging.getLogger(__name__)

READY = b"ready\n"
MAX_RESTART_DELAY = 60.0  # seconds: the longest wait before starting again a replica that never served


def config_to_json(config: ServerConfig) -> str:
    """The config as JSON for a replica's command line (paths as text; it holds no secret: a store's
    password comes from its file or the environment, never from the URL)."""
    values = dataclasses.asdict(config)
    return json.dumps({k: str(v) if isinstance(v, Path) else v for k, v in values.items()})


def config_from_json(text: str) -> ServerConfig:
    from search_service.batch_worker import BatchSettings
    from search_service.keepalive import Keepalive
    from search_service.server import ServerConfig

    values: dict[str, Any] = json.loads(text)
    values["data_dir"], values["pki_dir"] = Path(values["data_dir"]), Path(values["pki_dir"])
    values["hostnames"], values["peers"] = tuple(values["hostnames"]), tuple(values["peers"])
    values["batch"] = BatchSettings(**values["batch"])
    values["keepalive"] = Keepalive(**values["keepalive"])
    return ServerConfig(**values)


def replica_config(config: ServerConfig, port: int, index: int) -> ServerConfig:
    """Replica `index`'s config: the primary's bound port (it may have been 0), its own metrics port."""
    metrics = config.metrics_port
    if metrics:  # None: off; 0: any free port, in each process
        metrics += index
    return dataclasses.replace(config, port=port, replica_index=index, metrics_port=metrics)


@dataclasses.dataclass
class _Replica:
    index: int
    process: subprocess.Popen[bytes]
    ready_fd: int | None  # our end of the pipe the replica writes READY to; None once read or given up
    served: bool = False  # it wrote READY: it started, whatever ends it later


class ServingProcesses:
    """The primary's handle on its replicas. Thread-safe."""

    def __init__(self, config: ServerConfig, port: int, *, watch: float = 2.0) -> None:
        self._configs = [replica_config(config, port, i) for i in range(1, config.processes)]
        self._watch_interval = watch
        self._lock = threading.Lock()
        self._replicas: dict[int, _Replica] = {}
        self._stopping = False
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self.restarts = 0  # replicas started again after they died (for the operator's logs and the tests)
        self._failed_starts: dict[int, int] = {}  # per replica: deaths before serving, in a row
        self._start_after: dict[int, float] = {}  # per replica waiting out its delay: when (monotonic) to start it

    @property
    def pids(self) -> list[int]:
        with self._lock:
            return [r.process.pid for r in self._replicas.values()]

    def start(self) -> None:
        with self._lock:
            for config in self._configs:
                self._spawn(config)
        self._watcher = threading.Thread(target=self._watch, name="serving-processes", daemon=True)
        self._watcher.start()

    def _spawn(self, config: ServerConfig) -> None:
        """Start replica `config.replica_index` (call with the lock held)."""
        read_end, write_end = os.pipe()
        level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
        command = [
            sys.executable,
            "-P",  # the working directory is not on sys.path: another checkout there ran instead of ours
            "-m",
            "search_service.serving_processes",
            f"--code={code_identity()}",
            f"--config={config_to_json(config)}",
            f"--ready-fd={write_end}",
            f"--log-level={level}",
        ]
        root = str(Path(__file__).resolve().parent.parent)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p))
        try:
            process = subprocess.Popen(command, stdin=subprocess.PIPE, env=env, pass_fds=(write_end,))
        except BaseException:
            os.close(read_end)
            raise
        finally:
            os.close(write_end)
        self._replicas[config.replica_index] = _Replica(config.replica_index, process, read_end)
        log.info("serving process started", extra={"replica": config.replica_index, "pid": process.pid})

    def wait_ready(self, timeout: float = 60.0) -> bool:
        """Wait until every replica has said it serves (True), or `timeout` seconds (False: logged; the
        ones not ready keep starting, and the watch starts again any that died)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                replicas = list(self._replicas.values())
                if len(replicas) == len(self._configs) and all(r.served for r in replicas):
                    return True
                waiting = {r.ready_fd: r for r in replicas if r.ready_fd is not None}
            left = deadline - time.monotonic()
            if left <= 0 or self._stopping:
                not_ready = len(self._configs) - sum(r.served for r in replicas)
                log.warning("serving processes not ready in time", extra={"waiting": not_ready})
                return False
            if not waiting:  # each one not serving has died: the watch starts it again
                time.sleep(min(left, 0.1))
                continue
            try:
                readable, _, _ = select.select(list(waiting), [], [], min(left, 0.5))
            except OSError:  # the watch closed one (its replica died) since `waiting` was taken
                continue
            for fd in readable:
                with self._lock:
                    if not self._hear_ready(waiting[fd]):  # EOF: it died before serving; the watch starts it again
                        log.warning("serving process exited before serving", extra={"replica": waiting[fd].index})

    def _hear_ready(self, replica: _Replica) -> bool:
        """Read what the replica said on its ready pipe, if anything (call with the lock held): whether it
        has served. Its end closed (EOF, or a read error) without READY closes ours too."""
        fd = replica.ready_fd
        if fd is None:
            return replica.served
        readable, _, _ = select.select([fd], [], [], 0)
        if readable:
            with contextlib.suppress(OSError):
                replica.served = os.read(fd, len(READY)) == READY
            self._close_ready(replica)
        return replica.served

    @staticmethod
    def _close_ready(replica: _Replica) -> None:
        fd, replica.ready_fd = replica.ready_fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)

    def _watch(self) -> None:
        while not self._stop.wait(self._watch_interval):
            with self._lock:
                if self._stopping:
                    return
                for config in self._configs:
                    self._tend(config)

    def _tend(self, config: ServerConfig) -> None:
        """One tick of the watch for one replica (call with the lock held): note that it serves, and start
        it again if it died, at once if it had served, else once its delay is over."""
        index = config.replica_index
        replica = self._replicas.get(index)
        if replica is not None:
            if self._hear_ready(replica):
                self._failed_starts.pop(index, None)
            if replica.process.poll() is None:
                return
            del self._replicas[index]
            self._close(replica)
            if replica.process.returncode == OTHER_CODE:  # the program on disk is not ours: never again
                log.error("serving process not started again: restart dcii serve", extra={"replica": index})
                self._start_after[index] = math.inf
                return
            delay = 0.0
            if not replica.served:
                failures = self._failed_starts[index] = self._failed_starts.get(index, 0) + 1
                delay = min(self._watch_interval * 2**failures, MAX_RESTART_DELAY)
            log.warning(
                "serving process exited; starting it again" if replica.served else "serving process failed to start",
                extra={"replica": index, "code": replica.process.returncode, "retry_in_seconds": delay},
            )
            self._start_after[index] = time.monotonic() + delay
        if time.monotonic() < self._start_after.get(index, 0.0):
            return
        try:
            self._spawn(config)
            self.restarts += 1
            self._start_after.pop(index, None)
        except OSError as error:  # no process could be made now: try at the next tick
            log.warning("serving process not started", extra=failure_fields(error))

    def terminate(self) -> None:
        """SIGTERM to every replica, without waiting: they drain their calls while the primary drains its."""
        self._stop.set()
        with self._lock:
            self._stopping = True
            for replica in self._replicas.values():
                if replica.process.poll() is None:
                    replica.process.terminate()

    def stop(self, timeout: float = 30.0) -> None:
        """`terminate`, then wait for every replica; SIGKILL the ones still running after `timeout` seconds."""
        self.terminate()
        if self._watcher is not None:
            self._watcher.join(timeout)
        with self._lock:
            replicas = list(self._replicas.values())
            self._replicas.clear()
        deadline = time.monotonic() + timeout
        for replica in replicas:
            try:
                replica.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("serving process did not stop; killing it", extra={"pid": replica.process.pid})
                replica.process.kill()
                replica.process.wait()
            self._close(replica)

    def _close(self, replica: _Replica) -> None:
        self._close_ready(replica)
        if replica.process.stdin is not None:
            with contextlib.suppress(OSError):
                replica.process.stdin.close()


# ---- the replica process ----


def run_replica(config: ServerConfig, ready_fd: int) -> None:
    """Serve as replica `config.replica_index` until SIGTERM, SIGINT, SIGHUP or EOF on stdin."""
    from search_service.batch_process import watch_parent
    from search_service.gc_tuning import tune_garbage_collector
    from search_service.malloc_tuning import limit_malloc_arenas
    from search_service.server import start_server, stop_on_signals

    limit_malloc_arenas()
    # The primary's stop signals: a closed terminal sends SIGHUP to the whole process group, which killed
    # each replica outright (its calls cut, its files left open) while the primary drained (an ops review).
    stop, received = stop_on_signals()
    threading.Thread(target=watch_parent, args=(stop,), name="serving-parent", daemon=True).start()
    running = start_server(config)
    try:
        tune_garbage_collector()
        with contextlib.suppress(OSError):  # the primary gave up waiting: it serves without knowing
            os.write(ready_fd, READY)
        os.close(ready_fd)
        log.info("serving", extra={"replica": config.replica_index, "pid": os.getpid(), "port": running.port})
        stop.wait()
        why = signal.Signals(received[0]).name if received else "the primary is gone"
        log.info("stopping: draining calls in progress", extra={"replica": config.replica_index, "signal": why})
    finally:
        running.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m search_service.serving_processes", description=__doc__)
    parser.add_argument("--config", required=True, help="the replica's ServerConfig as JSON")
    parser.add_argument("--ready-fd", type=int, required=True, help="a pipe to write 'ready' to once serving")
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument("--code", default="", help="the server's program (search_service.code_identity)")
    args = parser.parse_args(argv)
    from dcii.cli.logs import configure_logging

    configure_logging(logging.getLevelName(args.log_level.upper()))
    exit_unless_server_code(args.code, "serving process")  # before it opens the store (for writing)
    run_replica(config_from_json(args.config), args.ready_fd)


if __name__ == "__main__":
    main()
