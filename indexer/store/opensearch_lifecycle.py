"""Favorable-NAC supersession for the OpenSearch backend: the embedded store's rule (indexer.store.
sqlite_lifecycle, whose docstring defines "the same subject"), as a superset query for the cluster and
an exact judgement in Python, so that both backends delete exactly the same histories.

The query narrows to the agency's live NAC histories completed before the new one by the SSN (or, without
one, by the primary name, the full date of birth, and no SSN); the judgement then checks each found history,
and each history the writer's current group holds, with `supersedes` (a date-of-birth range on a date field
also matches a partial date, and the group's own writes are not in the cluster yet). A supersession cut short
is found by its deletion-log entries (indexer.store.opensearch_check), not here.
"""

from __future__ import annotations

from typing import Any

from indexer.model import NacHistoryDetails, NacOutcome, Tracing, TracingType
from indexer.normalize import name_key
from indexer.retention import earliest_day, latest_day
from indexer.subjects import details_agree, details_of


def supersedes(new: Tracing, other: Tracing) -> bool:
    """Whether favorable NAC history `new` supersedes NAC history `other`."""
    details, subject, old = new.details, new.subject, other.details
    if not isinstance(details, NacHistoryDetails) or details.outcome is not NacOutcome.FAVORABLE:
        return False
    if subject is None or details.completed_on is None or other.subject is None:
        return False
    if not isinstance(old, NacHistoryDetails) or old.completed_on is None:
        return False
    if other.key.agency != new.key.agency:
        return False  # only the owning agency deletes its tracings (sqlite_lifecycle's docstring)
    try:
        if not latest_day(old.completed_on) < earliest_day(details.completed_on):
            return False
    except ValueError:
        return False
    ids, theirs = subject.identifiers, other.subject.identifiers
    if ids.ssn:
        return theirs.ssn == ids.ssn  # the SSN alone: a name never overrules an identifier
    key, dob = name_key(subject.name), ids.date_of_birth
    if dob is None or not dob.is_full or not key.surname:
        return False  # too little to delete on
    if theirs.ssn:
        return False  # a name never overrules an identifier: theirs may be a namesake born the same day
    their_key = name_key(other.subject.name)
    return (
        (their_key.surname, their_key.given) == (key.surname, key.given)
        and (theirs.date_of_birth is not None and theirs.date_of_birth.iso() == dob.iso())
        and details_agree(details_of(subject), details_of(other.subject))
    )


def candidates_query(new: Tracing) -> dict[str, Any] | None:
    """A query finding (at least) every live history `new` may supersede; None when it supersedes none."""
    details, subject = new.details, new.subject
    if not isinstance(details, NacHistoryDetails) or details.outcome is not NacOutcome.FAVORABLE:
        return None
    if subject is None or details.completed_on is None:
        return None
    try:
        before = earliest_day(details.completed_on).isoformat()
    except ValueError:
        return None
    ids = subject.identifiers
    # Everything `supersedes` asks that the cluster can judge: a common name's histories of every agency and
    # every namesake ran past one page of candidates (a review of the backends). Only the details that tell
    # namesakes apart are left to Python (and a partial date of birth on the first day of its month or year,
    # which the date field holds as that day).
    mine: list[dict[str, Any]] = [{"term": {"agency": new.key.agency}}]
    if ids.ssn:
        who: list[dict[str, Any]] = [{"term": {"ssn": ids.ssn}}]
        theirs: list[dict[str, Any]] = []
    else:
        key, dob = name_key(subject.name), ids.date_of_birth
        if dob is None or not dob.is_full or not key.surname:
            return None
        who = [
            {"term": {"surname": key.surname}},
            {"term": {"given": key.given}},
            {"range": {"dob": {"gte": dob.iso(), "lte": dob.iso(), "format": "strict_date"}}},
        ]
        theirs = [{"exists": {"field": "ssn"}}]  # a name never overrules an identifier
    live_histories = [{"term": {"live": True}}, {"term": {"type": TracingType.NAC_HISTORY.value}}]
    earlier = {"range": {"nac_completed_on": {"lt": before}}}
    return {"bool": {"filter": [*live_histories, *mine, earlier, *who], "must_not": theirs}}
