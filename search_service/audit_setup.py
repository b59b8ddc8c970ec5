"""An audit trail file's set-up at each open (search_service.accounting.AuditLog): its schema made or brought
up to date, a newer program's trail refused, the key checked against the one it was made with, and the head
file of a new trail written."""

from __future__ import annotations

import hmac
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from indexer.exc import FailedPrecondition, Unavailable
from search_service import audit_chain
from search_service.audit_lock import CANNOT_WRITE

_KEY_CHECK = b"dcii audit key check v1"


def prepare_trail(
    conn: sqlite3.Connection,
    key: bytes,
    path: Path,
    head_path: Path,
    writing: Callable[[], AbstractContextManager[None]],
) -> None:
    """Set up the trail at `path` on `conn`; `writing` holds the trail's writer lock around each change."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > audit_chain.SCHEMA_VERSION:  # a newer program's trail: its entries are not ours to chain
        raise FailedPrecondition(
            f"{path} is an audit trail of schema {version}, newer than this program's"
            f" {audit_chain.SCHEMA_VERSION}: use the dcii that wrote it"
        )
    if version < audit_chain.SCHEMA_VERSION:
        with writing():
            conn.executescript(f"BEGIN IMMEDIATE; {audit_chain.SCHEMA} COMMIT;")
    check = key_check(key)
    row = conn.execute("SELECT value FROM meta WHERE name = 'key_check'").fetchone()
    if row is None:
        with writing():
            conn.execute("INSERT OR IGNORE INTO meta VALUES ('key_check', ?)", (check,))
        row = (check,)
    if not hmac.compare_digest(str(row[0]), check):
        raise FailedPrecondition(f"the audit key is not the one {path} was made with")
    if not head_path.exists() and _db_seq(conn) == 0:
        with writing():
            if not head_path.exists() and _db_seq(conn) == 0:
                audit_chain.write_head_file(head_path, audit_chain.Head(0, audit_chain.GENESIS))


def key_check(key: bytes) -> str:
    """What a trail keeps of the key it was made with (meta 'key_check'): an HMAC of a constant."""
    return hmac.new(key, _KEY_CHECK, "sha256").hexdigest()


def _db_seq(conn: sqlite3.Connection) -> int:
    head = audit_chain.database_head(conn)
    if head is None:
        raise Unavailable(f"{CANNOT_WRITE}: its head is missing (run dcii audit verify)")
    return head.seq
