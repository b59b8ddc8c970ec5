"""Favorable-NAC supersession for the OpenSearch backend: the embedded store's rule (indexer.store.
sqlite_lifecycle, whose docstring defines "the same subject"), as a superset query for the cluster and
an exact judgement in Python, so that both backends delete exactly the same histories.

The query narrows to live NAC histories completed before the new one by the SSN (or by the primary
name); the judgement then checks each found history, and each history the writer's current group holds,
with `supersedes` (a date-of-birth term on a date field would also match a partial date, and the group's
own writes are not in the cluster yet).
"""

from __future__ import annotations

from typing import Any

from indexer.model import NacHistoryDetails, NacOutcome, Tracing, TracingType
from indexer.normalize import name_key
from indexer.retention import earliest_day, latest_day


def supersedes(new: Tracing, other: Tracing) -> bool:
    """Whether favorable NAC history `new` supersedes NAC history `other`."""
    details, subject, old = new.details, new.subject, other.details
    if not isinstance(details, NacHistoryDetails) or details.outcome is not NacOutcome.FAVORABLE:
        return False
    if subject is None or details.completed_on is None or other.subject is None:
        return False
    if not isinstance(old, NacHistoryDetails) or old.completed_on is None:
        return False
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
    their_key = name_key(other.subject.name)
    return (their_key.surname, their_key.given) == (key.surname, key.given) and (
        theirs.date_of_birth is not None and theirs.date_of_birth.iso() == dob.iso()
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
    if ids.ssn:
        who: list[dict[str, Any]] = [{"term": {"ssn": ids.ssn}}]
    else:
        key = name_key(subject.name)
        if ids.date_of_birth is None or not ids.date_of_birth.is_full or not key.surname:
            return None
        who = [{"term": {"surname": key.surname}}, {"term": {"given": key.given}}]
    live_histories = [{"term": {"live": True}}, {"term": {"type": TracingType.NAC_HISTORY.value}}]
    return {"bool": {"filter": [*live_histories, {"range": {"nac_completed_on": {"lt": before}}}, *who]}}
