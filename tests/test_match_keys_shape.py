"""The shape of the blocking keys (indexer.match_keys): none for an impersonal title, name keys only without
identifiers, the identifiers' keys first in a query, few and short keys, deterministic ones, and a common name's
candidates bounded among census-frequency demo tracings. Helpers: tests/test_match_keys.py.
"""

from __future__ import annotations

import datetime as dt

import pytest

from indexer.match_keys import tracing_keys
from indexer.match_keys_query import query_keys
from indexer.model import Identifiers, ImpersonalTitleDetails, ImpersonalTitleKind, PersonName, Tracing, TracingKey
from tests.test_match_keys import DOB, SSN, SSN_FAMILIES, families, tracing


def test_impersonal_title_has_no_keys() -> None:
    title = Tracing(
        TracingKey("DSS", "T-1"),
        1,
        None,
        ImpersonalTitleDetails("ACME WIDGETS INC", ImpersonalTitleKind.ORGANIZATION, "DSS", "F-1", 1990),
    )
    assert tracing_keys(title) == frozenset()


def test_tracing_without_pids_has_only_name_keys() -> None:
    keys = tracing_keys(tracing(PersonName("Whitfield", "Harold"), ssn="", dob=None))
    assert keys
    assert not families(set(keys)) & {*SSN_FAMILIES, "b", "bs", "bg"}


def test_query_keys_put_identifiers_first() -> None:
    keys = query_keys(PersonName("Whitfield", "Harold"), Identifiers(ssn=SSN, date_of_birth=DOB))
    kinds = [key.partition(":")[0] for key in keys]
    assert kinds[:8] == sorted(SSN_FAMILIES)
    first_name_key = min(i for i, kind in enumerate(kinds) if kind not in {*SSN_FAMILIES, "b", "bs", "bg"})
    assert all(kind in {"b", "bs", "bg"} for kind in kinds[8:first_name_key])
    assert len(keys) == len(set(keys))


def test_query_without_name_has_only_pid_keys() -> None:
    assert query_keys(None, Identifiers()) == []
    assert families(set(query_keys(None, Identifiers(ssn=SSN)))) == SSN_FAMILIES


@pytest.mark.parametrize(
    "name",
    [
        PersonName("Whitfield", "Harold", "James"),
        PersonName("Ortega-de la Fuente", "Maria Guadalupe", "Elena"),
        PersonName("Abercrombie-Fitzgerald", "Christopher", "Alexander"),
        PersonName("Smith", "Bert"),  # a given name with many nickname full forms
    ],
)
def test_keys_are_short_and_few(name: PersonName) -> None:
    keys = tracing_keys(tracing(name))
    pid_keys = {key for key in keys if key.partition(":")[0] in {*SSN_FAMILIES, "b", "bs", "bg"}}
    assert len(pid_keys) <= 11  # eight SSN keys, three date keys
    # 44 for ORTEGA-DE LA FUENTE, MARIA GUADALUPE: from keys version 4 each surname part is keyed alone and
    # with each word of the given name (GUADALUPE too).
    assert len(keys - pid_keys) <= 48
    assert max(len(key) for key in keys) <= 48
    assert sum(len(key) for key in keys) <= 880


def test_keys_are_deterministic() -> None:
    record = tracing(PersonName("Whitfield", "Harold"), aliases=(PersonName("Whitfeld", "Hal"),))
    assert tracing_keys(record) == tracing_keys(record)
    assert query_keys(PersonName("Whitfield", "Harold"), Identifiers(ssn=SSN)) == query_keys(
        PersonName("Whitfield", "Harold"), Identifiers(ssn=SSN)
    )


def test_common_name_candidates_stay_bounded_among_demo_tracings() -> None:
    """Among 20,000 census-frequency demo tracings, JOHN SMITH's composite keys select the John
    Smiths and their near namesakes, not the Smiths or the Johns."""
    from indexer.demo import generate_tracings

    records = list(generate_tracings(20_000, seed=3, today=dt.date(2024, 1, 1)))
    smiths = sum(1 for record in records if record.subject and record.subject.name.surname == "Smith")
    keys = set(query_keys(PersonName("Smith", "John"), Identifiers()))
    hits = [record for record in records if tracing_keys(record) & keys]
    assert smiths > 150  # about 1 in 100 tracings is a Smith...
    assert 0 < len(hits) < smiths / 3  # ...and most of them are not candidates
    # in an index of 10,000 the surname alone (about 100 Smiths) is selective enough, and every Smith
    # comes back
    small = set(query_keys(PersonName("Smith", "John"), Identifiers(), index_size=10_000))
    assert sum(1 for record in records if tracing_keys(record) & small) > smiths
