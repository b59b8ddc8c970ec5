"""The deployment's other instances: asking each for its part of an accounting, and answering theirs.

Several instances behind a load balancer share one index (OpenSearch) but each accounts for what it
disclosed in its own audit trail (search_service.accounting): a person's accounting, or the earlier
recipients a statement of dispute is sent to, is the union of every instance's. An instance given its
peers (`dcii serve --peer HOST:PORT`, repeated, or DCII_PEERS=HOST:PORT,HOST:PORT) asks each of them for its
part over mutual TLS, presenting the deployment's peer certificate (`<pki>/dcii-peer.pem` and its key: a
client certificate of the deployment's CA whose activity holds the PEER role alone, accredited on every
instance), and answers with the union. A peer answers from its own trail (search_service.peer_service), never
asking further, and records in its trail that it did, without PII. The register of Privacy Act requests is
each instance's too (a request is registered where it was opened): an answer on another instance finds it,
and records its answer, there; the list is every instance's. Whom an ACCESS request is for is kept there as
well: the answering instance sends the person's SSN to the holder, which checks it, and binds it, before
anything is read and again before the answer is accounted (search_service.privacy_binding).

Fail closed: a peer that does not answer in time, refuses, or answers what cannot be read fails the privacy
office's call (UNAVAILABLE or FAILED_PRECONDITION naming the peer's address) before the answer is accounted
or anything is filed or queued: an accounting that lacks an instance's disclosures looks complete and is
wrong. Each question waits at most PEER_TIMEOUT, and never past the office's own deadline (`Window`); a call
whose client has gone records nothing. One step comes after the accounting: the answer to a request another
instance registered is recorded there last, and if that instance fails then, the call fails with the
answer accounted but unsent (the trail says more was disclosed than was: the safe side) and is asked again.

Instances tell each other apart by the id each keeps in its data directory (`instance.id`, made once; the
processes of one instance share it) and the incarnation of its processes, drawn at each start (`Identity`).
The instance's own address in the list is answered at once, with nothing, and skipped; another instance
with the same id (a copied data directory) fails the call, as do two addresses reaching one instance, since
a load balancer's address reaches whichever instance it picks and the list must name every instance.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import secrets
import socket
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc

from dcii.v1 import peer_pb2, peer_pb2_grpc
from indexer.exc import DciiError, FailedPrecondition, Unavailable
from indexer.store.roster import Roster
from search_service.accounting import Disclosure
from search_service.peer_wire import disclosures_in, request_in, request_person_in
from search_service.privacy_binding import RequestPerson
from search_service.privacy_requests import PrivacyRequest

log = logging.getLogger(__name__)

PEER_CERTIFICATE = "dcii-peer"  # <pki>/dcii-peer.pem and dcii-peer-key.pem
INSTANCE_FILE = "instance.id"
# How long a peer has to answer one question; never past the office's own deadline (Window).
PEER_TIMEOUT = 30.0
# Codes that say the peer is there but will not answer this instance: no retry will change them.
_REFUSED = frozenset(
    {grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.UNIMPLEMENTED}
)
_ID = re.compile(r"[0-9a-f]{32}")
_T = TypeVar("_T")


def instance_id(data_dir: Path) -> str:
    """This instance's id, made the first time (32 hex digits in `<data>/instance.id`) and kept: a restore
    keeps it, as it keeps the trail it names. FailedPrecondition if the file holds anything else."""
    path = data_dir / INSTANCE_FILE
    if not path.exists():
        made = path.with_name(f".{INSTANCE_FILE}.{os.getpid()}")
        made.write_text(secrets.token_hex(16) + "\n", encoding="ascii")
        try:
            os.link(made, path)  # never replaces one another process made meanwhile
        except FileExistsError:
            pass
        finally:
            made.unlink()
    found = path.read_bytes().strip().decode("ascii", "replace")
    if not _ID.fullmatch(found):
        raise FailedPrecondition(f"{path} is not an instance id (32 hex digits): stop the server and delete it")
    return found


INCARNATION_FILE = ".incarnation"  # this start's, drawn by the primary, read by its replicas


def _incarnation(data_dir: Path, *, primary: bool) -> str:
    path = data_dir / INCARNATION_FILE
    if primary:  # before any replica starts (search_service.serving_processes): they read this one
        drawn = path.with_name(f"{INCARNATION_FILE}.{os.getpid()}")
        drawn.write_text(secrets.token_hex(8), encoding="ascii")
        drawn.replace(path)
    return path.read_text(encoding="ascii").strip()


@dataclass(frozen=True, slots=True)
class Identity:
    """Who this instance is to its peers: its id; the incarnation its processes share, drawn at each start (a
    copy of its data directory serving too has the id and another incarnation); and its place, a hash of its
    host's name and data directory, which with the id is its entry on the store's roster."""

    instance_id: str
    incarnation: str
    place: str

    @classmethod
    def of(cls, data_dir: Path, *, primary: bool = True) -> Identity:
        place = hashlib.sha256(f"{socket.gethostname()}|{data_dir.resolve()}".encode()).hexdigest()[:16]
        return cls(instance_id(data_dir), _incarnation(data_dir, primary=primary), place)

    @property
    def tag(self) -> str:
        """What a question's `asked_by` carries."""
        return f"{self.instance_id}/{self.incarnation}"


@dataclass(frozen=True, slots=True)
class Window:
    """The office's call as the peers' questions see it: how long it has left (None: no deadline) and whether
    its client still waits."""

    remaining: Callable[[], float | None]
    active: Callable[[], bool]

    @classmethod
    def of(cls, context: grpc.ServicerContext) -> Window:
        return cls(context.time_remaining, context.is_active)

    def timeout(self) -> float:
        left = self.remaining()
        return PEER_TIMEOUT if left is None else max(0.0, min(PEER_TIMEOUT, left))

    def check(self) -> None:
        """Before the answer is accounted, or anything filed: refused if the client has gone."""
        if not self.active():
            raise Unavailable("the call ended (its deadline passed or it was cancelled) before its answer")


OPEN = Window(lambda: None, lambda: True)  # no deadline, always waited for (a caller without a gRPC call)


class Peers:
    """The other instances, asked together; `me` is this instance (its own address is skipped)."""

    def __init__(self, addresses: Sequence[str], pki_dir: Path, me: Identity, roster: Roster) -> None:
        self.addresses = tuple(dict.fromkeys(addresses))
        self._me, self._roster = me, roster
        self._credentials: grpc.ChannelCredentials | None = None
        if not self.addresses:
            return  # alone (or so configured: the roster says whether it is)
        try:
            ca, cert, key = (
                (pki_dir / name).read_bytes()
                for name in ("ca.pem", f"{PEER_CERTIFICATE}.pem", f"{PEER_CERTIFICATE}-key.pem")
            )
        except OSError as error:
            raise FailedPrecondition(
                f"peers are configured but the peer certificate cannot be read ({error.strerror}: "
                f"{Path(error.filename).name}): issue it with `dcii certs issue {PEER_CERTIFICATE} --agency AGENCY`"
            ) from error
        self._credentials = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)

    def person_accounting(self, request: peer_pb2.PersonAccountingRequest, window: Window = OPEN) -> list[Disclosure]:
        request.asked_by = self._me.tag
        answers = self._gather(lambda stub: stub.PersonAccounting(request, timeout=window.timeout()))
        return _read(lambda: [d for _, parts in answers for p in parts for d in disclosures_in(p.disclosures)])

    def tracing_accounting(self, request: peer_pb2.TracingAccountingRequest, window: Window = OPEN) -> list[Disclosure]:
        request.asked_by = self._me.tag
        answers = self._gather(lambda stub: stub.TracingAccounting(request, timeout=window.timeout()))
        return _read(lambda: [d for _, parts in answers for p in parts for d in disclosures_in(p.disclosures)])

    def privacy_requests(
        self, number: str = "", *, overdue_only: bool = False, late_only: bool = False, window: Window = OPEN
    ) -> list[tuple[str, PrivacyRequest]]:
        """(address, request) for each request the other instances registered: the one under `number`, or all."""
        asked = peer_pb2.FindPrivacyRequestsRequest(request_number=number, asked_by=self._me.tag)
        asked.overdue_only, asked.late_only = overdue_only, late_only
        answers = self._gather(lambda stub: stub.FindPrivacyRequests(asked, timeout=window.timeout()))
        return _read(lambda: [(a, request_in(r)) for a, parts in answers for part in parts for r in part.requests])

    def request_person(
        self, address: str, number: str, ssn: str, *, bind: bool = False, window: Window = OPEN
    ) -> RequestPerson:
        """Whom request `number` is for, as `address`, the instance that registered it, tells for the person of
        `ssn` (carried there over mutual TLS, for that check only); `bind`: binding it to them unless it is
        bound already (search_service.privacy_binding)."""
        asked = peer_pb2.CheckRequestPersonRequest(request_number=number, ssn=ssn, bind=bind, asked_by=self._me.tag)
        what, timeout = f"tell for whom its privacy request {number} is", window.timeout()
        answer = self._one(address, number, lambda stub: stub.CheckRequestPerson(asked, timeout=timeout), what)
        return _read(lambda: request_person_in(answer.person))

    def respond(self, address: str, number: str, ssn: str, window: Window = OPEN) -> PrivacyRequest:
        """Record at `address`, the instance that registered it, the answer to request `number` for the person
        of `ssn` (bound to them there, unless it is bound already; refused for another)."""
        asked = peer_pb2.RespondPrivacyRequestRequest(request_number=number, ssn=ssn, asked_by=self._me.tag)
        what, timeout = f"record the answer to its privacy request {number}", window.timeout()
        answer = self._one(address, number, lambda stub: stub.RespondPrivacyRequest(asked, timeout=timeout), what)
        if len(answer.requests) != 1:
            raise Unavailable(f"peer instance {address} no longer holds privacy request {number}")
        return _read(lambda: request_in(answer.requests[0]))

    def _one(self, address: str, number: str, call: Callable[[peer_pb2_grpc.PeerServiceStub], _T], what: str) -> _T:
        """One question to the instance holding request `number`, about it; `what` it was asked to do."""
        with self._channel(address) as channel:
            try:
                return call(peer_pb2_grpc.PeerServiceStub(channel))
            except grpc.RpcError as error:
                code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
                if code is grpc.StatusCode.NOT_FOUND:  # withdrawn there since it was found
                    raise Unavailable(f"peer instance {address} no longer holds privacy request {number}") from error
                if code is grpc.StatusCode.FAILED_PRECONDITION:  # its refusal (bound to another person): said so
                    details = error.details() if isinstance(error, grpc.Call) else ""
                    log.warning("peer %s did not %s: %s", address, what, code.name)
                    raise FailedPrecondition(f"peer instance {address} did not {what}: {details}") from error
                raise _failed(address, error, what) from error

    def _gather(self, call: Callable[[peer_pb2_grpc.PeerServiceStub], Iterator[Any]]) -> list[tuple[str, list[Any]]]:
        """Every other instance's answer (its address, the messages of its stream), asked at once (each call
        starts as it is made); raises unless every peer answered in full. A connection for each question:
        the privacy office asks a few times a day, and a connection kept for it would be one more to keep
        alive, and stale after a peer's restart."""
        with contextlib.ExitStack() as channels:
            pending = {
                address: call(peer_pb2_grpc.PeerServiceStub(channels.enter_context(self._channel(address))))
                for address in self.addresses
            }
            answered: dict[str, str] = {}  # instance id -> the address that reached it
            heard = {(self._me.instance_id, self._me.place)}  # roster entries heard from
            found: list[tuple[str, list[Any]]] = []
            members = self._roster.members()  # read before the answers: an instance joining meanwhile has none
            for address, parts in pending.items():
                try:
                    answer = list(parts)
                except grpc.RpcError as error:
                    for other in pending.values():
                        other.cancel()  # type: ignore[attr-defined]  # a grpc.Call: the answer fails as a whole
                    raise _failed(address, error, "give its part of the answer") from error
                if self._mine(address, answer):
                    continue
                instance = answer[0].instance_id
                if instance in answered:
                    raise FailedPrecondition(
                        f"peer addresses {answered[instance]} and {address} reach the same instance: list each "
                        "instance's own address (not a load balancer's)"
                    )
                answered[instance] = address
                heard.add((instance, answer[0].place))
                found.append((address, answer))
        # Every entry of the roster: an instance serving the store but not listed, or a copy of one serving
        # elsewhere (the id heard, from another place), holds disclosures no answer heard.
        unheard = [m for m in members if m.retired_at is None and (m.instance_id, m.place) not in heard]
        if unheard and unheard[0].instance_id == self._me.instance_id:
            raise FailedPrecondition(
                f"this instance's id at another place, {unheard[0].describe()}, was not asked: a copy of this "
                "instance, or this one before it moved; once none runs there, `dcii index retire-instance ID/PLACE`"
            )
        if unheard:
            raise FailedPrecondition(
                f"instance {unheard[0].describe()} serves this store and was not asked (its part of the answer "
                "would be missing): name it in DCII_PEERS, or retire it (`dcii index retire-instance`)"
            )
        return found

    def _mine(self, address: str, answer: list[Any]) -> bool:
        """Whether `address` reached this instance (its answer is empty then); raises for an answer that names
        no instance, or this one's id from another incarnation."""
        if not answer or not answer[0].instance_id:
            raise Unavailable(f"peer instance {address} gave no answer: an answer needs every instance's")
        if answer[0].instance_id != self._me.instance_id:
            return False
        if answer[0].incarnation == self._me.incarnation:
            return True
        raise FailedPrecondition(
            f"peer instance {address} has this instance's id (a copy of its data directory?): stop it, delete its "
            f"{INSTANCE_FILE} and start it again (RUNBOOK, Privacy Act duties with several instances)"
        )

    def _channel(self, address: str) -> grpc.Channel:
        assert self._credentials is not None  # read whenever there are addresses to ask
        return grpc.secure_channel(address, self._credentials)


def _read(convert: Callable[[], _T]) -> _T:
    """A peer's answer converted; one that cannot be (a date out of range, an unknown kind) fails the call as
    a peer that did not answer would."""
    try:
        return convert()
    except (ValueError, OverflowError) as error:
        raise Unavailable(f"a peer instance's answer could not be read ({type(error).__name__})") from error


def _failed(address: str, error: grpc.RpcError, what: str) -> DciiError:
    code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
    log.warning("peer %s did not %s: %s", address, what, code.name)
    why = f"peer instance {address} did not {what} ({code.name})"
    if code in _REFUSED:
        return FailedPrecondition(f"{why}: every instance must run this version and accredit the peer certificate")
    return Unavailable(f"{why}: an answer needs every instance's; retry once it is back")
