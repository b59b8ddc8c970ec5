"""One SQLite connection per thread on a file the server shares with the CLI and its batch process.

WAL lets readers and a writer work at once; synchronous=FULL makes a committed row survive a power loss;
the 30-second timeout lets another process's transaction finish instead of failing at once.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from pathlib import Path


class ThreadConnections:
    def __init__(self, path: Path, *, foreign_keys: bool = False) -> None:
        self.path = path
        self._foreign_keys = foreign_keys
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
