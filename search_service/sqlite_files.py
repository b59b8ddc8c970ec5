"""One SQLite connection per thread on a file the server shares with the CLI and its batch process.

WAL lets readers and a writer work at once; synchronous=FULL makes a committed row survive a power loss;
the 30-second timeout lets another process's transaction finish instead of failing at once.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from indexer.exc import FailedPrecondition

T = TypeVar("T")


def opened(path: Path | str, what: str, open_file: Callable[[], T]) -> T:
    """`open_file()`, a file SQLite cannot use (damaged, or not a database) turned into one line naming it
    and what to do: at start the engineer got a traceback of thirty lines ending in "file is not a
    database" (durability review 4). The error's type only: SQLite's text may quote a stored value."""
    try:
        return open_file()
    except sqlite3.DatabaseError as error:
        raise FailedPrecondition(
            f"{what} {path} cannot be used ({type(error).__name__}: damaged, or not a database);"
            " `dcii restore` puts back a backup (docs/RUNBOOK.md, Backup and restore)"
        ) from None


class ThreadConnections:
    def __init__(self, path: Path, *, foreign_keys: bool = False, secure_delete: bool = False) -> None:
        self.path = path
        self._foreign_keys = foreign_keys
        self._secure_delete = secure_delete  # deleted rows' bytes overwritten in the file (PII that must go)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def get(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30.0, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            if self._foreign_keys:
                conn.execute("PRAGMA foreign_keys=ON")
            if self._secure_delete:
                conn.execute("PRAGMA secure_delete=ON")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def close_all(self) -> None:
        """Close every thread's connection (a thread that asks again gets a new one)."""
        with self._lock:
            connections, self._all = self._all, []
        for conn in connections:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()
