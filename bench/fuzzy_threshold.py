"""Does a FUZZY query's answer at its default threshold hold the person sought? Per matcher version.

    .venv/bin/python bench/fuzzy_threshold.py --dir /tmp/scale1m                      # fuzzy-7 and the default
    .venv/bin/python bench/fuzzy_threshold.py --dir /tmp/scale1m --matchers fuzzy-5 fuzzy-8

On a store made by `bench/scale.py --dir DIR` (its `inputs/` and `data/index.db`), in process: each of the
scale bench's FUZZY queries (a planted holder of one of the commonest names, or an ordinary person, asked
with a typo in one part or as spelled; `bench/scale_queries.py`) is retrieved by its blocking keys as the
service does (`query_keys`, `candidates`, the heads), then ranked by each matcher at that matcher's default
threshold for the query (`search_service.matching_threshold`), with no page limit. It prints the share of
queries whose person is among the hits, that share for the commonest names, the share answered with any
hit, the hits an answer holds; and what that costs the people it is not: the hits on someone else (each a
disclosure of another person's record, once shown), how many of those hold another name than the one
meant (an exact namesake is shown at any threshold), and how many on the first page (the service's
default 20, what one request shows). Then by kind of query: the commonest names mistyped, ordinary people
mistyped, ordinary people as spelled. The scale bench itself asks FUZZY at a tiny `min_score` (its top ten
at any score), so its recall says nothing of the threshold an adjudicator's query gets.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from retrieve import Tables, retrieve, tables_of
from scale_data import load_people
from scale_queries import Query, build

from indexer.model import Identifiers, PersonName
from indexer.normalize import exact_key
from indexer.store.base import HeadRow
from indexer.store.sqlite import SqliteStore
from search_service.matching import DEFAULT_MATCHER, matcher, rank
from search_service.matching_columns import HeadCandidate
from search_service.matching_threshold import default_threshold
from search_service.search_query import DEFAULT_PAGE_SIZE

PAGE = DEFAULT_PAGE_SIZE


@dataclass
class Tally:
    asked: int = 0
    found: int = 0
    answered: int = 0
    hits: list[int] = field(default_factory=list)
    others: list[int] = field(default_factory=list)  # hits on someone else
    other_names: list[int] = field(default_factory=list)  # of those, another name than the one meant
    others_on_page: list[int] = field(default_factory=list)


def _kind(query: Query) -> str:
    mistyped = (query.asked_surname, query.asked_given) != (query.surname, query.given)
    if query.common:
        return "commonest names" + (", mistyped" if mistyped else ", as spelled")
    return "ordinary, mistyped" if mistyped else "ordinary, as spelled"


def measure(directory: Path, versions: list[str], queries: int) -> dict[tuple[str, str], Tally]:
    """Tallies by (matcher, kind of query); kind "all" for every query."""
    # The scale bench's defaults (--queries 2000 --seed 7): its exact sets draw from the same random stream,
    # so these are the very FUZZY queries it asks.
    asked = build(load_people(directory / "inputs"), per_set=2000, fuzzy=queries, seed=7)["fuzzy"]
    store = SqliteStore(directory / "data" / "index.db", read_only=True)
    tallies: dict[tuple[str, str], Tally] = defaultdict(Tally)
    try:
        size = max(store.size_hint(), 1)
        for query in asked:
            name = PersonName(surname=query.asked_surname.upper(), given_name=query.asked_given.upper())
            meant = (exact_key(query.surname), exact_key(query.given))
            heads_by_table: dict[Tables, tuple[list[HeadRow], list[HeadCandidate]]] = {}
            for tables in sorted({tables_of(matcher(version)) for version in versions}):
                heads_by_table[tables] = retrieve(store, name, Identifiers(), index_size=size, tables=tables)
            for version in versions:
                # A version retrieves by its own keys (fuzzy-9: a surname's other romanizations too).
                rows, heads = heads_by_table[tables_of(matcher(version))]
                threshold = default_threshold(matcher(version), "FUZZY", name)
                hits = rank(name, Identifiers(), heads, use_pids=False, min_score=threshold, matcher=version)
                shown = [(rows[i][0], f"{rows[i][1]}|{rows[i][2]}") for i, _ in hits]
                others = [tracing_id for tracing_id, key in shown if key not in query.truth]
                subjects = [stored.tracing.subject for stored in store.load(others).values()]
                names = [subject.name for subject in subjects if subject is not None]
                other_names = sum((exact_key(n.surname), exact_key(n.given_name)) != meant for n in names)
                for tally in (tallies[version, "all"], tallies[version, _kind(query)]):
                    tally.asked += 1
                    tally.hits.append(len(hits))
                    tally.answered += bool(hits)
                    tally.found += any(key in query.truth for _, key in shown)
                    tally.others.append(len(others))
                    tally.other_names.append(other_names)
                    tally.others_on_page.append(sum(key not in query.truth for _, key in shown[:PAGE]))
    finally:
        store.close()
    return tallies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, required=True, help="a directory made by bench/scale.py")
    parser.add_argument("--matchers", nargs="+", default=sorted({"fuzzy-7", DEFAULT_MATCHER}))
    parser.add_argument("--queries", type=int, default=600, help="FUZZY queries (the scale bench asks 600)")
    args = parser.parse_args()
    tallies = measure(args.dir, args.matchers, args.queries)
    print(f"The scale bench's FUZZY queries on {args.dir}, each matcher at its default threshold, no page limit")
    print(
        "| matcher | queries | person among the hits | answered | hits a query (mean / p50 / p90 / max) "
        f"| hits on someone else (another name) | of them on page 1 ({PAGE}) |"
    )
    print("|---|---|---|---|---|---|---|")
    for (version, kind), tally in sorted(tallies.items(), key=lambda item: (item[0][1] != "all", item[0])):
        hits = sorted(tally.hits)
        print(
            f"| {version} | {kind}: {tally.asked} | {100 * tally.found / tally.asked:.1f}% | "
            f"{100 * tally.answered / tally.asked:.1f}% | {statistics.mean(hits):.1f} / {hits[len(hits) // 2]} / "
            f"{hits[int(len(hits) * 0.9)]} / {hits[-1]} | {statistics.mean(tally.others):.1f} "
            f"({statistics.mean(tally.other_names):.1f}) | {statistics.mean(tally.others_on_page):.1f} |"
        )


if __name__ == "__main__":
    main()
