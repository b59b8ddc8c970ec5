"""The OpenSearch writer's bulk requests failing one by one (indexer.store.opensearch_writer): a real HTTP
proxy between the store and the cluster answers 503 to the Nth `_bulk` request of a write, as an overloaded
cluster does, with the store's retries off. Whatever step fails, no deletion is left unlogged, and the
connector's replay leaves the index as one uninterrupted write would (the embedded store's outcome).

A completion (an open case becomes a file under a new key, its old record disputed) and a favorable NAC history
(superseding the subject's earlier one) each go through four requests: every deletion's log entry, the
operation, the tombstones that follow, then the removal of their disputes.

The proxy is tests/opensearch_proxy.py; the callers of one write group, failed one item at a time, are
tests/test_opensearch_write_groups.py."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from typing import Any

import pytest

from indexer.exc import Unavailable
from indexer.model import Tracing, TracingType
from indexer.store import opensearch_check
from indexer.store.base import Replace, Upsert, WriteOp, WriteOutcome
from indexer.store.opensearch import OpenSearchStore
from indexer.store.opensearch_schema import tid_for
from tests import factories as f
from tests import opensearch_instances, store_backends
from tests.opensearch_proxy import FailingProxy, update_between_the_file_and_the_tombstone
from tests.store_backends import NOW, _dispute, _live
from tests.test_store_lifecycle import _checked, nac

# The fixtures these tests take, bound here by name so pytest finds them (as in test_store_contract_admin.py).
open_cluster = store_backends.open_cluster
through_proxy = opensearch_instances.through_proxy
__all__ = ["FailingProxy", "open_cluster", "through_proxy"]  # imported from here by other tests and the reviews

STEPS = 4  # bulk requests of a write whose operation deletes something
STRAY_DISPUTE = (
    "1 dispute documents point at no live tracing (left by a write cut short; no reader attaches them: "
    "`dcii index repair` removes them)"
)


def _completion() -> tuple[list[Tracing], WriteOp, set[str], list[tuple[str, str]]]:
    old = _checked(f.open_case(record="OC-1"))
    new = _checked(f.person("NCIS", "F-1", 2))
    return [old], Replace(old.key, TracingType.OPEN_CASE, new), {"F-1"}, [("OC-1", "SUPERSEDED by FILE NCIS/F-1")]


def _supersession() -> tuple[list[Tracing], WriteOp, set[str], list[tuple[str, str]]]:
    old, new = nac("NH-1", (2012, 5, 1)), nac("NH-2", (2018, 5, 1))
    return [old], Upsert(new), {"NH-2"}, [("NH-1", "SUPERSEDED by favorable NAC history DSS/NH-2")]


@pytest.mark.parametrize("step", range(1, STEPS + 1))
@pytest.mark.parametrize("case", [_completion, _supersession], ids=["completion", "favorable NAC history"])
def test_a_write_failing_at_any_step_leaves_no_deletion_unlogged_and_a_replay_finishes_it(
    through_proxy: tuple[OpenSearchStore, OpenSearchStore, FailingProxy], case: Any, step: int
) -> None:
    direct, faulty, proxy = through_proxy
    before, op, live_after, logged = case()
    direct.write([Upsert(t) for t in before], actor="NCIS")
    old_key = before[0].key
    assert direct.set_dispute(old_key, _dispute(1))

    proxy.arm(step)
    with pytest.raises(Unavailable):
        faulty.write([op], actor="DSS")
    assert proxy.bulks == step  # the write stopped at the failing request
    deleted = [(r.key.record_number, r.reason) for r in direct.deletions()]
    held = direct._client.get(index=direct.names.tracings, id=str(tid_for(old_key)))["_source"]
    if not held["live"]:
        assert deleted == logged, "a tombstone landed without its deletion-log entry"
    assert deleted in ([], logged)  # at worst logged before its tombstone lands

    proxy.arm(0)
    outcome = faulty.write([op], actor="DSS")[0].outcome
    # Applied when the failed step was the log or the operation, or a completion's tombstone (the replay
    # retires the old record then); else what the replay finishes is only what follows.
    applied = step <= 2 or (case is _completion and step == 3)
    assert outcome is (WriteOutcome.APPLIED if applied else WriteOutcome.UNCHANGED)
    assert _live(direct) == live_after
    assert [(r.key.record_number, r.reason) for r in direct.deletions()] == logged
    assert direct.get(old_key) is None
    # A failed third request leaves the deleted record's statement of dispute behind: no reader attaches it
    # (it names a life that ended), the check reports it, and nothing else is amiss; the repair removes it.
    assert direct.check_integrity() == ([STRAY_DISPUTE] if step == STEPS else [])
    # The operator's command, as run at 3 a.m.: says what it removed, then checks again (exit 0: sound).
    url = f"{direct.settings.hosts[0].replace('http://', 'opensearch://')}?prefix={direct.names.prefix}&replicas=0"
    repaired = subprocess.run(
        [sys.executable, "-m", "dcii.cli.index_cmd", "index", "repair", "--store", url],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    said = ["repaired: 1 dispute documents of no live tracing removed"] if step == STEPS else ["nothing to repair"]
    assert (repaired.returncode, repaired.stderr.splitlines()) == (0, said), repaired.stderr
    assert direct.check_integrity() == []
    assert direct.repair() == []
    assert _live(direct) == live_after


@pytest.mark.parametrize("step", range(1, STEPS + 1))
@pytest.mark.parametrize("case", [_completion, _supersession], ids=["completion", "favorable NAC history"])
def test_a_bulk_whose_answer_is_lost_is_not_sent_again_and_a_replay_finishes_the_write(
    open_cluster: Any, case: Any, step: int
) -> None:
    # The request landed, its answer did not (a gateway's 502). Sent again by the transport, its own versions
    # came back as conflicts, passed for another writer's, and the tombstones that follow were dropped: the
    # superseded history or completed open case stayed live while the deletion log said it was deleted.
    direct = open_cluster()
    assert isinstance(direct, OpenSearchStore)
    proxy = FailingProxy(direct.settings.hosts[0])
    faulty = OpenSearchStore(dataclasses.replace(direct.settings, hosts=(proxy.url,)), clock=lambda: NOW)
    try:
        assert faulty.settings.retries > 0  # the transport's retries on, as deployed
        before, op, live_after, logged = case()
        direct.write([Upsert(t) for t in before], actor="NCIS")
        proxy.arm(step, lose_answer=True)
        with pytest.raises(Unavailable):
            faulty.write([op], actor="DSS")
        assert proxy.bulks == step  # not sent again
        proxy.arm(0)
        faulty.write([op], actor="DSS")  # the connector's retry
        assert _live(direct) == live_after
        assert [(r.key.record_number, r.reason) for r in direct.deletions()] == logged
        assert direct.get(before[0].key) is None
    finally:
        faulty.close()
        proxy.close()


def test_the_repair_keeps_a_dispute_filed_after_it_read_the_strays(
    through_proxy: tuple[OpenSearchStore, OpenSearchStore, FailingProxy],
) -> None:
    """A stray dispute is removed only as it was read: when the tracing comes back to life and its owner
    files a new dispute under the same document id between the repair's read and its delete, the new
    dispute stays (and the tracing shows it)."""
    direct, faulty, proxy = through_proxy
    before, op, _, _ = _completion()
    direct.write([Upsert(t) for t in before], actor="NCIS")
    old_key = before[0].key
    assert direct.set_dispute(old_key, _dispute(1))
    proxy.arm(STEPS)
    with pytest.raises(Unavailable):
        faulty.write([op], actor="DSS")
    proxy.arm(0)
    strays = opensearch_check.stray_disputes(direct._client, direct.names)
    assert list(strays) == [str(tid_for(old_key))]
    reborn = _checked(f.open_case(record="OC-1", version=5))
    direct.write([Upsert(reborn)], actor="NCIS")
    assert direct.set_dispute(old_key, _dispute(2))
    assert opensearch_check.remove_disputes(direct._client, direct.names, strays) == (0, 1)
    kept = direct.get(old_key)
    assert kept is not None and kept.dispute == _dispute(2)
    assert direct.check_integrity() == [] and direct.repair() == []


def test_a_completion_a_newer_update_overtakes_stays_logged_and_the_update_begins_a_new_life(
    through_proxy: tuple[OpenSearchStore, OpenSearchStore, FailingProxy],
) -> None:
    """The owner stores a newer version of a completion's old record between the completion's first request
    (which logged the old record's deletion) and its second (the tombstone, refused: a newer write wins). The
    entry was taken back and the update kept the old life's statement of dispute: both records live, no end
    logged, a serial order of neither. Now as "completion, then update": the end stays logged, the update is a
    life of its own (its `born`, so readers count the end), without the old life's statement."""
    direct, faulty, proxy = through_proxy
    old = _checked(f.open_case(record="OC-1"))
    direct.write([Upsert(old)], actor="NCIS")
    assert direct.set_dispute(old.key, _dispute(1))
    newer = _checked(f.open_case(record="OC-1", version=3))  # newer than the completion's own version, 2

    def owner_writes_newer() -> None:
        direct.write([Upsert(newer)], actor="NCIS")

    proxy.before[3] = owner_writes_newer  # after the log entry (1) and the new record (2)
    new = _checked(f.person("NCIS", "F-1", 2))
    assert faulty.write([Replace(old.key, TracingType.OPEN_CASE, new)], actor="NCIS")[0].outcome is WriteOutcome.APPLIED
    assert not proxy.before, "the other write did not run between the requests"
    assert [(r.key.record_number, r.source_version) for r in direct.deletions()] == [("OC-1", 2)]
    assert direct.last_deleted(old.key) == NOW
    assert _live(direct) == {"F-1", "OC-1"}
    kept = direct.get(old.key)
    assert kept is not None and kept.tracing.source_version == 3 and kept.dispute is None
    held = direct._client.get(index=direct.names.tracings, id=str(tid_for(old.key)))["_source"]
    assert (held["born"], held["source_version"]) == (3, 3)
    assert direct.check_integrity() == []


def test_an_update_read_before_a_completion_landed_and_written_after_it_is_told_its_new_life(
    through_proxy: tuple[OpenSearchStore, OpenSearchStore, FailingProxy],
) -> None:
    """The same race, closer: instance B read the open case before A's completion wrote the file, so it could
    not see the completion, and wrote its update (in the old life: its `born`) after. A's tombstone is refused.
    The end stays logged; B's record, which no reader would have counted the end against, is told its new life
    (`born` = its version), and the old life's statement goes."""
    direct, faulty, proxy = through_proxy
    other_proxy = FailingProxy(direct.settings.hosts[0])
    other = OpenSearchStore(dataclasses.replace(direct.settings, hosts=(other_proxy.url,)), clock=lambda: NOW)
    try:
        old = _checked(f.open_case(record="OC-1"))
        direct.write([Upsert(old)], actor="NCIS")
        assert direct.set_dispute(old.key, _dispute(1))
        newer = _checked(f.open_case(record="OC-1", version=5, given="Harry"))
        updating = update_between_the_file_and_the_tombstone(
            proxy, other_proxy, lambda: other.write([Upsert(newer)], actor="NCIS")
        )
        new = _checked(f.person("NCIS", "F-1", 3))
        assert faulty.write([Replace(old.key, TracingType.OPEN_CASE, new)], actor="NCIS")[0].outcome is (
            WriteOutcome.APPLIED
        )
        assert not proxy.before and not other_proxy.before and not updating.is_alive()
        held = direct._client.get(index=direct.names.tracings, id=str(tid_for(old.key)))["_source"]
        assert (held["born"], held["source_version"]) == (5, 5)
        assert [(r.key.record_number, r.source_version) for r in direct.deletions()] == [("OC-1", 3)]
        assert direct.last_deleted(old.key) == NOW
        kept = direct.get(old.key)
        assert kept is not None and kept.tracing.source_version == 5 and kept.dispute is None
        assert _live(direct) == {"F-1", "OC-1"} and direct.check_integrity() == []
    finally:
        other.close()
        other_proxy.close()


def test_a_completion_finished_by_its_new_records_next_write_ends_the_old_one_at_its_version(
    through_proxy: tuple[OpenSearchStore, OpenSearchStore, FailingProxy],
) -> None:
    """Step 2 (the old record's tombstone) failed, and the new record's next write finished the completion:
    it ended the old record at the old record's own version, so a late, older update of it came back live
    beside the file, and the deletion was logged twice ("<tid>-1000" and "<tid>-3000")."""
    direct, faulty, proxy = through_proxy
    old = _checked(f.open_case("DSS", "IC-1", 1000))
    direct.write([Upsert(old)], actor="DSS")
    proxy.arm(3)
    with pytest.raises(Unavailable):
        faulty.write(
            [Replace(old.key, TracingType.OPEN_CASE, _checked(f.person("DSS", "PSI-IC-1", 3000)))], actor="DSS"
        )
    proxy.arm(0)
    assert faulty.write([Upsert(_checked(f.person("DSS", "PSI-IC-1", 4000)))], actor="DSS")[0].outcome is (
        WriteOutcome.APPLIED
    )
    late = _checked(f.open_case("DSS", "IC-1", 2000))
    assert faulty.write([Upsert(late)], actor="DSS")[0].outcome is WriteOutcome.UNCHANGED
    assert _live(direct) == {"PSI-IC-1"}
    assert [(r.key.record_number, r.source_version) for r in direct.deletions()] == [("IC-1", 3000)]
    assert direct.check_integrity() == []
