"""Which statement of dispute filed since a batch was answered goes onto its stored hit (search_service.batch
`_surely_theirs`): only one on a record surely still about the person the hit showed (diff review 3)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from dcii.v1 import search_pb2
from indexer.model import Identifiers, PersonName, StoredTracing
from search_service.batch import _surely_theirs
from search_service.convert import tracing_out
from tests.test_matching import person

NOW = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)


def _hit(surname: str, given: str, ssn: str, *, full_ssn: bool) -> search_pb2.Hit:
    hit = search_pb2.Hit()
    shown = person(PersonName(surname, given), Identifiers(ssn=ssn), record="R-1")
    tracing_out(shown, hit.tracing, full_ssn=full_ssn, indexed_at=NOW)
    return hit


def _now(surname: str, given: str, ssn: str) -> StoredTracing:
    return StoredTracing(person(PersonName(surname, given), Identifiers(ssn=ssn), record="R-1"), NOW)


@pytest.mark.parametrize(
    ("now", "full_ssn", "theirs"),
    [
        (("Whitfield", "Harold", "318524471"), False, True),  # unchanged
        (("Whitfield", "Harry", "318524471"), True, True),  # a name corrected: the full SSN vouches
        (("Whitfield", "Harry", "318524471"), False, False),  # ... unless only the last four were shown
        (("Whitfield", "Harold", "529613380"), False, True),  # an SSN corrected: the name vouches
        (("Okafor", "Ngozi", "212444471"), False, False),  # refiled: the same last four vouch for nothing
        (("Okafor", "Ngozi", "529613380"), True, False),
    ],
)
def test_a_newer_statement_goes_only_onto_a_hit_surely_about_the_same_person(
    now: tuple[str, str, str], full_ssn: bool, theirs: bool
) -> None:
    hit = _hit("Whitfield", "Harold", "318524471", full_ssn=full_ssn)
    assert _surely_theirs(hit, _now(*now)) is theirs


def test_a_record_ended_and_written_again_by_one_write_is_sent_when_fetched(tmp_path: Path) -> None:
    """Deleted and filed again in one write, both logged at the same instant; updated since: the batch's hit
    (of the life begun in that write) was dropped as ended (third diff review 3)."""
    from dcii.v1 import batch_pb2
    from indexer.model import TracingKey
    from indexer.store.base import Delete, Upsert
    from indexer.store.sqlite import SqliteStore
    from search_service.batch import _AsNow

    clock = [NOW]
    store = SqliteStore(tmp_path / "index.db", clock=lambda: clock[0])
    try:
        key = TracingKey("NCIS", "R-1")
        first = person(PersonName("Whitfield", "Harold"), Identifiers(ssn="318524471"), record="R-1")
        store.write([Upsert(first)], actor="t")
        again = dataclasses.replace(first, source_version=3)
        store.write([Delete(key, 2, "DELETED BY OWNING AGENCY"), Upsert(again)], actor="t")  # one write, one now
        answered = store.get(key)
        assert answered is not None and store.last_deleted(key) == answered.indexed_at
        result = batch_pb2.BatchQueryResult(query_id="q")
        tracing_out(answered.tracing, result.hits.add().tracing, full_ssn=False, indexed_at=answered.indexed_at)
        clock[0] = NOW + dt.timedelta(days=1)
        store.write([Upsert(dataclasses.replace(first, source_version=4))], actor="t")  # updated since
        assert [h.tracing.key.record_number for h in _AsNow(store).current(result).hits] == ["R-1"]
        store.write([Delete(key, 5, "DELETED BY OWNING AGENCY")], actor="t")  # and once it ends, it goes
        assert _AsNow(store).current(result).hits == []
    finally:
        store.close()
