"""Whom a PID_QUALIFIED answer shows besides the person asked for, in an index of millions. Per matcher version.

    .venv/bin/python bench/pid_strangers.py --dir /tmp/scale1m                    # fuzzy-10 and the default
    .venv/bin/python bench/pid_strangers.py --dir /tmp/scale1m --matchers fuzzy-4 fuzzy-11 --people 2000

On a store made by `bench/scale.py --dir DIR` (its `inputs/` and `data/index.db`), in process: people of the
scale bench (`inputs/people.json`, ordinary `dcii demo` people, not the planted holders of the commonest
names) are asked for as an adjudicator asks in PID_QUALIFIED mode, with their name as written and (a) their
date of birth, (b) their date of birth and SSN, and with one part of it and their date of birth: (c) the
surname, (d) the given name; each query is retrieved by its blocking keys as the service
does (`query_keys`, `candidates`, the heads) and ranked by each matcher at its default threshold (0.9), with
no page limit. A hit is the person's when it is one of the person's tracings (`people.json`) or carries the
person's SSN (the demo gives a person tracings in several agencies, not all of them listed there); any other
hit is someone else: a record of another person disclosed as a near-certain match. Printed per matcher and
query kind: the share of queries whose person is among the hits, the share showing someone else, those hits
an answer, and how many of them have one part of the query's name as asked (either order) and the other not.

FEBRL (`bench/scoring.py`) cannot show this: its 5,000 records hold few strangers born the same day, while
a million census-distributed names and dates of birth hold a few dozen for every date.
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from retrieve import retrieve, tables_of
from scale_data import load_people

from indexer.model import Identifiers, PartialDate, PersonName
from indexer.normalize import exact_key
from indexer.store.sqlite import SqliteStore
from search_service.matching import DEFAULT_MATCHER, matcher, rank
from search_service.matching_threshold import default_threshold

KINDS = {
    "dob": "name + DOB",
    "ssn": "name + DOB + SSN",
    "surname": "surname + DOB",
    "given": "given name + DOB",
}


def _one_part(asked: PersonName, shown: PersonName) -> bool:
    """Whether `shown` has the query's surname or given name, exactly, but not both (either order)."""
    q = {exact_key(asked.surname), exact_key(asked.given_name)} - {""}
    s = {exact_key(shown.surname), exact_key(shown.given_name)} - {""}
    return len(q & s) == 1 and len(q) == 2


def measure(directory: Path, versions: list[str], people_asked: int, seed: int) -> Counter[tuple[str, str, str]]:
    """Counts by (matcher, kind, what): asked, found, with_other, others, others_one_part."""
    people: list[dict[str, Any]] = [p for p in load_people(directory / "inputs") if not p["planted"]]
    random.Random(seed).shuffle(people)
    store = SqliteStore(directory / "data" / "index.db", read_only=True)
    counts: Counter[tuple[str, str, str]] = Counter()
    try:
        size = max(store.size_hint(), 1)
        for person in people[:people_asked]:
            born = PartialDate(*person["dob"])
            truth = set(person["keys"])
            for kind in KINDS:
                name = PersonName(
                    surname="" if kind == "given" else person["surname"].upper(),
                    given_name="" if kind == "surname" else person["given"].upper(),
                )
                ids = Identifiers(date_of_birth=born, ssn=person["ssn"] if kind == "ssn" else "")
                tables = {tables_of(matcher(version)) for version in versions}
                retrieved = {t: retrieve(store, name, ids, index_size=size, tables=t) for t in sorted(tables)}
                for version in versions:
                    m = matcher(version)
                    rows, heads = retrieved[tables_of(m)]  # a version retrieves by its own keys
                    threshold = default_threshold(m, "PID_QUALIFIED", name)
                    hits = rank(name, ids, heads, use_pids=True, min_score=threshold, matcher=version)
                    shown = [(rows[i][0], f"{rows[i][1]}|{rows[i][2]}") for i, _ in hits]
                    loaded = store.load([tracing_id for tracing_id, _ in shown])
                    mine, others = False, []
                    for tracing_id, key in shown:
                        subject = loaded[tracing_id].tracing.subject
                        if key in truth or (subject is not None and subject.identifiers.ssn == person["ssn"]):
                            mine = True
                        elif subject is not None:
                            others.append(subject)
                    counts[version, kind, "asked"] += 1
                    counts[version, kind, "found"] += mine
                    counts[version, kind, "with_other"] += bool(others)
                    counts[version, kind, "others"] += len(others)
                    counts[version, kind, "others_one_part"] += sum(_one_part(name, s.name) for s in others)
    finally:
        store.close()
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, required=True, help="a directory made by bench/scale.py")
    parser.add_argument("--matchers", nargs="+", default=sorted({"fuzzy-10", DEFAULT_MATCHER}))
    parser.add_argument("--people", type=int, default=1000, help="people asked for (each in every kind of query)")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    counts = measure(args.dir, args.matchers, args.people, args.seed)
    print(f"PID_QUALIFIED on {args.dir}: people of the scale bench asked by name as written, each matcher at its")
    print("default threshold, no page limit")
    print(
        "| matcher | query | person among the hits | answers showing someone else | hits on someone else a query "
        "| of them with one name part as asked, the other not |"
    )
    print("|---|---|---|---|---|---|")
    for version in args.matchers:
        for kind, label in KINDS.items():
            asked = counts[version, kind, "asked"]
            print(
                f"| {version} | {label}: {asked} | {100 * counts[version, kind, 'found'] / asked:.1f}% "
                f"| {100 * counts[version, kind, 'with_other'] / asked:.1f}% "
                f"| {counts[version, kind, 'others'] / asked:.3f} | {counts[version, kind, 'others_one_part']} |"
            )


if __name__ == "__main__":
    main()
