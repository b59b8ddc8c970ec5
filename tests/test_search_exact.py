"""The exact retrieval modes (seed 002, "Retrieval") over the real server: EXACT, NAME_ONLY, NONSTANDARD,
impersonal titles, paging, minimum disclosure and the refusals. Tables: a query and what it must find."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import pytest

from dcii.v1 import ingest_pb2, search_pb2, tracing_pb2
from search_service.accreditation import Purpose, Role
from search_service.errors import field_violations
from tests import factories as f
from tests.support import Client, Index, make_index

EXACT, NAME_ONLY, NONSTANDARD = (
    search_pb2.SEARCH_MODE_EXACT,
    search_pb2.SEARCH_MODE_NAME_ONLY,
    search_pb2.SEARCH_MODE_NONSTANDARD,
)
FILE, CLEARANCE = tracing_pb2.TRACING_TYPE_FILE, tracing_pb2.TRACING_TYPE_CLEARANCE
MARKING = "FOR OFFICIAL USE ONLY - PRIVACY SENSITIVE"
Fields = dict[str, object]

SSN_W1, SSN_W2, SSN_W3 = "318-52-4471", "412-33-1234", "523-41-7788"
SSN_CR, SSN_OB, SSN_MU, SSN_AL, SSN_HEN = "287-65-4321", "145-27-3690", "371-80-2244", "466-19-5502", "230-44-6187"
SSN_CITY = "212-45-7781"
OTHER_SSN = "501-12-3456"  # nobody's


def clearance(record: str, surname: str, given: str, ssn: str) -> tracing_pb2.Tracing:
    tracing = f.person(record=record, surname=surname, given=given, middle="", ssn=ssn)
    c = tracing.clearance  # replaces the factory's file in the oneof
    c.granted_on.year, c.granted_on.month, c.granted_on.day = 2012, 3, 1
    c.eligibility_level = tracing_pb2.CLEARANCE_LEVEL_TOP_SECRET
    c.access_level = tracing_pb2.CLEARANCE_LEVEL_SECRET
    c.subject_category = tracing_pb2.SUBJECT_CATEGORY_MILITARY
    return tracing


def impersonal_title(record: str, title: str) -> tracing_pb2.Tracing:
    tracing = tracing_pb2.Tracing(source_version=1)
    tracing.key.agency, tracing.key.record_number = "NCIS", record
    t = tracing.impersonal_title
    t.title, t.kind = title, tracing_pb2.IMPERSONAL_TITLE_KIND_CONTRACTOR_LOCATION
    t.custodian, t.file_number, t.year_indexed = "NCIS", f"F-{record}", 1994
    return tracing


def corpus_tracings() -> list[tracing_pb2.Tracing]:
    cruz = f.person(record="CR", surname="de la Cruz", given="María", middle="", ssn=SSN_CR, dob=(1985, 2, 3), state="")
    cruz.subject.identifiers.place_of_birth.country = "MX"
    city = f.person(record="CITY", surname="Lindqvist", given="Agnes", middle="", ssn=SSN_CITY, dob=None)
    city.subject.identifiers.place_of_birth.city = "Norfolk"  # VA
    return [
        f.person(record="W1", ssn=SSN_W1),  # Whitfield, Harold James; 1971-04-12; VA
        f.person(record="W2", middle="", ssn=SSN_W2, dob=(1980, 0, 0), state="TX"),
        f.person(record="W3", suffix="JR", ssn=SSN_W3, dob=(1999, 9, 9)),
        f.person(record="HT", given="Harriet", middle="", ssn="318-52-4480"),
        f.person(record="AD", given="Adam", middle="", ssn="318-52-4490"),
        f.person(record="HEN-F", given="Henry", middle="", ssn=SSN_HEN),
        clearance("HEN-C", "Whitfield", "Henry", SSN_HEN),
        cruz,
        f.person(record="OB", surname="O'Brien", given="Sean", middle="", ssn=SSN_OB),
        f.person(record="MU", surname="Müller", given="Jürgen", middle="", ssn=SSN_MU),
        f.person(record="AL", surname="Kowalski", given="Anna", middle="", ssn=SSN_AL, aliases=(("Nowak", "Anna"),)),
        city,
        impersonal_title("IT-1", "Acme Widget Corp., Norfolk VA"),
        impersonal_title("IT-2", "Acme Shipyard"),
    ]


@dataclass
class Corpus:
    index: Index
    querier: Client
    officer: Client


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    index = make_index(tmp_path_factory.mktemp("corpus"))
    index.start()
    try:
        results = index.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER]).upsert(*corpus_tracings())
        assert {r.outcome for r in results} == {ingest_pb2.INGEST_OUTCOME_APPLIED}, results
        yield Corpus(
            index,
            index.client("CCF-TERM-01", "ARMY-CCF", [Role.QUERIER]),
            index.client("DSS-PO-01", "DSS", [Role.QUERIER, Role.PRIVACY_OFFICER]),
        )
    finally:
        index.stop()


@pytest.fixture
def ncis(index: Index) -> Client:
    return index.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER])


@pytest.fixture
def querier(index: Index) -> Client:
    return index.client("CCF-TERM-01", "ARMY-CCF", [Role.QUERIER])


def name(surname: str = "", given: str = "", middle: str = "", suffix: str = "") -> dict[str, str]:
    return {"surname": surname, "given_name": given, "middle_name": middle, "suffix": suffix}


def ids(ssn: str = "", dob: tuple[int, ...] = (), state: str = "", country: str = "") -> Fields:
    out: Fields = {"ssn": ssn} if ssn else {}
    if dob:
        out["date_of_birth"] = dict(zip(("year", "month", "day"), dob, strict=False))
    if state or country:
        out["place_of_birth"] = {"us_state": state, "country": country}
    return out


def records(response: search_pb2.SearchResponse) -> list[str]:
    return sorted(h.tracing.key.record_number for h in response.hits)


def refusal(client: Client, **fields: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as refused:
        client.search(**fields)
    return refused.value


HAROLD = name("Whitfield", "Harold")

SEARCHES: list[tuple[str, Fields, list[str]]] = [
    # EXACT: name equal AND a PID equal.
    ("ssn", {"mode": EXACT, "name": HAROLD, "identifiers": ids(SSN_W1)}, ["W1"]),
    (
        "folded case, ssn digits",
        {"mode": EXACT, "name": name("WHITFIELD", "harold"), "identifiers": ids("318524471")},
        ["W1"],
    ),
    ("de la Cruz == DELACRUZ", {"mode": EXACT, "name": name("DELACRUZ", "MARIA"), "identifiers": ids(SSN_CR)}, ["CR"]),
    ("hyphens fold", {"mode": EXACT, "name": name("De-La-Cruz", "maria"), "identifiers": ids(SSN_CR)}, ["CR"]),
    ("O'Brien == OBRIEN", {"mode": EXACT, "name": name("OBRIEN", "Sean"), "identifiers": ids(SSN_OB)}, ["OB"]),
    (
        "typographic apostrophe",
        {"mode": EXACT, "name": name("O\u2019Brien", "Sean"), "identifiers": ids(SSN_OB)},
        ["OB"],
    ),
    ("Müller == MULLER", {"mode": EXACT, "name": name("MULLER", "Jurgen"), "identifiers": ids(SSN_MU)}, ["MU"]),
    ("full dob", {"mode": EXACT, "name": HAROLD, "identifiers": ids(dob=(1971, 4, 12))}, ["W1"]),
    ("year-month dob", {"mode": EXACT, "name": HAROLD, "identifiers": ids(dob=(1971, 4))}, ["W1"]),
    ("year dob", {"mode": EXACT, "name": HAROLD, "identifiers": ids(dob=(1971,))}, ["W1"]),
    ("other month", {"mode": EXACT, "name": HAROLD, "identifiers": ids(dob=(1971, 5))}, []),
    ("other year", {"mode": EXACT, "name": HAROLD, "identifiers": ids(dob=(1972,))}, []),
    ("year dob on a year record", {"mode": EXACT, "name": HAROLD, "identifiers": ids(dob=(1980,))}, ["W2"]),
    # A record of the year alone agrees with a date of that year, as far as it goes (it was missed).
    ("record less precise", {"mode": EXACT, "name": HAROLD, "identifiers": ids(dob=(1980, 3))}, ["W2"]),
    ("full date, a year record", {"mode": EXACT, "name": HAROLD, "identifiers": ids(dob=(1980, 3, 9))}, ["W2"]),
    ("full date, another year", {"mode": EXACT, "name": HAROLD, "identifiers": ids(dob=(1981, 3, 9))}, []),
    ("pob state", {"mode": EXACT, "name": HAROLD, "identifiers": ids(state="va")}, ["W1", "W3"]),
    ("pob other state", {"mode": EXACT, "name": HAROLD, "identifiers": ids(state="TX")}, ["W2"]),
    ("pob country", {"mode": EXACT, "name": name("de la Cruz", "Maria"), "identifiers": ids(country="MX")}, ["CR"]),
    ("one PID of two agrees", {"mode": EXACT, "name": HAROLD, "identifiers": ids(OTHER_SSN, (1971, 4, 12))}, ["W1"]),
    ("other ssn and dob", {"mode": EXACT, "name": HAROLD, "identifiers": ids(OTHER_SSN, (1990, 1, 1))}, []),
    ("other given, same ssn", {"mode": EXACT, "name": name("Whitfield", "Howard"), "identifiers": ids(SSN_W1)}, []),
    ("other surname, same ssn", {"mode": EXACT, "name": name("Whitfeld", "Harold"), "identifiers": ids(SSN_W1)}, []),
    # Middle names and suffixes.
    ("middle initial", {"mode": EXACT, "name": name("Whitfield", "Harold", "J"), "identifiers": ids(SSN_W1)}, ["W1"]),
    ("middle equal", {"mode": EXACT, "name": name("Whitfield", "Harold", "james"), "identifiers": ids(SSN_W1)}, ["W1"]),
    ("middle other", {"mode": EXACT, "name": name("Whitfield", "Harold", "John"), "identifiers": ids(SSN_W1)}, []),
    (  # a part the record lacks does not disagree: the SSN's record was missed by the full name asked
        "record lacks middle",
        {"mode": EXACT, "name": name("Whitfield", "Harold", "James"), "identifiers": ids(SSN_W2)},
        ["W2"],
    ),
    ("no middle, none on record", {"mode": EXACT, "name": HAROLD, "identifiers": ids(SSN_W2)}, ["W2"]),
    (
        "suffix Jr.",
        {"mode": EXACT, "name": name("Whitfield", "Harold", suffix="Jr."), "identifiers": ids(SSN_W3)},
        ["W3"],
    ),
    ("suffix III", {"mode": EXACT, "name": name("Whitfield", "Harold", suffix="III"), "identifiers": ids(SSN_W3)}, []),
    ("no suffix asked", {"mode": EXACT, "name": HAROLD, "identifiers": ids(SSN_W3)}, ["W3"]),
    (
        "suffix, record has none",
        {"mode": EXACT, "name": name("Whitfield", "Harold", suffix="JR"), "identifiers": ids(SSN_W1)},
        ["W1"],
    ),
    (  # present on both sides, the parts must agree
        "middle and suffix, record has another suffix",
        {"mode": EXACT, "name": name("Whitfield", "Harold", "James", suffix="SR"), "identifiers": ids(SSN_W3)},
        [],
    ),
    # Aliases.
    ("alias", {"mode": EXACT, "name": name("Nowak", "Anna"), "identifiers": ids(SSN_AL)}, ["AL"]),
    ("alias, other ssn", {"mode": EXACT, "name": name("Nowak", "Anna"), "identifiers": ids(OTHER_SSN)}, []),
    # NAME_ONLY: the name, PIDs ignored.
    ("name only", {"mode": NAME_ONLY, "name": HAROLD}, ["W1", "W2", "W3"]),
    ("name only ignores PIDs", {"mode": NAME_ONLY, "name": HAROLD, "identifiers": ids(OTHER_SSN)}, ["W1", "W2", "W3"]),
    ("name only, middle", {"mode": NAME_ONLY, "name": name("Whitfield", "Harold", "J.")}, ["W1", "W3"]),
    ("name only, suffix", {"mode": NAME_ONLY, "name": name("Whitfield", "Harold", suffix="junior")}, ["W3"]),
    ("name only is not a prefix", {"mode": NAME_ONLY, "name": name("Whitfield", "Har")}, []),
    ("name only, alias", {"mode": NAME_ONLY, "name": name("nowak", "ANNA")}, ["AL"]),
    ("name only, folded", {"mode": NAME_ONLY, "name": name("Delacruz", "Maria")}, ["CR"]),
    # NONSTANDARD: surname alone, or with a given-name prefix or initial.
    ("surname", {"mode": NONSTANDARD, "name": name("whitfield")}, ["AD", "HEN-C", "HEN-F", "HT", "W1", "W2", "W3"]),
    ("given prefix", {"mode": NONSTANDARD, "name": name("Whitfield", "Har")}, ["HT", "W1", "W2", "W3"]),
    (
        "given initial",
        {"mode": NONSTANDARD, "name": name("Whitfield", "H")},
        ["HEN-C", "HEN-F", "HT", "W1", "W2", "W3"],
    ),
    ("given, no match", {"mode": NONSTANDARD, "name": name("Whitfield", "Z")}, []),
    ("surname is whole", {"mode": NONSTANDARD, "name": name("Cruz")}, []),
    ("surname folded", {"mode": NONSTANDARD, "name": name("De La Cruz")}, ["CR"]),
    ("surname of an alias", {"mode": NONSTANDARD, "name": name("Nowak")}, ["AL"]),
    # Types filter.
    ("clearances only", {"mode": NONSTANDARD, "name": name("Whitfield"), "types": [CLEARANCE]}, ["HEN-C"]),
    ("files only", {"mode": NAME_ONLY, "name": name("Whitfield", "Henry"), "types": [FILE]}, ["HEN-F"]),
    (
        "both types",
        {"mode": EXACT, "name": name("Whitfield", "Henry"), "identifiers": ids(SSN_HEN), "types": [FILE, CLEARANCE]},
        ["HEN-C", "HEN-F"],
    ),
    # Impersonal titles: NAME_ONLY the folded title, NONSTANDARD its start.
    ("title", {"mode": NAME_ONLY, "title": "ACME widget corp  norfolk, va"}, ["IT-1"]),
    ("title is whole", {"mode": NAME_ONLY, "title": "Acme Widget"}, []),
    ("title prefix", {"mode": NONSTANDARD, "title": "acme wid"}, ["IT-1"]),
    ("title prefix, two", {"mode": NONSTANDARD, "title": "Acme"}, ["IT-1", "IT-2"]),
    ("title prefix is a start", {"mode": NONSTANDARD, "title": "Widget"}, []),
]


@pytest.mark.parametrize(("fields", "expected"), [c[1:] for c in SEARCHES], ids=[c[0] for c in SEARCHES])
def test_search_finds_exactly(corpus: Corpus, fields: Fields, expected: list[str]) -> None:
    response = corpus.querier.search(page_size=100, **fields)
    assert records(response) == expected
    assert response.matcher_version == "exact-1"
    assert response.marking == (MARKING if expected else "")
    assert response.next_page_token == ""
    assert all(h.score == 1.0 for h in response.hits)
    for hit in response.hits:
        assert tracing_pb2.TracingType.Name(hit.type) == f"TRACING_TYPE_{hit.tracing.WhichOneof('kind')}".upper()


@pytest.mark.parametrize(
    ("query", "matched"), [(name("Nowak", "Anna"), "alias 1"), (name("Kowalski", "Anna"), "primary")]
)
def test_explanation_says_which_name_matched(corpus: Corpus, query: dict[str, str], matched: str) -> None:
    (hit,) = corpus.querier.search(mode=EXACT, name=query, identifiers=ids(SSN_AL)).hits
    assert hit.explanation.matched_name == matched


AGREE, PART = search_pb2.AGREEMENT_EXACT, search_pb2.AGREEMENT_PARTIAL
DIFFER, NONE_HELD = search_pb2.AGREEMENT_DISAGREE, search_pb2.AGREEMENT_MISSING


@pytest.mark.parametrize(
    ("identifiers", "features"),
    [
        (ids(SSN_W1), [("name", AGREE), ("ssn", AGREE)]),
        # The date agrees as far as a year and month go; the SSN given conflicts, and says so (search review
        # 3: it went unmentioned, a plain 1.0 "equal" on the date).
        (ids(OTHER_SSN, (1971, 4)), [("name", AGREE), ("ssn", DIFFER), ("date_of_birth", PART)]),
        (
            ids(SSN_W1, (1971, 4, 12), "VA"),
            [("name", AGREE), ("ssn", AGREE), ("date_of_birth", AGREE), ("place_of_birth", AGREE)],
        ),
        (ids(SSN_W1, (1980, 1, 1)), [("name", AGREE), ("ssn", AGREE), ("date_of_birth", DIFFER)]),
    ],
)
def test_explanation_lists_the_name_and_each_pid_given(
    corpus: Corpus, identifiers: Fields, features: list[tuple[str, int]]
) -> None:
    response = corpus.querier.search(mode=EXACT, name=name("Whitfield", "Harold", "James"), identifiers=identifiers)
    (hit,) = [h for h in response.hits if h.tracing.key.record_number == "W1"]  # W3 shares the birthplace
    assert [(x.feature, x.agreement) for x in hit.explanation.features] == features
    assert [x.similarity for x in hit.explanation.features] == [0.0 if a == DIFFER else 1.0 for _, a in features]
    assert all("4471" not in x.detail and "1971" not in x.detail for x in hit.explanation.features)  # no values
    assert (hit.score, hit.type, hit.explanation.matched_name) == (1.0, FILE, "primary")


def test_a_pid_the_record_lacks_and_a_city_that_differs_are_said_so(corpus: Corpus) -> None:
    """EXACT compares a place of birth by state: a record born in Norfolk agreed with a query for Richmond
    as "equal". A date the record does not hold is missing, not silently left out."""
    asked = ids(SSN_CITY, (1971, 4, 12), state="VA")
    asked["place_of_birth"]["city"] = "Richmond"  # type: ignore[index]
    (hit,) = corpus.querier.search(mode=EXACT, name=name("Lindqvist", "Agnes"), identifiers=asked).hits
    assert [(x.feature, x.agreement, x.detail) for x in hit.explanation.features][1:] == [
        ("ssn", AGREE, "equal"),
        ("date_of_birth", NONE_HELD, "the record has none"),
        ("place_of_birth", PART, "the same state or country; the cities differ"),
    ]
    asked["place_of_birth"]["city"] = "norfolk"  # type: ignore[index]
    (same,) = corpus.querier.search(mode=EXACT, name=name("Lindqvist", "Agnes"), identifiers=asked).hits
    assert [(x.feature, x.agreement) for x in same.explanation.features][-1] == ("place_of_birth", AGREE)
    (cruz,) = corpus.querier.search(
        mode=EXACT, name=name("de la Cruz", "María"), identifiers=ids(SSN_CR, (1985, 2, 3), state="VA")
    ).hits  # born in MX
    assert [(x.feature, x.agreement) for x in cruz.explanation.features][-1] == ("place_of_birth", DIFFER)


def test_a_date_agreeing_only_as_far_as_the_record_goes_is_explained_as_partial(corpus: Corpus) -> None:
    (hit,) = corpus.querier.search(mode=EXACT, name=HAROLD, identifiers=ids(dob=(1980, 3, 9))).hits  # W2: 1980
    assert [(x.feature, x.agreement) for x in hit.explanation.features] == [
        ("name", search_pb2.AGREEMENT_EXACT),
        ("date_of_birth", search_pb2.AGREEMENT_PARTIAL),
    ]


def test_the_full_ssn_only_to_a_privacy_officer_answering_a_privacy_act_request(corpus: Corpus) -> None:
    fields: Fields = {"mode": EXACT, "name": HAROLD, "identifiers": ids(SSN_W1)}
    (seen,) = corpus.querier.search(**fields).hits
    assert (seen.tracing.subject.identifiers.ssn, seen.tracing.subject.identifiers.ssn_last_four) == ("", "4471")
    # The same office's clearance search needs no more than anyone's (it once got the full number by role).
    (cleared,) = corpus.officer.search(**fields).hits
    assert (cleared.tracing.subject.identifiers.ssn, cleared.tracing.subject.identifiers.ssn_last_four) == ("", "4471")
    (full,) = corpus.officer.search(**fields, purpose=search_pb2.PURPOSE_PRIVACY_ACT_REQUEST).hits
    assert (full.tracing.subject.identifiers.ssn, full.tracing.subject.identifiers.ssn_last_four) == ("318524471", "")
    assert full.tracing.subject.name.surname == "Whitfield"


GARBAGE_TOKEN = "not-a-token!"
REFUSALS: list[tuple[str, Fields, set[str]]] = [
    ("no mode", {"name": HAROLD}, {"mode"}),
    ("no purpose", {"mode": NAME_ONLY, "name": HAROLD, "purpose": search_pb2.PURPOSE_UNSPECIFIED}, {"purpose"}),
    ("unknown mode", {"mode": 42, "name": HAROLD}, {"mode"}),
    ("page_size 101", {"mode": NAME_ONLY, "name": HAROLD, "page_size": 101}, {"page_size"}),
    ("page_size -1", {"mode": NAME_ONLY, "name": HAROLD, "page_size": -1}, {"page_size"}),
    ("garbage token", {"mode": NAME_ONLY, "name": HAROLD, "page_token": GARBAGE_TOKEN}, {"page_token"}),
    ("garbage token, title", {"mode": NAME_ONLY, "title": "Acme", "page_token": GARBAGE_TOKEN}, {"page_token"}),
    ("all at once", {"name": HAROLD, "purpose": 0, "page_size": 101}, {"mode", "purpose", "page_size"}),
    (
        "token with the rest",
        {"mode": NAME_ONLY, "name": HAROLD, "page_size": 101, "page_token": GARBAGE_TOKEN},
        {"page_size", "page_token"},
    ),
    ("EXACT without a PID", {"mode": EXACT, "name": HAROLD}, {"identifiers"}),
    ("EXACT without a name", {"mode": EXACT, "identifiers": ids(SSN_W1)}, {"name.surname"}),
    ("EXACT with a bad SSN", {"mode": EXACT, "name": HAROLD, "identifiers": ids("123")}, {"identifiers.ssn"}),
    (
        "NONSTANDARD with a PID",
        {"mode": NONSTANDARD, "name": name("Whitfield"), "identifiers": ids(SSN_W1)},
        {"identifiers"},
    ),
    (
        "NONSTANDARD with a bad PID",
        {"mode": NONSTANDARD, "name": name("Whitfield"), "identifiers": ids("123")},
        {"identifiers", "identifiers.ssn"},
    ),
    ("NONSTANDARD without a surname", {"mode": NONSTANDARD, "name": name(given="Harold")}, {"name.surname"}),
    ("title and a name", {"mode": NAME_ONLY, "name": HAROLD, "title": "Acme Shipyard"}, {"title"}),
    # NONSTANDARD would drop these and list every namesake: refused rather than ignored.
    (
        "NONSTANDARD with a middle name and a suffix",
        {"mode": NONSTANDARD, "name": {"surname": "Whitfield", "middle_name": "James", "suffix": "JR"}},
        {"name.middle_name", "name.suffix"},
    ),
    # Punctuation alone folds to nothing: as a NONSTANDARD prefix it would list every title.
    ("a title of punctuation", {"mode": NONSTANDARD, "title": "!"}, {"title"}),
    ("a title that folds to nothing", {"mode": NONSTANDARD, "title": "\u02bb"}, {"title"}),
    ("a surname that folds to nothing", {"mode": NONSTANDARD, "name": name("\u02bb")}, {"name.surname"}),
    ("unknown type", {"mode": NAME_ONLY, "name": HAROLD, "types": [99]}, {"types"}),
    # Two million entries were accepted, at 237 ms of the server's CPU each (a review of a misbehaving terminal).
    ("more types than there are", {"mode": NAME_ONLY, "name": HAROLD, "types": [FILE] * 1_000}, {"types"}),
    # Output only: ignored, it narrowed nothing, and a record with another SSN came back as if it agreed.
    (
        "the last four of an SSN",
        {"mode": EXACT, "name": HAROLD, "identifiers": {"ssn_last_four": "4471", "date_of_birth": {"year": 1971}}},
        {"identifiers.ssn_last_four"},
    ),
    (
        "the last four alone",
        {"mode": EXACT, "name": HAROLD, "identifiers": {"ssn_last_four": "4471"}},
        {"identifiers.ssn_last_four"},
    ),
]


@pytest.mark.parametrize(("fields", "bad"), [c[1:] for c in REFUSALS], ids=[c[0] for c in REFUSALS])
def test_bad_request_names_every_bad_field(corpus: Corpus, fields: Fields, bad: set[str]) -> None:
    error = refusal(corpus.querier, **fields)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = field_violations(error)
    assert {field for field, _ in violations} == bad
    assert len(violations) == len(bad)
    assert all("4471" not in text and "Harold" not in text for _, text in violations)  # no PII echoed


def test_purpose_must_be_accredited(corpus: Corpus) -> None:
    gate = corpus.index.client("GATE-01", "ARMY-CCF", [Role.QUERIER], purposes=[Purpose.INSTALLATION_ACCESS])
    fields: Fields = {"mode": EXACT, "name": HAROLD, "identifiers": ids(SSN_W1)}
    assert refusal(gate, **fields).code() == grpc.StatusCode.PERMISSION_DENIED
    assert records(gate.search(purpose=search_pb2.PURPOSE_INSTALLATION_ACCESS, **fields)) == ["W1"]


def pages(client: Client, page_size: int, **fields: object) -> list[search_pb2.SearchResponse]:
    out = [client.search(page_size=page_size, **fields)]
    while out[-1].next_page_token:
        assert len(out) < 100, "paging does not end"
        out.append(client.search(page_size=page_size, page_token=out[-1].next_page_token, **fields))
    return out


def test_namesakes_come_back_paged_without_duplicates(ncis: Client, querier: Client) -> None:
    ncis.upsert(*(f.person(record=f"NS-{i:02d}") for i in range(45)))
    got = pages(querier, 20, mode=NAME_ONLY, name=HAROLD)
    assert [len(p.hits) for p in got] == [20, 20, 5]
    assert [bool(p.next_page_token) for p in got] == [True, True, False]
    found = [r for p in got for r in records(p)]
    assert sorted(found) == [f"NS-{i:02d}" for i in range(45)]


@pytest.mark.parametrize("page_size", [1, 2, 3, 100])
def test_a_tracing_matching_by_two_names_is_one_hit(ncis: Client, querier: Client, page_size: int) -> None:
    # Primary "Harold James Whitfield" and alias "Harold Whitfield": both names are Whitfield, Harold.
    ncis.upsert(*(f.person(record=f"TW-{i}", aliases=(("Whitfield", "Harold"),)) for i in range(5)))
    got = pages(querier, page_size, mode=NAME_ONLY, name=HAROLD)
    for page in got:
        assert len(set(records(page))) == len(page.hits)
    found = [r for p in got for r in records(p)]
    assert sorted(found) == [f"TW-{i}" for i in range(5)]
    assert {h.explanation.matched_name for p in got for h in p.hits} == {"primary"}


def test_paging_a_surname_with_a_types_filter(ncis: Client, querier: Client) -> None:
    givens = ["Alan", "Bert", "Carl", "Dora", "Emil", "Fern"]
    ncis.upsert(
        *(f.person(record=f"F-{i}", given=g) for i, g in enumerate(givens)),
        *(clearance(f"C-{i}", "Whitfield", g, SSN_W1) for i, g in enumerate(givens[:5])),
    )
    got = pages(querier, 2, mode=NONSTANDARD, name=name("Whitfield"), types=[CLEARANCE])
    assert [len(p.hits) for p in got] == [2, 2, 1]
    assert sorted(r for p in got for r in records(p)) == [f"C-{i}" for i in range(5)]


def test_deleted_tracing_is_not_found(ncis: Client, querier: Client) -> None:
    fields: Fields = {"mode": EXACT, "name": HAROLD, "identifiers": ids(SSN_W1)}
    ncis.upsert(f.person(record="D-1"), f.person(record="D-2"))
    assert records(querier.search(**fields)) == ["D-1", "D-2"]
    assert ncis.push([f.delete("NCIS", "D-1", 2)])[0].outcome == ingest_pb2.INGEST_OUTCOME_APPLIED
    assert records(querier.search(**fields)) == ["D-2"]
    assert records(querier.search(mode=NONSTANDARD, name=name("Whitfield"))) == ["D-2"]


def test_updated_name_is_found_under_the_new_name_only(ncis: Client, querier: Client) -> None:
    ncis.upsert(f.person(record="U-1", version=1))
    ncis.upsert(f.person(record="U-1", version=2, surname="Ames", given="Harriet", aliases=(("Lowe", "Hattie"),)))
    new, alias = name("Ames", "Harriet"), name("Lowe", "Hattie")
    for query in (HAROLD, new, alias):
        expected = [] if query is HAROLD else ["U-1"]
        assert records(querier.search(mode=EXACT, name=query, identifiers=ids(SSN_W1))) == expected
        assert records(querier.search(mode=NAME_ONLY, name=query)) == expected
    assert records(querier.search(mode=NONSTANDARD, name=name("Whitfield"))) == []
    ncis.upsert(f.person(record="U-1", version=3, surname="Ames", given="Harriet"))  # alias dropped
    assert records(querier.search(mode=NAME_ONLY, name=alias)) == []
