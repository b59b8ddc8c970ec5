"""PrivacyService: the person's rights under the Privacy Act (issue 4, "The person's rights").

Every RPC here needs the PRIVACY_OFFICER role (the auth interceptor's policy table enforces it) and an
activity accredited for the PRIVACY_ACT_REQUEST purpose.

- AnswerAccessRequest: given a full name and SSN, every live tracing on that person and the accounting
  of its disclosures. "On that person" means the subject's SSN is the one given, under whatever name
  the record is filed: the requested name's exact rows (primary name or alias) carrying that SSN, and
  every tracing holding the SSN's blocking keys (indexer.match_keys; every tracing with the SSN holds
  them, so a record under an alias or a variant spelling is found) whose SSN is equal. The accounting is
  the union of the disclosures recorded under the person (name and SSN, for each name found on their
  records) and those of each tracing found, without duplicates, oldest first; law-enforcement
  disclosures are withheld when asked (5 U.S.C. 552a(c)(3)). The answer is itself a disclosure to the
  privacy office, accounted (ONLINE, PRIVACY_ACT_REQUEST) before it leaves: no trail, no answer; so the
  office's activity must be accredited for that purpose, as any query's activity is for its own. Beside
  them, `unverified`: the tracings filed under exactly the requested name that carry no SSN at all, which
  may be the person's and nothing in them can tell, for the office to judge (accounted the same way). Each
  tracing's explanation says how the name asked agrees with its names: wholly, in part, or not at all, when
  the office must check the requester's identity before releasing anything (search_service.privacy_names).
  A request is answered for one person, the SSN of its first answer: another's answer under its number is
  refused (search_service.privacy_register).
- FileDispute: attaches a statement of dispute to a live tracing (search results carry it from then
  on) and queues the statement to every activity the accounting shows received the tracing before.
- OpenPrivacyRequest / ListPrivacyRequests: the register of requests and their 10- and 30-working-day
  deadlines (search_service.privacy_requests).

Events (ACCESS_REQUEST_ANSWERED, DISPUTE_FILED, PRIVACY_REQUEST_OPENED) carry request numbers, tracing
keys and counts, never a name or an SSN.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import grpc

from dcii.v1 import privacy_pb2, privacy_pb2_grpc, search_pb2
from indexer.exc import DciiError, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from indexer.model import Dispute, PersonName, StoredTracing, TracingKey, Violation
from indexer.store.base import TracingStore
from search_service import privacy_pages
from search_service.accounting import AuditLog, Disclosure, DisclosureEntry
from search_service.accreditation import Caller, Purpose
from search_service.audit_archive import archived_trails
from search_service.auth import caller_of
from search_service.convert import dispute_out, tracing_out, type_out
from search_service.page_tokens import TokenEnvelope
from search_service.peer_service import serve_peers
from search_service.peer_wire import disclosure_out, person_request, request_out, tracing_request
from search_service.peers import OPEN, Peers, Window
from search_service.privacy_checks import check_access, check_dispute, check_open
from search_service.privacy_names import name_out
from search_service.privacy_person import (
    Trail,
    accounting,
    accounting_query,
    find_person,
    find_unverified,
    in_order,
    tracing_accounting,
)
from search_service.privacy_register import Register
from search_service.privacy_requests import PrivacyRequests, RequestKind
from search_service.search import MARKING, needs_full_ssn

if TYPE_CHECKING:
    from search_service.server import ServerConfig


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# ---- to the wire ----


def person_hit_out(
    stored: StoredTracing, requested: PersonName, target: search_pb2.Hit, *, full_ssn: bool, unverified: bool = False
) -> None:
    """A tracing of the answer, explained: how the name asked compares with its names (privacy_names), and
    the SSN (equal; or, `unverified`, one the record does not have)."""
    tracing = stored.tracing
    tracing_out(tracing, target.tracing, full_ssn=full_ssn, indexed_at=stored.indexed_at)
    target.type, target.score = type_out(tracing.type), 1.0
    explanation = target.explanation
    name_out(requested, tracing.subject.all_names() if tracing.subject is not None else (), explanation)
    if unverified:
        explanation.features.add(feature="ssn", agreement=search_pb2.AGREEMENT_MISSING, detail="the record has none")
    else:
        explanation.features.add(feature="ssn", agreement=search_pb2.AGREEMENT_EXACT, similarity=1.0, detail="equal")
    if stored.dispute is not None:
        dispute_out(stored.dispute, target)


def _accredited_for_privacy_act(caller: Caller) -> None:
    """Accreditation is per activity and per purpose (seed 002): the privacy office's work is for the
    Privacy Act's purpose, whichever of its RPCs (a PRIVACY_OFFICER activity without that purpose could
    file disputes, queueing statements to every earlier recipient: privacy review 5)."""
    if Purpose.PRIVACY_ACT_REQUEST not in caller.activity.purposes:
        activity = caller.activity.activity_id
        raise PermissionDenied(f"activity {activity} is not accredited for purpose {Purpose.PRIVACY_ACT_REQUEST}")


class PrivacyServicer(privacy_pb2_grpc.PrivacyServiceServicer):
    def __init__(
        self,
        store: TracingStore,
        audit: AuditLog,
        requests: PrivacyRequests,
        *,
        clock: Callable[[], dt.datetime] = _utcnow,
        peers: Peers | None = None,
        archived: Sequence[Trail] = (),
    ) -> None:
        self._store = store
        self._audit = audit
        self._tokens = TokenEnvelope(audit.key_for("page tokens"))  # seals the answer's later pages' tokens
        self._requests = requests
        self._clock = clock
        # The deployment's other instances, whose trails hold the rest of each accounting (search_service.peers),
        # and whose registers the rest of the requests.
        self._peers = peers
        self._register = Register(requests, peers, audit)
        # What an accounting reads: this instance's trail, and the retired instances' archived with it.
        self._trails: list[Trail] = [audit, *archived]

    def answer_access(
        self, caller: Caller, request: privacy_pb2.AccessRequest, window: Window = OPEN
    ) -> privacy_pb2.AccessResponse:
        number, name, ssn = check_access(request)
        _accredited_for_privacy_act(caller)
        # The answer closes the registered request's deadlines: answering a number never opened (a typo)
        # would leave the real request open and overdue, and an amendment is not answered by records.
        registered, holder = self._register.find(number, window)
        if registered is None:
            raise InvalidArgument(
                [Violation("request_number", "no privacy request is registered under this number (OpenPrivacyRequest)")]
            )
        if registered.kind is not RequestKind.ACCESS:
            raise InvalidArgument([Violation("request_number", f"is an {registered.kind.value} request, not ACCESS")])
        after = privacy_pages.continued(request, self._tokens, caller)  # a later page (search_service.privacy_pages)
        if after is not None and registered.responded_at is None:
            raise FailedPrecondition("the request is not answered yet: ask for its first page, without page_token")
        self._register.hold_for(registered, ssn, caller, holder=holder, window=window)  # its person only, before a read
        as_of = self._clock() if after is None else after[0]
        tracings = find_person(self._store, name, ssn)
        query, withhold = accounting_query(self._store, name, ssn, tracings), request.withhold_law_enforcement
        disclosures = accounting(self._trails, query, withhold_law_enforcement=withhold)
        if self._peers is not None:  # every instance's part, or no answer (fail closed)
            theirs = self._peers.person_accounting(person_request(query, withhold_law_enforcement=withhold), window)
            disclosures = in_order({(d.disclosure_id, d.tracing): d for d in [*disclosures, *theirs]}.values())
        response = privacy_pb2.AccessResponse(marking=MARKING)
        shown, response.next_page_token = privacy_pages.page(disclosures, after, as_of, request, self._tokens, caller)
        for disclosure in shown:
            disclosure_out(disclosure, response.disclosures.add())
        if after is not None:
            return response  # the records went with the first page, disclosed and accounted then
        unverified = find_unverified(self._store, name)
        full_ssn = needs_full_ssn(caller, Purpose.PRIVACY_ACT_REQUEST)
        for stored in tracings:
            person_hit_out(stored, name, response.tracings.add(), full_ssn=full_ssn)
        for stored in unverified:
            person_hit_out(stored, name, response.unverified.add(), full_ssn=full_ssn, unverified=True)
        privacy_pages.check_first_page(response)  # one gRPC could not send is refused before it is recorded
        # The answer discloses each tracing to the privacy office: accounted first, or nothing leaves; not
        # accounted at all once the office's client has gone (its deadline passed while the peers answered).
        window.check()
        self._register.hold_for(registered, ssn, caller, holder=holder, window=window, bind=True)  # bound to them now
        self._audit.record_disclosures(
            [
                DisclosureEntry(
                    tracing=s.tracing.key,
                    subject_name=s.tracing.subject.name if s.tracing.subject else None,
                    subject_ssn=s.tracing.subject.identifiers.ssn if s.tracing.subject else "",
                    method="ONLINE",
                    purpose=Purpose.PRIVACY_ACT_REQUEST.value,
                    recipient_activity=caller.activity.activity_id,
                    recipient_operator=caller.operator or "",
                    law_enforcement=False,
                )
                for s in [*tracings, *unverified]
            ]
        )
        detail = {
            "request_number": number,
            "tracings": str(len(tracings)),
            "unverified": str(len(unverified)),
            "disclosures": str(len(disclosures)),
            "law_enforcement_withheld": "yes" if request.withhold_law_enforcement else "no",
        }
        self._audit.record_event("ACCESS_REQUEST_ANSWERED", caller.actor, detail)
        # On the instance that registered it; one gone since it was found fails the call, the answer unsent
        # though accounted (the trail then says more was disclosed than was: the safe side), to be asked again.
        self._register.respond(number, holder, ssn, window)
        return response

    def file_dispute(
        self, caller: Caller, request: privacy_pb2.FileDisputeRequest, window: Window = OPEN
    ) -> privacy_pb2.FileDisputeResponse:
        key, location, summary = check_dispute(request)
        _accredited_for_privacy_act(caller)
        before = self._store.get(key)
        if before is None:
            raise NotFound(f"no live tracing {key}")
        # Read the accounting once before anything changes (an unreadable trail, or a peer that does not
        # answer, refuses the dispute untouched), then again once the dispute is attached, so that a
        # disclosure racing the attachment is not missed: a recipient told twice is better than one never told.
        earlier_elsewhere = self._elsewhere(before, window)
        self._tracing_accounting(before)  # this instance's trail, and those archived with it
        window.check()
        dispute = Dispute(uuid.uuid4().hex, location, summary, self._clock())
        if not self._store.set_dispute(key, dispute):
            raise NotFound(f"no live tracing {key}")
        disputed = self._store.get(key) or before
        earlier = [*self._tracing_accounting(disputed), *earlier_elsewhere]
        if self._peers is not None:
            # A peer gone since the first read (logged by Peers): its recipients as read then, the dispute filed.
            # The dispute is filed whether or not the office still waits: the read gets its full time (OPEN).
            with contextlib.suppress(DciiError):
                earlier += self._elsewhere(disputed, OPEN)
        # Not the privacy office's own answers to the person's requests, nor the office filing this.
        recipients = (
            d.recipient_activity
            for d in earlier
            if d.purpose != Purpose.PRIVACY_ACT_REQUEST.value and d.recipient_activity != caller.activity.activity_id
        )
        notices = self._requests.queue_notices(dispute.dispute_id, key, recipients, location, summary)
        detail = {
            "dispute_id": dispute.dispute_id,
            "agency": key.agency,
            "record_number": key.record_number,
            "notices_queued": str(len(notices)),
        }
        # A record holds one statement, the person's latest: one filed again replaces the one shown, and
        # the trail says which it replaced (the earlier stays in the trail and in the notices sent).
        replaced = before.dispute.dispute_id if before.dispute is not None else ""
        if replaced:
            detail["replaces_dispute_id"] = replaced
        self._audit.record_event("DISPUTE_FILED", caller.actor, detail)
        response = privacy_pb2.FileDisputeResponse(
            notices_queued=len(notices), marking=MARKING, replaced_dispute_id=replaced
        )
        response.dispute.dispute_id, response.dispute.statement_location = dispute.dispute_id, location
        response.dispute.summary = summary
        return response

    def _of_whom(
        self, stored: StoredTracing
    ) -> tuple[TracingKey, tuple[tuple[PersonName, ...], str] | None, dt.datetime | None]:
        """A tracing's key, its subject now (names, SSN; None without one), and when its present life began."""
        key, subject = stored.tracing.key, stored.tracing.subject
        them = None if subject is None else (subject.all_names(), subject.identifiers.ssn)
        return key, them, self._store.last_deleted(key)

    def _tracing_accounting(self, stored: StoredTracing) -> list[Disclosure]:
        """This instance's trail's, and those archived with it: disclosures of the tracing about its subject."""
        return tracing_accounting(self._trails, *self._of_whom(stored))

    def _elsewhere(self, stored: StoredTracing, window: Window) -> list[Disclosure]:
        """The other instances' disclosures of the tracing while it was about its present subject."""
        if self._peers is None:
            return []
        return self._peers.tracing_accounting(tracing_request(*self._of_whom(stored)), window)

    def open_request(
        self, caller: Caller, request: privacy_pb2.PrivacyRequest, window: Window = OPEN
    ) -> privacy_pb2.PrivacyRequest:
        number, kind, received = check_open(request, self._clock())
        _accredited_for_privacy_act(caller)
        registered = self._register.open_request(number, kind, received, window)
        detail = {"request_number": number, "kind": kind.value}
        self._audit.record_event("PRIVACY_REQUEST_OPENED", caller.actor, detail)
        return request_out(registered)

    def list_requests(
        self, caller: Caller, request: privacy_pb2.ListPrivacyRequestsRequest, window: Window = OPEN
    ) -> privacy_pb2.ListPrivacyRequestsResponse:
        _accredited_for_privacy_act(caller)
        only_late = request.late_only
        found = self._register.list_requests(overdue_only=request.overdue_only, late_only=only_late, window=window)
        return privacy_pb2.ListPrivacyRequestsResponse(requests=[request_out(r) for r in found])

    # ---- gRPC ----

    def AnswerAccessRequest(  # noqa: N802 (gRPC's method name)
        self, request: privacy_pb2.AccessRequest, context: grpc.ServicerContext
    ) -> privacy_pb2.AccessResponse:
        return self.answer_access(caller_of(context), request, Window.of(context))

    def FileDispute(  # noqa: N802
        self, request: privacy_pb2.FileDisputeRequest, context: grpc.ServicerContext
    ) -> privacy_pb2.FileDisputeResponse:
        return self.file_dispute(caller_of(context), request, Window.of(context))

    def OpenPrivacyRequest(  # noqa: N802
        self, request: privacy_pb2.PrivacyRequest, context: grpc.ServicerContext
    ) -> privacy_pb2.PrivacyRequest:
        return self.open_request(caller_of(context), request, Window.of(context))

    def ListPrivacyRequests(  # noqa: N802
        self, request: privacy_pb2.ListPrivacyRequestsRequest, context: grpc.ServicerContext
    ) -> privacy_pb2.ListPrivacyRequestsResponse:
        return self.list_requests(caller_of(context), request, Window.of(context))


def serve_privacy(
    server: grpc.Server, store: TracingStore, audit: AuditLog, config: ServerConfig, closing: contextlib.ExitStack
) -> PrivacyRequests:
    """PrivacyService and PeerService on `server`; returns the register of requests (closed by `closing`
    should the start go no further)."""
    requests = PrivacyRequests(config.data_dir / "privacy.db", time_zone=config.privacy_time_zone)
    closing.callback(requests.close)
    trails: list[Trail] = [audit, *archived_trails(config.data_dir)]
    peers = serve_peers(server, store, audit, requests, config, trails)
    servicer = PrivacyServicer(store, audit, requests, peers=peers, archived=trails[1:])
    privacy_pb2_grpc.add_PrivacyServiceServicer_to_server(servicer, server)
    return requests
