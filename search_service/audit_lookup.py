"""The audit trail's lookups (entries by tracing, by subject, by kind), kept in a file of their own and
filled behind the writes.

Until trail schema 2, `entry` carried three expression indexes, updated inside every disclosure's
write while the search that made it waited: the subject (a keyed hash, so a random place in its index)
and the tracing each cost a leaf page found and rewritten, per entry, in a B-tree that grows with the
whole history (kept five years at least). The write paid more the longer the trail, and each page not in
SQLite's cache was a read that let go of the GIL. Now the write appends the entry and moves the head,
nothing else, and this module keeps the lookups in `<trail>.lookup.db` (for `audit.db`:
`audit.lookup.db`): one row per entry (`entry_ref`), copied from the trail in batches by the audit
trail's background thread (`catch_up`, one INSERT ... SELECT over the trail attached read-only), never
by a search.

The lookup file is derived data: it holds no entry content, only where to find entries, and can be
deleted at any time (it is built again from the trail). Readers never depend on it being complete:
they take what it has indexed (up to its last seq, W), then read the trail itself for every entry past
W (`find`). Reading the lookup first and the trail second keeps that sound while both move on: every
entry the lookup names is in the later trail snapshot, and the scan past W covers the rest.

The copies are not flushed (synchronous=OFF): flushing them competed with the trail's own flushes,
which the searches wait for, and doubled the audit write's p99. A crash of the process loses nothing
(the machine keeps what was written); a crash of the machine may tear the file, so each writer records
a mark with the machine's boot id, durably, while it has the file open, and takes it away on closing,
after flushing. A mark from another boot means the machine went down under that writer: readers then
ignore the lookup, and the next writer makes it afresh, as it does a file SQLite finds damaged.

A lookup that does not belong to the trail (a trail restored from a backup, with new entries written
under seqs the lookup already covers) is recognized by the hash of its last entry: each row keeps the
first 16 hex digits of its entry's hash, and the chain makes the entry at seq W carry that hash only if
every entry up to W is the same. Readers then ignore the lookup (scan the trail), and `catch_up` starts
it afresh. A subject is kept by the first 16 hex digits of its keyed hash (the reader compares the whole
hash in the entry), which halves the file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from indexer.failures import failure_fields
from search_service.audit_lookup_files import HeldFiles, alive, boot_id
from search_service.audit_lookup_shape import shaped, unless_shaped

log = logging.getLogger(__name__)

# Entries copied per statement: each batch is one transaction of the lookup file, taken in one SQLite
# step (no GIL held meanwhile); a few hundred milliseconds at most.
BATCH = 20_000
# Batches the trail's background thread copies a round (search_service.audit_checkpoint): a long backlog
# (a trail just upgraded: 2.4 million entries took 44 s) is copied over many rounds, so that the same
# thread's WAL checkpoints and head-file flushes wait a second at most meanwhile.
ROUND_BATCHES = 2
# Hex digits kept of an entry's hash (to recognize the trail) and of a subject (to find it): the SQL
# below writes them as substr(..., 1, 16).
TAG_DIGITS = 16

SCHEMA = """
CREATE TABLE IF NOT EXISTS entry_ref (
    seq INTEGER PRIMARY KEY,
    tag TEXT NOT NULL,  -- the first 16 hex digits of the entry's hash
    kind TEXT NOT NULL,
    agency TEXT,
    record_number TEXT,
    subject TEXT,  -- the first 16 hex digits of a disclosure's subject; NULL without one
    person TEXT  -- the same of its person (by SSN alone); NULL without one
);
CREATE INDEX IF NOT EXISTS entry_ref_tracing ON entry_ref (agency, record_number) WHERE agency IS NOT NULL;
CREATE INDEX IF NOT EXISTS entry_ref_subject ON entry_ref (subject) WHERE subject IS NOT NULL;
CREATE INDEX IF NOT EXISTS entry_ref_kind ON entry_ref (kind);
-- 'writer:<pid>:<token>' -> the boot id of the machine while that writer has the file open
CREATE TABLE IF NOT EXISTS lookup_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

_PERSON_INDEX = "CREATE INDEX IF NOT EXISTS entry_ref_person ON entry_ref (person) WHERE person IS NOT NULL"

_COPY = """
INSERT INTO main.entry_ref (seq, tag, kind, agency, record_number, subject, person)
SELECT seq, substr(hash, 1, 16), json_extract(canonical, '$.kind'),
       json_extract(canonical, '$.agency'), json_extract(canonical, '$.record_number'),
       substr(nullif(json_extract(canonical, '$.subject'), ''), 1, 16),
       substr(nullif(json_extract(canonical, '$.person'), ''), 1, 16)
FROM trail.entry WHERE seq > (SELECT coalesce(max(seq), 0) FROM main.entry_ref) ORDER BY seq LIMIT ?
"""

# What a reader asks: the condition on the lookup's rows, and the same on the trail's own entries (the
# exact test: a subject is looked up by a prefix of its hash).
BY_TRACING = (
    "agency = ? AND record_number = ?",
    "json_extract(canonical, '$.agency') = ? AND json_extract(canonical, '$.record_number') = ?",
)
BY_SUBJECT = ("subject = substr(?, 1, 16)", "json_extract(canonical, '$.subject') = ?")
BY_PERSON = ("person = substr(?, 1, 16)", "json_extract(canonical, '$.person') = ?")
BY_KIND = ("kind = ?", "json_extract(canonical, '$.kind') = ?")
NOT_KIND = ("kind != ?", "json_extract(canonical, '$.kind') != ?")


def lookup_path(trail: Path) -> Path:
    return trail.with_name(f"{trail.stem}.lookup{trail.suffix or '.db'}")


def _open_reader(trail: Path) -> sqlite3.Connection | None:
    path = lookup_path(trail)
    if not path.exists():
        return None
    return sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, isolation_level=None)


def _connect_writer(trail: Path) -> sqlite3.Connection:
    # Made by the trail's background thread, closed by whoever closes the trail.
    conn = sqlite3.connect(lookup_path(trail), timeout=30.0, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        unless_shaped(conn)
        conn.executescript(SCHEMA)
        _add_person(conn)
        # Attached for reading only (nothing here writes `trail.`), but not with mode=ro: a read-only
        # connection that closes last cannot checkpoint the trail, and would leave its WAL behind.
        conn.execute("ATTACH DATABASE ? AS trail", (str(Path(trail).resolve()),))
    except BaseException:
        conn.close()
        raise
    return conn


def _add_person(conn: sqlite3.Connection) -> None:
    """A lookup made before disclosures named their person gets the column, emptied in the same
    transaction: its rows lack the person, so readers scan the trail until the copy is made again."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(entry_ref)")}
    if "person" not in columns:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute("DELETE FROM entry_ref")
            conn.execute("ALTER TABLE entry_ref ADD COLUMN person TEXT")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    conn.execute(_PERSON_INDEX)


def _open_writer(trail: Path, token: str, held: HeldFiles) -> sqlite3.Connection:
    """The lookup opened for copying, with this writer's mark recorded durably; made afresh when a
    writer's mark says the machine went down under it, or when the file is not a sound database."""
    try:
        conn = _connect_writer(trail)
        if not _trusted(conn):
            conn.close()
            raise _Untrusted
    except (_Untrusted, sqlite3.DatabaseError) as error:
        if type(error) not in (_Untrusted, sqlite3.DatabaseError):  # locked, unreadable...: not a torn file
            raise
        log.warning("the audit lookup file was torn by a crash of the machine, or is damaged: made afresh")
        for path in trail.parent.glob(lookup_path(trail).name + "*"):
            path.unlink()
        conn = _connect_writer(trail)
    try:
        # Everything in the file made durable (with the marks of writers that died before this boot
        # ended: the machine kept what they wrote), then this writer's mark, durably.
        conn.execute("PRAGMA synchronous=FULL")
        _flush(trail, held)
        for name, _ in conn.execute("SELECT name, value FROM lookup_meta WHERE name LIKE 'writer:%'").fetchall():
            if not alive(int(name.split(":")[1])):
                conn.execute("DELETE FROM lookup_meta WHERE name = ?", (name,))
        conn.execute("INSERT OR REPLACE INTO lookup_meta VALUES (?, ?)", (token, boot_id()))
        # Derived data: its copies are not flushed (they competed with the trail's own flushes, which
        # the searches wait for); the marks above are what protect it from a crash of the machine.
        conn.execute("PRAGMA synchronous=OFF")
    except BaseException:
        conn.close()
        raise
    return conn


def _flush(trail: Path, held: HeldFiles) -> None:
    """fsync the lookup file and its WAL: whatever any writer put there (checkpoints made unflushed
    included, whoever made them) is on disk after this, so a mark may then be taken away."""
    for path in (lookup_path(trail), lookup_path(trail).with_name(lookup_path(trail).name + "-wal")):
        with contextlib.suppress(FileNotFoundError):
            os.fsync(held.descriptor(path))


class _Untrusted(Exception):
    pass


def _trusted(conn: sqlite3.Connection) -> bool:
    """False when a writer's mark was left by another boot of the machine (or the boot is unknown): that
    writer's unflushed copies may be torn."""
    boot = boot_id()
    marks = conn.execute("SELECT value FROM lookup_meta WHERE name LIKE 'writer:%'").fetchall()
    return all(boot and value == boot for (value,) in marks)


def _last(lookup: sqlite3.Connection) -> tuple[int, str] | None:
    row = lookup.execute("SELECT seq, tag FROM entry_ref ORDER BY seq DESC LIMIT 1").fetchone()
    return None if row is None else (int(row[0]), str(row[1]))


def _stale(conn: sqlite3.Connection) -> bool:
    """Whether the lookup (`conn`, the trail attached) names a last entry the trail does not have."""
    last = _last(conn)
    if last is None:
        return False
    row = conn.execute("SELECT substr(hash, 1, 16) FROM trail.entry WHERE seq = ?", (last[0],)).fetchone()
    return row is None or row[0] != last[1]


class Lookup:
    """The writer of one trail's lookup file: used by one thread (the trail's background thread)."""

    def __init__(self, trail: Path, *, batch: int = BATCH) -> None:
        self.trail = Path(trail)
        self._batch = batch
        self._conn: sqlite3.Connection | None = None
        self._token = f"writer:{os.getpid()}:{secrets.token_hex(8)}"
        self._held = HeldFiles()

    def catch_up(self, *, batches: int | None = None) -> int:
        """Copy the entries the lookup lacks (at most `batches` batches; all of them when None), a batch
        a transaction; start afresh a lookup of another trail. Returns how many were copied.
        sqlite3.Error when the lookup cannot be written (the trail's writes are unaffected: readers scan
        the trail past what the lookup has)."""
        conn = self._conn
        if conn is None:
            try:
                conn = self._conn = _open_writer(self.trail, self._token, self._held)
            except BaseException:
                self._held.release()  # its connection is closed
                raise
        if _stale(conn):
            log.warning("the audit lookup file belongs to another trail (restored from a backup?): made afresh")
            conn.execute("DELETE FROM entry_ref")
        copied, rounds = 0, 0
        while batches is None or rounds < batches:
            count = conn.execute(_COPY, (self._batch,)).rowcount
            copied, rounds = copied + count, rounds + 1
            if count < self._batch:
                break
        return copied

    def close(self) -> None:
        """Make the copies durable and take this writer's mark away; a lookup left marked is checked
        by the next writer (and by readers) against the machine's boot."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(sqlite3.Error, OSError):
            conn.execute("PRAGMA synchronous=FULL")
            _flush(self.trail, self._held)
            conn.execute("DELETE FROM lookup_meta WHERE name = ?", (self._token,))
        with contextlib.suppress(sqlite3.Error):
            conn.close()
        self._held.release()


@dataclass
class Reading:
    """What readings of the trail (`find`) showed, for search_service.audit_spot_check to vouch for: the seqs
    found, those the lookup named that the trail no longer answered (deleted, or edited to answer another
    question), and the spans of seqs read whole (first, last): the trail past the lookup's end, which a
    reading scans, or a period."""

    shown: list[int] = field(default_factory=list)
    unanswered: list[int] = field(default_factory=list)
    spans: list[tuple[int, int]] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)  # seqs a reading looked for and did not find


def find(
    trail: sqlite3.Connection,
    trail_path: Path,
    by: tuple[str, str],
    params: tuple[str, ...],
    reading: Reading | None = None,
) -> list[tuple[int, str]]:
    """(seq, canonical) of the trail's entries matching `by` (one of BY_*) with `params`, oldest first:
    those the lookup names, then the trail's own past the lookup's end (every entry, without a usable
    lookup). `trail` is in autocommit mode; its reads share one snapshot, taken after the lookup's.
    `reading`: told what was found, and what the lookup named that the trail did not answer."""
    indexed, upto, tag = _indexed(trail_path, by[0], params)
    trail.execute("BEGIN")
    try:
        if upto and _tag(trail, upto) != tag:  # not this trail's lookup: read the trail alone
            indexed, upto = [], 0
        rows: list[tuple[int, str]] = []
        for start in range(0, len(indexed), 500):  # under SQLite's limit of variables
            chunk = indexed[start : start + 500]
            rows += trail.execute(
                f"SELECT seq, canonical FROM entry WHERE seq IN ({', '.join('?' * len(chunk))}) AND {by[1]}",  # noqa: S608
                (*chunk, *params),
            ).fetchall()
        rows.sort()
        if reading is not None:
            found = {seq for seq, _ in rows}
            reading.unanswered += [seq for seq in indexed if seq not in found]
        rows += trail.execute(
            f"SELECT seq, canonical FROM entry WHERE seq > ? AND {by[1]} ORDER BY seq",  # noqa: S608 (constants)
            (upto, *params),
        ).fetchall()
        if reading is not None:  # the scanned tail, in this snapshot
            reading.spans.append(
                (upto + 1, int(trail.execute("SELECT coalesce(max(seq), 0) FROM entry").fetchone()[0]))
            )
    finally:
        trail.execute("COMMIT")
    if reading is not None:
        reading.shown += [seq for seq, _ in rows]
    return rows


def _tag(trail: sqlite3.Connection, seq: int) -> str | None:
    row = trail.execute("SELECT substr(hash, 1, 16) FROM entry WHERE seq = ?", (seq,)).fetchone()
    return None if row is None else str(row[0])


def _indexed(trail: Path, where: str, params: tuple[str, ...]) -> tuple[list[int], int, str]:
    """The seqs the lookup names for `where`, its last seq and that entry's tag; nothing (last seq 0)
    when there is no lookup or it cannot be read (the reader then scans the trail)."""
    try:
        conn = _open_reader(trail)
    except sqlite3.Error:
        conn = None
    if conn is None:
        return [], 0, ""
    try:
        conn.execute("BEGIN")
        if not shaped(conn):  # altered, or an earlier version's until the server makes it again
            return [], 0, ""
        last = _last(conn)
        if last is None or not _trusted(conn):  # empty, or perhaps torn by a crash of the machine
            return [], 0, ""
        sql = f"SELECT seq FROM entry_ref WHERE {where} AND seq <= ?"  # noqa: S608 (constants)
        return [int(row[0]) for row in conn.execute(sql, (*params, last[0]))], last[0], last[1]
    except sqlite3.Error as error:
        log.warning("the audit lookup file cannot be read: the trail is read whole", extra=failure_fields(error))
        return [], 0, ""
    finally:
        conn.close()
