"""The accounting of disclosures and the audit trail (5 U.S.C. 552a(c); OPNAV 5211/9 in seed 003).

Every tracing returned to a client is a disclosure, recorded as one entry: date, method (ONLINE or
BATCH), purpose, recipient activity and operator, and whether it was made for law enforcement (such
disclosures may be withheld from the subject). Refusals, deletions, disputes and access requests are
recorded in the same trail as events. The trail is a SQLite file (`<data>/audit.db`) under a hash
chain (search_service.audit_chain), with its head kept in SQLite and in `<data>/audit.db.head`.

Fail closed: `record_disclosures` and `record_event` either make the whole batch durable (one
transaction, synchronous=FULL) and write the head file before they return, or raise `Unavailable` and
leave no entry; a caller that gets `Unavailable` sends no data. The head file is flushed a fraction of
a second later, off the callers' path (search_service.audit_head says why that is safe).

No PII in clear: a subject is stored only as HMAC-SHA256(key, canonical subject string) in hex, the
canonical string being the exact keys of surname and given name and the SSN's digits
("v1|SURNAME|GIVEN|123456789"), and by the SSN alone ("v1|ssn|123456789", `person_ref`: what finds the
disclosures of a record filed under another name); the key lives in a 0600 file beside the database
(`load_or_create_key`).
The tracing's agency and record number are not PII and are stored as they are. Event details must
carry no PII either; to name a person in one, use `AuditLog.subject_ref`.

Retention: accounting entries outlive the tracings they describe and must be kept at least five years.
There is no deletion API at all, and triggers refuse UPDATE and DELETE on entries.

Writes are serialized by a thread lock and an flock on `<db>.lock` (the server and a CLI may both
write: search_service.audit_lock), then one `BEGIN IMMEDIATE` transaction with a multi-row INSERT of
the batch. Within a process, concurrent callers share writes (search_service.group_commit): under
load, the searches that arrive while one write is on disk go together in the next, one fsync for all.
The head file is kept open (search_service.audit_head); WAL checkpoints and the head file's flush are
made by a thread of their own (search_service.audit_checkpoint), off the searches' path; so are the
lookups by tracing, subject and kind, kept in a file of their own (search_service.audit_lookup).

The code: `search_service.accounting_keys` holds the key file and the keyed names (`KeyedNames`, the base of
`AuditLog`),
`search_service.accounting_entries` the entries, their documents and the offline (read-only) reads,
and this module the `AuditLog` that writes and reads the trail.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from indexer.exc import Unavailable
from indexer.failures import failure_text
from indexer.model import PersonName
from indexer.store.sqlite_checkpoint import NO_AUTOCHECKPOINT
from search_service import audit_chain
from search_service.accounting_entries import (
    CANNOT_READ,
    AuditEvent,
    Disclosure,
    DisclosureEntry,
    DisclosureIds,
    check_entry,
    check_event,
    disclosure_document,
    disclosures_for_tracing_file,
    events_file,
    iso_time,
    read_disclosures,
    read_events,
    verify_file,
)
from search_service.accounting_keys import KeyedNames, load_or_create_key, subject_ref, subject_refs
from search_service.audit_chain import Head, VerifyResult
from search_service.audit_checkpoint import Checkpointer
from search_service.audit_head import HeadFile
from search_service.audit_lock import CANNOT_WRITE, WriterLock
from search_service.audit_lookup import BY_PERSON, BY_SUBJECT, BY_TRACING, ROUND_BATCHES, Lookup
from search_service.audit_setup import prepare_trail
from search_service.group_commit import GroupCommit

__all__ = [
    "AuditEvent",
    "AuditLog",
    "Disclosure",
    "DisclosureEntry",
    "VerifyResult",
    "disclosures_for_tracing_file",
    "events_file",
    "load_or_create_key",
    "subject_ref",
    "verify_file",
]

log = logging.getLogger(__name__)


class AuditLog(KeyedNames):
    """The server's handle on the audit trail. Safe to share between threads (one connection each)."""

    def __init__(
        self,
        path: Path,
        *,
        key: bytes,
        clock: Callable[[], dt.datetime] | None = None,
        timeout: float = 10.0,
    ) -> None:
        super().__init__(key)
        self.path = Path(path)
        self.head_path = audit_chain.head_path(self.path)
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._timeout = timeout
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._lock: WriterLock | None = None  # made once the directory exists
        self._head_file = HeadFile(self.head_path)  # used under the writer lock only
        self._ids = DisclosureIds()
        self._lookup = Lookup(self.path)  # used by the checkpointer's thread only
        self._checkpointer = Checkpointer(
            self.path,
            self._writing,
            sync_head=self._sync_head,
            catch_up=functools.partial(self._lookup.catch_up, batches=ROUND_BATCHES),
            timeout=timeout,
        )
        self._last_head: Head | None = None  # the head this handle last committed (under the writer lock)
        self._closed = False
        self._group = GroupCommit[dict[str, Any]](self._write, timeout=timeout, what=CANNOT_WRITE)
        self._observers: list[Callable[[float, int], None]] = []
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._lock = WriterLock(self.path, timeout)
            self._initialize()
        except (sqlite3.Error, OSError) as error:
            self.close()
            raise Unavailable(f"{CANNOT_WRITE}: {failure_text(error)}") from error
        except BaseException:
            self.close()
            raise

    def _initialize(self) -> None:
        prepare_trail(self._conn(), self._key, self.path, self.head_path, self._writing)

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise Unavailable("the audit trail is closed")
            conn = sqlite3.connect(self.path, timeout=self._timeout, isolation_level=None, check_same_thread=False)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=FULL")
                conn.execute(NO_AUTOCHECKPOINT)  # the checkpointer's thread does it, off the writes' path
            except sqlite3.Error:
                conn.close()
                raise
            with self._connections_lock:
                self._connections.append(conn)
            self._local.conn = conn
        return conn

    @staticmethod
    def _db_head(conn: sqlite3.Connection) -> audit_chain.Head:
        head = audit_chain.database_head(conn)
        if head is None:
            raise Unavailable(f"{CANNOT_WRITE}: its head is missing (run dcii audit verify)")
        return head

    def _writing(self) -> AbstractContextManager[None]:
        """The writer lock (search_service.audit_lock): one writer at a time, across processes."""
        if self._lock is None:
            raise Unavailable(f"{CANNOT_WRITE}: no lock file")
        return self._lock.held()

    def _sync_head(self) -> bool:
        """Make the head file's last write durable (called by the checkpointer's thread, soon after each
        write): under the thread lock only, as the head file's descriptor is this process's own."""
        if self._lock is None:
            return False
        with self._lock.thread_only():
            return self._head_file.sync()

    def _append(self, documents: list[dict[str, Any]]) -> None:
        """Make `documents` durable, all or nothing, in a write shared with concurrent callers."""
        self._group.commit(documents)

    @property
    def writes(self) -> int:
        """Transactions written by this handle (fewer than the calls when calls were grouped)."""
        return self._group.writes

    @property
    def head_syncs(self) -> int:
        """Head file writes made durable by the checkpointer's thread (search_service.audit_head)."""
        return self._checkpointer.head_syncs

    @property
    def checkpoints(self) -> int:
        """WAL checkpoints made by this handle's checkpointer thread (search_service.audit_checkpoint)."""
        return self._checkpointer.checkpoints

    def observe_writes(self, observer: Callable[[float, int], None]) -> None:
        """Call `observer(seconds, entries)` after each write this handle makes (and the observers added
        before it): its time, from asking for the writer lock to the head file written (what the searches in
        it waited for), and the entries made durable (0 when the write failed)."""
        self._observers.append(observer)

    def _write(self, documents: list[dict[str, Any]]) -> None:
        """Chain and commit `documents` in one transaction, then record the new head in the head file; all
        or nothing (a head file that cannot be opened for writing fails the write before the commit).

        The callers of a write wait for it, so it makes few system and SQLite calls: each lets go of the
        GIL, and under load each hand-back waits up to a busy thread's switch interval (5 ms). Hence the
        head file kept open (audit_head.HeadFile), one multi-row INSERT (audit_chain.insert_rows), and
        the head row checked and moved on in one UPDATE (`_chain`)."""
        started, entries = time.perf_counter(), 0
        try:
            with self._writing():
                conn = self._conn()
                head_file = self._head_file
                head_file.open()
                conn.execute("BEGIN IMMEDIATE")
                try:
                    head = self._chain(conn, head_file, documents)
                    conn.execute("COMMIT")
                except BaseException:
                    self._last_head = None
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                    raise
                self._last_head = head
                entries = len(documents)
                # Committed. Should this fail, the head file lags one commit behind, which verify
                # accepts; the caller still gets Unavailable and sends nothing (over-accounting, safe).
                head_file.write(head)
            self._checkpointer.written(len(documents))
        except (sqlite3.Error, OSError) as error:
            raise Unavailable(f"{CANNOT_WRITE}: {failure_text(error)}") from error
        finally:
            for observer in self._observers:
                observer(time.perf_counter() - started, entries)

    def _chain(self, conn: sqlite3.Connection, head_file: HeadFile, documents: list[dict[str, Any]]) -> Head:
        """Inside the write transaction: append `documents` (after an anchor mismatch entry, should the
        head file disagree with the database head) and move the head row on; returns the new head.

        Most often the head file and the head row are where this handle left them (no other process
        wrote since): then the entries are chained after that head, and one UPDATE both checks the row
        and moves it on. Otherwise (the first write, another writer, or a head file or row that is not
        what this handle wrote) the head row is read and the head file checked against it."""
        assumed = self._last_head
        if assumed is not None and self._recorded(head_file) == assumed:
            rows, head = audit_chain.chain_rows(assumed, documents)
            moved = conn.execute(audit_chain.MOVE_HEAD, (head.seq, head.hash, assumed.seq, assumed.hash))
            if moved.rowcount == 1:
                audit_chain.insert_rows(conn, rows)
                return head
        rows, head = self._rows(conn, self._db_head(conn), head_file, documents)
        conn.execute("UPDATE head SET seq = ?, hash = ? WHERE id = 1", (head.seq, head.hash))
        audit_chain.insert_rows(conn, rows)
        return head

    @staticmethod
    def _recorded(head_file: HeadFile) -> Head | None:
        try:
            return head_file.read()
        except audit_chain.HeadUnreadable:
            return None

    def _rows(
        self, conn: sqlite3.Connection, head: Head, head_file: HeadFile, documents: list[dict[str, Any]]
    ) -> tuple[list[tuple[int, str, str, str]], Head]:
        """The rows that append `documents` after the database head `head`, and the new head."""
        mismatch = audit_chain.anchor_mismatch(conn, head, head_file.read)
        if mismatch is not None:
            log.warning("audit head file disagrees with the database", extra=dict(mismatch))
            documents = [self._event(audit_chain.ANCHOR_EVENT, "audit", mismatch), *documents]
        return audit_chain.chain_rows(head, documents)

    def _event(self, kind: str, actor: str, detail: Mapping[str, str]) -> dict[str, Any]:
        return {"v": 1, "kind": kind, "at": iso_time(self._clock()), "actor": actor, "detail": dict(detail)}

    # ---- recording ----

    def record_disclosures(self, disclosures: Sequence[DisclosureEntry]) -> str:
        """Record one entry per disclosed tracing, all or nothing, durable before returning; returns the
        disclosure id (uuid4 hex) the batch shares. Raises Unavailable when the trail cannot be written:
        the caller must then send no data. An empty batch records nothing."""
        return self.record_disclosure_groups([disclosures])[0]

    def record_disclosure_groups(self, groups: Sequence[Sequence[DisclosureEntry]]) -> list[str]:
        """Record several answers' disclosures in one transaction (one fsync, one turn of the writer
        lock), each group under a disclosure id of its own, returned in order. The batch worker accounts
        a whole chunk this way: per query, the writer lock and its fsyncs would queue online searches
        behind the batch. All or nothing, like record_disclosures; empty groups record nothing."""
        for group in groups:
            for entry in group:
                check_entry(entry)
        ids = self._ids.take(len(groups))
        at = iso_time(self._clock())
        documents = [
            disclosure_document(disclosure_id, at, entry, *self._refs(entry))
            for disclosure_id, group in zip(ids, groups, strict=True)
            for entry in group
        ]
        if documents:
            self._append(documents)
        return ids

    def _refs(self, entry: DisclosureEntry) -> tuple[str, str, str]:
        """The keyed hashes naming whom a disclosure was about: name and SSN, SSN alone, name alone (the
        last only beside an SSN; without one it is the first)."""
        name, ssn = entry.subject_name, entry.subject_ssn
        if name is None:
            return "", self.person_ref(ssn), ""
        subject, named = subject_refs(self._key, name, ssn)
        return subject, self.person_ref(ssn), (named if ssn else "")

    def record_event(self, kind: str, actor: str, detail: Mapping[str, str]) -> None:
        """Record a refusal, deletion, dispute, access request... `kind` is UPPER_SNAKE (not DISCLOSURE
        nor AUDIT_*, which the trail keeps for itself); `detail` must hold no PII (see subject_ref)."""
        check_event(kind, actor, detail)
        self._append([self._event(kind, actor, detail)])

    # ---- reading ----

    def disclosures_for_tracing(self, agency: str, record_number: str) -> list[Disclosure]:
        """Every disclosure of one tracing, oldest first: the earlier recipients a dispute notice goes to."""
        try:
            return read_disclosures(self._conn(), self.path, BY_TRACING, (agency, record_number))
        except sqlite3.Error as error:
            raise Unavailable(CANNOT_READ) from error

    def disclosures_for_subject(self, name: PersonName, ssn: str) -> list[Disclosure]:
        """Every disclosure about one person (full name and SSN, as in an access request), oldest first,
        matched by the keyed hash of (surname, given name, SSN)."""
        if not any(c.isdigit() for c in ssn):
            raise ValueError("an access request needs the SSN")
        try:
            return read_disclosures(self._conn(), self.path, BY_SUBJECT, (subject_ref(self._key, name, ssn),))
        except sqlite3.Error as error:
            raise Unavailable(CANNOT_READ) from error

    def disclosures_for_person(self, ssn: str) -> list[Disclosure]:
        """Every disclosure of a record that carried this SSN, under whatever name, oldest first (entries
        written before the trail named persons by SSN are found by name and SSN only)."""
        ref = self.person_ref(ssn)
        if not ref:
            raise ValueError("a person is named by an SSN")
        try:
            return read_disclosures(self._conn(), self.path, BY_PERSON, (ref,))
        except sqlite3.Error as error:
            raise Unavailable(CANNOT_READ) from error

    def events(self, kind: str | None = None) -> list[AuditEvent]:
        """The recorded events (not disclosures), oldest first; only those of `kind` when given."""
        try:
            return read_events(self._conn(), self.path, kind)
        except sqlite3.Error as error:
            raise Unavailable(CANNOT_READ) from error

    def verify(self) -> VerifyResult:
        """Walk the whole chain and compare both heads (see audit_chain.verify_chain)."""
        try:
            return audit_chain.verify_chain(self._conn(), self.head_path)
        except sqlite3.Error as error:
            return VerifyResult(False, 0, None, f"{CANNOT_READ}: {error}")

    def close(self) -> None:
        self._closed = True
        self._checkpointer.close()
        self._lookup.close()
        with self._connections_lock:
            connections, self._connections = self._connections, []
        for conn in connections:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        # The descriptors are closed under the writer lock: a write in flight must not see its descriptor
        # number closed, and perhaps reused for another file, under it. If the lock cannot be had (a write
        # stuck past its timeouts), they are left open rather than closed under that write.
        if self._lock is None:  # made before the directory was: nothing was opened
            return
        with contextlib.suppress(Unavailable), self._lock.thread_only():
            with contextlib.suppress(OSError):  # the entries are durable; this only flushes their head
                self._head_file.sync()
            self._head_file.close()
            self._lock.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
