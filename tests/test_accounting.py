"""The accounting of disclosures and the audit trail (issue 4), on real SQLite files: recording and finding
entries, no PII in the files, the key file, and the throughput (slow).

Beside it, taking the fixtures and helpers defined here: `verify` naming the first bad entry for each kind of
tampering (done with sqlite3 and file writes, as an attacker would) in tests/test_accounting_verify.py; failing
closed when the trail cannot be written (locked, read-only, disk full) and concurrent writers in
tests/test_accounting_writers.py; the `dcii audit` commands, run as subprocesses, in tests/test_accounting_cli.py.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import stat
import threading
import time
from pathlib import Path

import pytest

from indexer.exc import FailedPrecondition
from indexer.model import PersonName, TracingKey
from search_service.accounting import AuditLog, DisclosureEntry, load_or_create_key, verify_file

NAME = PersonName("Zygmuntowicz", "Bartholomew", "Quentin")
SSN = "231-45-8670"
OTHER = PersonName("Whitfield", "Harold")
OTHER_SSN = "318-52-4471"
ENTRIES = 10


def entry(
    record: str = "R-0001",
    *,
    agency: str = "AFOSI",
    name: PersonName | None = NAME,
    ssn: str = SSN,
    method: str = "ONLINE",
    purpose: str = "SECURITY_CLEARANCE",
    activity: str = "ARMY-CCF-01",
    operator: str = "adj-0007",
    law_enforcement: bool = False,
) -> DisclosureEntry:
    return DisclosureEntry(TracingKey(agency, record), name, ssn, method, purpose, activity, operator, law_enforcement)


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2025, 3, 14, 9, 26, 53, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        self.now += dt.timedelta(seconds=1)
        return self.now


@pytest.fixture
def key(tmp_path: Path) -> bytes:
    return load_or_create_key(tmp_path / "data" / "audit.key")


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "audit.db"


@pytest.fixture
def trail(db: Path, key: bytes) -> Path:
    """A closed trail of ENTRIES entries, one per call: seq k is the disclosure of R-000k."""
    with AuditLog(db, key=key) as log:
        for k in range(1, ENTRIES + 1):
            log.record_disclosures([entry(f"R-{k:04d}")])
    return db


def head_file(db: Path) -> Path:
    return db.with_name(db.name + ".head")


def tamper(db: Path, *statements: str) -> None:
    """What an attacker with sqlite3 does: drop the guard triggers, then edit."""
    conn = sqlite3.connect(db)
    try:
        conn.execute("DROP TRIGGER IF EXISTS entry_never_deleted")
        conn.execute("DROP TRIGGER IF EXISTS entry_never_changed")
        for statement in statements:
            conn.execute(statement)
        conn.commit()
    finally:
        conn.close()


# ---- recording and finding ----


def test_disclosures_are_found_by_tracing_with_every_opnav_5211_9_field(db: Path, key: bytes) -> None:
    clock = Clock()
    with AuditLog(db, key=key, clock=clock) as log:
        first = log.record_disclosures([entry("R-1"), entry("R-2", law_enforcement=True)])
        second = log.record_disclosures(
            [entry("R-1", method="BATCH", purpose="INSTALLATION_ACCESS", activity="NAVY-BASE-9", operator="")]
        )
        found = log.disclosures_for_tracing("AFOSI", "R-1")
        assert [d.disclosure_id for d in found] == [first, second]
        assert len(first) == 32 and int(first, 16) >= 0 and first != second
        online, batch = found
        assert online.tracing == TracingKey("AFOSI", "R-1")
        assert online.disclosed_at == dt.datetime(2025, 3, 14, 9, 26, 54, tzinfo=dt.UTC)
        assert (online.method, online.purpose, online.recipient_activity, online.recipient_operator) == (
            "ONLINE",
            "SECURITY_CLEARANCE",
            "ARMY-CCF-01",
            "adj-0007",
        )
        assert not online.law_enforcement
        assert batch.disclosed_at == dt.datetime(2025, 3, 14, 9, 26, 55, tzinfo=dt.UTC)
        assert (batch.method, batch.purpose, batch.recipient_activity, batch.recipient_operator) == (
            "BATCH",
            "INSTALLATION_ACCESS",
            "NAVY-BASE-9",
            "",
        )
        [r2] = log.disclosures_for_tracing("AFOSI", "R-2")
        assert r2.disclosure_id == first and r2.law_enforcement
        assert log.disclosures_for_tracing("AFOSI", "R-3") == []
        assert log.disclosures_for_tracing("NCIS", "R-1") == []
        assert log.verify().ok


def test_disclosures_are_found_by_subject_through_the_keyed_hash(db: Path, key: bytes) -> None:
    with AuditLog(db, key=key) as log:
        log.record_disclosures([entry("R-1"), entry("R-2", agency="NCIS"), entry("R-3", name=OTHER, ssn=OTHER_SSN)])
        log.record_disclosures([entry("T-1", name=None, ssn="")])  # an impersonal title: no subject
        log.record_disclosures([entry("R-4", ssn="")])  # a tracing without SSN
        # Spelling, case, spacing and middle name do not matter; the SSN's digits do.
        same_person = PersonName(" zygmuntowicz ", "BARTHOLOMEW")
        assert {str(d.tracing) for d in log.disclosures_for_subject(same_person, "231458670")} == {
            "AFOSI/R-1",
            "NCIS/R-2",
        }
        assert log.disclosures_for_subject(NAME, "231-45-8671") == []
        assert log.disclosures_for_subject(PersonName("Zygmuntowicz", "Bart"), SSN) == []
        assert [str(d.tracing) for d in log.disclosures_for_subject(OTHER, OTHER_SSN)] == ["AFOSI/R-3"]
        with pytest.raises(ValueError, match="SSN"):
            log.disclosures_for_subject(NAME, "")
    # Another key cannot open this trail (it would silently find no one).
    with pytest.raises(FailedPrecondition, match="audit key"):
        AuditLog(db, key=b"k" * 32)


def test_events_are_chained_beside_the_disclosures(db: Path, key: bytes) -> None:
    with AuditLog(db, key=key) as log:
        log.record_event("DELETION", "retention", {"agency": "AFOSI", "record_number": "R-1", "why": "15 years"})
        log.record_disclosures([entry()])
        log.record_event("ACCESS_REQUEST", "privacy-01", {"subject": log.subject_ref(NAME, SSN)})
        events = log.events()
        assert [(e.seq, e.kind, e.actor) for e in events] == [
            (1, "DELETION", "retention"),
            (3, "ACCESS_REQUEST", "privacy-01"),
        ]
        assert events[0].detail["why"] == "15 years"
        assert [e.seq for e in log.events("ACCESS_REQUEST")] == [3]
        for kind in ("DISCLOSURE", "AUDIT_ANCHOR_MISMATCH", "lower", ""):
            with pytest.raises(ValueError):
                log.record_event(kind, "x", {})
        assert log.verify().entries == 3


def test_a_bad_entry_refuses_the_whole_batch(trail: Path, key: bytes) -> None:
    before = head_file(trail).read_bytes()
    with AuditLog(trail, key=key) as log:
        for bad in (entry(method="FAX"), entry(purpose=""), entry(activity=""), entry(record="")):
            with pytest.raises(ValueError):
                log.record_disclosures([entry("R-GOOD"), bad])
        assert log.disclosures_for_tracing("AFOSI", "R-GOOD") == []
        assert log.verify().entries == ENTRIES
    assert head_file(trail).read_bytes() == before


def test_groups_are_one_transaction_each_with_its_own_disclosure_id(trail: Path, key: bytes) -> None:
    with AuditLog(trail, key=key) as log:
        ids = log.record_disclosure_groups([[entry("G-1"), entry("G-2")], [], [entry("G-3", method="BATCH")]])
        assert len(set(ids)) == 3
        assert [d.disclosure_id for d in log.disclosures_for_tracing("AFOSI", "G-1")] == [ids[0]]
        assert [d.disclosure_id for d in log.disclosures_for_tracing("AFOSI", "G-2")] == [ids[0]]
        assert [d.disclosure_id for d in log.disclosures_for_tracing("AFOSI", "G-3")] == [ids[2]]
        assert log.verify().entries == ENTRIES + 3
        # One bad entry in any group refuses every group.
        with pytest.raises(ValueError):
            log.record_disclosure_groups([[entry("G-4")], [entry("G-5", purpose="")]])
        assert log.disclosures_for_tracing("AFOSI", "G-4") == []
        assert log.record_disclosure_groups([[], []]) and log.verify().entries == ENTRIES + 3


def test_entries_are_never_deleted(trail: Path, key: bytes) -> None:
    # No deletion API at all, and SQL that would delete or change an entry is refused by triggers.
    public = [name for name in dir(AuditLog) if not name.startswith("_")]
    assert not [name for name in public if any(w in name for w in ("delete", "purge", "remove", "expire"))]
    conn = sqlite3.connect(trail)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="never deleted"):
            conn.execute("DELETE FROM entry WHERE seq = 1")
        with pytest.raises(sqlite3.IntegrityError, match="never changed"):
            conn.execute("UPDATE entry SET canonical = '{}' WHERE seq = 1")
    finally:
        conn.close()
    assert verify_file(trail).ok


def test_no_name_or_ssn_in_the_files(db: Path, key: bytes) -> None:
    with AuditLog(db, key=key) as log:
        log.record_disclosures([entry(f"R-{k}") for k in range(50)])
        log.record_disclosures([entry("R-X", name=OTHER, ssn=OTHER_SSN)])
        log.record_event("ACCESS_REQUEST", "privacy-01", {"subject": log.subject_ref(NAME, SSN)})
        open_files = {p.name: p.read_bytes() for p in db.parent.iterdir() if p.name != "audit.key"}
    closed_files = {p.name: p.read_bytes() for p in db.parent.iterdir() if p.name != "audit.key"}
    assert {"audit.db", "audit.db-wal", "audit.db.head"} <= set(open_files)
    secrets = []
    for name, ssn in ((NAME, SSN), (OTHER, OTHER_SSN)):
        secrets += [ssn, ssn.replace("-", ""), ssn.replace("-", " ")]
        for part in filter(None, (name.surname, name.given_name, name.middle_name)):
            secrets += [part, part.upper(), part.lower()]
    for files in (open_files, closed_files):
        everything = b"".join(files.values())
        assert b"R-49" in everything and b"AFOSI" in everything  # we are reading the right bytes
        for secret in secrets:
            for encoding in ("utf-8", "utf-16-le"):
                assert secret.encode(encoding) not in everything, secret


# ---- the key ----


def test_the_key_file_is_made_once_private_and_refused_when_open_to_others(tmp_path: Path) -> None:
    path = tmp_path / "k" / "audit.key"
    made = load_or_create_key(path)
    assert len(made) == 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(path) == made
    path.chmod(0o644)
    with pytest.raises(FailedPrecondition, match="0600"):
        load_or_create_key(path)


# ---- throughput (pytest -m slow -s tests/test_accounting.py) ----


@pytest.mark.slow
def test_throughput(db: Path, key: bytes) -> None:
    with AuditLog(db, key=key) as log:
        for batch in (1, 10, 50, 200, 1000):
            calls = max(20, 4000 // batch)
            started = time.perf_counter()
            for c in range(calls):
                log.record_disclosures([entry(f"R-{c}-{i}") for i in range(batch)])
            elapsed = time.perf_counter() - started
            print(
                f"\nbatch {batch:5d}: {calls / elapsed:8.0f} calls/s {calls * batch / elapsed:9.0f} entries/s"
                f" ({elapsed / calls * 1000:.2f} ms per call)"
            )
        counter = iter(range(10**9))

        def hammer() -> None:
            for _ in range(100):
                log.record_disclosures([entry(f"C-{next(counter)}") for _ in range(20)])

        started = time.perf_counter()
        workers = [threading.Thread(target=hammer) for _ in range(8)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - started
        print(f"\n8 threads x 100 calls x 20 entries: {16000 / elapsed:.0f} entries/s, {800 / elapsed:.0f} calls/s")
        started = time.perf_counter()
        result = log.verify()
        print(f"\nverify: {result.entries} entries in {time.perf_counter() - started:.2f} s")
        assert result.ok


def test_a_newer_programs_trail_is_refused_and_left_as_it_is(trail: Path, key: bytes) -> None:
    """Opened, a trail of a newer schema was taken as the current one and written to (a review of upgrades:
    a rollback of the program would chain its entries onto a trail it does not know)."""
    conn = sqlite3.connect(trail, isolation_level=None)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    before = trail.read_bytes()
    with pytest.raises(FailedPrecondition, match="audit trail of schema 99, newer than this program's"):
        AuditLog(trail, key=key)
    assert trail.read_bytes() == before
