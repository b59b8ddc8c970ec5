"""A cluster that takes connections and never answers (hung, or paused): the store's client waits `timeout`
once and gives up. It asked again `retries` times, and each search held a worker 6 x 30 s, long after its
client had gone (a review of the OpenSearch backend). A real socket that never answers, the real client."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from opensearchpy.exceptions import ConnectionError as OsConnectionError
from opensearchpy.exceptions import ConnectionTimeout

from indexer.store.opensearch_io import unavailable
from indexer.store.opensearch_settings import OpenSearchSettings, connect


@pytest.fixture
def silent() -> Iterator[str]:
    """A listening socket that accepts and reads, and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()


def test_a_read_that_times_out_is_not_asked_again(silent: str) -> None:
    client = connect(OpenSearchSettings(hosts=(silent,), timeout=0.5, retries=5))
    started = time.monotonic()
    with pytest.raises(ConnectionTimeout):
        client.search(index="dcii-tracings", body={"query": {"match_all": {}}})
    assert time.monotonic() - started < 1.5  # once: six attempts took 3 s and more


def test_what_an_adjudicator_is_told_names_no_host(silent: str) -> None:
    """urllib3's text went to the client: "HTTPConnection(host='127.0.0.1', port=19201): Failed to establish"."""
    client = connect(OpenSearchSettings(hosts=(silent,), timeout=0.5, retries=0))
    with pytest.raises(ConnectionTimeout) as hung:
        client.search(index="dcii-tracings", body={})
    told = unavailable("search", hung.value).message
    assert told == "the index cluster could not search (it did not answer in time)"
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there
    refused = connect(OpenSearchSettings(hosts=(f"http://127.0.0.1:{port}",), timeout=0.5, retries=0))
    with pytest.raises(OsConnectionError) as down:
        refused.search(index="dcii-tracings", body={})
    told = unavailable("open a snapshot", down.value).message
    assert told == "the index cluster could not open a snapshot (it could not be reached)"
    assert "127.0.0.1" not in told and str(port) not in told


class _Node(http.server.BaseHTTPRequestHandler):
    """A cluster node that applies every bulk it is sent (counted) and answers it succeeded."""

    bulks: list[bytes] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).bulks.append(body)
        answer = json.dumps({"took": 1, "errors": False, "items": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


def test_a_bulk_that_never_reached_a_node_goes_to_the_next() -> None:
    """Two nodes, one down: a bulk the down node refused was failed, though nothing of it had been sent
    (a review of the backend: one write in 290 failed, each time the dead node came back into rotation). A
    bulk that reached a node and lost its answer is still never sent again (RetryingTransport)."""
    _Node.bulks = []
    node = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Node)
    threading.Thread(target=node.serve_forever, daemon=True).start()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    down = closed.getsockname()[1]
    closed.close()  # nothing listens there
    try:
        client = connect(
            OpenSearchSettings(hosts=(f"http://127.0.0.1:{down}", f"http://127.0.0.1:{node.server_port}"), retries=3)
        )
        for n in range(4):  # taken in turn: the down node is met within the first two
            client.bulk(body=[{"index": {"_index": "dcii-tracings", "_id": str(n)}}, {"n": n}])
        assert len(_Node.bulks) == 4  # each applied once
    finally:
        node.shutdown()
        node.server_close()
