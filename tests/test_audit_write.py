"""How the audit trail writes (issue 7): the head file kept open, multi-row inserts, the head row moved on
in one statement, disclosure ids drawn in bulk, and checkpoints made by a thread of their own. On real
SQLite files; what they must not change (all or nothing, tamper evidence) is in test_accounting.py and
test_accounting_verify.py."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from indexer.model import PersonName, TracingKey
from search_service import audit_chain
from search_service.accounting import AuditLog, DisclosureEntry, load_or_create_key, verify_file
from search_service.accounting_entries import DisclosureIds
from search_service.audit_checkpoint import Checkpointer

NAME = PersonName("Zygmuntowicz", "Bartholomew")


def entry(record: str) -> DisclosureEntry:
    return DisclosureEntry(
        TracingKey("AFOSI", record), NAME, "231-45-8670", "ONLINE", "SECURITY_CLEARANCE", "CCF-01", "adj", False
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "audit.db"


@pytest.fixture
def key(tmp_path: Path) -> bytes:
    return load_or_create_key(tmp_path / "data" / "audit.key")


def head_file(db: Path) -> Path:
    return db.with_name(db.name + ".head")


def recorded_head(db: Path) -> dict[str, object]:
    document: dict[str, object] = json.loads(head_file(db).read_text())
    return document


def test_a_write_larger_than_one_insert_statement(db: Path, key: bytes) -> None:
    count = 2 * audit_chain.INSERT_CHUNK + 7
    with AuditLog(db, key=key) as log:
        log.record_disclosures([entry(f"R-{i}") for i in range(count)])
        log.record_disclosures([entry("R-LAST")])
        assert log.writes == 2
        assert log.verify().ok and log.verify().entries == count + 1
        assert [d.tracing.record_number for d in log.disclosures_for_tracing("AFOSI", "R-0")] == ["R-0"]
    assert recorded_head(db)["seq"] == count + 1


def _flushed(log: AuditLog, count: int) -> bool:
    return log.head_syncs == count


def test_the_head_file_is_current_when_a_write_returns_and_flushed_soon_after(db: Path, key: bytes) -> None:
    # The head is written before the callers return (what verify and another process read at once) and
    # flushed by the checkpointer's thread a moment later, each write's in turn when writes are spaced.
    with AuditLog(db, key=key) as log:
        for n in range(1, 4):
            log.record_disclosures([entry(f"R-{n}")])
            assert recorded_head(db)["seq"] == n
            _wait_for(functools.partial(_flushed, log, n), 10)
        assert log.verify().ok
        time.sleep(0.3)  # nothing written since: nothing more to flush
        assert log.head_syncs == 3


def test_a_head_file_deleted_under_an_open_log_is_made_again_and_the_gap_recorded(db: Path, key: bytes) -> None:
    with AuditLog(db, key=key) as log:
        log.record_disclosures([entry("R-1")])
        head_file(db).unlink()
        log.record_disclosures([entry("R-2")])  # not written into the deleted file it still had open
        (anchor,) = log.events("AUDIT_ANCHOR_MISMATCH")
        assert anchor.detail == {"state": "missing", "db_seq": "1"}
    assert recorded_head(db)["seq"] == 3  # R-1, the anchor entry, R-2
    result = verify_file(db)
    assert not result.ok and "head file was missing" in result.reason


def test_a_head_file_replaced_under_an_open_log_is_the_one_written(db: Path, key: bytes) -> None:
    with AuditLog(db, key=key) as log:
        log.record_disclosures([entry("R-1")])
        older = head_file(db).read_bytes()
        log.record_disclosures([entry("R-2")])
        # Put back the older head by replacing the file (a restore would): a head one commit behind
        # is an interrupted write, not a break, and the next head must go into the new file.
        replacement = head_file(db).with_name("restored.head")
        replacement.write_bytes(older)
        os.replace(replacement, head_file(db))
        log.record_disclosures([entry("R-3")])
        assert log.events() == []
    assert recorded_head(db)["seq"] == 3
    assert verify_file(db).reason == "intact"


def test_a_log_writing_after_another_writer_chains_after_its_entries(
    db: Path, key: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    # The first handle's next write would assume the head it left; the other one moved it on in between.
    with AuditLog(db, key=key) as first, AuditLog(db, key=key) as second:
        first.record_disclosures([entry("R-1")])
        second.record_disclosures([entry("R-2"), entry("R-3")])
        first.record_disclosures([entry("R-4")])
        second.record_disclosures([entry("R-5")])
        assert first.verify().ok and first.verify().entries == 5
        assert first.events() == []  # another writer's head is no mismatch
    assert verify_file(db).reason == "intact"
    assert "disagrees" not in caplog.text


def test_disclosure_ids_are_distinct_random_uuid4s() -> None:
    ids = DisclosureIds()
    taken = [i for _ in range(300) for i in ids.take(7)] + ids.take(DisclosureIds.IDS_PER_DRAW * 2)
    assert len(set(taken)) == len(taken)
    for text in taken[:50] + taken[-50:]:
        assert uuid.UUID(hex=text).version == 4 and len(text) == 32


def _wait_for(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_the_checkpointer_thread_checkpoints_the_trail(db: Path, key: bytes) -> None:
    with AuditLog(db, key=key) as log:
        for k in range(20):
            log.record_disclosures([entry(f"R-{k}-{i}") for i in range(20)])
        _wait_for(lambda: log.checkpoints >= 1)
        conn = sqlite3.connect(db)
        try:
            # The commits themselves leave the WAL alone (they would checkpoint at 1000 pages).
            assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000  # a fresh connection's
            assert log._conn().execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
        finally:
            conn.close()
        log.record_disclosures([entry("R-LAST")])
        assert log.verify().ok and log.verify().entries == 401
    assert verify_file(db).reason == "intact"


@contextlib.contextmanager
def _held(lock: threading.Lock) -> Iterator[None]:
    with lock:
        yield


def test_the_wal_restarts_under_steady_writes(tmp_path: Path) -> None:
    """Writes land while each checkpoint runs, so it never completes on its own: past `restart_frames`
    the checkpointer finishes it with the writers held off, and the WAL starts again from the top."""
    path = tmp_path / "steady.db"
    setup = sqlite3.connect(path, isolation_level=None)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")
    setup.close()
    writer_lock = threading.Lock()
    stop = threading.Event()
    checkpointer = Checkpointer(path, lambda: _held(writer_lock), pause=0.005, restart_frames=64, every=1)
    frames_written, wal_bytes = 0, 0
    wal = path.with_name("steady.db-wal")

    def write() -> None:
        nonlocal frames_written, wal_bytes
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA wal_autocheckpoint=0")
        k = 0
        while not stop.is_set():
            with writer_lock:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany("INSERT INTO t VALUES (?, randomblob(3000))", [(k + i,) for i in range(4)])
                conn.execute("COMMIT")
            k, frames_written = k + 4, frames_written + 4
            wal_bytes = max(wal_bytes, os.path.getsize(wal))
            checkpointer.written(4)
            # A server's writes come between answers, not in a tight loop; without this pause the loop can
            # hold the GIL long enough on a loaded machine that the checkpointer never gets a turn.
            time.sleep(0.0005)
        conn.close()

    thread = threading.Thread(target=write)
    thread.start()
    try:
        _wait_for(lambda: frames_written >= 3000 and checkpointer.checkpoints >= 3, 60)
    finally:
        stop.set()
        thread.join()
        checkpointer.close()
    # Without the restart the WAL would hold every page written (and never stop growing).
    assert wal_bytes // 4096 < frames_written // 2, (wal_bytes, frames_written)
