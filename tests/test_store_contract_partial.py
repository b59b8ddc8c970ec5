"""Writes cut short part-way, and writes another instance overtakes between their requests, on every backend.
Each ends as some serial order of the same calls ends on the embedded store, the reference (a parity review of
the OpenSearch backend, findings 1, 3 and 6 to 9).

Only OpenSearch can fail part-way: its writer sends up to four bulk requests (indexer.store.opensearch_writer),
which the failing proxy of tests/opensearch_proxy.py refuses one at a time, or between which it lets
another instance write. The embedded store writes a group in one transaction: a failed write stores nothing
(the failure came before the operation itself landed) or is, to every reader, the write applied (after it: what
follows is finished by the replay). Each test says which, and runs the same calls on both."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import pytest

from indexer.exc import Unavailable
from indexer.model import TracingKey, TracingType
from indexer.retention import run_retention
from indexer.store.base import Delete, Replace, TracingStore, Upsert, WriteOp, WriteOutcome, WriteResult
from indexer.store.opensearch import OpenSearchStore
from indexer.store.opensearch_schema import tid_for
from tests import factories as f
from tests import store_backends
from tests.opensearch_proxy import FailingProxy
from tests.store_backends import NOW, Opener, _dispute, _live
from tests.test_store_lifecycle import INCOMPLETE, _checked, file_tracing, nac

open_store = store_backends.open_store  # the fixture, bound here by name so pytest finds it

Clock = Callable[[], dt.datetime]


@dataclass
class Instances:
    """The store as readers see it, and another service instance on the same data whose bulk requests can be
    refused or overtaken (OpenSearch, through the proxy); on the embedded store both are the one store."""

    store: TracingStore
    other: TracingStore
    proxy: FailingProxy | None

    def cut_short(self, write: Callable[[TracingStore], object], *, at_request: int, landed: bool) -> None:
        """`write` by the other instance, its `at_request`-th bulk request refused (it raises Unavailable).
        On the embedded store: applied when `landed` (the failure came after the operation itself landed),
        else nothing."""
        if self.proxy is None:
            if landed:
                write(self.store)
            return
        self.proxy.arm(at_request)
        with pytest.raises(Unavailable):
            write(self.other)
        self.proxy.arm(0)

    def refused(self, write: Callable[[TracingStore], object], key: TracingKey) -> None:
        """`write` by the other instance, every write of `key`'s tracing document refused by its shard (the rest of
        each request goes on; it raises Unavailable). On the embedded store: nothing (the operation never landed)."""
        if self.proxy is None:
            return
        tid = str(tid_for(key))
        self.proxy.fail_items = lambda op, meta: op == "index" and meta.get("_id") == tid
        with pytest.raises(Unavailable):
            write(self.other)
        self.proxy.fail_items = None

    def race(
        self,
        ops: Sequence[WriteOp],
        meanwhile: Callable[[], object],
        *,
        before_request: int,
        serially: Literal["meanwhile first", "ops first"],
        actor: str,
    ) -> list[WriteResult]:
        """`ops` by the other instance, `meanwhile` (this instance's write) landing just before its
        `before_request`-th bulk request; on the embedded store, the two in the serial order given."""
        if self.proxy is None:
            if serially == "meanwhile first":
                meanwhile()
                return self.store.write(ops, actor=actor)
            results = self.store.write(ops, actor=actor)
            meanwhile()
            return results
        self.proxy.before[before_request] = meanwhile
        results = self.other.write(ops, actor=actor)
        assert not self.proxy.before, "the other write did not run between the requests"
        return results


@pytest.fixture
def instances(open_store: Opener) -> Iterator[Callable[..., Instances]]:
    """Opens the backend under test (with `clock`) and another instance on it (OpenSearch: with `other_clock`,
    through the failing proxy, its retries off)."""
    opened: list[tuple[OpenSearchStore, FailingProxy]] = []

    def make(clock: Clock = lambda: NOW, other_clock: Clock | None = None) -> Instances:
        store = open_store(clock=clock)
        if not isinstance(store, OpenSearchStore):
            return Instances(store, store, None)
        proxy = FailingProxy(store.settings.hosts[0])
        settings = dataclasses.replace(store.settings, hosts=(proxy.url,), retries=0)
        other = OpenSearchStore(settings, clock=other_clock or clock)
        opened.append((other, proxy))
        return Instances(store, other, proxy)

    yield make
    for other, proxy in opened:
        other.close()
        proxy.close()


def _ticking(start: dt.datetime) -> Clock:
    """A clock a millisecond on at every reading: each write group of one instance its own instant."""
    ticks = itertools.count()
    return lambda: start + dt.timedelta(milliseconds=next(ticks))


def _logged(store: TracingStore) -> list[tuple[str, int]]:
    return [(r.key.record_number, r.source_version) for r in store.deletions()]


# ---- finding 1: a deletion logged before its tombstone, which never landed ----


def test_a_delete_cut_short_before_a_newer_version_of_its_record_is_in_no_log(
    instances: Callable[..., Instances],
) -> None:
    """The delete's tombstone request failed (its log entry had landed), the owner wrote the record at a newer
    version, then the delete was replayed (UNCHANGED). The entry stayed for good: the log showed a live record
    deleted, `last_deleted` dated its present life from then (a statement of dispute went to no earlier
    recipient; batch results dropped the record as "ended since"). The replay takes it back, and no reader
    counts it meanwhile."""
    both = instances()
    store, key = both.store, TracingKey("NCIS", "NCIS-F-1")
    store.write([Upsert(file_tracing("NCIS-F-1"))], actor="NCIS")
    delete = Delete(key, 2, "DELETED BY OWNING AGENCY")
    both.cut_short(lambda s: s.write([delete], actor="NCIS"), at_request=2, landed=False)
    store.write([Upsert(_checked(f.person("NCIS", "NCIS-F-1", 3, given="Harry")))], actor="NCIS")
    assert store.deletions() == [] and store.last_deleted(key) is None
    assert both.other.write([delete], actor="NCIS") == [WriteResult(WriteOutcome.UNCHANGED, 3)]
    assert store.deletions() == [] and store.last_deleted(key) is None
    assert _live(store) == {"NCIS-F-1"}
    assert store.check_integrity() == []


def test_a_retention_run_cut_short_before_the_history_is_corrected_removes_nothing(
    instances: Callable[..., Instances],
) -> None:
    """The retention run's tombstone request failed; the agency corrected the history's completion date (no
    longer due) before the run was tried again. The log kept "RETENTION" for a live history."""
    both = instances()
    store, due = both.store, nac("NH-1", (2010, 6, 1))
    store.write([Upsert(due)], actor="DSS")
    both.cut_short(lambda s: run_retention(s, NOW.date(), dry_run=False), at_request=2, landed=False)
    store.write([Upsert(nac("NH-1", (2016, 6, 1), version=2))], actor="DSS")
    assert run_retention(both.other, NOW.date(), dry_run=False) == []
    assert store.deletions() == [] and store.last_deleted(due.key) is None
    assert _live(store) == {"NH-1"}


@pytest.mark.parametrize("meanwhile", ["the file sent on its own", "the open case updated"])
def test_a_completion_cut_short_before_its_new_record_leaves_one_entry_at_most(
    instances: Callable[..., Instances], meanwhile: str
) -> None:
    """The completion (OC-1 v1 becomes F-1 v3) logged the open case's end at v3, then its request with the file
    failed. The file came on its own and the open case was updated at v5, or only the latter; then the
    completion was replayed. The entry at v3 stayed beside the replay's: the open case kept (indexed after the
    file) shown deleted, or deleted twice."""
    both = instances(clock=_ticking(NOW))
    store, case = both.store, _checked(f.open_case(record="OC-1"))
    store.write([Upsert(case)], actor="NCIS")
    file = _checked(f.person("NCIS", "F-1", 3))
    completion = Replace(case.key, TracingType.OPEN_CASE, file)
    both.cut_short(lambda s: s.write([completion], actor="NCIS"), at_request=2, landed=False)
    if meanwhile == "the file sent on its own":
        store.write([Upsert(file)], actor="NCIS")
    store.write([Upsert(_checked(f.open_case(record="OC-1", version=5, given="Harry")))], actor="NCIS")
    [replayed] = both.other.write([completion], actor="NCIS")
    if meanwhile == "the file sent on its own":  # the open case indexed after the file: its key used again
        assert (replayed.outcome, _live(store), _logged(store)) == (WriteOutcome.UNCHANGED, {"F-1", "OC-1"}, [])
    else:
        assert (replayed.outcome, _live(store), _logged(store)) == (WriteOutcome.APPLIED, {"F-1"}, [("OC-1", 5)])
    assert store.check_integrity() == []


# ---- finding 3: a completion half done, then an older update of its old record ----


def test_an_older_update_of_a_half_done_completions_old_record_is_refused(
    instances: Callable[..., Instances],
) -> None:
    """The completion (open case OC-1 v1 becomes file F-1 v3) wrote the file; its tombstone of the open case
    failed. An update of the open case at v2 (a file arriving late, from another feed) then landed: both
    records were seen, the completion's replay no longer retired the open case, and the check said nothing.
    The open case ended at v3, as on the embedded store: the update is UNCHANGED."""
    both = instances(clock=_ticking(NOW))
    store, case = both.store, _checked(f.open_case(record="OC-1"))
    store.write([Upsert(case)], actor="NCIS")
    completion = Replace(case.key, TracingType.OPEN_CASE, _checked(f.person("NCIS", "F-1", 3)))
    both.cut_short(lambda s: s.write([completion], actor="NCIS"), at_request=3, landed=True)
    late = _checked(f.open_case(record="OC-1", version=2, given="Harry"))
    assert store.write([Upsert(late)], actor="NCIS") == [WriteResult(WriteOutcome.UNCHANGED, 3)]
    assert store.write([completion], actor="NCIS")[0].outcome is WriteOutcome.UNCHANGED
    assert _live(store) == {"F-1"} and store.get(case.key) is None
    assert _logged(store) == [("OC-1", 3)]
    assert store.check_integrity() == []


# ---- a write whose own operation never landed: what its step 0 logged (review of the fixes, 1, 5, 8, 9) ----


def test_a_favorable_history_cut_short_then_corrected_supersedes_nothing_when_replayed(
    instances: Callable[..., Instances],
) -> None:
    """NH-2's request failed as a whole after its step 0 logged NH-1's supersession (the outcome unknown, the
    entry stays); NH-2 was then stored corrected to INCOMPLETE. Its replay tombstoned NH-1 at the logged
    version, as the check asked: the embedded store keeps NH-1. A replay ends only what the history, as it is
    now, supersedes."""
    both = instances()
    store = both.store
    store.write([Upsert(nac("NH-1", (2012, 5, 1)))], actor="DSS")
    favorable = nac("NH-2", (2018, 5, 1))
    both.cut_short(lambda s: s.write([Upsert(favorable)], actor="DSS"), at_request=2, landed=False)
    corrected = nac("NH-2", (2018, 5, 1), version=2, outcome=INCOMPLETE)
    assert store.write([Upsert(corrected)], actor="DSS") == [WriteResult(WriteOutcome.APPLIED, 2)]
    assert both.other.write([Upsert(corrected)], actor="DSS") == [WriteResult(WriteOutcome.UNCHANGED, 2)]
    assert _live(store) == {"NH-1", "NH-2"}


@pytest.mark.parametrize("then", ["corrected and replayed", "deleted"])
def test_a_favorable_history_its_shard_refused_leaves_no_supersession_logged(
    instances: Callable[..., Instances], then: str
) -> None:
    """NH-2's own document was refused by its shard (step 0 had logged NH-1's supersession). The entry stayed:
    a phantom deletion of a live NH-1, and a check line no resend cleared; a replay of NH-2 corrected deleted
    NH-1. A refused operation takes its step-0 entries back."""
    both = instances()
    store, earlier = both.store, nac("NH-1", (2012, 5, 1))
    store.write([Upsert(earlier)], actor="DSS")
    favorable = nac("NH-2", (2018, 5, 1))
    both.refused(lambda s: s.write([Upsert(favorable)], actor="DSS"), favorable.key)
    if then == "deleted":
        assert store.write([Delete(favorable.key, 2, "DELETED")], actor="DSS")[0].outcome is WriteOutcome.NOT_FOUND
        assert both.other.write([Upsert(favorable)], actor="DSS")[0].outcome is WriteOutcome.UNCHANGED
    else:
        corrected = nac("NH-2", (2018, 5, 1), version=2, outcome=INCOMPLETE)
        store.write([Upsert(corrected)], actor="DSS")
        assert both.other.write([Upsert(corrected)], actor="DSS") == [WriteResult(WriteOutcome.UNCHANGED, 2)]
    assert _live(store) >= {"NH-1"} and store.deletions() == [] and store.last_deleted(earlier.key) is None
    assert store.check_integrity() == []


def test_a_delete_its_shard_refused_then_a_refile_leaves_no_deletion(instances: Callable[..., Instances]) -> None:
    """F-1's tombstone was refused by its shard; F-1 was refiled to another person at v3 (a new life, so `born`
    could not tell the entry never landed); the delete was replayed. The entry stood for good: a deletion the
    embedded store never made, and `last_deleted` dating the present life from it."""
    both = instances()
    store, key = both.store, TracingKey("NCIS", "NCIS-F-1")
    store.write([Upsert(file_tracing("NCIS-F-1"))], actor="NCIS")
    delete = Delete(key, 2, "DELETED BY OWNING AGENCY")
    both.refused(lambda s: s.write([delete], actor="NCIS"), key)
    refiled = f.person("NCIS", "NCIS-F-1", 3, surname="Okafor", given="Adaeze", ssn="521-44-0192")
    store.write([Upsert(_checked(refiled))], actor="NCIS")
    assert both.other.write([delete], actor="NCIS") == [WriteResult(WriteOutcome.UNCHANGED, 3)]
    assert store.deletions() == [] and store.last_deleted(key) is None
    assert _live(store) == {"NCIS-F-1"} and store.check_integrity() == []


def test_a_type_change_its_shard_refused_is_in_no_log(instances: Callable[..., Instances]) -> None:
    """OC-1 sent as a FILE under its own key (its end logged at step 0), the document refused by its shard;
    OC-1 then updated as an open case. The log listed a type change that never happened, for good."""
    both = instances()
    store, key = both.store, TracingKey("NCIS", "NCIS-OC-1")
    store.write([Upsert(_checked(f.open_case("NCIS", "NCIS-OC-1", 1)))], actor="NCIS")
    as_file = _checked(f.person("NCIS", "NCIS-OC-1", 2))
    both.refused(lambda s: s.write([Upsert(as_file)], actor="NCIS"), key)
    store.write([Upsert(_checked(f.open_case("NCIS", "NCIS-OC-1", 3)))], actor="NCIS")
    assert both.other.write([Upsert(as_file)], actor="NCIS")[0].outcome is WriteOutcome.UNCHANGED
    assert store.deletions() == [] and store.check_integrity() == []


# ---- finding 6: supersession and the clocks of two instances ----


def test_an_earlier_history_landing_after_a_favorable_one_is_kept_whatever_the_clocks(
    instances: Callable[..., Instances],
) -> None:
    """Instance B writes an earlier NAC history H1 while instance A stores a favorable H2 of the same subject;
    H1 lands after H2 and is kept (supersession is at indexing). B's clock runs behind A's: the check judged
    by the two clocks that H2's supersession was left undone, and the resend it asked for deleted H1, which
    the embedded store keeps. Only what a write cut short left marked is finished now."""
    both = instances(clock=_ticking(NOW), other_clock=lambda: NOW - dt.timedelta(hours=1))
    store = both.store
    earlier, favorable = nac("NH-1", (2012, 5, 1)), nac("NH-2", (2018, 5, 1))
    results = both.race(
        [Upsert(earlier)],
        lambda: store.write([Upsert(favorable)], actor="DSS"),
        before_request=1,
        serially="meanwhile first",
        actor="DSS",
    )
    assert results == [WriteResult(WriteOutcome.APPLIED, 1)]
    assert _live(store) == {"NH-1", "NH-2"} and store.check_integrity() == []
    assert store.write([Upsert(favorable)], actor="DSS") == [WriteResult(WriteOutcome.UNCHANGED, 1)]
    assert _live(store) == {"NH-1", "NH-2"} and store.deletions() == []


# ---- finding 7: a completion another instance's newer update overtakes ----


def test_a_completion_overtaken_by_a_newer_update_ends_the_old_life_and_the_update_begins_a_new_one(
    instances: Callable[..., Instances],
) -> None:
    """Instance A completes OC-1 (v1) into F-1 (v3); between A's requests, instance B stores OC-1 at v5. A's
    tombstone is refused. A took its log entry back and the update kept the old life's statement of dispute:
    both records live, no end logged, a serial order of neither. Now "completion, then update"."""
    both = instances()
    store, case = both.store, _checked(f.open_case(record="OC-1"))
    store.write([Upsert(case)], actor="NCIS")
    assert store.set_dispute(case.key, _dispute(1))
    update = _checked(f.open_case(record="OC-1", version=5, given="Harry"))
    completion = Replace(case.key, TracingType.OPEN_CASE, _checked(f.person("NCIS", "F-1", 3)))
    results = both.race(
        [completion],
        lambda: store.write([Upsert(update)], actor="NCIS"),
        before_request=3,  # after the log entry (1) and the new record (2)
        serially="ops first",
        actor="NCIS",
    )
    assert [r.outcome for r in results] == [WriteOutcome.APPLIED]
    assert _live(store) == {"F-1", "OC-1"}
    assert [(r.key.record_number, r.source_version, r.reason) for r in store.deletions()] == [
        ("OC-1", 3, "SUPERSEDED by FILE NCIS/F-1")
    ]
    assert store.last_deleted(case.key) == NOW
    kept = store.get(case.key)
    assert kept is not None and kept.tracing.source_version == 5 and kept.dispute is None
    assert store.check_integrity() == []


def test_a_statement_filed_on_the_update_that_overtook_a_completion_stays(
    instances: Callable[..., Instances],
) -> None:
    """As above, the update's own write group finishing the completion first (its new life begins at v5), and
    the privacy office filing DSP-2 on OC-1 v5 before A's tombstone is refused. A's step 3 removed the dispute
    document unconditionally, after FileDispute had said "attached"; serially (completion, update, filing) it
    stays (a review of the fixes, 3)."""
    both = instances()
    store, case = both.store, _checked(f.open_case(record="OC-1"))
    store.write([Upsert(case)], actor="NCIS")
    update = _checked(f.open_case(record="OC-1", version=5, given="Harry"))
    completion = Replace(case.key, TracingType.OPEN_CASE, _checked(f.person("NCIS", "F-1", 3)))

    def meanwhile() -> None:
        assert store.write([Upsert(update)], actor="NCIS")[0].outcome is WriteOutcome.APPLIED
        assert store.set_dispute(case.key, _dispute(2))

    both.race([completion], meanwhile, before_request=3, serially="ops first", actor="NCIS")
    kept = store.get(case.key)
    assert kept is not None and kept.tracing.source_version == 5
    assert kept.dispute is not None and kept.dispute.dispute_id == _dispute(2).dispute_id
    assert store.check_integrity() == []


# ---- finding 8: a tombstone deleted again keeps the time it was deleted ----


def test_a_completion_onto_a_key_deleted_twice_keeps_an_open_case_indexed_after_the_deletion(
    instances: Callable[..., Instances],
) -> None:
    """F-1 deleted at v2, then again at v3 (NOT_FOUND: only the version moves); the open case OC-1 indexed
    between the two deletions; then a completion OC-1 -> F-1 at v3, which F-1's tombstone already holds (a
    replay's rule: an old record indexed after the new key's document stays). OpenSearch wrote the second
    deletion's time into the tombstone and retired the open case; the embedded store keeps the first."""
    moment = [NOW]
    both = instances(clock=lambda: moment[0])
    store, first = both.store, _checked(f.person("NCIS", "F-1", 1))
    case = _checked(f.open_case(record="OC-1"))
    store.write([Upsert(first)], actor="NCIS")
    steps: list[tuple[WriteOp, WriteOutcome]] = [
        (Delete(first.key, 2, "DELETED BY OWNING AGENCY"), WriteOutcome.APPLIED),
        (Upsert(case), WriteOutcome.APPLIED),
        (Delete(first.key, 3, "DELETED BY OWNING AGENCY"), WriteOutcome.NOT_FOUND),
        (Replace(case.key, TracingType.OPEN_CASE, _checked(f.person("NCIS", "F-1", 3))), WriteOutcome.UNCHANGED),
    ]
    for op, outcome in steps:
        moment[0] += dt.timedelta(seconds=1)
        assert store.write([op], actor="NCIS")[0].outcome is outcome, op
    assert _live(store) == {"OC-1"}
    assert _logged(store) == [("F-1", 2)]


# ---- finding 9: the deletion log in the order of the deletions ----


def test_the_deletion_log_lists_deletions_in_the_order_they_were_made(instances: Callable[..., Instances]) -> None:
    """One write [completion OC-1 -> F-1, delete R-9]; six writes a tenth of a millisecond apart; six writes in
    one instant. OpenSearch listed the delete before the completion (every tombstone that follows from an
    operation was numbered after the group's plain deletes), and deletions within one millisecond, or one
    instant, in the order of their ids' hashes."""
    moment = [NOW]
    both = instances(clock=lambda: moment[0])
    store = both.store
    # S-*: in the reverse of their entries' ids' order, which a tie in the sort fell back on
    records = ["R-9", *(f"Q-{n}" for n in range(6)), "S-0", "S-4", "S-1", "S-5", "S-2", "S-3"]
    store.write(
        [Upsert(_checked(f.open_case(record="OC-1")))] + [Upsert(file_tracing(r)) for r in records], actor="NCIS"
    )
    store.write(
        [
            Replace(TracingKey("NCIS", "OC-1"), TracingType.OPEN_CASE, _checked(f.person("NCIS", "F-1", 2))),
            Delete(TracingKey("NCIS", "R-9"), 2, "DELETED BY OWNING AGENCY"),
        ],
        actor="NCIS",
    )
    for n in range(6):
        moment[0] = NOW + dt.timedelta(seconds=5, microseconds=100 * n)
        store.write([Delete(TracingKey("NCIS", f"Q-{n}"), 2, "DELETED BY OWNING AGENCY")], actor="NCIS")
    moment[0] = NOW + dt.timedelta(seconds=10)
    for record in records[-6:]:
        store.write([Delete(TracingKey("NCIS", record), 2, "DELETED BY OWNING AGENCY")], actor="NCIS")
    assert [r.key.record_number for r in store.deletions()] == ["OC-1", *records]
    since = store.deletions(NOW + dt.timedelta(seconds=5, microseconds=300))
    assert [r.key.record_number for r in since] == ["Q-3", "Q-4", "Q-5", *records[-6:]]
