"""Realistic synthetic tracings for demos, tests and benchmarks (`dcii demo`).

`generate_tracings(count, seed=..., today=...)` yields exactly `count` tracings, the same ones for the
same seed and `today`. They are meant to look right to an adjudicator:

* names drawn with the real 1990 census frequencies (`indexer.census`), title-cased as a repository
  sends them; middle names, suffixes and aliases (a maiden surname, a nickname) at realistic rates;
* persons, not records: each person gets one to three tracings (a NAC history and a clearance, a file
  and an open case...) carrying the same name and PIDs, now and then without an alias or one PID;
* SSNs that pass the edit criteria and are unique per person (an affine permutation of the valid
  SSN space, so no collision check is needed); dates of birth 1940 to 18 years ago, a few partial;
  places of birth weighted by state population, some abroad, some missing;
* all six tracing types from the agencies that hold them, with every date real, in order (basis
  investigation before grant before access, NAC after age 17...) and never after `today`; NAC
  histories younger than their 15-year retention; impersonal titles indexed no later than 1997.

Everything is drawn from one `random.Random(seed)`; weighted choices are a bisect over cumulative
weights, so a core generates well over 50,000 tracings a second.

The generator's parts: `indexer.demo_people` draws persons, `indexer.demo_records` their tracings'
details (with the agency tables of `indexer.demo_agencies`), both on the shared draws of
`indexer.demo_draws`; this module decides how many tracings of which types each person gets.
"""

from __future__ import annotations

import datetime as dt
import random as random_module
from collections.abc import Iterator

from indexer.census import census_given_names, iter_census_surnames
from indexer.demo_draws import Weighted
from indexer.demo_people import PersonGenerator
from indexer.demo_records import RecordGenerator
from indexer.model import Details, SubjectRole, Tracing, TracingKey, TracingType

__all__ = ["census_given_names", "generate_tracings", "iter_census_surnames"]

# Person tracings by type, tuned so that after the once-per-person redraws (below) the output mix is
# FILE 30 : CLEARANCE 25 : NAC_HISTORY 20 : OPEN_CASE 10 : NAC_PENDING 10. Impersonal titles are drawn
# apart, at _IMPERSONAL_SHARE of all tracings.
_PERSON_TYPES = Weighted(
    [
        (TracingType.FILE, 27.5),
        (TracingType.CLEARANCE, 29.0),
        (TracingType.NAC_HISTORY, 21.5),
        (TracingType.OPEN_CASE, 9.0),
        (TracingType.NAC_PENDING, 9.5),
    ]
)
_IMPERSONAL_SHARE = 0.005
_TRACINGS_PER_PERSON = Weighted([(1, 45.0), (2, 35.0), (3, 20.0)])
_MEAN_TRACINGS_PER_PERSON = (1 * 45 + 2 * 35 + 3 * 20) / 100
# Chance that the next entity is an impersonal title so that they are _IMPERSONAL_SHARE of tracings.
_IMPERSONAL_ENTITY_CHANCE = (
    _IMPERSONAL_SHARE
    * _MEAN_TRACINGS_PER_PERSON
    / (1 - _IMPERSONAL_SHARE + _IMPERSONAL_SHARE * _MEAN_TRACINGS_PER_PERSON)
)
# A person has at most one of these: a later favorable NAC replaces the earlier history, one NAC runs
# at a time, and a clearance is updated in place rather than granted twice.
_ONCE_PER_PERSON = frozenset({TracingType.NAC_HISTORY, TracingType.NAC_PENDING, TracingType.CLEARANCE})
# Within a person, files come first so that a clearance can cite them in files_used.
_TYPE_ORDER = {
    TracingType.FILE: 0,
    TracingType.OPEN_CASE: 1,
    TracingType.NAC_HISTORY: 2,
    TracingType.NAC_PENDING: 3,
    TracingType.CLEARANCE: 4,
}
_FILE_ROLES = Weighted([(SubjectRole.SUBJECT, 80.0), (SubjectRole.VICTIM, 12.0), (SubjectRole.CROSS_REFERENCE, 8.0)])
_EARLIEST_TODAY = dt.date(2000, 1, 1)


class _Generator:
    """The run: entity after entity, a person with their tracings or an impersonal title."""

    def __init__(self, seed: int, today: dt.date) -> None:
        # One random stream for both parts: the seed's tracings depend only on the order of the draws.
        rng = random_module.Random(seed)
        self.random = rng.random
        self.people = PersonGenerator(rng, today)
        self.records = RecordGenerator(rng, today)

    def person_tracings(self, count: int) -> Iterator[Tracing]:
        people, records = self.people, self.records
        person = people.person()
        random = self.random
        if count == 1:
            types = [_PERSON_TYPES.pick(random)]
        else:
            types = []
            for _ in range(count):
                tracing_type = _PERSON_TYPES.pick(random)
                while tracing_type in _ONCE_PER_PERSON and tracing_type in types:
                    tracing_type = _PERSON_TYPES.pick(random)
                types.append(tracing_type)
            types.sort(key=_TYPE_ORDER.__getitem__)
        for position, tracing_type in enumerate(types):
            details: Details
            role = SubjectRole.SUBJECT
            if tracing_type is TracingType.FILE:
                agency, year, details = records.file(person)
                role = _FILE_ROLES.pick(random)
            elif tracing_type is TracingType.CLEARANCE:
                agency, year, details = records.clearance(person)
            elif tracing_type is TracingType.NAC_HISTORY:
                agency, year, details = records.nac_history(person)
            elif tracing_type is TracingType.OPEN_CASE:
                agency, year, details = records.open_case(person)
                role = _FILE_ROLES.pick(random)
            else:
                agency, year, details = records.nac_pending(person)
            subject = people.subject_for(person, role, position > 0)
            yield Tracing(TracingKey(agency, records.record_number(agency, year)), 1, subject, details)

    def run(self, count: int) -> Iterator[Tracing]:
        remaining = count
        random = self.random
        while remaining > 0:
            if random() < _IMPERSONAL_ENTITY_CHANCE:
                yield self.records.impersonal()
                remaining -= 1
                continue
            tracings = min(_TRACINGS_PER_PERSON.pick(random), remaining)
            yield from self.person_tracings(tracings)
            remaining -= tracings


def generate_tracings(count: int, *, seed: int = 0, today: dt.date | None = None) -> Iterator[Tracing]:
    """Exactly `count` synthetic tracings, the same for the same `seed` and `today` (default: the
    current date; no date in a tracing is later). Lazy: draw as many as you need from the iterator.

    Raises ValueError for a negative count or a `today` before 2000 (the history needs room)."""
    if count < 0:
        raise ValueError("count must not be negative")
    today = dt.date.today() if today is None else today
    if today < _EARLIEST_TODAY:
        raise ValueError("today must be 2000-01-01 or later")
    return _Generator(seed, today).run(count)
