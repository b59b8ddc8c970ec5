"""A full disk as the operator meets it (an operator's acceptance test): a login, whose session row the
registry cannot write, fails closed with UNAVAILABLE naming the cause, the readiness probe and `dcii_ready`
say so, and both come back by themselves once space returns; a full store is an ERROR in the server's log,
not only WARNINGs; and an unexpected error's log line names the method and its stack, never its text.

A real server subprocess, its storage made to fail in the two ways of tests/test_faults.py: a small tmpfs
filled to the last page (where a mount works), and the server's RLIMIT_FSIZE lowered under its files.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2

from dcii.v1 import admin_pb2
from search_service import pki, readiness
from search_service.accreditation import Role
from tests import factories as f
from tests.metrics_support import samples, scrape, value
from tests.server_proc import spawn_server, ssn, wait_until
from tests.support import Client, Index, free_port, health, health_becomes
from tests.test_faults import StorageFaults, breakable_index

SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
SEARCH_SERVICE = "dcii.v1.SearchService"
CANNOT_WRITE = "the registry cannot be written: "
PII = ("WHITFIELD", "Whitfield", "HAROLD", "Harold", "1971-04-12")


@dataclass
class Server(StorageFaults):
    index: Index
    process: subprocess.Popen[bytes]
    how: str
    log: Path
    metrics_port: int
    ballast: Path | None = None

    def server_pid(self) -> int:
        return self.process.pid

    def ready(self) -> float:
        return value(samples(scrape(self.metrics_port)), "dcii_ready")

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.startswith("{")]


@pytest.fixture(params=["tmpfs", "fsize"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    how: str = request.param
    with breakable_index(tmp_path, how) as index:
        pki_dir, data_dir = index.pki_dir, index.data_dir
        log, metrics_port = tmp_path / "server.log", free_port()
        with spawn_server(data_dir, pki_dir, index.port, stderr=log, metrics_port=metrics_port) as process:
            try:
                yield Server(index, process, how, log, metrics_port)
            finally:
                index.stop()


def _login(client: Client, account: str, password: str) -> admin_pb2.LoginResponse:
    request = admin_pb2.LoginRequest(account_code=account, password=password)
    response: admin_pb2.LoginResponse = client.sessions.Login(request, timeout=30)
    return response


def test_a_registry_that_cannot_be_written_fails_logins_closed_and_readiness_says_so(server: Server) -> None:
    cert, account, password = server.index.accredit("CCF-TERM", "ARMY-CCF", [Role.QUERIER])
    client = server.index.connect(cert)
    assert _login(client, account, password).session_token
    assert (health(client, SEARCH_SERVICE), server.ready()) == (SERVING, 1.0)
    server.break_storage()
    for _ in range(3):
        with pytest.raises(grpc.RpcError) as refused:
            _login(client, account, password)
        # UNAVAILABLE (DciiFailingClosed fires), not INTERNAL "internal error"; the cause, in SQLite's words.
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, refused.value.details()
        assert (refused.value.details() or "").startswith(CANNOT_WRITE), refused.value.details()
    # Out of the rotation (DciiNotReady fires), alive for a liveness probe.
    assert (health(client, SEARCH_SERVICE), health(client, ""), server.ready()) == (NOT_SERVING, SERVING, 0.0)
    wait_until(lambda: any(line.get("reason") == "registry" for line in server.lines()), 10, "the not-ready line")
    failing = [line for line in server.lines() if line["message"] == "failing closed"]
    assert failing and failing[0]["level"] == "ERROR" and failing[0]["reason"].startswith(CANNOT_WRITE)
    assert account not in server.log.read_text() and password not in server.log.read_text()
    server.repair_storage()
    assert health_becomes(client, SEARCH_SERVICE, SERVING, 4 * readiness.PROBE_SECONDS)
    assert server.ready() == 1.0
    assert _login(client, account, password).session_token
    # The probe's own session rows are taken back: only the two real logins are there.
    with contextlib.closing(sqlite3.connect(server.index.data_dir / "registry.db")) as conn:
        assert conn.execute("SELECT count(*) FROM session").fetchone()[0] == 2


def test_a_full_store_is_an_error_in_the_servers_log(server: Server) -> None:
    client = server.index.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER])  # logged in before the disk fills
    server.break_storage()
    sent = [f.upsert(f.person(record=f"NCIS-{n:06d}", ssn=ssn(n))) for n in range(30_000)]
    with pytest.raises(grpc.RpcError) as refused:
        for _ in client.ingest.Ingest(iter(sent), metadata=client.metadata, timeout=120):
            pass
    code, details = refused.value.code(), refused.value.details() or ""
    assert code in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE), (code, details)
    # RESOURCE_EXHAUSTED (the connector waits and sends again) is the server's fault here, logged as one.
    errors = [line for line in server.lines() if line["level"] == "ERROR" and line.get("code") == code.name]
    assert [line["reason"] for line in errors] == [details], server.lines()  # once, however many writes failed
    assert not any(value in server.log.read_text() for value in PII)
    server.repair_storage()


def test_an_unexpected_error_is_logged_with_its_method_and_stack_and_never_its_text(tmp_path: Path) -> None:
    pki_dir, data_dir = tmp_path / "pki", tmp_path / "data"
    pki.init_pki(pki_dir, activities=[])
    index = Index(pki_dir, data_dir, pki.load_issued(pki_dir, "ca"), port=free_port())
    cert, account, password = index.accredit("CCF-TERM", "ARMY-CCF", [Role.QUERIER])
    log = tmp_path / "server.log"
    with spawn_server(data_dir, pki_dir, index.port, stderr=log):
        # A defect stands in: the session table gone from under the server ("no such table: session").
        with contextlib.closing(sqlite3.connect(data_dir / "registry.db")) as conn:
            conn.execute("DROP TABLE session")
        client = index.connect(cert)
        with pytest.raises(grpc.RpcError) as refused:
            _login(client, account, password)
        index.stop()
    assert (refused.value.code(), refused.value.details()) == (grpc.StatusCode.INTERNAL, "internal error")
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    [line] = [line for line in lines if line["message"] == "unexpected error"]
    assert (line["level"], line["method"], line["error_type"]) == (
        "ERROR",
        "/dcii.v1.SessionService/Login",
        "OperationalError",
    )
    assert any(frame.startswith("registry_sessions.py:") for frame in line["stack"]), line["stack"]
    assert "no such table" not in log.read_text()  # not its text
