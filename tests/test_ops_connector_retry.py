"""A connector's retry line carries the index's status message (an operator's acceptance test): with the
store's disk full it logged {"event": "retry", "code": "RESOURCE_EXHAUSTED"} alone, which read as "index
busy". A scripted Ingest service answers with the message the embedded store gives for a full disk."""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc

from connectors.checkpoint import Checkpoint
from connectors.machinery import Backoff, Progress, Runner
from dcii.v1 import ingest_pb2_grpc
from indexer.store.sqlite_ops import write_failure
from tests.test_connectors_machinery import Plain, Scripted, _records


class DiskFull(Scripted):
    """Refuses the first stream as the server does when the store's disk is full, then answers."""

    def Ingest(self, request_iterator: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:  # noqa: N802
        if not self.calls:
            self.calls.append([])
            full = sqlite3.OperationalError("database or disk is full")
            full.sqlite_errorcode = 13  # SQLITE_FULL, as SQLite sets it
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(write_failure(full)))
        yield from super().Ingest(request_iterator, context)


def test_the_retry_line_carries_the_status_message(tmp_path: Path) -> None:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    servicer = DiskFull([])
    ingest_pb2_grpc.add_IngestServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    stream = io.StringIO()
    records = _records(3)
    runner = Runner(
        lambda: Plain(channel),
        Checkpoint(tmp_path / "checkpoint.json"),
        tmp_path / "rejects.jsonl",
        Progress("test", stream=stream),
        backoff=Backoff(sleep=lambda _: None),
    )
    try:
        runner.run(lambda after: records[int(after or 0) :])
    finally:
        channel.close()
        server.stop(None)
    [retry] = [line for line in map(json.loads, stream.getvalue().splitlines()) if line["event"] == "retry"]
    assert retry["code"] == "RESOURCE_EXHAUSTED" and retry["attempt"] == 1
    assert retry["details"].startswith("the store's disk is full"), retry
    assert runner.stats.applied == 3
