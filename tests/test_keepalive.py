"""HTTP/2 keepalive (search_service.keepalive): a terminal that vanishes without closing its connection gives
back its call slot once the server's ping goes unanswered; clients' own pings are accepted, not answered
with GOAWAY. Real server, real TLS, a real client process stopped with SIGSTOP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from connectors.client import CLIENT_KEEPALIVE
from dcii.v1 import search_pb2, search_pb2_grpc, tracing_pb2
from search_service.accreditation import Role
from search_service.batch_worker import BatchSettings
from search_service.keepalive import Keepalive
from tests.support import ROOT, Index, make_index

# A terminal: opens an ingest stream, sends one action, prints "held" once it is answered, then waits with
# the stream open (argv: port, CA, certificate, key, session token).
TERMINAL = """
import sys, threading, grpc
from dcii.v1 import ingest_pb2_grpc
from tests import factories as f
port, ca, cert, key, token = sys.argv[1:]
read = lambda p: open(p, "rb").read()
credentials = grpc.ssl_channel_credentials(read(ca), read(key), read(cert))
channel = grpc.secure_channel(f"localhost:{port}", credentials)
forever = threading.Event()
def actions():
    yield f.upsert(f.person(record="NCIS-0001"))
    forever.wait()
stream = ingest_pb2_grpc.IngestServiceStub(channel).Ingest(actions(), metadata=(("authorization", f"Bearer {token}"),))
next(stream)
print("held", flush=True)
forever.wait()
"""

QUERY = search_pb2.SearchRequest(
    mode=search_pb2.SEARCH_MODE_NAME_ONLY,
    name=tracing_pb2.PersonName(surname="Whitfield", given_name="Harold"),
    purpose=search_pb2.PURPOSE_SECURITY_CLEARANCE,
)


@pytest.fixture
def index(tmp_path: Path) -> Iterator[Index]:
    made = make_index(tmp_path)
    yield made
    made.stop()


def _terminal(index: Index, tmp_path: Path) -> tuple[subprocess.Popen[str], grpc.Channel, tuple[tuple[str, str], ...]]:
    """A terminal process holding NCIS's one call slot, and a second connection of the same activity."""
    cert, account, password = index.accredit("NCIS-RA-01", "NCIS", [Role.SUBMITTER, Role.QUERIER])
    probe = index.connect(cert)
    token = probe.login(account, password)
    files = {"ca.pem": index.ca.cert_pem, "cert.pem": cert.cert_pem, "key.pem": cert.key_pem}
    for name, pem in files.items():
        (tmp_path / name).write_bytes(pem)
    process = subprocess.Popen(
        [sys.executable, "-c", TERMINAL, str(index.port), *(str(tmp_path / name) for name in files), token],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "held"
    return process, probe.channel, probe.metadata


def _slot_free(channel: grpc.Channel, metadata: tuple[tuple[str, str], ...]) -> bool:
    try:
        search_pb2_grpc.SearchServiceStub(channel).Search(QUERY, metadata=metadata, timeout=10)
        return True
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error
        return False


@pytest.mark.parametrize("pings", [True, False], ids=["server pings", "no pings"])
def test_a_vanished_terminal_gives_back_its_call_slot(index: Index, tmp_path: Path, pings: bool) -> None:
    keepalive = Keepalive(time=0.5, timeout=0.5) if pings else Keepalive(time=3600, timeout=20)
    index.start(keepalive=keepalive, max_calls_per_activity=1, batch=BatchSettings(threads=0))
    process, channel, metadata = _terminal(index, tmp_path)
    try:
        assert not _slot_free(channel, metadata)  # the terminal's stream holds the activity's one slot
        os.kill(process.pid, signal.SIGSTOP)  # alive to TCP, deaf to HTTP/2: a hung or cut-off terminal
        deadline, freed = time.monotonic() + 6, False
        while not freed and time.monotonic() < deadline:
            time.sleep(0.25)
            freed = _slot_free(channel, metadata)
        assert freed is pings
    finally:
        process.kill()
        process.wait(timeout=30)


def _states_over(index: Index, client_ping_ms: int, seconds: float) -> list[str]:
    """The connectivity states of an idle channel that pings every `client_ping_ms`, over `seconds`."""
    cert, _, _ = index.accredit(f"ARMY-{client_ping_ms}", "ARMY-CCF", [Role.QUERIER])
    credentials = grpc.ssl_channel_credentials(index.ca.cert_pem, cert.key_pem, cert.cert_pem)
    options = [
        ("grpc.keepalive_time_ms", client_ping_ms),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
    ]
    states: list[str] = []
    with grpc.secure_channel(f"localhost:{index.port}", credentials, options=options) as channel:
        channel.subscribe(lambda state: states.append(state.name), try_to_connect=True)
        time.sleep(seconds)
    return states


@pytest.mark.parametrize("accepted", [True, False], ids=["accepted rate", "too often"])
def test_a_client_pinging_at_the_accepted_rate_keeps_its_connection(index: Index, accepted: bool) -> None:
    # Scaled down: the client pings every 0.3 s; the server accepts one every 0.1 s, or (gRPC's default
    # policy) one every 5 minutes, and then answers the third with GOAWAY too_many_pings.
    index.start(keepalive=Keepalive(min_client_ping=0.1 if accepted else 300), batch=BatchSettings(threads=0))
    states = _states_over(index, client_ping_ms=300, seconds=6)
    assert states[-1] == "READY" if accepted else "IDLE" in states[states.index("READY") :], states


def test_the_clients_ping_rate_is_one_the_servers_default_accepts() -> None:
    server = Keepalive()
    assert CLIENT_KEEPALIVE["grpc.keepalive_time_ms"] >= server.min_client_ping * 1000
    assert CLIENT_KEEPALIVE["grpc.keepalive_permit_without_calls"] == 1  # so the server must permit it idle
    assert dict(server.server_options())["grpc.keepalive_permit_without_calls"] == 1


def test_a_connection_that_makes_no_call_is_closed_and_a_later_call_opens_another(index: Index) -> None:
    """20,000 connections that never called, from a certificate accredited to nothing, were held for good and
    used up the server's file descriptors (a misbehaving-terminal review). Scaled down: 1 s without a call.
    Its pings (every 0.3 s here) do not keep it: they are no calls."""
    index.start(keepalive=Keepalive(min_client_ping=0.1, max_idle=1.0), batch=BatchSettings(threads=0))
    states = _states_over(index, client_ping_ms=300, seconds=4)
    assert "IDLE" in states[states.index("READY") :], states
    client = index.client("CCF-TERM-01", "ARMY-CCF", [Role.QUERIER])
    time.sleep(2)  # its connection closed meanwhile: the next call reconnects
    assert _slot_free(client.channel, client.metadata)
