"""`dcii search`'s table: the index's data shown as it is, and what the answer says of itself shown too."""

from __future__ import annotations

import pytest
from rich.console import Console

from dcii.cli.query import MARKING, POSSIBLE, TRUNCATED, _render
from dcii.v1 import search_pb2, tracing_pb2


def _shown(response: search_pb2.SearchResponse, request: search_pb2.SearchRequest | None = None) -> str:
    console = Console(record=True, width=240)
    _render(request or search_pb2.SearchRequest(mode=search_pb2.SEARCH_MODE_FUZZY), response, console)
    return console.export_text()


def _disputed_hit(location: str, surname: str) -> search_pb2.Hit:
    hit = search_pb2.Hit(type=tracing_pb2.TRACING_TYPE_FILE, score=1.0)
    hit.tracing.key.agency, hit.tracing.key.record_number = "NCIS", "R-[b]004"
    hit.tracing.subject.name.surname, hit.tracing.subject.name.given_name = surname, "Alice"
    hit.explanation.matched_name = "primary"
    hit.dispute.statement_location = location
    return hit


def test_the_data_is_not_read_as_markup() -> None:
    """A statement location with "[/2026]" ended the command with rich's MarkupError, after the server had
    answered and accounted the disclosure; "[see letter]" vanished from the cell."""
    response = search_pb2.SearchResponse(
        hits=[
            _disputed_hit("Privacy Office file [/2026] 0002", "Quintero"),
            _disputed_hit("PO-2026-0001 [see letter]", "[bold]Ng"),
        ]
    )
    shown = _shown(response)
    assert "DISPUTED: Privacy Office file [/2026] 0002" in shown
    assert "DISPUTED: PO-2026-0001 [see letter]" in shown
    assert "[bold]Ng" in shown and "R-[b]004" in shown
    assert shown.count(MARKING) == 2


def test_an_answer_cut_short_says_so_with_hits_or_without() -> None:
    """An empty page whose candidates were cut read "no records": a clean check, where the index said a
    true match may be missing."""
    empty = _shown(search_pb2.SearchResponse(candidates_truncated=True))
    assert empty.index(TRUNCATED) < empty.index("no records")
    with_hits = _shown(search_pb2.SearchResponse(hits=[_disputed_hit("PO-1", "Quintero")], candidates_truncated=True))
    assert TRUNCATED in with_hits
    assert TRUNCATED not in _shown(search_pb2.SearchResponse())


def test_a_pid_that_differs_is_shown_beside_the_score() -> None:
    hit = _disputed_hit("PO-1", "Quintero")
    hit.ClearField("dispute")
    hit.explanation.features.add(feature="ssn", agreement=search_pb2.AGREEMENT_DISAGREE)
    hit.explanation.features.add(feature="date_of_birth", agreement=search_pb2.AGREEMENT_EXACT)
    shown = _shown(search_pb2.SearchResponse(hits=[hit]))
    assert "differs: ssn" in shown and "date_of_birth" not in shown


def test_the_threshold_a_ranked_answer_stops_at_is_shown() -> None:
    hit = _disputed_hit("PO-1", "Quintero")
    shown = _shown(search_pb2.SearchResponse(hits=[hit], matcher_version="fuzzy-5", threshold=0.0123))
    assert "(matcher fuzzy-5, scores at or above 0.0123)" in shown
    assert "scores at or above" not in _shown(search_pb2.SearchResponse(hits=[hit], matcher_version="exact-1"))


def test_a_ranked_hit_under_one_half_is_marked_possible() -> None:
    """fuzzy-8 lists FUZZY hits from 0.25: a hit at 0.3 is more likely someone else, and says so."""
    likely, possible = _disputed_hit("PO-1", "Smith"), _disputed_hit("PO-2", "Smith")
    likely.score, possible.score = 0.65, 0.3
    shown = _shown(search_pb2.SearchResponse(hits=[likely, possible], matcher_version="fuzzy-8", threshold=0.25))
    assert shown.count(POSSIBLE) == 2  # the hit's cell and the legend
    assert "under 0.5, more likely another person" in shown
    above = _shown(search_pb2.SearchResponse(hits=[likely], matcher_version="fuzzy-8", threshold=0.25))
    assert POSSIBLE not in above
    exact = _disputed_hit("PO-3", "Smith")
    assert POSSIBLE not in _shown(search_pb2.SearchResponse(hits=[exact], matcher_version="exact-1"))


def test_an_answer_says_how_close_the_best_record_under_its_threshold_came() -> None:
    """An empty FUZZY answer whose closest record scored just under the threshold is not a clean check."""
    empty = _shown(search_pb2.SearchResponse(matcher_version="fuzzy-8", threshold=0.25, best_below_threshold=0.14583))
    assert empty.index("scored 0.146: --min-score 0.145 shows it") < empty.index("no records")
    tiny = _shown(search_pb2.SearchResponse(matcher_version="fuzzy-8", threshold=0.25, best_below_threshold=1.23456e-4))
    assert "--min-score 0.000123 shows it" in tiny  # never 0, which asks for the default threshold again
    assert "closest record" not in _shown(search_pb2.SearchResponse(matcher_version="fuzzy-8", threshold=0.25))
    edge = _shown(search_pb2.SearchResponse(matcher_version="fuzzy-8", threshold=0.25, best_below_threshold=0.2499))
    assert "threshold (0.25) scored 0.2499" in edge  # not "0.25", the threshold itself
    for odd in (float("nan"), float("inf"), -0.5, 5e-324, 1.0):  # no server sends these; none ends the command
        assert "closest record under the threshold" in _shown(
            search_pb2.SearchResponse(matcher_version="fuzzy-8", threshold=0.25, best_below_threshold=odd)
        )


def _hit(surname: str = "Brown", score: float = 1.0) -> search_pb2.Hit:
    hit = search_pb2.Hit(type=tracing_pb2.TRACING_TYPE_FILE, score=score)
    hit.tracing.key.agency, hit.tracing.key.record_number = "DSS", "DSS-2018-002250"
    hit.tracing.subject.name.surname, hit.tracing.subject.name.given_name = surname, "Essie"
    hit.explanation.matched_name = "primary"
    return hit


def test_the_matched_column_names_the_alias_the_role_and_what_agrees_only_in_part() -> None:
    """An adjudicator's review: an SSN one digit off showed as "1.00 primary" (only --json said so); a victim's
    or a cross-reference's record read as the file's subject; "alias 1" did not say which name."""
    hit = _hit()
    hit.tracing.subject.role = tracing_pb2.SUBJECT_ROLE_VICTIM
    hit.tracing.subject.aliases.add(surname="Harrington", given_name="Joelle")
    hit.explanation.matched_name = "alias 1"
    hit.explanation.features.add(feature="ssn", agreement=search_pb2.AGREEMENT_PARTIAL)
    hit.explanation.features.add(feature="surname", agreement=search_pb2.AGREEMENT_EXACT)
    hit.dispute.statement_location, hit.dispute.summary = "PO-2026-0009", "the subject disputes the date of birth"
    shown = _shown(search_pb2.SearchResponse(hits=[hit]))
    assert "alias 1: Joelle Harrington" in shown
    assert "role: VICTIM" in shown and "in part: ssn" in shown and "surname" not in shown.split("in part:")[1]
    assert "DISPUTED: PO-2026-0009" in shown and "the subject disputes the date of birth" in shown
    plain = _shown(search_pb2.SearchResponse(hits=[_hit()]))
    assert "role:" not in plain and "in part:" not in plain and "alias" not in plain


def test_the_closest_record_under_the_threshold_is_said_only_where_it_tells_something() -> None:
    """Printed above a page of 1.00 hits, "the closest record under the threshold scored 0.000807" read like a
    warning (an adjudicator's review)."""
    strong = search_pb2.SearchResponse(hits=[_hit()], threshold=0.9, best_below_threshold=0.000807)
    assert "closest record" not in _shown(strong)
    close = search_pb2.SearchResponse(hits=[_hit()], threshold=0.9, best_below_threshold=0.85)
    assert "closest record under the threshold (0.9) scored 0.85" in _shown(close)
    weak = search_pb2.SearchResponse(hits=[_hit(score=0.3)], threshold=0.25, best_below_threshold=0.01)
    assert "closest record" in _shown(weak)  # the hits themselves are more likely someone else


@pytest.mark.parametrize(
    ("mode", "name", "hint"),
    [
        (search_pb2.SEARCH_MODE_EXACT, {"surname": "Smith"}, "asked as a person known by one name"),
        (search_pb2.SEARCH_MODE_NAME_ONLY, {"given_name": "John"}, "asked as a person known by one name"),
        (search_pb2.SEARCH_MODE_EXACT, {"surname": "Arington", "given_name": "Stephen"}, "exact names only"),
    ],
)
def test_an_empty_exact_answer_says_what_it_did_not_look_for(
    mode: search_pb2.SearchMode.ValueType, name: dict[str, str], hint: str
) -> None:
    """A forgotten --given, or a misspelt name beside the right SSN, answered a clean-looking "no records"."""
    request = search_pb2.SearchRequest(mode=mode, name=tracing_pb2.PersonName(**name))
    shown = _shown(search_pb2.SearchResponse(), request)
    assert shown.index(hint) < shown.index("no records")
    assert hint not in _shown(search_pb2.SearchResponse(hits=[_hit()]), request)
    fuzzy = search_pb2.SearchRequest(mode=search_pb2.SEARCH_MODE_FUZZY, name=tracing_pb2.PersonName(**name))
    assert hint not in _shown(search_pb2.SearchResponse(), fuzzy)
