"""The deployment's other instances: asking each for its part of an accounting, and answering theirs.

Several instances behind a load balancer share one index (OpenSearch) but each accounts for what it
disclosed in its own audit trail (search_service.accounting): a person's accounting, or the earlier
recipients a statement of dispute is sent to, is the union of every instance's. An instance given its
peers (`dcii serve --peer HOST:PORT`, repeated, or DCII_PEERS=HOST:PORT,HOST:PORT) asks each of them for its
part over mutual TLS, presenting the deployment's peer certificate (`<pki>/dcii-peer.pem` and its key: a
client certificate of the deployment's CA whose activity holds the PEER role, accredited on every instance),
and answers with the union. A peer answers from its own trail (PeerServicer), never asking further, and
records in its trail that it did, without PII.

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
from typing import TYPE_CHECKING

import grpc

from dcii.v1 import peer_pb2, peer_pb2_grpc
from indexer.exc import DciiError, FailedPrecondition, Unavailable
from search_service.accounting import AuditLog, Disclosure
from search_service.auth import caller_of
from search_service.peer_wire import (
    disclosure_out,
    disclosures_in,
    person_query_in,
    tracing_query_in,
)
from search_service.privacy_person import accounting, tracing_accounting

if TYPE_CHECKING:
    from search_service.server import ServerConfig

log = logging.getLogger(__name__)

PEER_CERTIFICATE = "dcii-peer"  # <pki>/dcii-peer.pem and dcii-peer-key.pem
INSTANCE_FILE = "instance.id"
# How long a peer has to answer; the privacy office's call waits for the slowest.
PEER_TIMEOUT = 30.0
# Disclosures in one message of an answer (~150 bytes each, well under the 4 MiB a message may be): a
# person's accounting may be long (five years of searches).
PART = 2_000
Answer = peer_pb2.PeerAccountingResponse
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
        return self._ask(lambda stub: stub.PersonAccounting(request, timeout=self._timeout))

    def tracing_accounting(self, request: peer_pb2.TracingAccountingRequest) -> list[Disclosure]:
        return self._ask(lambda stub: stub.TracingAccounting(request, timeout=self._timeout))

    def _ask(self, call: Callable[[peer_pb2_grpc.PeerServiceStub], Iterator[Answer]]) -> list[Disclosure]:
        """Every peer's disclosures, asked at once (each call starts as it is made); raises unless every peer
        answered in full. A connection for each question: the privacy office asks a few times a day, and a
        connection kept for it would be one more to keep alive, and stale after a peer's restart."""
        with contextlib.ExitStack() as channels:
            pending = {
                a: call(
                    peer_pb2_grpc.PeerServiceStub(channels.enter_context(grpc.secure_channel(a, self._credentials)))
                )
                for a in self.addresses
            }
            return self._collect(pending)

    def _channel(self, address: str) -> grpc.Channel:
        return grpc.secure_channel(address, self._credentials)

    def _collect(self, pending: dict[str, Iterator[Answer]]) -> list[Disclosure]:
        answered: dict[str, str] = {}  # instance id -> the address that reached it
        found: list[Disclosure] = []
        for address, parts in pending.items():
            try:
                answer = list(parts)
            except grpc.RpcError as error:
                for other in pending.values():
                    other.cancel()  # type: ignore[attr-defined]  # a grpc.Call: the answer fails as a whole
                raise _failed(address, error) from error
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
            found += (d for part in answer for d in disclosures_in(part.disclosures))
        return found


def _failed(address: str, error: grpc.RpcError) -> DciiError:
    code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
    log.warning("peer %s did not give its part of an accounting: %s", address, code.name)
    why = f"peer instance {address} did not give its part of the accounting ({code.name})"
    if code in _REFUSED:
        return FailedPrecondition(f"{why}: every instance must run this version and accredit the peer certificate")
    return Unavailable(f"{why}: an answer needs every instance's; retry once it is back")


def serve_peers(server: grpc.Server, audit: AuditLog, config: ServerConfig) -> Peers | None:
    """Answer the other instances (always: an instance asked need not ask), and the client that asks them
    (None without peers). Raises FailedPrecondition at start when peers are named without the certificate."""
    own_id = instance_id(config.data_dir)
    peer_pb2_grpc.add_PeerServiceServicer_to_server(PeerServicer(audit, own_id), server)
    return Peers(config.peers, config.pki_dir, own_id) if config.peers else None


class PeerServicer(peer_pb2_grpc.PeerServiceServicer):
    """This instance's part of another instance's accounting, from its own trail."""

    def __init__(self, audit: AuditLog, own_id: str) -> None:
        self._audit, self._own_id = audit, own_id

    def _answer(self, context: grpc.ServicerContext, kind: str, disclosures: list[Disclosure]) -> Iterator[Answer]:
        # Recorded before anything is sent: who read this trail's accounting, and how much (no PII).
        detail = {"accounting": kind, "disclosures": str(len(disclosures))}
        self._audit.record_event("PEER_ACCOUNTING_GIVEN", caller_of(context).actor, detail)
        for start in range(0, max(len(disclosures), 1), PART):
            part = Answer(instance_id=self._own_id)
            for disclosure in disclosures[start : start + PART]:
                disclosure_out(disclosure, part.disclosures.add())
            yield part

    def PersonAccounting(  # noqa: N802 (gRPC's method name)
        self, request: peer_pb2.PersonAccountingRequest, context: grpc.ServicerContext
    ) -> Iterator[Answer]:
        query = person_query_in(request)
        found = accounting(self._audit, query, withhold_law_enforcement=request.withhold_law_enforcement)
        return self._answer(context, "PERSON", found)

    def TracingAccounting(  # noqa: N802
        self, request: peer_pb2.TracingAccountingRequest, context: grpc.ServicerContext
    ) -> Iterator[Answer]:
        key, subject, began = tracing_query_in(request)
        return self._answer(context, "TRACING", tracing_accounting(self._audit, key, subject, began))
