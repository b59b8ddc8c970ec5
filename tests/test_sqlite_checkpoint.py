"""The embedded store's WAL checkpoints (indexer.store.sqlite_checkpoint): made by a thread of their own, not
inside the writer's commits, and the WAL still restarts (stays bounded) under back-to-back writes."""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path

import pytest

from indexer.demo import generate_tracings
from indexer.edit_criteria import check_tracing
from indexer.store import sqlite_checkpoint
from indexer.store.base import Upsert
from indexer.store.sqlite import SqliteStore

TODAY = dt.date(2026, 11, 21)
PAGE = 4096


def test_the_wal_is_copied_into_the_database_while_the_store_is_open(tmp_path: Path) -> None:
    """The writer's connection never checkpoints in a commit (wal_autocheckpoint=0): without the thread, the
    pages would stay in the WAL until the store closed, and the WAL would grow without end."""
    path = tmp_path / "s.db"
    tracings = [check_tracing(t, today=TODAY) for t in generate_tracings(3000, seed=21, today=TODAY)]
    store = SqliteStore(path)
    try:
        empty = path.stat().st_size
        for start in range(0, len(tracings), 500):
            store.write([Upsert(t) for t in tracings[start : start + 500]], actor="t")
        written = Path(f"{path}-wal").stat().st_size
        deadline = time.monotonic() + 30
        while path.stat().st_size - empty < written // 2:
            assert time.monotonic() < deadline, f"{path.stat().st_size} bytes in the database, {written} in the WAL"
            time.sleep(0.05)
        assert store.get(tracings[-1].key) is not None
    finally:
        store.close()


def test_the_wal_restarts_under_back_to_back_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Writes that land while every checkpoint runs would keep the WAL from ever restarting: past
    RESTART_FRAMES the writer finishes the checkpoint between two transactions, and the WAL is reused."""
    monkeypatch.setattr(sqlite_checkpoint, "RESTART_FRAMES", 200)
    path = tmp_path / "s.db"
    tracings = [check_tracing(t, today=TODAY) for t in generate_tracings(12000, seed=22, today=TODAY)]
    store = SqliteStore(path)
    largest = 0
    try:

        def push(part: list[Upsert]) -> None:
            for start in range(0, len(part), 100):
                store.write(part[start : start + 100], actor="t")

        ops = [Upsert(t) for t in tracings]
        threads = [threading.Thread(target=push, args=(ops[i::4],)) for i in range(4)]
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads):
            largest = max(largest, Path(f"{path}-wal").stat().st_size)
            time.sleep(0.01)
        database = path.stat().st_size
        assert store.get(tracings[-1].key) is not None
    finally:
        store.close()
    # Never restarted, the WAL would hold about all that was written: here ~3.5 times the database's pages.
    assert largest < database, f"the WAL reached {largest // PAGE} pages, the database holds {database // PAGE}"


def test_while_no_checkpoint_thread_runs_the_writer_is_told_to_checkpoint(tmp_path: Path) -> None:
    """A thread whose connection fails stops; the WAL must not grow unchecked meanwhile: every commit is
    answered "checkpoint it yourself" until a new thread may be tried."""
    checkpoints = sqlite_checkpoint.Checkpoints(tmp_path / "no such directory" / "s.db")
    try:
        checkpoints.committed()  # starts the thread, whose connection cannot open the file
        deadline = time.monotonic() + 10
        while not checkpoints.committed():
            assert time.monotonic() < deadline, "the writer was never told to checkpoint"
            time.sleep(0.01)
        assert all(checkpoints.committed() for _ in range(5))
    finally:
        checkpoints.close()
