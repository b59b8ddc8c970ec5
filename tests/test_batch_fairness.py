"""One activity's batches cannot starve another's (review F5): the worker takes turns between activities a chunk
at a time (oldest batch first within one), and an activity may hold at most `max_active_per_activity`
unfinished batches (RESOURCE_EXHAUSTED beyond it, checked in the same write as the insert). A real server over
mutual TLS with its real worker process, real SQLite files. Helpers: tests/test_batch.py.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from dcii.v1 import batch_pb2
from indexer.exc import ResourceExhausted
from search_service.accreditation import Role
from search_service.batch_queue import BatchQueue, NewQuery, Owner
from search_service.batch_worker import BatchSettings
from tests import test_batch
from tests.metrics_support import samples, scrape, value
from tests.support import Client, Index
from tests.test_batch import DONE, _people, _status, _stub, _submit, _wait, start

index = test_batch.index  # the fixture, bound by name (see tests/test_batch_worker.py)


def _finished_at(client: Client, batch_id: str) -> tuple[int, int]:
    status = _status(client, batch_id)
    assert status.state == DONE
    return status.finished_at.seconds, status.finished_at.nanos


def test_the_worker_takes_turns_between_activities_oldest_batch_first(index: Index) -> None:
    start(index, BatchSettings(threads=0))  # nothing answered while the queue fills
    queries = _people(index, 20)
    cert_a, account_a, password_a = index.accredit("CCF-BATCH", "ARMY-CCF", [Role.QUERIER, Role.BATCH])
    cert_b, account_b, password_b = index.accredit("NAVY-BATCH", "NAVY", [Role.QUERIER, Role.BATCH])
    a, b = index.connect(cert_a), index.connect(cert_b)
    a.login(account_a, password_a)
    b.login(account_b, password_b)
    flood = [_submit(a, queries, label=f"a{i}").batch_id for i in range(3)]  # 3 x 4 chunks, first in line
    small = _submit(b, queries[:1], label="b").batch_id  # one query, submitted last
    index.stop()
    start(index, BatchSettings(chunk=5, duty=1.0))  # one thread: the chunks run one after another
    a, b = index.connect(cert_a), index.connect(cert_b)
    a.login(account_a, password_a)
    b.login(account_b, password_b)
    for batch_id in flood:
        assert _wait(a, batch_id).state == DONE
    assert _wait(b, small).state == DONE
    # Strict FIFO answered all 60 of A's queries first. Taking turns: A's first chunk, then B's batch (done),
    # then A's batches in the order A submitted them.
    ends = [_finished_at(a, batch_id) for batch_id in flood]
    assert _finished_at(b, small) < ends[0] < ends[1] < ends[2]


def test_an_activity_holding_the_default_cap_of_unfinished_batches_is_refused(index: Index) -> None:
    cap = BatchSettings().max_active_per_activity
    assert 1 < cap <= 100
    start(index, BatchSettings(threads=0))  # nothing finishes unless cancelled
    queries = _people(index, 1)
    client = index.client("CCF-BATCH", "ARMY-CCF", [Role.QUERIER, Role.BATCH])
    other = index.client("NAVY-BATCH", "NAVY", [Role.QUERIER, Role.BATCH])
    held = [_submit(client, queries).batch_id for _ in range(cap)]
    with pytest.raises(grpc.RpcError) as refused:
        _submit(client, queries)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert f"{cap} unfinished batches" in str(refused.value.details())
    assert "Whitfield" not in str(refused.value.details())
    _submit(other, queries)  # another activity is not held back by this one's cap
    request = batch_pb2.GetBatchRequest(batch_id=held[0])
    assert _stub(client).CancelBatch(request, metadata=client.metadata).state == batch_pb2.BATCH_STATE_CANCELLED
    _submit(client, queries)  # one finished: room for one more
    conn = sqlite3.connect(index.data_dir / "batch.db", timeout=30)
    try:
        counts = dict(conn.execute("SELECT activity_id, count(*) FROM batch GROUP BY activity_id").fetchall())
    finally:
        conn.close()
    assert counts == {"CCF-BATCH": cap + 1, "NAVY-BATCH": 1}  # the refused one stored nothing


def test_submissions_at_once_cannot_slip_past_the_cap(tmp_path: Path) -> None:
    # Several connections (as several serving processes) submit at once: the count and the insert are one write.
    queues = [BatchQueue(tmp_path / "batch.db") for _ in range(8)]
    owner = Owner("CCF-BATCH", "op", "ab" * 32)
    barrier = threading.Barrier(len(queues))
    outcomes: list[str] = []

    def submit(queue: BatchQueue) -> None:
        barrier.wait()
        try:
            queue.submit(owner, "t", [NewQuery("q", b"")], max_active=2)
        except ResourceExhausted:
            outcomes.append("refused")
        else:
            outcomes.append("queued")

    threads = [threading.Thread(target=submit, args=(queue,)) for queue in queues]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["queued"] * 2 + ["refused"] * 6
    assert queues[0].active_count("CCF-BATCH") == 2
    for queue in queues:
        queue.close()


def test_submissions_being_read_count_against_the_cap(index: Index) -> None:
    """Only stored batches counted: sixteen submissions at once all passed the check before their streams
    were read, and six were refused after 36 s of reading and checking 100,000 queries each (a
    misbehaving-terminal review). Now each holds its place while it is read; the one over is refused at once."""
    start(index, BatchSettings(threads=0, max_active_per_activity=2), metrics_port=0)
    assert index.running is not None and index.running.metrics is not None
    queries = _people(index, 1)
    client = index.client("CCF-BATCH", "ARMY-CCF", [Role.QUERIER, Role.BATCH])
    hold = threading.Event()

    def slow() -> Iterator[batch_pb2.SubmitBatchRequest]:
        yield batch_pb2.SubmitBatchRequest(label="slow", queries=queries)
        hold.wait()

    stub = _stub(client)
    open_ = [stub.SubmitBatch.future(slow(), metadata=client.metadata, timeout=30) for _ in range(2)]
    try:
        deadline = time.monotonic() + 20
        submitting = {"grpc_service": "dcii.v1.BatchService", "grpc_method": "SubmitBatch"}
        while value(samples(scrape(index.running.metrics.port)), "dcii_rpc_in_flight", **submitting) < 2:
            assert time.monotonic() < deadline, "the two submissions never reached the server"
            time.sleep(0.05)
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as refused:
            _submit(client, queries)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert time.monotonic() - started < 5  # at once, not after the two were read
    finally:
        hold.set()
    assert all(call.result(timeout=30).state == batch_pb2.BATCH_STATE_QUEUED for call in open_)
