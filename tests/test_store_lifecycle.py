"""The store's lifecycle rules on a real SQLite file: favorable-NAC supersession, statements of dispute,
the NAC-history retention index (and its migration), and the deletion log. The same rules applied by a
running server, over gRPC: tests/test_store_lifecycle_grpc.py."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from dcii.v1 import tracing_pb2
from indexer.edit_criteria import check_tracing
from indexer.exc import FailedPrecondition
from indexer.model import Dispute, Tracing, TracingKey, TracingType
from indexer.store.base import Delete, DeletionRecord, Replace, TracingHead, Upsert, WriteOutcome
from indexer.store.sqlite import SqliteStore
from indexer.store.sqlite_schema import SCHEMA_VERSION
from search_service.convert import tracing_in
from tests import factories as f

NOW = dt.datetime(2026, 1, 15, 9, 30, tzinfo=dt.UTC)
EDIT_DAY = NOW.date()
ACTOR = "DSS-HQ-01/dss-op"
SSN, OTHER_SSN = "318-52-4471", "212-45-6789"
FAVORABLE, INCOMPLETE = tracing_pb2.NAC_OUTCOME_FAVORABLE, tracing_pb2.NAC_OUTCOME_INCOMPLETE


def _checked(wire: tracing_pb2.Tracing, today: dt.date = EDIT_DAY) -> Tracing:
    return check_tracing(tracing_in(wire), today=today)


def nac(
    record: str,
    completed: tuple[int, int, int],
    *,
    agency: str = "DSS",
    version: int = 1,
    outcome: int = FAVORABLE,
    **person: object,
) -> Tracing:
    """A NAC history, through the real wire conversion and edit criteria (so the SSN is stored compact)."""
    person.setdefault("ssn", SSN)
    wire = f.nac_history(agency, record, version, **person)
    done = wire.nac_history.completed_on
    done.year, done.month, done.day = completed
    wire.nac_history.outcome = outcome  # type: ignore[assignment]
    # Checked as sent at the end of its completion year: a history past its retention on EDIT_DAY (those
    # completed before 2011) is refused by the edit criteria, and these tests hold some as a store would.
    return _checked(wire, today=dt.date(completed[0], 12, 31))


def nac_pending(record: str, **person: object) -> Tracing:
    return _checked(f.nac_pending("DSS", record, 1, **person))


def file_tracing(record: str, **person: object) -> Tracing:
    return _checked(f.person("NCIS", record, 1, **person))  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "index.db", clock=lambda: NOW)
    try:
        yield opened
    finally:
        opened.close()


def _live(store: SqliteStore) -> set[str]:
    return {stored.tracing.key.record_number for stored in store.iter_all()}


def _deleted(store: SqliteStore) -> dict[str, DeletionRecord]:
    return {record.key.record_number: record for record in store.deletions()}


# ---- favorable NAC supersession ----


@dataclass(frozen=True)
class Case:
    id: str
    held: tuple[Tracing, ...]
    arriving: Tracing
    superseded: tuple[str, ...]


CASES = [
    Case("same SSN", (nac("NH-1", (2012, 5, 1)),), nac("NH-2", (2018, 5, 1)), ("NH-1",)),
    Case(
        "same SSN, a changed name",
        (nac("NH-1", (2012, 5, 1), surname="Moore", given="Harry"),),
        nac("NH-2", (2018, 5, 1)),
        ("NH-1",),
    ),
    Case(
        # Only the owning agency changes its tracings: across agencies, any submitter could erase another
        # agency's history by sending a favorable one on its SSN under any name, then deleting its own.
        "same SSN, another agency: its history stays",
        (nac("NCIS-NH-1", (2012, 5, 1), agency="NCIS"),),
        nac("NH-2", (2018, 5, 1)),
        (),
    ),
    Case(
        "every earlier history, whatever its outcome; a later one stays",
        (  # held in this order, none supersedes another (the earlier arrive after the later)
            nac("NH-3", (2022, 5, 1)),
            nac("NH-2", (2012, 5, 1)),
            nac("NH-1", (2008, 1, 2), outcome=INCOMPLETE),
        ),
        nac("NH-4", (2018, 5, 1)),
        ("NH-1", "NH-2"),
    ),
    Case(
        "no SSN: same name and full date of birth",
        (nac("NH-1", (2012, 5, 1), ssn=""),),
        nac("NH-2", (2018, 5, 1), ssn=""),
        ("NH-1",),
    ),
    Case(  # a review found an INCOMPLETE history of JOHN ALLEN SMITH deleted by JOHN BRUCE SMITH's favorable one
        "no SSN: same name and date of birth, another middle name: another person",
        (nac("NH-1", (2012, 5, 1), ssn="", middle="Allen", outcome=INCOMPLETE),),
        nac("NH-2", (2018, 5, 1), ssn="", middle="Bruce"),
        (),
    ),
    Case(
        "no SSN: same name and date of birth, born in another state: another person",
        (nac("NH-1", (2012, 5, 1), ssn="", state="TX"),),
        nac("NH-2", (2018, 5, 1), ssn=""),
        (),
    ),
    Case(
        "no SSN: same name and date of birth, another suffix: another person",
        (nac("NH-1", (2012, 5, 1), ssn="", suffix="Sr"),),
        nac("NH-2", (2018, 5, 1), ssn="", suffix="Jr"),
        (),
    ),
    Case(  # compared as one string, J. R. (JR) and JOHN ROBERT (JOHNROBERT) were two people
        "no SSN: middle names of two words, initials on one side",
        (nac("NH-1", (2012, 5, 1), ssn="", middle="J. R."),),
        nac("NH-2", (2018, 5, 1), ssn="", middle="John Robert"),
        ("NH-1",),
    ),
    Case(  # a word that merely begins the other's is another name
        "no SSN: a middle name that begins the other's (De la Cruz, Dean): another person",
        (nac("NH-1", (2012, 5, 1), ssn="", middle="De la Cruz", outcome=INCOMPLETE),),
        nac("NH-2", (2018, 5, 1), ssn="", middle="Dean"),
        (),
    ),
    Case(
        "no SSN: a middle initial, a suffix and a place of birth given by one of them only tell nothing apart",
        (nac("NH-3", (2013, 5, 1), ssn="", suffix="III"), nac("NH-1", (2012, 5, 1), ssn="", middle="J", state="")),
        nac("NH-2", (2018, 5, 1), ssn=""),
        ("NH-1", "NH-3"),
    ),
    Case(
        "no SSN on the new one: a history with an SSN is not the name's to delete",
        (nac("NH-1", (2012, 5, 1)),),
        nac("NH-2", (2018, 5, 1), ssn=""),
        (),
    ),
    Case(
        "no SSN on the new one: namesakes born the same day with SSNs of their own stay, one without goes",
        (nac("NH-1", (2012, 5, 1)), nac("NH-3", (2012, 5, 1), ssn=OTHER_SSN), nac("NH-4", (2013, 5, 1), ssn="")),
        nac("NH-2", (2018, 5, 1), ssn=""),
        ("NH-4",),
    ),
    Case(
        "an INCOMPLETE history supersedes nothing",
        (nac("NH-1", (2012, 5, 1)),),
        nac("NH-2", (2018, 5, 1), outcome=INCOMPLETE),
        (),
    ),
    Case(
        "same name, another date of birth: another person",
        (nac("NH-1", (2012, 5, 1), ssn="", dob=(1980, 1, 1)),),
        nac("NH-2", (2018, 5, 1), ssn=""),
        (),
    ),
    Case(
        "same name and date of birth, another SSN: another person",
        (nac("NH-1", (2012, 5, 1), ssn=OTHER_SSN),),
        nac("NH-2", (2018, 5, 1)),
        (),
    ),
    Case(
        "an earlier favorable arriving after a later one deletes nothing",
        (nac("NH-2", (2018, 5, 1)),),
        nac("NH-1", (2012, 5, 1)),
        (),
    ),
    Case("completed the same day: not earlier", (nac("NH-1", (2018, 5, 1)),), nac("NH-2", (2018, 5, 1)), ()),
    Case(
        "no SSN and a partial date of birth: not enough to delete on",
        (nac("NH-1", (2012, 5, 1), ssn="", dob=(1971, 4, 0)),),
        nac("NH-2", (2018, 5, 1), ssn="", dob=(1971, 4, 0)),
        (),
    ),
    Case(
        "no SSN: an alias is not the primary name",
        (nac("NH-1", (2012, 5, 1), ssn="", surname="Moore", aliases=(("Whitfield", "Harold"),)),),
        nac("NH-2", (2018, 5, 1), ssn=""),
        (),
    ),
    Case(
        "only NAC histories are superseded",
        (file_tracing("NCIS-F-1"), nac_pending("NP-1")),
        nac("NH-2", (2018, 5, 1)),
        (),
    ),
    Case(
        "an update of the same key does not delete itself",
        (nac("NH-1", (2012, 5, 1)),),
        nac("NH-1", (2018, 5, 1), version=2),
        (),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_favorable_nac_history_supersedes_the_subjects_earlier_ones(store: SqliteStore, case: Case) -> None:
    store.write([Upsert(t) for t in case.held], actor="loader")
    [result] = store.write([Upsert(case.arriving)], actor=ACTOR)

    assert result.outcome is WriteOutcome.APPLIED
    everyone = {t.key.record_number for t in (*case.held, case.arriving)}
    assert _live(store) == everyone - set(case.superseded)
    log = _deleted(store)
    assert set(log) == set(case.superseded)
    for record in case.superseded:
        held = next(t for t in case.held if t.key.record_number == record)
        assert log[record] == DeletionRecord(
            held.key,
            TracingType.NAC_HISTORY,
            held.source_version,
            f"SUPERSEDED by favorable NAC history {case.arriving.key}",
            ACTOR,
            NOW,
        )
    # The superseded are gone from every index, retention's included.
    due = {k.record_number for k in store.due_for_retention(dt.date(2100, 1, 1), 100)}
    assert due == {t.key.record_number for t in (*case.held, case.arriving) if t.type is TracingType.NAC_HISTORY} - set(
        case.superseded
    )
    assert store.check_integrity() == []


def test_completing_a_nac_pending_with_a_favorable_history_supersedes_in_the_same_write(store: SqliteStore) -> None:
    store.write([Upsert(nac("NH-1", (2012, 5, 1))), Upsert(nac_pending("NP-1"))], actor="loader")
    [result] = store.write(
        [Replace(TracingKey("DSS", "NP-1"), TracingType.NAC_PENDING, nac("NH-2", (2018, 5, 1)))], actor=ACTOR
    )

    assert result.outcome is WriteOutcome.APPLIED
    assert _live(store) == {"NH-2"}
    log = _deleted(store)
    assert log["NP-1"].reason == "SUPERSEDED by NAC_HISTORY DSS/NH-2"
    assert log["NH-1"].reason == "SUPERSEDED by favorable NAC history DSS/NH-2"
    assert {r.actor for r in log.values()} == {ACTOR}
    assert {r.deleted_at for r in log.values()} == {NOW}


def test_a_replayed_favorable_history_deletes_nothing_more(store: SqliteStore) -> None:
    store.write([Upsert(nac("NH-1", (2012, 5, 1))), Upsert(nac("NH-2", (2018, 5, 1)))], actor=ACTOR)
    assert store.write([Upsert(nac("NH-2", (2018, 5, 1)))], actor=ACTOR)[0].outcome is WriteOutcome.UNCHANGED
    assert [r.key.record_number for r in store.deletions()] == ["NH-1"]


def test_a_superseded_history_stays_deleted_when_its_agency_resends_it(store: SqliteStore) -> None:
    store.write([Upsert(nac("NH-1", (2012, 5, 1))), Upsert(nac("NH-2", (2018, 5, 1)))], actor=ACTOR)
    assert store.write([Upsert(nac("NH-1", (2012, 5, 1)))], actor="DSS")[0].outcome is WriteOutcome.UNCHANGED
    assert _live(store) == {"NH-2"}


# ---- statements of dispute ----


def _dispute(n: int) -> Dispute:
    return Dispute(f"DSP-{n}", f"PRIVACY OFFICE FILE PA-{n}", "subject disputes the entry", NOW)


def test_a_dispute_needs_a_live_tracing(store: SqliteStore) -> None:
    assert store.set_dispute(TracingKey("NCIS", "NCIS-F-1"), _dispute(1)) is False
    store.write([Upsert(file_tracing("NCIS-F-1"))], actor="NCIS")
    store.write([Delete(TracingKey("NCIS", "NCIS-F-1"), 2, "DELETED BY OWNING AGENCY")], actor="NCIS")
    assert store.set_dispute(TracingKey("NCIS", "NCIS-F-1"), _dispute(1)) is False


def test_a_dispute_follows_updates_of_the_key_and_vanishes_with_a_delete(tmp_path: Path, store: SqliteStore) -> None:
    key, other = TracingKey("NCIS", "NCIS-F-1"), TracingKey("NCIS", "NCIS-F-2")
    store.write([Upsert(file_tracing("NCIS-F-1")), Upsert(file_tracing("NCIS-F-2"))], actor="NCIS")
    assert store.set_dispute(key, _dispute(1)) is True

    found = store.get(key)
    assert found is not None
    assert found.dispute == _dispute(1)
    none = store.get(other)
    assert none is not None
    assert none.dispute is None

    # An update of the same key keeps it; `load` fills it as `get` does.
    store.write([Upsert(_checked(f.person("NCIS", "NCIS-F-1", 2, given="Harry")))], actor="NCIS")
    updated = store.get(key)
    assert updated is not None
    assert (updated.tracing.source_version, updated.dispute) == (2, _dispute(1))
    ids = [row.tracing_id for row in store.scan_names("WHITFIELD", None, given_is_prefix=False, after=None, limit=10)]
    loaded = {s.tracing.key: s.dispute for s in store.load(ids).values()}
    assert loaded == {key: _dispute(1), other: None}

    # A second statement replaces the first; both survive a reopen of the file.
    assert store.set_dispute(key, _dispute(2)) is True
    reopened = SqliteStore(tmp_path / "index.db")
    try:
        again = reopened.get(key)
        assert again is not None
        assert again.dispute == _dispute(2)
    finally:
        reopened.close()

    # Deleted: gone, and not brought back when the key is used again.
    store.write([Delete(key, 3, "DELETED BY OWNING AGENCY")], actor="NCIS-RA-01/ncis-op")
    assert store.get(key) is None
    store.write([Upsert(_checked(f.person("NCIS", "NCIS-F-1", 4)))], actor="NCIS")
    back = store.get(key)
    assert back is not None
    assert back.dispute is None
    assert store.check_integrity() == []
    assert store.deletions() == [
        DeletionRecord(key, TracingType.FILE, 3, "DELETED BY OWNING AGENCY", "NCIS-RA-01/ncis-op", NOW)
    ]


def test_a_superseded_or_replaced_tracing_takes_its_dispute_with_it(store: SqliteStore) -> None:
    store.write([Upsert(nac("NH-1", (2012, 5, 1))), Upsert(nac_pending("NP-1"))], actor="loader")
    assert store.set_dispute(TracingKey("DSS", "NH-1"), _dispute(1))
    assert store.set_dispute(TracingKey("DSS", "NP-1"), _dispute(2))
    # The pending completes under its own record number: the pending is deleted, the history is new.
    store.write(
        [Replace(TracingKey("DSS", "NP-1"), TracingType.NAC_PENDING, nac("NP-1", (2018, 5, 1), version=2))], actor=ACTOR
    )
    completed = store.get(TracingKey("DSS", "NP-1"))
    assert completed is not None
    assert completed.tracing.type is TracingType.NAC_HISTORY
    assert completed.dispute is None
    assert store.get(TracingKey("DSS", "NH-1")) is None
    assert store.check_integrity() == []


# (Consistent reads across a completion, and snapshots: tests/test_store_contract_reads.py, on every backend.)


def test_only_nac_histories_are_ever_due_and_the_index_follows_updates(store: SqliteStore) -> None:
    clearance = _checked(_clearance_wire())
    store.write(
        [
            Upsert(nac("NH-LATE", (2011, 7, 1))),
            Upsert(nac("NH-EARLY", (2009, 7, 1), ssn=OTHER_SSN)),
            Upsert(file_tracing("NCIS-F-1")),
            Upsert(nac_pending("NP-1")),
            Upsert(clearance),
        ],
        actor="loader",
    )
    assert store.due_for_retention(dt.date(2100, 1, 1), 10) == [
        TracingKey("DSS", "NH-EARLY"),
        TracingKey("DSS", "NH-LATE"),
    ]
    assert store.due_for_retention(dt.date(2100, 1, 1), 1) == [TracingKey("DSS", "NH-EARLY")]
    # Strictly before: due on 2024-07-01 means asked with a later day.
    assert store.due_for_retention(dt.date(2024, 7, 1), 10) == []
    assert store.due_for_retention(dt.date(2024, 7, 2), 10) == [TracingKey("DSS", "NH-EARLY")]
    # An update with a later completion moves its due day; a delete takes it out.
    store.write([Upsert(nac("NH-EARLY", (2015, 7, 1), ssn=OTHER_SSN, version=2))], actor="DSS")
    assert store.due_for_retention(dt.date(2027, 1, 1), 10) == [TracingKey("DSS", "NH-LATE")]
    store.write([Delete(TracingKey("DSS", "NH-LATE"), 5, "DELETED BY OWNING AGENCY")], actor="DSS")
    assert store.due_for_retention(dt.date(2100, 1, 1), 10) == [TracingKey("DSS", "NH-EARLY")]


def _clearance_wire() -> tracing_pb2.Tracing:
    wire = f.person("ARMY-CCF", "CL-1", 1)
    c = wire.clearance
    c.granted_on.year, c.granted_on.month, c.granted_on.day = 2001, 3, 4
    c.eligibility_level = tracing_pb2.CLEARANCE_LEVEL_SECRET
    c.access_level = tracing_pb2.CLEARANCE_LEVEL_SECRET
    c.subject_category = tracing_pb2.SUBJECT_CATEGORY_MILITARY
    return wire


def test_a_schema_1_file_is_migrated_on_open(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    first = SqliteStore(path)
    first.write([Upsert(nac("NH-1", (2009, 7, 1))), Upsert(file_tracing("NCIS-F-1"))], actor="loader")
    first.close()
    with sqlite3.connect(path) as conn:  # what a schema-1 file looks like: no NAC-history index rows
        conn.execute("DELETE FROM nac_history")
        conn.execute("DROP TABLE match_keys")  # and the blocking keys of schema 1 and 2 (tests/test_sqlite_keys.py)
        conn.execute("ALTER TABLE tracing DROP COLUMN head")  # nor the heads of schema 3
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    conn.close()

    second = SqliteStore(path)
    try:
        assert second.due_for_retention(dt.date(2100, 1, 1), 10) == [TracingKey("DSS", "NH-1")]
        heads, loaded = second.load_heads([1, 2]), second.load([1, 2])
        assert len(heads) == 2 and heads == {i: TracingHead.of(s.tracing) for i, s in loaded.items()}
        assert second.check_integrity() == []
    finally:
        second.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (SCHEMA_VERSION,)
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    conn.close()
    with pytest.raises(FailedPrecondition, match="schema version 99, newer than this program's"):
        SqliteStore(path)  # in one line, before the writer's set-up changes the file
