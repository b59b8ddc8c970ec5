"""Name normalization: the table of spellings that must meet under exact matching."""

from __future__ import annotations

import pytest

from indexer.model import PersonName
from indexer.normalize import SUFFIXES, NameKey, canonical_suffix, exact_key, fold, name_key, title_key


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("smith", "SMITH"),
        ("  de  la   Cruz ", "DE LA CRUZ"),
        ("De-La-Cruz", "DE LA CRUZ"),
        ("O'Brien", "OBRIEN"),
        ("O\u2019Brien", "OBRIEN"),  # typographic apostrophe
        ("\u02bbOkina", "OKINA"),  # Hawaiian okina: transliterated to a backtick, deleted like "'"
        ("St. John", "ST JOHN"),
        ("Smith,Jones/Brown", "SMITH JONES BROWN"),
        ("M\u00fcller", "MULLER"),
        ("Zo\u00eb", "ZOE"),
        ("Zoe\u0308", "ZOE"),  # decomposed diaeresis
        ("Nguy\u1ec5n", "NGUYEN"),
        ("\u0141ukasz", "LUKASZ"),
        ("Stra\u00dfe", "STRASSE"),
        ("\u0418\u0432\u0430\u043d\u043e\u0432", "IVANOV"),  # Cyrillic
        ("\u03a0\u03b1\u03c0\u03b1\u03b4\u03cc\u03c0\u03bf\u03c5\u03bb\u03bf\u03c2", "PAPADOPOYLOS"),  # Greek
        ("\t Mary\nAnn ", "MARY ANN"),
        ("", ""),
        ("-.'", ""),
    ],
)
def test_fold(text: str, folded: str) -> None:
    assert fold(text) == folded
    assert title_key(text) == folded


@pytest.mark.parametrize(
    ("spellings", "key"),
    [
        (["de la Cruz", "DELACRUZ", "De-La-Cruz", "de la cruz", "De La  Cruz", "de.la.cruz"], "DELACRUZ"),
        (["Smith-Jones", "Smith Jones", "SMITHJONES", "Smith\u2010Jones", "Smith\u2013Jones"], "SMITHJONES"),
        (["O'Brien", "O\u2019Brien", "O\u2018Brien", "OBrien", "O Brien"], "OBRIEN"),
        (["Col\u00b7lell", "Collell"], "COLLELL"),
        (["M\u00fcller", "Muller", "MULLER"], "MULLER"),
        (["Zo\u00eb", "Zoe", "Zoe\u0308"], "ZOE"),
        (["\u0418\u0432\u0430\u043d\u043e\u0432", "Ivanov"], "IVANOV"),
        (["\u0397\u03bb\u03af\u03b1\u03c2", "Ilias"], "ILIAS"),  # Greek
        (["", "  ", "-"], ""),
    ],
)
def test_exact_key_makes_spellings_meet(spellings: list[str], key: str) -> None:
    assert {exact_key(spelling) for spelling in spellings} == {key}


@pytest.mark.parametrize("text", ["de la Cruz", "O'Brien-Smythe", "  St.  John ", "M\u00fcller", "a/b,c"])
def test_exact_key_is_fold_without_spaces(text: str) -> None:
    assert exact_key(text) == fold(text).replace(" ", "")


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("JR", "JR"),
        ("Jr.", "JR"),
        ("jr", "JR"),
        ("Junior", "JR"),
        ("J.R.", "JR"),
        ("SR", "SR"),
        ("Sr.", "SR"),
        ("senior", "SR"),
        ("II", "II"),
        ("2nd", "II"),
        ("2ND", "II"),
        ("III", "III"),
        ("3rd", "III"),
        ("3d", "III"),
        ("IV", "IV"),
        ("4th", "IV"),
        ("V", "V"),
        ("5th", "V"),
        ("vi", "VI"),
        ("", ""),
        ("  ", ""),
        ("Esq.", "ESQ"),  # unknown: its fold, refused by the edit criteria
        ("Ph.D.", "PH D"),
    ],
)
def test_canonical_suffix(text: str, canonical: str) -> None:
    assert canonical_suffix(text) == canonical


def test_suffixes() -> None:
    assert frozenset({"JR", "SR", "II", "III", "IV", "V", "VI"}) == SUFFIXES
    assert "ESQ" not in SUFFIXES


def test_name_key() -> None:
    key = name_key(PersonName(surname="de la Cruz", given_name="Jos\u00e9", middle_name="M.", suffix="Jr."))
    assert key == NameKey(surname="DELACRUZ", given="JOSE", middle="M", suffix="JR")
    assert key == name_key(PersonName(surname="DELACRUZ", given_name="JOSE", middle_name="M", suffix="JR"))


def test_name_key_empty_parts() -> None:
    assert name_key(PersonName(surname="Smith")) == NameKey(surname="SMITH", given="", middle="", suffix="")


def test_title_key_keeps_words() -> None:
    assert title_key("Acme  Widgets, Inc. (Plant #2)") == "ACME WIDGETS INC PLANT 2"


def test_the_catalan_middle_dot_joins_and_the_hyphens_part() -> None:
    assert fold("Col\u00b7lell i Puig") == "COLLELL I PUIG"
    assert fold("Smith\u2010Jones") == fold("Smith\u2013Jones") == "SMITH JONES"


def test_a_titles_middle_dot_parts_words_as_when_it_was_keyed() -> None:
    """Titles took a middle dot before names did: one keyed then must still be found by its own title."""
    assert title_key("Col\u00b7legi d'Advocats") == "COL LEGI DADVOCATS"
