"""The gRPC server object itself: its thread pool, limits, interceptors, keepalive, health and reflection
services, and the hook that audits what a call refuses part of. Split from search_service.server, which
wires the servicers and runs the server."""

from __future__ import annotations

from collections.abc import Callable
from concurrent import futures
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
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
from search_service.registry import Registry

if TYPE_CHECKING:
    from search_service.server import ServerConfig

MAX_MESSAGE_BYTES = 4 * 1024 * 1024


def grpc_server(
    config: ServerConfig, registry: Registry, audit: AuditLog, metrics: ServerMetrics | None
) -> grpc.Server:
    """The gRPC server with its thread pool, its limits and the interceptors every call passes."""

    def audit_refusal(method: str, fingerprint: str, reason: str) -> None:
        audit.record_event("REFUSAL", fingerprint or "no-certificate", {"method": method, "reason": reason})

    return grpc.server(
        futures.ThreadPoolExecutor(max_workers=config.max_workers, thread_name_prefix="rpc"),
        maximum_concurrent_rpcs=config.max_concurrent_rpcs,
        interceptors=[
            *([] if metrics is None else [metrics.interceptor]),  # first: it also counts auth refusals
            AuthInterceptor(
                registry,
                on_refusal=audit_refusal,
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


def server_credentials(pki_dir: Path) -> grpc.ServerCredentials:
    try:
        key, cert, ca = ((pki_dir / name).read_bytes() for name in ("server-key.pem", "server.pem", "ca.pem"))
    except OSError as error:
        raise FailedPrecondition(
            f"cannot read the server's certificate files in {pki_dir} ({error.strerror}: {Path(error.filename).name})"
            ": `dcii certs init` makes them"
        ) from error
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=ca, require_client_auth=True)


def listen(server: grpc.Server, config: ServerConfig, credentials: grpc.ServerCredentials) -> int:
    """Binds the server's port (0: any free one); returns it."""
    try:
        port = server.add_secure_port(f"{config.host}:{config.port}", credentials)
    except RuntimeError as error:  # grpcio's word for a port it cannot bind (SO_REUSEPORT: another's, taken)
        raise FailedPrecondition(f"cannot listen on {config.host}:{config.port}: another dcii serve?") from error
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


def refusals_in_calls(audit: AuditLog) -> Callable[[Caller, str, str, int], None]:
    """Records what a call refuses part of (a stream's actions on other agencies' tracings, a batch's queries
    for a purpose not accredited), as the interceptor records a refused call (SECURITY.md: every refusal)."""

    def record(caller: Caller, method: str, reason: str, count: int) -> None:
        audit.record_event("REFUSAL", caller.fingerprint, {"method": method, "reason": reason, "count": str(count)})

    return record
