"""The head file as the audit trail's writer keeps it: open for the writer's life, overwritten in place.

The writer reads and rewrites the head file on every write, while the callers of that write wait. Each
system call lets go of the GIL, and under load each hand-back waits for a busy thread's switch interval
(5 ms by default), so the file is kept open instead of opened, read whole, stat'ed and closed per
write: one stat (is it still the file at that path?), one pread and one pwrite.

The pwrite is not flushed on the callers' path: `sync` (fdatasync) is called by the audit trail's
background thread (search_service.audit_checkpoint) soon after each write, at most a fraction of a
second later, and on close. The entries themselves are durable before any caller returns (the WAL is
fsynced at every commit); the head file only vouches for them. A killed process leaves the written head
in the operating system's hands, which keeps it; only a power loss or a kernel crash can leave the file
further behind the database than one commit, by the writes of that fraction of a second, and a head
file that lags but still names an entry of the chain is not a break (search_service.audit_chain). The
flush it saves was a third of a disclosure's write (p50 365-437 -> 243 µs: two flushes a write, one now).

Every head is written at the start of the file padded to HEAD_BYTES: one write within one disk sector,
which disks apply whole, so the file never has to be replaced (no new file, rename and directory fsync
per write). A torn write would read as unreadable, never as a wrong head.
"""

from __future__ import annotations

import os
from pathlib import Path

from search_service.audit_chain import Head, canonical, parse_head

HEAD_BYTES = 128
# Read at most this much: a head file is HEAD_BYTES long; a longer one is not a head, and reading past
# HEAD_BYTES is how its excess is seen (and cut by the next write) without an fstat.
_READ_BYTES = 4096


class HeadFile:
    """The head file at `path`, kept open by one writer. Not thread-safe: the writer's lock serializes
    its use. Any OSError closes it, so the next write opens it afresh."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._identity: tuple[int, int] | None = None  # (st_dev, st_ino) of the open file
        self._size = -1  # as the last read found it (-1: not read since opened)
        self._made = False  # open() found no file at `path` and made an empty one
        self._unsynced = False  # written since the last fdatasync

    def open(self) -> None:
        """Make sure the kept descriptor is the file now at `path`: opened (created if missing) when it is
        not, for example after the file was deleted or replaced. Called before the commit, so a head file
        that cannot be opened for writing fails the write before anything is committed."""
        try:
            found = os.stat(self.path)
            identity: tuple[int, int] | None = (found.st_dev, found.st_ino)
        except FileNotFoundError:
            identity = None
        if self._fd is not None and identity == self._identity:
            return
        self.close()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            opened = os.fstat(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd, self._identity, self._size = fd, (opened.st_dev, opened.st_ino), -1
        self._made = identity is None

    def _descriptor(self) -> int:
        if self._fd is None:
            raise OSError("the head file is not open")
        return self._fd

    def read(self) -> Head | None:
        """The head the file records; None when there was no file (open() made an empty one);
        HeadUnreadable when it is not a head (an empty file that was there is not one)."""
        try:
            data = os.pread(self._descriptor(), _READ_BYTES, 0)
        except OSError:
            self.close()
            raise
        self._size = len(data)
        if self._made and not data:
            return None
        return parse_head(data, self.path)

    def write(self, head: Head) -> None:
        """Record `head` in place (after the entries it covers are committed); `sync` makes it durable."""
        text = canonical({"seq": head.seq, "hash": head.hash})
        data = (text + " " * (HEAD_BYTES - 1 - len(text)) + "\n").encode("ascii")
        try:
            fd = self._descriptor()
            os.pwrite(fd, data, 0)
            self._unsynced = True
            # A head file written whole by write_head_file is shorter (the pwrite made it HEAD_BYTES);
            # a longer one (not written by us) is cut. Unread since opened: cut to be sure.
            if self._size < 0 or self._size > HEAD_BYTES:
                os.ftruncate(fd, HEAD_BYTES)
            self._size, self._made = HEAD_BYTES, False
        except OSError:
            self.close()
            raise

    def sync(self) -> bool:
        """Make the last write durable (fdatasync); False when there was nothing to sync."""
        if self._fd is None or not self._unsynced:
            return False
        try:
            os.fdatasync(self._fd)
        except OSError:
            self.close()
            raise
        self._unsynced = False
        return True

    def close(self) -> None:
        fd, self._fd, self._identity, self._unsynced = self._fd, None, None, False
        if fd is not None:
            os.close(fd)
