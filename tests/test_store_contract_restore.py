"""The storage contract of a migration (TracingStore.restore, indexer.store.migrate) into a target that has been
written since, and of what a migration carries (tests/store_backends.py: every backend as the target; the
source is an embedded store, the reference): statements of dispute when `dcii index migrate` runs again, a
tombstone's time, values a cluster cannot index. Also favorable-NAC supersession with more candidates than
one request to the cluster holds (a review of the backends: findings 4, 5 and 8)."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest

from indexer.exc import FailedPrecondition, Unavailable
from indexer.model import Dispute, StoredTracing, Tracing, TracingKey, TracingType
from indexer.store import opensearch_follow
from indexer.store.base import Delete, DeletionRecord, Replace, TracingStore, Upsert
from indexer.store.migrate import migrate
from indexer.store.sqlite import SqliteStore
from tests import factories as f
from tests import store_backends
from tests import test_opensearch_write_steps as write_steps
from tests.store_backends import NOW, Opener, _dispute, _live
from tests.test_store_lifecycle import INCOMPLETE, OTHER_SSN, _checked, file_tracing, nac

# The fixtures these tests take, bound here by name so pytest finds them (as in test_store_contract_admin.py).
open_store, open_cluster = store_backends.open_store, store_backends.open_cluster
through_proxy = write_steps.through_proxy


class Clock:
    """A clock the test moves: each write of interest at its own instant."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> dt.datetime:
        return self.now

    def tick(self) -> None:
        self.now += dt.timedelta(seconds=1)


@pytest.fixture
def source(tmp_path: Path) -> Iterator[SqliteStore]:
    """The store migrated from: an embedded store, whose restore is the reference."""
    opened = SqliteStore(tmp_path / "source.db", clock=lambda: NOW)
    try:
        yield opened
    finally:
        opened.close()


def _statement(store: TracingStore, record: str) -> str | None:
    held = store.get(TracingKey("NCIS", record))
    assert held is not None
    return held.dispute.dispute_id if held.dispute else None


def _filed(n: int) -> Dispute:
    return dataclasses.replace(_dispute(n), filed_at=NOW + dt.timedelta(days=n))


# ---- statements of dispute when a migration runs again (finding 5) ----


def test_a_migration_run_again_keeps_what_the_target_was_told_since(source: SqliteStore, open_store: Opener) -> None:
    for record in ("F-1", "F-2", "F-3"):
        source.write([Upsert(file_tracing(record))], actor="NCIS")
        assert source.set_dispute(TracingKey("NCIS", record), _filed(1))
    target = open_store()
    migrate(source, target)

    # On the target after the cut-over: F-1 corrected (the same person) and a new statement filed; F-2 refiled to
    # another person, who files a statement of their own; F-3 deleted by its agency.
    same_person = _checked(f.person("NCIS", "F-1", 2, given="Harry"))
    another = _checked(f.person("NCIS", "F-2", 2, surname="Okafor", given="Ngozi", ssn=OTHER_SSN, dob=(1980, 2, 3)))
    target.write([Upsert(same_person), Upsert(another)], actor="NCIS")
    target.write([Delete(TracingKey("NCIS", "F-3"), 2, "DELETED BY OWNING AGENCY")], actor="NCIS")
    assert target.set_dispute(TracingKey("NCIS", "F-1"), _filed(2))
    assert target.set_dispute(TracingKey("NCIS", "F-2"), _filed(3))

    migrate(source, target)  # "run it again afterwards" (docs/OPENSEARCH.md, Migration)

    assert (_statement(target, "F-1"), _statement(target, "F-2")) == ("DSP-2", "DSP-3")
    assert target.get(TracingKey("NCIS", "F-3")) is None
    assert target.check_integrity() == []  # no statement left behind for the deleted record


def test_a_newer_version_restored_over_a_held_tracing_keeps_or_ends_its_dispute_as_an_update_does(
    source: SqliteStore, open_store: Opener
) -> None:
    target = open_store()
    for record in ("G-1", "G-2", "G-3"):
        target.write([Upsert(file_tracing(record))], actor="NCIS")
        assert target.set_dispute(TracingKey("NCIS", record), _filed(1))
    # The source holds each at version 2: G-1 and G-2 about the same person (G-2 with a statement of its own),
    # G-3 refiled to another person.
    source.write(
        [
            Upsert(_checked(f.person("NCIS", "G-1", 2, given="Harry"))),
            Upsert(_checked(f.person("NCIS", "G-2", 2, given="Harry"))),
            Upsert(_checked(f.person("NCIS", "G-3", 2, surname="Okafor", given="Ngozi", ssn=OTHER_SSN))),
        ],
        actor="NCIS",
    )
    assert source.set_dispute(TracingKey("NCIS", "G-2"), _filed(2))

    migrate(source, target)

    versions = {s.tracing.key.record_number: s.tracing.source_version for s in target.iter_all()}
    assert versions == {"G-1": 2, "G-2": 2, "G-3": 2}
    assert [_statement(target, r) for r in ("G-1", "G-2", "G-3")] == ["DSP-1", "DSP-2", None]
    assert target.check_integrity() == []


def test_a_migration_cut_short_before_its_statements_is_finished_by_running_it_again(
    source: SqliteStore, through_proxy: tuple[TracingStore, TracingStore, write_steps.FailingProxy]
) -> None:
    """OpenSearch only (the embedded store restores a batch in one transaction): the tracings landed, the
    request with their statements failed. Run again, the tracings are held at their version, and the statements
    are written then."""
    direct, faulty, proxy = through_proxy
    source.write([Upsert(file_tracing("F-1")), Upsert(file_tracing("F-2"))], actor="NCIS")
    assert source.set_dispute(TracingKey("NCIS", "F-1"), _filed(1))
    direct.write([Upsert(file_tracing("F-2"))], actor="NCIS")
    assert direct.set_dispute(TracingKey("NCIS", "F-2"), _filed(2))  # the target's own: stays
    proxy.arm(2)  # the statements' request
    with pytest.raises(Unavailable):
        migrate(source, faulty)
    assert _statement(direct, "F-1") is None
    proxy.arm(0)
    migrate(source, faulty)
    assert (_statement(direct, "F-1"), _statement(direct, "F-2")) == ("DSP-1", "DSP-2")
    assert direct.check_integrity() == []


# ---- a tombstone's time (finding 8) ----


def test_a_completion_onto_a_migrated_tombstone_goes_as_it_went_before_the_migration(
    tmp_path: Path, open_store: Opener
) -> None:
    """A completion whose new record's key is held as a tombstone at its version compares the old record's
    indexing with the tombstone's (`Replace`): an open case indexed before it goes, one indexed after it is the
    old key used again and stays. A migration keeps both times, so the answer is the same after it."""
    clock = Clock()
    source = SqliteStore(tmp_path / "source.db", clock=clock)
    back = SqliteStore(tmp_path / "back.db", clock=clock)
    try:
        source.write([Upsert(_checked(f.open_case(record="OC-1")))], actor="NCIS")
        clock.tick()
        gone = [Delete(TracingKey("NCIS", file), 3, "DELETED BY OWNING AGENCY") for file in ("F-1", "F-2")]
        source.write(gone, actor="NCIS")  # never seen here: tombstones at version 3
        clock.tick()
        source.write([Upsert(_checked(f.open_case(record="OC-2")))], actor="NCIS")
        clock.tick()
        target = open_store(clock)
        migrate(source, target)
        migrate(target, back)  # and out of it again: the target's tombstones as it reads them
        held = [sorted(s.iter_tombstones(), key=lambda t: t.key.record_number) for s in (source, target, back)]

        completions = [
            Replace(TracingKey("NCIS", f"OC-{n}"), TracingType.OPEN_CASE, _checked(f.person("NCIS", f"F-{n}", 3)))
            for n in (1, 2)
        ]
        before = [r.outcome.value for r in source.write(completions, actor="NCIS")]
        after = [r.outcome.value for r in target.write(completions, actor="NCIS")]
        assert before == after == ["APPLIED", "UNCHANGED"]
        assert _live(source) == _live(target) == {"OC-2"}
        assert len(held[0]) == 2 and held[0] == held[1] == held[2]  # each with its time, both ways
    finally:
        source.close()
        back.close()


# ---- values a cluster cannot index ----

IMMENSE = "Q" * 40_000  # over the 32,766 bytes of one indexed keyword


def _immense_name() -> Tracing:
    tracing = file_tracing("F-2")
    assert tracing.subject is not None
    name = dataclasses.replace(tracing.subject.name, surname=IMMENSE)
    return dataclasses.replace(tracing, subject=dataclasses.replace(tracing.subject, name=name))


@pytest.mark.parametrize("immense", ["a name", "a deletion reason"])
def test_a_restore_refuses_a_value_a_cluster_cannot_index_before_writing_any_of_its_batch(
    open_store: Opener, immense: str
) -> None:
    """The embedded store holds any length; a cluster refuses such a document ("immense term"), which
    osmem-server takes: the OpenSearch backend refuses it itself, naming the field and not the value, as
    ingest's edit criteria refuse an over-long value rather than cut it."""
    target = open_store()
    tracings, deletions = [StoredTracing(file_tracing("F-1"), NOW)], []
    if immense == "a name":
        tracings.append(StoredTracing(_immense_name(), NOW))
    else:
        deletions.append(DeletionRecord(TracingKey("NCIS", "F-9"), TracingType.FILE, 2, IMMENSE, "NCIS", NOW))
    if isinstance(target, SqliteStore):
        target.restore(tracings, (), deletions)
        assert target.count() == len(tracings) and len(target.deletions()) == len(deletions)
        return
    with pytest.raises(FailedPrecondition, match="more than the 32766") as refused:
        target.restore(tracings, (), deletions)
    assert "QQQQ" not in str(refused.value)
    assert target.count() == 0 and target.deletions() == []


# ---- supersession with more candidates than one request holds (finding 4) ----


@pytest.mark.parametrize("ssn", ["", "318-52-4471"], ids=["no SSN", "SSN"])
def test_a_favorable_nac_history_supersedes_past_a_page_of_candidates(
    open_store: Opener, monkeypatch: pytest.MonkeyPatch, ssn: str
) -> None:
    """The cluster is asked page by page; the page is lowered so that a handful of histories fill several."""
    monkeypatch.setattr(opensearch_follow, "SUPERSESSION_PAGE", 3)
    store = open_store()
    earlier = [nac(f"NH-{n}", (2010 + n % 5, 5, 1), ssn=ssn, outcome=INCOMPLETE) for n in range(8)]
    others = [  # the same name: another agency's history, a later one, a namesake with an SSN of their own
        nac("NCIS-NH-1", (2012, 5, 1), agency="NCIS", ssn=ssn, outcome=INCOMPLETE),
        nac("NH-LATER", (2020, 5, 1), ssn=ssn, outcome=INCOMPLETE),
        nac("NH-SSN", (2012, 5, 1), ssn=OTHER_SSN, outcome=INCOMPLETE),
    ]
    if not ssn:  # and, matched by name, one born another day
        others.append(nac("NH-DOB", (2012, 5, 1), ssn="", dob=(1980, 1, 1), outcome=INCOMPLETE))
    store.write([Upsert(t) for t in earlier + others], actor="loader")
    store.write([Upsert(nac("NH-F", (2018, 5, 1), ssn=ssn))], actor="DSS")
    assert _live(store) == {"NH-F", *(t.key.record_number for t in others)}
    assert sorted(r.key.record_number for r in store.deletions()) == sorted(t.key.record_number for t in earlier)
    assert store.check_integrity() == []
