"""Whether this process can write the audit trail, asked once as the server starts.

The trail fails closed: a disclosure it cannot record is not made, so a trail the server cannot write (its
permissions, a read-only mount, a head file replaced by something else) would refuse every answer after a
start that looked well. Asked at the start instead, it fails the start, in one line.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from indexer.exc import Unavailable
from indexer.failures import failure_text
from search_service.audit_chain import head_path

CANNOT_WRITE = "the audit trail cannot be written"


def check_writable(database: Path, *, timeout: float) -> None:
    """Unavailable unless a write to `database` (rolled back) and opening its head file for writing succeed."""
    try:
        conn = sqlite3.connect(database, timeout=timeout, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:  # a real write: SQLite grants BEGIN IMMEDIATE on a file it opened read-only
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('write_check', '')")
            finally:
                conn.execute("ROLLBACK")
        finally:
            conn.close()
        with head_path(database).open("r+b"):
            pass
    except (sqlite3.Error, OSError) as error:
        raise Unavailable(f"{CANNOT_WRITE} ({database}): {failure_text(error)}") from error
