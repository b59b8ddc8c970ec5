"""Which statement of dispute filed since a batch was answered goes onto its stored hit (search_service.batch
`_surely_theirs`): only one on a record surely still about the person the hit showed (diff review 3)."""

from __future__ import annotations

import datetime as dt

import pytest

from dcii.v1 import search_pb2
from indexer.model import Identifiers, PersonName, StoredTracing
from search_service.batch import _surely_theirs
from search_service.convert import tracing_out
from tests.test_matching import person

NOW = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)


def _hit(surname: str, given: str, ssn: str, *, full_ssn: bool) -> search_pb2.Hit:
    hit = search_pb2.Hit()
    shown = person(PersonName(surname, given), Identifiers(ssn=ssn), record="R-1")
    tracing_out(shown, hit.tracing, full_ssn=full_ssn, indexed_at=NOW)
    return hit


def _now(surname: str, given: str, ssn: str) -> StoredTracing:
    return StoredTracing(person(PersonName(surname, given), Identifiers(ssn=ssn), record="R-1"), NOW)


@pytest.mark.parametrize(
    ("now", "full_ssn", "theirs"),
    [
        (("Whitfield", "Harold", "318524471"), False, True),  # unchanged
        (("Whitfield", "Harry", "318524471"), True, True),  # a name corrected: the full SSN vouches
        (("Whitfield", "Harry", "318524471"), False, False),  # ... unless only the last four were shown
        (("Whitfield", "Harold", "529613380"), False, True),  # an SSN corrected: the name vouches
        (("Okafor", "Ngozi", "212444471"), False, False),  # refiled: the same last four vouch for nothing
        (("Okafor", "Ngozi", "529613380"), True, False),
    ],
)
def test_a_newer_statement_goes_only_onto_a_hit_surely_about_the_same_person(
    now: tuple[str, str, str], full_ssn: bool, theirs: bool
) -> None:
    hit = _hit("Whitfield", "Harold", "318524471", full_ssn=full_ssn)
    assert _surely_theirs(hit, _now(*now)) is theirs
