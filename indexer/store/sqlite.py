"""The embedded store: one SQLite file, the default system of record.

- WAL with synchronous=FULL: a write acknowledged is on disk and survives kill -9 or power loss.
- One writer: every write goes through a single thread that owns the only writing connection. It
  groups whatever writes are waiting into one transaction (group commit), so many ingest streams
  share one fsync instead of queueing for their own.
- Readers use one read-only connection per thread and never block the writer (WAL).
- Lifecycle (indexer.store.sqlite_lifecycle): the NAC-history index behind retention and favorable-NAC
  supersession, and statements of dispute, kept by the writer in the same transaction as the write.
- Several processes may open the same file (the server and `dcii retention run`): each has its own
  writer, and SQLite's file lock (busy_timeout 30 s) takes their transactions one at a time.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path

from indexer.codec import tracing_from_json
from indexer.codec_head import head_from_text
from indexer.exc import FailedPrecondition, Unavailable
from indexer.failures import failure_text
from indexer.model import Dispute, Identifiers, StoredTracing, TracingKey, TracingType
from indexer.store.base import (
    DeletionRecord,
    HeadRow,
    NameCursor,
    NameRow,
    Tombstone,
    TracingHead,
    TracingStore,
    WriteOp,
    WriteOutcome,
    WriteResult,
    last_end,
)
from indexer.store.sqlite_keys import candidates, key_problems
from indexer.store.sqlite_lifecycle import DISPUTE_COLUMNS, DISPUTES_FILED, dispute_from_row, lifecycle_problems
from indexer.store.sqlite_ops import Restore, SetDispute
from indexer.store.sqlite_readers import ReaderPool
from indexer.store.sqlite_schema import (
    bare_connection,
    connect,
    live_count,
    live_count_problems,
    recount,
    require_index_file,
    stored_keys_version,
)
from indexer.store.sqlite_signal import DisputeSignal, signal_path
from indexer.store.sqlite_time import from_micros, micros, utcnow
from indexer.store.sqlite_writer import Writer

__all__ = ["SqliteStore", "connect"]

_TYPES = {kind.value: kind for kind in TracingType}


def _pid_clause(pids: Identifiers) -> tuple[str, list[object]] | None:
    """Rows agreeing on one of `pids` as search_service.exact.pids_agreeing decides it (dates of birth
    agree as far as the less precise goes); None when there is no PID to agree on."""
    terms: list[str] = []
    params: list[object] = []
    if pids.ssn:
        terms.append("ssn = ?")
        params.append(pids.ssn)
    if pids.date_of_birth is not None:
        dob = pids.date_of_birth.iso()
        shorter = [dob[:4], dob[:7]][: dob.count("-")]  # the record's year, or year and month, of a fuller query
        terms.append(f"(dob = ? OR substr(dob, 1, ?) = ?{' OR dob = ?' * len(shorter)})")
        params += [dob, len(dob) + 1, dob + "-", *shorter]
    if pids.place_of_birth is not None:
        terms.append("pob = ?")
        params.append(pids.place_of_birth.code())
    return (f"({' OR '.join(terms)})", params) if terms else None


class SqliteStore(TracingStore):
    def __init__(self, path: Path, *, clock: Callable[[], dt.datetime] = utcnow, read_only: bool = False) -> None:
        """`read_only`: for tools that look (`dcii index check`, a retention dry run, a migration's
        source): the file is opened as it is, without the writer's set-up (journal mode, schema, key
        upkeep), which changed any file it was pointed at, a backup's copy (then refused by `dcii restore`
        as altered) or another database (given the index's tables); a file that is not an index store of
        this schema version is refused (sqlite_schema.require_index_file)."""
        self.path = Path(path)
        self._writer: Writer | None = None
        # Attachments counted beside the file (sqlite_signal); a read-only store asks the file itself.
        self._disputes: DisputeSignal | None = None
        if read_only:
            require_index_file(self.path)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = Writer(self.path, clock)
            try:
                self._disputes = DisputeSignal(signal_path(self.path), owner_of=self.path)
            except OSError as error:
                self._writer.stop()
                raise Unavailable(
                    f"the store's count of disputes ({signal_path(self.path).name}) cannot be opened:"
                    f" {failure_text(error)} (run dcii as the service's user; RUNBOOK, What each instance keeps)"
                ) from error
        self._readers = ReaderPool(lambda: connect(self.path, readonly=True))
        with self._readers.reading() as conn:  # the writer has brought the file up to date
            self._keys_version = stored_keys_version(conn)

    def snapshot(self) -> AbstractContextManager[None]:
        # One read transaction on one pooled connection: in WAL it sees the state of its first read.
        return self._readers.snapshot()

    def _writing(self) -> Writer:
        if self._writer is None:
            raise FailedPrecondition(f"the store {self.path} is open read-only")
        return self._writer

    def write(self, ops: Sequence[WriteOp], *, actor: str) -> list[WriteResult]:
        if not ops:
            return []
        return self._writing().submit(ops, actor)

    def dispute_mark(self) -> int | None:
        if self._disputes is not None:
            return self._disputes.read()
        with self._readers.reading() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (DISPUTES_FILED,)).fetchone()
        return 0 if row is None else int(row[0])

    def get(self, key: TracingKey) -> StoredTracing | None:
        with self._readers.reading() as conn:
            found = conn.execute(
                f"SELECT t.body, t.indexed_at, {DISPUTE_COLUMNS} FROM tracing t"  # noqa: S608
                " LEFT JOIN dispute d ON d.tracing_id = t.id"
                " WHERE t.agency = ? AND t.record_number = ? AND t.live = 1",
                (key.agency, key.record_number),
            ).fetchone()
        if found is None:
            return None
        body, at, *dispute = found
        return StoredTracing(tracing_from_json(body), from_micros(at), dispute_from_row(*dispute))

    def load(self, tracing_ids: Sequence[int]) -> dict[int, StoredTracing]:
        if not tracing_ids:
            return {}
        marks = ",".join("?" * len(tracing_ids))
        with self._readers.reading() as conn:
            rows = conn.execute(
                f"SELECT t.id, t.body, t.indexed_at, {DISPUTE_COLUMNS} FROM tracing t"  # noqa: S608
                f" LEFT JOIN dispute d ON d.tracing_id = t.id WHERE t.live = 1 AND t.id IN ({marks})",
                tuple(tracing_ids),
            ).fetchall()
        return {
            i: StoredTracing(tracing_from_json(body), from_micros(at), dispute_from_row(*dispute))
            for i, body, at, *dispute in rows
        }

    def load_head_rows(self, tracing_ids: Sequence[int]) -> list[HeadRow]:
        # The head text as stored: ranking compiles it without decoding (search_service.matching_columns).
        if not tracing_ids:
            return []
        marks = ",".join("?" * len(tracing_ids))
        with self._readers.reading() as conn:
            rows: list[HeadRow] = conn.execute(
                f"SELECT id, agency, record_number, type, head FROM tracing WHERE live = 1 AND id IN ({marks})",  # noqa: S608
                tuple(tracing_ids),
            ).fetchall()
        return rows

    def load_heads(self, tracing_ids: Sequence[int]) -> dict[int, TracingHead]:
        # The head column, not the body: ranking reads thousands of these per query (indexer.codec_head).
        if not tracing_ids:
            return {}
        marks = ",".join("?" * len(tracing_ids))
        with self._readers.reading() as conn:
            rows = conn.execute(
                f"SELECT id, agency, record_number, type, head FROM tracing WHERE live = 1 AND id IN ({marks})",  # noqa: S608
                tuple(tracing_ids),
            ).fetchall()
        return {
            i: TracingHead(TracingKey(agency, record), _TYPES[kind], head_from_text(head))
            for i, agency, record, kind, head in rows
        }

    def keys_version(self) -> int:
        return self._keys_version

    def wait_key_index_merged(self, timeout: float) -> bool:
        """Wait until the writer has merged the key index, which it does once idle after a bulk load or
        at open (sqlite_keys.KeyIndexUpkeep); False if `timeout` seconds passed first. For tools and
        benchmarks that should measure the index as it serves in the long run."""
        deadline = time.monotonic() + timeout
        while self._writing().merge_pending:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def set_dispute(self, key: TracingKey, dispute: Dispute) -> bool:
        attached = self._writing().submit([SetDispute(key, dispute)], "privacy")[0].outcome is WriteOutcome.APPLIED
        if attached and self._disputes is not None:
            self._disputes.bump()  # committed: counted before the filer reads whom to notify
        return attached

    def due_for_retention(self, before: dt.date, limit: int) -> list[TracingKey]:
        with self._readers.reading() as conn:
            rows = conn.execute(
                "SELECT t.agency, t.record_number FROM nac_history h JOIN tracing t ON t.id = h.tracing_id"
                " WHERE h.due_on < ? AND t.live = 1 ORDER BY h.due_on, h.tracing_id LIMIT ?",
                (before.isoformat(), limit),
            ).fetchall()
        return [TracingKey(agency, record) for agency, record in rows]

    def scan_names(
        self,
        surname: str,
        given: str | None,
        *,
        given_is_prefix: bool,
        after: NameCursor | None,
        limit: int,
        pids: Identifiers | None = None,
    ) -> list[NameRow]:
        clauses = ["surname = ?"]
        params: list[object] = [surname]
        if pids is not None and (agreeing := _pid_clause(pids)) is not None:
            clauses.append(agreeing[0])
            params += agreeing[1]
        if given is not None and not given_is_prefix:
            clauses.append("given = ?")
            params.append(given)
        elif given:
            # A prefix as a range, so the primary key index serves it (LIKE would not, case rules aside).
            clauses.append("given >= ? AND given < ?")
            params += [given, given + "\U0010ffff"]
        if after is not None and given is not None and not given_is_prefix:
            # One given name: the cursor as a range on tracing_id. The row value below would make SQLite seek
            # on it instead of on `given = ?`, and read every later given name of the surname for each chunk
            # (at 10 million, a page of SMITH JAMES read ~100,000 rows: 3.4 ms a chunk against 0.01 ms).
            if after.given > given:
                return []
            if after.given == given:
                clauses.append("tracing_id >= ? AND (tracing_id > ? OR alias_no > ?)")
                params += [after.tracing_id, after.tracing_id, after.alias_no]
        elif after is not None:
            clauses.append("(given, tracing_id, alias_no) > (?, ?, ?)")
            params += [after.given, after.tracing_id, after.alias_no]
        params.append(limit)
        sql = (
            "SELECT tracing_id, alias_no, surname, given, middle, suffix, ssn, dob, pob FROM name WHERE "  # noqa: S608
            + " AND ".join(clauses)
            + " ORDER BY given, tracing_id, alias_no LIMIT ?"
        )
        with self._readers.reading() as conn:
            return [NameRow(*row) for row in conn.execute(sql, params)]

    def candidates(self, keys: Sequence[str], *, limit: int) -> tuple[list[int], bool]:
        with self._readers.reading() as conn:
            return candidates(conn, keys, limit=limit)

    def scan_titles(self, title: str, *, prefix: bool, after: int | None, limit: int) -> list[int]:
        params: list[object]
        if prefix:
            where, params = "title >= ? AND title < ?", [title, title + "\U0010ffff"]
        else:
            where, params = "title = ?", [title]
        if after is not None:
            where += " AND tracing_id > ?"
            params.append(after)
        with self._readers.reading() as conn:
            rows = conn.execute(
                f"SELECT DISTINCT tracing_id FROM title WHERE {where} ORDER BY tracing_id LIMIT ?",  # noqa: S608
                (*params, limit),
            ).fetchall()
        return [row[0] for row in rows]

    def deletions(self, since: dt.datetime | None = None) -> list[DeletionRecord]:
        with self._readers.reading() as conn:
            rows = conn.execute(
                "SELECT agency, record_number, type, source_version, reason, actor, deleted_at FROM deletion_log"
                " WHERE deleted_at >= ? ORDER BY id",
                (0 if since is None else micros(since),),
            ).fetchall()
        return [
            DeletionRecord(TracingKey(a, r), TracingType(t), v, reason, actor, from_micros(at))
            for a, r, t, v, reason, actor, at in rows
        ]

    def last_deleted(self, key: TracingKey) -> dt.datetime | None:
        with self._readers.reading() as conn:
            rows = conn.execute(
                "SELECT type, source_version, reason, actor, deleted_at FROM deletion_log"
                " WHERE agency = ? AND record_number = ?",
                (key.agency, key.record_number),
            ).fetchall()
        return last_end(key, [DeletionRecord(key, TracingType(t), v, r, a, from_micros(at)) for t, v, r, a, at in rows])

    def count(self) -> int:
        # Kept by triggers (sqlite_schema.live_count): no walk of the table, so size_hint is count.
        with self._readers.reading() as conn:
            return live_count(conn)

    def check_integrity(self) -> list[str]:
        with self._readers.reading() as conn:
            problems = [row[0] for row in conn.execute("PRAGMA integrity_check") if row[0] != "ok"]
            orphans = conn.execute(
                "SELECT count(*) FROM name WHERE tracing_id NOT IN (SELECT id FROM tracing WHERE live = 1)"
            ).fetchone()[0]
            if orphans:
                problems.append(f"{orphans} name rows point at no live tracing")
            headless = conn.execute("SELECT count(*) FROM tracing WHERE live = 1 AND head IS NULL").fetchone()[0]
            if headless:
                problems.append(f"{headless} live tracings have no head")
            problems += lifecycle_problems(conn) + live_count_problems(conn)
        # FTS5's own check is a write statement (it changes nothing): run on a bare connection of its own
        # (no journal mode set: the file is left as it is), in a transaction rolled back.
        conn = bare_connection(self.path)
        try:
            conn.execute("BEGIN")
            return problems + key_problems(conn)
        finally:
            conn.rollback()
            conn.close()

    def repair(self) -> list[str]:
        self._writing()  # not on a store opened to look
        # Every write here is one transaction: a write cut short leaves nothing behind. The count of live
        # tracings is mended if it strayed (a bug, or the file edited by hand); anything else the check
        # finds in this file is damage, for a backup to mend (docs/RUNBOOK.md, "Backup and restore").
        conn = connect(self.path)
        try:
            return ["the live count recounted"] if recount(conn) else []
        finally:
            conn.close()

    def iter_all(self, batch: int = 10_000) -> Iterator[StoredTracing]:
        """Every live tracing with its dispute, in id order (for migration and export)."""
        last = 0
        while True:
            with self._readers.reading() as conn:
                rows = conn.execute(
                    f"SELECT t.id, t.body, t.indexed_at, {DISPUTE_COLUMNS} FROM tracing t"  # noqa: S608
                    " LEFT JOIN dispute d ON d.tracing_id = t.id"
                    " WHERE t.live = 1 AND t.id > ? ORDER BY t.id LIMIT ?",
                    (last, batch),
                ).fetchall()
            if not rows:
                return
            for tracing_id, body, at, *dispute in rows:
                yield StoredTracing(tracing_from_json(body), from_micros(at), dispute_from_row(*dispute))
                last = tracing_id

    def iter_tombstones(self, batch: int = 10_000) -> Iterator[Tombstone]:
        last = 0
        while True:
            with self._readers.reading() as conn:
                rows = conn.execute(
                    "SELECT id, agency, record_number, source_version, indexed_at FROM tracing"
                    " WHERE live = 0 AND id > ? ORDER BY id LIMIT ?",
                    (last, batch),
                ).fetchall()
            if not rows:
                return
            for tracing_id, agency, record, version, at in rows:
                yield Tombstone(TracingKey(agency, record), version, from_micros(at))
                last = tracing_id

    def restore(
        self,
        tracings: Sequence[StoredTracing],
        tombstones: Sequence[Tombstone] = (),
        deletions: Sequence[DeletionRecord] = (),
    ) -> None:
        self._writing().submit([Restore(tracings, tombstones, deletions)], "migration")
        if self._disputes is not None and any(stored.dispute is not None for stored in tracings):
            self._disputes.bump()  # statements attached as they were held

    def close(self) -> None:
        if self._writer is not None:
            self._writer.stop()
        if self._disputes is not None:
            self._disputes.close()
        self._readers.close()
