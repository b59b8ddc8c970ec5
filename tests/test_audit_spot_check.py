"""`dcii audit disclosures|events|volume` on a trail edited behind the server's back: each reading checks
what it showed against the hash chain (search_service.audit_spot_check) and says so, exit 3 and the entry
named, where it used to print the edited accounting as the record. Real trails (AuditLog), edited as an
attacker with sqlite3 would, the CLI in a subprocess; with the lookup file caught up (the entries it names)
and without it (the trail read whole)."""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from search_service.accounting import AuditLog
from search_service.audit_chain import link
from search_service.audit_lookup import Lookup, lookup_path
from tests import test_accounting
from tests.test_accounting import entry, tamper
from tests.test_accounting_cli import audit

key, db = test_accounting.key, test_accounting.db

Edit = Callable[[Path], None]


def _trail(db: Path, key: bytes, *, lookup: bool) -> None:
    """Entries 1-2 R-1 and R-2, 3 R-1 again, 4 a REFUSAL, 5 R-3, 6 R-1 a third time."""
    with AuditLog(db, key=key, clock=lambda: dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)) as log:
        log.record_disclosures([entry("R-1"), entry("R-2")])
        log.record_disclosures([entry("R-1", operator="adj-0099")])
        log.record_event("REFUSAL", "no-certificate", {"method": "/dcii.v1.SearchService/Search", "reason": "r"})
        log.record_disclosures([entry("R-3")])
        log.record_disclosures([entry("R-1", operator="adj-0042")])
    for path in db.parent.glob(lookup_path(db).name + "*"):
        path.unlink()
    if lookup:
        made = Lookup(db)
        try:
            assert made.catch_up() == 6
        finally:
            made.close()


def _edit_recipient(db: Path) -> None:
    tamper(db, "UPDATE entry SET canonical = replace(canonical, 'adj-0099', 'adj-0001') WHERE seq = 3")


def _edit_and_rehash(db: Path) -> None:
    conn = sqlite3.connect(db)
    text, prev_hash = conn.execute("SELECT canonical, prev_hash FROM entry WHERE seq = 3").fetchone()
    conn.close()
    edited = text.replace("adj-0099", "adj-0001")
    tamper(db, f"UPDATE entry SET canonical = '{edited}', hash = '{link(prev_hash, edited)}' WHERE seq = 3")


def _delete(db: Path) -> None:
    tamper(db, "DELETE FROM entry WHERE seq = 3")


def _cut_tail(db: Path) -> None:
    """Entry 6 gone, and the database head moved back to entry 5 (the head file still names 6)."""
    conn = sqlite3.connect(db)
    digest = conn.execute("SELECT hash FROM entry WHERE seq = 5").fetchone()[0]
    conn.close()
    tamper(db, "DELETE FROM entry WHERE seq = 6", f"UPDATE head SET seq = 5, hash = '{digest}' WHERE id = 1")


@pytest.mark.parametrize("lookup", [True, False], ids=["lookup", "no lookup"])
@pytest.mark.parametrize(
    ("edit", "why"),
    [
        (_edit_recipient, "entry 3 was altered: its hash does not match its content"),
        (_edit_and_rehash, "entry 3 was altered or replaced: entry 4 is not chained to it"),
        (_cut_tail, "the tail was cut (head file)"),
    ],
    ids=["edited", "edited and hashed again", "tail cut"],
)
def test_an_edited_accounting_is_shown_with_a_warning_and_exit_3(
    db: Path, key: bytes, lookup: bool, edit: Edit, why: str
) -> None:
    _trail(db, key, lookup=lookup)
    intact = audit("disclosures", "--agency", "AFOSI", "--record", "R-1", "--data", str(db.parent))
    assert intact.returncode == 0, intact.stderr
    assert "the entries shown checked against the audit chain: intact" in intact.stdout
    edit(db)
    shown = audit("disclosures", "--agency", "AFOSI", "--record", "R-1", "--data", str(db.parent))
    assert shown.returncode == 3, (shown.stdout, shown.stderr)
    assert "AFOSI/R-1" in shown.stdout and "intact" not in shown.stdout  # what the trail holds, still shown
    assert shown.stderr.startswith("dcii: warning: the audit trail does not check out: ") and why in shown.stderr
    assert "run `dcii audit verify`" in shown.stderr


@pytest.mark.parametrize("lookup", [True, False], ids=["lookup", "no lookup"])
def test_an_entry_deleted_is_named(db: Path, key: bytes, lookup: bool) -> None:
    _trail(db, key, lookup=lookup)
    _delete(db)
    shown = audit("disclosures", "--agency", "AFOSI", "--record", "R-1", "--data", str(db.parent))
    assert shown.returncode == 3 and "2 disclosures of AFOSI/R-1" in shown.stdout
    # With the lookup: it named entry 3 for R-1. Without: the trail is read whole, and 3 is missing from it.
    expected = "entry 3, which the trail's lookup names for this question" if lookup else "entry 3 is missing"
    assert expected in shown.stderr


@pytest.mark.parametrize("lookup", [True, False], ids=["lookup", "no lookup"])
def test_what_a_reading_read_is_checked_and_no_more(db: Path, key: bytes, lookup: bool) -> None:
    """An edit of another tracing's entry: seen by a reading that scanned it (the trail past the lookup's end,
    here all of it), not by one the lookup served (its cost is the entries it read; `verify` walks the rest)."""
    _trail(db, key, lookup=lookup)
    tamper(db, "UPDATE entry SET canonical = replace(canonical, 'adj-0007', 'adj-0001') WHERE seq = 2")
    shown = audit("disclosures", "--agency", "AFOSI", "--record", "R-1", "--data", str(db.parent))
    if lookup:
        assert shown.returncode == 0, shown.stderr
    else:
        assert shown.returncode == 3 and "entry 2 was altered" in shown.stderr
    assert audit("verify", "--data", str(db.parent)).returncode == 1


def test_events_and_volume_check_what_they_read(db: Path, key: bytes) -> None:
    _trail(db, key, lookup=True)
    assert audit("events", "--data", str(db.parent)).returncode == 0
    volume = audit("volume", "--hours", "1", "--over", "100", "--data", str(db.parent))
    assert volume.returncode == 0 and "the period's entries checked against the audit chain: intact" in volume.stdout
    tamper(db, 'UPDATE entry SET canonical = replace(canonical, \'"reason":"r"\', \'"reason":"x"\') WHERE seq = 4')
    events = audit("events", "--data", str(db.parent))
    assert events.returncode == 3 and "entry 4 was altered" in events.stderr
    _edit_recipient(db)  # a disclosure's recipient, inside the period: its count would change
    volume = audit("volume", "--hours", "1", "--over", "0", "--data", str(db.parent))
    assert volume.returncode == 3 and "entry 3 was altered" in volume.stderr  # 3 before 1 (over): distrust first


def _blind_the_bisection(db: Path, moment: str, *, by: str) -> list[int]:
    """A security review's attack on `volume`: remove (or back-date) each entry its search for the period's
    start reads inside the period, until the start falls at the trail's end; the seqs touched."""
    conn = sqlite3.connect(db)
    conn.execute("DROP TRIGGER IF EXISTS entry_never_deleted")
    conn.execute("DROP TRIGGER IF EXISTS entry_never_changed")
    touched: list[int] = []
    while True:
        last = conn.execute("SELECT max(seq) FROM entry").fetchone()[0]
        low, high, victim = 1, last + 1, None
        while low < high:
            middle = (low + high) // 2
            at = conn.execute("SELECT json_extract(canonical, '$.at') FROM entry WHERE seq = ?", (middle,)).fetchone()
            if at is None or at[0] is None or str(at[0]) < moment:
                low = middle + 1
            else:
                victim = middle if victim is None and middle < last - 2 else victim
                high = middle
        if victim is None:
            break
        if by == "deleting":
            conn.execute("DELETE FROM entry WHERE seq = ?", (victim,))
        else:
            conn.execute(
                "UPDATE entry SET canonical = json_set(canonical, '$.at', '2000-01-01T00:00:00+00:00') WHERE seq = ?",
                (victim,),
            )
        conn.commit()
        touched.append(victim)
    conn.close()
    return touched


@pytest.mark.parametrize("by", ["deleting", "back-dating"])
def test_volume_is_not_blinded_by_the_entries_its_search_reads(db: Path, key: bytes, by: str) -> None:
    with AuditLog(db, key=key, clock=lambda: dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)) as log:
        for n in range(60):
            log.record_disclosures([entry(f"R-{n}", operator="adj-0099")])
    before = audit("volume", "--hours", "1", "--over", "50", "--data", str(db.parent))
    assert before.returncode == 1 and "60 disclosures" in before.stdout  # over 50: the alarm
    moment = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
    assert _blind_the_bisection(db, moment, by=by)
    after = audit("volume", "--hours", "1", "--over", "50", "--data", str(db.parent))
    # It counted 1 and said intact, exit 0: now the count is printed as read, and the trail distrusted.
    assert after.returncode == 3, (after.stdout, after.stderr)
    assert "does not check out: entry" in after.stderr


@pytest.mark.parametrize(
    "edit",
    ["DELETE FROM entry_ref WHERE seq = 3", "UPDATE entry_ref SET record_number = 'R-9' WHERE seq = 3"],
    ids=["row deleted", "row moved to another tracing"],
)
def test_verify_finds_a_lookup_file_that_hides_an_entry(db: Path, key: bytes, edit: str) -> None:
    """The lookup names what a reading reads: a row taken out hid a disclosure from the accounting, the
    access answer and the dispute notices, while verify said intact (a security review)."""
    _trail(db, key, lookup=True)
    assert audit("verify", "--data", str(db.parent)).returncode == 0
    with contextlib.closing(sqlite3.connect(lookup_path(db))) as conn:
        conn.execute(edit)
        conn.commit()
    hidden = audit("disclosures", "--agency", "AFOSI", "--record", "R-1", "--data", str(db.parent))
    assert "2 disclosures of AFOSI/R-1" in hidden.stdout  # a reading trusts the lookup for what to read
    verified = audit("verify", "--data", str(db.parent))
    assert verified.returncode == 1, verified.stdout
    assert "audit trail broken at entry 3: the audit lookup file" in verified.stdout
    assert "would not show entry 3" in verified.stdout and "audit.lookup.db" in verified.stdout
    for path in db.parent.glob(lookup_path(db).name + "*"):  # as verify says: the server builds it again
        path.unlink()
    shown = audit("disclosures", "--agency", "AFOSI", "--record", "R-1", "--data", str(db.parent))
    assert shown.returncode == 0 and "3 disclosures of AFOSI/R-1" in shown.stdout
    assert audit("verify", "--data", str(db.parent)).returncode == 0


_RESHAPED = {
    "a column dropped": [
        "DELETE FROM entry_ref WHERE seq = 3",
        "DROP INDEX entry_ref_person",
        "ALTER TABLE entry_ref DROP COLUMN person",
    ],
    "a view in its place": [  # every row for verify, which attaches the file; not entry 3 for a reader
        "ALTER TABLE entry_ref RENAME TO entry_ref_real",
        "CREATE VIEW entry_ref AS SELECT * FROM entry_ref_real"
        " WHERE seq != 3 OR (SELECT count(*) FROM pragma_database_list) > 1",
    ],
}


@pytest.mark.parametrize("how", sorted(_RESHAPED))
def test_a_lookup_file_of_another_shape_hides_nothing(db: Path, key: bytes, how: str) -> None:
    """Verify skipped a lookup without its `person` column as an earlier version's, and a view fooled it,
    while readers used both and missed entry 3 (a review): readers now read the trail past such a lookup,
    and the server's writer makes the lookup afresh."""
    _trail(db, key, lookup=True)
    with contextlib.closing(sqlite3.connect(lookup_path(db))) as conn:
        for statement in _RESHAPED[how]:
            conn.execute(statement)
        conn.commit()
    shown = audit("disclosures", "--agency", "AFOSI", "--record", "R-1", "--data", str(db.parent))
    assert shown.returncode == 0 and "3 disclosures of AFOSI/R-1" in shown.stdout, shown.stdout
    assert audit("verify", "--data", str(db.parent)).returncode == 0  # nothing is hidden by what no one reads
    made = Lookup(db)
    try:
        assert made.catch_up() == 6  # taken away and copied afresh: a view had frozen the copy for good
    finally:
        made.close()
    with contextlib.closing(sqlite3.connect(lookup_path(db))) as conn:
        assert conn.execute("SELECT type FROM sqlite_master WHERE name = 'entry_ref'").fetchone() == ("table",)
        assert conn.execute("SELECT count(*) FROM entry_ref").fetchone() == (6,)


def test_verify_finds_a_lookup_whose_index_no_longer_matches_its_table(db: Path, key: bytes) -> None:
    """The table whole, its index by tracing made without entry 3 and then described as complete: a reader by
    tracing misses entry 3, and the join by seq that verify makes sees the table only."""
    _trail(db, key, lookup=True)
    with contextlib.closing(sqlite3.connect(lookup_path(db))) as conn:
        sql = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'entry_ref_tracing'").fetchone()[0]
        conn.execute("DROP INDEX entry_ref_tracing")
        conn.execute(sql.replace("WHERE agency IS NOT NULL", "WHERE agency IS NOT NULL AND seq != 3"))
        conn.execute("PRAGMA writable_schema = ON")
        conn.execute("UPDATE sqlite_master SET sql = ? WHERE name = 'entry_ref_tracing'", (sql,))
        conn.commit()
    hidden = audit("disclosures", "--agency", "AFOSI", "--record", "R-1", "--data", str(db.parent))
    assert "2 disclosures of AFOSI/R-1" in hidden.stdout  # the lookup is read as it says it is
    verified = audit("verify", "--data", str(db.parent))
    assert verified.returncode == 1 and "the audit lookup file audit.lookup.db is damaged" in verified.stdout
