"""The rules of each write operation on the embedded store, applied by its single writer
(indexer.store.sqlite_writer) inside one transaction per group: versions and tombstones, completions,
favorable-NAC supersession (indexer.store.sqlite_lifecycle), statements of dispute, and restores."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from indexer.codec import tracing_from_json
from indexer.model import TracingKey, TracingType
from indexer.store.base import (
    IMPERSONAL_TITLE_OVER_ANOTHER_TYPE,
    Delete,
    Replace,
    Upsert,
    WriteOutcome,
    WriteResult,
    refuses_impersonal_title,
    superseded_reason,
)
from indexer.store.prepared import PreparedTracing, name_rows, title_of
from indexer.store.sqlite_keys import KeyChanges
from indexer.store.sqlite_lifecycle import (
    NacFacts,
    drop_dispute,
    end_dispute_of_another_subject,
    index_nac_history,
    nac_facts,
    superseded_ids,
    unindex_nac_history,
)
from indexer.store.sqlite_lifecycle import set_dispute as _store_dispute
from indexer.store.sqlite_ops import Op, Restore, SetDispute
from indexer.store.sqlite_time import micros


@dataclass(frozen=True, slots=True)
class _Row:
    """A tracing row as the rules read it."""

    id: int
    source_version: int
    type: str
    live: bool
    body: str | None
    indexed_at: int = 0
    disputed: bool = False  # a statement of dispute is attached (read by `_row` only)


class WriteRules:
    """Each write operation's rules (versions, tombstones, completions, supersession, disputes), applied on
    the writer's connection inside its group's transaction; `keys` gathers the group's key changes, which
    the writer applies just before the commit."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.keys = KeyChanges()

    # A row as the writer reads it, with whether a statement of dispute is attached (one statement).
    _ROW = (
        "SELECT t.id, t.source_version, t.type, t.live, t.body, t.indexed_at, d.tracing_id IS NOT NULL,"
        " t.agency, t.record_number FROM tracing t LEFT JOIN dispute d ON d.tracing_id = t.id"
    )

    def _row(self, key: TracingKey) -> _Row | None:
        found = self._conn.execute(
            f"{self._ROW} WHERE t.agency = ? AND t.record_number = ?", (key.agency, key.record_number)
        ).fetchone()
        return None if found is None else self._row_of(found)[1]

    def _row_by_id(self, tracing_id: int) -> tuple[TracingKey, _Row] | None:
        found = self._conn.execute(f"{self._ROW} WHERE t.id = ?", (tracing_id,)).fetchone()
        return None if found is None else self._row_of(found)

    @staticmethod
    def _row_of(found: tuple[Any, ...]) -> tuple[TracingKey, _Row]:
        row = _Row(found[0], found[1], found[2], bool(found[3]), found[4], found[5], found[6] == 1)
        return TracingKey(found[7], found[8]), row

    def apply(self, op: Op, actor: str, now: int) -> WriteResult:
        match op:
            case Upsert(PreparedTracing() as ready):
                row = self._row(ready.key)
                newer = row is not None and row.source_version < ready.source_version
                if newer and row is not None and refuses_impersonal_title(ready.type, row.type):
                    return WriteResult(WriteOutcome.REFUSED, row.source_version, IMPERSONAL_TITLE_OVER_ANOTHER_TYPE)
                return self._upsert(ready, row, actor, now)
            case Delete(key, version, reason):
                return self._delete(key, version, reason, actor, now)
            case Replace(old, expected_type, PreparedTracing() as new):
                return self._replace(old, expected_type, new, actor, now)
            case SetDispute(key, dispute):
                row = self._row(key)
                if row is None or not row.live:
                    return WriteResult(WriteOutcome.NOT_FOUND, 0 if row is None else row.source_version)
                _store_dispute(self._conn, row.id, dispute)
                return WriteResult(WriteOutcome.APPLIED, row.source_version)
            case Restore():
                self._restore(op)
                return WriteResult(WriteOutcome.APPLIED, 0)
        raise AssertionError(op)

    def _restore(self, op: Restore) -> None:
        """Each record as the source held it, with no lifecycle rule; a key held at the same or a newer
        version stays as it is, and a deletion-log entry already present is not added twice."""
        for stored in op.tracings:
            tracing = stored.tracing
            row = self._row(tracing.key)
            if row is not None and row.source_version >= tracing.source_version:
                continue
            self._upsert(PreparedTracing.of(tracing), row, "migration", micros(stored.indexed_at), supersede=False)
            if stored.dispute is not None:
                found = self._row(tracing.key)
                assert found is not None
                _store_dispute(self._conn, found.id, stored.dispute)
        for tomb in op.tombstones:
            # At the source's time, not 0: a completion onto the key compares it (`_replace`), and went
            # another way after a migration than before (a review of the backends, finding 8).
            row, at = self._row(tomb.key), micros(tomb.indexed_at)
            if row is None:
                self._conn.execute(
                    "INSERT INTO tracing (agency, record_number, source_version, type, live, body, indexed_at)"
                    " VALUES (?, ?, ?, '', 0, NULL, ?)",
                    (tomb.key.agency, tomb.key.record_number, tomb.source_version, at),
                )
            elif row.source_version < tomb.source_version:
                self._tombstone(row, tomb.key, tomb.source_version, "", "", at, log=False)
        for record in op.deletions:
            key, at = record.key, micros(record.deleted_at)
            values = (key.agency, key.record_number, record.type.value, record.source_version, record.reason)
            held = self._conn.execute(
                "SELECT 1 FROM deletion_log WHERE agency = ? AND record_number = ? AND type = ?"
                " AND source_version = ? AND reason = ? AND actor = ? AND deleted_at = ?",
                (*values, record.actor, at),
            ).fetchone()
            if held is None:
                row = _Row(0, record.source_version, record.type.value, False, None)
                self._log_deletion(row, key, record.source_version, record.reason, record.actor, at)

    def _upsert(
        self, ready: PreparedTracing, row: _Row | None, actor: str, now: int, *, supersede: bool = True
    ) -> WriteResult:
        if row is not None and row.source_version >= ready.source_version:
            if supersede:
                self._resupersede(ready, row, actor, now)
            return WriteResult(WriteOutcome.UNCHANGED, row.source_version)
        kind, body, head = ready.type, ready.body, ready.head
        if supersede and row is not None and row.live and row.type != kind.value:
            # A live tracing of another type ends here (an open case sent again as its file, a NAC history
            # as a file): its deletion is logged as a completion's is, though the key and its life go on.
            self._log_deletion(row, ready.key, row.source_version, superseded_reason(kind, ready.key), actor, now)
        if row is None:
            cursor = self._conn.execute(
                "INSERT INTO tracing (agency, record_number, source_version, type, live, body, indexed_at, head)"
                " VALUES (?, ?, ?, ?, 1, ?, ?, ?)",
                (ready.key.agency, ready.key.record_number, ready.source_version, kind.value, body, now, head),
            )
            tracing_id = cursor.lastrowid
            assert tracing_id is not None
        else:
            tracing_id = row.id
            if row.live and row.disputed and row.body is not None:
                end_dispute_of_another_subject(self._conn, tracing_id, row.body, ready.tracing())
            self._unindex(row)
            self._conn.execute(
                "UPDATE tracing SET source_version = ?, type = ?, live = 1, body = ?, indexed_at = ?, head = ?"
                " WHERE id = ?",
                (ready.source_version, kind.value, body, now, head, tracing_id),
            )
        self._conn.executemany(
            "INSERT OR IGNORE INTO name VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ((s, g, tracing_id, a, m, x, ssn, dob, pob) for s, g, a, m, x, ssn, dob, pob in ready.names),
        )
        self.keys.add(tracing_id, ready.keys)
        title = ready.title
        if title is not None:
            self._conn.execute("INSERT OR IGNORE INTO title VALUES (?, ?)", (title, tracing_id))
        if ready.nac is not None:
            index_nac_history(self._conn, tracing_id, ready.nac)
            if supersede:
                self._supersede(ready.key, ready.nac, ready.source_version, tracing_id, actor, now)
        return WriteResult(WriteOutcome.APPLIED, ready.source_version)

    def _resupersede(self, ready: PreparedTracing, row: _Row, actor: str, now: int) -> None:
        """A write at the version a live NAC history is held at (a replay) ends the earlier histories it
        supersedes that were indexed no later than it, as the OpenSearch backend's replay must
        (opensearch_follow.resupersede: it cannot tell what a crash left undone); one after it stays."""
        if not row.live or row.source_version != ready.source_version or row.type != TracingType.NAC_HISTORY.value:
            return
        facts = ready.nac if row.body == ready.body else nac_facts(tracing_from_json(row.body or ""))
        if facts is not None:
            self._supersede(ready.key, facts, row.source_version, row.id, actor, now, indexed_by=row.indexed_at)

    def _supersede(
        self, key: TracingKey, facts: NacFacts, version: int, tracing_id: int, actor: str, now: int, indexed_by: int = 0
    ) -> None:
        """The NAC history `key` (with these facts, at `version`) deletes the subject's earlier ones if it is
        favorable, in this same transaction (with `indexed_by`, only those indexed at or before that moment:
        `_resupersede`)."""
        reason = f"SUPERSEDED by favorable NAC history {key}"
        for old_id in superseded_ids(self._conn, tracing_id, facts):
            found = self._row_by_id(old_id)
            if indexed_by and found is not None and found[1].indexed_at > indexed_by:
                continue
            if found is not None and found[1].live and found[1].type == TracingType.NAC_HISTORY.value:
                old_key, old_row = found
                ended = max(old_row.source_version, version)  # see _replace
                self._tombstone(old_row, old_key, ended, reason, actor, now)

    def _unindex(self, row: _Row) -> None:
        """Remove a live tracing's name and title rows (found from its stored body, so no extra index)."""
        if not row.live or row.body is None:
            return
        old = tracing_from_json(row.body)
        self._conn.executemany(
            "DELETE FROM name WHERE surname = ? AND given = ? AND tracing_id = ? AND alias_no = ?",
            ((s, g, row.id, a) for s, g, a, *_ in name_rows(old)),
        )
        self.keys.remove(row.id)
        title = title_of(old)
        if title is not None:
            self._conn.execute("DELETE FROM title WHERE title = ? AND tracing_id = ?", (title, row.id))
        if old.type is TracingType.NAC_HISTORY:
            unindex_nac_history(self._conn, row.id)

    def _tombstone(
        self, row: _Row, key: TracingKey, version: int, reason: str, actor: str, now: int, *, log: bool = True
    ) -> None:
        self._unindex(row)
        drop_dispute(self._conn, row.id)
        self._conn.execute(
            "UPDATE tracing SET live = 0, body = NULL, head = NULL, source_version = ?, indexed_at = ? WHERE id = ?",
            (version, now, row.id),
        )
        if log:
            self._log_deletion(row, key, version, reason, actor, now)

    def _log_deletion(self, row: _Row, key: TracingKey, version: int, reason: str, actor: str, now: int) -> None:
        self._conn.execute(
            "INSERT INTO deletion_log (agency, record_number, type, source_version, reason, actor, deleted_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (key.agency, key.record_number, row.type, version, reason, actor, now),
        )

    def _delete(self, key: TracingKey, version: int, reason: str, actor: str, now: int) -> WriteResult:
        row = self._row(key)
        if row is None:
            if version > 0:
                # A delete that overtook its upsert: remember it so the upsert cannot land later.
                self._conn.execute(
                    "INSERT INTO tracing (agency, record_number, source_version, type, live, body, indexed_at)"
                    " VALUES (?, ?, ?, '', 0, NULL, ?)",
                    (key.agency, key.record_number, version, now),
                )
            return WriteResult(WriteOutcome.NOT_FOUND, version)
        effective = version or row.source_version  # 0: the index's own deletions (retention)
        if effective < row.source_version or (not row.live and effective == row.source_version):
            return WriteResult(WriteOutcome.UNCHANGED, row.source_version)
        if not row.live:
            self._conn.execute("UPDATE tracing SET source_version = ? WHERE id = ?", (effective, row.id))
            return WriteResult(WriteOutcome.NOT_FOUND, effective)
        self._tombstone(row, key, effective, reason, actor, now)
        return WriteResult(WriteOutcome.APPLIED, effective)

    def _replace(
        self, old: TracingKey, expected_type: TracingType, new: PreparedTracing, actor: str, now: int
    ) -> WriteResult:
        new_row = self._row(new.key)
        reason = f"SUPERSEDED by {new.type.value} {new.key}"
        if new_row is not None and new_row.source_version >= new.source_version:
            # A replayed completion, or one whose new record came first on its own (a reload): either way the
            # investigation is complete, and an old record still live goes now. Not one indexed after the new
            # record: that is the old key used again, not the record this completion replaced.
            old_row = None if old == new.key else self._row(old)
            outcome = WriteOutcome.UNCHANGED
            live = old_row is not None and old_row.live and old_row.type == expected_type.value
            if live and old_row is not None and old_row.indexed_at <= new_row.indexed_at:
                self._tombstone(old_row, old, max(old_row.source_version, new.source_version), reason, actor, now)
                outcome = WriteOutcome.APPLIED
            self._resupersede(new, new_row, actor, now)
            return WriteResult(outcome, new_row.source_version)
        old_row = new_row if old == new.key else self._row(old)
        if old_row is None or not old_row.live or old_row.type != expected_type.value:
            return WriteResult(WriteOutcome.NOT_FOUND, 0)
        if old == new.key:
            # The same record number now holds the completed type: the old one is gone all the same (logged
            # by the upsert below, as any change of type), and so is a dispute of it (a dispute is of a
            # record, and that record was deleted).
            drop_dispute(self._conn, old_row.id)
        else:
            # Ended at the completion's version, not its own: the repository completed it then, so an update
            # of it sent before (a file arriving late, a replay) is older and refused, where at its own version
            # it brought the open case or NAC pending back beside the record that replaced it.
            self._tombstone(old_row, old, max(old_row.source_version, new.source_version), reason, actor, now)
        return self._upsert(new, new_row, actor, now)
