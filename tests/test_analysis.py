"""Name analysis (indexer.analysis): the parts a matcher compares, table by table."""

from __future__ import annotations

import jellyfish
import pytest

from indexer.analysis import NameAnalysis, analyze, nickname_canonicals
from indexer.model import PersonName


@pytest.mark.parametrize(
    ("surname", "whole", "parts"),
    [
        # particles, spaced: dropped from the parts, kept in the whole
        ("de la Cruz", "DELACRUZ", ("DELACRUZ", "CRUZ")),
        ("De La Cruz", "DELACRUZ", ("DELACRUZ", "CRUZ")),
        ("Van der Berg", "VANDERBERG", ("VANDERBERG", "BERG")),
        ("von Braun", "VONBRAUN", ("VONBRAUN", "BRAUN")),
        ("del Rio", "DELRIO", ("DELRIO", "RIO")),
        ("Le Blanc", "LEBLANC", ("LEBLANC", "BLANC")),
        ("dos Santos", "DOSSANTOS", ("DOSSANTOS", "SANTOS")),
        ("al-Hassan", "ALHASSAN", ("ALHASSAN", "HASSAN")),
        # compound and hyphenated: every part
        ("Smith-Jones", "SMITHJONES", ("SMITHJONES", "SMITH", "JONES")),
        ("Garcia Lopez", "GARCIALOPEZ", ("GARCIALOPEZ", "GARCIA", "LOPEZ")),
        ("Garcia y Lopez", "GARCIAYLOPEZ", ("GARCIAYLOPEZ", "GARCIA", "LOPEZ")),
        ("Ortega-de la Fuente", "ORTEGADELAFUENTE", ("ORTEGADELAFUENTE", "ORTEGA", "FUENTE")),
        # one word: only the whole, however it looks
        ("Smith", "SMITH", ("SMITH",)),
        ("Delacruz", "DELACRUZ", ("DELACRUZ",)),
        ("Vanderberg", "VANDERBERG", ("VANDERBERG",)),
        ("McDonald", "MCDONALD", ("MCDONALD",)),  # Mc/Mac/O' are not split off
        ("O'Brien", "OBRIEN", ("OBRIEN",)),
        # a particle that is the last word is the name itself
        ("Le", "LE", ("LE",)),
        ("Van", "VAN", ("VAN",)),
        ("", "", ()),
    ],
)
def test_surname_parts(surname: str, whole: str, parts: tuple[str, ...]) -> None:
    analysis = analyze(PersonName(surname, "Ann"))
    assert analysis.surname == whole
    assert analysis.surname_parts == parts


@pytest.mark.parametrize(
    ("surname", "not_a_part"),
    [
        ("McDonald", "DONALD"),
        ("MacDonald", "DONALD"),
        ("de la Cruz", "DE"),
        ("de la Cruz", "LA"),
        ("Van der Berg", "VAN"),
        ("Van der Berg", "DER"),
        ("O'Brien", "BRIEN"),
    ],
)
def test_surname_parts_negatives(surname: str, not_a_part: str) -> None:
    assert not_a_part not in analyze(PersonName(surname, "Ann")).surname_parts


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("McDonald", "MacDonald"),
        ("Mcdonald", "MACDONALD"),
        ("O'Brien", "OBrien"),
        ("de la Cruz", "DELACRUZ"),
        ("Catherine", "Katherine"),
        ("Phillips", "Filips"),
    ],
)
def test_spellings_meet_phonetically(first: str, second: str) -> None:
    one, other = analyze(PersonName(first, "Ann")), analyze(PersonName(second, "Ann"))
    assert one.surname_nysiis == other.surname_nysiis or one.surname_metaphone == other.surname_metaphone


@pytest.mark.parametrize(
    ("name", "surname", "given", "middle"),
    [
        (PersonName("M\u00fcller", "Jos\u00e9"), "MULLER", "JOSE", ""),
        (PersonName("Nguy\u1ec5n", "Th\u1ecb", "Lan"), "NGUYEN", "THI", "LAN"),
        (PersonName("\u0418\u0432\u0430\u043d\u043e\u0432", "\u0418\u0432\u0430\u043d"), "IVANOV", "IVAN", ""),
        (PersonName("Bront\u00eb", "Zo\u00eb", "\u00c9lise"), "BRONTE", "ZOE", "ELISE"),
        (PersonName("\u0141ukasiewicz", "\u0141ukasz"), "LUKASIEWICZ", "LUKASZ", ""),
    ],
)
def test_diacritics_and_scripts_transliterate(name: PersonName, surname: str, given: str, middle: str) -> None:
    analysis = analyze(name)
    assert (analysis.surname, analysis.given, analysis.middle) == (surname, given, middle)
    plain = analyze(PersonName(surname.title(), given.title(), middle.title()))
    assert (analysis.surname_nysiis, analysis.given_metaphone) == (plain.surname_nysiis, plain.given_metaphone)


@pytest.mark.parametrize(
    ("name", "surname", "given", "suffix"),
    [
        (PersonName("Smith Jr", "John"), "SMITH", "JOHN", "JR"),
        (PersonName("Smith, Jr.", "John"), "SMITH", "JOHN", "JR"),
        (PersonName("Smith III", "John"), "SMITH", "JOHN", "III"),
        (PersonName("Smith 3rd", "John"), "SMITH", "JOHN", "III"),
        (PersonName("Smith Senior", "John"), "SMITH", "JOHN", "SR"),
        (PersonName("Smith", "John IV"), "SMITH", "JOHN", "IV"),
        (PersonName("Smith", "John", "", "Jr."), "SMITH", "JOHN", "JR"),
        (PersonName("Smith", "John", "", "2nd"), "SMITH", "JOHN", "II"),
        # the explicit suffix field wins over a peeled one
        (PersonName("Smith Jr", "John", "", "III"), "SMITH", "JOHN", "III"),
        # negatives: a one-word field is never peeled; a suffix-like word inside a name stays
        (PersonName("Junior", "Ann"), "JUNIOR", "ANN", ""),
        (PersonName("Senior", "Ann"), "SENIOR", "ANN", ""),
        (PersonName("Vi", "Ann"), "VI", "ANN", ""),
        (PersonName("Smith", "Jr"), "SMITH", "JR", ""),
        (PersonName("Junior Smith", "Ann"), "JUNIORSMITH", "ANN", ""),
    ],
)
def test_suffix_is_peeled(name: PersonName, surname: str, given: str, suffix: str) -> None:
    analysis = analyze(name)
    assert (analysis.surname, analysis.given, analysis.suffix) == (surname, given, suffix)


@pytest.mark.parametrize(
    ("given", "form"),
    [
        ("Bill", "WILLIAM"),
        ("Billy", "WILLIAM"),
        ("Peggy", "MARGARET"),
        ("Bob", "ROBERT"),
        ("Jim", "JAMES"),
        ("Liz", "ELIZABETH"),
        ("Jack", "JOHN"),
        ("Kate", "KATHERINE"),
        ("bill", "WILLIAM"),  # case does not matter
    ],
)
def test_nickname_has_full_form(given: str, form: str) -> None:
    forms = analyze(PersonName("Doe", given)).given_forms
    assert form in forms
    assert given.upper() in forms


@pytest.mark.parametrize(
    ("given", "not_a_form"),
    [
        ("John", "JUAN"),  # the nicknames package does not relate them: neither do we
        ("Juan", "JOHN"),
        ("Robert", "BOB"),  # a full name does not list its nicknames
        ("Robert", "BILL"),  # nor the package's shorter "canonicals" (nicknames in disguise)
        ("William", "BILL"),
        ("John", "JON"),
        ("Margaret", "PEGGY"),
        ("Maria", "MARY"),
    ],
)
def test_nickname_negatives(given: str, not_a_form: str) -> None:
    assert not_a_form not in analyze(PersonName("Doe", given)).given_forms


def test_nicknames_package_does_not_relate_juan_and_john() -> None:
    assert "JUAN" not in nickname_canonicals("JOHN")
    assert nickname_canonicals("JUAN") == frozenset()


def test_nickname_forms_meet_from_either_side() -> None:
    """Both sides carry their forms, so a nickname and its full name always share one."""
    for nickname, full in [("Bill", "William"), ("Peggy", "Margaret"), ("Bill", "Will"), ("Jim", "James")]:
        one = analyze(PersonName("Doe", nickname)).given_forms
        other = analyze(PersonName("Doe", full)).given_forms
        assert one & other, (nickname, full)


@pytest.mark.parametrize(
    ("given", "forms"),
    [
        ("Juan", {"JUAN"}),
        ("", set()),
        ("J", {"J"}),
        ("Mary Ann", {"MARYANN", "MARY"}),  # a two-word given name also lists its first word
    ],
)
def test_given_forms_contain(given: str, forms: set[str]) -> None:
    result = analyze(PersonName("Doe", given)).given_forms
    assert forms <= result
    if not given:
        assert result == frozenset()
    if given == "Juan":
        assert result == frozenset({"JUAN"})


@pytest.mark.parametrize(
    ("name", "initials"),
    [
        (PersonName("Smith", "Harold", "James"), "HJ"),
        (PersonName("Smith", "Harold"), "H"),
        (PersonName("Smith", "", "James"), "J"),
        (PersonName("Smith"), ""),
        (PersonName("Smith", "h.", "j."), "HJ"),
        (PersonName("Smith", "\u00c9mile", "\u00d6rjan"), "EO"),
    ],
)
def test_initials(name: PersonName, initials: str) -> None:
    assert analyze(name).initials == initials


def test_phonetic_codes_are_jellyfish() -> None:
    analysis = analyze(PersonName("Schmidt", "Katherine"))
    assert analysis.surname_nysiis == jellyfish.nysiis("SCHMIDT")
    assert analysis.surname_metaphone == jellyfish.metaphone("SCHMIDT")
    assert analysis.given_nysiis == jellyfish.nysiis("KATHERINE")
    assert analysis.given_metaphone == jellyfish.metaphone("KATHERINE")


def test_empty_name_analyses_to_empty_fields() -> None:
    assert analyze(PersonName("")) == NameAnalysis(
        surname="",
        surname_parts=(),
        given="",
        given_forms=frozenset(),
        given_word_forms=frozenset(),
        given_words=(),
        middle="",
        initials="",
        suffix="",
        surname_nysiis="",
        surname_metaphone="",
        given_nysiis="",
        given_metaphone="",
    )


@pytest.mark.parametrize(
    ("given", "words"),
    [
        ("Thi Lan", {"THILAN", "THI", "LAN"}),  # a Vietnamese name, known as LAN
        ("Mary Ann", {"MARYANN", "MARY", "ANN"}),
        ("María de los Ángeles", {"MARIADELOSANGELES", "MARIA", "ANGELES"}),  # particles are no words of it
        ("Harold", {"HAROLD"}),  # one word: its forms, nothing more
    ],
)
def test_every_word_of_a_given_name_of_several_is_a_form_of_it(given: str, words: set[str]) -> None:
    analysis = analyze(PersonName("Nguyen", given))
    assert words <= analysis.given_word_forms and analysis.given_forms <= analysis.given_word_forms
    assert {"DE", "LOS", "NANCY", "ROXANNE"}.isdisjoint(analysis.given_word_forms - analysis.given_forms)
    if " " not in given:
        assert analysis.given_word_forms == analysis.given_forms


def test_analyze_is_cached() -> None:
    name = PersonName("Whitfield", "Harold", "James")
    assert analyze(name) is analyze(PersonName("Whitfield", "Harold", "James"))
