"""Whom an ACCESS request is for, as the instance holding it tells (search_service.privacy_register says why).

The request's register, on the instance that registered it, is the one place its person is kept: the trail's
keyed hash of their SSN (AuditLog.person_ref, that instance's own key), in its `privacy.db`
(PrivacyRequests.bind). This instance asks it for its own requests; another instance asks it over PeerService
(CheckRequestPerson, RespondPrivacyRequest: the SSN goes to the holder, which hashes it and keeps nothing else
of it). The SSN is never logged, recorded, stored in clear or put in a message here."""

from __future__ import annotations

from enum import StrEnum

from search_service.accounting import AuditLog
from search_service.privacy_requests import PrivacyRequest, PrivacyRequests


class RequestPerson(StrEnum):
    """What a request's register tells of it for the person asked (proto dcii.v1.RequestPerson)."""

    UNBOUND = "UNBOUND"  # not answered, bound to no one: it may be answered for anyone
    THIS_PERSON = "THIS_PERSON"  # bound to the person asked (now, or by an earlier answer)
    ANOTHER_PERSON = "ANOTHER_PERSON"
    UNKNOWN = "UNKNOWN"  # answered and bound to no one here: for whom, this register cannot tell

    @property
    def answerable(self) -> bool:
        return self in (RequestPerson.UNBOUND, RequestPerson.THIS_PERSON)


def held_person(
    register: PrivacyRequests, audit: AuditLog, request: PrivacyRequest, ssn: str, *, bind: bool
) -> RequestPerson:
    """Whether `request`, held in `register`, is the person's of `ssn`; `bind`: the answer's, binding it to them
    unless it is bound already, in one transaction (of two answers at once for two persons, wherever given, the
    first stands), so never UNBOUND nor UNKNOWN. A request answered and unbound is bound too: only asked to after
    a check that let it be answered (an earlier version's binding on the instance that answered it, moving here)."""
    person = audit.person_ref(ssn)
    bound = register.bind(request, person) if bind else register.person(request)
    if bound == person:
        return RequestPerson.THIS_PERSON
    if bound is not None:
        return RequestPerson.ANOTHER_PERSON
    return RequestPerson.UNBOUND if request.responded_at is None else RequestPerson.UNKNOWN
