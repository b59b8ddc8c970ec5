"""The store-bound services' health follows the store (search_service.readiness): the health service said
SERVING while the cluster could not be reached and every search failed (a review of the OpenSearch
backend). A real server on osmem-server behind a real TCP relay that is cut and put back; the audit
trail's side is tests/test_faults.py (a full disk)."""

from __future__ import annotations

import contextlib
import secrets
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc
import pytest
from grpc_health.v1 import health_pb2

from dcii.v1 import search_pb2
from search_service import readiness
from search_service.accreditation import Role
from search_service.batch_worker import BatchSettings
from tests import factories as f
from tests.metrics_support import samples, scrape, value
from tests.support import health, health_becomes, make_index

SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
SEARCH_SERVICE = "dcii.v1.SearchService"
NAME_ONLY = search_pb2.SEARCH_MODE_NAME_ONLY


class Relay:
    """Relays TCP connections on a port of its own to `upstream`; `cut` drops them all and refuses new
    ones (the cluster unreachable), `restore` takes them again on the same port."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = 0
        self._listener: socket.socket | None = None
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
            held, self._open = self._open, []
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for conn in held:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                server = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self._lock:
                self._open += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


@pytest.fixture
def relay(osmem: Any) -> Iterator[Relay]:
    clone = osmem.clone()
    address = urlsplit(clone.url)
    made = Relay((address.hostname or "127.0.0.1", address.port or 9200))
    try:
        yield made
    finally:
        made.cut()
        clone.close()


def test_searches_leave_the_rotation_while_the_store_cannot_be_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, relay: Relay
) -> None:
    monkeypatch.setattr(readiness, "PROBE_SECONDS", 0.2)
    built = make_index(tmp_path)
    prefix = f"dcii-t{secrets.token_hex(6)}"
    store_url = f"opensearch://127.0.0.1:{relay.port}?prefix={prefix}&replicas=0&drain_seconds=0.2&timeout=5&retries=0"
    built.start(store_url=store_url, batch=BatchSettings(threads=0), ingest_processes=0, metrics_port=0)
    assert built.running is not None and built.running.metrics is not None
    metrics_port = built.running.metrics.port

    def ready() -> float:
        return value(samples(scrape(metrics_port)), "dcii_ready")

    try:
        built.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER]).upsert(f.person(record="NCIS-1"))
        querier = built.client("CCF-TERM-01", "ARMY-CCF", [Role.QUERIER])
        assert (health(querier, SEARCH_SERVICE), ready()) == (SERVING, 1)
        relay.cut()
        with pytest.raises(grpc.RpcError) as failed:
            querier.search(mode=NAME_ONLY, name={"surname": "Whitfield", "given_name": "Harold"})
        assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
        assert health_becomes(querier, SEARCH_SERVICE, NOT_SERVING)
        assert health(querier, "") == SERVING  # alive: a liveness probe leaves it be
        assert ready() == 0
        relay.restore()
        assert health_becomes(querier, SEARCH_SERVICE, SERVING)
        assert ready() == 1
        answer = querier.search(mode=NAME_ONLY, name={"surname": "Whitfield", "given_name": "Harold"})
        assert [h.tracing.key.record_number for h in answer.hits] == ["NCIS-1"]
    finally:
        built.stop()
