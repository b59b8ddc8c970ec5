"""Writing the audit trail, on real SQLite files (tests/test_accounting.py has the recording): failing closed,
with nothing left behind, when the trail cannot be written (locked, read-only, disk full, impossible to create),
callers queued behind one writer sharing its writes while each stays all or nothing, and eight threads and
another process writing one chain."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from indexer.exc import Unavailable
from search_service.accounting import AuditLog, verify_file
from tests import test_accounting
from tests.support import ROOT
from tests.test_accounting import ENTRIES, entry, head_file

# The fixtures these tests take, bound here by name so pytest finds them (importing them would do the same, but
# ruff reads each test's parameter of that name as a redefinition of an unused import, F811).
key, db, trail = test_accounting.key, test_accounting.db, test_accounting.trail


def rows(db: Path) -> list[tuple[int, str]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT seq, canonical FROM entry ORDER BY seq").fetchall()
    finally:
        conn.close()


# ---- fail closed ----


def _unchanged(trail: Path, head_before: bytes) -> None:
    assert head_file(trail).read_bytes() == head_before
    result = verify_file(trail)
    assert result.ok and result.entries == ENTRIES, result
    assert not [p for p in trail.parent.iterdir() if p.name.endswith(".tmp")]


def test_fail_closed_when_the_trail_is_locked(trail: Path, key: bytes) -> None:
    head_before = head_file(trail).read_bytes()
    with AuditLog(trail, key=key, timeout=0.2) as log:
        blocker = sqlite3.connect(trail, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(Unavailable, match="cannot be written"):
                log.record_disclosures([entry("R-LOCKED"), entry("R-LOCKED-2")])
            with pytest.raises(Unavailable):
                log.record_event("DELETION", "retention", {"record_number": "R-1"})
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        _unchanged(trail, head_before)
        assert log.disclosures_for_tracing("AFOSI", "R-LOCKED") == []
        log.record_disclosures([entry("R-AFTER")])  # the lock gone, it writes again
        assert log.verify().entries == ENTRIES + 1


def test_concurrent_callers_share_writes_and_each_stays_all_or_nothing(trail: Path, key: bytes) -> None:
    lock = os.open(trail.with_name(trail.name + ".lock"), os.O_RDWR)
    with AuditLog(trail, key=key, timeout=10) as log:
        writes_before = log.writes
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process writing: the first caller waits for the lock
        threads = [
            threading.Thread(target=log.record_disclosures, args=([entry(f"W-{n}-a"), entry(f"W-{n}-b")],))
            for n in range(8)
        ]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while len(log._group._queue) < 7 and time.monotonic() < deadline:  # the other seven queue behind it
            time.sleep(0.01)
        fcntl.flock(lock, fcntl.LOCK_UN)
        for thread in threads:
            thread.join(10)
        assert log.writes - writes_before <= 2  # the first caller's write, then one for the seven queued
        ids = {n: {d.disclosure_id for d in log.disclosures_for_tracing("AFOSI", f"W-{n}-a")} for n in range(8)}
        for n in range(8):
            [b] = log.disclosures_for_tracing("AFOSI", f"W-{n}-b")
            assert ids[n] == {b.disclosure_id}  # each caller's entries under its own id
        assert len({i for found in ids.values() for i in found}) == 8
        assert log.verify().ok and log.verify().entries == ENTRIES + 16
    os.close(lock)


def test_a_caller_queued_behind_a_stuck_writer_gets_unavailable_and_leaves_nothing(trail: Path, key: bytes) -> None:
    lock = os.open(trail.with_name(trail.name + ".lock"), os.O_RDWR)
    errors: list[BaseException] = []

    def record(record: str) -> None:
        try:
            log.record_disclosures([entry(record)])
        except Unavailable as error:
            errors.append(error)

    with AuditLog(trail, key=key, timeout=0.5) as log:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            threads = [threading.Thread(target=record, args=(f"S-{n}",)) for n in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(10)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
        assert len(errors) == 4 and all("cannot be written" in str(e) for e in errors)
        assert all(log.disclosures_for_tracing("AFOSI", f"S-{n}") == [] for n in range(4))
        log.record_disclosures([entry("S-AFTER")])
        assert log.verify().entries == ENTRIES + 1
    os.close(lock)


CHILD = """
import sys
from pathlib import Path
from indexer.exc import Unavailable
from indexer.model import PersonName, TracingKey
from search_service.accounting import AuditLog, DisclosureEntry

db, key = Path(sys.argv[1]), bytes.fromhex(sys.argv[2])
calls, batch, limit = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
entry = DisclosureEntry(
    TracingKey("AFOSI", "R-CHILD"), PersonName("Doe", "Jane"), "123-45-6789", "ONLINE", "SECURITY_CLEARANCE",
    "ACT", "op", False,
)
try:
    log = AuditLog(db, key=key)
    if limit:  # a disk that fills up: every file this process writes stops growing at `limit` bytes
        import resource, signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    for _ in range(calls):
        log.record_disclosures([entry] * batch)
except Unavailable as error:
    print("UNAVAILABLE", error, repr(error.__cause__))
else:
    print("RECORDED")
"""


def child_command(db: Path, key: bytes, calls: int, batch: int, limit: int = 0) -> list[str]:
    return [sys.executable, "-c", CHILD, str(db), key.hex(), str(calls), str(batch), str(limit)]


def run_child(
    db: Path, key: bytes, calls: int, batch: int, *, limit: int = 0, prefix: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, *child_command(db, key, calls, batch, limit)],
        cwd=ROOT,
        text=True,
        capture_output=True,
        timeout=120,
        check=False,
    )


def _without_root_powers() -> tuple[str, ...]:
    """Root ignores file modes; take away its power to (so chmod means what it says), or run as is."""
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: a read-only file cannot be made")
    return (setpriv, "--bounding-set", "-dac_override,-dac_read_search", "--")


@pytest.mark.parametrize("read_only", ["files", "files-and-directory", "head-file"])
def test_fail_closed_when_the_trail_is_read_only(trail: Path, key: bytes, read_only: str) -> None:
    """`head-file`: the database, its WAL and lock file stay writable (kept open by another log) but the
    head file cannot be written, so nothing may be committed."""
    head_before = head_file(trail).read_bytes()
    data = trail.parent
    with contextlib.ExitStack() as stack:
        if read_only == "head-file":
            stack.enter_context(AuditLog(trail, key=key))  # keeps audit.db-wal and -shm in place
        modes = {p: stat.S_IMODE(p.stat().st_mode) for p in [data, *data.iterdir()]}
        for path, mode in modes.items():
            stack.callback(path.chmod, mode)
        if read_only.startswith("files"):
            for path in data.iterdir():
                path.chmod(0o444)
        if read_only.endswith("directory"):
            data.chmod(0o555)
        if read_only == "head-file":
            head_file(trail).chmod(0o444)
        child = run_child(trail, key, 1, 3, prefix=_without_root_powers())
    assert child.stdout.startswith("UNAVAILABLE the audit trail cannot be written"), child.stdout + child.stderr
    _unchanged(trail, head_before)
    with AuditLog(trail, key=key) as log:
        assert log.disclosures_for_tracing("AFOSI", "R-CHILD") == []


def test_the_head_file_is_rewritten_in_place(trail: Path, key: bytes) -> None:
    """One fixed-size write at the start of the same file: nothing is created in the directory, so a
    read-only directory does not stop the trail, and the head reads back as the database's."""
    inode = head_file(trail).stat().st_ino
    data = trail.parent
    mode = stat.S_IMODE(data.stat().st_mode)
    with AuditLog(trail, key=key) as log:
        data.chmod(0o555)
        try:
            log.record_disclosures([entry("R-IN-PLACE")])
        finally:
            data.chmod(mode)
        assert log.verify().ok and log.verify().entries == ENTRIES + 1
    assert head_file(trail).stat().st_ino == inode and head_file(trail).stat().st_size == 128
    assert not [p for p in data.iterdir() if p.name.endswith(".tmp")]


def test_fail_closed_when_the_disk_is_full(trail: Path, key: bytes) -> None:
    head_before = head_file(trail).read_bytes()
    limit = trail.stat().st_size + 32 * 1024
    child = run_child(trail, key, 5, 1000, limit=limit)
    assert child.stdout.startswith("UNAVAILABLE the audit trail cannot be written"), child.stdout + child.stderr
    _unchanged(trail, head_before)
    with AuditLog(trail, key=key) as log:
        assert log.disclosures_for_tracing("AFOSI", "R-CHILD") == []


def test_opening_a_trail_that_cannot_be_made_fails_closed(key: bytes) -> None:
    with pytest.raises(Unavailable):
        AuditLog(Path("/proc/dcii-no-such-dir/audit.db"), key=key)


# ---- concurrency ----


def test_eight_threads_and_another_process_write_one_chain(db: Path, key: bytes) -> None:
    threads_n, calls, per_call = 8, 25, 4
    ids: list[str] = []
    errors: list[BaseException] = []
    with AuditLog(db, key=key) as log:
        start = threading.Barrier(threads_n + 1)

        def writer(n: int) -> None:
            try:
                start.wait()
                for c in range(calls):
                    ids.append(log.record_disclosures([entry(f"T{n}-{c}-{i}") for i in range(per_call)]))
                    if c % 5 == 0:
                        log.record_event("REFUSAL", f"thread-{n}", {"call": str(c)})
            except BaseException as error:
                errors.append(error)
                raise

        workers = [threading.Thread(target=writer, args=(n,)) for n in range(threads_n)]
        for worker in workers:
            worker.start()
        other = subprocess.Popen(child_command(db, key, 50, 4), cwd=ROOT, stdout=subprocess.PIPE, text=True)
        start.wait()
        for worker in workers:
            worker.join()
        out, _ = other.communicate(timeout=120)
        assert not errors and out.startswith("RECORDED")
        total = threads_n * calls * per_call + threads_n * (calls // 5) + 200
        result = log.verify()
        assert result.ok and result.entries == total, result
    assert len(set(ids)) == threads_n * calls
    # One transaction per call: each batch's entries are consecutive in the chain.
    batches: dict[str, list[int]] = {}
    for seq, text in rows(db):
        document = json.loads(text)
        if document["kind"] == "DISCLOSURE":
            batches.setdefault(document["disclosure_id"], []).append(seq)
    for seqs in batches.values():
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert verify_file(db).ok
