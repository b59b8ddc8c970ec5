"""The OpenSearch writer where a bulk is not atomic, two instances race, or a completion was left half done
(indexer.store.opensearch_writer), through the failing proxy of tests/test_opensearch_write_steps.py. Each case
ends as some serial order of the same calls ends on the embedded store: a deletion is never unlogged, a live
record never loses its statement of dispute, and an old record a completion replaced never comes back."""

from __future__ import annotations

import pytest

from indexer.exc import Unavailable
from indexer.model import TracingType
from indexer.store.base import Delete, Replace, Upsert, WriteOutcome
from indexer.store.opensearch import OpenSearchStore
from tests import factories as f
from tests import store_backends
from tests.store_backends import _dispute, _live
from tests.test_opensearch_write_steps import FailingProxy, through_proxy
from tests.test_store_lifecycle import _checked

open_cluster = store_backends.open_cluster
__all__ = ["open_cluster", "through_proxy"]  # fixtures, bound here by name so pytest finds them

Stores = tuple[OpenSearchStore, OpenSearchStore, FailingProxy]


@pytest.mark.parametrize("step", [1, 2, 3])
def test_a_delete_failing_at_any_step_is_logged_once_the_replay_lands(through_proxy: Stores, step: int) -> None:
    """Its log entry (1), its tombstone (2), its dispute's removal (3). The entry went in one bulk with the
    tombstone, and a bulk is not atomic: when only the entry's shard failed, the record was gone, unlogged,
    and the retry found nothing to do."""
    direct, faulty, proxy = through_proxy
    record = _checked(f.person("NCIS", "R-1", 3))
    direct.write([Upsert(record)], actor="NCIS")
    assert direct.set_dispute(record.key, _dispute(1))
    proxy.arm(step)
    with pytest.raises(Unavailable):
        faulty.write([Delete(record.key, 4, "AGENCY DELETED")], actor="NCIS")
    assert proxy.bulks == step
    logged = [(r.key.record_number, r.reason) for r in direct.deletions()]
    assert logged == ([] if step == 1 else [("R-1", "AGENCY DELETED")])  # logged before its tombstone
    proxy.arm(0)
    faulty.write([Delete(record.key, 4, "AGENCY DELETED")], actor="NCIS")  # the connector's retry
    assert direct.get(record.key) is None and _live(direct) == set()
    assert [(r.key.record_number, r.reason) for r in direct.deletions()] == [("R-1", "AGENCY DELETED")]


def test_a_delete_another_instance_overtakes_leaves_the_record_its_dispute(through_proxy: Stores) -> None:
    """Instance A deletes the record at version 1 while instance B stores version 2 (the same life: the
    statement of dispute stays with it). A's tombstone is refused; its dispute's removal, sent in the same
    bulk, was not: the live record was shown without its dispute, which no serial order gives."""
    direct, faulty, proxy = through_proxy
    first, second = _checked(f.person("NCIS", "R-1", 1)), _checked(f.person("NCIS", "R-1", 2, middle="J"))
    direct.write([Upsert(first)], actor="NCIS")
    assert direct.set_dispute(first.key, _dispute(1))

    def instance_b_writes() -> None:
        direct.write([Upsert(second)], actor="NCIS")

    proxy.before[2] = instance_b_writes  # after A's log entry, before its tombstone
    [result] = faulty.write([Delete(first.key, 1, "AGENCY DELETED")], actor="NCIS")
    assert not proxy.before, "the other write did not run between the requests"
    assert (result.outcome, result.stored_version) == (WriteOutcome.UNCHANGED, 2)
    kept = direct.get(first.key)
    assert kept is not None and kept.tracing.source_version == 2 and kept.dispute == _dispute(1)
    assert direct.deletions() == []  # the entry A wrote is taken back


@pytest.mark.parametrize("then", ["update", "delete"])
def test_a_completion_left_half_done_is_finished_by_the_next_write_of_its_new_record(
    through_proxy: Stores, then: str
) -> None:
    """The completion's tombstone for the old open case failed (the new file hides it). The agency then
    updates, or deletes, the file before the completion is replayed: that write once dropped the new record's
    `replaces`, and the closed open case was shown to every adjudicator again, with nothing left to finish it
    or to tell the check. The write finishes the completion instead."""
    direct, faulty, proxy = through_proxy
    old, new = _checked(f.open_case(record="OC-1")), _checked(f.person("NCIS", "F-1", 2))
    direct.write([Upsert(old)], actor="NCIS")
    proxy.arm(3)  # the log entry and the new record land; the old record's tombstone does not
    with pytest.raises(Unavailable):
        faulty.write([Replace(old.key, TracingType.OPEN_CASE, new)], actor="NCIS")
    proxy.arm(0)
    assert _live(direct) == {"F-1"} and direct.check_integrity() != []  # hidden, and the check sees it
    if then == "update":
        [result] = direct.write([Upsert(_checked(f.person("NCIS", "F-1", 3, given="Harry")))], actor="NCIS")
        live: set[str] = {"F-1"}
    else:
        [result] = direct.write([Delete(new.key, 3, "AGENCY DELETED")], actor="NCIS")
        live = set()
    assert result.outcome is WriteOutcome.APPLIED
    assert direct.get(old.key) is None and _live(direct) == live
    logged = {(r.key.record_number, r.reason) for r in direct.deletions()}
    assert ("OC-1", "SUPERSEDED by FILE NCIS/F-1") in logged
    assert direct.check_integrity() == []
    # The completion's replay, when it comes, changes nothing more.
    assert faulty.write([Replace(old.key, TracingType.OPEN_CASE, new)], actor="NCIS")[0].outcome in (
        WriteOutcome.UNCHANGED,
        WriteOutcome.NOT_FOUND,
    )
    assert direct.get(old.key) is None and _live(direct) == live
