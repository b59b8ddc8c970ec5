"""A completion or a favorable NAC history cut short between the OpenSearch writer's first and second bulk
request, on the OpenSearch backends (tests/store_backends.py, `open_cluster`): what the crash leaves is made
directly in the cluster (the new record written, the old record or the earlier histories still live), then the
integrity check names it and the connector's replay finishes it. The operator's commands, migration and
rebuilds: tests/test_store_contract_admin.py."""

from __future__ import annotations

import datetime as dt

from indexer.model import Tracing, TracingType
from indexer.store.base import Replace, Upsert, WriteOutcome, WriteResult
from indexer.store.opensearch import OpenSearchStore
from indexer.store.opensearch_schema import tid_for
from tests import factories as f
from tests import store_backends
from tests.store_backends import NOW, Opener, _live
from tests.test_store_lifecycle import _checked, nac, nac_pending

# The fixtures these tests take, bound here by name so pytest finds them (as in test_store_contract_admin.py).
open_cluster = store_backends.open_cluster


# ---- a completion cut short between its steps ----


def test_a_completion_cut_short_between_its_steps_is_hidden_and_finished_by_a_replay(open_cluster: Opener) -> None:
    """What a crash between the writer's first and second bulk request leaves (the new record written and
    visible, the old one still live), made directly in the cluster; then the connector's replay."""
    from indexer.store.opensearch_schema import tracing_doc

    store = open_cluster()
    assert isinstance(store, OpenSearchStore)
    old = _checked(f.open_case(record="OC-1"))
    store.write([Upsert(old)], actor="NCIS")
    new = _checked(f.person("NCIS", "F-1", 2))
    old_id, new_id = tid_for(old.key), tid_for(new.key)
    doc = tracing_doc(new, tid=new_id, born=2, indexed_at=NOW, replaces=(str(old_id), 1))
    store._client.index(
        index=store.names.tracings, id=str(new_id), body=doc, version=2, version_type="external", refresh="true"
    )
    assert store.get(old.key) is None  # hidden by the new record that names it
    assert [s.tracing.key for s in store.load([old_id, new_id]).values()] == [new.key]
    assert store.check_integrity() == ["1 completions left their old record live (replay the completion to finish it)"]

    replay = Replace(old.key, TracingType.OPEN_CASE, new)
    assert store.write([replay], actor="NCIS")[0] == WriteResult(WriteOutcome.APPLIED, 2)  # the old record retired
    assert [(r.key, r.reason) for r in store.deletions()] == [(old.key, "SUPERSEDED by FILE NCIS/F-1")]
    assert _live(store) == {"F-1"}
    assert store.check_integrity() == []
    # The old key used again later (a new version) is not hidden by the completion that named its past.
    again = _checked(f.open_case(record="OC-1", version=3))
    store.write([Upsert(again)], actor="NCIS")
    assert _live(store) == {"F-1", "OC-1"}


# ---- a favorable NAC history cut short between its steps ----

UNFINISHED = "1 favorable NAC histories left earlier histories live (resend them to finish: {})"


def _write_step_one(
    store: OpenSearchStore,
    tracing: Tracing,
    at: dt.datetime,
    replaces: tuple[str, int] | None = None,
    superseding: tuple[Tracing, ...] = (),
) -> None:
    """What the writer's first requests store for `tracing` (a new key): the deletion-log entries of the
    histories it supersedes (`superseding`: they mark what a replay finishes), and the tracing; nothing of the
    tombstones that follow."""
    from indexer.store.base import DeletionRecord
    from indexer.store.opensearch_schema import deletion_doc, tracing_doc

    reason = f"SUPERSEDED by favorable NAC history {tracing.key}"
    for earlier in superseding:
        ended = max(earlier.source_version, tracing.source_version)
        record = DeletionRecord(earlier.key, TracingType.NAC_HISTORY, ended, reason, "DSS", at)
        entry = deletion_doc(record, tid=tid_for(earlier.key), seq=0)
        store._client.index(index=store.names.deletions, id=entry["log_id"], body=entry, refresh="true")
    tid, version = tid_for(tracing.key), tracing.source_version
    doc = tracing_doc(tracing, tid=tid, born=version, indexed_at=at, replaces=replaces)
    store._client.index(
        index=store.names.tracings, id=str(tid), body=doc, version=version, version_type="external", refresh="true"
    )


def test_a_favorable_nac_history_cut_short_between_its_steps_is_finished_by_a_replay(open_cluster: Opener) -> None:
    """What a crash between the writer's first and second bulk request leaves (the favorable history written,
    the subject's earlier one still live), made directly in the cluster; then the connector's replays. An
    earlier history arriving after it stays, replay or not: supersession is at indexing (as on SQLite)."""
    moment = [NOW]
    store = open_cluster(clock=lambda: moment[0])
    assert isinstance(store, OpenSearchStore)
    old, new = nac("NH-1", (2012, 5, 1)), nac("NH-2", (2018, 5, 1))
    store.write([Upsert(old)], actor="loader")
    _write_step_one(store, new, NOW + dt.timedelta(seconds=1), superseding=(old,))
    assert _live(store) == {"NH-1", "NH-2"}
    assert store.check_integrity() == [UNFINISHED.format("DSS/NH-2")]

    moment[0] = NOW + dt.timedelta(seconds=2)
    # As the first attempt logged it (before its history was written: the mark of what the replay finishes).
    first = NOW + dt.timedelta(seconds=1)
    logged = [(old.key, TracingType.NAC_HISTORY, 1, "SUPERSEDED by favorable NAC history DSS/NH-2", "DSS", first)]
    for _ in range(2):  # the first replay finishes it, a second changes nothing more
        assert store.write([Upsert(new)], actor="DSS")[0] == WriteResult(WriteOutcome.UNCHANGED, 1)
        assert _live(store) == {"NH-2"} and store.get(old.key) is None
        assert [(r.key, r.type, r.source_version, r.reason, r.actor, r.deleted_at) for r in store.deletions()] == logged
        moment[0] += dt.timedelta(seconds=1)
    assert store.check_integrity() == []

    late = nac("NH-0", (2010, 5, 1))
    store.write([Upsert(late)], actor="loader")
    assert store.check_integrity() == []  # kept by design: indexed after the favorable history
    assert store.write([Upsert(new)], actor="DSS")[0] == WriteResult(WriteOutcome.UNCHANGED, 1)
    assert _live(store) == {"NH-0", "NH-2"} and len(store.deletions()) == 1


def test_a_nac_completion_cut_short_between_its_steps_supersedes_on_a_replay(open_cluster: Opener) -> None:
    """The same for a NAC pending completed by a favorable history (indexed in the same instant as the earlier
    history: a tie counts as before it): the replay deletes the pending and the earlier history, once."""
    store = open_cluster()
    assert isinstance(store, OpenSearchStore)
    old, pending, new = nac("NH-1", (2012, 5, 1)), nac_pending("NP-1"), nac("NH-2", (2018, 5, 1), version=2)
    store.write([Upsert(old), Upsert(pending)], actor="loader")
    _write_step_one(store, new, NOW, replaces=(str(tid_for(pending.key)), 1))
    # The check names the completion; not the supersession: both histories were indexed in the same
    # instant, and in one group a favorable history may come first and keep a later-listed earlier one.
    assert store.check_integrity() == ["1 completions left their old record live (replay the completion to finish it)"]
    replay = Replace(pending.key, TracingType.NAC_PENDING, new)
    for outcome in (WriteOutcome.APPLIED, WriteOutcome.UNCHANGED):  # the first retires the pending NAC
        assert store.write([replay], actor="DSS")[0] == WriteResult(outcome, 2)
        assert _live(store) == {"NH-2"}
        assert sorted((r.key.record_number, r.reason) for r in store.deletions()) == [
            ("NH-1", "SUPERSEDED by favorable NAC history DSS/NH-2"),
            ("NP-1", "SUPERSEDED by NAC_HISTORY DSS/NH-2"),
        ]
    assert store.check_integrity() == []
