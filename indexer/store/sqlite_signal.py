"""How many statements of dispute were attached to the embedded store, kept in a small file beside it
(`index.db.disputes`) that every process using the store maps into memory: read without SQLite.

Why: after a search's accounting is durable, it asks whether a dispute was attached since it read its
answer (TracingStore.dispute_mark; search_service.search annotates the answer if so). Asked of SQLite, that
was one more statement on a pooled connection after every answer, and under load each statement is a
hand-off of the GIL: with 32 EXACT calls in flight, taking that read out gained 8-19% of the throughput in
four pairs of runs (docs/BENCHMARKS.md, twenty-seventh session). Read here it is a load from mapped memory.

The store's own count (the meta row `disputes_filed`) stays the record; this file only signals a change.
It is bumped after each attachment commits and before `set_dispute` returns, so a dispute whose filer reads
the accounting (to send its notices) has always been counted by then: a search that read the count before
its answer's reads and again after its accounting sees it move whenever the filer could have missed it. A
process killed between the commit and the bump leaves the count one short; its filer heard an error and
files again, which counts. The file holds one number and no PII. It must not be deleted or truncated while
anything uses the store: a process that opens it again then makes a new one and counts apart from the
others (a restarted replica), and a truncated map faults (RUNBOOK, "What each instance keeps"). It is made
with its 8 bytes written, not sized sparse, so that a full disk fails the store's opening, not a later
write through the map; and, made by root (a `dcii` command run as root), given to the store file's owner.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
import threading
import weakref
from pathlib import Path

from indexer.exc import Unavailable

SUFFIX = ".disputes"
_COUNT = struct.Struct("<Q")  # at offset 0: aligned, so one 8-byte load reads it whole


def signal_path(store_file: Path) -> Path:
    return store_file.with_name(store_file.name + SUFFIX)


def _unmap(mapped: mmap.mmap, fd: int) -> None:
    mapped.close()
    os.close(fd)


class DisputeSignal:
    """The count of attachments at `path` (created as 0 if absent), shared with every process that maps it.
    `owner_of`: the file whose owner a new one is given when made by root."""

    def __init__(self, path: Path, owner_of: Path | None = None) -> None:
        self._lock = threading.Lock()  # the file lock is per process: one thread of this one at a time
        self._closed = False
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.lockf(self._fd, fcntl.LOCK_EX)
            try:
                if os.fstat(self._fd).st_size < _COUNT.size:
                    # Written, not sized sparse: the disk's block is taken now (ENOSPC here, not SIGBUS later).
                    os.pwrite(self._fd, _COUNT.pack(0), 0)
                    if owner_of is not None and os.geteuid() == 0:
                        owner = owner_of.stat()
                        os.fchown(self._fd, owner.st_uid, owner.st_gid)
            finally:
                fcntl.lockf(self._fd, fcntl.LOCK_UN)
            self._map = mmap.mmap(self._fd, _COUNT.size)
        except BaseException:
            os.close(self._fd)
            raise
        self._closer = weakref.finalize(self, _unmap, self._map, self._fd)

    def read(self) -> int:
        if self._closed:
            raise Unavailable("the store is closed")
        return self._value()

    def _value(self) -> int:
        return int(_COUNT.unpack_from(self._map, 0)[0])

    def bump(self) -> None:
        """Count one attachment (under the file's lock: two processes bumping at once both count)."""
        with self._lock:
            if self._closed:  # its descriptor's number may be another file's by now: never lock it
                raise Unavailable("the store is closed")
            fcntl.lockf(self._fd, fcntl.LOCK_EX)
            try:
                _COUNT.pack_into(self._map, 0, (self._value() + 1) % 2**64)
            finally:
                fcntl.lockf(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._closer()
