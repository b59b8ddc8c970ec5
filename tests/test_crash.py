"""kill -9 the server while it ingests: nothing it acknowledged may be lost, nothing doubled.

A real server subprocess, a real SQLite file, SIGKILL at a random moment mid-stream. The short run
(in CI) kills it a few times; `pytest -m slow` kills it 50 times.
"""

from __future__ import annotations

import random
import threading
from pathlib import Path

import grpc
import pytest

from dcii.v1 import ingest_pb2
from indexer.model import TracingKey
from indexer.store.sqlite import SqliteStore
from search_service.accreditation import Role
from tests import factories as f
from tests.support import Client, Index, free_port, make_index, server_process


def _stream_until_killed(
    client: Client,
    start: int,
    count: int,
    version: int,
    acked: dict[str, int],
    kill: threading.Event,
    cut_off: list[bool],
) -> None:
    requests = (
        f.upsert(f.person(record=f"NCIS-{i:06d}", version=version, given="Harold")) for i in range(start, start + count)
    )
    try:
        for result in client.ingest.Ingest(requests, metadata=client.metadata, timeout=60):
            if result.outcome in (ingest_pb2.INGEST_OUTCOME_APPLIED, ingest_pb2.INGEST_OUTCOME_UNCHANGED):
                acked[result.request_id] = max(acked.get(result.request_id, 0), result.stored_version)
            if len(acked) >= 50:
                kill.set()
    except grpc.RpcError:
        cut_off.append(True)  # the server died under us mid-stream: the point of the test


def _run(tmp_path: Path, kills: int) -> None:
    index: Index = make_index(tmp_path)
    cert, account, password = index.accredit("NCIS-RA-01", "NCIS", [Role.SUBMITTER])
    port = free_port()
    index.port = port
    rng = random.Random(7)
    acked: dict[str, int] = {}
    for round_no in range(kills):
        with server_process(index.data_dir, index.pki_dir, port) as process:
            client = index.connect(cert)
            client.login(account, password)
            kill = threading.Event()
            cut_off: list[bool] = []
            version = round_no + 1
            streamer = threading.Thread(
                target=_stream_until_killed,
                args=(client, rng.randrange(0, 400), 5000, version, acked, kill, cut_off),
            )
            streamer.start()
            kill.wait(timeout=60)
            threading.Event().wait(rng.uniform(0, 0.05))  # land the kill at a random point mid-stream
            process.kill()
            streamer.join(timeout=60)
            client.close()
        assert cut_off, "the kill did not interrupt the stream"
        store = SqliteStore(index.data_dir / "index.db")
        try:
            assert store.check_integrity() == []
            for record, version_acked in acked.items():
                stored = store.get(TracingKey("NCIS", record))
                assert stored is not None, f"acknowledged {record} lost after kill {round_no + 1}"
                assert stored.tracing.source_version >= version_acked
            names = store.scan_names("WHITFIELD", "HAROLD", given_is_prefix=False, after=None, limit=100_000)
            ids = [row.tracing_id for row in names]
            assert len(ids) == len(set(ids)) == store.count()  # nothing doubled
        finally:
            store.close()
    assert acked


def test_kill_9_during_ingest_loses_nothing_acknowledged(tmp_path: Path) -> None:
    _run(tmp_path, kills=3)


@pytest.mark.slow
def test_kill_9_during_ingest_fifty_times(tmp_path: Path) -> None:
    _run(tmp_path, kills=50)
