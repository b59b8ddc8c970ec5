"""A generational suffix keyed into the surname or given-name field (search review, finding 1): the edit criteria
move it into the suffix field, for tracings and queries alike, so that the exact modes (EXACT, NAME_ONLY,
NONSTANDARD) key both sides the same way. Tables: what is peeled, what must stay, what is refused; then the
exact modes over a real server."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import grpc
import pytest

from dcii.v1 import ingest_pb2, search_pb2
from indexer.edit_criteria import check_query_name, check_tracing
from indexer.edit_criteria_names import trailing_suffix
from indexer.exc import InvalidArgument
from indexer.model import PersonName, Tracing
from indexer.normalize import name_key
from search_service.accreditation import Role
from tests import factories as f
from tests.support import Client, Index, make_index
from tests.test_edit_criteria import SUBJECT, TODAY, tracing, violations

EXACT, NAME_ONLY, NONSTANDARD = (
    search_pb2.SEARCH_MODE_EXACT,
    search_pb2.SEARCH_MODE_NAME_ONLY,
    search_pb2.SEARCH_MODE_NONSTANDARD,
)
APPLIED, REJECTED = ingest_pb2.INGEST_OUTCOME_APPLIED, ingest_pb2.INGEST_OUTCOME_REJECTED


def with_name(name: PersonName) -> Tracing:
    return tracing(subject=dataclasses.replace(SUBJECT, name=name))


# --- the trailing word ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "rest", "suffix"),
    [
        ("Whitfield Jr", "Whitfield", "JR"),
        ("Whitfield Jr.", "Whitfield", "JR"),
        ("Whitfield, III", "Whitfield", "III"),
        ("Whitfield,Jr", "Whitfield", "JR"),
        ("  Whitfield   Sr  ", "Whitfield", "SR"),
        ("Whitfield-II", "Whitfield", "II"),
        ("Whitfield IV", "Whitfield", "IV"),
        ("Whitfield Junior", "Whitfield", "JR"),
        ("Whitfield senior", "Whitfield", "SR"),
        ("Whitfield Jnr", "Whitfield", "JR"),
        ("Smith-Jones II", "Smith-Jones", "II"),
        ("de la Cruz Jr", "de la Cruz", "JR"),
        ("da Silva J\u00fanior", "da Silva", "JR"),  # an accented spelling (it stayed in the surname)
        ("Whitfield\u2010Jr", "Whitfield", "JR"),  # Unicode's hyphen, and the en dash: accepted in names
        ("Whitfield \u2013 III", "Whitfield", "III"),
        ("M\u00fcller Jr", "M\u00fcller", "JR"),
        ("H. Jr", "H.", "JR"),
        ("Harold Jr", "Harold", "JR"),
    ],
)
def test_a_separate_trailing_suffix_word_is_found(raw: str, rest: str, suffix: str) -> None:
    assert trailing_suffix(raw) == (rest, suffix)


@pytest.mark.parametrize(
    "raw",
    [
        "II",  # the name is only the suffix word: it is the name
        "Jr",
        "Junior",
        " III. ",
        "- Jr",  # nothing of a name would remain
        ", II",
        "Ives",  # starts like a suffix, is a name
        "Smith Ives",
        "Whitfield Vic",
        "John V",  # V and VI: as often a middle initial or a name ("Vi") as a suffix: left as keyed
        "Tran Thi Vi",
        "Whitfield VI",
        "Whitfield Jra",
        "Junior Smith",  # a suffix word that is not the last word
        "Whitfield J.R.",  # initials, not a spelling the last word has
        "WhitfieldJr",  # not a separate word
        "Mary Ann",  # a two-word given name stays as it is
        "St. John",
        "Bartholomew",
        "",
    ],
)
def test_no_suffix_word_is_found(raw: str) -> None:
    assert trailing_suffix(raw) is None


# --- the edit criteria of a tracing -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        (PersonName("Whitfield Jr", "Harold"), PersonName("Whitfield", "Harold", "", "JR")),
        (PersonName("Whitfield, III", "Harold"), PersonName("Whitfield", "Harold", "", "III")),
        (PersonName("Whitfield", "Harold Jr", "James"), PersonName("Whitfield", "Harold", "James", "JR")),
        (PersonName("Whitfield Jr", "Harold", "", "Jr."), PersonName("Whitfield", "Harold", "", "JR")),
        (PersonName("Whitfield Jr", "Harold Jr"), PersonName("Whitfield", "Harold", "", "JR")),
        (PersonName("", "Madonna Sr"), PersonName("", "Madonna", "", "SR")),
        # A joiner inside a Persian compound surname is no control character: the suffix is peeled all the same.
        (PersonName("Mohammad\u200cZadeh Jr", "Ali"), PersonName("Mohammad\u200cZadeh", "Ali", "", "JR")),
        # negatives: nothing to peel, the name is stored as it came (cleaned)
        (PersonName("II", "Harold"), PersonName("II", "Harold")),
        (PersonName("Ives", "Harold"), PersonName("Ives", "Harold")),
        (PersonName("Whitfield", "Jr"), PersonName("Whitfield", "Jr")),
        (PersonName("Whitfield", "Mary Ann"), PersonName("Whitfield", "Mary Ann")),
        (PersonName("Whitfield", "Harold", "James Jr"), PersonName("Whitfield", "Harold", "James Jr")),
    ],
)
def test_a_tracing_is_stored_with_the_suffix_in_its_field(sent: PersonName, stored: PersonName) -> None:
    cleaned = check_tracing(with_name(sent), today=TODAY)
    assert cleaned.subject is not None
    assert cleaned.subject.name == stored


def test_an_alias_is_peeled_too() -> None:
    subject = dataclasses.replace(SUBJECT, aliases=(PersonName("Nowak Jr", "Anna"),))
    cleaned = check_tracing(tracing(subject=subject), today=TODAY)
    assert cleaned.subject is not None
    assert cleaned.subject.aliases == (PersonName("Nowak", "Anna", "", "JR"),)


@pytest.mark.parametrize(
    ("sent", "paths"),
    [
        (PersonName("Whitfield Jr", "Harold", "", "III"), ["tracing.subject.name.surname"]),
        (PersonName("Whitfield", "Harold Sr", "", "Jr"), ["tracing.subject.name.given_name"]),
        (PersonName("Whitfield Jr", "Harold III"), ["tracing.subject.name.given_name"]),
        # the comma stays refused when the suffix is not peeled, one violation for the field
        (PersonName("Whitfield, Jr", "Harold", "", "II"), ["tracing.subject.name.surname"]),
        # an unknown suffix is refused on its own field, not as a conflict
        (PersonName("Whitfield Jr", "Harold", "", "Esq"), ["tracing.subject.name.suffix"]),
        # a control character is refused, not hidden by the peeling
        (PersonName("Whitfield\x1fJr", "Harold"), ["tracing.subject.name.surname"]),
        (PersonName("Whitfield Jr", "Harold", "", "J\x07R"), ["tracing.subject.name.suffix"]),
    ],
)
def test_a_suffix_word_that_contradicts_the_suffix_field_is_refused(sent: PersonName, paths: list[str]) -> None:
    found = violations(with_name(sent))
    assert [v.field for v in found] == paths
    for violation in found:
        assert "whitfield" not in violation.description.lower()
        assert "harold" not in violation.description.lower()


def test_a_query_name_is_peeled_the_same_way() -> None:
    assert check_query_name(PersonName("Whitfield Jr", "Harold"), "q.name") == PersonName(
        "Whitfield", "Harold", "", "JR"
    )
    with pytest.raises(InvalidArgument) as raised:
        check_query_name(PersonName("Whitfield Jr", "Harold", "", "Sr"), "q.name")
    assert [v.field for v in raised.value.violations] == ["q.name.surname"]


@pytest.mark.parametrize(
    "query",
    [
        PersonName("Whitfield", "Harold", "", "JR"),
        PersonName("Whitfield Jr", "Harold"),
        PersonName("Whitfield, Jr.", "Harold"),
    ],
)
def test_the_stored_and_the_queried_exact_keys_agree(query: PersonName) -> None:
    record = check_tracing(with_name(PersonName("Whitfield Jr", "Harold")), today=TODAY)
    assert record.subject is not None
    assert name_key(record.subject.name) == name_key(check_query_name(query, "q.name"))


# --- the exact modes over a real server ---------------------------------------------------------------

SSN_SUR, SSN_GIV, SSN_FLD, SSN_II, SSN_IVES = "318-52-4477", "318-52-4478", "318-52-4472", "318-52-4479", "318-52-4480"


@dataclasses.dataclass
class Corpus:
    index: Index
    querier: Client


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    index = make_index(tmp_path_factory.mktemp("suffix"))
    index.start()
    try:
        results = index.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER]).upsert(
            f.person(record="SUFSUR", surname="Whitfield Jr", middle="James", ssn=SSN_SUR),
            f.person(record="SUFGIV", given="Harold III", middle="", ssn=SSN_GIV),
            f.person(record="SUFFLD", suffix="JR", middle="", ssn=SSN_FLD),
            f.person(record="SURII", surname="II", given="Harold", middle="", ssn=SSN_II),
            f.person(record="IVES", surname="Whitfield Ives", given="Harold", middle="", ssn=SSN_IVES),
        )
        assert {r.outcome for r in results} == {APPLIED}, results
        yield Corpus(index, index.client("CCF-TERM-01", "ARMY-CCF", [Role.QUERIER]))
    finally:
        index.stop()


def name(surname: str = "", given: str = "", middle: str = "", suffix: str = "") -> dict[str, str]:
    return {"surname": surname, "given_name": given, "middle_name": middle, "suffix": suffix}


def records(response: search_pb2.SearchResponse) -> list[str]:
    return sorted(h.tracing.key.record_number for h in response.hits)


SEARCHES: list[tuple[str, dict[str, object], list[str]]] = [
    ("NONSTANDARD surname", {"mode": NONSTANDARD, "name": name("Whitfield")}, ["SUFFLD", "SUFGIV", "SUFSUR"]),
    ("NONSTANDARD surname with a suffix word", {"mode": NONSTANDARD, "name": name("Whitfield Jr")},
     ["SUFFLD", "SUFGIV", "SUFSUR"]),
    ("EXACT, suffix in the field", {"mode": EXACT, "name": name("Whitfield", "Harold", "James", "JR"),
     "identifiers": {"ssn": SSN_SUR}}, ["SUFSUR"]),
    ("EXACT, no suffix asked", {"mode": EXACT, "name": name("Whitfield", "Harold", "James"),
     "identifiers": {"ssn": SSN_SUR}}, ["SUFSUR"]),
    ("EXACT, suffix in the query's surname", {"mode": EXACT, "name": name("Whitfield Jr", "Harold"),
     "identifiers": {"ssn": SSN_FLD}}, ["SUFFLD"]),
    ("EXACT, suffix after a comma in the query's surname", {"mode": EXACT, "name": name("Whitfield, Jr.", "Harold"),
     "identifiers": {"ssn": SSN_SUR}}, ["SUFSUR"]),
    ("EXACT, record's given name carried the suffix", {"mode": EXACT, "name": name("Whitfield", "Harold"),
     "identifiers": {"ssn": SSN_GIV}}, ["SUFGIV"]),
    ("EXACT, query's given name carries the suffix", {"mode": EXACT, "name": name("Whitfield", "Harold III"),
     "identifiers": {"ssn": SSN_GIV}}, ["SUFGIV"]),
    ("NAME_ONLY with JR", {"mode": NAME_ONLY, "name": name("Whitfield Jr", "Harold")}, ["SUFFLD", "SUFSUR"]),
    ("NAME_ONLY with III in the given name", {"mode": NAME_ONLY, "name": name("Whitfield", "Harold III")}, ["SUFGIV"]),
    # negatives: a surname that is only the suffix word, and a name part that only looks like one
    ("NAME_ONLY surname II", {"mode": NAME_ONLY, "name": name("II", "Harold")}, ["SURII"]),
    ("NONSTANDARD Whitfield Ives", {"mode": NONSTANDARD, "name": name("Whitfield Ives")}, ["IVES"]),
    ("EXACT Whitfield Ives", {"mode": EXACT, "name": name("Whitfield Ives", "Harold"),
     "identifiers": {"ssn": SSN_IVES}}, ["IVES"]),
]  # fmt: skip


@pytest.mark.parametrize(("label", "fields", "expected"), SEARCHES, ids=[s[0] for s in SEARCHES])
def test_the_exact_modes_find_a_suffix_keyed_into_a_name(
    corpus: Corpus, label: str, fields: dict[str, object], expected: list[str]
) -> None:
    assert records(corpus.querier.search(**fields)) == expected, label


def test_the_record_comes_back_with_the_suffix_in_its_field(corpus: Corpus) -> None:
    response = corpus.querier.search(mode=EXACT, name=name("Whitfield", "Harold"), identifiers={"ssn": SSN_SUR})
    (hit,) = response.hits
    stored = hit.tracing.subject.name
    assert (stored.surname, stored.given_name, stored.suffix) == ("Whitfield", "Harold", "JR")


def test_a_query_whose_suffix_word_contradicts_its_suffix_is_refused(corpus: Corpus) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        corpus.querier.search(mode=NAME_ONLY, name=name("Whitfield Jr", "Harold", suffix="III"))
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT


def test_a_tracing_whose_suffix_word_contradicts_its_suffix_is_rejected(index: Index) -> None:
    ncis = index.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER])
    (result,) = ncis.upsert(f.person(record="BAD", surname="Whitfield Jr", suffix="III"))
    assert result.outcome == REJECTED
    assert [v.field for v in result.violations] == ["upsert.subject.name.surname"]
