"""Pieces shared by tests/test_client_faults.py (faults against one shared server) and
tests/test_client_overload.py (the server-wide concurrency cap, on a server of its own): a served index with its
accredited logins, a name to search for, the requests the clients stream, and the prober that
measures another client's service meanwhile. Not a test module."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import grpc

from dcii.v1 import ingest_pb2, search_pb2, tracing_pb2
from search_service import pki
from tests import factories as f
from tests.server_proc import ssn, thread_count
from tests.support import Client, Index

HAROLD = tracing_pb2.PersonName(surname="Whitfield", given_name="Harold")


@dataclass
class Served:
    index: Index
    pid: int
    logins: dict[str, tuple[pki.Issued, str, str]]
    batch_id: str = ""  # the batch whose results the unread-results fault asks for

    def client(self, who: str) -> Client:
        cert, account, password = self.logins[who]
        client = self.index.connect(cert)
        deadline = time.monotonic() + 10
        while True:  # a login is a call under the activity's cap: retried while calls just cancelled unwind
            try:
                client.login(account, password)
                return client
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED or time.monotonic() > deadline:
                    raise
            time.sleep(0.05)


def _requests(count: int, stream: int) -> Iterator[ingest_pb2.IngestRequest]:
    """The same tracings in every round (stored by the first, UNCHANGED after), so that the store, and the
    server's per-thread page caches over it, stop growing after the warm-up and any growth is a leak."""
    for i in range(count):
        n = 1_000_000 + stream * 100_000 + i
        yield f.upsert(f.person(record=f"NCIS-{n:07d}", given="Walter", ssn=ssn(i)))


def _trickle(requests: Iterator[ingest_pb2.IngestRequest], pause: float) -> Iterator[ingest_pb2.IngestRequest]:
    for request in requests:
        time.sleep(pause)
        yield request


def _refused(count: int) -> Iterator[ingest_pb2.IngestRequest]:
    """Actions the edit criteria refuse, each answered with a long list of field violations: cheap for the
    server, and their results soon fill the flow-control windows of a client that does not read them."""
    for n in range(count):
        bad = f.person(record=f"NCIS-X{n:07d}", surname="Wh1tf!eld" * 4, given="H@rold", ssn="000-00-0000")
        bad.subject.identifiers.date_of_birth.year = 2999
        for _ in range(5):
            bad.subject.aliases.add(surname="#" * 40, given_name="$" * 40)
        yield ingest_pb2.IngestRequest(request_id=f"r{n}", upsert=bad)


def _probe(client: Client) -> float:
    started = time.perf_counter()
    response = client.search(
        mode=search_pb2.SEARCH_MODE_EXACT,
        name={"surname": "Whitfield", "given_name": "Harold"},
        identifiers={"ssn": ssn(7)},
    )
    assert [h.tracing.key.record_number for h in response.hits] == ["NCIS-000007"]
    return time.perf_counter() - started


def _p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98] if len(samples) >= 2 else samples[0]


class Prober:
    """Another client asking the index all along, recording each answer's latency (any error fails)."""

    def __init__(self, served: Served) -> None:
        self.client = served.client("prober")
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.latencies.append(_probe(self.client))
            except (grpc.RpcError, AssertionError) as error:
                self.errors.append(repr(error))
            self._stop.wait(0.01)

    def __enter__(self) -> Prober:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.client.close()


def _settled_threads(pid: int, at_most: int, timeout: float = 20.0) -> int:
    """The server's thread count once it is back to `at_most` (or whatever it is after `timeout`)."""
    deadline = time.monotonic() + timeout
    while (count := thread_count(pid)) > at_most and time.monotonic() < deadline:
        time.sleep(0.1)
    return count
