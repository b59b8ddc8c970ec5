"""The scale bench's queries, built from people known to be in the store (bench/scale_data.py).

* EXACT name + SSN and EXACT name + DOB: the person's surname and given name as the repository sent them.
* PID_QUALIFIED: name, date of birth and SSN; every other query has two adjacent SSN digits swapped (the
  structural comparison's job), when the swapped number still passes the edit criteria.
* FUZZY (name only, top 10 at any score): every planted holder of a common name (JOHN SMITH, MARIA
  GARCIA...) asked with its surname mistyped two ways and its given name mistyped once, then sampled
  people, three in four mistyped.

Each query carries its truth: the keys of the person's tracings, and the name it meant. A query is sent as
serialized bytes, so the load generator spends nothing on building messages.
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dcii.v1 import search_pb2  # noqa: E402
from indexer import edit_ssn  # noqa: E402

SETS = ("exact_ssn", "exact_dob", "pid", "fuzzy")
LABELS = {
    "exact_ssn": "EXACT name + SSN",
    "exact_dob": "EXACT name + DOB",
    "pid": "PID_QUALIFIED name + DOB + SSN",
    "fuzzy": "FUZZY name only",
}
FUZZY_PAGE = 10
# Like bench/febrl.py, FUZZY asks for its whole top 10 whatever the scores: fuzzy-7's default threshold
# (0.5) answered nothing to a mistyped JOHN SMITH, whose name alone is weak evidence, which would make the
# commonest names the cheapest queries instead of the dearest; what the default threshold shows is
# bench/fuzzy_threshold.py's to measure.
FUZZY_MIN_SCORE = 1e-6


@dataclass(frozen=True)
class Query:
    payload: bytes  # a serialized SearchRequest
    truth: tuple[str, ...]  # "AGENCY|RECORD" of the person's tracings
    surname: str  # what the query meant (before any typo)
    given: str
    asked_surname: str  # what it sent
    asked_given: str
    common: bool  # a planted holder of one of the commonest names


def _transpose(text: str, rng: random.Random) -> str:
    if len(text) < 3:
        return text + text[-1]
    i = rng.randrange(1, len(text) - 1)
    swapped = text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    return swapped if swapped != text else _drop(text, rng)


def _drop(text: str, rng: random.Random) -> str:
    if len(text) < 4:
        return text + text[-1]
    i = rng.randrange(1, len(text))
    return text[:i] + text[i + 1 :]


def _substitute(text: str, rng: random.Random) -> str:
    i = rng.randrange(1, len(text)) if len(text) > 1 else 0
    letters = "aeiouy" if text[i].lower() in "aeiouy" else "bcdfghklmnprstvz"
    replacement = rng.choice([c for c in letters if c != text[i].lower()])
    return text[:i] + replacement + text[i + 1 :]


TYPOS = (_transpose, _drop, _substitute)


def _request(mode: int, surname: str, given: str) -> search_pb2.SearchRequest:
    request = search_pb2.SearchRequest(mode=mode, purpose=search_pb2.PURPOSE_SECURITY_CLEARANCE)  # type: ignore[arg-type]
    request.name.surname, request.name.given_name = surname, given
    return request


def _swap_ssn(ssn: str, rng: random.Random) -> str:
    i = rng.randrange(0, 8)
    swapped = ssn[:i] + ssn[i + 1] + ssn[i] + ssn[i + 2 :]
    out: list[Any] = []
    return swapped if edit_ssn.ssn(swapped, "ssn", out) and not out else ssn


def _query(request: search_pb2.SearchRequest, person: dict[str, Any], asked: tuple[str, str]) -> Query:
    return Query(
        request.SerializeToString(),
        tuple(person["keys"]),
        person["surname"],
        person["given"],
        asked[0],
        asked[1],
        bool(person["planted"]),
    )


def _fuzzy(person: dict[str, Any], variant: int, rng: random.Random) -> Query:
    """Variant 0, 1: the surname mistyped (two kinds); 2: the given name mistyped; 3: as spelled."""
    surname, given = person["surname"], person["given"]
    if variant in (0, 1):
        surname = TYPOS[variant if person["planted"] else rng.randrange(3)](surname, rng)
    elif variant == 2:
        given = TYPOS[rng.randrange(3)](given, rng)
    request = _request(search_pb2.SEARCH_MODE_FUZZY, surname, given)
    request.page_size, request.min_score = FUZZY_PAGE, FUZZY_MIN_SCORE
    return _query(request, person, (surname, given))


def build(people: list[dict[str, Any]], *, per_set: int, fuzzy: int, seed: int) -> dict[str, list[Query]]:
    """`per_set` queries for each exact kind, `fuzzy` FUZZY ones (the common names first)."""
    rng = random.Random(seed)
    ordinary = [p for p in people if not p["planted"]]
    rng.shuffle(ordinary)
    cycle = [ordinary[i % len(ordinary)] for i in range(per_set)] if ordinary else []
    sets: dict[str, list[Query]] = {name: [] for name in SETS}
    for i, person in enumerate(cycle):
        y, m, d = person["dob"]
        request = _request(search_pb2.SEARCH_MODE_EXACT, person["surname"], person["given"])
        request.identifiers.ssn = person["ssn"]
        sets["exact_ssn"].append(_query(request, person, (person["surname"], person["given"])))
        request = _request(search_pb2.SEARCH_MODE_EXACT, person["surname"], person["given"])
        dob = request.identifiers.date_of_birth
        dob.year, dob.month, dob.day = y, m, d
        sets["exact_dob"].append(_query(request, person, (person["surname"], person["given"])))
        request.mode = search_pb2.SEARCH_MODE_PID_QUALIFIED
        request.identifiers.ssn = _swap_ssn(person["ssn"], rng) if i % 2 else person["ssn"]
        sets["pid"].append(_query(request, person, (person["surname"], person["given"])))
    planted = [p for p in people if p["planted"]]
    sets["fuzzy"] = [_fuzzy(p, v, rng) for p in planted for v in (0, 1, 2)][:fuzzy]
    # Ordinary people: three in four mistyped, one as spelled.
    for i in range(max(0, fuzzy - len(sets["fuzzy"]))):
        if ordinary:
            sets["fuzzy"].append(_fuzzy(ordinary[(i * 7 + 3) % len(ordinary)], i % 4, rng))
    return sets
