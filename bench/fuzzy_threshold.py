"""Does a FUZZY query's answer at its default threshold hold the person sought? Per matcher version.

    .venv/bin/python bench/fuzzy_threshold.py --dir /tmp/scale1m                      # fuzzy-7 and the default
    .venv/bin/python bench/fuzzy_threshold.py --dir /tmp/scale1m --matchers fuzzy-5 fuzzy-8

On a store made by `bench/scale.py --dir DIR` (its `inputs/` and `data/index.db`), in process: each of the
scale bench's FUZZY queries (a planted holder of one of the commonest names, or an ordinary person, asked
with a typo in one part or as spelled; `bench/scale_queries.py`) is retrieved by its blocking keys as the
service does (`query_keys`, `candidates`, the heads), then ranked by each matcher at that matcher's default
threshold for the query (`search_service.matching_threshold`), with no page limit. It prints the share of
queries whose person is among the hits, that share for the commonest names, the share answered with any
hit, and the hits an answer holds. The scale bench itself asks FUZZY at a tiny `min_score` (its top ten at
any score), so its recall says nothing of the threshold an adjudicator's query gets.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale_data import load_people
from scale_queries import build

from indexer.match_keys import query_keys
from indexer.model import Identifiers, PersonName
from indexer.store.sqlite import SqliteStore
from search_service.matching import DEFAULT_MATCHER, matcher, rank
from search_service.matching_columns import HeadCandidate
from search_service.matching_threshold import default_threshold
from search_service.ranked import MAX_CANDIDATES


@dataclass
class Tally:
    found: int = 0
    found_common: int = 0
    answered: int = 0
    hits: list[int] = field(default_factory=list)


def measure(directory: Path, versions: list[str], queries: int) -> tuple[dict[str, Tally], int, int]:
    # The scale bench's defaults (--queries 2000 --seed 7): its exact sets draw from the same random stream,
    # so these are the very FUZZY queries it asks.
    asked = build(load_people(directory / "inputs"), per_set=2000, fuzzy=queries, seed=7)["fuzzy"]
    store = SqliteStore(directory / "data" / "index.db", read_only=True)
    tallies = {version: Tally() for version in versions}
    try:
        size = max(store.size_hint(), 1)
        for query in asked:
            name = PersonName(surname=query.asked_surname.upper(), given_name=query.asked_given.upper())
            keys = query_keys(name, Identifiers(), index_size=size, keys_version=store.keys_version())
            with store.snapshot():
                found, _ = store.candidates(keys, limit=MAX_CANDIDATES)
                rows = store.load_head_rows(found)
            rows.sort(key=lambda row: (row[1], row[2]))  # as run_ranked orders ties
            heads = [HeadCandidate(row[4]) for row in rows]
            for version, tally in tallies.items():
                threshold = default_threshold(matcher(version), "FUZZY", name)
                hits = rank(name, Identifiers(), heads, use_pids=False, min_score=threshold, matcher=version)
                shown = {f"{rows[i][1]}|{rows[i][2]}" for i, _ in hits}
                tally.hits.append(len(hits))
                tally.answered += bool(hits)
                if shown & set(query.truth):
                    tally.found += 1
                    tally.found_common += query.common
    finally:
        store.close()
    return tallies, len(asked), sum(query.common for query in asked)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, required=True, help="a directory made by bench/scale.py")
    parser.add_argument("--matchers", nargs="+", default=sorted({"fuzzy-7", DEFAULT_MATCHER}))
    parser.add_argument("--queries", type=int, default=600, help="FUZZY queries (the scale bench asks 600)")
    args = parser.parse_args()
    tallies, asked, common = measure(args.dir, args.matchers, args.queries)
    print(f"{asked} FUZZY queries ({common} of the commonest names) on {args.dir}")
    print(
        "| matcher | person at or above the default threshold | of the commonest names | answered "
        "| hits a query (mean / p50 / p90 / max) |"
    )
    print("|---|---|---|---|---|")
    for version, tally in tallies.items():
        hits = sorted(tally.hits)
        print(
            f"| {version} | {100 * tally.found / asked:.1f}% | {100 * tally.found_common / max(common, 1):.1f}% | "
            f"{100 * tally.answered / asked:.1f}% | {statistics.mean(hits):.1f} / {hits[len(hits) // 2]} / "
            f"{hits[int(len(hits) * 0.9)]} / {hits[-1]} |"
        )


if __name__ == "__main__":
    main()
