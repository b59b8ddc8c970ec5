"""The fast JSON writer of stored tracings (indexer.codec._written) must write what the reference
encoder (_encoded, dicts through json) writes, byte for byte: stored bodies are read back by
tracing_from_json and compared by the OpenSearch backend, so any drift would corrupt them."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indexer import codec
from indexer.model import (
    ClearanceDetails,
    ClearanceLevel,
    FileDetails,
    Identifiers,
    ImpersonalTitleDetails,
    ImpersonalTitleKind,
    NacHistoryDetails,
    NacOutcome,
    NacPendingDetails,
    OpenCaseDetails,
    PartialDate,
    PersonName,
    PlaceOfBirth,
    Subject,
    SubjectCategory,
    SubjectRole,
    Tracing,
    TracingKey,
)

_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=12)
_dates = st.none() | st.builds(PartialDate, st.integers(-5, 10000), st.integers(0, 13), st.integers(0, 32))
_names = st.builds(PersonName, _text, _text, _text, _text)
_levels = st.none() | st.sampled_from(ClearanceLevel)
_subjects = st.builds(
    Subject,
    _names,
    st.lists(_names, max_size=2).map(tuple),
    st.sampled_from(SubjectRole),
    st.builds(Identifiers, _text, _dates, st.none() | st.builds(PlaceOfBirth, _text, _text, _text)),
)
_details = st.one_of(
    st.builds(FileDetails, _text, st.integers(-(10**20), 10**20), _text),
    st.builds(OpenCaseDetails, _text, st.integers(), _text),
    st.builds(NacPendingDetails, _text, _text, _text),
    st.builds(
        NacHistoryDetails,
        _dates,
        st.lists(_text, max_size=3).map(tuple),
        st.none() | st.sampled_from(NacOutcome),
        _text,
    ),
    st.builds(
        ClearanceDetails,
        _dates,
        _levels,
        _levels,
        _dates,
        _text,
        _dates,
        st.none() | st.sampled_from(SubjectCategory),
        _dates,
        st.lists(_text, max_size=3).map(tuple),
    ),
    st.builds(
        ImpersonalTitleDetails, _text, st.none() | st.sampled_from(ImpersonalTitleKind), _text, _text, st.integers()
    ),
)
_tracings = st.builds(
    Tracing, st.builds(TracingKey, _text, _text), st.integers(-(2**70), 2**70), st.none() | _subjects, _details
)


@settings(max_examples=1500, suppress_health_check=list(HealthCheck), deadline=None)
@given(_tracings)
def test_the_fast_writer_writes_what_the_reference_encoder_writes(tracing: Tracing) -> None:
    kind, details = tracing.type, tracing.details
    assert kind is not None and details is not None
    expected = codec._encoded(tracing, kind, details)
    assert codec.tracing_to_json(tracing) == expected
    assert codec._written(tracing, kind, details) == expected
