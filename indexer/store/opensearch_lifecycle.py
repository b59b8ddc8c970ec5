"""Favorable-NAC supersession for the OpenSearch backend: the embedded store's rule (indexer.store.
sqlite_lifecycle, whose docstring defines "the same subject"), as a superset query for the cluster and
an exact judgement in Python, so that both backends delete exactly the same histories.

The query narrows to live NAC histories completed before the new one by the SSN (or by the primary
name); the judgement then checks each found history, and each history the writer's current group holds,
with `supersedes` (a date-of-birth term on a date field would also match a partial date, and the group's
own writes are not in the cluster yet).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from indexer.model import NacHistoryDetails, NacOutcome, Tracing, TracingKey, TracingType
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
    if ids.ssn:
        who: list[dict[str, Any]] = [{"term": {"ssn": ids.ssn}}]
    else:
        key = name_key(subject.name)
        if ids.date_of_birth is None or not ids.date_of_birth.is_full or not key.surname:
            return None
        who = [{"term": {"surname": key.surname}}, {"term": {"given": key.given}}]
    live_histories = [{"term": {"live": True}}, {"term": {"type": TracingType.NAC_HISTORY.value}}]
    return {"bool": {"filter": [*live_histories, {"range": {"nac_completed_on": {"lt": before}}}, *who]}}


_Indexed = tuple[Tracing, dt.datetime]  # a live NAC history and when it was indexed


def unfinished_supersessions(histories: Iterable[_Indexed]) -> list[TracingKey]:
    """The favorable histories whose supersession was left undone: each still has a live history it
    supersedes and that was indexed before it (one indexed after it was kept then, and stays kept). A
    write cut short between its first bulk request and its second leaves this; a resend of the favorable
    history finishes it. `histories`: every live NAC history and the moment it was indexed.

    Histories indexed in the same instant (one write group) are not reported: the stored documents do not
    say in which order the group held them, and a favorable history that came first in its group keeps
    the earlier history that came after it, by design. (A resend errs the other way, toward the rule.)

    The histories are grouped as `supersedes` compares them (by SSN; by surname and given name when the
    favorable one has no SSN), so the check reads each history once and compares only within a group."""
    by_ssn: dict[str, list[_Indexed]] = defaultdict(list)
    by_name: dict[tuple[str, str], list[_Indexed]] = defaultdict(list)
    found = [(t, at) for t, at in histories if t.subject is not None]
    for tracing, indexed in found:
        assert tracing.subject is not None
        if tracing.subject.identifiers.ssn:
            by_ssn[tracing.subject.identifiers.ssn].append((tracing, indexed))
        key = name_key(tracing.subject.name)
        by_name[(key.surname, key.given)].append((tracing, indexed))
    unfinished = []
    for new, new_indexed in found:
        assert new.subject is not None
        key, ssn = name_key(new.subject.name), new.subject.identifiers.ssn
        group = by_ssn[ssn] if ssn else by_name[(key.surname, key.given)]
        if any(other is not new and at < new_indexed and supersedes(new, other) for other, at in group):
            unfinished.append(new.key)
    return sorted(unfinished, key=str)
