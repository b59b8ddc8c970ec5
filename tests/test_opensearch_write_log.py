"""The OpenSearch deletion log as the check, the repair and the writer's replays judge it, through the failing
proxy of tests/opensearch_proxy.py (the store's retries off): entries of deletions that never landed, a
tombstone a snapshot left without its entry, supersessions left marked for the resend, what a replay costs
in requests, and an end a newer update overtook. The write steps failing one by one are
tests/test_opensearch_write_steps.py; the same sequences on both backends, tests/test_store_contract_lost.py
and tests/test_store_contract_partial.py."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from indexer.exc import Unavailable
from indexer.model import Tracing, TracingKey, TracingType
from indexer.store.base import Delete, Replace, Upsert, WriteOutcome, WriteResult
from indexer.store.opensearch import OpenSearchStore
from indexer.store.opensearch_schema import tid_for
from tests import factories as f
from tests import opensearch_instances, store_backends
from tests.opensearch_instances import ticking
from tests.opensearch_proxy import FailingProxy, update_between_the_file_and_the_tombstone
from tests.store_backends import NOW, _live
from tests.test_store_lifecycle import INCOMPLETE, _checked, file_tracing, nac

open_cluster = store_backends.open_cluster  # the fixtures, bound here by name so pytest finds them
through_proxy = opensearch_instances.through_proxy


def _supersession_left_marked(
    direct: OpenSearchStore,
    faulty: OpenSearchStore,
    proxy: FailingProxy,
    earlier: Tracing,
    favorable: Tracing,
    others: list[Tracing],
) -> None:
    """`earlier` (and `others`) stored an hour ago, then `favorable` written through the proxy with the
    earlier history's tombstone refused by its shard: the favorable history lands, the supersession stays
    marked in the deletion log for the resend."""
    loader = OpenSearchStore(direct.settings, clock=lambda: NOW - dt.timedelta(hours=1))  # not the same instant
    try:
        loader.write([Upsert(earlier), *map(Upsert, others)], actor="DSS")
    finally:
        loader.close()
    earlier_id = str(tid_for(earlier.key))
    proxy.fail_items = lambda op, meta: meta.get("_id") == earlier_id and meta.get("version_type") == "external_gte"
    with pytest.raises(Unavailable):
        faulty.write([Upsert(favorable)], actor="DSS")
    proxy.fail_items = None


# ---- what the check and the repair find in the deletion log ----

NEVER_LANDED = (
    "1 deletion-log entries name a deletion that never landed (the record was written again at a newer version"
    " before it; no reader counts them: `dcii index repair` removes them)"
)


def test_an_entry_of_a_delete_that_never_landed_is_reported_and_repaired(
    through_proxy: tuple[OpenSearchStore, OpenSearchStore, FailingProxy],
) -> None:
    """A delete whose tombstone request failed, the record then written at a newer version and the delete
    never replayed: its entry stays for good. No reader counts it (tests/test_store_contract_partial.py); the
    check said nothing of it. It reports it now, and the repair removes it."""
    direct, faulty, proxy = through_proxy
    record = file_tracing("NCIS-F-1")
    direct.write([Upsert(record)], actor="NCIS")
    proxy.arm(2)  # the entry lands, the tombstone does not
    with pytest.raises(Unavailable):
        faulty.write([Delete(record.key, 2, "DELETED BY OWNING AGENCY")], actor="NCIS")
    proxy.arm(0)
    direct.write([Upsert(_checked(f.person("NCIS", "NCIS-F-1", 3, given="Harry")))], actor="NCIS")
    assert direct.deletions() == [] and direct.last_deleted(record.key) is None
    assert direct.check_integrity() == [NEVER_LANDED]
    assert direct.repair() == ["1 deletion-log entries of deletions that never landed removed"]
    assert direct.check_integrity() == [] and direct.repair() == []
    assert direct._client.count(index=direct.names.deletions)["count"] == 0


def test_a_deleted_record_whose_entry_a_snapshot_lacks_is_reported(open_cluster: Any) -> None:
    """A snapshot is consistent per shard, not across the tracings and the deletion log: restored, it can hold a
    tombstone whose entry it does not (made here by removing the entry). Nothing told; the check says so. A
    key deleted before it was ever written has no entry by design, and a key deleted again at a newer version
    keeps the entry of its first deletion: neither is reported."""
    store = open_cluster()
    assert isinstance(store, OpenSearchStore)
    logged, unlogged = file_tracing("F-1"), file_tracing("F-2")
    store.write([Upsert(logged), Upsert(unlogged)], actor="NCIS")
    store.write([Delete(logged.key, 2, "DELETED BY OWNING AGENCY"), Delete(unlogged.key, 2, "DELETED")], actor="NCIS")
    store.write([Delete(logged.key, 3, "DELETED BY OWNING AGENCY")], actor="NCIS")  # NOT_FOUND: the version moves
    store.write([Delete(TracingKey("NCIS", "NEVER-WRITTEN"), 4, "DELETED")], actor="NCIS")
    assert store.check_integrity() == []
    store._client.delete(index=store.names.deletions, id=f"{tid_for(unlogged.key)}-2", refresh="true")
    assert store.check_integrity() == [
        "1 deleted records have no deletion-log entry (a migration not finished: run it again; or the log restored"
        ' from a snapshot older than the tracings\': docs/RUNBOOK.md, "OpenSearch: snapshots")'
    ]


def test_a_supersession_whose_tombstone_a_shard_refuses_stays_marked_for_the_resend(
    through_proxy: tuple[OpenSearchStore, OpenSearchStore, FailingProxy],
) -> None:
    """The favorable history lands; the earlier history's tombstone is refused by its shard. Its deletion-log
    entry is what the check and the resend go by: kept, the check names the history to resend, and the resend
    finishes it."""
    direct, faulty, proxy = through_proxy
    earlier, favorable = nac("NH-1", (2012, 5, 1)), nac("NH-2", (2018, 5, 1))
    _supersession_left_marked(direct, faulty, proxy, earlier, favorable, [])
    assert _live(direct) == {"NH-1", "NH-2"}
    assert direct.check_integrity() == [
        "1 favorable NAC histories left earlier histories live (resend them to finish: DSS/NH-2)"
    ]
    assert faulty.write([Upsert(favorable)], actor="DSS") == [WriteResult(WriteOutcome.UNCHANGED, 1)]
    assert _live(direct) == {"NH-2"}
    assert [(r.key.record_number, r.reason) for r in direct.deletions()] == [
        ("NH-1", "SUPERSEDED by favorable NAC history DSS/NH-2")
    ]
    assert direct.check_integrity() == []


def test_an_old_record_updated_below_the_version_its_completion_ended_it_at_is_reported(open_cluster: Any) -> None:
    """What an instance of an earlier version could leave: the completion (OC-1 v1 becomes F-1 v3) half done,
    then an update of OC-1 at v2 written beside it. The check looked for an old record at or below the version
    the new one names (1) and said nothing; the completion ended it at the file's `born` (3)."""
    from indexer.store.opensearch_schema import tracing_doc

    store = open_cluster()
    assert isinstance(store, OpenSearchStore)
    case, late = _checked(f.open_case(record="OC-1")), _checked(f.open_case(record="OC-1", version=2))
    new = _checked(f.person("NCIS", "F-1", 3))
    store.write([Upsert(case)], actor="NCIS")
    for tracing, replaces in ((new, (str(tid_for(case.key)), 1)), (late, None)):
        tid, version = tid_for(tracing.key), tracing.source_version
        born = 3 if tracing is new else 1
        doc = tracing_doc(tracing, tid=tid, born=born, indexed_at=NOW, replaces=replaces)
        store._client.index(
            index=store.names.tracings, id=str(tid), body=doc, version=version, version_type="external", refresh="true"
        )
    assert store.check_integrity() == ["1 completions left their old record live (replay the completion to finish it)"]


def test_a_replayed_history_that_supersedes_nothing_costs_no_deletion_log_search(
    through_proxy: tuple[OpenSearchStore, OpenSearchStore, FailingProxy],
) -> None:
    """A connector's resend of INCOMPLETE NAC histories searched the deletion log once per history, one after
    another in the writer's thread (a review of the fixes, 4: a 500-history resend 17 times slower). Only a
    history that supersedes something can have left a supersession to finish."""
    direct, faulty, proxy = through_proxy
    histories = [nac(f"NH-{n}", (2018, 5, 1), outcome=INCOMPLETE) for n in range(20)]
    direct.write([Upsert(h) for h in histories], actor="DSS")
    proxy.requests.clear()
    assert faulty.write([Upsert(h) for h in histories], actor="DSS") == [WriteResult(WriteOutcome.UNCHANGED, 1)] * 20
    assert [r for r in proxy.requests if direct.names.deletions in r] == []


def test_a_group_replaying_favorable_histories_reads_their_marks_at_once_and_finishes_them(
    through_proxy: tuple[OpenSearchStore, OpenSearchStore, FailingProxy],
) -> None:
    """NH-2's supersession of NH-1 left marked (the tombstone refused by its shard), then NH-2 replayed in one
    group with five other subjects' favorable histories: one deletion-log search for the group, not one per
    history (a review of the fixes, 4), and NH-1 ends as the resend of NH-2 alone ends it."""
    direct, faulty, proxy = through_proxy
    earlier, favorable = nac("NH-1", (2012, 5, 1)), nac("NH-2", (2018, 5, 1))
    others = [nac(f"NX-{n}", (2018, 5, 1), ssn=f"521-44-{1000 + n}") for n in range(5)]
    _supersession_left_marked(direct, faulty, proxy, earlier, favorable, others)
    assert _live(direct) >= {"NH-1", "NH-2"}
    proxy.requests.clear()
    results = faulty.write([*map(Upsert, others), Upsert(favorable)], actor="DSS")
    assert results == [WriteResult(WriteOutcome.UNCHANGED, 1)] * 6
    assert len([r for r in proxy.requests if r.startswith("POST /" + direct.names.deletions)]) == 1
    assert "NH-1" not in _live(direct)
    assert [(r.key.record_number, r.reason) for r in direct.deletions()] == [
        ("NH-1", "SUPERSEDED by favorable NAC history DSS/NH-2")
    ]


def test_a_completions_replay_keeps_the_end_an_update_overtook_before_it_was_told_its_new_life(
    open_cluster: Any,
) -> None:
    """Instance A completes OC-1 (v1) into F-1 (v2); instance B read OC-1 before A wrote the file and writes
    its update (v3, in the old life's `born`) after it, so A's tombstone is refused, and A's last request,
    telling B's record of its new life, fails. The end stands (the completion landed: F-1 names OC-1, and the
    readers count it), but the completion's replay took it back as a deletion that never landed: the writer's
    rule lacked the readers' exception for a completion that landed (`opensearch_deletion_log.never_landed`
    is now the one rule). Serially (completion, update, replay) the end stays logged."""
    direct = open_cluster(clock=ticking(NOW))
    assert isinstance(direct, OpenSearchStore)
    proxies = [FailingProxy(direct.settings.hosts[0]) for _ in range(2)]
    a, b = (
        OpenSearchStore(dataclasses.replace(direct.settings, hosts=(p.url,), retries=0), clock=ticking(start))
        for p, start in zip(proxies, (NOW - dt.timedelta(hours=1), NOW + dt.timedelta(hours=1)), strict=True)
    )
    try:
        case = _checked(f.open_case(record="OC-1"))
        direct.write([Upsert(case)], actor="NCIS")
        update = _checked(f.open_case(record="OC-1", version=3, given="Harry"))
        completion = Replace(case.key, TracingType.OPEN_CASE, _checked(f.person("NCIS", "F-1", 2)))
        proxies[0].arm(4)  # the entries (1), the file (2), the refused tombstone (3), the new life told (4)
        updating = update_between_the_file_and_the_tombstone(
            proxies[0], proxies[1], lambda: b.write([Upsert(update)], actor="NCIS")
        )
        with pytest.raises(Unavailable):
            a.write([completion], actor="NCIS")
        proxies[0].arm(0)
        assert not proxies[0].before and not proxies[1].before and not updating.is_alive()
        held = direct._client.get(index=direct.names.tracings, id=str(tid_for(case.key)))["_source"]
        assert (held["born"], held["source_version"]) == (1, 3), "the new life was told"
        assert [(r.key.record_number, r.source_version) for r in direct.deletions()] == [("OC-1", 2)]
        assert a.write([completion], actor="NCIS")[0].outcome is WriteOutcome.UNCHANGED
        assert [(r.key.record_number, r.source_version) for r in direct.deletions()] == [("OC-1", 2)]
        assert _live(direct) == {"F-1", "OC-1"}
    finally:
        for store in (a, b):
            store.close()
        for proxy in proxies:
            proxy.close()
