"""The embedded store's count of live tracings, kept by triggers (indexer.store.sqlite_schema, schema 6):
counted once when an older file is opened, exact after every kind of change, reported by the integrity
check when it strays from a walk of the table, and mended by the repair."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from indexer.model import TracingKey, TracingType
from indexer.store.base import Delete, Replace, Upsert
from indexer.store.sqlite import SqliteStore
from indexer.store.sqlite_schema import SCHEMA_VERSION
from tests import factories as f
from tests.store_backends import NOW
from tests.test_store_lifecycle import _checked, file_tracing, nac


def _walked(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        count = int(conn.execute("SELECT count(*) FROM tracing WHERE live = 1").fetchone()[0])
    conn.close()
    return count


def test_every_kind_of_change_keeps_the_count_exact(tmp_path: Path) -> None:
    path = tmp_path / "index.db"
    store = SqliteStore(path, clock=lambda: NOW)
    try:
        assert store.count() == 0
        store.write([Upsert(file_tracing(f"F-{i}")) for i in range(5)], actor="NCIS")
        assert store.count() == 5
        store.write([Upsert(_checked(f.person("NCIS", "F-0", 2, given="Harry")))], actor="NCIS")  # a new version
        store.write([Delete(TracingKey("NCIS", "F-1"), 1, "DELETED BY OWNING AGENCY")], actor="NCIS")
        assert store.count() == 4
        store.write([Delete(TracingKey("NCIS", "F-1"), 1, "DELETED BY OWNING AGENCY")], actor="NCIS")  # again
        store.write([Upsert(_checked(f.person("NCIS", "F-1", 2)))], actor="NCIS")  # back to life
        assert store.count() == 5
        old = _checked(f.open_case(record="OC-1"))
        store.write([Upsert(old)], actor="NCIS")
        new = _checked(f.person("NCIS", "F-9", 2))
        store.write([Replace(old.key, TracingType.OPEN_CASE, new)], actor="NCIS")  # one gives way to another
        assert store.count() == 6
        store.write([Upsert(nac("NH-1", (2012, 5, 1))), Upsert(nac("NH-2", (2018, 5, 1)))], actor="DSS")
        assert store.count() == 7  # the favorable history superseded the earlier one
        assert store.count() == _walked(path)
        assert store.check_integrity() == [] and store.repair() == []
    finally:
        store.close()


def test_a_schema_5_file_is_counted_once_when_opened(tmp_path: Path) -> None:
    path = tmp_path / "five.db"
    store = SqliteStore(path, clock=lambda: NOW)
    store.write([Upsert(file_tracing(f"F-{i}")) for i in range(7)], actor="NCIS")
    store.write([Delete(TracingKey("NCIS", "F-3"), 1, "DELETED BY OWNING AGENCY")], actor="NCIS")
    store.close()
    with sqlite3.connect(path) as conn:  # the file as schema 5 left it: no count, no triggers
        for trigger in ("live_count_insert", "live_count_update", "live_count_delete"):
            conn.execute(f"DROP TRIGGER {trigger}")
        conn.execute("DROP TABLE live_count")
        conn.execute("UPDATE meta SET value = '5' WHERE key = 'schema_version'")
    conn.close()

    again = SqliteStore(path, clock=lambda: NOW)
    try:
        assert again.count() == 6
        again.write([Upsert(file_tracing("F-7")), Delete(TracingKey("NCIS", "F-0"), 1, "DELETED")], actor="NCIS")
        assert again.count() == 6 == _walked(path)
        assert again.check_integrity() == []
    finally:
        again.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (SCHEMA_VERSION,)
    conn.close()


def test_a_count_that_strayed_is_reported_and_recounted(tmp_path: Path) -> None:
    path = tmp_path / "index.db"
    store = SqliteStore(path, clock=lambda: NOW)
    try:
        store.write([Upsert(file_tracing(f"F-{i}")) for i in range(4)], actor="NCIS")
        with sqlite3.connect(path) as conn:  # an edit by hand
            conn.execute("UPDATE live_count SET n = n + 3")
        conn.close()
        assert store.check_integrity() == ["the live count is 7 but 4 tracings are live"]
        assert store.repair() == ["the live count recounted"]
        assert (store.count(), store.check_integrity(), store.repair()) == (4, [], [])
    finally:
        store.close()
