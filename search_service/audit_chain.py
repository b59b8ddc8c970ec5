"""The tamper-evident chain under the accounting of disclosures (search_service.accounting).

Every row of `entry` holds `seq` (1, 2, 3...), `canonical` (the entry as canonical JSON: sorted keys, no
spaces, ASCII only, its own seq inside), `prev_hash` (the hash of entry seq-1; 64 zeros for entry 1) and
`hash` = SHA-256(prev_hash || canonical), prev_hash taken as its 32 raw bytes and canonical as its ASCII
bytes; hashes are stored as lowercase hex.

The head (the last seq and its hash) is kept in two places, so that cutting the tail means changing
both: the `head` row in SQLite, updated in the same transaction as the entries, and the head file
`<db>.head` beside the database, a line of canonical JSON. A new trail's first head file is written
whole and renamed into place; after that the writer overwrites it in place after every commit and
fdatasyncs it a fraction of a second later (search_service.audit_head), so the only state a crash can
leave is a head file behind the database (one commit when the process is killed; the writes of that
fraction of a second at a power loss), still naming an entry of the chain ("lagging"): that is not a
break.

`verify_chain` walks the chain and names the first entry it cannot vouch for. An entry is vouched for
when it is where its seq says, its hash matches its content, and its successor (or, for the last
entry, both heads) links to that hash. So an altered entry is named even when the attacker recomputed
its own hash, a removed entry is named by its missing seq, a reordered entry by the seq it claims, and
a cut tail by the first seq past the end.

The writer checks the head file against the SQLite head before each commit; when they disagree for
any reason other than a lag (the tail was cut and the SQLite head rewritten, the head file went
missing or was garbled), it first appends an `AUDIT_ANCHOR_MISMATCH` entry that records what it found,
and `verify_chain` reports that entry as a break for ever after. Writing on does not wash the evidence
away.

Limit: the chain is unkeyed (SHA-256, by design, so that anyone can verify offline), so someone who can
write the database and the head file can rebuild the whole chain and both heads consistently. Copies of
the head kept off the machine (a log shipper, a printed `dcii audit verify` line) catch that.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GENESIS = "0" * 64
ANCHOR_EVENT = "AUDIT_ANCHOR_MISMATCH"
SCHEMA_VERSION = 2

# No entry is ever updated or deleted through SQL: the triggers refuse it (an attacker can drop them;
# the chain is what catches him). Accounting entries are kept at least five years; this module keeps
# them for ever and has no deletion API.
SCHEMA = """
CREATE TABLE IF NOT EXISTS entry (
    seq INTEGER PRIMARY KEY, canonical TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL
);
-- Schema 1 indexed entries by tracing, subject and kind here, in every write; search_service.audit_lookup
-- keeps those lookups in a file of its own now, filled behind the writes.
DROP INDEX IF EXISTS entry_tracing;
DROP INDEX IF EXISTS entry_subject;
DROP INDEX IF EXISTS entry_kind;
CREATE TABLE IF NOT EXISTS head (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TRIGGER IF NOT EXISTS entry_never_deleted BEFORE DELETE ON entry
    BEGIN SELECT RAISE(ABORT, 'audit entries are never deleted'); END;
CREATE TRIGGER IF NOT EXISTS entry_never_changed BEFORE UPDATE ON entry
    BEGIN SELECT RAISE(ABORT, 'audit entries are never changed'); END;
INSERT OR IGNORE INTO head VALUES (1, 0, lower(hex(zeroblob(32))));  -- GENESIS
PRAGMA user_version = 2;  -- SCHEMA_VERSION
"""

# Moves the head on from (seq, hash) in one step: no row changed means the head was not there.
MOVE_HEAD = "UPDATE head SET seq = ?, hash = ? WHERE id = 1 AND seq = ? AND hash = ?"
# Rows per INSERT statement in `insert_rows` (4 variables each: far under SQLite's variable limit).
INSERT_CHUNK = 200


@dataclass(frozen=True, slots=True)
class Head:
    seq: int
    hash: str


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """`entries`: how many entries were vouched for (all of them when ok). `first_bad`: the seq of the
    first entry that could not be, or None when the chain is intact or the break is in the head file
    alone (missing or unreadable: the tail cannot be vouched for, no entry is known bad)."""

    ok: bool
    entries: int
    first_bad: int | None
    reason: str
    # When intact: the last entry's seq and hash, the anchor to keep off the machine (`--expect-head`).
    head: Head | None = None


class HeadUnreadable(Exception):
    """The head file exists but is not a head (truncated, garbled)."""


def canonical(document: Mapping[str, Any]) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def link(prev_hash: str, text: str) -> str:
    """hash = SHA-256(prev_hash || canonical)."""
    return hashlib.sha256(bytes.fromhex(prev_hash) + text.encode("ascii")).hexdigest()


def chain_rows(head: Head, documents: list[dict[str, Any]]) -> tuple[list[tuple[int, str, str, str]], Head]:
    """The rows that append `documents` after `head` (each document gets its seq), and the new head."""
    rows = []
    seq, last = head.seq, head.hash
    for document in documents:
        seq += 1
        document["seq"] = seq
        text = canonical(document)
        digest = link(last, text)
        rows.append((seq, text, last, digest))
        last = digest
    return rows, Head(seq, last)


def insert_rows(conn: sqlite3.Connection, rows: Sequence[tuple[int, str, str, str]]) -> None:
    """Insert `rows` with one multi-row INSERT per INSERT_CHUNK rows. executemany would step SQLite once
    per row, and every step lets go of the GIL: under load, each hand-back waits for a busy thread's
    switch interval (5 ms), which made a group write cost more than everything else in a search."""
    for start in range(0, len(rows), INSERT_CHUNK):
        chunk = rows[start : start + INSERT_CHUNK]
        values = ", ".join(["(?, ?, ?, ?)"] * len(chunk))
        conn.execute(
            f"INSERT INTO entry (seq, canonical, prev_hash, hash) VALUES {values}",  # noqa: S608 (placeholders only)
            [value for row in chunk for value in row],
        )


# ---- the head file ----


def head_path(database: Path) -> Path:
    return database.with_name(database.name + ".head")


def _is_hash(value: object) -> bool:
    return isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value)


def read_head_file(path: Path) -> Head | None:
    """The head the file records; None when there is no file; HeadUnreadable when it is not a head."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    return parse_head(data, path)


def parse_head(data: bytes, path: Path) -> Head:
    """The head in a head file's bytes; HeadUnreadable when they are not a head."""
    try:
        document = json.loads(data)
    except ValueError as error:
        raise HeadUnreadable(f"the head file {path} is unreadable (truncated or altered)") from error
    if (
        not isinstance(document, dict)
        or set(document) != {"seq", "hash"}
        or type(document["seq"]) is not int
        or document["seq"] < 0
        or not _is_hash(document["hash"])
    ):
        raise HeadUnreadable(f"the head file {path} is unreadable (truncated or altered)")
    return Head(document["seq"], document["hash"])


def fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def prepare_head_file(path: Path, head: Head) -> Path:
    """Write the new head to a temporary file beside the head file and fsync it; `install_head_file`
    renames it into place once the entries are committed."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, (canonical({"seq": head.seq, "hash": head.hash}) + "\n").encode("ascii"))
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        temporary.unlink(missing_ok=True)
        raise
    os.close(fd)
    return temporary


def install_head_file(temporary: Path, path: Path) -> None:
    try:
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


def write_head_file(path: Path, head: Head) -> None:
    install_head_file(prepare_head_file(path, head), path)


def database_head(conn: sqlite3.Connection) -> Head | None:
    row = conn.execute("SELECT seq, hash FROM head WHERE id = 1").fetchone()
    return None if row is None else Head(int(row[0]), str(row[1]))


def anchor_mismatch(
    conn: sqlite3.Connection, head: Head, read_head: Callable[[], Head | None]
) -> dict[str, str] | None:
    """Why the head file (as `read_head` reads it: None when missing, HeadUnreadable when not a head)
    disagrees with the database head `head` (inside the writer's transaction), as the detail of an
    AUDIT_ANCHOR_MISMATCH entry; None when they agree or the file merely lags."""
    db_seq = str(head.seq)
    try:
        recorded = read_head()
    except HeadUnreadable:
        return {"state": "unreadable", "db_seq": db_seq}
    if recorded is None:
        return None if head.seq == 0 else {"state": "missing", "db_seq": db_seq}
    if recorded == head:
        return None
    if recorded.seq > head.seq:
        return {"state": "ahead", "file_seq": str(recorded.seq), "db_seq": db_seq}
    if recorded.seq < head.seq:
        row = conn.execute("SELECT hash FROM entry WHERE seq = ?", (recorded.seq,)).fetchone()
        expected = GENESIS if recorded.seq == 0 else (row[0] if row else None)
        if expected == recorded.hash:
            return None  # a crash between commit and rename: the next head file catches up
    return {"state": "diverged", "file_seq": str(recorded.seq), "db_seq": db_seq}


# ---- verification ----


def _bad(entries: int, first_bad: int | None, reason: str) -> VerifyResult:
    return VerifyResult(False, entries, first_bad, reason)


def parse_document(text: object) -> dict[str, Any] | None:
    """An entry's document, or None when it is not a JSON object."""
    if not isinstance(text, str):
        return None
    try:
        document = json.loads(text)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def _parse_entry(text: object) -> dict[str, Any] | None:
    """An entry's document, or None when it is not one in canonical form."""
    document = parse_document(text)
    return document if document is not None and canonical(document) == text else None


def _anchor_break(document: dict[str, Any], seq: int) -> VerifyResult | None:
    detail = document.get("detail")
    if not isinstance(detail, dict):
        return None
    state, file_seq, db_seq = detail.get("state"), detail.get("file_seq", ""), detail.get("db_seq", "")
    when = f"found when entry {seq} was written"
    if state == "ahead" and str(file_seq).isdigit() and str(db_seq).isdigit():
        cut = int(db_seq) + 1
        return _bad(seq - 1, cut, f"entries {cut} to {file_seq} were cut from the tail ({when})")
    if state == "diverged" and str(file_seq).isdigit():
        bad = int(file_seq)
        return _bad(seq - 1, bad, f"entry {bad} no longer matched the head file: altered or replaced ({when})")
    return _bad(seq - 1, seq, f"the head file was {state}: the entries before this one cannot be vouched for ({when})")


def verify_chain(conn: sqlite3.Connection, head_file: Path, anchor: Head | None = None) -> VerifyResult:
    """Walk the whole chain (one read snapshot) and check both heads, and that entry `anchor.seq` still has
    the hash `anchor` says (a head printed earlier and kept elsewhere: a trail rewritten and chained again,
    heads and all, passes every other check). `conn` is in autocommit mode."""
    # The head file first, then the snapshot: a head file installed before the snapshot began names an
    # entry inside it, so a concurrent writer can make the file lag, never lead.
    file_problem = ""
    try:
        file_head = read_head_file(head_file)
    except HeadUnreadable as error:
        file_head, file_problem = None, str(error)
    conn.execute("BEGIN")
    try:
        result = _verify_snapshot(conn, head_file, file_head, file_problem)
        return result if anchor is None or not result.ok else _check_anchor(conn, result, anchor)
    finally:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def _verify_snapshot(
    conn: sqlite3.Connection, head_file: Path, file_head: Head | None, file_problem: str
) -> VerifyResult:
    expected, last = 1, GENESIS
    hash_at_file_head = GENESIS if file_head is not None and file_head.seq == 0 else None
    rows = conn.execute("SELECT seq, canonical, prev_hash, hash FROM entry ORDER BY seq")
    for seq, text, prev_hash, digest in rows:
        good = expected - 1
        if seq != expected:
            return _bad(good, expected, f"entry {expected} is missing: the chain goes from entry {good} to {seq}")
        document = _parse_entry(text)
        if document is None:
            return _bad(good, seq, f"entry {seq} was altered: it is not a canonical entry")
        if document.get("seq") != seq:
            return _bad(good, seq, f"entry {seq} holds entry {document.get('seq')}: the entries were reordered")
        if prev_hash != last:
            if seq == 1:
                return _bad(0, 1, "entry 1 is not chained to the start of the trail")
            return _bad(
                good - 1, good, f"entry {seq} is not chained to entry {good}: entry {good} was altered or replaced"
            )
        if not _is_hash(digest) or link(prev_hash, text) != digest:
            return _bad(good, seq, f"entry {seq} was altered: its hash does not match its content")
        if document.get("kind") == ANCHOR_EVENT:
            found = _anchor_break(document, seq)
            if found is not None:
                return found
        if file_head is not None and seq == file_head.seq:
            hash_at_file_head = digest
        last, expected = digest, expected + 1
    count = expected - 1
    result = _check_heads(count, last, database_head(conn), head_file, file_head, file_problem, hash_at_file_head)
    return dataclasses.replace(result, head=Head(count, last)) if result.ok else result


def _check_anchor(conn: sqlite3.Connection, result: VerifyResult, anchor: Head) -> VerifyResult:
    if anchor.seq > result.entries:
        return _bad(result.entries, None, f"the trail ends at entry {result.entries}, before the anchored {anchor.seq}")
    row = (
        (GENESIS,)
        if anchor.seq == 0
        else conn.execute("SELECT hash FROM entry WHERE seq = ?", (anchor.seq,)).fetchone()
    )
    if row is None or row[0] != anchor.hash:
        return _bad(
            anchor.seq - 1,
            anchor.seq,
            f"entry {anchor.seq} is not the entry anchored: the trail was rewritten up to it and chained again",
        )
    return result


def _check_heads(
    count: int,
    last: str,
    db_head: Head | None,
    head_file: Path,
    file_head: Head | None,
    file_problem: str,
    hash_at_file_head: str | None,
) -> VerifyResult:
    if db_head is None:
        return _bad(count, None, "the head recorded in the database is missing")
    if db_head.seq > count:
        return _bad(
            count, count + 1, f"entries {count + 1} to {db_head.seq} are missing: the tail was cut (database head)"
        )
    if db_head.seq < count:
        return _bad(
            db_head.seq,
            db_head.seq + 1,
            f"entries {db_head.seq + 1} to {count} were added outside the audit log (database head)",
        )
    if db_head.hash != last:
        return _bad(count - 1, count, f"entry {count} does not match the database head: altered or replaced")
    if file_problem:
        return _bad(count, None, f"{file_problem}: the tail of the {count} entries cannot be vouched for")
    if file_head is None:
        if count == 0:
            return VerifyResult(True, 0, None, "intact")
        return _bad(count, None, f"the head file {head_file} is missing: the tail cannot be vouched for")
    if file_head.seq > count:
        return _bad(
            count, count + 1, f"entries {count + 1} to {file_head.seq} are missing: the tail was cut (head file)"
        )
    if hash_at_file_head != file_head.hash:
        return _bad(
            file_head.seq - 1, file_head.seq, f"entry {file_head.seq} does not match the head file: altered or replaced"
        )
    if file_head.seq < count:
        return VerifyResult(
            True, count, None, f"intact (the head file lags at entry {file_head.seq}: an interrupted write)"
        )
    return VerifyResult(True, count, None, "intact")
