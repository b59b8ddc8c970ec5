"""The default threshold of a ranked query (when the query sets no `min_score`).

Per mode (`Matcher.thresholds`): FUZZY 0.5 (from fuzzy-8 0.25: at 0.5 a typo or a nickname in a common
name found nothing: docs/MATCHERS.md), PID_QUALIFIED 0.9, each a probability that the
candidate is the person sought. From fuzzy-5, a FUZZY query that gives one name part (a surname alone, a given name
alone: someone known by one name, or all the adjudicator has) has its own, because no such probability
reaches 0.5 for most names: one part is weak evidence, and a surname shared by thirty people makes each
of them about a one-in-thirty chance. With 0.5 the answer was empty, even for a record of exactly that
name, and read as a clean check (search review 2). Its threshold is relative to the name asked: the score
a record holding exactly that part would get (its other part not in the query), less
`Matcher.one_part_margin` bits (6: one or two edits, a close Jaro-Winkler likeness or a sound-alike pass,
and a typo in the query still finds the name it misspells, which a rarer-looking misspelling sets 2-3
bits lower; an unrelated name does not), and never above the mode's. So the answer is the records of that
name, its misspellings and sound-alikes, best first, however common the name. On FEBRL's name-only queries
that give one part (docs/BENCHMARKS.md), the true record is at or above it for 91% of FEBRL4's 332 (83%
of FEBRL3's 322), with 12 hits the median query of 5,000 records (3 bits: 87%, 6). From fuzzy-6 a query
whose given name is an initial alone ("TRUMAN, S") is thresholded the same way, relative to a record of
exactly that name: an initial is little more than the surname alone, and at 0.5 the query found nothing
where the surname alone found the record (a review of name handling).
"""

from __future__ import annotations

from dataclasses import replace

from indexer.model import FileDetails, Identifiers, PersonName, Subject, Tracing, TracingKey
from indexer.normalize import exact_key
from search_service.matching import compile_candidates, score_matrix, to_score
from search_service.matching_versions import Matcher

# Stands for the part the query lacks on the record it is compared with: whatever it holds, a part the
# query does not give compares as MISSING.
_OTHER_PART = "Placeholder"


def one_name_part(name: PersonName) -> bool:
    return bool(name.surname) != bool(name.given_name)


def initial_alone(name: PersonName) -> bool:
    """A surname with a given name of one letter ("S", "S."): an initial, not a name. Counted as the
    scorer reads it (its ASCII spelling): a Cyrillic or Greek letter that transliterates to two (Ж, ZH)
    is compared as a name by every matcher, and thresholded as one."""
    return bool(name.surname) and len(exact_key(name.given_name)) == 1


def default_threshold(scorer: Matcher, mode: str, name: PersonName) -> float:
    """The threshold of a `mode` query for `name` that sets none."""
    threshold = scorer.thresholds[mode]
    margin = scorer.one_part_margin
    if mode != "FUZZY" or margin is None:
        return threshold
    if scorer.initial_as_one_part and initial_alone(name):
        # A record of exactly the surname and that initial sets it, as for one part (a middle name the
        # query gives is not asked of it), but one whose given name has another initial stays under it,
        # unless the two sound alike (C, G, K and Q; S, X and Z: a few bits closer): TRUMAN, S is not
        # every TRUMAN. M sounds like no other initial (X, unlike M, stands in for M itself): the same
        # threshold for every initial.
        held = replace(name, middle_name="")
        other = "X" if exact_key(name.given_name) == "M" else "M"
        exact, another = _scores(scorer, name, [held, replace(held, given_name=other)])
        return min(threshold, to_score(max(exact - margin, another + _ABOVE)))
    if one_name_part(name):
        held = replace(name, given_name=_OTHER_PART) if name.surname else replace(name, surname=_OTHER_PART)
        [exact] = _scores(scorer, name, [held])
        return min(threshold, to_score(exact - margin))
    return threshold


# Bits over the score of a record the threshold is to leave out.
_ABOVE = 0.5


def _scores(scorer: Matcher, query: PersonName, held: list[PersonName]) -> list[float]:
    """The evidence, in bits, of records holding each of `held` for a FUZZY query of `query`."""
    records = [
        Tracing(TracingKey("INDEX", f"THRESHOLD-{n}"), 1, Subject(name), FileDetails("INDEX", 2000, "THRESHOLD"))
        for n, name in enumerate(held)
    ]
    bits = score_matrix([query], [Identifiers()], compile_candidates(records), use_pids=False, matcher=scorer.version)
    return [float(value) for value in bits[0]]
