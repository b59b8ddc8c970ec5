"""The per-activity rate limit shared by every process that serves one data directory (`dcii serve
--processes N`, search_service.serving_processes).

Each process used to count its own calls, so an activity whose connections the kernel spread over N
processes could make N times its rate. Here every process keeps the token buckets in one table: a file in
the data directory (`activity_rates.bin`), mapped into each process's memory and updated under a lock on
the file, the same bucket rule as search_service.limits.RateLimiter. One take costs a lock, an unlock and a
few reads and writes of mapped memory: 6-7 µs against 1-1.5 µs in memory (100,000 takes over 1,000
activities, in process, alternately), under half a percent of the cheapest query. A process that serves
alone keeps its buckets in memory and never opens the file.

The table: a header (magic, version, slot count), then one slot per activity found by open addressing
from a hash of its id: the hash (0: free), the tokens left, and when they were counted (CLOCK_MONOTONIC,
one clock for every process of the machine). It holds no PII (activity ids are not PII, and only their
hashes are kept). A table left by an earlier run is used as it is: its buckets refill by the time passed,
and one counted before the machine restarted (a time ahead of the clock) starts full. An activity that
finds no free slot among PROBES (more activities than the table was made for) is counted per process, as
before, and logged once.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import mmap
import os
import struct
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path

from search_service.limits import RateLimiter, rate_refusal

log = logging.getLogger(__name__)

FILE_NAME = "activity_rates.bin"
MAGIC = b"DCIIRATE"
VERSION = 1
SLOTS = 65_536  # accredited activities number in the thousands
PROBES = 64
_HEADER = struct.Struct("<8sII")  # magic, version, slots
_SLOT = struct.Struct("<Qdd")  # activity hash (0: free), tokens, counted at (seconds, CLOCK_MONOTONIC)
_SIZE = _HEADER.size + SLOTS * _SLOT.size


def activity_hash(activity: str) -> int:
    """The slot key of an activity: 64 bits of BLAKE2b, never 0 (0 marks a free slot)."""
    return int.from_bytes(hashlib.blake2b(activity.encode(), digest_size=8).digest(), "little") or 1


class SharedRateLimiter:
    """RateLimiter's rule over the table at `path`, shared with every other process that opens it."""

    def __init__(self, path: Path, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self._rate, self._burst, self._clock = rate, burst, clock
        self._overflow = RateLimiter(rate, burst, clock)
        self._warned = False
        self._lock = threading.Lock()  # the file lock is per process: one thread of this one at a time
        self._fd = _open_table(path)
        self._map = mmap.mmap(self._fd, _SIZE)
        # The server holds its limiter for its life: closed when it is collected, or by `close`.
        self._closer = weakref.finalize(self, _unmap, self._map, self._fd)

    def take(self, key: str, cost: float = 1.0) -> None:
        """Spend `cost` tokens of `key`'s bucket, or raise ResourceExhausted."""
        wanted = activity_hash(key)
        allowed = True
        with self._lock:
            fcntl.lockf(self._fd, fcntl.LOCK_EX)
            try:
                offset = self._slot(wanted)
                if offset is not None:
                    # The time is read under the lock: read before it, another process could count a later
                    # time first, and this one's would look earlier than the slot's (a restarted clock).
                    allowed = self._spend(offset, wanted, cost, self._clock())
            finally:
                fcntl.lockf(self._fd, fcntl.LOCK_UN)
        if offset is None:
            if not self._warned:
                self._warned = True
                log.warning("the shared rate table is full: some activities are limited per process")
            self._overflow.take(key, cost)
        elif not allowed:
            raise rate_refusal(key, self._rate, self._burst)

    def give_back(self, key: str, cost: float = 1.0) -> None:
        """Return `cost` tokens taken for something that did not happen (never above the burst)."""
        wanted = activity_hash(key)
        with self._lock:
            fcntl.lockf(self._fd, fcntl.LOCK_EX)
            try:
                offset = self._slot(wanted)
                if offset is not None:
                    self._spend(offset, wanted, -cost, self._clock())
            finally:
                fcntl.lockf(self._fd, fcntl.LOCK_UN)
        if offset is None:
            self._overflow.give_back(key, cost)

    def _slot(self, wanted: int) -> int | None:
        """The offset of `wanted`'s slot, or of the free slot it may take; None if neither is in reach."""
        start = wanted % SLOTS
        for probe in range(PROBES):
            offset = _HEADER.size + ((start + probe) % SLOTS) * _SLOT.size
            (held,) = struct.unpack_from("<Q", self._map, offset)
            if held in (wanted, 0):
                return offset
        return None

    def _spend(self, offset: int, wanted: int, cost: float, now: float) -> bool:
        held, tokens, at = _SLOT.unpack_from(self._map, offset)
        elapsed: float = now - at
        new_or_stale = held == 0 or elapsed < 0  # a new activity, or counted before the machine restarted
        tokens = self._burst if new_or_stale else min(self._burst, tokens + elapsed * self._rate)
        allowed: bool = tokens >= cost
        _SLOT.pack_into(self._map, offset, wanted, min(self._burst, tokens - cost) if allowed else tokens, now)
        return allowed

    def close(self) -> None:
        with self._lock:
            self._closer()


def _unmap(mapped: mmap.mmap, fd: int) -> None:
    mapped.close()
    os.close(fd)


def _open_table(path: Path) -> int:
    """The table's file, open for reading and writing; made (or made again, if it is not a table of this
    version and size) under the lock, so that processes starting at once agree on one."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX)
        try:
            header = os.pread(fd, _HEADER.size, 0)
            if os.fstat(fd).st_size != _SIZE or header != _HEADER.pack(MAGIC, VERSION, SLOTS):
                os.ftruncate(fd, 0)
                os.ftruncate(fd, _SIZE)  # every slot free (zeros)
                os.pwrite(fd, _HEADER.pack(MAGIC, VERSION, SLOTS), 0)
        finally:
            fcntl.lockf(fd, fcntl.LOCK_UN)
    except BaseException:
        os.close(fd)
        raise
    return fd
