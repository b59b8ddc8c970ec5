"""The embedded store's read connections: a small pool shared by every thread.

One connection per thread (the obvious design) costs memory per thread: each connection has its own page
cache and its own memory map of the file, and a process's resident size counts a page once per mapping,
so 32 RPC threads on a 10-million-tracing file would hold gigabytes of the same pages. On 2 cores only a
few reads run at once anyway (the GIL), so a handful of connections serve any number of threads: a thread
takes one for a call, or for the whole of a `snapshot` (one read transaction), and gives it back.
"""

from __future__ import annotations

import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from indexer.exc import Unavailable

# Enough for every core to read while others wait on I/O; more only costs memory.
DEFAULT_READERS = max(4, 2 * (os.cpu_count() or 2))


class ReaderPool:
    def __init__(self, opener: Callable[[], sqlite3.Connection], size: int = DEFAULT_READERS) -> None:
        if size < 1:
            raise ValueError("a reader pool needs at least one connection")
        self._opener = opener
        self._size = size
        self._idle: queue.LifoQueue[sqlite3.Connection] = queue.LifoQueue()  # LIFO: the warmest cache first
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._local = threading.local()
        self._closed = False

    def _checkout(self) -> sqlite3.Connection:
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            pass
        with self._lock:
            if self._closed:
                raise Unavailable("the store is closed")
            if len(self._all) < self._size:
                conn = self._opener()
                self._all.append(conn)
                return conn
        try:
            return self._idle.get(timeout=30.0)
        except queue.Empty:
            raise Unavailable("the store is busy: no read connection came free in 30 s") from None

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """A connection for one call: the thread's snapshot connection when it is in one."""
        held: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if held is not None:
            yield held
            return
        conn = self._checkout()
        try:
            yield conn
        finally:
            self._idle.put(conn)

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """One read transaction for the calling thread's reads until it ends (nests: the outermost counts)."""
        if getattr(self._local, "conn", None) is not None:
            yield
            return
        conn = self._checkout()
        try:
            conn.execute("BEGIN")
            self._local.conn = conn
            try:
                yield
            finally:
                self._local.conn = None
                if conn.in_transaction:
                    conn.execute("COMMIT")
        finally:
            self._idle.put(conn)

    @property
    def opened(self) -> int:
        """Connections opened so far (at most the pool's size)."""
        with self._lock:
            return len(self._all)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for conn in self._all:
                conn.close()
            self._all.clear()
