"""A rebuild on OpenSearch while another service instance goes on writing (docs/OPENSEARCH.md, Rebuild).

`dcii index rebuild` runs in a process of its own; here the rebuilder and the service are two stores on the
same cluster, and the rebuild's `step` callback lets the service write at the moments that matter. Before the
rebuild told the other instances anything, a record the service wrote during the copy was in the old version
only until the catch-up after the swap: its completion, deletion or statement of dispute arriving just after
the swap was answered NOT_FOUND (a deletion without its log entry, a completion's new record never written),
and searches did not find it (a review of the backend: "stop every connector for the whole rebuild")."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from typing import Any

import pytest

from indexer.exc import FailedPrecondition, Unavailable
from indexer.model import StoredTracing, Tracing, TracingKey, TracingType
from indexer.store.base import Delete, DeletionRecord, Replace, Upsert, WriteOp, WriteOutcome
from indexer.store.opensearch import OpenSearchStore
from indexer.store.opensearch_admin import resume
from indexer.store.opensearch_schema import deletion_doc, tid_for, tombstone_doc, tracing_doc
from tests import factories as f
from tests import store_backends
from tests.store_backends import Opener, _dispute, _live
from tests.support import ROOT
from tests.test_store_lifecycle import _checked, file_tracing, nac

open_cluster = store_backends.open_cluster


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)  # the catch-up copies by the time each document was written


def _pair(open_cluster: Opener) -> tuple[OpenSearchStore, OpenSearchStore]:
    service, rebuilder = open_cluster(clock=_now), open_cluster(clock=_now)
    assert isinstance(service, OpenSearchStore) and isinstance(rebuilder, OpenSearchStore)
    return service, rebuilder


class _CutShort(Exception):
    """The rebuild's process dies at a step."""


def _lands_late(store: OpenSearchStore, index: str, tracing: Tracing) -> None:
    """A write another instance sent to the old version before the swap that lands there after it (a slow
    bulk), as that instance's writer would have written it."""
    doc = tracing_doc(tracing, tid=tid_for(tracing.key), born=tracing.source_version, indexed_at=_now())
    store._client.index(
        index=index, id=str(doc["tid"]), body=doc, version=tracing.source_version, version_type="external",
        refresh=True,
    )  # fmt: skip


def test_another_instance_completes_deletes_and_disputes_at_the_swap_what_it_wrote_during_the_copy(
    open_cluster: Opener,
) -> None:
    service, rebuilder = _pair(open_cluster)
    old = service.names.version(1)
    service.write([Upsert(file_tracing("BEFORE"))], actor="NCIS")
    case, closed = _checked(f.open_case("NCIS", "OC-1", 1)), _checked(f.person("NCIS", "F-1", 2))
    doomed = file_tracing("GONE-1", surname="Quill")
    late_case, late_closed = _checked(f.open_case("NCIS", "OC-2", 1)), _checked(f.person("NCIS", "F-2", 2))
    late_doomed, late_disputed = file_tracing("GONE-2", surname="Abbot"), file_tracing("DSP-2", surname="Ambrose")
    earlier, favorable = nac("H1", (2010, 1, 1)), nac("H2", (2020, 1, 1))
    outcomes: dict[str, list[WriteOutcome]] = {}
    found_at_swap: list[set[str]] = []

    def copied_all(sent: int, total: int) -> None:
        if "during" not in outcomes and sent == total:  # the copy has read the old version: these are not in it
            ops: list[WriteOp] = [Upsert(case), Upsert(doomed)]
            outcomes["during"] = [r.outcome for r in service.write(ops, actor="NCIS")]

    def at(step: str) -> None:
        if step == "swapping":  # after the last catch-up before the swap: in the new version by the mirror only
            outcomes["swapping"] = [r.outcome for r in service.write([Upsert(file_tracing("LAST"))], actor="NCIS")]
        if step == "swapped":  # the catch-up after the swap has not run yet
            found_at_swap.append(_live(service))
            for tracing in (late_case, late_doomed, late_disputed, earlier):
                _lands_late(service, old, tracing)
            ops: list[WriteOp] = [
                Replace(case.key, TracingType.OPEN_CASE, closed),
                Delete(doomed.key, doomed.source_version, "DELETED BY OWNING AGENCY"),
                Replace(late_case.key, TracingType.OPEN_CASE, late_closed),
                Delete(late_doomed.key, late_doomed.source_version, "DELETED BY OWNING AGENCY"),
                Upsert(favorable),
            ]
            outcomes["swapped"] = [r.outcome for r in service.write(ops, actor="NCIS")]
            outcomes["dispute"] = [WriteOutcome.APPLIED if service.set_dispute(late_disputed.key, _dispute(1)) else
                                   WriteOutcome.NOT_FOUND]  # fmt: skip

    rebuilder.rebuild(progress=copied_all, step=at)

    assert outcomes["during"] == [WriteOutcome.APPLIED] * 2
    assert outcomes["swapping"] == [WriteOutcome.APPLIED]
    assert found_at_swap == [{"BEFORE", "OC-1", "GONE-1", "LAST"}]
    assert outcomes["swapped"] == [WriteOutcome.APPLIED] * 5
    assert outcomes["dispute"] == [WriteOutcome.APPLIED]
    assert _live(service) == {"BEFORE", "F-1", "F-2", "DSP-2", "H2", "LAST"}
    assert {r.key.record_number for r in service.deletions()} == {"OC-1", "GONE-1", "OC-2", "GONE-2", "H1"}
    held = service.get(late_disputed.key)
    assert held is not None and held.dispute == _dispute(1)
    assert service.check_integrity() == []
    assert sorted(service._client.indices.get_alias(index=service.names.pattern)) == [service.names.version(2)]


def _aliases(store: OpenSearchStore) -> dict[str, list[str]]:
    found = store._client.indices.get_alias(index=store.names.pattern)
    return {index: sorted(body["aliases"]) for index, body in sorted(found.items())}


def test_a_rebuild_cut_short_after_its_swap_is_refused_until_resumed(open_cluster: Opener) -> None:
    service, rebuilder = _pair(open_cluster)
    names = service.names
    service.write([Upsert(file_tracing(f"F-{n}")) for n in range(3)], actor="NCIS")

    def dies_after_the_swap(step: str) -> None:
        if step == "swapped":
            raise _CutShort

    with pytest.raises(_CutShort):
        rebuilder.rebuild(step=dies_after_the_swap)
    assert _aliases(service) == {names.version(1): [names.leaving], names.version(2): [names.tracings]}
    # The service goes on: it reads the version left behind as well as the alias's.
    late = file_tracing("F-9")
    assert service.write([Upsert(late)], actor="NCIS")[0].outcome is WriteOutcome.APPLIED
    assert service.write([Delete(TracingKey("NCIS", "F-0"), 1, "DELETED")], actor="NCIS")[0].outcome is (
        WriteOutcome.APPLIED
    )
    problems = service.check_integrity()
    assert any("is being left" in p and "--resume" in p for p in problems), problems
    assert service.rebuilding()  # dcii_store_rebuilding: the alert DciiRebuildLeftOver
    with pytest.raises(FailedPrecondition, match="a rebuild was cut short"):
        rebuilder.rebuild()
    assert rebuilder.rebuild(resume=True) == names.version(2)  # the swap was made: finishing it is enough
    assert _aliases(service) == {names.version(2): [names.tracings]}
    assert not service.rebuilding()
    assert _live(service) == {"F-1", "F-2", "F-9"}
    assert service.check_integrity() == []


def test_a_rebuild_cut_short_before_its_swap_is_made_again_by_resume(open_cluster: Opener) -> None:
    service, rebuilder = _pair(open_cluster)
    names = service.names
    service.write([Upsert(file_tracing(f"F-{n}")) for n in range(3)], actor="NCIS")

    def dies_before_the_swap(step: str) -> None:
        if step == "catching up":
            raise _CutShort

    with pytest.raises(_CutShort):
        rebuilder.rebuild(step=dies_before_the_swap)
    assert _aliases(service) == {
        names.version(1): sorted([names.leaving, names.tracings]),
        names.version(2): [names.building],
    }
    with pytest.raises(FailedPrecondition, match="is being built"):
        rebuilder.rebuild()
    # The service writes on, mirrored into the version being built; then the cut-short rebuild is cleared away
    # while the service's view of the aliases (read for F-9) still says so: F-10's mirror finds no alias, and
    # makes no index of its name.
    assert service.write([Upsert(file_tracing("F-9"))], actor="NCIS")[0].outcome is WriteOutcome.APPLIED
    assert resume(rebuilder._client, names, rebuilder._writer.phase.forget) is False  # no swap was made
    assert service.write([Upsert(file_tracing("F-10"))], actor="NCIS")[0].outcome is WriteOutcome.APPLIED
    assert _aliases(service) == {names.version(1): [names.tracings]}
    everything = sorted(service._client.indices.get(index=f"{names.prefix}-*"))
    assert everything == sorted(
        [names.version(1), names.disputes, names.dispute_filings, names.deletions, names.rebuild_lease]
    )
    assert rebuilder.rebuild() == names.version(2)
    assert _aliases(service) == {names.version(2): [names.tracings]}
    assert _live(service) == {"F-0", "F-1", "F-2", "F-9", "F-10"}
    assert service.check_integrity() == []


def test_a_version_of_another_schema_being_built_gets_no_mirror(open_cluster: Opener) -> None:
    """Another program's rebuild derives its documents with its own code; this instance's would stay there
    (the copy keeps a version it finds held), so it writes to the alias alone and the catch-up re-derives."""
    service, _ = _pair(open_cluster)
    names = service.names
    client: Any = service._client
    body = {"mappings": {"_meta": {"schema": 99}, "dynamic": False}, "aliases": {names.building: {}}}
    client.indices.create(index=names.version(7), body=body)
    service._writer.phase.forget()
    assert service.write([Upsert(file_tracing("F-1"))], actor="NCIS")[0].outcome is WriteOutcome.APPLIED
    client.indices.refresh(index=names.version(7))
    assert client.count(index=names.version(7))["count"] == 0
    assert _live(service) == {"F-1"}


def test_while_a_rebuild_runs_the_check_is_clean_and_a_second_or_a_resume_is_refused(open_cluster: Opener) -> None:
    """The rebuild's lease tells a running rebuild from one cut short: the check said "running, or cut short,
    `--resume` finishes it" during every healthy rebuild, and a `--resume` beside a running rebuild deleted the
    version it was copying into (a review of the rebuild: 1,000 of 2,500 records gone)."""
    service, rebuilder = _pair(open_cluster)
    names = service.names
    other = open_cluster(clock=_now)
    assert isinstance(other, OpenSearchStore)
    service.write([Upsert(file_tracing(f"F-{n}")) for n in range(3)], actor="NCIS")
    seen: dict[str, Any] = {}

    def at(step: str) -> None:
        if step == "catching up":
            seen["check"] = service.check_integrity()
            seen["rebuilding"] = service.rebuilding()
            url = f"{service.settings.hosts[0].replace('http://', 'opensearch://')}?prefix={names.prefix}"
            command = [sys.executable, "-m", "dcii.cli.index_cmd", "index", "check", "--store", url]
            seen["cli"] = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
            for resume_too in (False, True):
                try:
                    other.rebuild(resume=resume_too)
                except FailedPrecondition as refused:
                    seen[f"refused {resume_too}"] = str(refused)

    assert rebuilder.rebuild(step=at) == service.names.version(2)
    assert seen["check"] == [] and seen["rebuilding"] is True
    assert seen["cli"].returncode == 0, seen["cli"].stderr
    assert "a rebuild of the index is running" in seen["cli"].stderr
    assert "a rebuild is running" in seen["refused False"] and "a rebuild is running" in seen["refused True"]
    assert _live(service) == {"F-0", "F-1", "F-2"} and service.check_integrity() == []


def test_a_rebuild_whose_new_version_is_deleted_under_it_stops_and_makes_no_index_of_that_name(
    open_cluster: Opener,
) -> None:
    """Its copies go through the building alias with require_alias: the cluster made the version again from
    the template, partly filled, and the rebuild swapped to it and deleted the old one."""
    service, rebuilder = _pair(open_cluster)
    names = service.names
    service.write([Upsert(file_tracing(f"F-{n}")) for n in range(3)], actor="NCIS")

    def at(step: str) -> None:
        if step == "catching up":
            service._client.indices.delete(index=names.version(2))

    with pytest.raises(Unavailable):
        rebuilder.rebuild(step=at)
    assert _aliases(service) == {names.version(1): sorted([names.leaving, names.tracings])}
    assert rebuilder.rebuild(resume=True) == names.version(2)  # no version 2 is left: its name is free
    assert _live(service) == {"F-0", "F-1", "F-2"} and service.check_integrity() == []


def test_a_new_version_that_refuses_writes_does_not_stop_the_instances_writes(open_cluster: Opener) -> None:
    """A mirror that failed failed the whole write, though it had landed in the old version: a disk watermark's
    block on the new version stopped every instance's writes (a review of the rebuild)."""
    service, rebuilder = _pair(open_cluster)
    names = service.names
    outcomes: list[WriteOutcome] = []

    def at(step: str) -> None:
        if step == "copying":
            service._client.indices.put_settings(index=names.version(2), body={"index": {"blocks": {"write": True}}})
            service._writer.phase.forget()
            outcomes.extend(r.outcome for r in service.write([Upsert(file_tracing("F-1"))], actor="NCIS"))
            service._client.indices.put_settings(index=names.version(2), body={"index": {"blocks": {"write": False}}})

    rebuilder.rebuild(step=at)
    assert outcomes == [WriteOutcome.APPLIED]
    assert _live(service) == {"F-1"} and service.check_integrity() == []


def test_a_migration_into_the_store_is_refused_while_a_rebuild_is_unfinished(open_cluster: Opener) -> None:
    """Its writes keep the source's indexed_at and are not mirrored: the catch-up never copied them and they
    went with the old version (a review of the rebuild)."""
    service, rebuilder = _pair(open_cluster)
    refused: list[str] = []

    def at(step: str) -> None:
        if step == "copying":
            stored = StoredTracing(file_tracing("MIGRATED"), indexed_at=_now() - dt.timedelta(days=30))
            with pytest.raises(FailedPrecondition, match="a rebuild of the index is running") as caught:
                service.restore([stored])
            refused.append(str(caught.value))

    rebuilder.rebuild(step=at)
    assert refused and _live(service) == set()
    service.restore([StoredTracing(file_tracing("MIGRATED"), indexed_at=_now() - dt.timedelta(days=30))])
    assert _live(service) == {"MIGRATED"}


def test_a_delete_that_landed_in_the_leaving_version_only_stands_against_the_same_version_live(
    open_cluster: Opener,
) -> None:
    """A tombstone at version V ends the live document of version V: read beside it, the record is deleted.
    The alias's live copy was taken on the tie, and a dispute or a completion of the deleted record was
    applied (a review of the rebuild)."""
    service, rebuilder = _pair(open_cluster)
    names = service.names
    doomed = file_tracing("GONE", surname="Quill")
    service.write([Upsert(doomed)], actor="NCIS")
    answered: list[bool] = []

    def at(step: str) -> None:
        if step == "swapped":  # the new version holds it live at version 1; the old one gets its tombstone late
            tomb = tombstone_doc(doomed.key, tid=tid_for(doomed.key), version=1, kind="FILE", at=_now())
            record = DeletionRecord(doomed.key, TracingType.FILE, 1, "DELETED", "NCIS", _now())
            entry = deletion_doc(record, tid=tomb["tid"], seq=0)  # logged first, as the writer does
            service._client.index(index=names.deletions, id=entry["log_id"], body=entry, refresh=True)
            service._client.index(
                index=names.version(1), id=str(tomb["tid"]), body=tomb, version=1, version_type="external_gte",
                refresh=True,
            )  # fmt: skip
            answered.append(service.set_dispute(doomed.key, _dispute(1)))

    rebuilder.rebuild(step=at)
    assert answered == [False]
    assert _live(service) == set() and service.check_integrity() == []


def test_a_lease_left_by_a_rebuild_gone_before_making_anything_is_taken_over_whatever_its_clock(
    open_cluster: Opener,
) -> None:
    """A rebuild killed just after taking its lease leaves the lease and nothing else. The check failed ("writes
    may be in the old version only") and a plain rebuild was refused; and a holder judged by two machines'
    clocks looked alive for ten minutes when its clock ran ten minutes ahead (a review of the lease). The
    lease is watched for three of its heartbeats instead."""
    service, rebuilder = _pair(open_cluster)
    names = service.names
    service.write([Upsert(file_tracing("F-1"))], actor="NCIS")
    client: Any = service._client
    client.indices.create(index=names.rebuild_lease, body={"settings": {"number_of_replicas": 0}})
    ahead = (_now() + dt.timedelta(minutes=10)).isoformat()
    gone = {"holder": "elsewhere pid 1", "token": "dead", "started": ahead, "beat": ahead, "every": 0.2}
    client.index(index=names.rebuild_lease, id="rebuild", body=gone, refresh=True)
    assert service.check_integrity() == []
    assert rebuilder.rebuild() == names.version(2)
    assert client.get(index=names.rebuild_lease, id="rebuild", ignore=[404]).get("found") is False
    assert _live(service) == {"F-1"} and service.check_integrity() == []


def test_the_lease_index_takes_the_stores_replicas(open_cluster: Opener) -> None:
    """Made with one replica whatever the store said, it left a one-node cluster yellow for good."""
    service, rebuilder = _pair(open_cluster)
    rebuilder.rebuild()
    index = service.names.rebuild_lease
    replicas = service._client.indices.get_settings(index=index)[index]["settings"]["index"]["number_of_replicas"]
    assert int(replicas) == service.settings.replicas
