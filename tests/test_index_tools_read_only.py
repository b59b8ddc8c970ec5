"""The tools that only look at an embedded store leave its file exactly as it was (durability review 1):
`dcii index check`, a migration's source and a retention dry run opened it as the server does, which set its
journal mode and made its schema, so a backup's copy, checked, was refused by `dcii restore` as altered, and a
check pointed at registry.db gave the registry the index's tables and said "0 live tracings"."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from dcii.cli.backup import backup, restore
from indexer.exc import FailedPrecondition
from indexer.store.base import Upsert
from indexer.store.sqlite import SqliteStore
from search_service.registry import Registry
from tests.support import ROOT
from tests.test_store_lifecycle import file_tracing, nac


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _dcii(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "dcii.cli.main", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def backed_up(tmp_path: Path) -> Path:
    """A backup of a data directory holding a registry and an index of three tracings."""
    data = tmp_path / "data"
    Registry(data / "registry.db").close()
    store = SqliteStore(data / "index.db")
    store.write(
        [Upsert(file_tracing("F-1")), Upsert(file_tracing("F-2")), Upsert(nac("NH-1", (2001, 3, 1)))], actor="t"
    )
    store.close()
    backup(data, tmp_path / "bk")
    return tmp_path / "bk"


def test_looking_at_a_backups_copy_changes_no_byte_of_it(backed_up: Path, tmp_path: Path) -> None:
    index = backed_up / "index.db"
    before = {p.name: _digest(p) for p in backed_up.iterdir() if p.is_file()}
    checked = _dcii("index", "check", "--store", str(index))
    assert checked.returncode == 0 and "3 live tracings" in checked.stderr, checked.stderr
    due = _dcii("retention", "run", "--data", str(backed_up), "--dry-run", "--today", "2030-01-01")
    assert due.returncode == 0 and "1 would be removed; dry run: nothing removed" in due.stdout, due.stderr
    moved = _dcii("index", "migrate", "--from", str(index), "--to", str(tmp_path / "copy.db"))
    assert moved.returncode == 0 and "the target holds 3 live tracings" in moved.stderr, moved.stderr
    assert {p.name: _digest(p) for p in backed_up.iterdir() if p.is_file()} == before
    assert sorted(p.name for p in backed_up.iterdir()) == sorted(before)  # no -wal, -shm or -journal left
    restore(backed_up, tmp_path / "restored")  # the manifest still holds: the backup restores
    assert (tmp_path / "restored" / "index.db").is_file()


@pytest.mark.parametrize("name", ["registry.db", "manifest.json"])
def test_a_file_that_is_not_an_index_store_is_refused_and_left_alone(backed_up: Path, name: str) -> None:
    wrong = backed_up / name
    before = _digest(wrong)
    for command in (
        ("index", "check", "--store"),
        ("index", "repair", "--store"),
        ("index", "migrate", "--to", "x.db", "--from"),
    ):
        refused = _dcii(*command, str(wrong))
        assert refused.returncode == 1, refused.stderr
        assert "not an index store" in refused.stderr or "cannot be read as an index store" in refused.stderr
        assert "Traceback" not in refused.stderr
    assert _digest(wrong) == before


def test_a_file_of_an_earlier_schema_is_migrated_and_repaired_as_before_and_checked_after(tmp_path: Path) -> None:
    """A schema-5 file (the live count the only difference): `dcii index check` must not upgrade it in place
    (a backup's copy), so it says what to do; a migration from it and a repair upgrade it as they always did
    (diff review 5: they were refused too)."""
    old = tmp_path / "old.db"
    store = SqliteStore(old)
    store.write([Upsert(file_tracing(f"F-{i}")) for i in range(3)], actor="t")
    store.close()
    conn = sqlite3.connect(old)
    for trigger in ("live_count_insert", "live_count_update", "live_count_delete"):
        conn.execute(f"DROP TRIGGER {trigger}")
    conn.execute("DROP TABLE live_count")
    conn.execute("UPDATE meta SET value = '5' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    before = _digest(old)
    checked = _dcii("index", "check", "--store", str(old))
    assert (
        checked.returncode == 1
        and "earlier schema version (5)" in checked.stderr
        and "migrate --from" in checked.stderr
    )
    assert _digest(old) == before
    moved = _dcii("index", "migrate", "--from", str(old), "--to", str(tmp_path / "new.db"))
    assert moved.returncode == 0 and "the target holds 3 live tracings" in moved.stderr, moved.stderr
    assert _dcii("index", "check", "--store", str(tmp_path / "new.db")).returncode == 0
    assert _dcii("index", "repair", "--store", str(old)).returncode == 0
    conn = sqlite3.connect(old)  # and one a newer dcii wrote: named so, not sent to migrate (second diff review 10)
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()
    newer_target = str(tmp_path / "n2.db")
    for command in (
        ("index", "check", "--store", str(old)),
        ("index", "migrate", "--to", newer_target, "--from", str(old)),
    ):
        newer = _dcii(*command)
        assert newer.returncode == 1 and "newer than this program's" in newer.stderr, newer.stderr


def test_a_server_refuses_a_newer_programs_store_in_one_line_and_changes_no_byte(tmp_path: Path) -> None:
    """The writer refused it only once it had made its tables and switched its journal, with a traceback
    (a review of upgrades): a rollback of the program is refused before it touches the file."""
    path = tmp_path / "index.db"
    SqliteStore(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.execute("PRAGMA journal_mode=DELETE")  # as a backup's copy is: opened for writing, it became WAL
    conn.close()
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(FailedPrecondition, match="schema version 99, newer than this program's"):
        SqliteStore(path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    assert not path.with_name("index.db-wal").exists()
