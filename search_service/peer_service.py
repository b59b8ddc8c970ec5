"""PeerService: this instance's part of another instance's privacy answer (search_service.peers says why),
from its own audit trail and its own register of Privacy Act requests, never asking further. Served to the
PEER role only (search_service.auth); each accounting given is recorded in the trail, without PII. The register
of a request held here is where its person is kept (search_service.privacy_binding): a peer answering it sends
the SSN, hashed here with the trail's key and kept, logged and recorded no other way."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import grpc

from dcii.v1 import peer_pb2, peer_pb2_grpc
from indexer import edit_rules as rules
from indexer.exc import FailedPrecondition, InvalidArgument, NotFound
from indexer.model import Violation
from indexer.store.base import TracingStore
from search_service.accounting import AuditLog, Disclosure
from search_service.auth import caller_of
from search_service.peer_wire import (
    disclosure_out,
    person_query_in,
    request_out,
    request_person_out,
    ssn_in,
    tracing_query_in,
)
from search_service.peers import Identity, Peers
from search_service.privacy_binding import RequestPerson, held_person
from search_service.privacy_person import Trail, accounting, tracing_accounting
from search_service.privacy_requests import PrivacyRequest, PrivacyRequests, RequestKind

if TYPE_CHECKING:
    from search_service.server import ServerConfig

# Disclosures or requests in one message of an answer (~150 bytes each, well under the 4 MiB a message may
# be): a person's accounting may be long (five years of searches).
PART = 2_000


def serve_peers(
    server: grpc.Server,
    store: TracingStore,
    audit: AuditLog,
    requests: PrivacyRequests,
    config: ServerConfig,
    trails: Sequence[Trail],
) -> Peers:
    """Answer the other instances (always: an instance asked need not ask), join the store's roster, and
    return the client that asks the peers. Raises FailedPrecondition at start when peers are named without
    the certificate."""
    primary = config.replica_index == 0
    me = Identity.of(config.data_dir, primary=primary)
    peer_pb2_grpc.add_PeerServiceServicer_to_server(PeerServicer(audit, requests, me, trails), server)
    peers = Peers(config.peers, config.pki_dir, me, store.roster())
    if primary:  # on the roster before it serves (its replicas are the same entry)
        store.roster().join(me.instance_id, me.place, socket.gethostname())
    return peers


_ASKED_BY = re.compile(r"[0-9a-f]{32}/[0-9a-f]{16}")


def _asked_by(text: str) -> str:
    """The asker's identity (search_service.peers.Identity.tag), recorded in the trail with what it read."""
    if not _ASKED_BY.fullmatch(text):
        raise InvalidArgument([Violation("asked_by", "the asking instance: INSTANCE_ID/INCARNATION")])
    return text


def _person_question(number: str, ssn: str, asked_by: str) -> tuple[str, str, str]:
    """(request number, SSN digits, asker) of a question about whom a request is for; every bad field at once,
    never with the SSN's digits."""
    out: list[Violation] = []
    checked = rules.record_id(number, "request_number", out, label="request number"), ssn_in(ssn, out)
    if not _ASKED_BY.fullmatch(asked_by):
        out.append(Violation("asked_by", "the asking instance: INSTANCE_ID/INCARNATION"))
    if out:
        raise InvalidArgument(out)
    return (*checked, asked_by)


def _number(text: str) -> str:
    out: list[Violation] = []
    number = rules.record_id(text, "request_number", out, label="request number")
    if out:
        raise InvalidArgument(out)
    return number


class PeerServicer(peer_pb2_grpc.PeerServiceServicer):
    def __init__(self, audit: AuditLog, requests: PrivacyRequests, me: Identity, trails: Sequence[Trail]) -> None:
        self._audit, self._requests, self._me = audit, requests, me
        self._trails = trails  # its own trail (`audit`, where it records) and those archived with it

    def _accounting(
        self, context: grpc.ServicerContext, detail: dict[str, str], disclosures: list[Disclosure]
    ) -> Iterator[peer_pb2.PeerAccountingResponse]:
        # Recorded before anything is sent: who read this trail's accounting, of whom, how much (no PII: the
        # person by the trail's keyed hash of their SSN, as the trail's own entries name them).
        detail["disclosures"] = str(len(disclosures))
        self._audit.record_event("PEER_ACCOUNTING_GIVEN", caller_of(context).actor, detail)
        for start in range(0, max(len(disclosures), 1), PART):
            part = self._accounting_part()
            for disclosure in disclosures[start : start + PART]:
                disclosure_out(disclosure, part.disclosures.add())
            yield part

    # Every answer names the instance (search_service.peers: how the asker tells instances apart).
    def _accounting_part(self) -> peer_pb2.PeerAccountingResponse:
        me = self._me
        return peer_pb2.PeerAccountingResponse(instance_id=me.instance_id, incarnation=me.incarnation, place=me.place)

    def _requests_part(self) -> peer_pb2.PeerPrivacyRequests:
        me = self._me
        return peer_pb2.PeerPrivacyRequests(instance_id=me.instance_id, incarnation=me.incarnation, place=me.place)

    def _itself(self, asked_by: str) -> bool:
        """Asked by this instance itself (its own name in its list of peers): answered with nothing, unread and
        unrecorded, as the asker skips it."""
        return asked_by == self._me.tag

    def _requests_out(self, found: Sequence[PrivacyRequest]) -> Iterator[peer_pb2.PeerPrivacyRequests]:
        for start in range(0, max(len(found), 1), PART):
            part = self._requests_part()
            part.requests.extend(request_out(r) for r in found[start : start + PART])
            yield part

    def PersonAccounting(  # noqa: N802 (gRPC's method name)
        self, request: peer_pb2.PersonAccountingRequest, context: grpc.ServicerContext
    ) -> Iterator[peer_pb2.PeerAccountingResponse]:
        query, asker = person_query_in(request), _asked_by(request.asked_by)
        if self._itself(asker):
            return self._accounting_of_nothing()
        found = accounting(self._trails, query, withhold_law_enforcement=request.withhold_law_enforcement)
        detail = {"accounting": "PERSON", "person": self._audit.person_ref(query.ssn), "asked_by": asker}
        return self._accounting(context, detail, found)

    def TracingAccounting(  # noqa: N802
        self, request: peer_pb2.TracingAccountingRequest, context: grpc.ServicerContext
    ) -> Iterator[peer_pb2.PeerAccountingResponse]:
        (key, subject, began), asker = tracing_query_in(request), _asked_by(request.asked_by)
        if self._itself(asker):
            return self._accounting_of_nothing()
        detail = {"accounting": "TRACING", "agency": key.agency, "record_number": key.record_number}
        detail["asked_by"] = asker
        return self._accounting(context, detail, tracing_accounting(self._trails, key, subject, began))

    def _accounting_of_nothing(self) -> Iterator[peer_pb2.PeerAccountingResponse]:
        yield self._accounting_part()

    def FindPrivacyRequests(  # noqa: N802
        self, request: peer_pb2.FindPrivacyRequestsRequest, context: grpc.ServicerContext
    ) -> Iterator[peer_pb2.PeerPrivacyRequests]:
        if self._itself(_asked_by(request.asked_by)):
            return self._requests_out([])
        if request.request_number:
            one = self._requests.request(_number(request.request_number))
            return self._requests_out([one] if one is not None else [])
        found = self._requests.list_requests(overdue_only=request.overdue_only, late_only=request.late_only)
        return self._requests_out(found)

    def _access_request(self, number: str) -> PrivacyRequest:
        found = self._requests.request(number)
        if found is None:
            raise NotFound(f"no privacy request {number} is registered on this instance")
        if found.kind is not RequestKind.ACCESS:
            raise FailedPrecondition(f"privacy request {number} is an {found.kind.value} request, not ACCESS")
        return found

    def CheckRequestPerson(  # noqa: N802
        self, request: peer_pb2.CheckRequestPersonRequest, context: grpc.ServicerContext
    ) -> peer_pb2.PeerRequestPerson:
        """Whom a request held here is for (search_service.privacy_binding): the SSN asked is hashed with this
        instance's trail key and compared, or bound; nothing of it is kept, logged or recorded."""
        number, ssn, _ = _person_question(request.request_number, request.ssn, request.asked_by)
        told = held_person(self._requests, self._audit, self._access_request(number), ssn, bind=request.bind)
        me = self._me
        return peer_pb2.PeerRequestPerson(
            instance_id=me.instance_id, incarnation=me.incarnation, place=me.place, person=request_person_out(told)
        )

    def RespondPrivacyRequest(  # noqa: N802
        self, request: peer_pb2.RespondPrivacyRequestRequest, context: grpc.ServicerContext
    ) -> peer_pb2.PeerPrivacyRequests:
        number, ssn, asker = _person_question(request.request_number, request.ssn, request.asked_by)
        # The answer was bound just before it was accounted (CheckRequestPerson); bound again here, for it stands
        # whatever happened since (first answer wins), and an answer for another person is not recorded.
        told = held_person(self._requests, self._audit, self._access_request(number), ssn, bind=True)
        if told is not RequestPerson.THIS_PERSON:
            raise FailedPrecondition(f"privacy request {number} is bound to another person: this answer not recorded")
        responded = self._requests.respond(number)
        if responded is None:
            raise NotFound(f"no privacy request {number} is registered on this instance")
        actor, detail = caller_of(context).actor, {"request_number": number, "asked_by": asker}
        self._audit.record_event("PEER_PRIVACY_REQUEST_RESPONDED", actor, detail)
        part = self._requests_part()
        part.requests.append(request_out(responded))
        return part
