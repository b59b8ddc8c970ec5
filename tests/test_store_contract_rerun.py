"""The storage contract of `dcii index migrate` run again (docs/OPENSEARCH.md, Migration) after the source ended a
record's life in between, and of the integrity check while a write is between its requests (tests/store_backends.py:
every backend as the target; the source is an embedded store, the reference). A review of the parity fixes,
findings 2 and 7."""

from __future__ import annotations

import contextlib
import dataclasses

from indexer.exc import Unavailable
from indexer.model import TracingKey, TracingType
from indexer.store.base import Delete, Replace, TracingStore, Upsert
from indexer.store.migrate import migrate
from indexer.store.opensearch import OpenSearchStore
from indexer.store.opensearch_schema import tid_for
from indexer.store.sqlite import SqliteStore
from tests import factories as f
from tests import store_backends
from tests import test_opensearch_write_steps as write_steps
from tests import test_store_contract_restore as contract_restore
from tests.opensearch_proxy import FailingProxy, update_between_the_file_and_the_tombstone
from tests.store_backends import NOW, Opener
from tests.test_store_lifecycle import _checked

# The fixtures these tests take, bound here by name so pytest finds them (as in test_store_contract_admin.py).
open_store, open_cluster = store_backends.open_store, store_backends.open_cluster
through_proxy = write_steps.through_proxy
source = contract_restore.source  # the store migrated from: an embedded store, whose restore is the reference


def test_a_migration_run_again_after_the_source_deleted_and_refiled_the_same_person_keeps_the_deletion(
    source: SqliteStore, open_store: Opener
) -> None:
    key = TracingKey("NCIS", "R-1")
    source.write([Upsert(_checked(f.person("NCIS", "R-1", 1)))], actor="NCIS")
    target = open_store()
    migrate(source, target)
    # In the source: the agency deletes the record, then files it again about the same person (a new life).
    source.write([Delete(key, 2, "DELETED BY OWNING AGENCY")], actor="NCIS")
    source.write([Upsert(_checked(f.person("NCIS", "R-1", 3)))], actor="NCIS")

    migrate(source, target)  # "run it again afterwards"

    held = target.get(key)
    assert held is not None and held.tracing.source_version == 3
    logged = [(r.key, r.source_version, r.reason) for r in target.deletions()]
    assert logged == [(key, 2, "DELETED BY OWNING AGENCY")]
    assert target.last_deleted(key) == source.last_deleted(key) == NOW
    assert target.check_integrity() == []
    assert target.repair() == []
    assert [(r.key, r.source_version) for r in target.deletions()] == [(key, 2)]


def _log(store: TracingStore) -> list[tuple[str, int, str]]:
    return [(r.key.record_number, r.source_version, r.reason) for r in store.deletions()]


def test_a_completion_that_stops_before_telling_an_overtaking_update_its_new_life_keeps_the_end_logged(
    through_proxy: tuple[OpenSearchStore, OpenSearchStore, FailingProxy], source: SqliteStore
) -> None:
    """Instance B read the open case before A's completion wrote the file, and wrote its update after: A's
    tombstone is refused, and A's last requests (the `born` rewrite of B's record among them) never land (a
    crash, or the cluster gone). The completion landed, so the old life ended: as on the embedded store with
    the same writes in order (completion, then update), the end stays in the log, `last_deleted` says so,
    and neither the check nor `repair` calls it a deletion that never landed."""
    direct, faulty, proxy = through_proxy
    old = _checked(f.open_case(record="OC-1"))
    newer = _checked(f.open_case(record="OC-1", version=5, given="Harry"))
    completion = Replace(old.key, TracingType.OPEN_CASE, _checked(f.person("NCIS", "F-1", 3)))
    source.write([Upsert(old)], actor="NCIS")
    source.write([completion], actor="NCIS")
    source.write([Upsert(newer)], actor="NCIS")
    expected = _log(source)
    assert expected == [("OC-1", 3, "SUPERSEDED by FILE NCIS/F-1")] and source.last_deleted(old.key) == NOW

    other_proxy = FailingProxy(direct.settings.hosts[0])
    other = OpenSearchStore(dataclasses.replace(direct.settings, hosts=(other_proxy.url,)), clock=lambda: NOW)
    try:
        direct.write([Upsert(old)], actor="NCIS")
        updating = update_between_the_file_and_the_tombstone(
            proxy, other_proxy, lambda: other.write([Upsert(newer)], actor="NCIS")
        )
        proxy.fail_at = 4  # and nothing of A's after it lands: the `born` rewrite among them
        with contextlib.suppress(Unavailable):  # what A's caller hears does not matter here, only what is held
            faulty.write([completion], actor="NCIS")
        assert not updating.is_alive()
        held = direct._client.get(index=direct.names.tracings, id=str(tid_for(old.key)))["_source"]
        assert (held["born"], held["source_version"]) == (1, 5)  # the window: B's record still in the old life

        assert _log(direct) == expected and direct.last_deleted(old.key) == NOW
        assert direct.check_integrity() == []
        assert direct.repair() == []
        assert _log(direct) == expected
    finally:
        other.close()
        other_proxy.close()


def test_a_statement_carried_to_a_restored_life_goes_back_when_a_newer_write_refuses_the_restore(
    through_proxy: tuple[OpenSearchStore, OpenSearchStore, FailingProxy], source: SqliteStore
) -> None:
    """The target's own statement is written again with the restored tracing's `born` before the tracing;
    ingest writes a newer version of the same person in between, so the restore's tracing is refused (409).
    As on the embedded store with the same writes in order (the update, then the migration, which keeps the
    newer version), the statement stays attached to the record."""
    direct, faulty, proxy = through_proxy
    key = TracingKey("NCIS", "G-1")
    direct.write([Upsert(_checked(f.person("NCIS", "G-1", 1)))], actor="NCIS")
    assert direct.set_dispute(key, store_backends._dispute(1))
    source.write([Upsert(_checked(f.person("NCIS", "G-1", 2, given="Harry")))], actor="NCIS")
    newer = _checked(f.person("NCIS", "G-1", 3, given="Harold"))

    def ingest_writes_a_newer_version() -> None:
        direct.write([Upsert(newer)], actor="NCIS")

    proxy.before[proxy.bulks + 2] = ingest_writes_a_newer_version  # after the statement's write, before the tracing's
    migrate(source, faulty)

    assert not proxy.before
    held = direct.get(key)
    assert held is not None and held.tracing.source_version == 3
    assert held.dispute is not None and held.dispute.dispute_id == "DSP-1"
    assert direct.check_integrity() == []
