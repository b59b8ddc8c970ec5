"""The storage contract on every backend (tests/store_backends.py): reads in key order (names, titles,
match-key candidates). Writes and the lifecycle rules: tests/test_store_contract.py."""

from __future__ import annotations

import pytest

from indexer.match_keys import tracing_keys
from indexer.model import Identifiers, PartialDate, PlaceOfBirth, Tracing
from indexer.store.base import (
    NameCursor,
    TracingStore,
    Upsert,
)
from indexer.store.sqlite import SqliteStore
from search_service.exact import pids_agreeing
from tests import store_backends
from tests.store_backends import _title
from tests.test_store_lifecycle import file_tracing

ACTOR = "DSS-HQ-01/dss-op"

# The fixtures these tests take, bound here by name so pytest finds them (importing them would do the same, but
# ruff reads each test's parameter of that name as a redefinition of an unused import, F811).
open_store, store = store_backends.open_store, store_backends.store


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
        ("F-6", "", (1971, 4, 0), ""),  # a record of year and month: a full date of that month agrees
        ("F-7", "", (1971, 0, 0), ""),  # of the year alone
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
