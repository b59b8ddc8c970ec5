"""The accounting of disclosures and the audit trail (issue 4), on real SQLite files.

Recording and finding entries, no PII in the files, `verify` naming the first bad entry for each kind
of tampering (done with sqlite3 and file writes, as an attacker would), failing closed when the trail
cannot be written (locked, read-only, disk full), concurrent writers, and the `dcii audit` commands
run as subprocesses.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from dcii.cli import audit as audit_cli
from indexer.exc import FailedPrecondition, Unavailable
from indexer.model import PersonName, TracingKey
from search_service.accounting import (
    AuditLog,
    DisclosureEntry,
    VerifyResult,
    load_or_create_key,
    verify_file,
)
from tests.support import ROOT

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


def rows(db: Path) -> list[tuple[int, str]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT seq, canonical FROM entry ORDER BY seq").fetchall()
    finally:
        conn.close()


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


def rehash_from(db: Path, seq: int) -> None:
    """Recompute entry `seq`'s hash from its (altered) content, as a careful attacker would."""
    conn = sqlite3.connect(db)
    try:
        prev, text = conn.execute("SELECT prev_hash, canonical FROM entry WHERE seq = ?", (seq,)).fetchone()
        digest = hashlib.sha256(bytes.fromhex(prev) + text.encode()).hexdigest()
        conn.execute("DROP TRIGGER IF EXISTS entry_never_changed")
        conn.execute("UPDATE entry SET hash = ? WHERE seq = ?", (digest, seq))
        conn.commit()
    finally:
        conn.close()


def assert_broken(db: Path, key: bytes, first_bad: int | None, words: str) -> None:
    for result in (verify_file(db), _verify_online(db, key)):
        assert not result.ok, result
        assert result.first_bad == first_bad, result
        assert words in result.reason, result


def _verify_online(db: Path, key: bytes) -> VerifyResult:
    with AuditLog(db, key=key) as log:
        return log.verify()


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


# ---- tamper evidence ----


def test_an_untouched_trail_verifies(trail: Path, key: bytes) -> None:
    for result in (verify_file(trail), _verify_online(trail, key)):
        assert result.ok and result.entries == ENTRIES and result.first_bad is None, result
    record = json.loads(head_file(trail).read_text())
    assert record["seq"] == ENTRIES and len(record["hash"]) == 64


def test_each_row_is_seq_canonical_json_prev_hash_and_hash(trail: Path) -> None:
    conn = sqlite3.connect(trail)
    try:
        table = conn.execute("SELECT seq, canonical, prev_hash, hash FROM entry ORDER BY seq").fetchall()
    finally:
        conn.close()
    prev = "0" * 64
    for seq, text, prev_hash, digest in table:
        document = json.loads(text)
        assert text == json.dumps(document, sort_keys=True, separators=(",", ":"))
        assert document["seq"] == seq and document["record_number"] == f"R-{seq:04d}"
        assert prev_hash == prev
        assert digest == hashlib.sha256(bytes.fromhex(prev_hash) + text.encode()).hexdigest()
        prev = digest
    assert json.loads(head_file(trail).read_text()) == {"seq": ENTRIES, "hash": prev}


@pytest.mark.parametrize(
    ("statements", "rehash", "first_bad", "words"),
    [
        (["UPDATE entry SET canonical = replace(canonical, 'ONLINE', 'BATCH') WHERE seq = 4"], None, 4, "altered"),
        (["UPDATE entry SET canonical = replace(canonical, 'adj-0007', 'adj-0008') WHERE seq = 4"], 4, 4, "altered"),
        (["UPDATE entry SET canonical = replace(canonical, 'R-0001', 'R-9999') WHERE seq = 1"], None, 1, "altered"),
        (["UPDATE entry SET canonical = replace(canonical, '\"v\":1', '\"v\": 1') WHERE seq = 6"], None, 6, "altered"),
        (["UPDATE entry SET canonical = replace(canonical, 'R-0010', 'R-9999') WHERE seq = 10"], 10, 10, "head"),
        (["DELETE FROM entry WHERE seq = 5"], None, 5, "entry 5 is missing"),
        (["DELETE FROM entry WHERE seq = 1"], None, 1, "entry 1 is missing"),
        (
            [
                "UPDATE entry SET seq = -1 WHERE seq = 3",
                "UPDATE entry SET seq = 3 WHERE seq = 7",
                "UPDATE entry SET seq = 7 WHERE seq = -1",
            ],
            None,
            3,
            "reordered",
        ),
        (["DELETE FROM entry WHERE seq >= 8"], None, 8, "tail was cut (database head)"),
        (
            [
                "DELETE FROM entry WHERE seq >= 8",
                "UPDATE head SET seq = 7, hash = (SELECT hash FROM entry WHERE seq = 7)",
            ],
            None,
            8,
            "tail was cut (head file)",
        ),
        (["DELETE FROM head"], None, None, "database is missing"),
    ],
    ids=[
        "alter",
        "alter-and-rehash",
        "alter-first",
        "alter-spacing",
        "alter-last-and-rehash",
        "remove-middle",
        "remove-first",
        "reorder",
        "cut-tail",
        "cut-tail-and-database-head",
        "remove-database-head",
    ],
)
def test_verify_names_the_first_bad_entry(
    trail: Path, key: bytes, statements: list[str], rehash: int | None, first_bad: int | None, words: str
) -> None:
    tamper(trail, *statements)
    if rehash is not None:
        rehash_from(trail, rehash)
    assert_broken(trail, key, first_bad, words)


@pytest.mark.parametrize("keep", [0, 12, -1], ids=["emptied", "cut-short", "removed"])
def test_verify_catches_a_truncated_or_missing_head_file(trail: Path, key: bytes, keep: int) -> None:
    path = head_file(trail)
    if keep < 0:
        path.unlink()
    else:
        path.write_bytes(path.read_bytes()[:keep])
    # The chain itself is whole; what is lost is the anchor that proves its tail is the real one.
    assert_broken(trail, key, None, "head file")


def test_a_cut_tail_is_caught_until_both_heads_are_rewritten_the_known_limit(trail: Path, key: bytes) -> None:
    old = head_file(trail).read_bytes()
    with AuditLog(trail, key=key) as log:
        log.record_disclosures([entry("R-0011")])
    tamper(
        trail,
        "DELETE FROM entry WHERE seq = 11",
        "UPDATE head SET seq = 10, hash = (SELECT hash FROM entry WHERE seq = 10)",
    )
    assert_broken(trail, key, 11, "tail was cut")
    head_file(trail).write_bytes(old)  # ...and the head file too: the one thing verify cannot see
    assert verify_file(trail).ok


def test_writing_on_after_a_cut_keeps_the_evidence(trail: Path, key: bytes) -> None:
    tamper(
        trail,
        "DELETE FROM entry WHERE seq >= 8",
        "UPDATE head SET seq = 7, hash = (SELECT hash FROM entry WHERE seq = 7)",
    )
    with AuditLog(trail, key=key) as log:
        log.record_disclosures([entry("R-NEW")])  # the server goes on: the head file is rewritten
        [anchor] = [e for e in log.events() if e.kind == "AUDIT_ANCHOR_MISMATCH"]
        assert anchor.seq == 8 and anchor.detail == {"state": "ahead", "file_seq": "10", "db_seq": "7"}
    assert_broken(trail, key, 8, "entries 8 to 10 were cut from the tail")


def test_writing_on_after_the_head_file_was_emptied_keeps_the_evidence(trail: Path, key: bytes) -> None:
    head_file(trail).write_bytes(b"")
    with AuditLog(trail, key=key) as log:
        log.record_disclosures([entry("R-NEW")])
    assert_broken(trail, key, 11, "head file was unreadable")


def test_a_head_file_one_commit_behind_is_an_interrupted_write_not_a_break(trail: Path, key: bytes) -> None:
    # A crash after the commit and before the rename leaves the previous head file in place.
    conn = sqlite3.connect(trail)
    try:
        (previous,) = conn.execute("SELECT hash FROM entry WHERE seq = 9").fetchone()
    finally:
        conn.close()
    head_file(trail).write_text(json.dumps({"hash": previous, "seq": 9}, separators=(",", ":")) + "\n")
    result = verify_file(trail)
    assert result.ok and result.entries == ENTRIES and "lags at entry 9" in result.reason
    with AuditLog(trail, key=key) as log:
        log.record_disclosures([entry("R-0011")])
        assert log.events() == []  # no mismatch recorded
        assert log.verify() == verify_file(trail)
    assert verify_file(trail).reason == "intact"
    assert json.loads(head_file(trail).read_text())["seq"] == 11


# ---- fail closed ----


def _unchanged(trail: Path, head_before: bytes) -> None:
    assert head_file(trail).read_bytes() == head_before
    result = verify_file(trail)
    assert result.ok and result.entries == ENTRIES, result
    assert not [p for p in trail.parent.iterdir() if p.name.endswith(".tmp")]


def test_fail_closed_when_the_trail_is_locked(trail: Path, key: bytes) -> None:
    head_before = head_file(trail).read_bytes()
    with AuditLog(trail, key=key, timeout=0.2) as log:
        blocker = sqlite3.connect(trail, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(Unavailable, match="cannot be written"):
                log.record_disclosures([entry("R-LOCKED"), entry("R-LOCKED-2")])
            with pytest.raises(Unavailable):
                log.record_event("DELETION", "retention", {"record_number": "R-1"})
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        _unchanged(trail, head_before)
        assert log.disclosures_for_tracing("AFOSI", "R-LOCKED") == []
        log.record_disclosures([entry("R-AFTER")])  # the lock gone, it writes again
        assert log.verify().entries == ENTRIES + 1


def test_concurrent_callers_share_writes_and_each_stays_all_or_nothing(trail: Path, key: bytes) -> None:
    lock = os.open(trail.with_name(trail.name + ".lock"), os.O_RDWR)
    with AuditLog(trail, key=key, timeout=10) as log:
        writes_before = log.writes
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process writing: the first caller waits for the lock
        threads = [
            threading.Thread(target=log.record_disclosures, args=([entry(f"W-{n}-a"), entry(f"W-{n}-b")],))
            for n in range(8)
        ]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while len(log._group._queue) < 7 and time.monotonic() < deadline:  # the other seven queue behind it
            time.sleep(0.01)
        fcntl.flock(lock, fcntl.LOCK_UN)
        for thread in threads:
            thread.join(10)
        assert log.writes - writes_before <= 2  # the first caller's write, then one for the seven queued
        ids = {n: {d.disclosure_id for d in log.disclosures_for_tracing("AFOSI", f"W-{n}-a")} for n in range(8)}
        for n in range(8):
            [b] = log.disclosures_for_tracing("AFOSI", f"W-{n}-b")
            assert ids[n] == {b.disclosure_id}  # each caller's entries under its own id
        assert len({i for found in ids.values() for i in found}) == 8
        assert log.verify().ok and log.verify().entries == ENTRIES + 16
    os.close(lock)


def test_a_caller_queued_behind_a_stuck_writer_gets_unavailable_and_leaves_nothing(trail: Path, key: bytes) -> None:
    lock = os.open(trail.with_name(trail.name + ".lock"), os.O_RDWR)
    errors: list[BaseException] = []

    def record(record: str) -> None:
        try:
            log.record_disclosures([entry(record)])
        except Unavailable as error:
            errors.append(error)

    with AuditLog(trail, key=key, timeout=0.5) as log:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            threads = [threading.Thread(target=record, args=(f"S-{n}",)) for n in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(10)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
        assert len(errors) == 4 and all("cannot be written" in str(e) for e in errors)
        assert all(log.disclosures_for_tracing("AFOSI", f"S-{n}") == [] for n in range(4))
        log.record_disclosures([entry("S-AFTER")])
        assert log.verify().entries == ENTRIES + 1
    os.close(lock)


CHILD = """
import sys
from pathlib import Path
from indexer.exc import Unavailable
from indexer.model import PersonName, TracingKey
from search_service.accounting import AuditLog, DisclosureEntry

db, key = Path(sys.argv[1]), bytes.fromhex(sys.argv[2])
calls, batch, limit = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
entry = DisclosureEntry(
    TracingKey("AFOSI", "R-CHILD"), PersonName("Doe", "Jane"), "123-45-6789", "ONLINE", "SECURITY_CLEARANCE",
    "ACT", "op", False,
)
try:
    log = AuditLog(db, key=key)
    if limit:  # a disk that fills up: every file this process writes stops growing at `limit` bytes
        import resource, signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    for _ in range(calls):
        log.record_disclosures([entry] * batch)
except Unavailable as error:
    print("UNAVAILABLE", error, repr(error.__cause__))
else:
    print("RECORDED")
"""


def child_command(db: Path, key: bytes, calls: int, batch: int, limit: int = 0) -> list[str]:
    return [sys.executable, "-c", CHILD, str(db), key.hex(), str(calls), str(batch), str(limit)]


def run_child(
    db: Path, key: bytes, calls: int, batch: int, *, limit: int = 0, prefix: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*prefix, *child_command(db, key, calls, batch, limit)],
        cwd=ROOT,
        text=True,
        capture_output=True,
        timeout=120,
        check=False,
    )


def _without_root_powers() -> tuple[str, ...]:
    """Root ignores file modes; take away its power to (so chmod means what it says), or run as is."""
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: a read-only file cannot be made")
    return (setpriv, "--bounding-set", "-dac_override,-dac_read_search", "--")


@pytest.mark.parametrize("read_only", ["files", "files-and-directory", "head-file"])
def test_fail_closed_when_the_trail_is_read_only(trail: Path, key: bytes, read_only: str) -> None:
    """`head-file`: the database, its WAL and lock file stay writable (kept open by another log) but the
    head file cannot be written, so nothing may be committed."""
    head_before = head_file(trail).read_bytes()
    data = trail.parent
    with contextlib.ExitStack() as stack:
        if read_only == "head-file":
            stack.enter_context(AuditLog(trail, key=key))  # keeps audit.db-wal and -shm in place
        modes = {p: stat.S_IMODE(p.stat().st_mode) for p in [data, *data.iterdir()]}
        for path, mode in modes.items():
            stack.callback(path.chmod, mode)
        if read_only.startswith("files"):
            for path in data.iterdir():
                path.chmod(0o444)
        if read_only.endswith("directory"):
            data.chmod(0o555)
        if read_only == "head-file":
            head_file(trail).chmod(0o444)
        child = run_child(trail, key, 1, 3, prefix=_without_root_powers())
    assert child.stdout.startswith("UNAVAILABLE the audit trail cannot be written"), child.stdout + child.stderr
    _unchanged(trail, head_before)
    with AuditLog(trail, key=key) as log:
        assert log.disclosures_for_tracing("AFOSI", "R-CHILD") == []


def test_the_head_file_is_rewritten_in_place(trail: Path, key: bytes) -> None:
    """One fixed-size write at the start of the same file: nothing is created in the directory, so a
    read-only directory does not stop the trail, and the head reads back as the database's."""
    inode = head_file(trail).stat().st_ino
    data = trail.parent
    mode = stat.S_IMODE(data.stat().st_mode)
    with AuditLog(trail, key=key) as log:
        data.chmod(0o555)
        try:
            log.record_disclosures([entry("R-IN-PLACE")])
        finally:
            data.chmod(mode)
        assert log.verify().ok and log.verify().entries == ENTRIES + 1
    assert head_file(trail).stat().st_ino == inode and head_file(trail).stat().st_size == 128
    assert not [p for p in data.iterdir() if p.name.endswith(".tmp")]


def test_fail_closed_when_the_disk_is_full(trail: Path, key: bytes) -> None:
    head_before = head_file(trail).read_bytes()
    limit = trail.stat().st_size + 32 * 1024
    child = run_child(trail, key, 5, 1000, limit=limit)
    assert child.stdout.startswith("UNAVAILABLE the audit trail cannot be written"), child.stdout + child.stderr
    _unchanged(trail, head_before)
    with AuditLog(trail, key=key) as log:
        assert log.disclosures_for_tracing("AFOSI", "R-CHILD") == []


def test_opening_a_trail_that_cannot_be_made_fails_closed(key: bytes) -> None:
    with pytest.raises(Unavailable):
        AuditLog(Path("/proc/dcii-no-such-dir/audit.db"), key=key)


# ---- concurrency ----


def test_eight_threads_and_another_process_write_one_chain(db: Path, key: bytes) -> None:
    threads_n, calls, per_call = 8, 25, 4
    ids: list[str] = []
    errors: list[BaseException] = []
    with AuditLog(db, key=key) as log:
        start = threading.Barrier(threads_n + 1)

        def writer(n: int) -> None:
            try:
                start.wait()
                for c in range(calls):
                    ids.append(log.record_disclosures([entry(f"T{n}-{c}-{i}") for i in range(per_call)]))
                    if c % 5 == 0:
                        log.record_event("REFUSAL", f"thread-{n}", {"call": str(c)})
            except BaseException as error:
                errors.append(error)
                raise

        workers = [threading.Thread(target=writer, args=(n,)) for n in range(threads_n)]
        for worker in workers:
            worker.start()
        other = subprocess.Popen(child_command(db, key, 50, 4), cwd=ROOT, stdout=subprocess.PIPE, text=True)
        start.wait()
        for worker in workers:
            worker.join()
        out, _ = other.communicate(timeout=120)
        assert not errors and out.startswith("RECORDED")
        total = threads_n * calls * per_call + threads_n * (calls // 5) + 200
        result = log.verify()
        assert result.ok and result.entries == total, result
    assert len(set(ids)) == threads_n * calls
    # One transaction per call: each batch's entries are consecutive in the chain.
    batches: dict[str, list[int]] = {}
    for seq, text in rows(db):
        document = json.loads(text)
        if document["kind"] == "DISCLOSURE":
            batches.setdefault(document["disclosure_id"], []).append(seq)
    for seqs in batches.values():
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert verify_file(db).ok


# ---- the key ----


def test_the_key_file_is_made_once_private_and_refused_when_open_to_others(tmp_path: Path) -> None:
    path = tmp_path / "k" / "audit.key"
    made = load_or_create_key(path)
    assert len(made) == 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(path) == made
    path.chmod(0o644)
    with pytest.raises(FailedPrecondition, match="0600"):
        load_or_create_key(path)


# ---- the CLI ----


def audit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dcii.cli.audit", *args],
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "200"},
        text=True,
        capture_output=True,
        timeout=60,
        check=False,
    )


def test_cli_verify(trail: Path) -> None:
    data = str(trail.parent)
    intact = audit("verify", "--data", data)
    assert intact.returncode == 0 and intact.stdout.strip() == f"audit trail intact: {ENTRIES} entries"
    tamper(trail, "DELETE FROM entry WHERE seq = 5")
    broken = audit("verify", "--data", data)
    assert broken.returncode == 1
    assert broken.stdout.startswith("audit trail broken at entry 5: entry 5 is missing"), broken.stdout
    missing = audit("verify", "--data", str(trail.parent / "nowhere"))
    assert missing.returncode == 1 and "no audit trail" in missing.stdout


def test_cli_disclosures_prints_the_marked_accounting(db: Path, key: bytes) -> None:
    with AuditLog(db, key=key) as log:
        first = log.record_disclosures([entry("R-1"), entry("R-2")])
        second = log.record_disclosures([entry("R-1", method="BATCH", operator="adj-0099", law_enforcement=True)])
    shown = audit("disclosures", "--agency", "afosi", "--record", "R-1", "--data", str(db.parent))
    assert shown.returncode == 0, shown.stderr
    lines = [line for line in shown.stdout.splitlines() if line.strip()]
    assert lines[0] == lines[-1] == "FOR OFFICIAL USE ONLY - PRIVACY SENSITIVE"
    assert "AFOSI/R-1" in shown.stdout and "2 disclosures" in shown.stdout
    for value in (first, second, "adj-0007", "adj-0099", "ONLINE", "BATCH", "SECURITY_CLEARANCE", "ARMY-CCF-01"):
        assert value in shown.stdout
    assert SSN not in shown.stdout and NAME.surname not in shown.stdout
    none = audit("disclosures", "--agency", "NCIS", "--record", "R-1", "--data", str(db.parent))
    assert none.returncode == 0 and "0 disclosures" in none.stdout


def test_add_parser_plugs_into_the_dcii_command(trail: Path, capsys: pytest.CaptureFixture[str]) -> None:
    top = argparse.ArgumentParser(prog="dcii")
    commands = top.add_subparsers(dest="command", required=True)
    audit_cli.add_parser(commands, str(trail.parent))
    args = top.parse_args(["audit", "verify"])
    args.run(args)
    assert capsys.readouterr().out.strip() == f"audit trail intact: {ENTRIES} entries"


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
