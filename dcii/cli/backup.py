"""`dcii backup` and `dcii restore`: the embedded store's data directory, copied online and put back.

A backup is a directory (mode 0700) holding a copy of each database of the data directory, taken through
SQLite's online backup API while the server runs (indexer.store.sqlite_backup), the audit trail's head
file and HMAC key, and `manifest.json` (written last: a directory without one is an unfinished backup)
listing each file with its size and SHA-256, the time, the tracings in the index copy and the audit
check of the copy.

Order, and why:
- audit.key first (it never changes) and the registry; then index.db, batch.db, privacy.db;
- the audit trail last, so that its accounting covers every disclosure of what the index copy holds
  (over-accounting is safe, under-accounting is not). Its head file is read *before* the database
  snapshot is taken: a writer installs the head file only after committing (search_service.audit_chain),
  so the copied head names an entry inside the copied chain — equal to its last entry, or a few behind
  when disclosures were being recorded meanwhile, which `dcii audit verify` accepts as a lag and the
  server's next write catches up. Taking the audit writer's lock instead would make searches wait (and
  fail closed) for as long as the copy takes.

Every database's snapshot is taken first, in that order and microseconds apart (a read transaction held
on each: indexer.store.sqlite_backup.pin_snapshot), then each is copied from its snapshot: the backup is one
moment of the data directory. Copied one after the other instead, each file was its own moment, minutes
apart at 10M tracings, and a dispute filed meanwhile came back as its notices and event without the
record's annotation.

Every tracing acknowledged before `dcii backup` began is in the copy: an acknowledgement follows the
commit, and the index copy's snapshot is taken after the command starts.

`dcii restore BACKUP --data DIR` checks every file against the manifest before touching anything, then
takes the data directory's exclusive lock (so it refuses while a server runs there), refuses a directory
that already holds data unless `--force` (which moves the old files into `DIR/replaced-<time>/`, never
deletes them), copies the files in under temporary names and renames them into place, and finally
checks the restored store (SqliteStore.check_integrity) and the audit chain.

A backup holds names and SSNs (index.db) and the audit key: keep it as the data directory is kept.
With the OpenSearch backend the index lives in the cluster (back it up with snapshots: docs/RUNBOOK.md)
and `dcii backup` copies the rest of the data directory.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import sqlite3
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from indexer.exc import DciiError
from indexer.store.sqlite import SqliteStore
from indexer.store.sqlite_backup import (
    LOCK_NAME,
    PRIMARY_LOCK_NAME,
    DataDirLock,
    copy_database,
    fsync_path,
    live_tracings,
    pin_snapshot,
    quick_check,
    sha256_file,
)
from search_service.accounting import verify_file
from search_service.audit_lookup import lookup_path

FORMAT = "dcii-backup/1"
MANIFEST = "manifest.json"
STAGING = ".restoring-"  # a restore's copies, beside the data until every one is made
INDEX, AUDIT, AUDIT_HEAD, AUDIT_KEY = "index.db", "audit.db", "audit.db.head", "audit.key"
INSTANCE = "instance.id"  # who this instance is to its peers (search_service.peers): restored with its trail
# In copy order (see the module docstring); a database absent from the data directory is left out.
DATABASES_FIRST = ("registry.db", INDEX, "batch.db", "privacy.db")
KNOWN = frozenset({AUDIT_KEY, INSTANCE, *DATABASES_FIRST, AUDIT_HEAD, AUDIT})
# Files SQLite and the audit log keep beside a database; a restore moves them aside with it.
COMPANIONS = ("-wal", "-shm", "-journal", ".lock")
# Derived from a backed-up file, so not backed up; a restore moves it aside too (the server makes it
# again from the restored trail: search_service.audit_lookup).
DERIVED = frozenset({lookup_path(Path(AUDIT)).name})


class BackupError(DciiError):
    code = "FAILED_PRECONDITION"


@dataclass(frozen=True, slots=True)
class FileEntry:
    name: str
    kind: str  # "sqlite", "head", "key" or "id"
    bytes: int
    sha256: str


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _write_new(target: Path, data: bytes) -> None:
    """Write a new small file, mode 0600, fsynced."""
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def _entry(directory: Path, name: str, kind: str) -> FileEntry:
    path = directory / name
    return FileEntry(name, kind, path.stat().st_size, sha256_file(path))


def _empty(directory: Path, *, ignore: tuple[str, ...] = ()) -> bool:
    """Whether `directory` holds nothing but `ignore` and the incarnation a server's start draws (a
    `.incarnation` survives `rm -rf DIR/*`)."""
    if not directory.exists():
        return True
    return not any(p.name not in ignore and not p.name.startswith(".incarnation") for p in directory.iterdir())


def backup(data_dir: Path, out: Path, *, check: bool = True) -> dict[str, Any]:
    """Copy the data directory into the new (or empty) directory `out`; returns the manifest. One that fails
    (a full disk, a source file SQLite cannot read) removes what it copied, which holds every SSN, and says
    so in a BackupError."""
    if not (data_dir / "registry.db").exists():
        raise BackupError(f"{data_dir} is not a DCII data directory (no registry.db)")
    if not _empty(out):
        raise BackupError(f"{out} is not empty: a backup goes into a new directory")
    made = not out.exists()
    try:
        return _backup(data_dir, out, check=check)
    except BaseException as error:
        _remove_unfinished(out, made=made)
        if isinstance(error, sqlite3.Error):  # the type only: SQLite's text may quote a stored value
            raise BackupError(
                f"a database could not be copied ({type(error).__name__}: a full disk, or a damaged file;"
                " `dcii index check` names a damaged index); the unfinished copy was removed"
            ) from error
        raise


def _remove_unfinished(out: Path, *, made: bool) -> None:
    """A failed backup's copies go: the directory if the backup made it, else what it put into it."""
    if made:
        shutil.rmtree(out, ignore_errors=True)
        return
    for path in list(out.iterdir()) if out.is_dir() else []:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


QUICK_CHECK_MAX = 100  # SQLite's default for PRAGMA quick_check


def _first_of(problems: list[str]) -> str:
    """The first of quick_check's problems, and how many more: the RUNBOOK promises one line, and a damaged
    file gave a hundred ("Page N is never used"...), some rows holding several lines under a header."""
    lines = [line.strip() for problem in problems for line in problem.splitlines()]
    lines = [line for line in lines if line and not (line.startswith("***") and line.endswith("***"))]
    if not lines:
        return "damaged"
    # quick_check stops at 100 problems: that many means more may follow.
    at_least = "at least " if len(lines) >= QUICK_CHECK_MAX else ""
    more = f" (and {at_least}{len(lines) - 1} more problems)" if len(lines) > 1 else ""
    return lines[0] + more


def _backup(data_dir: Path, out: Path, *, check: bool) -> dict[str, Any]:
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    out.chmod(0o700)  # an empty directory made beforehand kept its mode (0755): the backup holds every SSN
    started = _now()
    files: list[FileEntry] = []
    with DataDirLock(data_dir).for_backup():  # refused while a restore is running there
        for name, kind in ((AUDIT_KEY, "key"), (INSTANCE, "id")):
            if (data_dir / name).exists():
                _write_new(out / name, (data_dir / name).read_bytes())
                files.append(_entry(out, name, kind))
        head = data_dir / AUDIT_HEAD
        head_bytes = head.read_bytes() if head.exists() else None  # before the trail's snapshot: see above
        names = [name for name in (*DATABASES_FIRST, AUDIT) if (data_dir / name).exists()]
        with contextlib.ExitStack() as pinned:
            # Every snapshot first, in this order, microseconds apart; then the copies. One at a time, each
            # copy was its own moment, minutes apart at 10M tracings: a dispute filed meanwhile came back as
            # its notices (privacy.db) and event (audit.db) without the record's annotation (index.db).
            snapshots = {
                name: pinned.enter_context(contextlib.closing(pin_snapshot(data_dir / name))) for name in names
            }
            for name in names:
                copied = copy_database(data_dir / name, out / name, snapshot=snapshots[name])
                _say(f"{name}: {copied.bytes:,} bytes in {copied.seconds:.1f} s")
                if name == AUDIT and head_bytes is not None:
                    _write_new(out / AUDIT_HEAD, head_bytes)
                    files.append(_entry(out, AUDIT_HEAD, "head"))
                files.append(_entry(out, name, "sqlite"))
    manifest: dict[str, Any] = {"format": FORMAT, "started_at": started, "source": str(data_dir.resolve())}
    if check:
        for entry in files:
            problems = quick_check(out / entry.name) if entry.kind == "sqlite" else []
            if problems:
                raise BackupError(f"the copy of {entry.name} fails SQLite's quick_check: {_first_of(problems)}")
    if (out / INDEX).exists():
        manifest["index_tracings"] = live_tracings(out / INDEX)
    if (out / AUDIT).exists():
        verified = verify_file(out / AUDIT)
        manifest["audit"] = {"ok": verified.ok, "entries": verified.entries, "reason": verified.reason}
    manifest["finished_at"] = _now()
    manifest["files"] = [asdict(entry) for entry in files]
    _write_manifest(out, manifest)
    return manifest


def _write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    temporary = out / f".{MANIFEST}.tmp"
    _write_new(temporary, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    os.replace(temporary, out / MANIFEST)
    fsync_path(out)


# ---- restore ----


def read_manifest(backup_dir: Path) -> tuple[dict[str, Any], list[FileEntry]]:
    """The manifest and its files, each checked against the backup (size, SHA-256); BackupError otherwise."""
    try:
        manifest = json.loads((backup_dir / MANIFEST).read_text())
    except FileNotFoundError:
        raise BackupError(f"{backup_dir} has no {MANIFEST}: not a backup, or an unfinished one") from None
    except ValueError as error:
        raise BackupError(f"{backup_dir / MANIFEST} is not readable JSON") from error
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{backup_dir / MANIFEST} is not a {FORMAT} manifest")
    entries = []
    for item in manifest.get("files", []):
        try:
            entry = FileEntry(str(item["name"]), str(item["kind"]), int(item["bytes"]), str(item["sha256"]))
        except (KeyError, TypeError, ValueError) as error:
            raise BackupError(
                f"{backup_dir / MANIFEST} lists a file without its name, kind, bytes or sha256"
            ) from error
        if entry.name not in KNOWN:  # the names become paths in the data directory: only ours
            raise BackupError(f"the manifest lists an unexpected file {entry.name!r}")
        path = backup_dir / entry.name
        if not path.is_file():
            raise BackupError(f"{entry.name} is listed in the manifest but missing from the backup")
        if path.stat().st_size != entry.bytes or sha256_file(path) != entry.sha256:
            raise BackupError(f"{entry.name} does not match the manifest (size or SHA-256): the backup was altered")
        entries.append(entry)
    if not any(entry.name == "registry.db" for entry in entries):
        raise BackupError("the manifest lists no registry.db")
    return manifest, entries


def _move_aside(data_dir: Path) -> Path | None:
    """Move the files a restore replaces (and their companions) into data/replaced-<time>/."""
    present = [
        p for p in data_dir.iterdir() if any(p.name in (k, *(k + c for c in COMPANIONS)) for k in KNOWN | DERIVED)
    ]
    if not present:
        return None
    aside = data_dir / f"replaced-{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%SZ')}"
    aside.mkdir(mode=0o700)
    for path in present:
        os.replace(path, aside / path.name)
    fsync_path(data_dir)
    return aside


def restore(backup_dir: Path, data_dir: Path, *, force: bool = False) -> dict[str, Any]:
    """Put a backup into `data_dir`; refuses while a server runs there, and a non-empty one unless `force`."""
    manifest, entries = read_manifest(backup_dir)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    report: dict[str, Any] = {}
    with DataDirLock(data_dir).acquire(exclusive=True):
        for stale in data_dir.glob(f"{STAGING}*"):  # a restore killed while it copied (copies hold PII)
            shutil.rmtree(stale, ignore_errors=True)
        if not force and not _empty(data_dir, ignore=(LOCK_NAME, PRIMARY_LOCK_NAME)):
            raise BackupError(f"{data_dir} already holds data: restore into an empty directory, or pass --force")
        if (data_dir / INDEX).exists() and not any(entry.name == INDEX for entry in entries):
            # A backup of a server on OpenSearch (its index is the cluster's): restored here, this directory's
            # index.db went aside and the server started on a new, empty index, exit 0 and all well.
            raise BackupError(
                f"the backup holds no {INDEX} (its server's index was on OpenSearch) and {data_dir} has one:"
                f" restored, the server would start on an empty index; move {data_dir / INDEX} away first if"
                " that is what you mean"
            )
        # Every file is copied beside the data first; only then are the old files moved aside and the copies
        # renamed in. Copied straight in, a full disk halfway left the old files moved away and half a data
        # directory, on which the server started with an empty index.
        staging = data_dir / f"{STAGING}{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%SZ')}"
        staging.mkdir(mode=0o700)
        try:
            for entry in entries:
                shutil.copyfile(backup_dir / entry.name, staging / entry.name)
                os.chmod(staging / entry.name, 0o600)
                fsync_path(staging / entry.name)
            fsync_path(staging)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        aside = _move_aside(data_dir)
        if aside is not None:
            report["replaced"] = str(aside)
        for entry in entries:  # renames within one directory: no space needed, nothing to fail halfway
            os.replace(staging / entry.name, data_dir / entry.name)
        staging.rmdir()
        fsync_path(data_dir)
        if (data_dir / INDEX).exists():
            store = SqliteStore(data_dir / INDEX)
            try:
                report["index_problems"] = store.check_integrity()
                report["index_tracings"] = store.count()
            finally:
                store.close()
            expected = manifest.get("index_tracings")
            if expected is not None and expected != report["index_tracings"]:
                report["index_problems"].append(f"{report['index_tracings']} tracings, the manifest says {expected}")
        if (data_dir / AUDIT).exists():
            verified = verify_file(data_dir / AUDIT)
            report["audit"] = {"ok": verified.ok, "entries": verified.entries, "reason": verified.reason}
    return report


# ---- the commands ----


def cmd_backup(args: argparse.Namespace) -> None:
    try:
        manifest = backup(Path(args.data), Path(args.out), check=not args.no_check)
    except DciiError as error:
        raise SystemExit(f"backup failed: {error.message}") from error
    except OSError as error:
        raise SystemExit(f"backup failed: {error}; the unfinished copy was removed") from error
    audit = manifest.get("audit", {})
    tracings = manifest.get("index_tracings")
    print(
        f"backup of {args.data} in {args.out}: {len(manifest['files'])} files"
        + (f", {tracings:,} tracings" if tracings is not None else "")
        + (f", audit trail {audit['entries']} entries ({audit['reason']})" if audit else "")
    )
    if audit and not audit["ok"]:
        raise SystemExit("the audit trail copied does not verify: see dcii audit verify on the server")


def cmd_restore(args: argparse.Namespace) -> None:
    try:
        report = restore(Path(args.backup), Path(args.data), force=args.force)
    except DciiError as error:
        raise SystemExit(f"restore refused: {error}") from error
    except OSError as error:  # copying (a full disk): the copies are removed, the data directory untouched
        raise SystemExit(f"restore failed, {args.data} unchanged: {error}") from error
    if report.get("replaced"):
        _say(f"the files it replaced are in {report['replaced']}")
    problems = report.get("index_problems", [])
    audit = report.get("audit", {})
    tracings = report.get("index_tracings")
    print(
        f"restored {args.backup} into {args.data}"
        + (f": {tracings:,} tracings, integrity {'ok' if not problems else 'FAILED'}" if tracings is not None else "")
        + (f", audit trail {audit['entries']} entries ({audit['reason']})" if audit else "")
    )
    if problems or (audit and not audit["ok"]):
        raise SystemExit(
            "the restored store does not pass its checks: " + "; ".join([*problems, audit.get("reason", "")])
        )


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser], data_default: str) -> None:
    backup_cmd = commands.add_parser("backup", help="copy the data directory online (SQLite backup API)")
    backup_cmd.add_argument("--data", default=data_default, help="the server's data directory")
    backup_cmd.add_argument("--out", required=True, help="a new (or empty) directory for the backup")
    backup_cmd.add_argument("--no-check", action="store_true", help="skip SQLite's quick_check of the copies")
    backup_cmd.set_defaults(run=cmd_backup)
    restore_cmd = commands.add_parser("restore", help="put a backup into a data directory (no server running)")
    restore_cmd.add_argument("backup", help="the backup directory (with manifest.json)")
    restore_cmd.add_argument("--data", default=data_default, help="the data directory to restore into")
    restore_cmd.add_argument(
        "--force", action="store_true", help="replace existing data (moved into DATA/replaced-<time>/, not deleted)"
    )
    restore_cmd.set_defaults(run=cmd_restore)
