"""Finished batches' results (the disclosed tracings) are purged after their keeping time by the server itself,
whatever its batch worker does (review F2): after a restart with no batch waiting (the worker process never
starts), with no worker threads, and while another batch keeps the worker busy. A real server over mutual TLS,
the real worker process, real SQLite files. Time passing is simulated by dating a batch's `finished_at` back in
batch.db, so the default keeping time (30 days) is the one tested. Helpers: tests/test_batch.py.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import sqlite3
import time

import grpc
import pytest

from dcii.v1 import batch_pb2
from search_service.accreditation import Role
from search_service.batch_process import BatchProcess
from search_service.batch_worker import BatchSettings
from tests import test_batch
from tests.support import Client, Index
from tests.test_batch import DONE, QUEUED, _people, _results, _status, _stub, _submit, _wait, start

index = test_batch.index  # the fixture, bound by name (see tests/test_batch_worker.py)


def _age(index: Index, batch_id: str, days: float) -> None:
    """Date the batch's end back `days` days, as if that much time had passed since it finished."""
    finished = dt.datetime.now(dt.UTC) - dt.timedelta(days=days)
    conn = sqlite3.connect(index.data_dir / "batch.db", timeout=30)
    try:
        with conn:
            changed = conn.execute(
                "UPDATE batch SET finished_at = ? WHERE batch_id = ? AND finished_at IS NOT NULL",
                (finished.isoformat(timespec="microseconds"), batch_id),
            ).rowcount
    finally:
        conn.close()
    assert changed == 1


def _stored_rows(index: Index, batch_id: str) -> int:
    """The batch's rows (its own and its queries') left in batch.db."""
    conn = sqlite3.connect(index.data_dir / "batch.db", timeout=30)
    try:
        row = conn.execute("SELECT seq FROM batch WHERE batch_id = ?", (batch_id,)).fetchone()
        if row is None:
            return 0
        return 1 + int(conn.execute("SELECT count(*) FROM batch_query WHERE batch_seq = ?", row).fetchone()[0])
    finally:
        conn.close()


def _gone(client: Client, batch_id: str) -> bool:
    try:
        _status(client, batch_id)
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.NOT_FOUND
        return True
    return False


def _wait_gone(client: Client, batch_id: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not _gone(client, batch_id):
        assert time.monotonic() < deadline, "the expired batch was never purged"
        time.sleep(0.1)


@pytest.mark.parametrize(
    "settings",
    [BatchSettings(), BatchSettings(threads=0), BatchSettings(process=False)],
    ids=["worker-process", "no-threads", "threads-in-server"],
)
def test_expired_results_are_purged_as_the_server_starts_with_no_batch_waiting(
    index: Index, settings: BatchSettings
) -> None:
    start(index, BatchSettings(chunk=10, duty=1.0))
    queries = _people(index, 3)
    cert, account, password = index.accredit("CCF-BATCH", "ARMY-CCF", [Role.QUERIER, Role.BATCH])
    client = index.connect(cert)
    client.login(account, password)
    old = _submit(client, queries).batch_id
    recent = _submit(client, queries).batch_id
    assert _wait(client, old).state == DONE and _wait(client, recent).state == DONE
    assert [len(r.hits) for r in _results(client, old)] == [1, 1, 1]
    index.stop()
    _age(index, old, 31)  # past the 30 days
    _age(index, recent, 29)
    start(index, settings)  # nothing waits: a worker process is never started
    client = index.connect(cert)
    client.login(account, password)
    assert _gone(client, old)  # purged before the server took its first call
    assert _stored_rows(index, old) == 0
    assert _status(client, recent).state == DONE and len(_results(client, recent)) == 3
    assert index.running is not None
    worker = index.running.batch_worker
    assert not isinstance(worker, BatchProcess) or worker.pid is None


def test_expired_results_are_purged_while_another_batch_keeps_the_worker_busy(index: Index) -> None:
    start(index, BatchSettings(chunk=10, duty=1.0, retry_delay=0.1, purge_interval=0.2), audit_timeout=0.3)
    queries = _people(index, 3)
    client = index.client("CCF-BATCH", "ARMY-CCF", [Role.QUERIER, Role.BATCH])
    finished = _submit(client, queries).batch_id
    assert _wait(client, finished).state == DONE
    lock = os.open(index.data_dir / "audit.db.lock", os.O_RDWR)
    try:
        # Another writer holds the audit trail: the worker fails closed on the next batch and retries it
        # without end, so that batch stays active and the worker is never idle.
        fcntl.flock(lock, fcntl.LOCK_EX)
        busy = _submit(client, queries).batch_id
        _age(index, finished, 31)
        _wait_gone(client, finished)
        assert _stored_rows(index, finished) == 0
        assert _status(client, busy).state in (QUEUED, batch_pb2.BATCH_STATE_RUNNING)
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        os.close(lock)
    assert _wait(client, busy).state == DONE


def test_expired_results_are_purged_with_no_worker_threads(index: Index) -> None:
    start(index, BatchSettings(threads=0, purge_interval=0.2))
    queries = _people(index, 2)
    client = index.client("CCF-BATCH", "ARMY-CCF", [Role.QUERIER, Role.BATCH])
    stopped = _submit(client, queries).batch_id
    waiting = _submit(client, queries).batch_id
    request = batch_pb2.GetBatchRequest(batch_id=stopped)
    assert _stub(client).CancelBatch(request, metadata=client.metadata).state == batch_pb2.BATCH_STATE_CANCELLED
    _age(index, stopped, 31)
    _wait_gone(client, stopped)
    assert _status(client, waiting).state == QUEUED  # an active batch is never purged


def test_results_are_kept_a_year_at_most() -> None:
    """3,000,000 days overflowed the purge date: every status and cancel of a finished batch failed."""
    assert BatchSettings(keep_results_days=366).keep_results_days == 366
    with pytest.raises(ValueError, match="keep_results_days at most 366"):
        BatchSettings(keep_results_days=3_000_000)


def test_a_batch_status_says_until_when_its_results_are_kept(index: Index) -> None:
    """A security office fetches results when it likes: a finished batch's status says when they go (finished_at
    plus the server's keeping time), read the same by every serving process; an active batch's says nothing."""
    start(index, BatchSettings(threads=0, keep_results_days=7))
    client = index.client("CCF-BATCH", "ARMY-CCF", [Role.QUERIER, Role.BATCH])
    queries = _people(index, 2)
    waiting = _submit(client, queries)
    assert waiting.state == QUEUED and not waiting.HasField("purge_after")
    request = batch_pb2.GetBatchRequest(batch_id=waiting.batch_id)
    cancelled = _stub(client).CancelBatch(request, metadata=client.metadata)
    assert cancelled.HasField("finished_at")
    kept = cancelled.purge_after.ToDatetime() - cancelled.finished_at.ToDatetime()
    assert kept == dt.timedelta(days=7)
    assert _status(client, waiting.batch_id).purge_after == cancelled.purge_after
