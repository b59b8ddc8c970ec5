"""The storage contract for statements of dispute, on every backend (tests/store_backends.py): a dispute stays
through updates of its tracing and its person, goes when the tracing is deleted, completed or superseded or the
record is refiled to someone else, and stays when filed in the writer's group right behind a refile or a
superseded history written again. Writes and the lifecycle rules: tests/test_store_contract.py."""

from __future__ import annotations

import datetime as dt

import pytest

from indexer.model import TracingKey, TracingType
from indexer.store.base import Delete, DeletionRecord, Replace, TracingStore, Upsert, WriteOutcome
from tests import factories as f
from tests import store_backends
from tests.store_backends import NOW, Opener, _dispute
from tests.test_store_contract import ACTOR
from tests.test_store_lifecycle import _checked, file_tracing, nac, nac_pending

# The fixtures these tests take, bound here by name so pytest finds them (importing them would do the same, but
# ruff reads each test's parameter of that name as a redefinition of an unused import, F811).
open_store, store = store_backends.open_store, store_backends.store


def test_disputes_stay_through_updates_and_go_with_the_tracing(open_store: Opener) -> None:
    store = open_store()
    key, other = TracingKey("NCIS", "NCIS-F-1"), TracingKey("NCIS", "NCIS-F-2")
    assert store.set_dispute(key, _dispute(1)) is False
    store.write([Upsert(file_tracing("NCIS-F-1")), Upsert(file_tracing("NCIS-F-2"))], actor="NCIS")
    assert store.set_dispute(key, _dispute(1)) is True
    store.write([Upsert(_checked(f.person("NCIS", "NCIS-F-1", 2, given="Harry")))], actor="NCIS")
    updated = store.get(key)
    assert updated is not None
    assert (updated.tracing.source_version, updated.dispute) == (2, _dispute(1))
    ids = [r.tracing_id for r in store.scan_names("WHITFIELD", None, given_is_prefix=False, after=None, limit=10)]
    assert {s.tracing.key: s.dispute for s in store.load(ids).values()} == {key: _dispute(1), other: None}
    assert store.set_dispute(key, _dispute(2)) is True
    again = open_store().get(key)  # another store on the same data (a restart, another instance)
    assert again is not None
    assert again.dispute == _dispute(2)
    store.write([Delete(key, 3, "DELETED BY OWNING AGENCY")], actor="NCIS-RA-01/ncis-op")
    assert store.get(key) is None
    assert store.set_dispute(key, _dispute(3)) is False
    store.write([Upsert(_checked(f.person("NCIS", "NCIS-F-1", 4)))], actor="NCIS")
    back = store.get(key)
    assert back is not None
    assert back.dispute is None
    assert store.deletions() == [
        DeletionRecord(key, TracingType.FILE, 3, "DELETED BY OWNING AGENCY", "NCIS-RA-01/ncis-op", NOW)
    ]
    assert store.deletions(since=NOW) == store.deletions()
    assert store.deletions(since=NOW + dt.timedelta(microseconds=1)) == []
    assert store.check_integrity() == []


@pytest.mark.parametrize(
    ("change", "kept"),
    [
        ({"given": "Harry"}, True),  # a name corrected: the SSN vouches
        ({"ssn": "212-45-6789"}, True),  # an SSN corrected: the name vouches
        ({"ssn": ""}, True),  # an SSN removed
        ({"surname": "Quintero", "given": "Alice", "ssn": "212-45-6789"}, False),  # refiled to another person
    ],
)
def test_a_dispute_stays_with_its_person_not_with_the_record_number(
    store: TracingStore, change: dict[str, str], kept: bool
) -> None:
    """The statement describes its person: refiled under the same number to someone else, the record
    showed the first person's statement to whoever saw the second's (privacy review 1)."""
    key = TracingKey("NCIS", "NCIS-F-1")
    store.write([Upsert(file_tracing("NCIS-F-1"))], actor="NCIS")
    assert store.set_dispute(key, _dispute(1))
    store.write([Upsert(_checked(f.person("NCIS", "NCIS-F-1", 2, **change)))], actor="NCIS")  # type: ignore[arg-type]
    updated = store.get(key)
    assert updated is not None and updated.tracing.source_version == 2
    assert updated.dispute == (_dispute(1) if kept else None)
    assert store.check_integrity() == []


def test_a_dispute_filed_in_the_write_group_of_a_refile_after_it_stays(store: TracingStore) -> None:
    """The writer groups concurrent submits: OpenSearch sent the refile's removal of the old dispute after
    every operation of the group, and so removed the new person's statement filed right behind it."""
    from indexer.store.opensearch import OpenSearchStore
    from indexer.store.opensearch_plan import SetDispute as ClusterSetDispute
    from indexer.store.sqlite_ops import SetDispute as EmbeddedSetDispute

    key = TracingKey("NCIS", "NCIS-F-1")
    store.write([Upsert(file_tracing("NCIS-F-1"))], actor="NCIS")
    assert store.set_dispute(key, _dispute(1))
    refiled = _checked(f.person("NCIS", "NCIS-F-1", 2, surname="Quintero", given="Alice", ssn="212-45-6789"))
    filed = (ClusterSetDispute if isinstance(store, OpenSearchStore) else EmbeddedSetDispute)(key, _dispute(2))
    results = store._writer.submit([Upsert(refiled), filed], "NCIS")  # type: ignore[attr-defined]
    assert [r.outcome for r in results] == [WriteOutcome.APPLIED, WriteOutcome.APPLIED]
    now = store.get(key)
    assert now is not None and now.dispute == _dispute(2)
    assert store.check_integrity() == []


def test_a_dispute_filed_after_a_superseded_history_is_written_again_in_its_group_stays(store: TracingStore) -> None:
    """OpenSearch removed the superseded life's dispute after the whole group (step 3), and with it the
    statement filed on the new life right behind it (diff review 21b-4)."""
    from indexer.store.opensearch import OpenSearchStore
    from indexer.store.opensearch_plan import SetDispute as ClusterSetDispute
    from indexer.store.sqlite_ops import SetDispute as EmbeddedSetDispute

    store.write([Upsert(nac("NH-1", (2012, 5, 1)))], actor="DSS")
    key = TracingKey("DSS", "NH-1")
    filed = (ClusterSetDispute if isinstance(store, OpenSearchStore) else EmbeddedSetDispute)(key, _dispute(2))
    ops = [Upsert(nac("NH-2", (2018, 5, 1))), Upsert(nac("NH-1", (2012, 5, 1), version=2)), filed]
    results = store._writer.submit(ops, "DSS")  # type: ignore[attr-defined]
    assert [r.outcome for r in results] == [WriteOutcome.APPLIED] * 3
    now = store.get(key)
    assert now is not None and now.dispute == _dispute(2)
    assert store.check_integrity() == []
    # Its end by supersession stays logged (OpenSearch took the log entry back: third diff review 1).
    assert [(r.key, r.source_version) for r in store.deletions()] == [(key, 1)]


def test_a_completed_or_superseded_tracing_takes_its_dispute(store: TracingStore) -> None:
    store.write([Upsert(nac("NH-1", (2012, 5, 1))), Upsert(nac_pending("NP-1"))], actor="loader")
    assert store.set_dispute(TracingKey("DSS", "NH-1"), _dispute(1))
    assert store.set_dispute(TracingKey("DSS", "NP-1"), _dispute(2))
    completion = Replace(TracingKey("DSS", "NP-1"), TracingType.NAC_PENDING, nac("NP-1", (2018, 5, 1), version=2))
    store.write([completion], actor=ACTOR)
    completed = store.get(TracingKey("DSS", "NP-1"))
    assert completed is not None
    assert (completed.tracing.type, completed.dispute) == (TracingType.NAC_HISTORY, None)
    assert store.get(TracingKey("DSS", "NH-1")) is None
    assert store.check_integrity() == []
