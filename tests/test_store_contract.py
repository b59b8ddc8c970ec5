"""The storage contract on every backend (tests/store_backends.py): writes (versions, tombstones, completions)
and the lifecycle rules. Statements of dispute are in tests/test_store_contract_disputes.py; reads in key order
in tests/test_store_contract_scans.py; heads, snapshots and the cross-backend answers in
tests/test_store_contract_reads.py; migration, rebuilds and the operator's commands in
tests/test_store_contract_admin.py."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from indexer.model import TracingKey, TracingType
from indexer.store.base import (
    IMPERSONAL_TITLE_OVER_ANOTHER_TYPE,
    Delete,
    DeletionRecord,
    Replace,
    TracingStore,
    Upsert,
    WriteOutcome,
    WriteResult,
)
from tests import factories as f
from tests import store_backends
from tests.store_backends import NOW, Opener, _dispute, _live, _title
from tests.test_store_lifecycle import CASES, Case, _checked, file_tracing, nac, nac_pending

ACTOR = "DSS-HQ-01/dss-op"

# The fixtures these tests take, bound here by name so pytest finds them (importing them would do the same, but
# ruff reads each test's parameter of that name as a redefinition of an unused import, F811).
open_store, store = store_backends.open_store, store_backends.store


# ---- writes: versions, tombstones, completions ----


def test_upsert_get_load_count(store: TracingStore) -> None:
    one, two = file_tracing("NCIS-F-1"), file_tracing("NCIS-F-2", surname="Moore")
    assert store.write([Upsert(one), Upsert(two)], actor="NCIS") == [WriteResult(WriteOutcome.APPLIED, 1)] * 2
    found = store.get(one.key)
    assert found is not None
    assert (found.tracing, found.indexed_at, found.dispute) == (one, NOW, None)
    assert store.get(TracingKey("NCIS", "NCIS-F-3")) is None
    rows = store.scan_names("WHITFIELD", "HAROLD", given_is_prefix=False, after=None, limit=10)
    assert [r.tracing_id for r in rows] == [rows[0].tracing_id]
    loaded = store.load([rows[0].tracing_id, 424242])
    assert [s.tracing for s in loaded.values()] == [one]
    assert store.load([]) == {}
    assert store.count() == 2
    assert store.check_integrity() == []
    assert store.repair() == []


def test_a_replay_or_an_older_version_changes_nothing(store: TracingStore) -> None:
    v2 = _checked(f.person("NCIS", "NCIS-F-1", 2, given="Harry"))
    assert store.write([Upsert(v2)], actor="NCIS")[0] == WriteResult(WriteOutcome.APPLIED, 2)
    assert store.write([Upsert(v2)], actor="NCIS")[0] == WriteResult(WriteOutcome.UNCHANGED, 2)
    older = _checked(f.person("NCIS", "NCIS-F-1", 1))
    assert store.write([Upsert(older)], actor="NCIS")[0] == WriteResult(WriteOutcome.UNCHANGED, 2)
    found = store.get(v2.key)
    assert found is not None
    assert found.tracing == v2
    # Within one write, in order: the later version wins, the earlier one is then a late arrival.
    v3, v4 = (_checked(f.person("NCIS", "NCIS-F-1", v, given=g)) for v, g in ((3, "Hal"), (4, "Harold")))
    results = store.write([Upsert(v4), Upsert(v3)], actor="NCIS")
    assert [r.outcome for r in results] == [WriteOutcome.APPLIED, WriteOutcome.UNCHANGED]
    assert store.get(v2.key) is not None and store.get(v2.key).tracing == v4  # type: ignore[union-attr]


def test_a_tombstone_keeps_a_late_older_upsert_out(store: TracingStore) -> None:
    key = TracingKey("NCIS", "NCIS-F-1")
    store.write([Upsert(file_tracing("NCIS-F-1"))], actor="NCIS")
    assert store.write([Delete(key, 3, "DELETED BY OWNING AGENCY")], actor="NCIS")[0] == WriteResult(
        WriteOutcome.APPLIED, 3
    )
    assert store.get(key) is None
    late = _checked(f.person("NCIS", "NCIS-F-1", 2))
    assert store.write([Upsert(late)], actor="NCIS")[0] == WriteResult(WriteOutcome.UNCHANGED, 3)
    assert store.get(key) is None
    assert store.write([Delete(key, 3, "again")], actor="NCIS")[0] == WriteResult(WriteOutcome.UNCHANGED, 3)
    assert store.write([Delete(key, 4, "again")], actor="NCIS")[0] == WriteResult(WriteOutcome.NOT_FOUND, 4)
    # A delete that overtakes its upsert: remembered, so the upsert cannot land after it.
    other = TracingKey("NCIS", "NCIS-F-9")
    assert store.write([Delete(other, 5, "DELETED BY OWNING AGENCY")], actor="NCIS")[0] == WriteResult(
        WriteOutcome.NOT_FOUND, 5
    )
    early = _checked(f.person("NCIS", "NCIS-F-9", 4))
    assert store.write([Upsert(early)], actor="NCIS")[0].outcome is WriteOutcome.UNCHANGED
    newer = _checked(f.person("NCIS", "NCIS-F-9", 6))
    assert store.write([Upsert(newer)], actor="NCIS")[0] == WriteResult(WriteOutcome.APPLIED, 6)
    assert store.write([Delete(TracingKey("NCIS", "NONE"), 0, "x")], actor="r")[0].outcome is WriteOutcome.NOT_FOUND
    assert {s.tracing.key for s in store.iter_all()} == {newer.key}
    assert sorted((t.key.record_number, t.source_version) for t in store.iter_tombstones()) == [("NCIS-F-1", 4)]
    assert store.count() == 1
    assert [(r.key, r.source_version) for r in store.deletions()] == [(key, 3)]


def test_retentions_delete_takes_the_version_held(store: TracingStore) -> None:
    held = nac("NH-1", (2009, 7, 1), version=7)
    store.write([Upsert(held)], actor="DSS")
    assert store.write([Delete(held.key, 6, "stale")], actor="r")[0] == WriteResult(WriteOutcome.UNCHANGED, 7)
    assert store.write([Delete(held.key, 0, "RETENTION")], actor="r")[0] == WriteResult(WriteOutcome.APPLIED, 7)
    assert store.get(held.key) is None


def test_a_completion_replaces_atomically_and_only_the_expected_type(store: TracingStore) -> None:
    store.write([Upsert(_checked(f.open_case(record="OC-1")))], actor="NCIS")
    old, done = TracingKey("NCIS", "OC-1"), _checked(f.person("NCIS", "F-1", 2))
    assert store.write([Replace(old, TracingType.NAC_PENDING, done)], actor="NCIS")[0] == WriteResult(
        WriteOutcome.NOT_FOUND, 0
    )
    missing = TracingKey("NCIS", "OC-9")
    assert (
        store.write([Replace(missing, TracingType.OPEN_CASE, done)], actor="NCIS")[0].outcome is WriteOutcome.NOT_FOUND
    )
    assert _live(store) == {"OC-1"}
    assert store.write([Replace(old, TracingType.OPEN_CASE, done)], actor="NCIS")[0] == WriteResult(
        WriteOutcome.APPLIED, 2
    )
    assert _live(store) == {"F-1"}
    assert store.get(old) is None
    assert store.write([Replace(old, TracingType.OPEN_CASE, done)], actor="NCIS")[0].outcome is WriteOutcome.UNCHANGED
    assert store.deletions() == [  # ended at the completion's version (tests/test_store_contract_late.py)
        DeletionRecord(old, TracingType.OPEN_CASE, 2, "SUPERSEDED by FILE NCIS/F-1", "NCIS", NOW)
    ]
    assert store.check_integrity() == []


def test_a_completion_whose_new_record_came_first_retires_the_old_one(open_store: Opener) -> None:
    """The file reached the index first (a reload, another feed), then the completion naming the open case:
    it was answered UNCHANGED and the open case stayed live for ever beside the file. Not an old key used
    again after the new record was indexed: that is another record than the one the completion replaced."""
    clock = [NOW]
    store = open_store(clock=lambda: clock[0])
    case, file = _checked(f.open_case(record="OC-1")), _checked(f.person("NCIS", "F-1", 2))
    store.write([Upsert(case)], actor="NCIS")
    clock[0] += dt.timedelta(seconds=1)
    store.write([Upsert(file)], actor="NCIS")
    completion = Replace(case.key, TracingType.OPEN_CASE, file)
    assert store.write([completion], actor="NCIS")[0] == WriteResult(WriteOutcome.APPLIED, 2)
    assert _live(store) == {"F-1"}
    assert [(r.key.record_number, r.reason) for r in store.deletions()] == [("OC-1", "SUPERSEDED by FILE NCIS/F-1")]
    assert store.write([completion], actor="NCIS")[0] == WriteResult(WriteOutcome.UNCHANGED, 2)
    clock[0] += dt.timedelta(seconds=1)
    again = _checked(f.open_case(record="OC-1", version=5))  # the open case's number used again, later
    store.write([Upsert(again)], actor="NCIS")
    assert store.write([completion], actor="NCIS")[0] == WriteResult(WriteOutcome.UNCHANGED, 2)  # a late replay
    assert _live(store) == {"F-1", "OC-1"}
    assert store.check_integrity() == []


def test_a_history_superseded_then_written_again_in_one_write_keeps_its_log_entry(store: TracingStore) -> None:
    """In order, as one group: the favorable history supersedes H1 (logged), then H1 comes again at a newer
    version (a new life). OpenSearch's tombstone for H1 was refused by that newer version, and the entry
    taken back as if another writer had overtaken it: the deletion logs of the two stores differed."""
    earlier = nac("NH-1", (2012, 5, 1))
    store.write([Upsert(earlier)], actor="DSS")
    again = nac("NH-1", (2012, 5, 1), version=2)
    results = store.write([Upsert(nac("NH-2", (2018, 5, 1))), Upsert(again)], actor="DSS")
    assert [r.outcome for r in results] == [WriteOutcome.APPLIED, WriteOutcome.APPLIED]
    assert _live(store) == {"NH-1", "NH-2"}
    assert [(r.key.record_number, r.source_version) for r in store.deletions()] == [("NH-1", 1)]
    assert store.check_integrity() == []


def test_an_upsert_that_changes_a_live_tracings_type_logs_the_old_ones_end(store: TracingStore) -> None:
    """An open case sent again as its file under the same number (or a NAC history as a file) was a
    completion without a deletion-log entry: the privacy office's log lacked the open case's end, and a
    history left retention unrecorded. The key and its statement of dispute go on."""
    case = _checked(f.open_case(record="OC-1"))
    store.write([Upsert(case)], actor="NCIS")
    assert store.set_dispute(case.key, _dispute(1))
    as_file = _checked(f.person("NCIS", "OC-1", 2))
    assert store.write([Upsert(as_file)], actor="NCIS")[0] == WriteResult(WriteOutcome.APPLIED, 2)
    assert store.write([Upsert(_checked(f.person("NCIS", "OC-1", 3, given="Harry")))], actor="NCIS")[0].outcome is (
        WriteOutcome.APPLIED
    )  # the same type again: nothing ends
    assert store.deletions() == [
        DeletionRecord(case.key, TracingType.OPEN_CASE, 1, "SUPERSEDED by FILE NCIS/OC-1", "NCIS", NOW)
    ]
    held = store.get(case.key)
    assert held is not None and held.tracing.type is TracingType.FILE and held.dispute == _dispute(1)
    assert store.check_integrity() == []


def test_a_key_that_held_another_type_never_becomes_an_impersonal_title(store: TracingStore) -> None:
    """Impersonal titles are kept and corrected, never created: an upsert of a "1997" title over a key that
    held a person's file (live or deleted) would be a new title under an old date. Refused with the field;
    a title corrected under its own key, and a legacy title loaded under a new key, still land."""
    person = _checked(f.person("DSS", "T-9", 1))
    store.write([Upsert(person)], actor="DSS")
    as_title = dataclasses.replace(_title("T-9", "ACME Dynamics"), source_version=2)
    [refused] = store.write([Upsert(as_title)], actor="DSS")
    assert refused == WriteResult(WriteOutcome.REFUSED, 1, IMPERSONAL_TITLE_OVER_ANOTHER_TYPE)
    held = store.get(person.key)
    assert held is not None and held.tracing == person and store.deletions() == []
    assert store.write([Delete(person.key, 3, "closed")], actor="DSS")[0].outcome is WriteOutcome.APPLIED
    later = dataclasses.replace(as_title, source_version=4)
    assert store.write([Upsert(later)], actor="DSS")[0].outcome is WriteOutcome.REFUSED  # deleted: still its key
    assert store.write([Upsert(as_title)], actor="DSS")[0].outcome is WriteOutcome.UNCHANGED  # older: a replay
    legacy = _title("T-10", "ACME Dynamics")
    corrected = dataclasses.replace(_title("T-10", "ACME Dynamics Inc"), source_version=2)
    assert [r.outcome for r in store.write([Upsert(legacy), Upsert(corrected)], actor="DSS")] == [
        WriteOutcome.APPLIED,
        WriteOutcome.APPLIED,
    ]
    assert store.scan_titles("ACME DYNAMICS INC", prefix=False, after=None, limit=10) != []
    assert store.check_integrity() == []


# ---- lifecycle rules (the embedded store's own cases, on every backend) ----


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_favorable_nac_history_supersedes_the_subjects_earlier_ones(store: TracingStore, case: Case) -> None:
    store.write([Upsert(t) for t in case.held], actor="loader")
    [result] = store.write([Upsert(case.arriving)], actor=ACTOR)
    assert result.outcome is WriteOutcome.APPLIED
    everyone = {t.key.record_number for t in (*case.held, case.arriving)}
    assert _live(store) == everyone - set(case.superseded)
    log = {r.key.record_number: r for r in store.deletions()}
    assert set(log) == set(case.superseded)
    for record in case.superseded:
        held = next(t for t in case.held if t.key.record_number == record)
        reason = f"SUPERSEDED by favorable NAC history {case.arriving.key}"
        assert log[record] == DeletionRecord(held.key, TracingType.NAC_HISTORY, held.source_version, reason, ACTOR, NOW)
    due = {k.record_number for k in store.due_for_retention(dt.date(2100, 1, 1), 100)}
    histories = {t.key.record_number for t in (*case.held, case.arriving) if t.type is TracingType.NAC_HISTORY}
    assert due == histories - set(case.superseded)
    assert store.check_integrity() == []


def test_a_completion_with_a_favorable_history_supersedes_in_the_same_write(store: TracingStore) -> None:
    store.write([Upsert(nac("NH-1", (2012, 5, 1))), Upsert(nac_pending("NP-1"))], actor="loader")
    completion = Replace(TracingKey("DSS", "NP-1"), TracingType.NAC_PENDING, nac("NH-2", (2018, 5, 1)))
    assert store.write([completion], actor=ACTOR)[0].outcome is WriteOutcome.APPLIED
    assert _live(store) == {"NH-2"}
    log = {r.key.record_number: r for r in store.deletions()}
    assert log["NP-1"].reason == "SUPERSEDED by NAC_HISTORY DSS/NH-2"
    assert log["NH-1"].reason == "SUPERSEDED by favorable NAC history DSS/NH-2"
    assert {(r.actor, r.deleted_at) for r in log.values()} == {(ACTOR, NOW)}
    # A replay deletes nothing more, and a superseded history resent at its version stays deleted.
    assert store.write([Upsert(nac("NH-2", (2018, 5, 1)))], actor=ACTOR)[0].outcome is WriteOutcome.UNCHANGED
    assert store.write([Upsert(nac("NH-1", (2012, 5, 1)))], actor="DSS")[0].outcome is WriteOutcome.UNCHANGED
    assert _live(store) == {"NH-2"}
    assert len(store.deletions()) == 2


def test_retention_due_days_follow_updates_and_deletes(store: TracingStore) -> None:
    store.write(
        [
            Upsert(nac("NH-LATE", (2011, 7, 1))),
            Upsert(nac("NH-EARLY", (2009, 7, 1), ssn="212-45-6789")),
            Upsert(file_tracing("NCIS-F-1")),
            Upsert(nac_pending("NP-1")),
        ],
        actor="loader",
    )
    early, late = TracingKey("DSS", "NH-EARLY"), TracingKey("DSS", "NH-LATE")
    assert store.due_for_retention(dt.date(2100, 1, 1), 10) == [early, late]
    assert store.due_for_retention(dt.date(2100, 1, 1), 1) == [early]
    assert store.due_for_retention(dt.date(2024, 7, 1), 10) == []
    assert store.due_for_retention(dt.date(2024, 7, 2), 10) == [early]
    store.write([Upsert(nac("NH-EARLY", (2015, 7, 1), ssn="212-45-6789", version=2))], actor="DSS")
    assert store.due_for_retention(dt.date(2027, 1, 1), 10) == [late]
    store.write([Delete(late, 5, "DELETED BY OWNING AGENCY")], actor="DSS")
    assert store.due_for_retention(dt.date(2100, 1, 1), 10) == [early]


def test_a_group_deleting_a_key_then_completing_into_it_acts_as_the_two_writes_in_order(open_store: Opener) -> None:
    """OpenSearch remembered the deleted record's old indexing time within the group, and its completion
    into that key was answered UNCHANGED, the open case left live; written apart, both stores retire it
    (a differential test of the two backends)."""
    clock = [NOW]
    store = open_store(lambda: clock[0])
    store.write([Upsert(file_tracing("R3"))], actor="NCIS")
    clock[0] += dt.timedelta(seconds=1)
    store.write([Upsert(_checked(f.open_case("NCIS", "R1")))], actor="NCIS")
    clock[0] += dt.timedelta(seconds=1)
    completion = Replace(TracingKey("NCIS", "R1"), TracingType.OPEN_CASE, _checked(f.person("NCIS", "R3", 1)))
    group = [Delete(TracingKey("NCIS", "R3"), 2, "DELETED BY OWNING AGENCY"), completion]
    results = store._writer.submit(group, "NCIS")  # type: ignore[attr-defined]
    assert [r.outcome for r in results] == [WriteOutcome.APPLIED, WriteOutcome.APPLIED]
    assert store.get(TracingKey("NCIS", "R1")) is None and store.count() == 0
    assert store.check_integrity() == []


def test_last_deleted_says_when_a_keys_present_life_began(store: TracingStore) -> None:
    key, other = TracingKey("NCIS", "NCIS-F-1"), TracingKey("NCIS", "NCIS-F-2")
    store.write([Upsert(file_tracing("NCIS-F-1")), Upsert(file_tracing("NCIS-F-2"))], actor="NCIS")
    assert store.last_deleted(key) is None
    store.write([Delete(key, 2, "DELETED BY OWNING AGENCY")], actor="NCIS")
    store.write([Upsert(_checked(f.person("NCIS", "NCIS-F-1", 3)))], actor="NCIS")
    assert store.last_deleted(key) == NOW == max(r.deleted_at for r in store.deletions() if r.key == key)
    assert store.last_deleted(other) is None
    # An open case sent again as its file under the same number is logged as superseded by itself, but its
    # life goes on (its dispute with it): not an end (diff review 21b-2).
    store.write([Upsert(_checked(f.open_case("NCIS", "NCIS-OC-9")))], actor="NCIS")
    store.write([Upsert(_checked(f.person("NCIS", "NCIS-OC-9", 2)))], actor="NCIS")
    assert [r.reason for r in store.deletions() if r.key.record_number == "NCIS-OC-9"] == [
        "SUPERSEDED by FILE NCIS/NCIS-OC-9"
    ]
    assert store.last_deleted(TracingKey("NCIS", "NCIS-OC-9")) is None
    # An agency's own reason naming the key is a deletion all the same (third diff review 2).
    store.write([Delete(other, 2, f"ENTERED IN ERROR, WITHDRAWN: {other}")], actor="NCIS")
    assert store.last_deleted(other) == NOW
