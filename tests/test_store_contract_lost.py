"""Writes whose own operation never landed, on every backend: what their first request (step 0) logged must
not outlive them. The embedded store writes a group in one transaction, so a failed write leaves nothing;
the OpenSearch writer logs every deletion a plan makes before the plan's own operation (indexer.store.
opensearch_writer_steps), and an operation refused by its shard, or sent in a request that failed as a whole
(no answer: what landed is unknown), left those entries behind (a review of the parity fixes, findings 1, 5, 8
and 9): a deletion the embedded store never made in the log and in `last_deleted`, and a check line asking
for a resend that changed nothing. A plan whose own item a shard refused takes its entries back; a request
that failed as a whole leaves them (docs/OPENSEARCH.md, "Known limit"), and the tests of the last section pin
what two attempts to judge those entries got wrong: a deletion that landed must stay logged. Each test runs
the same calls on both; on the embedded store the failed write is nothing."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from indexer.model import Tracing, TracingKey
from indexer.store.base import Delete, TracingStore, Upsert, WriteOutcome, WriteResult
from tests import factories as f
from tests import opensearch_instances, store_backends
from tests.opensearch_instances import Instances
from tests.store_backends import _live
from tests.test_store_lifecycle import INCOMPLETE, _checked, file_tracing, nac

open_store = store_backends.open_store  # the fixtures, bound here by name so pytest finds them
instances = opensearch_instances.instances
APPLIED = WriteOutcome.APPLIED


# ---- a write whose own operation never landed: what its step 0 logged (review of the fixes, 1, 5, 8, 9) ----


def _corrected_or_deleted(both: Instances, favorable: Tracing, then: str) -> None:
    """After NH-2's write failed: NH-2 deleted (NOT_FOUND: it never landed) or stored corrected to INCOMPLETE,
    and then its failed write replayed by the other instance (UNCHANGED: the store holds its newer version)."""
    if then == "deleted":
        assert both.store.write([Delete(favorable.key, 2, "DELETED")], actor="DSS")[0].outcome is WriteOutcome.NOT_FOUND
        assert both.other.write([Upsert(favorable)], actor="DSS")[0].outcome is WriteOutcome.UNCHANGED
    else:
        corrected = nac("NH-2", (2018, 5, 1), version=2, outcome=INCOMPLETE)
        both.store.write([Upsert(corrected)], actor="DSS")
        assert both.other.write([Upsert(corrected)], actor="DSS") == [WriteResult(WriteOutcome.UNCHANGED, 2)]


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
    _corrected_or_deleted(both, favorable, then)
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


# ---- a request that failed as a whole (no answer: the outcome unknown, the entries stay) ----


def test_a_type_change_that_landed_and_was_changed_back_stays_logged(instances: Callable[..., Instances]) -> None:
    """The rule above must not hide a type change that landed: OC-1 became a FILE, then an open case again
    (two entries, as on the embedded store)."""
    both = instances()
    store = both.store
    store.write([Upsert(_checked(f.open_case("NCIS", "NCIS-OC-1", 1)))], actor="NCIS")
    store.write([Upsert(_checked(f.person("NCIS", "NCIS-OC-1", 2)))], actor="NCIS")
    store.write([Upsert(_checked(f.open_case("NCIS", "NCIS-OC-1", 3)))], actor="NCIS")
    assert [(r.source_version, r.type.value) for r in store.deletions()] == [(1, "OPEN_CASE"), (2, "FILE")]
    assert store.check_integrity() == [] and store.repair() == []
    assert len(store.deletions()) == 2


def test_a_delete_whose_answer_was_lost_then_a_refile_stays_logged(instances: Callable[..., Instances]) -> None:
    """The rule above must not take back a deletion that landed: the tombstone request went through and only
    its answer was lost (a gateway's 502), so the refile writes a new life over the tombstone, as on the
    embedded store, where the delete is applied."""
    both = instances()
    store, key = both.store, TracingKey("NCIS", "NCIS-F-1")
    store.write([Upsert(file_tracing("NCIS-F-1"))], actor="NCIS")
    delete = Delete(key, 2, "DELETED BY OWNING AGENCY")
    both.cut_short(lambda s: s.write([delete], actor="NCIS"), at_request=2, landed=True, lose_answer=True)
    refiled = f.person("NCIS", "NCIS-F-1", 3, surname="Okafor", given="Adaeze", ssn="521-44-0192")
    store.write([Upsert(_checked(refiled))], actor="NCIS")
    assert [(r.key.record_number, r.source_version) for r in store.deletions()] == [("NCIS-F-1", 2)]
    assert store.last_deleted(key) is not None and _live(store) == {"NCIS-F-1"}


# ---- what really landed stays logged (a review of 82df28f, findings 1 to 3) ----


def _logged(store: TracingStore) -> list[tuple[str, int, str]]:
    return [(r.key.record_number, r.source_version, r.reason) for r in store.deletions()]


def test_a_delete_lost_with_its_request_then_a_type_change_keeps_the_type_change(
    instances: Callable[..., Instances],
) -> None:
    """OC-1's delete at v3 failed with its whole request (its entry logged at v3, of type OPEN_CASE), then OC-1
    was sent as its FILE at v4, a type change that landed (logged at v1). The readers judged the type change by
    the record's next entry, the failed delete's, and hid it; `repair` then deleted it for good."""
    both = instances()
    store, key = both.store, TracingKey("NCIS", "NCIS-OC-1")
    store.write([Upsert(_checked(f.open_case("NCIS", "NCIS-OC-1", 1)))], actor="NCIS")
    delete = Delete(key, 3, "DELETED BY OWNING AGENCY")
    both.cut_short(lambda s: s.write([delete], actor="NCIS"), at_request=2, landed=False)
    assert store.write([Upsert(_checked(f.person("NCIS", "NCIS-OC-1", 4)))], actor="NCIS")[0].outcome is APPLIED
    type_change = [("NCIS-OC-1", 1, "SUPERSEDED by FILE NCIS/NCIS-OC-1")]
    assert _logged(store) == type_change
    store.repair()
    assert both.other.write([delete], actor="NCIS") == [WriteResult(WriteOutcome.UNCHANGED, 4)]
    assert _logged(store) == type_change and store.check_integrity() == []


def test_a_favorable_history_that_landed_then_the_earlier_one_refiled_keeps_its_supersession(
    instances: Callable[..., Instances],
) -> None:
    """NH-2 (favorable) landed, its step 2 ending NH-1 failed as a whole, then NH-1 refiled to another person:
    the refile's take-back of what its record's earlier ends left unlanded keeps the mark (NH-2 supersedes
    NH-1 as read: serially it ended NH-1 before its new life)."""
    both = instances()
    store, earlier = both.store, nac("NH-1", (2012, 5, 1))
    store.write([Upsert(earlier)], actor="DSS")
    favorable = nac("NH-2", (2018, 5, 1))
    both.cut_short(lambda s: s.write([Upsert(favorable)], actor="DSS"), at_request=3, landed=True)
    refiled = nac("NH-1", (2012, 5, 1), version=2, surname="Okafor", given="Adaeze", ssn="521-44-0192")
    assert store.write([Upsert(refiled)], actor="DSS") == [WriteResult(APPLIED, 2)]
    assert _logged(store) == [("NH-1", 1, "SUPERSEDED by favorable NAC history DSS/NH-2")]
    assert _live(store) == {"NH-1", "NH-2"} and store.check_integrity() == []


def test_a_refile_with_a_type_change_lost_with_its_request_keeps_its_own_entry_when_replayed(
    instances: Callable[..., Instances],
) -> None:
    """OC-1 (an open case) sent as the FILE of another person under its own key, its request failed as a whole
    after step 0, then replayed: the replay's take-back of what the new life leaves unlanded must leave the
    group's own type-change entry."""
    both = instances()
    store = both.store
    store.write([Upsert(_checked(f.open_case("NCIS", "NCIS-OC-1", 1)))], actor="NCIS")
    other = _checked(f.person("NCIS", "NCIS-OC-1", 2, surname="Okafor", given="Adaeze", ssn="521-44-0192"))
    both.cut_short(lambda s: s.write([Upsert(other)], actor="NCIS"), at_request=2, landed=False)
    assert store.write([Upsert(other)], actor="NCIS") == [WriteResult(APPLIED, 2)]
    assert _logged(store) == [("NCIS-OC-1", 1, "SUPERSEDED by FILE NCIS/NCIS-OC-1")]
    assert store.check_integrity() == []


def test_a_type_change_that_lands_while_an_update_in_the_old_type_is_written_stays_logged(
    instances: Callable[..., Instances],
) -> None:
    """OC-1 sent as its FILE at v4 failed with its whole request (its entry logged), then its replay landed
    while another instance wrote OC-1 as an open case at v3, read before it: that update is overtaken
    (UNCHANGED). The update's take-back of a type change that never landed must not run for it: serially the
    type change came first, and stays logged."""
    both = instances()
    store = both.store
    store.write([Upsert(_checked(f.open_case("NCIS", "NCIS-OC-1", 1)))], actor="NCIS")
    as_file = _checked(f.person("NCIS", "NCIS-OC-1", 4))
    both.cut_short(lambda s: s.write([Upsert(as_file)], actor="NCIS"), at_request=2, landed=False)
    update = Upsert(_checked(f.open_case("NCIS", "NCIS-OC-1", 3)))
    results = both.race(
        [update],
        lambda: store.write([Upsert(as_file)], actor="NCIS"),
        before_request=1,
        serially="meanwhile first",
        actor="NCIS",
    )
    assert results == [WriteResult(WriteOutcome.UNCHANGED, 4)]
    assert _logged(store) == [("NCIS-OC-1", 1, "SUPERSEDED by FILE NCIS/NCIS-OC-1")]
    assert store.check_integrity() == []
