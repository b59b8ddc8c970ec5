"""The head codec (indexer.codec_head): a subject in the compact form ranking reads, and back, exactly."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from indexer.codec import tracing_from_json, tracing_to_json
from indexer.codec_head import head_from_text, head_to_text
from indexer.demo import generate_tracings
from indexer.model import Identifiers, PartialDate, PersonName, PlaceOfBirth, Subject, SubjectRole

# Any text, the separators of the compact form (US, RS, GS) among the likely characters.
_text = st.text(alphabet=st.one_of(st.sampled_from("\x1d\x1e\x1f-' A"), st.characters(exclude_categories=["Cs"])))
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
    text = head_to_text(subject)
    assert text.split("\x1f") == [
        "VICTIM", "318524471", "1971-04", "VA\x1e\x1eNorfolk",
        "Whitfield", "Harold", "J", "", "Whitfeld", "Harry", "", "",
    ]  # fmt: skip
    bare = Subject(PersonName("Moore"))
    assert head_to_text(bare) == "SUBJECT\x1f\x1f\x1f\x1fMoore\x1f\x1f\x1f"
    assert head_from_text(head_to_text(bare)) == bare
    # A place of birth with every part empty is still a place, not none.
    somewhere = Subject(PersonName("Moore"), identifiers=Identifiers(place_of_birth=PlaceOfBirth()))
    assert head_from_text(head_to_text(somewhere)) == somewhere


def test_a_value_holding_a_separator_takes_the_json_form() -> None:
    for subject in (
        Subject(PersonName("Sep\x1farate")),
        Subject(PersonName("Moore"), identifiers=Identifiers(place_of_birth=PlaceOfBirth("", "X\x1eY", ""))),
        Subject(PersonName("Moore"), (PersonName("\x1d"),), identifiers=Identifiers("1\x1e")),
    ):
        text = head_to_text(subject)
        assert text.startswith("\x1d")
        assert head_from_text(text) == subject


def test_the_head_of_every_demo_tracing_is_its_decoded_subject() -> None:
    """What the stores compare: the subject from the head equals the subject from the full body."""
    for tracing in generate_tracings(2_000, seed=11, today=dt.date(2026, 1, 15)):
        assert head_from_text(head_to_text(tracing.subject)) == tracing_from_json(tracing_to_json(tracing)).subject
