"""How many statements of dispute were attached to the embedded store, kept in a small file beside it
(`index.db.disputes`) that every process using the store maps into memory: read without SQLite.

Why: after a search's accounting is durable, it asks whether a dispute was attached since it read its
answer (TracingStore.dispute_mark; search_service.search annotates the answer if so). Asked of SQLite, that
was one more statement on a pooled connection after every answer, and under load each statement is a
hand-off of the GIL: with 32 EXACT calls in flight, 7-12% of the throughput (docs/BENCHMARKS.md,
twenty-seventh session). Read here it is a load from mapped memory.

The store's own count (the meta row `disputes_filed`) stays the record; this file only signals a change.
It is bumped after each attachment commits and before `set_dispute` returns, so a dispute whose filer reads
the accounting (to send its notices) has always been counted by then: a search that read the count before
its answer's reads and again after its accounting sees it move whenever the filer could have missed it. A
process killed between the commit and the bump leaves the count one short; its filer heard an error and
files again, which counts. The file holds one number and no PII; deleting it while a server runs would
hide later attachments from that server's check until it restarts (RUNBOOK, "What each instance keeps").
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
import threading
import weakref
from pathlib import Path

SUFFIX = ".disputes"
_COUNT = struct.Struct("<Q")  # at offset 0: aligned, so one 8-byte load reads it whole


def signal_path(store_file: Path) -> Path:
    return store_file.with_name(store_file.name + SUFFIX)


def _unmap(mapped: mmap.mmap, fd: int) -> None:
    mapped.close()
    os.close(fd)


class DisputeSignal:
    """The count of attachments at `path` (created as 0 if absent), shared with every process that maps it."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()  # the file lock is per process: one thread of this one at a time
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.lockf(self._fd, fcntl.LOCK_EX)
            try:
                if os.fstat(self._fd).st_size < _COUNT.size:
                    os.ftruncate(self._fd, _COUNT.size)  # zero-filled: no attachment counted yet
            finally:
                fcntl.lockf(self._fd, fcntl.LOCK_UN)
            self._map = mmap.mmap(self._fd, _COUNT.size)
        except BaseException:
            os.close(self._fd)
            raise
        self._closer = weakref.finalize(self, _unmap, self._map, self._fd)

    def read(self) -> int:
        return int(_COUNT.unpack_from(self._map, 0)[0])

    def bump(self) -> None:
        """Count one attachment (under the file's lock: two processes bumping at once both count)."""
        with self._lock:
            fcntl.lockf(self._fd, fcntl.LOCK_EX)
            try:
                _COUNT.pack_into(self._map, 0, (self.read() + 1) % 2**64)
            finally:
                fcntl.lockf(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        self._closer()
