"""Vouching for the entries a reading of the audit trail showed, without walking the whole chain.

`dcii audit disclosures`, `events` and `volume` printed whatever the trail held: an accounting edited in the
database (a recipient changed, an entry deleted) was shown as the record, and only `dcii audit verify`, a
walk of every entry (minutes on a five-year trail), would have said otherwise. A reading now checks what it
read, at a cost in proportion to it:

- each entry shown is canonical, holds its own seq, hashes to its stored hash, and its successor (or, for the
  last entry, the database head) is chained to that hash: an entry altered is caught even when its own hash
  was recomputed, unless every entry after it and both heads were rewritten too, which the heads' copies kept
  off the machine catch (audit_chain, "Limit");
- every entry the lookup file named for the question is still there and still answers it (one deleted, or
  edited to name another tracing, is missing from the answer);
- the two heads agree with the last entry (the tail was not cut), as `verify_chain` checks them;
- no AUDIT_ANCHOR_MISMATCH entry was ever written (the writer found the heads tampered with before);
- what was read whole — the trail past the lookup's end, which every reading scans, and a period
  (`volume`) — has no seq missing and every entry of it checks out as above.

Its cost is that of the reading: the entries shown, and the spans read whole (hashing an entry costs about
what reading it did). What it cannot see: an entry the lookup file does not name (a row deleted from it, or
moved to another question: the lookup decides what a reading reads, and is checked against the trail by
`dcii audit verify`, search_service.audit_lookup_check), and an entry deleted with the chain re-linked over
it (its successors and both heads rewritten): `verify`, with a head kept off the machine, sees both. So a
reading that checks out says so in those words, and one that does not names the entry and the reason, and
sends the reader to `dcii audit verify`.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from indexer.failures import failure_text
from search_service import audit_chain, audit_lookup
from search_service.audit_lookup import Reading

# Entries fetched per statement (two variables each: far under SQLite's limit).
_CHUNK = 400


def spot_check(conn: sqlite3.Connection, trail: Path, reading: Reading) -> str | None:
    """Why the entries `reading` touched cannot be vouched for, or None when they check out. `conn` is the
    trail's, in autocommit mode; the head file is read before the snapshot (a writer can make it lag, never
    lead)."""
    if reading.unanswered:
        seq = min(reading.unanswered)
        return f"entry {seq}, which the trail's lookup names for this question, is missing or was altered"
    if reading.missing:
        return f"entry {min(reading.missing)} is missing or was altered (it has no time)"
    anchors = audit_lookup.find(conn, trail, audit_lookup.BY_KIND, (audit_chain.ANCHOR_EVENT,))
    if anchors:
        return f"entry {anchors[0][0]} records that the heads were found tampered with"
    head_file = audit_chain.head_path(trail)
    try:
        file_head = audit_chain.read_head_file(head_file)
    except audit_chain.HeadUnreadable as error:
        return str(error)
    conn.execute("BEGIN")
    try:
        return (
            _heads(conn, head_file, file_head)
            or next(filter(None, (_span(conn, span) for span in reading.spans)), None)
            or _entries(conn, sorted(set(reading.shown)))
        )
    finally:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def _heads(conn: sqlite3.Connection, head_file: Path, file_head: audit_chain.Head | None) -> str | None:
    db_head = audit_chain.database_head(conn)
    last = conn.execute("SELECT seq, hash FROM entry ORDER BY seq DESC LIMIT 1").fetchone()
    if db_head is None:
        return "the head recorded in the database is missing"
    if (last is None and db_head.seq != 0) or (last is not None and (last[0], last[1]) != (db_head.seq, db_head.hash)):
        return f"the last entry does not match the database head (entry {db_head.seq}): the tail was cut or altered"
    if file_head is None:
        return None if db_head.seq == 0 else f"the head file {head_file} is missing: the tail cannot be vouched for"
    if file_head.seq > db_head.seq:
        return f"entries {db_head.seq + 1} to {file_head.seq} are missing: the tail was cut (head file)"
    at = conn.execute("SELECT hash FROM entry WHERE seq = ?", (file_head.seq,)).fetchone()
    if file_head.seq > 0 and (at is None or at[0] != file_head.hash):
        return f"entry {file_head.seq} does not match the head file: altered or replaced"
    return None


def _span(conn: sqlite3.Connection, span: tuple[int, int]) -> str | None:
    """Every entry of the span, in one pass: none missing, each hashing to its stored hash and chained to
    its predecessor, and the last one's successor (or the head) chained to it. The canonical form is not
    parsed here (a quarter of the cost): an entry whose content changed no longer hashes to its hash, or
    its successor's link says so."""
    first, last = span
    if last < first:
        return None
    # From the entry before the span: the span's first entry must be chained to it, or entries cut from
    # just before a period would move its start unseen.
    start = max(1, first - 1)
    rows = conn.execute(
        "SELECT seq, canonical, prev_hash, hash FROM entry WHERE seq BETWEEN ? AND ? ORDER BY seq", (start, last + 1)
    )
    expected, before = start, None
    for seq, text, prev_hash, digest in rows:
        if seq != expected:
            return f"entry {expected} is missing"
        if before is not None and prev_hash != before:
            return f"entry {seq - 1} was altered or replaced: entry {seq} is not chained to it"
        if seq > last:
            return None
        if not _hashes_to(digest, prev_hash, text):
            return f"entry {seq} was altered: its hash does not match its content"
        before, expected = digest, expected + 1
    if expected <= last:
        return f"entry {expected} is missing"
    head = audit_chain.database_head(conn)  # the span ends the trail: its last entry is the head's
    if before is not None and (head is None or (head.seq, head.hash) != (last, before)):
        return f"entry {last} was altered or replaced: the head is not chained to it"
    return None


def _entries(conn: sqlite3.Connection, seqs: list[int]) -> str | None:
    for start in range(0, len(seqs), _CHUNK):
        chunk = seqs[start : start + _CHUNK]
        wanted = sorted({*chunk, *(seq + 1 for seq in chunk)})
        rows = {
            int(seq): (text, prev_hash, digest)
            for seq, text, prev_hash, digest in conn.execute(
                f"SELECT seq, canonical, prev_hash, hash FROM entry WHERE seq IN ({', '.join('?' * len(wanted))})",  # noqa: S608
                wanted,
            )
        }
        head = audit_chain.database_head(conn)
        for seq in chunk:
            problem = _entry(seq, rows, head)
            if problem is not None:
                return problem
    return None


def _hashes_to(digest: str, prev_hash: str, text: str) -> bool:
    try:
        return audit_chain.link(prev_hash, text) == digest
    except (ValueError, UnicodeEncodeError):  # not a hash, or not ASCII
        return False


def _entry(seq: int, rows: dict[int, tuple[str, str, str]], head: audit_chain.Head | None) -> str | None:
    if seq not in rows:
        return f"entry {seq} is missing"
    text, prev_hash, digest = rows[seq]
    document = audit_chain.parse_document(text)
    if document is None or audit_chain.canonical(document) != text or document.get("seq") != seq:
        return f"entry {seq} was altered: it is not the canonical entry {seq}"
    if not _hashes_to(digest, prev_hash, text):
        return f"entry {seq} was altered: its hash does not match its content"
    successor = rows.get(seq + 1)
    if successor is not None:
        if successor[1] != digest:
            return f"entry {seq} was altered or replaced: entry {seq + 1} is not chained to it"
    elif head is None or head.seq != seq:
        return f"entry {seq + 1} is missing"
    elif head.hash != digest:
        return f"entry {seq} was altered or replaced: the head is not chained to it"
    return None


def spot_check_file(path: Path, reading: Reading) -> str | None:
    """`spot_check` on the trail at `path`, opened read-only (the `dcii audit` CLI, beside the server)."""
    try:
        conn = sqlite3.connect(Path(path).resolve().as_uri() + "?mode=ro", uri=True, isolation_level=None)
        try:
            return spot_check(conn, Path(path), reading)
        finally:
            conn.close()
    except sqlite3.Error as error:
        return f"the audit trail cannot be read ({failure_text(error)})"
