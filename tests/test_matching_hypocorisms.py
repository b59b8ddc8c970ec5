"""What fuzzy-12 changed: a Spanish given name's short form and its full form agree at the NICKNAME level
(PEPE / JOSE, PACO / FRANCISCO, LUPE / GUADALUPE: indexer/given_hypocorisms.py), as BILL / WILLIAM do, and a
query also asks for the keys of the other forms (indexer.match_keys_query.hypocorism_keys). Each case is scored
under fuzzy-11 too: there the pair was another given name, held under the threshold in PID_QUALIFIED and a
stranger in FUZZY. The cases of tests/test_matching.py run against every version, fuzzy-12 too."""

from __future__ import annotations

import pytest

from indexer.match_keys import tracing_keys
from indexer.match_keys_query import DESIGN_INDEX_SIZE, hypocorism_keys, query_keys
from indexer.model import PersonName
from search_service.matching import score
from tests.test_matching import DOB, FUZZY, PID, SSN, ids, name, person, ranked_keys


@pytest.mark.parametrize(
    ("query", "record", "full"),
    [
        (("Garcia", "Pepe"), ("Garcia", "Jose"), "JOSE"),
        (("Garcia", "Jose"), ("Garcia", "Pepe"), "JOSE"),
        (("Hernandez", "Francisco"), ("Hernandez", "Paco"), "FRANCISCO"),
        (("Hernandez", "Pancho"), ("Hernandez", "Francisco"), "FRANCISCO"),
        (("Hernandez", "Chepe"), ("Hernandez", "Pepe"), "JOSE"),  # two short forms of one name
        (("Ruiz", "Lupe"), ("Ruiz", "Guadalupe"), "GUADALUPE"),
        (("Ruiz", "Lola"), ("Ruiz", "Dolores"), "DOLORES"),
        (("Lopez", "Beto"), ("Lopez", "Roberto"), "ROBERTO"),
        (("Lopez", "Toño"), ("Lopez", "Antonio"), "ANTONIO"),  # folded to TONO
        (("Lopez", "Chuy"), ("Lopez", "Jesus"), "JESUS"),
        (("Garcia", "Chema"), ("Garcia", "José María"), "JOSEMARIA"),
        (("Garcia", "Pepe"), ("Garcia", "Jose Maria"), "JOSE"),  # a word of the given name, as fuzzy-7 reads it
        (("Ruiz", "Lupe"), ("Ruiz", "Maria Guadalupe"), "GUADALUPE"),  # the second word
        (("Ruiz", "Lola"), ("Ruiz", "Maria Dolores"), "DOLORES"),
        (("Ruiz", "Maria de Jesus"), ("Ruiz", "Chuy"), "JESUS"),
    ],
)
def test_a_short_form_and_its_full_form_are_one_persons(
    query: tuple[str, str], record: tuple[str, str], full: str
) -> None:
    rec = person(name(*record), ids(dob=DOB), record="R")
    before = score(name(*query), ids(dob=DOB), rec, use_pids=True, matcher="fuzzy-11")
    after = score(name(*query), ids(dob=DOB), rec, use_pids=True, matcher="fuzzy-12")
    assert before.score < PID <= after.score  # fuzzy-11 held it as another given name
    [given] = [feature for feature in after.features if feature.name == "given_name"]
    assert given.detail.startswith(f"a Spanish short form of {full} (")
    fuzzy_before = score(name(*query), ids(), rec, use_pids=False, matcher="fuzzy-11")
    fuzzy_after = score(name(*query), ids(), rec, use_pids=False, matcher="fuzzy-12")
    assert fuzzy_before.score < FUZZY <= fuzzy_after.score


@pytest.mark.parametrize(
    ("query", "record"),
    [
        (("Lopez", "Alberto"), ("Lopez", "Roberto")),  # both full names of BETO, neither a form of the other
        (("Garcia", "Juan"), ("Garcia", "John")),  # a translation is another name
        (("Garcia", "Guillermo"), ("Garcia", "William")),
        (("Ruiz", "Chelo"), ("Ruiz", "Marcelo")),  # CHELO is CONSUELO's
        (("Ruiz", "Paco"), ("Ruiz", "Francisca")),  # a man's short form, the woman's name
        (("Garcia", "Pepe"), ("Garcia", "Pedro")),
        (("Garcia", "Bill"), ("Garcia", "William")),  # an English nickname: fuzzy-11's already
        # The nicknames package's full forms are not read through the table: its ambiguities and the table's
        # chained (SALLY is a SALVADOR to the package, CHAVO one to the table; a review of the first draft).
        (("Garcia", "Sally"), ("Garcia", "Chavo")),
        (("Garcia", "Nettie"), ("Garcia", "Juana")),
        (("Garcia", "Ed"), ("Garcia", "Lalo")),
        (("Garcia", "Bell"), ("Garcia", "Chabela")),
        (("Garcia", "Rob"), ("Garcia", "Beto")),
        (("Garcia", "Sadie"), ("Garcia", "Meche")),
    ],
)
def test_names_the_table_keeps_apart_score_as_under_fuzzy_11(query: tuple[str, str], record: tuple[str, str]) -> None:
    rec = person(name(*record), ids(dob=DOB), record="R")
    for use_pids, pids in ((True, ids(dob=DOB)), (False, ids())):
        before = score(name(*query), pids, rec, use_pids=use_pids, matcher="fuzzy-11")
        after = score(name(*query), pids, rec, use_pids=use_pids, matcher="fuzzy-12")
        assert after.bits == before.bits
        assert [f.detail for f in after.features] == [f.detail for f in before.features]


def test_the_short_form_ranks_the_person_over_strangers_of_the_surname() -> None:
    records = [
        person(name("Garcia", "Pedro"), record="PEDRO"),
        person(name("Garcia", "Pepe"), record="PEPE"),
        person(name("Garcia", "Maria"), record="MARIA"),
    ]
    assert ranked_keys(name("Garcia", "Jose"), ids(), records, use_pids=False, matcher="fuzzy-12")[0] == "PEPE"
    assert ranked_keys(name("Garcia", "Jose"), ids(), records, use_pids=False, matcher="fuzzy-11")[0] != "PEPE"


def test_a_record_under_another_form_and_another_ssn_stays_held() -> None:
    """A short form is the same given name, and the SSN conflict cap holds for it as for JOSE / JOSE: the
    record is a hit without an SSN of its own, held under the threshold with another."""
    asked = name("Garcia", "Jose")
    without = score(
        asked, ids(SSN, DOB), person(name("Garcia", "Pepe"), ids(dob=DOB)), use_pids=True, matcher="fuzzy-12"
    )
    held = score(asked, ids(SSN, DOB), person(name("Garcia", "Pepe"), ids("523874119", DOB)), use_pids=True,
                 matcher="fuzzy-12")  # fmt: skip
    same = score(asked, ids(SSN, DOB), person(name("Garcia", "Jose"), ids("523874119", DOB)), use_pids=True,
                 matcher="fuzzy-12")  # fmt: skip
    assert without.score >= PID > held.score
    assert held.bits <= same.bits  # no better than the same name's under another SSN


def test_two_short_forms_are_weighed_as_the_name_they_stand_for() -> None:
    """Neither PEPE nor CHEPE is in the census, so the rarity adjustment read them as the rarest names: PEPE /
    CHEPE (0.899) outranked PEPE / JOSE (0.52) and JOSE / JOSE (0.81) in the first draft. What they share is
    JOSE, one of the commonest names: both pairs weigh as a nickname of JOSE, under the exact name."""
    asked = name("Garcia", "Pepe")
    chepe = score(asked, ids(), person(name("Garcia", "Chepe")), use_pids=False, matcher="fuzzy-12")
    jose = score(asked, ids(), person(name("Garcia", "Jose")), use_pids=False, matcher="fuzzy-12")
    jose_luis = score(asked, ids(), person(name("Garcia", "Jose Luis")), use_pids=False, matcher="fuzzy-12")
    exact = score(name("Garcia", "Jose"), ids(), person(name("Garcia", "Jose")), use_pids=False, matcher="fuzzy-12")
    assert chepe.bits == jose.bits and jose_luis.bits <= jose.bits
    assert jose.score < exact.score


def test_the_query_asks_for_the_keys_of_the_other_forms() -> None:
    """At the design scale GARCIA alone is not looked up: without the other forms' keys the query shares no
    key with the record of another form (a FUZZY query, no date to fall back on)."""
    record = person(name("Garcia", "Pepe"))
    stored = tracing_keys(record)
    for query in (name("Garcia", "Jose"), name("Garcia", "Chepe")):
        before = query_keys(query, ids(), index_size=DESIGN_INDEX_SIZE)
        after = query_keys(query, ids(), index_size=DESIGN_INDEX_SIZE, hypocorisms=1)
        assert stored.isdisjoint(before)
        assert "e:GARCIA|PEPE" in stored.intersection(after)
        assert set(before) <= set(after)
    # And the other way: PEPE asks for JOSE's.
    assert "e:GARCIA|JOSE" in hypocorism_keys(name("Garcia", "Pepe"), 1)


def test_the_other_forms_keys_are_few_and_none_for_a_name_outside_the_table() -> None:
    assert hypocorism_keys(name("Smith", "William"), 1) == []
    assert hypocorism_keys(name("Smith", "Sally"), 1) == []  # not through the package's SALVADOR
    assert hypocorism_keys(name("Garcia", "J"), 1) == []  # a bare initial
    assert hypocorism_keys(name("", "Jose"), 1) == []
    # The most related name's: two keys a form (one `e`, one `a` a surname part), fewer where forms sound alike.
    keys = hypocorism_keys(name("De la Cruz", "Beto"), 1)
    assert {key.split(":")[0] for key in keys} == {"e", "a"}
    assert len(keys) <= 3 * 4


@pytest.mark.parametrize(
    ("query", "record"),
    [
        (name("Cruz", "Lucho"), name("de la Cruz", "Luis")),  # LUIS sounds as one letter (NYSIIS L)
        (name("Garcia", "Lupe"), name("Garcia", "Maria Guadalupe")),  # a word of the given name
        (name("Garcia Lopez", "Chepe"), name("Garcia", "Jose")),  # a surname written in more parts
    ],
)
def test_the_other_forms_keys_reach_a_record_written_otherwise(query: PersonName, record: PersonName) -> None:
    stored = tracing_keys(person(record))
    assert stored.isdisjoint(query_keys(query, ids(), index_size=DESIGN_INDEX_SIZE))
    assert not stored.isdisjoint(query_keys(query, ids(), index_size=DESIGN_INDEX_SIZE, hypocorisms=1))


def test_with_a_full_ssn_the_other_forms_keys_are_asked_as_twins() -> None:
    """Identifier first: a query with a full SSN asks for every name key as its `n` twin (records without an
    SSN), the other forms' too."""
    keys = query_keys(name("Garcia", "Jose"), ids(SSN), conflicting_ssn_out=True, hypocorisms=1)
    assert "ne:GARCIA|PEPE" in keys and "e:GARCIA|PEPE" not in keys
