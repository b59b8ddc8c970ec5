"""The head codec (indexer.codec_head): a subject in the compact form ranking reads, and back, exactly."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from indexer import codec_head
from indexer.analysis import ANALYSIS_TAG, analyze
from indexer.codec import tracing_from_json, tracing_to_json
from indexer.codec_head import analyses_from_text, head_fields, head_from_text, head_to_text
from indexer.demo import generate_tracings
from indexer.model import Identifiers, PartialDate, PersonName, PlaceOfBirth, Subject, SubjectRole

# Any text, the separators of the compact form (US, RS, GS, FS) among the likely characters.
_text = st.text(alphabet=st.one_of(st.sampled_from("\x1c\x1d\x1e\x1f-' A"), st.characters(exclude_categories=["Cs"])))
_names = st.builds(PersonName, _text, _text, _text, _text)
_dates = st.builds(PartialDate, st.integers(0, 9999), st.integers(0, 12), st.integers(0, 31)).map(
    lambda d: PartialDate.parse(d.iso())  # what a stored date can be: the codecs keep its ISO form
)
_subjects = st.builds(
    Subject,
    _names,
    st.lists(_names, max_size=3).map(tuple),
    st.sampled_from(SubjectRole),
    st.builds(Identifiers, _text, st.none() | _dates, st.none() | st.builds(PlaceOfBirth, _text, _text, _text)),
)


@given(_subjects)
def test_a_subject_reads_back_exactly(subject: Subject) -> None:
    assert head_from_text(head_to_text(subject)) == subject
    assert head_from_text(head_to_text(subject, analysed=False)) == subject


@given(_subjects)
def test_the_stored_analysis_is_what_analyze_gives(subject: Subject) -> None:
    fields = head_fields(head_to_text(subject))
    if fields is None:  # the JSON form carries no analysis
        return
    assert analyses_from_text(fields[5]) == tuple(analyze(name) for name in subject.all_names())


def test_no_subject_is_the_empty_text() -> None:
    assert head_to_text(None) == ""
    assert head_from_text("") is None


def test_the_plain_form_is_fields_joined_by_unit_separators() -> None:
    subject = Subject(
        PersonName("Whitfield", "Harold", "J"),
        (PersonName("Whitfeld", "Harry"),),
        SubjectRole.VICTIM,
        Identifiers("318524471", PartialDate(1971, 4), PlaceOfBirth("VA", "", "Norfolk")),
    )
    text = head_to_text(subject, analysed=False)
    assert text.split("\x1f") == [
        "VICTIM", "318524471", "1971-04", "VA\x1e\x1eNorfolk",
        "Whitfield", "Harold", "J", "", "Whitfeld", "Harry", "", "",
    ]  # fmt: skip
    # Then, after FS, the analysis: its tag and ten fields a name.
    plain, analysis = head_to_text(subject).split("\x1c")
    assert plain == text
    assert analysis.split("\x1f") == [
        ANALYSIS_TAG,
        "WHITFIELD", "WHITFIELD", "HAROLD", "HAROLD", "J", "", "WATFALD", "WTFLT", "HARALD", "HRLT",
        "WHITFELD", "WHITFELD", "HARRY", "HAROLD\x1eHARRISON\x1eHARRY\x1eHENRY", "", "",
        "WATFALD", "WTFLT", "HARY", "HR",
    ]  # fmt: skip
    bare = Subject(PersonName("Moore"))
    assert head_to_text(bare, analysed=False) == "SUBJECT\x1f\x1f\x1f\x1fMoore\x1f\x1f\x1f"
    assert head_from_text(head_to_text(bare)) == bare
    # A place of birth with every part empty is still a place, not none.
    somewhere = Subject(PersonName("Moore"), identifiers=Identifiers(place_of_birth=PlaceOfBirth()))
    assert head_from_text(head_to_text(somewhere)) == somewhere


def test_a_value_holding_a_separator_takes_the_json_form() -> None:
    for subject in (
        Subject(PersonName("Sep\x1farate")),
        Subject(PersonName("Moore"), identifiers=Identifiers(place_of_birth=PlaceOfBirth("", "X\x1eY", ""))),
        Subject(PersonName("Moore"), (PersonName("\x1d"),), identifiers=Identifiers("1\x1e")),
        Subject(PersonName("Moore", "Fi\x1cle")),  # FS would begin the analysis early
    ):
        text = head_to_text(subject)
        assert text.startswith("\x1d")
        assert head_from_text(text) == subject


def test_the_head_of_every_demo_tracing_is_its_decoded_subject() -> None:
    """What the stores compare: the subject from the head equals the subject from the full body."""
    for tracing in generate_tracings(2_000, seed=11, today=dt.date(2026, 1, 15)):
        assert head_from_text(head_to_text(tracing.subject)) == tracing_from_json(tracing_to_json(tracing)).subject


def test_names_of_every_kind_read_their_stored_analysis_back() -> None:
    names = [
        PersonName("de la Cruz", "María José"), PersonName("Smith-Jones", "Bill", "Q", "III"),
        PersonName("O'Brien", "Jon"), PersonName("Van der Berg Jr", "Hans"), PersonName("Nguyễn", "Văn"),
        PersonName("Moore"), PersonName("", "Cher"), PersonName("Le", "B", "J"), PersonName("McDonald", "Peggy"),
    ]  # fmt: skip
    subject = Subject(names[0], tuple(names[1:]))
    fields = head_fields(head_to_text(subject))
    assert fields is not None
    assert analyses_from_text(fields[5]) == tuple(analyze(name) for name in names)
    for tracing in generate_tracings(2_000, seed=11, today=dt.date(2026, 1, 15)):
        if tracing.subject is not None:
            fields = head_fields(head_to_text(tracing.subject))
            assert fields is not None
            assert analyses_from_text(fields[5]) == tuple(analyze(name) for name in tracing.subject.all_names())


def test_an_analysis_under_another_tag_or_none_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    subject = Subject(PersonName("Whitfield", "Harold"))
    stored = head_to_text(subject)
    fields = head_fields(stored)
    assert fields is not None and fields[5].startswith(ANALYSIS_TAG)
    # The code or a package it reads changed since the head was written: the name is analysed afresh.
    monkeypatch.setattr(codec_head, "_CURRENT", "ffffff\x1f")
    assert head_fields(stored) == [*fields[:5], ""]
    assert head_from_text(stored) == subject
    # A head written without it (or before it was stored) has none.
    assert head_fields(head_to_text(subject, analysed=False)) == [*fields[:5], ""]
