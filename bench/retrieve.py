"""The candidates a ranked query retrieves, as the service retrieves them (search_service.ranked.run_ranked):
its blocking keys (`indexer.match_keys_query.query_keys`), one bounded lookup, the heads in run_ranked's
order of ties. For the benches that rank in process (fuzzy_threshold, pid_strangers, romanized)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from indexer.match_keys_query import query_keys
from indexer.model import Identifiers, PersonName
from indexer.store.base import HeadRow
from indexer.store.sqlite import SqliteStore
from search_service.matching_columns import HeadCandidate
from search_service.matching_versions import Matcher
from search_service.ranked import MAX_CANDIDATES

Tables = tuple[int, int]  # the tables a version retrieves by: surname romanizations, given names' short forms


def tables_of(scorer: Matcher) -> Tables:
    """What decides a version's keys beside the query: versions with the same tables retrieve alike."""
    return scorer.romanized_surnames, scorer.hypocorisms


def retrieve(
    store: SqliteStore, name: PersonName, ids: Identifiers, *, index_size: int, tables: Tables
) -> tuple[list[HeadRow], list[HeadCandidate]]:
    """The head rows (tracing id, agency, record number, ...) and the candidates compiled from them."""
    romanized, hypocorisms = tables
    keys = query_keys(
        name,
        ids,
        index_size=index_size,
        keys_version=store.keys_version(),
        romanized=romanized,
        hypocorisms=hypocorisms,
    )
    with store.snapshot():
        found, _ = store.candidates(keys, limit=MAX_CANDIDATES)
        rows = store.load_head_rows(found)
    rows.sort(key=lambda row: (row[1], row[2]))  # as run_ranked orders ties
    return rows, [HeadCandidate(row[4]) for row in rows]
