"""The data directory's locks (indexer.store.sqlite_backup): a server's first process starts only when
nothing but this version's backups holds the directory. A server of an earlier version holds
`server.lock` shared and nothing else: the next version started beside it was not refused, upgraded the
store under it and ran a second batch worker (a review of upgrades). Other processes hold the locks here as
those programs do, with real flocks."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from indexer.store.sqlite_backup import DataDirBusy, DataDirLock, hold_data_dir

HOLD = """
import fcntl, os, sys
for name, kind in zip(sys.argv[1::2], sys.argv[2::2]):
    fd = os.open(name, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_SH if kind == "shared" else fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.read()
"""


@contextmanager
def held_by_another_process(*locks: tuple[Path, str]) -> Iterator[None]:
    """Another process holding `locks` ((file, "shared" | "exclusive"), in order) until the block ends."""
    args = [str(part) for path, kind in locks for part in (path, kind)]
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(10)


def test_a_server_of_an_earlier_version_on_the_directory_refuses_the_start(tmp_path: Path) -> None:
    with held_by_another_process((tmp_path / "server.lock", "shared")):  # all an earlier server holds
        with pytest.raises(DataDirBusy, match="in use by another program: a dcii serve of an earlier version"):
            hold_data_dir(tmp_path)
        assert not (tmp_path / "primary.lock").exists() or _free(tmp_path / "primary.lock")
    hold_data_dir(tmp_path).release()  # once it is gone


def test_a_backup_of_this_version_does_not_keep_a_server_from_starting(tmp_path: Path) -> None:
    backup = ((tmp_path / "backup.lock", "shared"), (tmp_path / "server.lock", "shared"))
    with held_by_another_process(*backup):
        held = hold_data_dir(tmp_path)
        try:
            with pytest.raises(DataDirBusy, match="another dcii serve is running"):
                hold_data_dir(tmp_path)  # and the server it started is still alone
            DataDirLock(tmp_path).for_backup().release()  # another backup beside both
        finally:
            held.release()


def test_a_restore_refuses_the_start_and_a_running_server_refuses_the_restore(tmp_path: Path) -> None:
    restoring = held_by_another_process((tmp_path / "server.lock", "exclusive"))
    with restoring, pytest.raises(DataDirBusy, match="in use by another program"):
        hold_data_dir(tmp_path)
    held = hold_data_dir(tmp_path)
    try:
        with pytest.raises(DataDirBusy, match="a server or a backup"):
            DataDirLock(tmp_path).acquire(exclusive=True)
        hold_data_dir(tmp_path, primary=False).release()  # its replicas share it
    finally:
        held.release()


def _free(path: Path) -> bool:
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True
