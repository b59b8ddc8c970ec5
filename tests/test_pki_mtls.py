"""search_service.pki's certificates on a real mutual-TLS gRPC server: a client certificate from the CA is
served and identified by its fingerprint (what grpc's auth context holds, which the server relies on), and a
client without a valid certificate (none, another CA's, expired, a server certificate) never reaches a handler."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent import futures
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from search_service import pki

_WHOAMI = "/dcii.test.Peer/WhoAmI"


@dataclass
class _MtlsServer:
    port: int
    ca: pki.Issued
    client: pki.Issued
    # What the server saw for each call it actually served (so rejected handshakes can be told apart).
    auth_contexts: list[Mapping[str, object]] = field(default_factory=list)
    identity_keys: list[str | None] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture(scope="module")
def mtls() -> Iterator[_MtlsServer]:
    ca = pki.make_ca()
    server_pair = pki.issue_server_cert(ca)
    state = _MtlsServer(port=0, ca=ca, client=pki.issue_client_cert(ca, "NCIS-RA-01", "NCIS"))

    def whoami(request: bytes, context: grpc.ServicerContext) -> bytes:
        # types-grpcio says Mapping[str, bytes]; at runtime each value is a list of bytes.
        seen: Mapping[str, object] = context.auth_context()
        with state.lock:
            state.auth_contexts.append(seen)
            state.identity_keys.append(context.peer_identity_key())
        pem = seen["x509_pem_cert"]
        assert isinstance(pem, list) and isinstance(pem[0], bytes)
        return pki.fingerprint(pem[0]).encode()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "dcii.test.Peer", {"WhoAmI": grpc.unary_unary_rpc_method_handler(whoami)}
            ),
        )
    )
    credentials = grpc.ssl_server_credentials(
        [(server_pair.key_pem, server_pair.cert_pem)], root_certificates=ca.cert_pem, require_client_auth=True
    )
    state.port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    try:
        yield state
    finally:
        server.stop(None).wait()


def _channel(state: _MtlsServer, client: pki.Issued | None) -> grpc.Channel:
    credentials = grpc.ssl_channel_credentials(
        state.ca.cert_pem,
        private_key=client.key_pem if client else None,
        certificate_chain=client.cert_pem if client else None,
    )
    # A private subchannel pool: a connection made by one test's credentials is never reused by another.
    options = [("grpc.use_local_subchannel_pool", 1)]
    return grpc.secure_channel(f"127.0.0.1:{state.port}", credentials, options=options)


def _health_check(state: _MtlsServer, client: pki.Issued | None) -> object:
    with _channel(state, client) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        return stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)


def test_mtls_client_from_the_ca_is_served_and_identified(mtls: _MtlsServer) -> None:
    response = _health_check(mtls, mtls.client)
    assert getattr(response, "status", None) == health_pb2.HealthCheckResponse.SERVING

    with _channel(mtls, mtls.client) as channel:
        whoami: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(_WHOAMI)
        answer = whoami(b"", timeout=10)
    assert isinstance(answer, bytes)
    assert answer.decode() == mtls.client.fingerprint

    with mtls.lock:
        seen, identity_key = mtls.auth_contexts[-1], mtls.identity_keys[-1]
    # The server relies on these: every value is a list of bytes, the leaf certificate is PEM.
    assert all(isinstance(v, list) and all(isinstance(b, bytes) for b in v) for v in seen.values())
    assert seen["transport_security_type"] == [b"ssl"]
    assert seen["security_level"] == [b"TSI_PRIVACY_AND_INTEGRITY"]
    assert seen["x509_common_name"] == [b"NCIS-RA-01"]
    assert seen["x509_subject"] == [b"OU=DCII accredited activity,O=NCIS,CN=NCIS-RA-01"]
    assert seen["x509_subject_alternative_name"] == [b"urn:dcii:activity:NCIS-RA-01"]
    pem = seen["x509_pem_cert"]
    assert isinstance(pem, list) and len(pem) == 1
    assert pki.fingerprint(pem[0]) == mtls.client.fingerprint
    # With a SAN present grpc names the peer by it, not by the CN.
    assert identity_key == "x509_subject_alternative_name"


def _expired(state: _MtlsServer) -> pki.Issued:
    return pki.issue_client_cert(state.ca, "AFOSI-01", "AFOSI", not_after=datetime.now(UTC) - timedelta(days=1))


@pytest.mark.parametrize(
    "make_client",
    [
        pytest.param(lambda s: None, id="no-client-certificate"),
        pytest.param(lambda s: pki.issue_client_cert(pki.make_ca(), "NCIS-RA-01", "NCIS"), id="other-ca"),
        pytest.param(_expired, id="expired"),
        pytest.param(lambda s: pki.issue_server_cert(s.ca), id="server-cert-as-client"),
    ],
)
def test_mtls_refuses_clients_without_a_valid_certificate(
    mtls: _MtlsServer, make_client: Callable[[_MtlsServer], pki.Issued | None]
) -> None:
    client = make_client(mtls)
    with mtls.lock:
        served_before = len(mtls.auth_contexts)
    with pytest.raises(grpc.RpcError) as raised:
        _health_check(mtls, client)
    error = raised.value
    assert isinstance(error, grpc.Call)
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    with _channel(mtls, client) as channel, pytest.raises(grpc.RpcError):
        channel.unary_unary(_WHOAMI)(b"", timeout=10)
    with mtls.lock:
        assert len(mtls.auth_contexts) == served_before  # the handshake failed; no handler ran
