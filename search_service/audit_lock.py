"""One writer of the audit trail at a time: a thread lock, then an flock on `<db>.lock`, because the
server and a CLI (privacy office, retention) may both write the same trail. Both are taken with the
trail's timeout; a writer that cannot have them fails closed (Unavailable), as every write does."""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from indexer.exc import Unavailable

CANNOT_WRITE = "the audit trail cannot be written"


class WriterLock:
    def __init__(self, db: Path, timeout: float) -> None:
        self._timeout = timeout
        self._thread_lock = threading.Lock()
        self._fd = _open_lock_file(db.with_name(db.name + ".lock"))

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Hold the thread lock and the flock: the only writer, in this process and in others."""
        with self.thread_only():
            fd = self._fd
            if fd is None:
                raise Unavailable(f"{CANNOT_WRITE}: no lock file")
            deadline = time.monotonic() + self._timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise Unavailable(f"{CANNOT_WRITE}: timed out waiting for another writer") from None
                    time.sleep(0.001)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def thread_only(self) -> Iterator[None]:
        """Hold the thread lock alone: enough for what only touches this process's own descriptors."""
        if not self._thread_lock.acquire(timeout=self._timeout):
            raise Unavailable(f"{CANNOT_WRITE}: timed out waiting for the writer lock")
        try:
            yield
        finally:
            self._thread_lock.release()

    def close(self) -> None:
        """Close the lock file; call it holding `thread_only`, so that no write has it in use."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def _open_lock_file(path: Path) -> int | None:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError:
        try:
            return os.open(path, os.O_RDONLY)  # a read-only trail: reads work, writes fail closed
        except OSError:
            return None
