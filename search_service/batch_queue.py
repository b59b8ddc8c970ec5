"""The durable batch queue: batches, their queries and their results, in `<data>/batch.db`.

A batch is written whole, in one transaction, before its submitter hears its id; each query's result
(a serialized `BatchQueryResult`) is written beside the query once it is answered. Whatever has no
result yet is still to do, so a server that stops (or dies) resumes where it stopped: a RUNNING batch
is simply picked up again and no answered query is redone.

The file is SQLite in WAL mode with synchronous=FULL (a commit is on disk when it returns), one
connection per thread, like the registry. Results hold the tracings that were disclosed (with the
same SSN masking as online answers): the file is as sensitive as the index itself (mode 0600).

The counters `done` (queries with a result, refused ones included) and `rejected` (queries refused by
the edit criteria or the activity's accreditation) live on the batch row and move in the same
transaction as the results, so a status poll never counts rows.

Results are deleted `keep_results_days` after their batch finished by `BatchPurge`, a timer of the serving
(primary) process: not by the batch worker, which runs only while batches wait and is busy while they do, so
results would outlive their keeping time after a restart or on a busy index (review F2).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from indexer.exc import ResourceExhausted, Unavailable
from indexer.failures import failure_fields, failure_text
from search_service.sqlite_files import ThreadConnections

log = logging.getLogger(__name__)


class BatchState(StrEnum):
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    DONE = "DONE"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"


# The worker takes these; every other state is final.
ACTIVE_STATES = (BatchState.QUEUED, BatchState.RUNNING)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batch (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, batch_id TEXT NOT NULL UNIQUE, label TEXT NOT NULL,
    activity_id TEXT NOT NULL, operator TEXT NOT NULL, fingerprint TEXT NOT NULL, state TEXT NOT NULL,
    total INTEGER NOT NULL, done INTEGER NOT NULL DEFAULT 0, rejected INTEGER NOT NULL DEFAULT 0,
    submitted_at TEXT NOT NULL, finished_at TEXT, reason TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS batch_active ON batch (state, seq);
CREATE TABLE IF NOT EXISTS batch_query (
    batch_seq INTEGER NOT NULL REFERENCES batch (seq), position INTEGER NOT NULL, query_id TEXT NOT NULL,
    request BLOB NOT NULL, result BLOB, PRIMARY KEY (batch_seq, position)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS batch_query_pending ON batch_query (batch_seq, position) WHERE result IS NULL;
"""

_BATCH_COLUMNS = (
    "batch_id, label, activity_id, operator, fingerprint, state, total, done, rejected, submitted_at,"
    " finished_at, reason, seq"
)


@dataclass(frozen=True, slots=True)
class Owner:
    """Who submitted a batch: its results are disclosed to this activity (and operator)."""

    activity_id: str
    operator: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class NewQuery:
    query_id: str
    request: bytes  # a serialized SearchRequest
    result: bytes | None = None  # set for a query refused at submission (its violations)


@dataclass(frozen=True, slots=True)
class PendingQuery:
    position: int
    query_id: str
    request: bytes


@dataclass(frozen=True, slots=True)
class Answered:
    position: int
    result: bytes  # a serialized BatchQueryResult
    rejected: bool


@dataclass(frozen=True, slots=True)
class Batch:
    batch_id: str
    label: str
    owner: Owner
    state: BatchState
    total: int
    done: int
    rejected: int
    submitted_at: dt.datetime
    finished_at: dt.datetime | None
    reason: str
    seq: int

    @property
    def finished(self) -> bool:
        return self.state not in ACTIVE_STATES


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")


def _batch(row: tuple[object, ...]) -> Batch:
    (batch_id, label, activity, operator, fingerprint, state, total, done, rejected, at, end, reason, seq) = row
    return Batch(
        str(batch_id),
        str(label),
        Owner(str(activity), str(operator), str(fingerprint)),
        BatchState(str(state)),
        int(str(total)),
        int(str(done)),
        int(str(rejected)),
        dt.datetime.fromisoformat(str(at)),
        None if end is None else dt.datetime.fromisoformat(str(end)),
        str(reason),
        int(str(seq)),
    )


class BatchQueue:
    """Thread-safe (one connection per thread); `close` closes them all."""

    def __init__(self, path: Path, *, clock: Callable[[], dt.datetime] | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._db = ThreadConnections(self.path, foreign_keys=True, secure_delete=True)
        # The WAL may still hold copies of purged rows (a purge whose emptying of it a reader held off, in
        # this process or before a restart): the first purge empties it whatever it deletes.
        self._wal_owed = True
        with self._conn() as conn:
            conn.executescript(_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        return self._db.get()

    def _one(self, conn: sqlite3.Connection, batch_id: str) -> Batch | None:
        sql = f"SELECT {_BATCH_COLUMNS} FROM batch WHERE batch_id = ?"  # noqa: S608 (constant columns)
        row = conn.execute(sql, (batch_id,)).fetchone()
        return None if row is None else _batch(row)

    # ---- submission and status ----

    def submit(self, owner: Owner, label: str, queries: Sequence[NewQuery], *, max_active: int | None = None) -> Batch:
        """Queue a whole batch in one transaction (durable when this returns); state QUEUED. ResourceExhausted
        when the owner's activity already holds `max_active` unfinished batches (None: no cap)."""
        batch_id = uuid.uuid4().hex
        refused = sum(q.result is not None for q in queries)
        try:
            with self._conn() as conn:
                # The count and the insert are one statement, so one write transaction: two submissions at
                # once (from two serving processes, too) cannot both slip under the cap.
                cursor = conn.execute(
                    "INSERT INTO batch (batch_id, label, activity_id, operator, fingerprint, state, total, done,"
                    " rejected, submitted_at) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?"
                    " WHERE ? < 0 OR (SELECT count(*) FROM batch WHERE state IN (?, ?) AND activity_id = ?) < ?",
                    (
                        batch_id,
                        label,
                        owner.activity_id,
                        owner.operator,
                        owner.fingerprint,
                        BatchState.QUEUED,
                        len(queries),
                        refused,
                        refused,
                        _iso(self._clock()),
                        -1 if max_active is None else max_active,
                        *ACTIVE_STATES,
                        owner.activity_id,
                        max_active,
                    ),
                )
                if cursor.rowcount == 0:
                    raise too_many_active(max_active or 0)
                seq = cursor.lastrowid
                conn.executemany(
                    "INSERT INTO batch_query VALUES (?, ?, ?, ?, ?)",
                    ((seq, i, q.query_id, q.request, q.result) for i, q in enumerate(queries)),
                )
        except sqlite3.Error as error:
            raise Unavailable(f"the batch queue cannot be written: {failure_text(error)}") from error
        found = self.get(batch_id)
        assert found is not None
        return found

    def get(self, batch_id: str) -> Batch | None:
        return self._one(self._conn(), batch_id)

    def active_count(self, activity_id: str) -> int:
        """How many unfinished (QUEUED or RUNNING) batches `activity_id` holds."""
        row = (
            self._conn()
            .execute(
                "SELECT count(*) FROM batch WHERE state IN (?, ?) AND activity_id = ?", (*ACTIVE_STATES, activity_id)
            )
            .fetchone()
        )
        return int(row[0])

    def now(self) -> dt.datetime:
        """The queue's clock (what submitted_at and finished_at are read against)."""
        return self._clock()

    def cancel(self, batch_id: str) -> Batch | None:
        """Mark an active batch CANCELLED (a finished one stays as it is); the worker stops between chunks."""
        self._finish(batch_id, BatchState.CANCELLED, "cancelled by the submitter")
        return self.get(batch_id)

    def fail(self, batch_id: str, reason: str) -> None:
        self._finish(batch_id, BatchState.FAILED, reason)

    def _finish(self, batch_id: str, state: BatchState, reason: str) -> None:
        with self._conn() as conn:
            conn.execute(
                "UPDATE batch SET state = ?, finished_at = ?, reason = ? WHERE batch_id = ? AND state IN (?, ?)",
                (state, _iso(self._clock()), reason, batch_id, *ACTIVE_STATES),
            )

    # ---- the worker ----

    def runnable(self) -> list[Batch]:
        """Active batches, oldest first (a RUNNING batch left by a stopped server is among them)."""
        sql = f"SELECT {_BATCH_COLUMNS} FROM batch WHERE state IN (?, ?) ORDER BY seq"  # noqa: S608
        return [_batch(row) for row in self._conn().execute(sql, ACTIVE_STATES)]

    def pending(self, batch: Batch, limit: int) -> list[PendingQuery]:
        """The next `limit` queries of `batch` without a result, in submission order."""
        rows = self._conn().execute(
            "SELECT position, query_id, request FROM batch_query WHERE batch_seq = ? AND result IS NULL"
            " ORDER BY position LIMIT ?",
            (batch.seq, limit),
        )
        return [PendingQuery(int(p), str(q), bytes(r)) for p, q, r in rows]

    def record(self, batch: Batch, answered: Sequence[Answered]) -> Batch:
        """Store results (one transaction); a query already answered keeps its first result. The batch
        becomes RUNNING, and DONE once no query is left (unless it was cancelled meanwhile)."""
        with self._conn() as conn:
            done = rejected = 0
            for item in answered:
                changed = conn.execute(
                    "UPDATE batch_query SET result = ? WHERE batch_seq = ? AND position = ? AND result IS NULL",
                    (item.result, batch.seq, item.position),
                ).rowcount
                done += changed
                rejected += changed if item.rejected else 0
            conn.execute(
                "UPDATE batch SET done = done + ?, rejected = rejected + ? WHERE seq = ?", (done, rejected, batch.seq)
            )
            conn.execute(
                "UPDATE batch SET state = ? WHERE seq = ? AND state = ?",
                (BatchState.RUNNING, batch.seq, BatchState.QUEUED),
            )
            left = conn.execute(
                "SELECT 1 FROM batch_query WHERE batch_seq = ? AND result IS NULL LIMIT 1", (batch.seq,)
            ).fetchone()
            if left is None:
                conn.execute(
                    "UPDATE batch SET state = ?, finished_at = ? WHERE seq = ? AND state IN (?, ?)",
                    (BatchState.DONE, _iso(self._clock()), batch.seq, *ACTIVE_STATES),
                )
            found = self._one(conn, batch.batch_id)
        assert found is not None
        return found

    def purge_finished(self, before: dt.datetime) -> int:
        """Delete batches that finished before `before`, their queries and results (which hold disclosed
        tracings: kept only as long as their submitter needs them). Returns how many went."""
        conn = self._conn()
        seqs = [
            int(row[0])
            for row in conn.execute(
                "SELECT seq FROM batch WHERE state NOT IN (?, ?) AND finished_at < ?", (*ACTIVE_STATES, _iso(before))
            )
        ]
        for seq in seqs:
            # A transaction per batch: a 100,000-query batch holds the file's write lock alone, and the worker
            # storing a chunk, or a submission, waits for one batch's delete, not for all of them.
            with conn:
                conn.execute("DELETE FROM batch_query WHERE batch_seq = ?", (seq,))
                conn.execute("DELETE FROM batch WHERE seq = ?", (seq,))
        if seqs or self._wal_owed:
            # The rows are overwritten in the file (secure_delete), but the WAL still holds copies of their
            # pages, as written and as deleted (a batch review read a purged batch's SSNs there): emptied
            # now, or, while a reader holds it, by the next purge, whether or not it deletes anything.
            # Briefly: waiting for a reader, it would hold off every writer (the worker, a submission).
            conn.execute("PRAGMA busy_timeout = 200")
            try:
                busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            finally:
                conn.execute("PRAGMA busy_timeout = 30000")  # as ThreadConnections opens it
            self._wal_owed = busy != 0
        return len(seqs)

    # ---- results ----

    def results(self, batch: Batch, after: int = -1, limit: int = 1000) -> list[tuple[int, bytes]]:
        """(position, result) of answered queries after `after`, in submission order."""
        rows = self._conn().execute(
            "SELECT position, result FROM batch_query WHERE batch_seq = ? AND position > ? AND result IS NOT NULL"
            " ORDER BY position LIMIT ?",
            (batch.seq, after, limit),
        )
        return [(int(p), bytes(r)) for p, r in rows]

    def close(self) -> None:
        self._db.close_all()


def too_many_active(limit: int) -> ResourceExhausted:
    return ResourceExhausted(
        f"this activity already holds {limit} unfinished batches, the most it may: wait for one to finish,"
        " or cancel one (dcii batch cancel ID), then submit again"
    )


class BatchPurge:
    """Deletes finished batches and their results `keep` after they finished: once when started (before the
    server takes calls), then every `interval` seconds, in a thread of its own. The serving (primary)
    process runs it whatever its batch worker does: none, no threads, or busy with other batches."""

    def __init__(self, queue: BatchQueue, keep: dt.timedelta, interval: float) -> None:
        self._queue = queue
        self._keep = keep
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run(self) -> int:
        """Purge what is due now; how many batches went (0 when the queue could not be written)."""
        try:
            gone = self._queue.purge_finished(self._queue.now() - self._keep)
        except Exception as error:  # the file busy or failing: the next tick tries again
            log.warning("batch purge failed", extra=failure_fields(error))
            return 0
        if gone:
            log.info("finished batches purged", extra={"batches": gone})
        return gone

    def start(self) -> None:
        self.run()
        self._thread = threading.Thread(target=self._loop, name="batch-purge", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self.run()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
