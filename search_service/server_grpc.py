"""The gRPC server object itself: its thread pool, limits, interceptors, keepalive, health and reflection
services, the hooks that audit refused calls, what a call refuses part of and the locks failed logins set
(search_service.refusal_audit), and what a start checks before it opens any file (the certificate files,
the ports). Split from search_service.server, which wires the servicers and runs
the server."""

from __future__ import annotations

import errno
import socket
from collections.abc import Sequence
from concurrent import futures
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from dcii.v1 import admin_pb2, batch_pb2, ingest_pb2, privacy_pb2, search_pb2
from indexer.exc import FailedPrecondition
from search_service import shared_rates
from search_service.accounting import AuditLog
from search_service.accreditation import Caller
from search_service.auth import AuthInterceptor
from search_service.limits import CallLimiter, RateLimit, RateLimiter
from search_service.metrics import ServerMetrics
from search_service.refusal_audit import OnRefusalInCall, RefusedCall, record_locked
from search_service.registry import Registry

if TYPE_CHECKING:
    from search_service.server import ServerConfig

MAX_MESSAGE_BYTES = 4 * 1024 * 1024


def grpc_server(
    config: ServerConfig, registry: Registry, audit: AuditLog, metrics: ServerMetrics | None
) -> grpc.Server:
    """The gRPC server with its thread pool, its limits and the interceptors every call passes. The lock
    that a failed login sets on `registry` is recorded in `audit` from now on (OPERATOR_LOCKED)."""
    registry.on_locked = lambda account, until: record_locked(audit, account, until)
    return grpc.server(
        futures.ThreadPoolExecutor(max_workers=config.max_workers, thread_name_prefix="rpc"),
        maximum_concurrent_rpcs=config.max_concurrent_rpcs,
        interceptors=[
            *([] if metrics is None else [metrics.interceptor]),  # before auth: it also counts auth refusals
            AuthInterceptor(
                registry,
                on_refusal=lambda refused: refused.record(audit),
                limiter=_rate_limit(config),
                calls=CallLimiter(config.calls_per_activity),
            ),
        ],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            # Off unless several processes serve: then a second server started on a taken port by mistake
            # would share it silently. On, every process of this server binds the port (the same user only).
            ("grpc.so_reuseport", int(config.processes > 1)),
            *config.keepalive.server_options(),
            # Calls one connection may have open at once (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS): gRPC's core
            # holds the rest back, or refuses them, before they cost this process anything.
            ("grpc.max_concurrent_streams", config.streams_per_connection),
        ],
    )


def before_any_file(config: ServerConfig) -> grpc.ServerCredentials:
    """What a start can fail on, checked before any data file is opened (or, at a mistyped --data, made)."""
    credentials = server_credentials(config.pki_dir)
    if config.processes == 1 and config.port:
        check_port_free(config.host, config.port)
    if config.metrics_port:  # and every replica's, P + i: one taken made that replica fail and restart for ever
        last = config.metrics_port + (config.processes - 1 if config.replica_index == 0 else 0)
        if last > 65535:
            raise FailedPrecondition(f"--metrics-port: the processes' ports {config.metrics_port}-{last} pass 65535")
        for port in range(config.metrics_port, last + 1):
            check_port_free(config.host, port, what="serve metrics")
    return credentials


def check_port_free(host: str, port: int, what: str = "listen") -> None:
    """One serving process binds its port exclusively: a second server on it fails here, in one line."""
    address = host.strip("[]")
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gRPC binds: a closing one's port will do
        try:
            probe.bind((address, port))
        except OSError as error:
            guess = ": another dcii serve?" if error.errno == errno.EADDRINUSE else ""
            raise FailedPrecondition(f"cannot {what} on {host}:{port} ({error.strerror}{guess})") from error


def server_credentials(pki_dir: Path) -> grpc.ServerCredentials:
    try:
        key, cert, ca = ((pki_dir / name).read_bytes() for name in ("server-key.pem", "server.pem", "ca.pem"))
    except OSError as error:
        raise FailedPrecondition(
            f"cannot read the server's certificate files in {pki_dir} ({error.strerror}: {Path(error.filename).name})"
            ": `dcii certs init` makes them"
        ) from error
    _check_certificates(pki_dir, key, cert, ca)
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=ca, require_client_auth=True)


def _check_certificates(pki_dir: Path, key: bytes, cert: bytes, ca: bytes) -> None:
    """FailedPrecondition, in one line naming the files, unless each parses and server.pem is server-key.pem's:
    gRPC refuses such files only once it binds the port, and a rotation half done (the new server.pem, the
    old key) was then "cannot listen ...: another dcii serve?" (an operator's test)."""
    try:
        certificate = x509.load_pem_x509_certificate(cert)
    except ValueError:
        raise FailedPrecondition(f"{pki_dir / 'server.pem'} is not a PEM certificate (damaged or cut short?)") from None
    try:
        private = serialization.load_pem_private_key(key, password=None)
    except (ValueError, TypeError):  # TypeError: a key that needs a password
        raise FailedPrecondition(
            f"{pki_dir / 'server-key.pem'} is not a PEM private key without a password (damaged or cut short?)"
        ) from None
    try:
        x509.load_pem_x509_certificates(ca)
    except ValueError:
        raise FailedPrecondition(f"{pki_dir / 'ca.pem'} is not a PEM certificate (damaged or cut short?)") from None
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if certificate.public_key().public_bytes(*spki) != private.public_key().public_bytes(*spki):
        raise FailedPrecondition(
            f"server.pem and server-key.pem in {pki_dir} do not match (a certificate rotation half done?):"
            " put the new certificate and its own key in place together"
        )


def listen(server: grpc.Server, config: ServerConfig, credentials: grpc.ServerCredentials) -> int:
    """Binds the server's port (0: any free one); returns it."""
    try:
        port = server.add_secure_port(f"{config.host}:{config.port}", credentials)
    except RuntimeError as error:  # grpcio's word for a port it cannot bind (SO_REUSEPORT: another's, taken)
        if config.port:
            check_port_free(config.host, config.port)  # taken: "another dcii serve?"
        raise FailedPrecondition(
            f"cannot listen on {config.host}:{config.port} (gRPC's lines above say why)"
        ) from error
    if port == 0:
        raise FailedPrecondition(f"cannot listen on {config.host}:{config.port}")
    return port


def _rate_limit(config: ServerConfig) -> RateLimit:
    """Each activity's rate: counted in this process, or in a table every serving process shares when
    several serve (search_service.shared_rates), so that N processes do not allow N times the rate."""
    if config.processes > 1:
        path = config.data_dir / shared_rates.FILE_NAME
        return shared_rates.SharedRateLimiter(path, config.rate_per_activity, config.burst_per_activity)
    return RateLimiter(config.rate_per_activity, config.burst_per_activity)


def health_and_reflection(server: grpc.Server) -> health.HealthServicer:
    """The standard health service (every service SERVING) and reflection, added to `server`."""
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    services = [
        ingest_pb2.DESCRIPTOR.services_by_name["IngestService"].full_name,
        search_pb2.DESCRIPTOR.services_by_name["SearchService"].full_name,
        admin_pb2.DESCRIPTOR.services_by_name["SessionService"].full_name,
        admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name,
        privacy_pb2.DESCRIPTOR.services_by_name["PrivacyService"].full_name,
        batch_pb2.DESCRIPTOR.services_by_name["BatchService"].full_name,
    ]
    for name in ["", *services]:
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection([*services, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    return health_servicer


def refusals_in_calls(audit: AuditLog) -> OnRefusalInCall:
    """Records what a call refuses part of (a stream's actions on other agencies' tracings, a batch's queries
    for a purpose not accredited), as the interceptor records a refused call (SECURITY.md: every refusal)."""

    def record(caller: Caller, method: str, reason: str, count: int, targets: Sequence[str] = ()) -> None:
        RefusedCall(method, caller.fingerprint, reason, caller, targets=targets, count=count).record(audit)

    return record
