"""The table of Spanish given names' short forms (indexer/given_hypocorisms.py): what it relates, what it
leaves apart on purpose, and that a released version never changes (fuzzy-12's scores depend on it)."""

from __future__ import annotations

import hashlib

import pytest

from indexer.given_hypocorisms import _VERSIONS, TABLE_VERSION, forms_of, full_forms, related, touches
from indexer.normalize import exact_key


def _lines(version: int) -> list[tuple[str, list[str]]]:
    return [(full, shorts.split()) for full, _, shorts in (line.partition(":") for line in _VERSIONS[version])]


@pytest.mark.parametrize("version", sorted(_VERSIONS))
def test_every_name_is_an_exact_key_and_no_line_repeats_a_form(version: int) -> None:
    fulls = [full for full, _ in _lines(version)]
    assert len(fulls) == len(set(fulls)), "one line per full name"
    for full, shorts in _lines(version):
        assert shorts and len(shorts) == len(set(shorts)), full
        for name in (full, *shorts):
            assert name == exact_key(name) and name.isalpha() and name.isascii(), name
        assert full not in shorts


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("PEPE", {"PEPE", "JOSE"}),
        ("LUPE", {"LUPE", "GUADALUPE"}),
        ("BETO", {"BETO", "ALBERTO", "ROBERTO", "HUMBERTO", "NORBERTO"}),
        ("NANDO", {"NANDO", "FERNANDO", "HERNANDO"}),
        ("JOSE", {"JOSE"}),  # a full name stands for itself only
        ("WILLIAM", {"WILLIAM"}),  # not in the table
    ],
)
def test_full_forms(given: str, expected: set[str]) -> None:
    assert full_forms(given) == expected


@pytest.mark.parametrize(
    ("a", "b"),
    [("PEPE", "JOSE"), ("CHEPE", "PEPE"), ("PACO", "FRANCISCO"), ("PANCHO", "PACO"), ("LUPE", "GUADALUPE"),
     ("CHEMA", "JOSEMARIA"), ("BETO", "ROBERTO"), ("TONO", "ANTONIO"), ("PAQUITA", "FRANCISCA")],
)  # fmt: skip
def test_short_and_full_forms_of_one_name_are_related_both_ways(a: str, b: str) -> None:
    assert b in related(a) and a in related(b)
    assert not forms_of(frozenset({a})).isdisjoint(forms_of(frozenset({b})))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("ALBERTO", "ROBERTO"),  # two full names of BETO: neither a form of the other
        ("FERNANDO", "HERNANDO"),
        ("JUAN", "JOHN"),  # translations are other names
        ("GUILLERMO", "WILLIAM"),
        ("JOSE", "JOSEPH"),
        ("PACO", "FRANCISCA"),  # a man's short form and the woman's name (PACA, PAQUITA are hers)
        ("CHELO", "MARCELO"),  # CHELO is CONSUELO's
        ("TITO", "ALBERTO"),  # the short form of too many names
        ("CHELA", "GRACIELA"),  # GRACIELA's, MARCELA's, ANGELA's
        ("CHAVA", "SALVADOR"),  # also the Hebrew women's name
        ("ANITA", "ANA"),  # a diminutive that keeps the stem: not listed
    ],
)
def test_names_kept_apart(a: str, b: str) -> None:
    assert b not in related(a) and a not in related(b)
    assert forms_of(frozenset({a})).isdisjoint(forms_of(frozenset({b})))


def test_related_is_symmetric_over_the_whole_table() -> None:
    names = {name for full, shorts in _lines(TABLE_VERSION) for name in (full, *shorts)}
    for a in names:
        assert a not in related(a)
        for b in related(a):
            assert a in related(b), (a, b)
    assert related("WILLIAM") == frozenset()


def test_touches_and_the_forms_of_the_names_written() -> None:
    assert touches(frozenset({"JOSE"})) and touches(frozenset({"MARIAGUADALUPE", "MARIA", "GUADALUPE"}))
    assert not touches(frozenset({"WILLIAM", "BILL"}))
    # A given name of several words: each word's forms (MARIA GUADALUPE is a GUADALUPE, so a LUPE's).
    assert forms_of(frozenset({"MARIAGUADALUPE", "MARIA", "GUADALUPE"})) & forms_of(frozenset({"LUPE"}))


@pytest.mark.parametrize("version", [0, 2, -1])
def test_an_unknown_version_is_refused(version: int) -> None:
    with pytest.raises(ValueError, match=rf"version {version} \(known: \[1\]\)"):
        full_forms("PEPE", version)


def test_released_version_1_is_unchanged() -> None:
    """Scores depend on the table: version 1 is never edited. A new form goes into a new version."""
    canonical = "\n".join(sorted(f"{full}: {' '.join(sorted(shorts))}" for full, shorts in _lines(1)))
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    assert (len(_lines(1)), digest) == (42, "fb285b826ff098a01ceb688a24076098a3f30d3de8f14650a1e6a4e475943a68")
