"""A Chinese or Korean surname asked in another romanization (fuzzy-9), on a store made by `bench/scale.py`.

    .venv/bin/python bench/romanized.py --dir /tmp/scale1m [--queries 600] [--matchers fuzzy-8 fuzzy-9]

In process, on D/data/index.db and D/inputs/names.tsv (every name of every tracing): the names whose surname
`indexer.surname_romanizations` lists are drawn (seeded), and each is asked as FUZZY three ways: with another
spelling of its surname from the table (YI, MIN for LEE, MIN), the same with one typo in the given name as the
scale bench makes them (`bench/scale_queries.py`), and as spelled (the control: what the table costs a query
that needed none of it). Per matcher, as the service does: the blocking keys (`query_keys`,
with the matcher's table), the candidates, then the ranking at the matcher's default threshold for the query,
with no page limit. It prints the share of queries whose tracing is among the hits and in the first ten, the
hits an answer holds, the candidates and keys a query reads, and the time of keys + candidates + ranking in
process (the matchers alternate query by query, so that both see the same machine; compare the ratio, not
the milliseconds).
"""

from __future__ import annotations

import argparse
import csv
import math
import random
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale_queries import TYPOS

from indexer.match_keys_query import query_keys
from indexer.model import Identifiers, PersonName
from indexer.normalize import exact_key
from indexer.store.sqlite import SqliteStore
from indexer.surname_romanizations import TABLE_VERSION, romanizations
from search_service.matching import matcher, rank
from search_service.matching_columns import HeadCandidate
from search_service.matching_romanized import share_bits
from search_service.matching_threshold import default_threshold
from search_service.ranked import MAX_CANDIDATES

_MOSTLY = math.log2(0.9)


@dataclass
class Tally:
    asked: int = 0
    retrieved: int = 0  # the tracing among the candidates, at any score
    found: int = 0
    top10: int = 0
    hits: list[int] = field(default_factory=list)
    other_spellings: list[int] = field(default_factory=list)  # of the hits, on another spelling (as spelled)
    candidates: list[int] = field(default_factory=list)
    keys: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Asked:
    name: PersonName
    truth: str  # the tracing's key, AGENCY|RECORD
    kind: str  # "another spelling", "another spelling, a typo in the given name" or "as spelled"
    meant: str  # the record's surname (exact key)


def draw(names: Path, count: int, seed: int) -> tuple[list[Asked], int, int]:
    """`count` names whose surname the table lists, each asked the three ways; with how many names the store
    holds, and how many of them the table lists."""
    listed: list[tuple[str, str, str]] = []
    total = 0
    with names.open(newline="") as handle:
        for key, surname, given, _ in csv.reader(handle, delimiter="\t"):
            total += 1
            if given and romanizations(exact_key(surname)):
                listed.append((key, surname, given))
    chooser = random.Random(seed)
    asked: list[Asked] = []
    for key, surname, given in chooser.sample(listed, min(count, len(listed))):
        meant = exact_key(surname)
        other = chooser.choice(sorted(romanizations(meant)))
        # A spelling held in the US mostly by people of other origins weighs less (search_service.matching_romanized).
        held = "both mostly Asian-held" if min(share_bits(meant), share_bits(other)) >= _MOSTLY else "one mostly not"
        typo = chooser.choice(TYPOS)(given, chooser)
        asked += [
            Asked(PersonName(surname=other, given_name=given), key, f"another spelling ({held})", meant),
            Asked(
                PersonName(surname=other, given_name=typo),
                key,
                f"another spelling, a typo in the given ({held})",
                meant,
            ),
            Asked(PersonName(surname=surname, given_name=given), key, "as spelled", meant),
        ]
    return asked, total, len(listed)


def measure(store: SqliteStore, asked: list[Asked], versions: list[str]) -> dict[tuple[str, str], Tally]:
    tallies: dict[tuple[str, str], Tally] = defaultdict(Tally)
    size = max(store.size_hint(), 1)
    for number, query in enumerate(asked):
        order = versions if number % 2 == 0 else versions[::-1]
        for version in order:
            scorer = matcher(version)
            started = time.perf_counter()
            keys = query_keys(
                query.name,
                Identifiers(),
                index_size=size,
                keys_version=store.keys_version(),
                romanized=scorer.romanized_surnames,
                hypocorisms=scorer.hypocorisms,
            )
            with store.snapshot():
                found, _ = store.candidates(keys, limit=MAX_CANDIDATES)
                rows = store.load_head_rows(found)
            rows.sort(key=lambda row: (row[1], row[2]))  # as run_ranked orders ties
            threshold = default_threshold(scorer, "FUZZY", query.name)
            hits = rank(
                query.name,
                Identifiers(),
                [HeadCandidate(row[4]) for row in rows],
                use_pids=False,
                min_score=threshold,
                matcher=version,
            )
            elapsed = time.perf_counter() - started
            shown = [f"{rows[i][1]}|{rows[i][2]}" for i, _ in hits]
            tally = tallies[version, query.kind]
            tally.asked += 1
            tally.retrieved += any(f"{row[1]}|{row[2]}" == query.truth for row in rows)
            tally.found += query.truth in shown
            tally.top10 += query.truth in shown[:10]
            tally.hits.append(len(hits))
            # Hits on another spelling of the surname asked: each another person (the demo writes one spelling).
            if query.kind == "as spelled":
                loaded = store.load([rows[i][0] for i, _ in hits]).values()
                subjects = [stored.tracing.subject for stored in loaded]
                spelled = [exact_key(subject.name.surname) for subject in subjects if subject is not None]
                others = romanizations(query.meant)
                tally.other_spellings.append(sum(spelling in others for spelling in spelled))
            tally.candidates.append(len(rows))
            tally.keys.append(len(keys))
            tally.seconds.append(elapsed)
    return tallies


def _p(values: list[float] | list[int], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * share), len(ordered) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, required=True, help="a directory made by bench/scale.py")
    parser.add_argument("--matchers", nargs="+", default=["fuzzy-8", "fuzzy-9"])
    parser.add_argument("--queries", type=int, default=600, help="names drawn (each asked two ways)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    asked, total, listed = draw(args.dir / "inputs" / "names.tsv", args.queries, args.seed)
    store = SqliteStore(args.dir / "data" / "index.db", read_only=True)
    try:
        tallies = measure(store, asked, args.matchers)
    finally:
        store.close()
    print(
        f"{args.dir}: {total:,} names, {listed:,} ({100 * listed / total:.2f}%) with a given name and a surname "
        f"romanization table {TABLE_VERSION} lists; {len(asked) // 3} of them asked FUZZY three ways, at each "
        "matcher's default threshold, no page limit"
    )
    print(
        "| matcher | asked | tracing retrieved | among the hits | in the first 10 | hits (mean / p90) "
        "| of them on another spelling | candidates (mean / p90) | keys (mean) | in-process ms (p50 / p90) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for (version, kind), tally in sorted(tallies.items(), key=lambda item: (item[0][1], item[0][0])):
        ms = [1000 * s for s in tally.seconds]
        print(
            f"| {version} | {kind}: {tally.asked} | {100 * tally.retrieved / tally.asked:.1f}% | "
            f"{100 * tally.found / tally.asked:.1f}% | "
            f"{100 * tally.top10 / tally.asked:.1f}% | {statistics.mean(tally.hits):.1f} / {_p(tally.hits, 0.9)} | "
            f"{f'{statistics.mean(tally.other_spellings):.2f}' if tally.other_spellings else '-'} | "
            f"{statistics.mean(tally.candidates):.0f} / {_p(tally.candidates, 0.9)} | "
            f"{statistics.mean(tally.keys):.0f} | {_p(ms, 0.5):.1f} / {_p(ms, 0.9):.1f} |"
        )


if __name__ == "__main__":
    main()
