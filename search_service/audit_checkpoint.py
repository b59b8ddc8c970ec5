"""Checkpoints of the audit trail's WAL, made by a thread of their own instead of by the searches.

SQLite checkpoints a WAL database inside the COMMIT that takes the WAL past 1000 pages: that commit
copies the pages into the database file and fsyncs it, while the writer lock is held and every search
whose disclosures are in that write (or queued behind it) waits. On a large trail that took up to
150 ms, and was two thirds of the average commit's time. So the trail's connections do not checkpoint
(wal_autocheckpoint=0) and this thread does, PASSIVE (it blocks neither readers nor the writer),
after every CHECKPOINT_ENTRIES entries written, at most once per `pause`.

The WAL restarts from its beginning only at a write that starts after a *complete* checkpoint; under
steady load, writes land while each checkpoint runs, so it never would, and the WAL would grow without
bound. So once the WAL holds RESTART_FRAMES frames, the thread checkpoints what remains while it holds
the writer lock (the writes wait for that remainder only, not for the bulk, done just before), and the
next write restarts the WAL.

Nothing about durability changes: the WAL is fsynced at every commit (synchronous=FULL) as before, and
a checkpoint is SQLite's own (it syncs the WAL before copying and the database after). Should this
thread stop or fail, the last connection to close checkpoints the rest.

The same thread makes the head file durable (`sync_head`, search_service.audit_head): woken by every
write, it syncs at once and then at most once per `pause`, so the head file is flushed a fraction of a
second after the write it records instead of on the searches' path. And it copies the new entries'
lookups (by tracing, subject and kind) into the trail's lookup file (`catch_up`,
search_service.audit_lookup), which the writes no longer index themselves.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from indexer.exc import DciiError
from indexer.failures import failure_fields
from indexer.store.sqlite_checkpoint import checkpoint_loop

log = logging.getLogger(__name__)

# Entries written between two checkpoints: a few pages each (the entry and its three index rows), so
# about SQLite's own 1000 pages. Few writes leave the WAL alone, as SQLite would.
CHECKPOINT_ENTRIES = 300
# A WAL this long (frames of 4 KiB) is checkpointed whole under the writer lock, so that it restarts.
RESTART_FRAMES = 4000


class Checkpointer:
    """Checkpoints `path` soon after `written()` is called, from a daemon thread started on first use.
    `exclusive` holds off every writer of the trail (in this process and others) while it is entered.
    `sync_head`, when given, is called from the same thread soon after every write (it must take the
    locks it needs itself, and say whether it had anything to sync); `catch_up`, when given, likewise (it
    says how many entries it copied; having copied some, it is called again a round later, until it copies
    none)."""

    def __init__(
        self,
        path: Path,
        exclusive: Callable[[], AbstractContextManager[None]],
        *,
        sync_head: Callable[[], bool] | None = None,
        catch_up: Callable[[], int] | None = None,
        pause: float = 0.2,
        timeout: float = 10.0,
        restart_frames: int = RESTART_FRAMES,
        every: int = CHECKPOINT_ENTRIES,
    ) -> None:
        self._path = path
        self._every = every
        self._entries = 0  # written since the last checkpoint was asked for (a rough count is enough)
        self._checkpoint_due = False
        self._sync_head = sync_head
        self._catch_up = catch_up
        self._catch_up_failing = False
        self._sync_due = False
        self._exclusive = exclusive
        self._restart_frames = restart_frames
        self._pause = pause
        self._timeout = timeout
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.checkpoints = 0  # completed PASSIVE checkpoints (for tests and metrics)
        self.head_syncs = 0  # head file writes made durable by this thread (for tests)
        self.lookups_copied = 0  # entries copied into the lookup file by this thread (for tests)

    def written(self, entries: int) -> None:
        """A write of `entries` was committed: sync the head file soon, and checkpoint soon once
        CHECKPOINT_ENTRIES have been (about as often as SQLite would). Cheap enough for every write (no
        system call while the thread pauses between rounds)."""
        self._entries += entries
        if self._entries >= self._every:
            self._entries, self._checkpoint_due = 0, True
        elif self._sync_head is None and self._catch_up is None:
            return
        self._sync_due = True
        if self._stop.is_set():
            return
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if (self._thread is None or not self._thread.is_alive()) and not self._stop.is_set():
                    self._thread = threading.Thread(target=self._run, name="audit-checkpoint", daemon=True)
                    self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        checkpoint_loop(
            self._path,
            wake=self._wake,
            stop=self._stop,
            pause=self._pause,
            what="audit",
            each=self._round,
            timeout=self._timeout,
        )

    def _round(self, conn: sqlite3.Connection) -> None:
        if self._checkpoint_due:
            self._checkpoint_due = False
            try:
                self._checkpoint(conn)
            except (sqlite3.Error, DciiError) as error:  # the next write asks again; the trail is unaffected
                log.warning("audit checkpoint failed", extra=failure_fields(error))
        if self._sync_due and self._sync_head is not None:
            self._sync_due = False
            try:
                self.head_syncs += self._sync_head()
            except (OSError, DciiError) as error:  # the next write asks again; the entries are durable
                log.warning("audit head file sync failed", extra=failure_fields(error))
        if self._catch_up is not None:
            self._copy_lookups(self._catch_up)

    def _copy_lookups(self, catch_up: Callable[[], int]) -> None:
        """Bring the trail's lookup file up to date (search_service.audit_lookup); a failure is logged
        once until it works again: readers scan the trail past what the lookup has meanwhile."""
        try:
            copied = catch_up()
            self.lookups_copied += copied
            self._catch_up_failing = False
            if copied:  # perhaps only a round's share of a backlog: another round follows (after the pause)
                self._wake.set()
        except (sqlite3.Error, OSError) as error:
            if not self._catch_up_failing:
                log.warning("audit lookups not copied", extra=failure_fields(error))
            self._catch_up_failing = True

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        busy, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if not busy and frames >= self._restart_frames:
            with self._exclusive():  # no write lands now: the checkpoint completes, the next write restarts
                busy, _, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.checkpoints += 0 if busy else 1  # busy: another process is checkpointing

    def close(self) -> None:
        """Stop the thread (a checkpoint under way finishes first)."""
        self._stop.set()
        self._wake.set()
        with self._lock:
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(self._timeout)
