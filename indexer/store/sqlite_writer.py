"""The embedded store's single writer: one thread, the only writing connection, group commit.

Whatever writes are waiting go into one transaction (many ingest streams share one fsync instead of
queueing for their own), and each operation's rules (versions, tombstones, completions, supersession:
indexer.store.sqlite_rules) are applied inside that transaction.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from indexer.failures import failure_fields
from indexer.store import sqlite_checkpoint
from indexer.store.base import WriteResult
from indexer.store.sqlite_checkpoint import NO_AUTOCHECKPOINT, Checkpoints
from indexer.store.sqlite_keys import MERGE_IDLE_SECONDS, KeyChanges, KeyIndexUpkeep
from indexer.store.sqlite_ops import Op, prepared_ops, write_failure
from indexer.store.sqlite_rules import WriteRules
from indexer.store.sqlite_schema import connect, prepare, refuse_newer
from indexer.store.sqlite_time import micros

log = logging.getLogger(__name__)

# Writes waiting beyond this many operations go into the next transaction.
_MAX_GROUP_OPS = 2000


@dataclass
class _Job:
    ops: Sequence[Op]
    actor: str
    future: Future[list[WriteResult]]


class Writer:
    """The single writer thread: groups what is waiting into one transaction (the rules of each operation:
    indexer.store.sqlite_rules)."""

    def __init__(self, path: Path, clock: Callable[[], dt.datetime]) -> None:
        refuse_newer(path)  # before anything here changes the file
        self._conn = connect(path)
        try:
            prepare(self._conn)
        except BaseException:
            self._conn.close()
            raise
        self._conn.execute(NO_AUTOCHECKPOINT)  # Checkpoints' thread does it, off the commits
        self._checkpoints = Checkpoints(path, restart_frames=sqlite_checkpoint.RESTART_FRAMES)
        self._clock = clock
        self._rules = WriteRules(self._conn)
        self._upkeep = KeyIndexUpkeep(self._conn)
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="sqlite-writer", daemon=True)
        self._thread.start()

    def submit(self, ops: Sequence[Op], actor: str) -> list[WriteResult]:
        job = _Job(prepared_ops(ops), actor, Future())
        self._queue.put(job)
        return job.future.result()

    @property
    def merge_pending(self) -> bool:
        """Whether the key index is due a merge the writer has not finished (KeyIndexUpkeep)."""
        return self._upkeep.pending

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join()
        self._checkpoints.close()
        self._conn.close()

    def _run(self) -> None:
        while True:
            try:
                job = self._queue.get(timeout=MERGE_IDLE_SECONDS if self._upkeep.due(self._conn) else None)
            except queue.Empty:
                self._merge_while_idle()
                continue
            if job is None:
                return
            jobs = [job]
            waiting = len(job.ops)
            while waiting < _MAX_GROUP_OPS:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)  # stop after this group
                    break
                jobs.append(more)
                waiting += len(more.ops)
            self._commit_group(jobs)

    def _merge_while_idle(self) -> None:
        """Merge steps until the index is one segment or a write arrives (KeyIndexUpkeep)."""
        try:
            while self._queue.empty() and self._upkeep.due(self._conn):
                self._upkeep.step(self._conn)
                self._committed()
        except sqlite3.Error:
            log.warning("merging the key index failed; tried again after more writes", exc_info=True)
            self._upkeep.postpone()

    def _commit_group(self, jobs: list[_Job]) -> None:
        conn = self._conn
        rules = self._rules
        rules.keys = KeyChanges()
        try:
            conn.execute("BEGIN IMMEDIATE")
            now = micros(self._clock())
            results = []
            for job in jobs:
                results.append([rules.apply(op, job.actor, now) for op in job.ops])
            rules.keys.apply(conn)
            conn.execute("COMMIT")
        except Exception as error:
            # Whatever failed, the writer lives on: roll back (SQLite may have already), tell every caller of
            # the group (nothing of it was stored; each may retry) and take the next group. A writer thread
            # that died here would leave every later write waiting for ever, and the file's write lock held.
            with contextlib.suppress(sqlite3.Error):
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            failure = write_failure(error)
            for job in jobs:
                job.future.set_exception(failure)
            return
        for job, result in zip(jobs, results, strict=True):
            job.future.set_result(result)
        self._upkeep.wrote(sum(len(job.ops) for job in jobs))
        self._committed()

    def _committed(self) -> None:
        """After each commit: the WAL's checkpoints (sqlite_checkpoint), here only when it must restart or
        no checkpoint thread runs. Nothing here may end the writer thread: the next commit asks again."""
        try:
            if self._checkpoints.committed():
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception as error:  # nothing written is affected
            log.warning("store checkpoint failed", extra=failure_fields(error))
