"""The deployment's register of Privacy Act requests: each request is registered on the instance that opened
it (search_service.privacy_requests, `privacy.db`); with peers (search_service.peers), a request opened on
one instance is found, and its answer recorded, from any other, and the list is every instance's. A number
is opened once in the deployment; one found on two instances (opened on each before they were peers) is
refused until the office settles which it is.

One ACCESS request, one person (a review's finding: a request answered for one person was used again, its
first page and later ones, for any other's full records and accounting, while the register showed one
request). The first answer binds the request to the person asked, just before it is accounted; every later
answer under the number, first page or later one, must be for them, else FAILED_PRECONDITION, recorded as a
REFUSAL, before anything is read, disclosed or accounted. The person is the SSN asked (every access request
gives one, and the records are found by it, under whatever name): another name with the same SSN (a former
name, a spelling corrected) is the same person.

The binding is kept in one place, the request's register on the instance holding it
(search_service.privacy_binding): the trail's keyed hash of the SSN (that instance's key, AuditLog.person_ref)
in its `privacy.db`. An instance answering a request held elsewhere sends the SSN to the holder over PeerService
(mutual TLS): CheckRequestPerson before anything is read, CheckRequestPerson binding just before the answer is
accounted (in one transaction on the holder: of two instances answering at once for two persons, the second
is refused), and RespondPrivacyRequest, which records the answer for the bound person only. So any instance
answers the request again for its person, and refuses every other.

A request answered by an earlier version: one that bound no answer may not be answered again (no instance can
tell for whom: a page token is no proof); one that bound an answer on the instance that gave it, which was not
its holder, kept the binding there (`request_person` rows of requests held elsewhere, which this version
never writes), read while the holder has none: that instance alone answers it again, for that person only, and
its next first page moves the binding to the holder (CheckRequestPerson binding a request answered and
unbound), for every instance from then on. Should two instances each have bound it (the race of that
version), the first to answer again moves its person, and the other's is refused from then on."""

from __future__ import annotations

import datetime as dt

from indexer.exc import FailedPrecondition
from search_service.accounting import AuditLog
from search_service.accreditation import Caller
from search_service.peers import OPEN, Peers, Window
from search_service.privacy_binding import RequestPerson, held_person
from search_service.privacy_requests import PrivacyRequest, PrivacyRequests, RequestKind
from search_service.refusal_audit import RefusedCall

HERE = ""  # where a request of this instance's register is held
ANSWER = "/dcii.v1.PrivacyService/AnswerAccessRequest"


class Register:
    def __init__(self, local: PrivacyRequests, peers: Peers | None, audit: AuditLog) -> None:
        self._local, self._peers, self._audit = local, peers, audit

    def find(self, number: str, window: Window = OPEN) -> tuple[PrivacyRequest | None, str]:
        """The request under `number` and the address of the instance holding it (HERE for this one)."""
        own = self._local.request(number)
        holders = [(HERE, own)] if own is not None else []
        if self._peers is not None:
            holders += self._peers.privacy_requests(number, window=window)
        if len(holders) > 1:
            where = ", ".join(address or "this instance" for address, _ in holders)
            raise FailedPrecondition(
                f"privacy request {number} is registered on {len(holders)} instances ({where}): the privacy "
                "office must settle which it is (RUNBOOK, Privacy Act duties with several instances)"
            )
        return (holders[0][1], holders[0][0]) if holders else (None, HERE)

    def open_request(
        self, number: str, kind: RequestKind, received_at: dt.datetime, window: Window = OPEN
    ) -> PrivacyRequest:
        if self._peers is not None:
            elsewhere = self._peers.privacy_requests(number, window=window)
            if elsewhere:
                raise FailedPrecondition(f"privacy request {number} is already registered (on {elsewhere[0][0]})")
            window.check()
        return self._local.open_request(number, kind, received_at)

    def hold_for(
        self,
        request: PrivacyRequest,
        ssn: str,
        caller: Caller,
        *,
        holder: str = HERE,
        window: Window = OPEN,
        bind: bool = False,
    ) -> None:
        """FailedPrecondition, recorded first as a REFUSAL (the interceptor records PermissionDenied only),
        unless `request`, held at `holder`, may be answered for the person of `ssn` (the module's docstring);
        `bind`: the first answer's, binding the request to them unless it is bound already (in one transaction
        on the holder: of two answers at once for two persons, the later is refused)."""
        if holder == HERE or self._peers is None:
            told = held_person(self._local, self._audit, request, ssn, bind=bind)
        else:
            told = self._held_elsewhere(request, holder, ssn, window, bind=bind)
        if told.answerable:
            return
        number = request.request_number
        if told is RequestPerson.UNKNOWN:
            why = f"privacy request {number} was answered, and this instance cannot tell for whom (by an earlier"
            why += " version, which bound no answer, or bound it on the instance that gave it)"
        else:
            why = f"privacy request {number} was answered for another person"
        why += ": nothing was disclosed; register a new request for this person (OpenPrivacyRequest)"
        RefusedCall(ANSWER, caller.fingerprint, why, caller).record(self._audit)
        raise FailedPrecondition(why)

    def _held_elsewhere(
        self, request: PrivacyRequest, holder: str, ssn: str, window: Window, *, bind: bool
    ) -> RequestPerson:
        """What the holder tells; for a request it holds unbound, an earlier version's binding of it here, if any
        (the module's docstring), tells instead."""
        assert self._peers is not None
        told = self._peers.request_person(holder, request.request_number, ssn, bind=bind, window=window)
        if told in (RequestPerson.THIS_PERSON, RequestPerson.ANOTHER_PERSON):
            return told  # bound on the holder: that stands (always so once `bind` was asked)
        earlier = self._local.person(request)
        if earlier is None:
            return told
        return RequestPerson.THIS_PERSON if earlier == self._audit.person_ref(ssn) else RequestPerson.ANOTHER_PERSON

    def respond(self, number: str, holder: str, ssn: str, window: Window = OPEN) -> None:
        """Record the answer where the request is registered (for the person of `ssn`: search_service.peers)."""
        if holder == HERE or self._peers is None:
            self._local.respond(number)
        else:
            self._peers.respond(holder, number, ssn, window)

    def list_requests(
        self, *, overdue_only: bool = False, late_only: bool = False, window: Window = OPEN
    ) -> list[PrivacyRequest]:
        """Every instance's requests, oldest received first (filtered as PrivacyRequests.list_requests)."""
        found = self._local.list_requests(overdue_only=overdue_only, late_only=late_only)
        if self._peers is not None:
            asked = self._peers.privacy_requests(overdue_only=overdue_only, late_only=late_only, window=window)
            found += (r for _, r in asked)
        return sorted(found, key=lambda r: (r.received_at, r.request_number))
