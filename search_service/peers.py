"""The deployment's other instances: asking each for its part of an accounting, and answering theirs.

Several instances behind a load balancer share one index (OpenSearch) but each accounts for what it
disclosed in its own audit trail (search_service.accounting): a person's accounting, or the earlier
recipients a statement of dispute is sent to, is the union of every instance's. An instance given its
peers (`dcii serve --peer HOST:PORT`, repeated, or DCII_PEERS=HOST:PORT,HOST:PORT) asks each of them for its
part over mutual TLS, presenting the deployment's peer certificate (`<pki>/dcii-peer.pem` and its key: a
client certificate of the deployment's CA whose activity holds the PEER role, accredited on every instance),
and answers with the union. A peer answers from its own trail (search_service.peer_service), never asking
further, and records in its trail that it did, without PII. The register of Privacy Act requests is each
instance's too (a request is registered where it was opened): an answer on another instance finds it, and
records its answer, there; the list is every instance's.

Fail closed: a peer that does not answer, or refuses, fails the privacy office's call (UNAVAILABLE or
FAILED_PRECONDITION naming the peer's address) before anything is recorded or queued: an accounting that
lacks an instance's disclosures looks complete and is wrong.

Instances tell each other apart by the id each keeps in its data directory (`instance.id`, made once; the
processes of one instance share it): the instance's own address in the list is answered by itself and
skipped, and two addresses reaching one instance fail the call, since a load balancer's address reaches
whichever instance it picks and the list must name every instance.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import grpc

from dcii.v1 import peer_pb2, peer_pb2_grpc
from indexer.exc import DciiError, FailedPrecondition, Unavailable
from search_service.accounting import Disclosure
from search_service.peer_wire import disclosures_in, request_in
from search_service.privacy_requests import PrivacyRequest

log = logging.getLogger(__name__)

PEER_CERTIFICATE = "dcii-peer"  # <pki>/dcii-peer.pem and dcii-peer-key.pem
INSTANCE_FILE = "instance.id"
# How long a peer has to answer; the privacy office's call waits for the slowest.
PEER_TIMEOUT = 30.0
# Codes that say the peer is there but will not answer this instance: no retry will change them.
_REFUSED = frozenset(
    {grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.UNIMPLEMENTED}
)


def instance_id(data_dir: Path) -> str:
    """This instance's id, made the first time (32 hex digits in `<data>/instance.id`) and kept: a copy of
    a data directory (a restore on another machine) keeps it, as it keeps the trail it names."""
    path = data_dir / INSTANCE_FILE
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        pass
    made = path.with_name(f".{INSTANCE_FILE}.{os.getpid()}")
    made.write_text(secrets.token_hex(16) + "\n", encoding="ascii")
    try:
        os.link(made, path)  # never replaces one another process made meanwhile
    except FileExistsError:
        pass
    finally:
        made.unlink()
    return path.read_text(encoding="ascii").strip()


class Peers:
    """The other instances, asked together; `own_id` is this instance's (its own address is skipped)."""

    def __init__(self, addresses: Sequence[str], pki_dir: Path, own_id: str, *, timeout: float = PEER_TIMEOUT) -> None:
        self.addresses = tuple(dict.fromkeys(addresses))
        self._own_id, self._timeout = own_id, timeout
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

    def person_accounting(self, request: peer_pb2.PersonAccountingRequest) -> list[Disclosure]:
        answers = self._gather(lambda stub: stub.PersonAccounting(request, timeout=self._timeout))
        return [d for _, parts in answers for part in parts for d in disclosures_in(part.disclosures)]

    def tracing_accounting(self, request: peer_pb2.TracingAccountingRequest) -> list[Disclosure]:
        answers = self._gather(lambda stub: stub.TracingAccounting(request, timeout=self._timeout))
        return [d for _, parts in answers for part in parts for d in disclosures_in(part.disclosures)]

    def privacy_requests(
        self, number: str = "", *, overdue_only: bool = False, late_only: bool = False
    ) -> list[tuple[str, PrivacyRequest]]:
        """(address, request) for each request the other instances registered: the one under `number`, or all."""
        asked = peer_pb2.FindPrivacyRequestsRequest(
            request_number=number, overdue_only=overdue_only, late_only=late_only
        )
        answers = self._gather(lambda stub: stub.FindPrivacyRequests(asked, timeout=self._timeout))
        return [(address, request_in(r)) for address, parts in answers for part in parts for r in part.requests]

    def respond(self, address: str, number: str) -> PrivacyRequest:
        """Record at `address`, the instance that registered it, the answer to request `number`."""
        with self._channel(address) as channel:
            try:
                answer = peer_pb2_grpc.PeerServiceStub(channel).RespondPrivacyRequest(
                    peer_pb2.RespondPrivacyRequestRequest(request_number=number), timeout=self._timeout
                )
            except grpc.RpcError as error:
                raise _failed(address, error, "record the answer to its privacy request") from error
        if len(answer.requests) != 1:
            raise Unavailable(f"peer instance {address} no longer holds privacy request {number}")
        return request_in(answer.requests[0])

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
            found: list[tuple[str, list[Any]]] = []
            for address, parts in pending.items():
                try:
                    answer = list(parts)
                except grpc.RpcError as error:
                    for other in pending.values():
                        other.cancel()  # type: ignore[attr-defined]  # a grpc.Call: the answer fails as a whole
                    raise _failed(address, error, "give its part of the answer") from error
                instance = answer[0].instance_id if answer else ""
                if instance == self._own_id:
                    continue
                if not instance:
                    raise Unavailable(f"peer instance {address} gave no answer: an answer needs every instance's")
                if instance in answered:
                    raise FailedPrecondition(
                        f"peer addresses {answered[instance]} and {address} reach the same instance: list each "
                        "instance's own address (not a load balancer's)"
                    )
                answered[instance] = address
                found.append((address, answer))
            return found

    def _channel(self, address: str) -> grpc.Channel:
        return grpc.secure_channel(address, self._credentials)


def _failed(address: str, error: grpc.RpcError, what: str) -> DciiError:
    code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
    log.warning("peer %s did not %s: %s", address, what, code.name)
    why = f"peer instance {address} did not {what} ({code.name})"
    if code in _REFUSED:
        return FailedPrecondition(f"{why}: every instance must run this version and accredit the peer certificate")
    return Unavailable(f"{why}: an answer needs every instance's; retry once it is back")
