"""A real server in a subprocess with any ServerConfig setting, and what the reliability tests read of it.

`dcii serve` takes only the settings an operator needs; the crash, fault and load tests also need the
retention schedule's first delay, the batch worker's chunk, an RLIMIT_FSIZE on the server's writes...
so they start the server through this module:

    python -m tests.server_proc '{"data_dir": ..., "pki_dir": ..., "port": N, "settings": {...},
                                  "batch": {...}, "fsize": BYTES}'

which builds the ServerConfig and runs `search_service.server.serve` (SIGTERM drains as in production).
The /proc readers (threads, resident memory, children) are Linux-only, like the tests that use them.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dcii.v1 import tracing_pb2
from indexer.edit_criteria import check_tracing
from indexer.store.base import Upsert
from indexer.store.sqlite import SqliteStore
from search_service.accounting import verify_file
from search_service.convert import tracing_in
from tests.support import ROOT, wait_for_port


@contextmanager
def spawn_server(
    data_dir: Path,
    pki_dir: Path,
    port: int,
    *,
    batch: dict[str, Any] | None = None,
    fsize: int | None = None,
    stderr: Path | None = None,
    env: dict[str, str] | None = None,
    **settings: Any,
) -> Iterator[subprocess.Popen[bytes]]:
    """A server subprocess listening on `port` (with `env` added to its environment); killed (SIGKILL) on
    exit unless already dead."""
    spec = {
        "data_dir": str(data_dir),
        "pki_dir": str(pki_dir),
        "port": port,
        "settings": settings,
        "batch": batch or {},
        "fsize": fsize,
    }
    err = stderr.open("ab") if stderr is not None else None
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.server_proc", json.dumps(spec)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=err if err is not None else subprocess.DEVNULL,
        env=os.environ | env if env else None,
    )
    try:
        wait_for_port(port, process)
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
        if err is not None:
            err.close()


# ---- the files a test checks after a kill or a fault ----


def ssn(i: int) -> str:
    """A distinct valid SSN per i (distinct, so that no favorable NAC history supersedes another)."""
    return f"{101 + i // 9000:03d}-45-{1000 + i % 9000:04d}"


def store_directly(data_dir: Path, wires: list[tracing_pb2.Tracing], *, checked_on: dt.date | None = None) -> None:
    """Load tracings into the store file (through the edit criteria, as of `checked_on`, default today)
    while no server runs. A NAC history past its retention today is refused: held since an earlier day,
    it is checked as of that day."""
    store = SqliteStore(data_dir / "index.db")
    try:
        today = checked_on or dt.date.today()
        store.write([Upsert(check_tracing(tracing_in(w), today=today)) for w in wires], actor="test-setup")
    finally:
        store.close()


def check_files(data_dir: Path) -> SqliteStore:
    """The checks after every kill that every scenario shares; returns the store, open, for more."""
    audit = verify_file(data_dir / "audit.db")
    assert audit.ok, audit.reason
    store = SqliteStore(data_dir / "index.db")
    assert store.check_integrity() == []
    return store


def wait_until(condition: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


# ---- results for docs/RELIABILITY.md ----

RESULTS_ENV = "DCII_RELIABILITY_RESULTS"


def record(test: str, **figures: object) -> None:
    """Append one line of figures (trials, requests, lost, failed...) to the JSON-lines file named by
    $DCII_RELIABILITY_RESULTS, which `python -m bench.reliability` reads; nothing when it is unset."""
    target = os.environ.get(RESULTS_ENV)
    if target:
        # "tests/test_x.py::test_y[param] (call)": the test's name as JUnit reports it, to join the two.
        node = os.environ.get("PYTEST_CURRENT_TEST", "").split("::")[-1].rsplit(" (", 1)[0]
        with open(target, "a", encoding="utf-8") as out:
            out.write(json.dumps({"test": test, "node": node, **figures}, default=str) + "\n")


# ---- what /proc says about a process ----


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie nobody has reaped counts as dead)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


def children(parent: int, marker: bytes = b"") -> list[int]:
    """Live processes whose parent is `parent` (and whose command line holds `marker`)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int(entry.joinpath("stat").read_text().rsplit(")", 1)[1].split()[1])
            command = entry.joinpath("cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and marker in command and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def batch_workers(server: int) -> list[int]:
    return children(server, b"search_service.batch_process")


def thread_count(pid: int, *, python_only: bool = True) -> int:
    """The process's threads; by default only those Python started (handlers, readers, workers), which keep
    the process's name, and not gRPC core's own pool (event_engine...), which grows and shrinks by itself."""
    tasks = Path(f"/proc/{pid}/task")
    if not python_only:
        return len(list(tasks.iterdir()))
    name = Path(f"/proc/{pid}/comm").read_text()
    count = 0
    for task in tasks.iterdir():
        try:
            count += task.joinpath("comm").read_text() == name
        except OSError:  # the thread ended while we looked
            continue
    return count


def rss_bytes(pid: int, kind: str = "VmRSS") -> int:
    """Resident memory: all of it (VmRSS), or only the anonymous part (RssAnon: the heap and stacks, without
    the pages of files mapped in, such as SQLite's memory-mapped database, which the kernel may drop)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{kind}:"):
            return int(line.split()[1]) * 1024
    raise LookupError(f"no {kind} for {pid}")


def kill_hard(*pids: int) -> None:
    """SIGKILL each process that still runs, and wait until none does."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
    deadline = time.monotonic() + 30
    while any(alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            raise TimeoutError(f"still running after SIGKILL: {pids}")
        time.sleep(0.01)


def set_fsize(pid: int, limit: int) -> None:
    """Set `pid`'s RLIMIT_FSIZE soft limit (bytes; -1 for none): writes past it fail with EFBIG."""
    _soft, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY if limit < 0 else limit, hard))


# ---- the subprocess ----


def main(argv: list[str]) -> None:
    from dcii.cli.logs import configure_logging
    from search_service.batch_worker import BatchSettings
    from search_service.server import ServerConfig, serve

    spec = json.loads(argv[0])
    if spec.get("fsize") is not None:
        # Python ignores SIGXFSZ, so a write past the limit fails with EFBIG instead of killing us.
        _soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (int(spec["fsize"]), hard))
    configure_logging(logging.WARNING)
    config = ServerConfig(
        Path(spec["data_dir"]),
        Path(spec["pki_dir"]),
        port=int(spec["port"]),
        batch=BatchSettings(**spec.get("batch", {})),
        **spec.get("settings", {}),
    )
    serve(config)


if __name__ == "__main__":
    main(sys.argv[1:])
