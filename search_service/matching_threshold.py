"""The default threshold of a ranked query (when the query sets no `min_score`).

Per mode (`Matcher.thresholds`): FUZZY 0.5, PID_QUALIFIED 0.9, each a probability that the candidate is
the person sought. From fuzzy-5, a FUZZY query that gives one name part (a surname alone, a given name
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
of FEBRL3's 322), with 12 hits the median query of 5,000 records (3 bits: 87%, 6).
"""

from __future__ import annotations

from dataclasses import replace

from indexer.model import FileDetails, Identifiers, PersonName, Subject, Tracing, TracingKey
from search_service.matching import compile_candidates, score_matrix, to_score
from search_service.matching_versions import Matcher

# Stands for the part the query lacks on the record it is compared with: whatever it holds, a part the
# query does not give compares as MISSING.
_OTHER_PART = "Placeholder"


def one_name_part(name: PersonName) -> bool:
    return bool(name.surname) != bool(name.given_name)


def default_threshold(scorer: Matcher, mode: str, name: PersonName) -> float:
    """The threshold of a `mode` query for `name` that sets none."""
    threshold = scorer.thresholds[mode]
    margin = scorer.one_part_margin
    if mode != "FUZZY" or margin is None or not one_name_part(name):
        return threshold
    held = replace(name, given_name=_OTHER_PART) if name.surname else replace(name, surname=_OTHER_PART)
    record = Tracing(TracingKey("INDEX", "THRESHOLD"), 1, Subject(held), FileDetails("INDEX", 2000, "THRESHOLD"))
    exact = score_matrix([name], [Identifiers()], compile_candidates([record]), use_pids=False, matcher=scorer.version)
    return min(threshold, to_score(float(exact[0, 0]) - margin))
