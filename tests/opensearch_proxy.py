"""A real HTTP proxy between an OpenSearch store and its cluster that cuts a write short: it answers 503 to the
Nth `_bulk` request (an overloaded cluster), loses the answer of one that landed (a gateway's 502), runs another
instance's write just before a request, or refuses single items inside a bulk request, forwarding the others, as
a real cluster does when one shard of several is unavailable (OpenSearch runs the other actions of the request;
osmem-server, in one process, never fails part of one). A plain module, not a test: the OpenSearch write tests
(tests/test_opensearch_write_*.py, tests/test_store_contract_partial.py) use it."""

from __future__ import annotations

import gzip
import http.client
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

# One bulk item: its action ("index", "create", "delete") and metadata (`_index`, `_id`, versions).
ItemFilter = Callable[[str, dict[str, Any]], bool]


class FailingProxy:
    """Forwards HTTP to `upstream`; while armed, answers 503 to the `fail_at`-th `_bulk` request and every
    later one, without forwarding it. `before[n]`, if set, runs before the n-th `_bulk` request is forwarded
    (another writer's write, landing between two of the store's requests). While `fail_items` is set, every
    bulk item it accepts is answered 503 (`unavailable_shards_exception`) and not forwarded, the others are,
    and their answers merged in order: a shard down while the rest of the cluster writes. `sent` records the
    items of every bulk request (action, index, id), as the store sent them; `requests`, every request."""

    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self.fail_at = 0  # 0: forward everything
        self.lose_answer = False  # True: forward the `fail_at`-th `_bulk` request, then answer 502 (a gateway)
        self.bulks = 0
        self.before: dict[int, Callable[[], object]] = {}
        self.fail_items: ItemFilter | None = None
        self.sent: list[list[tuple[str, str, str]]] = []
        self.requests: list[str] = []  # every request's method and path: what a write costs
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
                proxy.requests.append(f"{self.command} {self.path.split('?')[0]}")
                refused: list[tuple[int, str, dict[str, Any]]] = []
                if "/_bulk" in self.path:
                    proxy.bulks += 1
                    if proxy.fail_at and proxy.bulks >= proxy.fail_at and not proxy.lose_answer:
                        self._answer(503, b'{"error":"shedding load","status":503}', "application/json")
                        return
                    if hook := proxy.before.pop(proxy.bulks, None):
                        hook()
                    body, refused, headers = proxy._split(body, headers)
                    if not body:  # every item refused: no shard of the request was up
                        self._answer(
                            200, _merged({"took": 0, "errors": True, "items": []}, refused), "application/json"
                        )
                        return
                conn = http.client.HTTPConnection(proxy.upstream.hostname or "", proxy.upstream.port, timeout=60)
                conn.request(self.command, self.path, body=body or None, headers=headers)
                answer = conn.getresponse()
                payload = answer.read()
                conn.close()
                if "/_bulk" in self.path and proxy.lose_answer and proxy.bulks == proxy.fail_at:
                    self._answer(502, b'{"error":"bad gateway","status":502}', "application/json")  # it landed
                    return
                if refused:
                    if answer.getheader("Content-Encoding") == "gzip":
                        payload = gzip.decompress(payload)
                    payload = _merged(json.loads(payload), refused)
                self._answer(answer.status, payload, answer.getheader("Content-Type") or "application/json")

            def _answer(self, status: int, payload: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward  # noqa: N815 (http.server's names)

            def log_message(self, *args: Any) -> None:  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def arm(self, fail_at: int, *, lose_answer: bool = False) -> None:
        self.fail_at, self.bulks, self.lose_answer = fail_at, 0, lose_answer

    def _split(
        self, body: bytes, headers: dict[str, str]
    ) -> tuple[bytes, list[tuple[int, str, dict[str, Any]]], dict[str, str]]:
        """The bulk body without the items `fail_items` refuses, those items (position, action, metadata), and
        the headers to forward it with (sent uncompressed: the client compresses its requests)."""
        if any(k.lower() == "content-encoding" and v == "gzip" for k, v in headers.items()):
            body = gzip.decompress(body)
        lines = [line for line in body.split(b"\n") if line.strip()]
        kept: list[bytes] = []
        refused: list[tuple[int, str, dict[str, Any]]] = []
        items: list[tuple[str, str, str]] = []
        at = 0
        while at < len(lines):
            ((op, meta),) = json.loads(lines[at]).items()
            width = 1 if op == "delete" else 2
            items.append((op, meta.get("_index", ""), meta.get("_id", "")))
            if self.fail_items is not None and self.fail_items(op, meta):
                refused.append((len(items) - 1, op, meta))
            else:
                kept += lines[at : at + width]
            at += width
        self.sent.append(items)
        forwarded = {k: v for k, v in headers.items() if k.lower() not in ("content-encoding", "content-length")}
        return (b"\n".join(kept) + b"\n" if kept else b""), refused, forwarded

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _merged(response: dict[str, Any], refused: list[tuple[int, str, dict[str, Any]]]) -> bytes:
    """The cluster's answer to the forwarded items, with a shard's refusal of each refused one in its place."""
    items = list(response.get("items", []))
    for position, op, meta in refused:
        error = {"type": "unavailable_shards_exception", "reason": "primary shard is not active"}
        items.insert(
            position, {op: {"_index": meta.get("_index"), "_id": meta.get("_id"), "status": 503, "error": error}}
        )
    return json.dumps(response | {"errors": True, "items": items}).encode()


def update_between_the_file_and_the_tombstone(
    proxy: FailingProxy, other_proxy: FailingProxy, write: Callable[[], object]
) -> threading.Thread:
    """Another instance's update (`write`, through `other_proxy`) raced into a completion made through `proxy`:
    it reads before the completion's second request (the new record) and writes after it, before the third
    (the old record's tombstone). Returns the updating thread (started by the hooks)."""
    read_done, file_landed = threading.Event(), threading.Event()

    def b_waits_for_the_file() -> None:  # B's reads done, its bulk held
        read_done.set()
        file_landed.wait(10)

    other_proxy.before[1] = b_waits_for_the_file
    updating = threading.Thread(target=write)

    def b_reads_before_the_file() -> None:
        updating.start()
        assert read_done.wait(10)

    def b_writes_after_the_file() -> None:
        file_landed.set()
        updating.join(10)

    proxy.before[2] = b_reads_before_the_file
    proxy.before[3] = b_writes_after_the_file
    return updating
