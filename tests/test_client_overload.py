"""Overload: with every slot of the server's concurrency cap (ServerConfig.max_concurrent_rpcs) held, a further
call is refused at once instead of waiting for its deadline. Split from tests/test_client_faults.py, which runs
its faults against one shared server; this test starts a server of its own."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from dcii.v1 import ingest_pb2, search_pb2
from search_service.accreditation import Role
from tests.client_faults_support import HAROLD, Served, _requests
from tests.metrics_support import samples, scrape, value
from tests.server_proc import record, spawn_server
from tests.support import free_port, make_index


def test_calls_beyond_the_concurrency_cap_are_refused_at_once(tmp_path: Path) -> None:
    """ServerConfig.max_concurrent_rpcs: with every slot held (here by idle streams), the next call is
    refused at once with RESOURCE_EXHAUSTED instead of waiting for its deadline; once the streams end, the
    same client is served again."""
    index = make_index(tmp_path)
    submitter = index.accredit("NCIS-RA-01", "NCIS", [Role.SUBMITTER])
    querier = index.accredit("CCF-TERM", "ARMY-CCF", [Role.QUERIER])
    index.port = free_port()
    metrics_port = free_port()
    with spawn_server(index.data_dir, index.pki_dir, index.port, max_concurrent_rpcs=4, metrics_port=metrics_port):
        served = Served(index, 0, {"submitter": submitter, "querier": querier})
        other = served.client("querier")
        hold = threading.Event()

        def idle(n: int) -> Iterator[ingest_pb2.IngestRequest]:
            yield from _requests(1, 95 + n)
            hold.wait()

        clients = [served.client("submitter") for _ in range(4)]
        calls = [c.ingest.Ingest(idle(n), metadata=c.metadata, timeout=60) for n, c in enumerate(clients)]
        for call in calls:
            next(call)

        def ask() -> None:
            other.search(mode=search_pb2.SEARCH_MODE_NAME_ONLY, name=HAROLD)  # no tracing here: no hit, no audit

        started = time.perf_counter()
        with pytest.raises(grpc.RpcError) as refused:
            ask()
        waited = time.perf_counter() - started
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and waited < 1.0, (refused.value, waited)
        # gRPC refused it before any handler ran: only dcii_rpc_received_total saw it (what the runbook's
        # DciiShedding alert reads, received minus finished).
        found = samples(scrape(metrics_port))
        search = {"grpc_service": "dcii.v1.SearchService", "grpc_method": "Search"}
        assert value(found, "dcii_rpc_received_total", **search) == 1
        assert value(found, "dcii_rpc_in_flight", **search) == 0
        finished = [
            n for (name, labels), n in found.items() if name == "dcii_rpc_requests_total" and search.items() <= labels
        ]
        assert finished == []
        for client, call in zip(clients, calls, strict=True):
            call.cancel()
            client.close()
        hold.set()
        deadline = time.monotonic() + 10
        while True:  # the server notices the cancellations within moments
            try:
                ask()
                break
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and time.monotonic() < deadline
                time.sleep(0.05)
        other.close()
    record("overload: calls beyond the concurrency cap", trials=1, lost=0, failed=0, refused_within_s=round(waited, 3))
