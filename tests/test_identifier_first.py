"""Identifier first (indexer.match_keys, search_service.ranked): a PID_QUALIFIED query with a full SSN, at
a threshold above the SSN-conflict cap, retrieves by SSN keys and, among tracings without a full SSN
only, by the `n` twins of its other keys. It must answer exactly what the full lookup answers, from a
smaller candidate set, on every backend."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from indexer.demo import generate_tracings
from indexer.match_keys import KEYS_VERSION, NO_SSN, full_ssn, tracing_keys
from indexer.match_keys_query import query_keys
from indexer.model import Identifiers, PartialDate, PersonName, Subject, Tracing, TracingKey
from indexer.store.base import TracingStore, Upsert
from indexer.store.opensearch import OpenSearchStore
from search_service.matching import DEFAULT_THRESHOLD, matcher
from search_service.matching_pids import ssn_conflicts
from search_service.ranked import MAX_CANDIDATES, run_ranked
from tests.store_backends import BACKENDS, _opener
from tests.test_store_lifecycle import file_tracing

TODAY = dt.date(2026, 11, 21)
SSN = "318524471"
DOB = PartialDate(1971, 4, 12)


def _subject(ssn: str, dob: PartialDate | None = DOB, surname: str = "WHITFIELD", given: str = "HAROLD") -> Subject:
    return Subject(PersonName(surname, given, "JAMES"), identifiers=Identifiers(ssn, dob))


@pytest.mark.parametrize(
    ("ssn", "twins"),
    [
        (SSN, False),
        ("318-52-4471", False),  # the scorer reads the digits: a full SSN
        ("", True),
        ("4471", True),  # the last four only: compared as such, never a conflict
        ("31852447", True),  # eight digits: not a full SSN
    ],
)
def test_a_tracing_without_a_full_ssn_stores_a_twin_of_every_key(ssn: str, twins: bool) -> None:
    tracing = Tracing(TracingKey("NCIS", "1"), 1, _subject(ssn), None)
    keys = tracing_keys(tracing)
    plain = {key for key in keys if not key.startswith(NO_SSN)}
    assert keys - plain == ({NO_SSN + key for key in plain} if twins else set())
    assert any(key.startswith("ne:") for key in keys) is twins


def test_the_query_keeps_its_ssn_keys_and_asks_every_other_key_as_its_twin() -> None:
    name, ids = PersonName("WHITFIELD", "HAROLD"), Identifiers(SSN, DOB)
    full = query_keys(name, ids)
    first = query_keys(name, ids, conflicting_ssn_out=True)
    assert len(first) == len(full)
    assert [k for k in first if k[0] == "w"] == [k for k in full if k[0] == "w"] != []
    assert {k for k in first if k[0] != "w"} == {NO_SSN + k for k in full if k[0] != "w"}
    # A store of keys version 2 holds the SSN windows instead (and an OpenSearch index of that version
    # documents of the current version too, until it is rebuilt): both are asked, neither as a twin.
    older = query_keys(name, ids, conflicting_ssn_out=True, keys_version=2)
    windows = {"s0:524471", "s2:314471", "s4:318571", "s6:318524"}
    assert {k for k in older if k[0] in "sw"} == {k for k in full if k[0] == "w"} | windows
    # Without a full SSN in the query there is nothing to leave out: the keys are the full lookup's.
    for ssn in ("", "4471"):
        partial = Identifiers(ssn, DOB)
        assert query_keys(name, partial, conflicting_ssn_out=True) == query_keys(name, partial)


@pytest.mark.parametrize(
    ("record", "conflicts"),
    [
        (SSN, False),
        ("318524470", False),  # one digit
        ("381524471", False),  # two adjacent digits swapped
        ("318524417", False),  # the last two swapped
        ("", False),
        ("4471", False),
        ("318524400", True),  # two digits wrong, side by side, not a swap
        ("418524470", True),  # two digits wrong, far apart
        ("529613380", True),
    ],
)
def test_an_ssn_conflicts_only_when_the_scorer_says_disagree(record: str, conflicts: bool) -> None:
    assert ssn_conflicts(SSN, record) is conflicts
    assert ssn_conflicts(record, SSN) is conflicts


@pytest.mark.parametrize(
    ("record", "shares"),
    [
        (SSN, True),
        ("318-52-4471", True),
        ("318524470", True),  # one digit: inside two masked pairs
        ("218524471", True),  # the first digit
        ("381524471", True),  # two adjacent digits swapped
        ("318524417", True),  # the last two swapped
        ("318524400", True),  # two wrong side by side: a pair's key, a conflict the caller drops
        ("418524470", False),  # two wrong far apart: a conflict, not retrieved
        ("315284471", False),  # digits 2-4 rotated (keys version 2's window s2 found it): a conflict
        ("529613380", False),
        ("4471", False),  # no SSN keys without a full SSN
        ("", False),
    ],
)
def test_the_ssn_keys_find_every_ssn_that_does_not_conflict(record: str, shares: bool) -> None:
    """A record whose SSN does not conflict with the query's shares an SSN key with it; one that differs
    in two digits apart shares none (keys version 3: at 10 million tracings the windows of version 2
    brought about a hundred such rows into every query with a full SSN, each read only to be dropped)."""
    asked = {key for key in query_keys(None, Identifiers(SSN)) if key[0] == "w"}
    stored = tracing_keys(Tracing(TracingKey("NCIS", "1"), 1, _subject(record), None))
    assert bool(asked & stored) is shares
    assert shares or ssn_conflicts(SSN, record) or not full_ssn(record)


def _variants(base: Tracing, n: int, rng: random.Random) -> list[Tracing]:
    """The person's namesakes and doubles: another SSN, none (same date, another date, a typo in the
    surname), an SSN two digits off (a conflict), one digit off."""
    assert base.subject is not None
    subject, ids = base.subject, base.subject.identifiers
    name = subject.name
    typo = dataclasses.replace(name, surname=name.surname[:-1] + ("A" if name.surname[-1] != "A" else "E"))
    other_dob = PartialDate(1950 + rng.randrange(40), 1 + rng.randrange(12), 1 + rng.randrange(28))
    ssn = full_ssn(ids.ssn)
    kinds = [
        (name, f"{rng.randrange(100, 899)}{rng.randrange(10, 99)}{rng.randrange(1000, 9999)}", ids.date_of_birth),
        (name, "", ids.date_of_birth),
        (name, "", other_dob),
        (typo, "", None),
        (name, ssn[:3] + str((int(ssn[3]) + 1) % 10) + ssn[4] + str((int(ssn[5]) + 1) % 10) + ssn[6:], other_dob),
        (name, ssn[:8] + str((int(ssn[8]) + 1) % 10), ids.date_of_birth),
    ]
    return [
        dataclasses.replace(
            base,
            key=TracingKey(base.key.agency, f"{base.key.record_number}-V{n}-{k}"),
            subject=dataclasses.replace(subject, name=kind[0], identifiers=Identifiers(kind[1], kind[2])),
        )
        for k, kind in enumerate(kinds)
    ]


def _corpus() -> tuple[list[Tracing], list[tuple[PersonName, Identifiers]]]:
    rng = random.Random(7)
    demo = [t for t in generate_tracings(1500, seed=9, today=TODAY) if t.subject is not None]
    people = [t for t in demo if t.subject is not None and full_ssn(t.subject.identifiers.ssn)][:150]
    tracings = demo + [v for n, t in enumerate(people) for v in _variants(t, n, rng)]
    queries = []
    for base in people:
        assert base.subject is not None
        ids, name = base.subject.identifiers, base.subject.name
        ssn = full_ssn(ids.ssn)
        asked_ssn = rng.choice([ssn, ssn[:4] + ssn[5] + ssn[4] + ssn[6:], ssn[:7] + "00", "123456789"])
        asked_name = rng.choice([name, dataclasses.replace(name, given_name=name.given_name[:-1] or "A")])
        queries.append((asked_name, Identifiers(asked_ssn, rng.choice([ids.date_of_birth, None]))))
    return tracings, queries


@pytest.fixture(scope="module")
def corpus() -> tuple[list[Tracing], list[tuple[PersonName, Identifiers]]]:
    return _corpus()


@pytest.fixture(params=BACKENDS[:2])
def loaded(request: pytest.FixtureRequest, tmp_path: Path, corpus: Any) -> Iterator[TracingStore]:
    opener = _opener(request.param, request, tmp_path)
    store = next(opener)()
    tracings = corpus[0]
    for start in range(0, len(tracings), 1000):
        store.write([Upsert(t) for t in tracings[start : start + 1000]], actor="loader")
    yield store
    with pytest.raises(StopIteration):
        next(opener)


def test_identifier_first_answers_what_the_full_lookup_answers_from_fewer_candidates(
    loaded: TracingStore, corpus: Any
) -> None:
    store = loaded
    assert store.keys_version() == KEYS_VERSION
    cap = matcher().ssn_conflict_cap
    assert cap is not None and DEFAULT_THRESHOLD["PID_QUALIFIED"] > cap
    candidates = {True: 0, False: 0}
    shown_without_ssn = answered = 0
    for name, ids in corpus[1]:
        pages = {}
        for first in (True, False):
            page = run_ranked(
                store, mode="PID_QUALIFIED", name=name, identifiers=ids, types=frozenset(), min_score=0.0,
                page_size=50, page_token="", identifier_first=first,
            )  # fmt: skip
            pages[first] = [(h.stored.tracing.key, round(h.scored.score, 9), h.scored.features) for h in page.hits]
            keys = query_keys(name, ids, index_size=store.size_hint(), conflicting_ssn_out=first)
            candidates[first] += len(store.candidates(keys, limit=MAX_CANDIDATES)[0])
        assert pages[True] == pages[False], (name, ids)
        answered += bool(pages[True])
        shown_without_ssn += sum(
            not full_ssn(h.stored.tracing.subject.identifiers.ssn)
            for h in run_ranked(
                store, mode="PID_QUALIFIED", name=name, identifiers=ids, types=frozenset(), min_score=0.0,
                page_size=50, page_token="",
            ).hits
            if h.stored.tracing.subject is not None
        )  # fmt: skip
    # The comparison is not vacuous: most queries are answered, some by a tracing the twins found.
    assert answered > len(corpus[1]) // 2 and shown_without_ssn > 10
    assert candidates[True] < candidates[False] / 2, candidates


def test_below_the_cap_a_conflicting_ssn_is_still_retrieved_and_shown(loaded: TracingStore, corpus: Any) -> None:
    """A requester who asks for scores under the cap sees the namesakes with another SSN (ranked low)."""
    cap = matcher().ssn_conflict_cap
    assert cap is not None
    assert loaded.count() > 0
    conflicting = 0
    for name, ids in corpus[1][:40]:
        page = run_ranked(
            loaded, mode="PID_QUALIFIED", name=name, identifiers=ids, types=frozenset(),
            min_score=cap / 2, page_size=50, page_token="",
        )  # fmt: skip
        conflicting += sum(
            ssn_conflicts(ids.ssn, h.stored.tracing.subject.identifiers.ssn)
            for h in page.hits
            if h.stored.tracing.subject is not None
        )
    assert conflicting > 0


@pytest.mark.parametrize("schema", [1, 2])
def test_an_opensearch_index_of_the_older_schema_is_read_with_the_older_keys_until_rebuilt(
    request: pytest.FixtureRequest, tmp_path: Path, schema: int
) -> None:
    """Until it is rebuilt, an index of an older schema holds documents of both versions (this program
    writes the current one): a query finds both, without an SSN and with one a digit off."""
    opener = _opener("osmem", request, tmp_path)
    make = next(opener)
    store = make()
    assert isinstance(store, OpenSearchStore)
    (current,) = store._client.indices.get_alias(name=store.names.tracings)
    store._client.indices.put_mapping(index=current, body={"_meta": {"schema": schema}})
    older = make()  # another instance, opened on the older index
    try:
        assert older.keys_version() == schema
        assert any("rebuild it" in problem for problem in older.check_integrity())
        older.write([Upsert(file_tracing("1", surname="Whitfield", given="Harold", ssn=""))], actor="t")
        older.write([Upsert(file_tracing("2", surname="Whitfield", given="Harold", ssn=SSN[:8] + "0"))], actor="t")
        page = run_ranked(
            older, mode="PID_QUALIFIED", name=PersonName("WHITFIELD", "HAROLD"), identifiers=Identifiers(SSN, DOB),
            types=frozenset(), min_score=DEFAULT_THRESHOLD["PID_QUALIFIED"], page_size=10, page_token="",
        )  # fmt: skip
        assert sorted(hit.stored.tracing.key.record_number for hit in page.hits) == ["1", "2"]
        assert isinstance(older, OpenSearchStore)
        older.rebuild()
        assert older.keys_version() == KEYS_VERSION
    finally:
        with pytest.raises(StopIteration):
            next(opener)
