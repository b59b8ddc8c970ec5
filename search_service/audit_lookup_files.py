"""The lookup file's writers' footing on the machine (search_service.audit_lookup): the descriptors its
writers hold for fsync, which boot of the machine this is, and whether a writer's process still runs."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import ClassVar

# Which boot of the machine this is: a writer's mark left by another boot means the machine went down
# under that writer (search_service.audit_lookup, `_open_writer`).
_BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


class HeldFiles:
    """Descriptors of the lookup's files for fsync, shared by the writers of one process and closed when the
    last of them has closed its connection: closing any descriptor of a file drops every POSIX lock the
    process holds on it, its SQLite connections' too (sqlite.org/howtocorrupt.html, 2.2). Opened and closed
    around each fsync, they dropped the server's shared lock on the lookup, and a CLI's connection, closing,
    took the file for its last user: it deleted the WAL and the shared memory from under the server, whose
    later copies went to a deleted WAL (a review, 2026-11-24)."""

    _lock = threading.Lock()
    _open: ClassVar[dict[tuple[int, int], list[int]]] = {}  # (device, inode) -> [descriptor, writers]

    def __init__(self) -> None:
        self._mine: set[tuple[int, int]] = set()

    def descriptor(self, path: Path) -> int:
        """A descriptor of the file at `path`, held until `release` (FileNotFoundError if there is none)."""
        with self._lock:
            found = os.stat(path)
            inode = (found.st_dev, found.st_ino)
            entry = self._open.get(inode)
            if entry is None:
                fd = os.open(path, os.O_RDONLY)
                opened = os.fstat(fd)
                inode = (opened.st_dev, opened.st_ino)  # the path may name another file by now
                # Should that file be held already, this descriptor is left open: closing it would drop the locks.
                entry = self._open.setdefault(inode, [fd, 0])
            if inode not in self._mine:
                self._mine.add(inode)
                entry[1] += 1
            return entry[0]

    def release(self) -> None:
        """Called once this writer's connection is closed: a descriptor no writer of the process holds any
        more is closed."""
        with self._lock:
            for inode in self._mine:
                entry = self._open[inode]
                entry[1] -= 1
                if entry[1] == 0:
                    os.close(entry[0])
                    del self._open[inode]
            self._mine.clear()


def boot_id() -> str:
    """This boot of the machine's id ("" if unknown)."""
    try:
        return _BOOT_ID.read_text().strip()
    except OSError:
        return ""


def alive(pid: int) -> bool:
    """Whether a process of that id exists (one of another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
