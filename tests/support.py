"""Test helpers: a real server on loopback with real mutual TLS, and accredited clients for it."""

from __future__ import annotations

import atexit
import datetime as dt
import os
import secrets
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from dcii.v1 import admin_pb2, admin_pb2_grpc, ingest_pb2, ingest_pb2_grpc, search_pb2, search_pb2_grpc, tracing_pb2
from search_service import pki
from search_service.accreditation import Purpose, Role
from search_service.registry import Registry
from search_service.server import RunningServer, ServerConfig, start_server

ROOT = Path(__file__).resolve().parent.parent
Metadata = tuple[tuple[str, str], ...]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def channel_for(
    port: int, ca_pem: bytes, client: pki.Issued | None, options: Sequence[tuple[str, Any]] = ()
) -> grpc.Channel:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=ca_pem,
        private_key=client.key_pem if client else None,
        certificate_chain=client.cert_pem if client else None,
    )
    return grpc.secure_channel(f"localhost:{port}", credentials, options=list(options))


@dataclass
class Client:
    """An accredited activity's terminal, logged in (or not) as one operator."""

    channel: grpc.Channel
    metadata: Metadata = ()
    activity_id: str = ""

    @property
    def ingest(self) -> ingest_pb2_grpc.IngestServiceStub:
        return ingest_pb2_grpc.IngestServiceStub(self.channel)

    @property
    def searcher(self) -> search_pb2_grpc.SearchServiceStub:
        return search_pb2_grpc.SearchServiceStub(self.channel)

    @property
    def sessions(self) -> admin_pb2_grpc.SessionServiceStub:
        return admin_pb2_grpc.SessionServiceStub(self.channel)

    @property
    def admin(self) -> admin_pb2_grpc.AdminServiceStub:
        return admin_pb2_grpc.AdminServiceStub(self.channel)

    def login(self, account: str, password: str) -> str:
        response = self.sessions.Login(admin_pb2.LoginRequest(account_code=account, password=password), timeout=10)
        self.metadata = (("authorization", f"Bearer {response.session_token}"),)
        return response.session_token

    def push(self, requests: Iterable[ingest_pb2.IngestRequest]) -> list[ingest_pb2.IngestResult]:
        return list(self.ingest.Ingest(iter(list(requests)), metadata=self.metadata, timeout=30))

    def upsert(self, *tracings: tracing_pb2.Tracing) -> list[ingest_pb2.IngestResult]:
        return self.push(ingest_pb2.IngestRequest(request_id=str(i), upsert=t) for i, t in enumerate(tracings))

    def search(self, **fields: object) -> search_pb2.SearchResponse:
        fields.setdefault("purpose", search_pb2.PURPOSE_SECURITY_CLEARANCE)
        request = search_pb2.SearchRequest(**fields)  # type: ignore[arg-type]
        return self.searcher.Search(request, metadata=self.metadata, timeout=10)

    def close(self) -> None:
        self.channel.close()


@contextmanager
def held_ingest_streams(
    clients: Sequence[Client], first: Callable[[int], ingest_pb2.IngestRequest], timeout: float = 60
) -> Iterator[tuple[int, list[grpc.RpcError]]]:
    """One ingest stream a client, each sending the action `first(n)` and then nothing, open until the
    block ends (each holds a call in progress on the server): yields how many the server took (answering
    their action) and the refusals of the others. The clients are closed at the end."""
    hold = threading.Event()

    def idle(n: int) -> Iterator[ingest_pb2.IngestRequest]:
        yield first(n)
        hold.wait()

    calls = [c.ingest.Ingest(idle(n), metadata=c.metadata, timeout=timeout) for n, c in enumerate(clients)]
    try:
        accepted, refused = 0, []
        for call in calls:
            try:
                next(call)
                accepted += 1
            except grpc.RpcError as error:
                refused.append(error)
        yield accepted, refused
    finally:
        for client, call in zip(clients, calls, strict=True):
            call.cancel()
            client.close()
        hold.set()


@dataclass
class Index:
    """A running server with its PKI and registry, and a way to accredit test activities."""

    pki_dir: Path
    data_dir: Path
    ca: pki.Issued
    running: RunningServer | None = None
    port: int = 0
    clients: list[Client] = field(default_factory=list)
    # The store the server runs on (None: the embedded store in data_dir); see store_under_test.
    store_url: str | None = None

    @property
    def registry(self) -> Registry:
        return Registry(self.data_dir / "registry.db")

    def accredit(
        self,
        activity_id: str,
        agency: str,
        roles: Sequence[Role],
        purposes: Sequence[Purpose] = tuple(Purpose),
        *,
        not_after: dt.datetime | None = None,
    ) -> tuple[pki.Issued, str, str]:
        """Register an activity with a fresh certificate and one operator; (cert, account, password)."""
        cert = pki.issue_client_cert(self.ca, activity_id, agency, not_after=not_after)
        registry = self.registry
        registry.add_activity(activity_id, agency, roles, purposes)
        registry.add_certificate(activity_id, cert.fingerprint)
        account, password = f"{activity_id.lower()}-op", secrets.token_urlsafe(16)
        registry.add_operator(account, activity_id, password)
        registry.close()
        return cert, account, password

    def connect(self, cert: pki.Issued | None) -> Client:
        client = Client(channel_for(self.port, self.ca.cert_pem, cert))
        self.clients.append(client)
        return client

    def client(self, activity_id: str, agency: str, roles: Sequence[Role], **kwargs: object) -> Client:
        """A logged-in client of a newly accredited activity."""
        cert, account, password = self.accredit(activity_id, agency, roles, **kwargs)  # type: ignore[arg-type]
        client = self.connect(cert)
        client.activity_id = activity_id
        client.login(account, password)
        return client

    def start(self, **settings: Any) -> None:
        settings.setdefault("store_url", self.store_url)
        config = ServerConfig(self.data_dir, self.pki_dir, port=self.port or 0, **settings)
        self.running = start_server(config)
        self.port = self.running.port

    def stop(self) -> None:
        for client in self.clients:
            client.close()
        self.clients.clear()
        if self.running is not None:
            self.running.stop(grace=1)
            self.running = None


def make_index(root: Path) -> Index:
    pki_dir, data_dir = root / "pki", root / "data"
    pki.init_pki(pki_dir, activities=[])
    return Index(pki_dir, data_dir, pki.load_issued(pki_dir, "ca"), store_url=store_under_test())


_osmem: list[Any] = []


def store_under_test() -> str | None:
    """The backend the service tests run on: the embedded store by default; with DCII_TEST_STORE=osmem, an
    osmem-server (OpenSearch API, in-process, started once) under a fresh index prefix per test; with
    DCII_TEST_STORE=<opensearch URL>, that cluster (scripts/test runs the service suites both ways)."""
    chosen = os.environ.get("DCII_TEST_STORE", "")
    if not chosen:
        return None
    prefix = f"dcii-t{secrets.token_hex(6)}"
    if chosen == "osmem":
        if not _osmem:
            from osmem_server import OsmemServer  # type: ignore[import-untyped]

            server = OsmemServer.start(japanese=False).__enter__()
            atexit.register(server.__exit__, None, None, None)
            _osmem.append(server)
        base = _osmem[0].url.replace("http://", "opensearch://")
        return f"{base}?prefix={prefix}&replicas=0&drain_seconds=0.2&timeout=60"
    separator = "&" if "?" in chosen else "?"
    return f"{chosen}{separator}prefix={prefix}"


# ---- a server in a real subprocess (for kill -9 tests and the CLI) ----


@contextmanager
def server_process(data_dir: Path, pki_dir: Path, port: int, *extra: str) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dcii.cli.main",
            "serve",
            "--data",
            str(data_dir),
            "--pki",
            str(pki_dir),
            "--port",
            str(port),
            *extra,
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        wait_for_port(port, process)
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
        if process.stderr is not None:
            process.stderr.close()


def wait_for_port(port: int, process: subprocess.Popen[bytes] | None = None, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            err = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise RuntimeError(f"server exited with {process.returncode}: {err[-2000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {port}")


# ---- what a test reads of a running server ----


def audit_entries(data_dir: Path) -> int:
    """How many entries the data directory's audit trail holds (read-only)."""
    conn = sqlite3.connect(f"file:{data_dir / 'audit.db'}?mode=ro", uri=True, timeout=30)
    try:
        return int(conn.execute("SELECT count(*) FROM entry").fetchone()[0])
    finally:
        conn.close()


def health(client: Client, service: str) -> int:
    """The health service's status of `service` ("" the server as a whole), asked over `client`'s channel."""
    stub = health_pb2_grpc.HealthStub(client.channel)
    return int(stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status)


def health_becomes(client: Client, service: str, status: int, seconds: float = 20.0) -> bool:
    """Whether `service` reaches `status` within `seconds`."""
    deadline = time.monotonic() + seconds
    while health(client, service) != status:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True
