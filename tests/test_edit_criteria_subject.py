"""Edit criteria (seed 002) for the subject of a tracing (tests/test_edit_criteria.py has the tracing as a
whole, and the valid tracing and helpers used here): names and aliases, role, SSN, date and place of birth,
each with the cases that pass and those that must be refused, messages that never quote the SSN, name or date of
birth, and the same checks as queries use them."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from indexer.edit_criteria import check_identifiers, check_name, check_query_name, check_tracing
from indexer.exc import InvalidArgument
from indexer.model import Identifiers, PartialDate, PersonName, PlaceOfBirth, Tracing
from tests.test_edit_criteria import NAME, SUBJECT, TODAY, assert_refused, tracing, violations, with_ids, with_role


def with_name(**changes: Any) -> Tracing:
    return tracing(subject=dataclasses.replace(SUBJECT, name=dataclasses.replace(NAME, **changes)))


def with_pob(**changes: Any) -> Tracing:
    return with_ids(place_of_birth=PlaceOfBirth(**changes))


# --- names ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        PersonName("O'Brien"),
        PersonName("O\u2019Brien", "Se\u00e1n"),
        PersonName("Smith-Jones", "Mary Ann", "St. Clair", "III"),
        PersonName("Nguy\u1ec5n", "V\u0103n"),
        PersonName("\u0418\u0432\u0430\u043d\u043e\u0432", "\u0418\u0432\u0430\u043d"),
        PersonName("\u674e", "\u5c0f\u9f8d"),
        PersonName("\u0936\u0930\u094d\u092e\u093e"),  # Devanagari with a virama (a combining mark)
        PersonName("Zoe\u0308"),  # decomposed: stored composed
        PersonName("S" * 60, "G" * 60, "M" * 60),
        # Punctuation real names are typed with (a review of name handling found each refused):
        PersonName("Ka\u2018ahumanu"),  # the okina typed as a left quote
        PersonName("Smith\u2010Jones"),  # Unicode's hyphen
        PersonName("Smith\u2013Jones"),  # an en dash
        PersonName("Col\u00b7lell"),  # the Catalan middle dot
        PersonName("\u062d\u0633\u06cc\u0646\u200c\u0632\u0627\u062f\u0647"),  # Persian, a ZWNJ inside
        PersonName("\u05d6\u05f3\u05d0\u05e7"),  # Hebrew with a geresh
        PersonName("\u30b9\u30df\u30b9", "\u30b8\u30e7\u30f3\u30fb\u30dd\u30fc\u30eb"),  # Katakana middle dot
    ],
)
def test_names_accepted(name: PersonName) -> None:
    check_tracing(with_name(**dataclasses.asdict(name)), today=TODAY)


@pytest.mark.parametrize(
    ("changes", "path", "reason"),
    [
        ({"surname": "", "given_name": ""}, "tracing.subject.name.surname", "a surname or a given name is required"),
        (
            {"surname": "   ", "given_name": " "},
            "tracing.subject.name.surname",
            "a surname or a given name is required",
        ),
        ({"surname": "S" * 61}, "tracing.subject.name.surname", "longer than 60"),
        ({"surname": "Smith4"}, "tracing.subject.name.surname", "digits"),
        ({"surname": "Sm\x00ith"}, "tracing.subject.name.surname", "control characters"),
        ({"surname": "Sm\x1fith"}, "tracing.subject.name.surname", "control characters"),
        ({"surname": "Sm\u200bith"}, "tracing.subject.name.surname", "control characters"),
        ({"surname": "Sm\u202eith"}, "tracing.subject.name.surname", "control characters"),  # a bidi override
        ({"surname": "\u200c"}, "tracing.subject.name.surname", "at least one letter"),
        ({"surname": "Smith@home"}, "tracing.subject.name.surname", "only letters"),
        ({"surname": "Smith_Jones"}, "tracing.subject.name.surname", "only letters"),
        ({"surname": "- . '"}, "tracing.subject.name.surname", "at least one letter"),
        ({"given_name": "G" * 61}, "tracing.subject.name.given_name", "longer than 60"),
        ({"given_name": "J0hn"}, "tracing.subject.name.given_name", "digits"),
        ({"middle_name": "\u0661"}, "tracing.subject.name.middle_name", "digits"),  # Arabic-Indic one
        ({"middle_name": "Q;"}, "tracing.subject.name.middle_name", "only letters"),
        ({"suffix": "Esq."}, "tracing.subject.name.suffix", "one of JR"),
        ({"suffix": "J@R"}, "tracing.subject.name.suffix", "one of JR"),
        ({"suffix": "J\x07R"}, "tracing.subject.name.suffix", "control characters"),
    ],
)
def test_names_refused(changes: dict[str, Any], path: str, reason: str) -> None:
    assert_refused(with_name(**changes), path, reason)


@pytest.mark.parametrize(
    ("suffix", "canonical"),
    [("Jr.", "JR"), ("J.R.", "JR"), ("senior", "SR"), ("2nd", "II"), (" iii ", "III"), ("", "")],
)
def test_suffix_stored_canonical(suffix: str, canonical: str) -> None:
    assert check_name(PersonName("Smith", suffix=suffix), prefix="n").suffix == canonical


def test_alias_paths() -> None:
    aliases = (PersonName("Smith"), PersonName("Smyth", "J0n"), PersonName(""))
    found = violations(tracing(subject=dataclasses.replace(SUBJECT, aliases=aliases)))
    assert [v.field for v in found] == [
        "tracing.subject.aliases[1].given_name",
        "tracing.subject.aliases[2].surname",
    ]


def test_at_most_20_aliases() -> None:
    ok = dataclasses.replace(SUBJECT, aliases=(PersonName("Smith"),) * 20)
    check_tracing(tracing(subject=ok), today=TODAY)
    assert_refused(
        tracing(subject=dataclasses.replace(SUBJECT, aliases=(PersonName("Smith"),) * 21)),
        "tracing.subject.aliases",
        "at most 20",
    )


def test_unknown_role_refused() -> None:
    assert_refused(tracing(subject=with_role("WITNESS")), "tracing.subject.role", "role")


# --- SSN --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ssn", "reason"),
    [
        ("000-12-3456", "area 000 is never issued"),
        ("666-12-3456", "area 666 is never issued"),
        ("900-12-3456", "areas 900-999 are never issued"),
        ("999-12-3456", "areas 900-999 are never issued"),
        ("123-00-4567", "group 00 is never issued"),
        ("123-45-0000", "serial 0000 is never issued"),
        ("078-05-1120", "advertising"),  # the Woolworth wallet card
        ("219-09-9999", "advertising"),
        ("457-55-5462", "advertising"),
        ("12345678", "9 digits"),
        ("1234567890", "9 digits"),
        ("123-45-678X", "9 digits"),
        ("---", "9 digits"),
        ("\u0661\u0662\u0663456789", "9 digits"),  # Arabic-Indic digits are not SSN digits
    ],
)
def test_ssn_refused(ssn: str, reason: str) -> None:
    assert_refused(with_ids(ssn=ssn), "tracing.subject.identifiers.ssn", reason)
    with pytest.raises(InvalidArgument):
        check_identifiers(Identifiers(ssn=ssn), today=TODAY, prefix="q")


def test_ssn_several_reasons_in_one_violation() -> None:
    found = violations(with_ids(ssn="000-00-0000"))
    assert [v.field for v in found] == ["tracing.subject.identifiers.ssn"]
    for reason in ("area 000", "group 00", "serial 0000"):
        assert reason in found[0].description


@pytest.mark.parametrize(
    ("ssn", "cleaned"),
    [
        ("123-45-6789", "123456789"),
        ("123 45 6789", "123456789"),
        (" 123456789 ", "123456789"),
        ("123\u201345\u20146789", "123456789"),  # en and em dashes
        ("\uff11\uff12\uff13-45-6789", "123456789"),  # full-width digits, as some keyboards type them
        ("", ""),
        ("   ", ""),
    ],
)
def test_ssn_cleaned(ssn: str, cleaned: str) -> None:
    assert check_identifiers(Identifiers(ssn=ssn), today=TODAY, prefix="q").ssn == cleaned


# --- date of birth ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dob",
    [
        PartialDate(2000, 2, 29),  # leap year (divisible by 400)
        PartialDate(2024, 2, 29),
        PartialDate(1970),  # year only
        PartialDate(1970, 5),  # year and month
        PartialDate(2025, 6),  # partial that begins before today
        PartialDate(2025),
        PartialDate(2025, 6, 15),  # today
        PartialDate(1880, 1, 1),
    ],
)
def test_date_of_birth_accepted(dob: PartialDate) -> None:
    cleaned = check_identifiers(Identifiers(date_of_birth=dob), today=TODAY, prefix="q")
    assert cleaned.date_of_birth == dob


@pytest.mark.parametrize(
    ("dob", "reason"),
    [
        (PartialDate(2023, 2, 29), "not a real date"),  # not a leap year
        (PartialDate(1900, 2, 29), "not a real date"),  # century, not a leap year
        (PartialDate(1970, 2, 30), "not a real date"),
        (PartialDate(1970, 4, 31), "not a real date"),
        (PartialDate(1970, 13), "between 1 and 12"),
        (PartialDate(1970, 0, 5), "day but no month"),
        (PartialDate(1879, 12, 31), "before 1880"),
        (PartialDate(2025, 6, 16), "future"),
        (PartialDate(2025, 7), "future"),  # partial: its first day is after today
        (PartialDate(2026), "future"),
        (PartialDate(12000), "future"),
    ],
)
def test_date_of_birth_refused(dob: PartialDate, reason: str) -> None:
    assert_refused(with_ids(date_of_birth=dob), "tracing.subject.identifiers.date_of_birth", reason)


# --- place of birth ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"us_state": "va"}, PlaceOfBirth("VA")),
        ({"us_state": "PR", "city": "San Juan"}, PlaceOfBirth("PR", "", "San Juan")),
        ({"us_state": "DC"}, PlaceOfBirth("DC")),
        ({"country": "de", "city": "M\u00fcnchen"}, PlaceOfBirth("", "DE", "M\u00fcnchen")),
        ({"country": "BR", "city": "S\u00e3o  Paulo"}, PlaceOfBirth("", "BR", "S\u00e3o Paulo")),
        ({"country": "IE", "city": "St. Mary's-Cork"}, PlaceOfBirth("", "IE", "St. Mary's-Cork")),
    ],
)
def test_place_of_birth_accepted(changes: dict[str, str], expected: PlaceOfBirth) -> None:
    cleaned = check_identifiers(Identifiers(place_of_birth=PlaceOfBirth(**changes)), today=TODAY, prefix="q")
    assert cleaned.place_of_birth == expected


POB = "tracing.subject.identifiers.place_of_birth"


@pytest.mark.parametrize(
    ("changes", "path", "reason"),
    [
        ({"us_state": "VA", "country": "DE"}, POB, "not both"),
        ({}, POB, "set us_state"),
        ({"city": "Paris"}, POB, "set us_state"),
        ({"us_state": "AE"}, f"{POB}.us_state", "military mail"),
        ({"us_state": "AA"}, f"{POB}.us_state", "military mail"),
        ({"us_state": "ap"}, f"{POB}.us_state", "military mail"),
        ({"us_state": "ZZ"}, f"{POB}.us_state", "USPS"),
        ({"country": "US"}, f"{POB}.country", "us_state"),
        ({"country": "pr"}, f"{POB}.country", "us_state"),
        ({"country": "XX"}, f"{POB}.country", "ISO 3166-1"),
        ({"country": "DEU"}, f"{POB}.country", "ISO 3166-1"),
        ({"country": "DE", "city": "Berlin 10"}, f"{POB}.city", "digits"),
        ({"country": "DE", "city": "C" * 61}, f"{POB}.city", "longer than 60"),
    ],
)
def test_place_of_birth_refused(changes: dict[str, str], path: str, reason: str) -> None:
    assert_refused(with_pob(**changes), path, reason)


# --- messages never quote the subject's SSN, name or date of birth -----------------------------------


@pytest.mark.parametrize(
    "ssn",
    ["078-05-1120", "000-12-3456", "666-55-4444", "987-65-4321", "123-00-4567", "123-45-0000", "12345678"],
)
def test_messages_never_carry_the_ssn(ssn: str) -> None:
    found = violations(with_ids(ssn=ssn))
    digits = ssn.replace("-", "")
    for violation in found:
        assert ssn not in violation.description
        assert digits not in violation.description
        if not digits.endswith("0000"):  # "serial 0000 is never issued" names the rule, not the number
            assert digits[-4:] not in violation.description


@pytest.mark.parametrize(
    "changes",
    [
        {"surname": "Zzyzx4"},
        {"surname": "Qwerty@Zzyzx"},
        {"given_name": "Bartholomew" * 6},
        {"middle_name": "Xq\x00"},
        {"suffix": "Esquire"},
    ],
)
def test_messages_never_carry_the_name(changes: dict[str, str]) -> None:
    found = violations(with_name(**changes))
    assert found
    (value,) = changes.values()
    for violation in found:
        assert value.lower() not in violation.description.lower()
        assert value.strip("\x00@4").lower() not in violation.description.lower()


def test_messages_never_carry_the_date_of_birth() -> None:
    (violation,) = violations(with_ids(date_of_birth=PartialDate(1971, 2, 30)))
    assert "1971" not in violation.description
    assert "30" not in violation.description


# --- checks used by queries -------------------------------------------------------------------------


def test_check_name() -> None:
    assert check_name(PersonName(" Smith ", "John"), prefix="q.name") == PersonName("Smith", "John")
    with pytest.raises(InvalidArgument) as raised:
        check_name(PersonName("Smith"), prefix="q.name", required_given=True)
    assert [v.field for v in raised.value.violations] == ["q.name.given_name"]


@pytest.mark.parametrize(
    ("name", "surname_required", "paths"),
    [
        (PersonName("Smith"), True, []),
        (PersonName("Smith", "J"), True, []),
        (PersonName("", "John"), False, []),
        (PersonName("", "John"), True, ["query.name.surname"]),
        (PersonName("Sm1th", "J0hn"), True, ["query.name.surname", "query.name.given_name"]),
        (PersonName("Smith", suffix="Esq"), True, ["query.name.suffix"]),
    ],
)
def test_check_query_name(name: PersonName, surname_required: bool, paths: list[str]) -> None:
    if not paths:
        assert check_query_name(name, "query.name", surname_required=surname_required).surname == name.surname
        return
    with pytest.raises(InvalidArgument) as raised:
        check_query_name(name, "query.name", surname_required=surname_required)
    assert [v.field for v in raised.value.violations] == paths


def test_check_identifiers_collects_all() -> None:
    ids = Identifiers(ssn="000-00-0001", date_of_birth=PartialDate(2099), place_of_birth=PlaceOfBirth("AE"))
    with pytest.raises(InvalidArgument) as raised:
        check_identifiers(ids, today=TODAY, prefix="query.identifiers")
    assert [v.field for v in raised.value.violations] == [
        "query.identifiers.ssn",
        "query.identifiers.date_of_birth",
        "query.identifiers.place_of_birth.us_state",
    ]
