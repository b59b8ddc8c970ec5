"""Online copies of the embedded store's SQLite files, and the lock that keeps a restore off a live store.

`copy_database` copies a database through SQLite's online backup API in one step: the copy is the state
of one read transaction of the source, so it holds every transaction committed before the copy began (an
acknowledged write is a committed one: indexer.store.sqlite) and none half-applied. In WAL mode readers
do not block the writer, so the server goes on ingesting while the copy runs; the price is that the WAL
cannot be checkpointed past the copy's snapshot until it ends, so the -wal file grows by what is written
meanwhile. (A copy in small steps would let go of the snapshot between steps, but SQLite restarts such a
copy whenever another connection writes, so under steady ingest it would never finish.) The copy is
switched to rollback-journal mode, so a backup is one self-contained file per database.

`DataDirLock` is a flock on `<data>/server.lock`: every server holds it shared while it runs, `dcii backup`
may read beside them (holding `backup.lock` too, so that a starting server can tell it from an older server,
which holds `server.lock` alone), and `dcii restore` takes it exclusively, so a restore never replaces the
files under a running server, and a server does not start on a half-restored directory. flock locks belong
to the open file, so this holds within one process too. A server's first process takes `server.lock`
exclusively before sharing it, and holds `<data>/primary.lock` exclusively: one server per data directory,
of this version or an earlier one. Two started on one directory by mistake each ran the batch worker, and
both answered the same batches (each answer's disclosures accounted twice), both ran retention and the
sweeps; the second is refused. Its own replica processes (`--processes N`) share the first's directory
without either.

Which files make a backup, the audit trail's head file, the manifest and restore: dcii.cli.backup.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from indexer.exc import FailedPrecondition

LOCK_NAME = "server.lock"
PRIMARY_LOCK_NAME = "primary.lock"
BACKUP_LOCK_NAME = "backup.lock"


class DataDirBusy(FailedPrecondition):
    """The data directory is held by another party (a server, or a restore)."""


class DataDirLock:
    """A flock on `<data>/server.lock`, shared (servers, backups) or exclusive (restore)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / LOCK_NAME
        self._fd: int | None = None
        self._primary: int | None = None
        self._backup: int | None = None

    def as_primary(self) -> DataDirLock:
        """Also hold `primary.lock` exclusively, or raise DataDirBusy: another server runs on this directory;
        FailedPrecondition if the directory cannot be written (a read-only mount was a traceback)."""
        try:
            fd = os.open(self.path.with_name(PRIMARY_LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as error:
            self.release()
            raise FailedPrecondition(
                f"the data directory {self.path.parent} cannot be written ({error.strerror}): the server keeps its"
                " files there"
            ) from error
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            self.release()
            raise DataDirBusy(
                f"another dcii serve is running on the data directory {self.path.parent}:"
                " one server a data directory (--processes N for more processes of it)"
            ) from None
        self._primary = fd
        return self

    def for_backup(self) -> DataDirLock:
        """The shared lock, as `dcii backup` holds it: `backup.lock` first (shared), so that a server starting
        meanwhile knows who else shares `server.lock`; DataDirBusy while a restore runs."""
        try:
            fd = os.open(self.path.with_name(BACKUP_LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o600)
        except PermissionError:  # someone else's directory, read only: no server of ours starts there
            return self.acquire(exclusive=False)
        except OSError as error:
            raise FailedPrecondition(f"cannot use the data directory {self.path.parent} ({error.strerror})") from error
        fcntl.flock(fd, fcntl.LOCK_SH)  # only a starting server's probe takes it exclusively, for an instant
        self._backup = fd
        try:
            return self.acquire(exclusive=False)
        except BaseException:
            self.release()
            raise

    def share(self) -> None:
        """Turn the exclusive hold into a shared one (a server's, once it knows it is alone)."""
        assert self._fd is not None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:  # a restore took the lock in the instant between (flock converts in two steps)
            raise DataDirBusy(f"the data directory {self.path.parent} is busy: a restore is in progress") from None

    def _backing_up(self) -> bool:
        """Whether a `dcii backup` of this version is reading the directory now (it holds backup.lock)."""
        try:
            fd = os.open(self.path.with_name(BACKUP_LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # drops the probe's lock, if it got it
        return False

    def directory(self) -> None:
        """Make the data directory if need be; FailedPrecondition if it cannot be used."""
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as error:  # --data names a file, or a directory this user cannot use
            raise FailedPrecondition(f"cannot use the data directory {self.path.parent} ({error.strerror})") from error

    def acquire(self, *, exclusive: bool, alone: bool = False) -> DataDirLock:
        """Take the lock now or raise DataDirBusy (never waits: the caller says what to do instead).

        `alone` (a server's first process): exclusively, or shared when only this version's backups hold it;
        anything else holding it refuses the start. A server from before `primary.lock` holds only the
        shared lock: the next version started beside it on the same directory was not refused, upgraded
        the store file under it (whose later writes then carried the old match keys for good), and both
        batch workers answered the same batches, accounting disclosures twice (a review of upgrades)."""
        self.directory()
        try:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            except PermissionError:  # a reader of someone else's directory (a backup): flock works read-only too
                fd = os.open(self.path, os.O_RDONLY)
        except OSError as error:  # --data names a file, or a directory this user cannot use
            raise FailedPrecondition(f"cannot use the data directory {self.path.parent} ({error.strerror})") from error
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            if alone and self._backing_up():
                os.close(fd)
                return self.acquire(exclusive=False)
            os.close(fd)
            if alone:
                raise DataDirBusy(
                    f"the data directory {self.path.parent} is in use by another program: a dcii serve of an"
                    " earlier version, or a restore; stop it first"
                ) from None
            holder = "a server or a backup is using it" if exclusive else "a restore is in progress"
            raise DataDirBusy(f"the data directory {self.path.parent} is busy: {holder}") from None
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def release(self) -> None:
        for fd in (self._primary, self._backup, self._fd):
            if fd is not None:
                os.close(fd)  # closing the descriptor drops the flock
        self._fd = self._primary = self._backup = None

    def __enter__(self) -> DataDirLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def hold_data_dir(data_dir: Path, *, primary: bool = True) -> DataDirLock:
    """The locks a server holds on its data directory for as long as it runs: the shared one, and in its
    first process the primary one, taken only when nothing but this version's backups holds the shared one
    (`DataDirLock.acquire_first`)."""
    if not primary:
        return DataDirLock(data_dir).acquire(exclusive=False)
    held = DataDirLock(data_dir)
    held.directory()
    held.as_primary()  # first: a server of this version running there is named as such
    try:
        held.acquire(exclusive=True, alone=True)
        held.share()
    except BaseException:
        held.release()
        raise
    return held


@dataclass(frozen=True, slots=True)
class CopiedDatabase:
    source: Path
    target: Path
    bytes: int
    seconds: float


def fsync_path(path: Path) -> None:
    """fsync a file, or a directory (so that a rename or a new file in it survives a crash)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def pin_snapshot(source: Path, *, timeout: float = 30.0) -> sqlite3.Connection:
    """A connection holding a read transaction on `source`: `copy_database(..., snapshot=)` from it copies
    the state of that moment, however long after. Pinning several databases one after the other makes
    their copies one moment of the data directory, microseconds wide, instead of one moment per copy."""
    if not source.is_file():
        raise FileNotFoundError(f"no database at {source}")
    # A plain connection, made read-only by pragma: a URI read-only connection cannot always open a WAL
    # database (it needs the -shm), and this one never writes the source.
    src = sqlite3.connect(source, timeout=timeout, isolation_level=None)
    try:
        src.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
        src.execute("PRAGMA query_only=1")
        src.execute("BEGIN")
        src.execute("SELECT count(*) FROM sqlite_master").fetchone()  # the snapshot is taken at the first read
    except BaseException:
        src.close()
        raise
    return src


def copy_database(
    source: Path, target: Path, *, timeout: float = 30.0, snapshot: sqlite3.Connection | None = None
) -> CopiedDatabase:
    """Copy the live database `source` to the new file `target` (which must not exist), online: as it is
    now, or as `snapshot` (pin_snapshot) saw it."""
    if target.exists():
        raise FileExistsError(f"{target} already exists")
    started = time.monotonic()
    src = snapshot or pin_snapshot(source, timeout=timeout)
    try:
        dst = sqlite3.connect(target, isolation_level=None)
        try:
            src.backup(dst, pages=-1)  # one step: one snapshot of the source
            mode = dst.execute("PRAGMA journal_mode=DELETE").fetchone()[0]
            if str(mode).lower() != "delete":
                raise sqlite3.OperationalError(f"the copy {target} stayed in {mode} mode")
        finally:
            dst.close()
    finally:
        if snapshot is None:
            src.close()
    os.chmod(target, 0o600)  # the copy holds what the original holds (names, SSNs): owner only
    fsync_path(target)
    fsync_path(target.parent)
    return CopiedDatabase(source, target, target.stat().st_size, time.monotonic() - started)


def _read_only(path: Path) -> sqlite3.Connection:
    # A copy is in rollback-journal mode, so a read-only URI connection works and leaves it byte for byte.
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)


def quick_check(path: Path) -> list[str]:
    """SQLite's quick_check of a copy (structure, not the index contents): empty when sound."""
    conn = _read_only(path)
    try:
        return [str(row[0]) for row in conn.execute("PRAGMA quick_check") if row[0] != "ok"]
    except sqlite3.DatabaseError as error:  # damaged past what quick_check reports: it raises instead
        return [f"damaged ({type(error).__name__})"]
    finally:
        conn.close()


def live_tracings(path: Path) -> int:
    """How many live tracings a copy of the index holds (for the manifest)."""
    conn = _read_only(path)
    try:
        return int(conn.execute("SELECT count(*) FROM tracing WHERE live = 1").fetchone()[0])
    finally:
        conn.close()


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
