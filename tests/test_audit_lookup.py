"""The audit trail's lookup file (search_service.audit_lookup), on real SQLite files.

The accounting's reads (by tracing, by subject, events by kind) give the same answer whatever the state
of the lookup file: missing, partly copied, complete, copied by the trail's own background thread,
belonging to a trail restored from a backup, or impossible to write. The writes never wait for it, and a
schema-1 trail loses its expression indexes on its first open.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from indexer.model import PersonName, TracingKey
from search_service.accounting import AuditLog, disclosures_for_tracing_file, load_or_create_key
from search_service.audit_lookup import Lookup, lookup_path
from tests.server_proc import wait_until
from tests.test_accounting import NAME, OTHER, OTHER_SSN, SSN, entry

TRACINGS = 5
ROOT = Path(__file__).resolve().parents[1]


def person(i: int) -> tuple[PersonName, str]:
    return (NAME, SSN) if i % 3 else (OTHER, OTHER_SSN)


def fill(log: AuditLog, start: int, count: int) -> None:
    """Disclosures i = start.. (tracing R-{i % 5}, subject by i % 3), an event after every fourth."""
    for i in range(start, start + count):
        name, ssn = person(i)
        log.record_disclosures([entry(f"R-{i % TRACINGS:04d}", name=name, ssn=ssn, operator=f"op-{i}")])
        if i % 4 == 3:
            log.record_event("DISPUTE_OPENED", "privacy-office", {"case": f"case-{i}"})


def expected(count: int) -> tuple[list[list[str]], list[str], list[str], list[str]]:
    """What `read` must give after fill(log, 0, count), worked out from `fill` itself."""
    by_tracing = [[f"op-{i}" for i in range(count) if i % TRACINGS == t] for t in range(TRACINGS)]
    by_name = [f"op-{i}" for i in range(count) if i % 3]
    by_other = [f"op-{i}" for i in range(count) if not i % 3]
    events = [f"case-{i}" for i in range(count) if i % 4 == 3]
    return by_tracing, by_name, by_other, events


def read(log: AuditLog) -> tuple[list[list[str]], list[str], list[str], list[str]]:
    return (
        [[d.recipient_operator for d in log.disclosures_for_tracing("AFOSI", f"R-{t:04d}")] for t in range(TRACINGS)],
        [d.recipient_operator for d in log.disclosures_for_subject(NAME, SSN)],
        [d.recipient_operator for d in log.disclosures_for_subject(OTHER, OTHER_SSN)],
        [e.detail["case"] for e in log.events("DISPUTE_OPENED")],
    )


def copied(db: Path) -> int:
    path = lookup_path(db)
    if not path.exists():
        return 0
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM entry_ref").fetchone()[0])
    except sqlite3.Error:
        return 0
    finally:
        conn.close()


def entries(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT count(*) FROM entry").fetchone()[0])
    finally:
        conn.close()


def catch_up(db: Path) -> int:
    lookup = Lookup(db)
    try:
        return lookup.catch_up()
    finally:
        lookup.close()


def remove_lookup(db: Path) -> None:
    for path in db.parent.glob(lookup_path(db).name + "*"):
        path.unlink()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "audit.db"


@pytest.fixture
def key(db: Path) -> bytes:
    return load_or_create_key(db.with_name("audit.key"))


def test_reads_are_the_same_whatever_the_lookup_holds(db: Path, key: bytes) -> None:
    with AuditLog(db, key=key) as log:
        fill(log, 0, 40)
    remove_lookup(db)
    with AuditLog(db, key=key) as log:
        assert read(log) == expected(40)  # no lookup: the trail is read whole
        assert catch_up(db) == entries(db) == copied(db)
        assert read(log) == expected(40)  # all of it from the lookup
        conn = sqlite3.connect(lookup_path(db))
        conn.execute("DELETE FROM entry_ref WHERE seq > 17")
        conn.commit()
        conn.close()
        assert read(log) == expected(40)  # partly: the rest from the trail
        fill(log, 40, 25)  # the trail's own thread copies the new entries
        wait_until(lambda: copied(db) == entries(db), what="the lookups copied")
        assert read(log) == expected(65)
    # The offline reader (dcii audit disclosures) reads the same way.
    offline = [d.recipient_operator for d in disclosures_for_tracing_file(db, TracingKey("AFOSI", "R-0002"))]
    assert offline == expected(65)[0][2]


def test_the_reads_take_what_the_lookup_names(db: Path, key: bytes) -> None:
    """Below the lookup's last entry only the entries it names are read: the lookup is what serves."""
    with AuditLog(db, key=key) as log:
        fill(log, 0, 12)
        catch_up(db)
        first = log.disclosures_for_tracing("AFOSI", "R-0001")[0]
        conn = sqlite3.connect(lookup_path(db))
        seq = conn.execute("SELECT min(seq) FROM entry_ref WHERE record_number = 'R-0001'").fetchone()[0]
        conn.execute("DELETE FROM entry_ref WHERE seq = ?", (seq,))
        conn.commit()
        conn.close()
        assert first not in log.disclosures_for_tracing("AFOSI", "R-0001")
        remove_lookup(db)
        assert log.disclosures_for_tracing("AFOSI", "R-0001")[0] == first


def test_a_lookup_of_a_trail_restored_from_a_backup_is_not_trusted_and_is_made_afresh(
    db: Path, key: bytes, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    backup = tmp_path / "backup"
    backup.mkdir()
    with AuditLog(db, key=key) as log:
        fill(log, 0, 10)
    for path in (db, db.with_name("audit.db.head")):
        shutil.copy(path, backup / path.name)
    with AuditLog(db, key=key) as log:
        fill(log, 10, 20)
    catch_up(db)  # the lookup now covers seqs the restored trail will write again, differently
    shutil.copy(lookup_path(db), backup / "stale.lookup.db")
    for path in (db, db.with_name("audit.db.head")):
        shutil.copy(backup / path.name, path)
    for stale in db.parent.glob("audit.db-*"):
        stale.unlink()
    restored = entries(db)
    with caplog.at_level(logging.WARNING, logger="search_service.audit_lookup"), AuditLog(db, key=key) as log:
        for i in range(5):
            log.record_disclosures([entry("R-NEW", operator=f"new-{i}")])
        found = [d.recipient_operator for d in log.disclosures_for_tracing("AFOSI", "R-NEW")]
        assert found == [f"new-{i}" for i in range(5)]
        assert log.verify().ok
    # The stale lookup as the readers would find it had nothing been copied since the restore.
    remove_lookup(db)
    shutil.copy(backup / "stale.lookup.db", lookup_path(db))
    offline = disclosures_for_tracing_file(db, TracingKey("AFOSI", "R-NEW"))
    assert [d.recipient_operator for d in offline] == found
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="search_service.audit_lookup"):
        catch_up(db)
    assert "belongs to another trail" in caplog.text
    assert copied(db) == entries(db) == restored + 5
    with AuditLog(db, key=key) as log:
        assert [d.recipient_operator for d in log.disclosures_for_tracing("AFOSI", "R-NEW")] == found


def test_writes_and_reads_go_on_when_the_lookup_cannot_be_written(
    db: Path, key: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    db.parent.mkdir(parents=True, exist_ok=True)
    lookup_path(db).mkdir()  # a directory where the file should be: SQLite cannot open it
    with caplog.at_level(logging.WARNING, logger="search_service.audit_checkpoint"), AuditLog(db, key=key) as log:
        fill(log, 0, 30)
        wait_until(lambda: "audit lookups not copied" in caplog.text, what="the failure logged")
        fill(log, 30, 10)
        assert read(log) == expected(40)
    assert caplog.text.count("audit lookups not copied") == 1  # once, not every round


def test_a_schema_1_trail_drops_its_expression_indexes_and_reads_the_same(db: Path, key: bytes) -> None:
    with AuditLog(db, key=key) as log:
        fill(log, 0, 20)
    remove_lookup(db)
    conn = sqlite3.connect(db)
    conn.executescript(
        """
        CREATE INDEX entry_tracing
            ON entry (json_extract(canonical, '$.agency'), json_extract(canonical, '$.record_number'));
        CREATE INDEX entry_subject ON entry (json_extract(canonical, '$.subject'));
        CREATE INDEX entry_kind ON entry (json_extract(canonical, '$.kind'));
        PRAGMA user_version = 1;
        """
    )
    conn.close()
    with AuditLog(db, key=key) as log:
        assert read(log) == expected(20)
        fill(log, 20, 5)
        assert read(log) == expected(25)
        assert log.verify().ok
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'entry_%'").fetchall() == []
    assert conn.execute("PRAGMA user_version").fetchone() == (2,)
    conn.close()


def test_a_lookup_made_before_persons_were_named_is_read_around_then_made_again(db: Path, key: bytes) -> None:
    """A lookup file without the person column: reads by person scan the trail (its rows cannot say who),
    and the next writer empties it and adds the column in one transaction, then copies the trail again."""
    with AuditLog(db, key=key) as log:
        fill(log, 0, 20)
    catch_up(db)
    conn = sqlite3.connect(lookup_path(db))
    conn.execute("DROP INDEX entry_ref_person")
    conn.execute("ALTER TABLE entry_ref DROP COLUMN person")
    conn.commit()
    conn.close()
    mine = [f"op-{i}" for i in range(25) if i % 3]
    with AuditLog(db, key=key) as log:
        assert [d.recipient_operator for d in log.disclosures_for_person(SSN)] == mine[:13]  # the trail, scanned
        fill(log, 20, 5)  # the trail's thread opens the lookup to copy these: made again first
        wait_until(lambda: copied(db) == entries(db), what="the lookup made again")
        assert [d.recipient_operator for d in log.disclosures_for_person(SSN)] == mine
        assert read(log) == expected(25)
    conn = sqlite3.connect(lookup_path(db))
    assert conn.execute("SELECT count(*) FROM entry_ref WHERE person IS NOT NULL").fetchone()[0] == 25
    conn.close()


def mark(db: Path, name: str, boot: str) -> None:
    conn = sqlite3.connect(lookup_path(db))
    conn.execute("INSERT INTO lookup_meta VALUES (?, ?)", (name, boot))
    conn.commit()
    conn.close()


def marks(db: Path) -> list[str]:
    conn = sqlite3.connect(lookup_path(db))
    try:
        return [str(row[0]) for row in conn.execute("SELECT name FROM lookup_meta")]
    finally:
        conn.close()


def test_a_lookup_its_writer_had_open_when_the_machine_went_down_is_ignored_then_made_afresh(
    db: Path, key: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with AuditLog(db, key=key) as log:
        fill(log, 0, 20)
    catch_up(db)
    assert marks(db) == []  # a closed writer takes its mark away
    # A writer of another boot (its copies perhaps torn), with one row of the lookup lost: readers must
    # not trust the lookup, and the next writer starts it again.
    mark(db, "writer:1:feedfeedfeedfeed", "an-earlier-boot")
    conn = sqlite3.connect(lookup_path(db))
    conn.execute("DELETE FROM entry_ref WHERE seq = (SELECT min(seq) FROM entry_ref WHERE record_number = 'R-0003')")
    conn.commit()
    conn.close()
    with AuditLog(db, key=key) as log:
        assert read(log) == expected(20)
    with caplog.at_level(logging.WARNING, logger="search_service.audit_lookup"):
        assert catch_up(db) == entries(db)
    assert "torn by a crash of the machine" in caplog.text
    assert marks(db) == []
    # A writer of this boot that died (killed: the machine kept its copies) is not a reason to start again.
    mark(db, "writer:999999999:feedfeedfeedfeed", Path("/proc/sys/kernel/random/boot_id").read_text().strip())
    with AuditLog(db, key=key) as log:
        fill(log, 20, 4)
    catch_up(db)
    assert copied(db) == entries(db) and marks(db) == []
    with AuditLog(db, key=key) as log:
        assert read(log) == expected(24)


def test_a_damaged_lookup_file_is_read_around_and_made_afresh(db: Path, key: bytes) -> None:
    with AuditLog(db, key=key) as log:
        fill(log, 0, 16)
    remove_lookup(db)
    lookup_path(db).write_bytes(b"not a database at all" * 300)
    with AuditLog(db, key=key) as log:
        assert read(log) == expected(16)
        fill(log, 16, 4)
        wait_until(lambda: copied(db) == entries(db), what="the lookup made afresh")
        assert read(log) == expected(20)


def test_a_backlog_is_copied_over_several_rounds_until_none_is_left(db: Path, key: bytes) -> None:
    """More than a round's batches (a trail just upgraded): the background thread keeps copying, round
    after round, without further writes to wake it."""
    from search_service.audit_lookup import BATCH, ROUND_BATCHES

    backlog = BATCH * ROUND_BATCHES + 5_000
    with AuditLog(db, key=key) as log:
        log.record_disclosure_groups([[entry(f"R-{i:06d}")] for i in range(backlog)])
    remove_lookup(db)
    with AuditLog(db, key=key) as log:
        fill(log, 0, 1)  # one write wakes the thread
        wait_until(lambda: copied(db) == entries(db), timeout=120, what="the whole backlog copied")
        assert [d.recipient_operator for d in log.disclosures_for_tracing("AFOSI", "R-0000")] == ["op-0"]


def _deleted_lookup_files(db: Path) -> list[str]:
    """The files of `db`'s lookup this process holds open that are no longer in the directory."""
    found = []
    for fd in Path("/proc/self/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith(str(lookup_path(db))) and target.endswith(" (deleted)"):
                found.append(target)
    return found


def test_another_process_closing_the_lookup_leaves_this_ones_wal_in_place(db: Path, key: bytes) -> None:
    """A CLI writing the trail while the server runs (`dcii accredit`, `dcii privacy`) opens and closes the lookup
    too. The server's fsync of the lookup once closed a descriptor of it, which dropped every POSIX lock the
    server held on the file, its SQLite connection's too: the CLI's connection, closing, then took itself for
    the last and deleted the WAL and shared memory from under the server, whose copies went on into a
    deleted WAL (a review: 28 reads of the trail whole in a demo's log)."""
    with AuditLog(db, key=key) as log:
        fill(log, 0, 8)
        wait_until(lambda: copied(db) == entries(db), timeout=60, what="the lookup caught up")
        wal = lookup_path(db).with_name(lookup_path(db).name + "-wal")
        assert wal.exists()
        cli = (
            "import sys; from pathlib import Path; from search_service.accounting import AuditLog;"
            "from search_service.audit_lookup import Lookup;"
            "db = Path(sys.argv[1]); log = AuditLog(db, key=bytes.fromhex(sys.argv[2]));"
            "log.record_event('DISPUTE_OPENED', 'cli', {'case': 'from-the-cli'});"
            "lookup = Lookup(db); lookup.catch_up(); lookup.close(); log.close()"
        )
        subprocess.run([sys.executable, "-c", cli, str(db), key.hex()], check=True, cwd=ROOT, timeout=60)
        assert wal.exists() and not _deleted_lookup_files(db)
        fill(log, 8, 8)  # the server's copies go on into the file every reader sees
        wait_until(lambda: copied(db) == entries(db), timeout=60, what="the server's copies in the lookup file")
        assert not _deleted_lookup_files(db)
        assert read(log) == (*expected(16)[:3], [*expected(16)[3][:2], "from-the-cli", *expected(16)[3][2:]])
