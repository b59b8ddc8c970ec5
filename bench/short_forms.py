"""A Spanish given name asked in another form (fuzzy-12: PEPE for JOSE, JOSE for PEPE), on a store made by
`bench/scale.py`.

    .venv/bin/python bench/short_forms.py --dir /tmp/scale1m [--queries 600] [--matchers fuzzy-11 fuzzy-12]

In process, on D/data/index.db and D/inputs/names.tsv (every name of every tracing): tracings whose given name
is in `indexer.given_hypocorisms`'s table (a full name or a short form, one word) are drawn (seeded), and each
is asked four ways: FUZZY with another form of its given name from the table (a short form for a full name,
the full name or another short form of it for a short form) and its surname as written; PID_QUALIFIED the
same with the tracing's date of birth; and both as written (the controls: what the table costs a query that
needed none of it). Per matcher, as the service does: the blocking keys (`query_keys`, with the matcher's
tables), the candidates, then the ranking at the matcher's default threshold for the query, no page limit.
It prints the share of queries whose tracing is among the hits and in the first ten, the hits an answer holds,
how many of them are someone else whose given name is another form of the one asked (the demo writes one
name per person, so each is a stranger the table relates), the candidates and keys a query reads, and the
time of keys + candidates + ranking in process (the matchers alternate query by query; compare the ratio).
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from retrieve import retrieve, tables_of

from indexer.given_hypocorisms import TABLE_VERSION, related
from indexer.model import Identifiers, PartialDate, PersonName, TracingKey
from indexer.normalize import exact_key
from indexer.store.sqlite import SqliteStore
from search_service.matching import matcher, rank
from search_service.matching_threshold import default_threshold

KINDS = ("another form", "another form + DOB", "as written", "as written + DOB")


@dataclass
class Tally:
    asked: int = 0
    found: int = 0
    top10: int = 0
    hits: list[int] = field(default_factory=list)
    other_forms: list[int] = field(default_factory=list)  # hits on someone whose given name is another form
    candidates: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Drawn:
    key: str  # AGENCY|RECORD
    surname: str
    given: str  # as written on the tracing
    other: str  # another form of it from the table


def draw(names: Path, count: int, seed: int) -> tuple[list[Drawn], int, int]:
    """`count` tracings whose given name the table lists, each with another form of it; with how many names the
    store holds, and how many of them the table lists."""
    listed: list[tuple[str, str, str]] = []
    total = 0
    with names.open(newline="") as handle:
        for key, surname, given, _ in csv.reader(handle, delimiter="\t"):
            total += 1
            if surname and related(exact_key(given), TABLE_VERSION):
                listed.append((key, surname, given))
    chooser = random.Random(seed)
    drawn = [
        Drawn(key, surname, given, chooser.choice(sorted(related(exact_key(given), TABLE_VERSION))))
        for key, surname, given in chooser.sample(listed, min(count, len(listed)))
    ]
    return drawn, total, len(listed)


def measure(store: SqliteStore, drawn: list[Drawn], versions: list[str]) -> dict[tuple[str, str], Tally]:
    tallies: dict[tuple[str, str], Tally] = defaultdict(Tally)
    size = max(store.size_hint(), 1)
    for number, one in enumerate(drawn):
        agency, _, record = one.key.partition("|")
        stored = store.get(TracingKey(agency, record))
        if stored is None or stored.tracing.subject is None:
            continue
        born = stored.tracing.subject.identifiers.date_of_birth
        for kind in KINDS:
            given = one.other if kind.startswith("another") else one.given
            name = PersonName(surname=one.surname, given_name=given)
            use_pids = kind.endswith("DOB")
            ids = Identifiers(date_of_birth=born) if use_pids else Identifiers()
            mode = "PID_QUALIFIED" if use_pids else "FUZZY"
            order = versions if number % 2 == 0 else versions[::-1]
            for version in order:
                scorer = matcher(version)
                started = time.perf_counter()
                rows, heads = retrieve(store, name, ids, index_size=size, tables=tables_of(scorer))
                threshold = default_threshold(scorer, mode, name)
                hits = rank(name, ids, heads, use_pids=use_pids, min_score=threshold, matcher=version)
                elapsed = time.perf_counter() - started
                shown = [f"{rows[i][1]}|{rows[i][2]}" for i, _ in hits]
                tally = tallies[version, kind]
                tally.asked += 1
                tally.found += one.key in shown
                tally.top10 += one.key in shown[:10]
                tally.hits.append(len(hits))
                others = [rows[i][0] for i, _ in hits if f"{rows[i][1]}|{rows[i][2]}" != one.key]
                tally.other_forms.append(_strangers_of_another_form(store, others, one, given, born))
                tally.candidates.append(len(rows))
                tally.seconds.append(elapsed)
    return tallies


def _strangers_of_another_form(
    store: SqliteStore, tracing_ids: list[int], one: Drawn, asked: str, born: PartialDate | None
) -> int:
    """Of these tracings, those of someone else (not the drawn tracing's name and date of birth: the demo gives
    a person tracings in several agencies) whose given name is another form of the one asked."""
    person = (exact_key(one.surname), exact_key(one.given), born)
    forms = related(exact_key(asked), TABLE_VERSION)
    count = 0
    for stored in store.load(tracing_ids).values():
        subject = stored.tracing.subject
        if subject is None:
            continue
        name = subject.name
        if (exact_key(name.surname), exact_key(name.given_name), subject.identifiers.date_of_birth) == person:
            continue
        count += exact_key(name.given_name) in forms
    return count


def _p(values: list[float] | list[int], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(len(ordered) * share), len(ordered) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, required=True, help="a directory made by bench/scale.py")
    parser.add_argument("--matchers", nargs="+", default=["fuzzy-11", "fuzzy-12"])
    parser.add_argument("--queries", type=int, default=600, help="tracings drawn (each asked four ways)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    drawn, total, listed = draw(args.dir / "inputs" / "names.tsv", args.queries, args.seed)
    store = SqliteStore(args.dir / "data" / "index.db", read_only=True)
    try:
        tallies = measure(store, drawn, args.matchers)
    finally:
        store.close()
    print(
        f"{args.dir}: {total:,} names, {listed:,} ({100 * listed / total:.2f}%) with a surname and a given name "
        f"the table of short forms (version {TABLE_VERSION}) lists; {len(drawn)} of them asked four ways, at each "
        "matcher's default threshold, no page limit"
    )
    print(
        "| matcher | asked | among the hits | in the first 10 | hits (mean / p90) | of them someone of another form "
        "| candidates (mean / p90) | in-process ms (p50 / p90) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for (version, kind), tally in sorted(tallies.items(), key=lambda item: (KINDS.index(item[0][1]), item[0][0])):
        ms = [1000 * s for s in tally.seconds]
        print(
            f"| {version} | {kind}: {tally.asked} | {100 * tally.found / tally.asked:.1f}% | "
            f"{100 * tally.top10 / tally.asked:.1f}% | {statistics.mean(tally.hits):.1f} / {_p(tally.hits, 0.9)} | "
            f"{sum(tally.other_forms)} | {statistics.mean(tally.candidates):.0f} / {_p(tally.candidates, 0.9)} | "
            f"{_p(ms, 0.5):.1f} / {_p(ms, 0.9):.1f} |"
        )


if __name__ == "__main__":
    main()
