"""On every backend: a record a completion or a favorable NAC history ended is ended at the version of the
action that ended it, so an older update of it arriving late (files may arrive out of order; a replay) is
refused, where at its own version it came back, an open case or NAC pending live again beside the record
that replaced it (connectors review 2). An update newer than the ending action is a new life, as after a
delete."""

from __future__ import annotations

import datetime as dt

import pytest

from indexer.model import TracingKey, TracingType
from indexer.store.base import Replace, TracingStore, Upsert, WriteOutcome, WriteResult
from tests import factories as f
from tests import store_backends
from tests.store_backends import NOW, Opener, _live
from tests.test_store_lifecycle import _checked, nac

open_store, store = (
    store_backends.open_store,
    store_backends.store,
)  # fixtures, bound by name (tests/test_store_contract.py)


@pytest.mark.parametrize("kind", ["open case", "NAC pending"])
def test_a_late_older_update_of_a_completed_record_does_not_bring_it_back(store: TracingStore, kind: str) -> None:
    if kind == "open case":
        old = _checked(f.open_case("DSS", "IC-1", 1000))
        late = _checked(f.open_case("DSS", "IC-1", 2000))
        new = _checked(f.person("DSS", "PSI-IC-1", 3000))
        expected = TracingType.OPEN_CASE
    else:
        old = _checked(f.nac_pending("DSS", "NP-1", 1000))
        late = _checked(f.nac_pending("DSS", "NP-1", 2000))
        new = nac("NH-1", (2024, 6, 1), version=3000)
        expected = TracingType.NAC_PENDING
    store.write([Upsert(old)], actor="DSS")
    assert store.write([Replace(old.key, expected, new)], actor="DSS")[0] == WriteResult(WriteOutcome.APPLIED, 3000)
    assert store.write([Upsert(late)], actor="DSS")[0] == WriteResult(WriteOutcome.UNCHANGED, 3000)
    assert _live(store) == {new.key.record_number}
    assert [(r.key, r.source_version) for r in store.deletions()] == [(old.key, 3000)]
    reopened = _checked(f.open_case("DSS", "IC-1", 4000)) if kind == "open case" else None
    if reopened is not None:  # the repository's later action on the old number: a new life
        assert store.write([Upsert(reopened)], actor="DSS")[0] == WriteResult(WriteOutcome.APPLIED, 4000)
        assert _live(store) == {"IC-1", "PSI-IC-1"}
    assert store.check_integrity() == []


def test_a_late_older_update_of_a_superseded_history_does_not_bring_it_back(store: TracingStore) -> None:
    store.write([Upsert(nac("NH-1", (2012, 5, 1), version=1000))], actor="DSS")
    assert store.write([Upsert(nac("NH-2", (2018, 5, 1), version=3000))], actor="DSS")[0].outcome is (
        WriteOutcome.APPLIED
    )
    late = nac("NH-1", (2012, 5, 1), version=2000)
    assert store.write([Upsert(late)], actor="DSS")[0] == WriteResult(WriteOutcome.UNCHANGED, 3000)
    assert _live(store) == {"NH-2"}
    assert store.get(TracingKey("DSS", "NH-1")) is None
    assert store.check_integrity() == []


def test_in_one_write_an_older_update_after_the_action_that_ended_it_changes_nothing(store: TracingStore) -> None:
    old = _checked(f.open_case("DSS", "IC-1", 1000))
    store.write([Upsert(old), Upsert(nac("NH-1", (2012, 5, 1), version=1000))], actor="DSS")
    completion = Replace(old.key, TracingType.OPEN_CASE, _checked(f.person("DSS", "PSI-IC-1", 3000)))
    results = store.write(
        [
            completion,
            Upsert(_checked(f.open_case("DSS", "IC-1", 2000))),
            Upsert(nac("NH-2", (2018, 5, 1), version=3000)),
            Upsert(nac("NH-1", (2012, 5, 1), version=2000)),
        ],
        actor="DSS",
    )
    assert [r.outcome for r in results] == [WriteOutcome.APPLIED, WriteOutcome.UNCHANGED] * 2
    assert _live(store) == {"PSI-IC-1", "NH-2"}
    assert store.check_integrity() == []


@pytest.mark.parametrize("again", ["the same history", "another record at its version"])
def test_a_favorable_history_sent_again_ends_an_earlier_one_its_own_write_group_kept(
    open_store: Opener, again: str
) -> None:
    """A favorable history that came first in its write group keeps an earlier history that came after it
    (supersession is judged as each is indexed); sent again at the version it is stored at, it deletes that
    one, as the OpenSearch backend's replay must (it cannot tell such a history from one a crash left
    undeleted), and keeps one indexed after it. Both backends alike (a differential test of the two found
    them apart, twice: the second time with a file sent at the history's version, refused as UNCHANGED)."""
    resent = nac("NH-1", (2020, 6, 1)) if again == "the same history" else _checked(f.person("DSS", "NH-1", 1))
    moment = [NOW]
    store = open_store(clock=lambda: moment[0])
    results = store.write([Upsert(nac("NH-1", (2020, 6, 1))), Upsert(nac("NH-2", (2015, 7, 1)))], actor="DSS")
    assert [r.outcome for r in results] == [WriteOutcome.APPLIED] * 2
    moment[0] = NOW + dt.timedelta(seconds=5)
    assert store.write([Upsert(nac("NH-0", (2013, 3, 1)))], actor="DSS")[0].outcome is WriteOutcome.APPLIED
    assert _live(store) == {"NH-0", "NH-1", "NH-2"}
    moment[0] = NOW + dt.timedelta(seconds=10)
    [replayed] = store.write([Upsert(resent)], actor="DSS")
    assert replayed == WriteResult(WriteOutcome.UNCHANGED, 1)
    assert _live(store) == {"NH-0", "NH-1"}
    [ended] = store.deletions()
    assert (ended.key, ended.reason) == (TracingKey("DSS", "NH-2"), "SUPERSEDED by favorable NAC history DSS/NH-1")
    assert store.write([Upsert(nac("NH-1", (2020, 6, 1)))], actor="DSS")[0].outcome is WriteOutcome.UNCHANGED
    assert _live(store) == {"NH-0", "NH-1"}
    assert store.check_integrity() == []
