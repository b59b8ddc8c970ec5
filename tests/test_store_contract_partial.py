"""Writes cut short part-way, and writes another instance overtakes between their requests, on every backend.
Each ends as some serial order of the same calls ends on the embedded store, the reference (a parity review of
the OpenSearch backend, findings 1, 3 and 6 to 9).

Only OpenSearch can fail part-way: its writer sends up to four bulk requests (indexer.store.opensearch_writer),
which the failing proxy of tests/opensearch_proxy.py refuses one at a time, or between which it lets
another instance write. The embedded store writes a group in one transaction: a failed write stores nothing
(the failure came before the operation itself landed) or is, to every reader, the write applied (after it: what
follows is finished by the replay). Each test says which, and runs the same calls on both."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from indexer.model import TracingKey, TracingType
from indexer.retention import run_retention
from indexer.store.base import Delete, Replace, Upsert, WriteOp, WriteOutcome, WriteResult
from tests import factories as f
from tests import opensearch_instances, store_backends
from tests.opensearch_instances import Instances, logged, ticking
from tests.store_backends import NOW, _dispute, _live
from tests.test_store_lifecycle import _checked, file_tracing, nac

open_store = store_backends.open_store  # the fixtures, bound here by name so pytest finds them
instances = opensearch_instances.instances

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
    both = instances(clock=ticking(NOW))
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
        assert (replayed.outcome, _live(store), logged(store)) == (WriteOutcome.UNCHANGED, {"F-1", "OC-1"}, [])
    else:
        assert (replayed.outcome, _live(store), logged(store)) == (WriteOutcome.APPLIED, {"F-1"}, [("OC-1", 5)])
    assert store.check_integrity() == []


# ---- finding 3: a completion half done, then an older update of its old record ----


def test_an_older_update_of_a_half_done_completions_old_record_is_refused(
    instances: Callable[..., Instances],
) -> None:
    """The completion (open case OC-1 v1 becomes file F-1 v3) wrote the file; its tombstone of the open case
    failed. An update of the open case at v2 (a file arriving late, from another feed) then landed: both
    records were seen, the completion's replay no longer retired the open case, and the check said nothing.
    The open case ended at v3, as on the embedded store: the update is UNCHANGED."""
    both = instances(clock=ticking(NOW))
    store, case = both.store, _checked(f.open_case(record="OC-1"))
    store.write([Upsert(case)], actor="NCIS")
    completion = Replace(case.key, TracingType.OPEN_CASE, _checked(f.person("NCIS", "F-1", 3)))
    both.cut_short(lambda s: s.write([completion], actor="NCIS"), at_request=3, landed=True)
    late = _checked(f.open_case(record="OC-1", version=2, given="Harry"))
    assert store.write([Upsert(late)], actor="NCIS") == [WriteResult(WriteOutcome.UNCHANGED, 3)]
    assert store.write([completion], actor="NCIS")[0].outcome is WriteOutcome.UNCHANGED
    assert _live(store) == {"F-1"} and store.get(case.key) is None
    assert logged(store) == [("OC-1", 3)]
    assert store.check_integrity() == []


# ---- finding 6: supersession and the clocks of two instances ----


def test_an_earlier_history_landing_after_a_favorable_one_is_kept_whatever_the_clocks(
    instances: Callable[..., Instances],
) -> None:
    """Instance B writes an earlier NAC history H1 while instance A stores a favorable H2 of the same subject;
    H1 lands after H2 and is kept (supersession is at indexing). B's clock runs behind A's: the check judged
    by the two clocks that H2's supersession was left undone, and the resend it asked for deleted H1, which
    the embedded store keeps. Only what a write cut short left marked is finished now."""
    both = instances(clock=ticking(NOW), other_clock=lambda: NOW - dt.timedelta(hours=1))
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
    assert logged(store) == [("F-1", 2)]


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
