"""Checkpoints of the embedded store's WAL, made by a thread of their own instead of by the single writer.

SQLite checkpoints a WAL database inside the COMMIT that takes the WAL past 1000 pages: the committing
connection copies the pages into the database file and syncs it. A bulk load's write group dirties more
than 1000 pages, so every commit of the single writer also checkpointed, and that was a fifth of the
writer's time (in-process, 200,000 tracings in groups of 2,000: 45 µs a tracing, 37 µs without).
So the writer does not checkpoint on commit (wal_autocheckpoint=0); this thread does, PASSIVE (it blocks
neither readers nor the writer), woken by the writer's commits, at most once per `pause`.

A WAL restarts from its beginning only at a write that begins after a complete checkpoint, and under a
bulk load writes land while every checkpoint runs. So once the WAL holds `restart_frames` frames, the writer
itself checkpoints the remainder between two of its transactions (`Checkpoints.committed` says when): only
what this thread has not copied yet, and the next write restarts the WAL.

Durability does not change: every commit syncs the WAL (synchronous=FULL) as before, and a checkpoint is
SQLite's own. Should this thread stop on an error, the writer checkpoints after each of its commits until a
new thread runs (tried once a minute).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from indexer.failures import failure_fields

log = logging.getLogger(__name__)

# The writer's connection is told: never checkpoint in a commit.
NO_AUTOCHECKPOINT = "PRAGMA wal_autocheckpoint=0"
# A WAL this long (frames of 4 KiB) is finished by the writer between transactions, so that it restarts.
RESTART_FRAMES = 8000
# A checkpoint thread that stopped (its connection failed) is started again after this long; meanwhile the
# writer checkpoints after each commit, as SQLite would.
RETRY_SECONDS = 60.0


def checkpoint_loop(
    path: Path,
    *,
    wake: threading.Event,
    stop: threading.Event,
    pause: float,
    what: str,
    each: Callable[[sqlite3.Connection], None],
    timeout: float = 30.0,
) -> None:
    """The body of a checkpointing thread (this store's, and the audit trail's): a connection of its own that
    never checkpoints on a commit, and `each` round run whenever `wake` is set, at most once per `pause`,
    until `stop`. A connection that fails ends the thread with a warning naming `what` (no details: the
    error's type only)."""
    conn: sqlite3.Connection | None = None
    try:
        conn = sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(NO_AUTOCHECKPOINT)
        while not stop.is_set():
            wake.wait()
            wake.clear()
            if stop.is_set():
                break
            each(conn)
            stop.wait(pause)
    except sqlite3.Error as error:
        log.warning(f"{what} checkpoints stopped", extra=failure_fields(error))
    finally:
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.close()


class Checkpoints:
    """The checkpointing thread of one store file, started on the first commit."""

    def __init__(self, path: Path, *, restart_frames: int = RESTART_FRAMES, pause: float = 0.1) -> None:
        self._path = path
        self._restart_frames = restart_frames
        self._pause = pause
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._restart_due = False
        self._thread: threading.Thread | None = None
        self._next_start = 0.0  # monotonic: when a stopped thread may be started again
        self.checkpoints = 0  # completed passes (for the tests)

    def committed(self) -> bool:
        """Called by the writer after each commit: wakes the thread, and says whether the writer should
        checkpoint now itself (`PRAGMA wal_checkpoint(PASSIVE)` on its own connection): when the WAL must
        restart, and on every commit while no thread runs (it stopped on an error, or none could be
        started), so that the WAL never grows unchecked. A stopped thread is started again at most once
        per RETRY_SECONDS."""
        if self._stop.is_set():
            return False
        if self._thread is None or not self._thread.is_alive():
            now = time.monotonic()
            if now < self._next_start:
                return True
            self._next_start = now + RETRY_SECONDS
            try:
                thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
                thread.start()
            except RuntimeError:  # no thread to be had: the writer checkpoints
                return True
            self._thread = thread
        self._wake.set()
        due, self._restart_due = self._restart_due, False
        return due

    def _run(self) -> None:
        checkpoint_loop(self._path, wake=self._wake, stop=self._stop, pause=self._pause, what="store", each=self._round)

    def _round(self, conn: sqlite3.Connection) -> None:
        try:
            busy, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as error:  # the next commit wakes it again; the store is unaffected
            log.warning("store checkpoint failed", extra=failure_fields(error))
            return
        self.checkpoints += not busy
        if frames >= self._restart_frames:
            self._restart_due = True

    def close(self) -> None:
        """Stop the thread (a checkpoint under way finishes first)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
