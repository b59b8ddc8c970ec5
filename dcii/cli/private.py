"""Files the `dcii` commands create are for the service's own account only.

The data directory holds names, SSNs and dates of birth (index.db), operators' password hashes
(registry.db) and the accounting of disclosures (audit.db); under the usual umask 022 SQLite and mkdir
made them readable by every local user. Every command runs with the umask 077 instead (the batch and
privacy files and the audit key were already made 0600 one by one), and `dcii serve` closes a data
directory an earlier run left open to others.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def private_files() -> Iterator[None]:
    """The umask 077 while a command runs (restored after: tests run commands in their own process)."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


def close_to_others(directory: Path) -> None:
    """chmod go-rwx a directory that exists and is open to others (its files are then out of their reach)."""
    try:
        mode = directory.stat().st_mode
    except FileNotFoundError:
        return
    if mode & 0o077:
        directory.chmod(stat.S_IMODE(mode) & 0o700)
