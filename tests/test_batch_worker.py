"""The batch worker's life (issue 5), on a real server over mutual TLS with a real queue and audit trail: a
cancel stops a running batch, a batch survives a server restart and a SIGKILLed worker process with no query
answered twice, the worker dies with its server, a chunk is accounted in one write (nothing stored while the
audit trail refuses), and finished batches are purged after their keeping time. Helpers: tests/test_batch.py.
"""

from __future__ import annotations

import collections
import datetime as dt
import fcntl
import os
import signal
import sqlite3
import time
from pathlib import Path

import grpc

from dcii.v1 import batch_pb2
from search_service.accreditation import Role, Status
from search_service.batch_process import BatchProcess
from search_service.batch_queue import Answered, BatchQueue, NewQuery, Owner
from search_service.batch_worker import BatchSettings
from tests import test_batch
from tests.support import Index, free_port, make_index, server_process
from tests.test_batch import DONE, QUEUED, _batch_disclosures, _people, _results, _status, _stub, _submit, _wait, start

# The fixture these tests take (an index not started yet: each test starts it with its own batch settings), bound
# here by name so pytest finds it (importing it would do the same, but ruff reads each test's parameter of that
# name as a redefinition of an unused import, F811).
index = test_batch.index


def test_cancel_stops_a_running_batch(index: Index) -> None:
    start(index, BatchSettings(chunk=2, duty=0.05))
    queries = _people(index, 120)
    client = index.client("CCF-BATCH", "ARMY-CCF", [Role.QUERIER, Role.BATCH])
    batch_id = _submit(client, queries).batch_id
    _wait(client, batch_id, until=4)
    cancelled = _stub(client).CancelBatch(batch_pb2.GetBatchRequest(batch_id=batch_id), metadata=client.metadata)
    # The worker stops at its next chunk: wait until the count has stood still for half a second.
    deadline, final = time.monotonic() + 10, _status(client, batch_id)
    while time.monotonic() < deadline:
        time.sleep(0.5)
        before, final = final, _status(client, batch_id)
        if final.state == before.state == batch_pb2.BATCH_STATE_CANCELLED and final.done == before.done:
            break
    assert final.state == batch_pb2.BATCH_STATE_CANCELLED and final.done <= cancelled.done + 2  # one chunk at most
    assert final.done < 120
    assert len(_results(client, batch_id)) == final.done


def test_a_batch_survives_a_restart_and_no_query_is_answered_twice(index: Index) -> None:
    start(index, BatchSettings(chunk=2, duty=0.05))
    queries = _people(index, 150)
    cert, account, password = index.accredit("CCF-BATCH", "ARMY-CCF", [Role.QUERIER, Role.BATCH])
    client = index.connect(cert)
    client.login(account, password)
    batch_id = _submit(client, queries).batch_id
    before = _wait(client, batch_id, until=10)
    assert before.state == batch_pb2.BATCH_STATE_RUNNING
    index.stop()  # mid-batch
    stopped = BatchQueue(index.data_dir / "batch.db")
    left = stopped.get(batch_id)
    stopped.close()
    assert left is not None and 10 <= left.done < 150
    start(index, BatchSettings(chunk=25, duty=1.0))
    assert index.running is not None and isinstance(index.running.batch_worker, BatchProcess)
    client = index.connect(cert)
    client.login(account, password)
    assert _wait(client, batch_id).state == DONE
    results = _results(client, batch_id)
    assert [len(r.hits) for r in results] == [1] * 150
    assert [r.hits[0].tracing.key.record_number for r in results] == [f"NCIS-{i}" for i in range(150)]
    entries = _batch_disclosures(index)
    per_record = collections.Counter(e["record_number"] for e in entries)
    assert per_record == {f"NCIS-{i}": 1 for i in range(150)}  # each answered (and accounted) once
    assert len({e["disclosure_id"] for e in entries}) == 150


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie no one has reaped yet counts as dead)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def _children(parent: int) -> list[int]:
    """The batch worker processes whose parent is `parent`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            ppid = int(entry.joinpath("stat").read_text().rsplit(")", 1)[1].split()[1])
            command = entry.joinpath("cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and b"search_service.batch_process" in command:
            found.append(int(entry.name))
    return found


def _wait_dead(pid: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        assert time.monotonic() < deadline, f"process {pid} still running"
        time.sleep(0.05)


def test_a_killed_worker_process_loses_nothing_and_is_started_again(index: Index) -> None:
    start(index, BatchSettings(chunk=5, duty=0.2))
    queries = _people(index, 150)
    client = index.client("CCF-BATCH", "ARMY-CCF", [Role.QUERIER, Role.BATCH])
    assert index.running is not None
    worker = index.running.batch_worker
    assert isinstance(worker, BatchProcess) and worker.pid is None  # started by the first submission
    batch_id = _submit(client, queries).batch_id
    before = _wait(client, batch_id, until=10)
    assert before.state == batch_pb2.BATCH_STATE_RUNNING
    first = worker.pid
    assert first is not None and first != os.getpid()
    os.kill(first, signal.SIGKILL)  # mid-chunk: the chunk in progress is lost, nothing stored is
    assert _wait(client, batch_id).state == DONE  # the server starts a new worker, which resumes
    assert worker.pid not in (None, first)
    results = _results(client, batch_id)
    assert [r.hits[0].tracing.key.record_number for r in results] == [f"NCIS-{i}" for i in range(150)]
    per_record = collections.Counter(e["record_number"] for e in _batch_disclosures(index))
    assert set(per_record) == {f"NCIS-{i}" for i in range(150)}
    assert sum(per_record.values()) <= 150 + 5  # at most one chunk answered (and accounted) again


def test_the_worker_process_dies_with_the_server(tmp_path: Path) -> None:
    index = make_index(tmp_path)
    index.port = free_port()
    with server_process(index.data_dir, index.pki_dir, index.port) as server:
        queries = _people(index, 20)
        client = index.client("CCF-BATCH", "ARMY-CCF", [Role.QUERIER, Role.BATCH])
        assert _wait(client, _submit(client, queries).batch_id).state == DONE
        children = [pid for pid in _children(server.pid) if _alive(pid)]
        assert len(children) == 1
        assert os.getpriority(os.PRIO_PROCESS, children[0]) >= os.getpriority(os.PRIO_PROCESS, server.pid) + 10
        index.stop()
        server.kill()  # SIGKILL: no chance to stop its worker
        server.wait(timeout=30)
        _wait_dead(children[0])  # it saw the pipe from the server close


def test_a_chunk_is_accounted_in_one_write_and_nothing_is_stored_while_the_trail_refuses(index: Index) -> None:
    start(index, BatchSettings(chunk=10, duty=1.0, retry_delay=0.1), audit_timeout=0.3)
    queries = _people(index, 40)
    client = index.client("CCF-BATCH", "ARMY-CCF", [Role.QUERIER, Role.BATCH])
    lock = os.open(index.data_dir / "audit.db.lock", os.O_RDWR)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another writer holds the trail: every audit write times out
        batch_id = _submit(client, queries).batch_id
        time.sleep(2.0)  # the worker tries, fails closed and retries
        held = _status(client, batch_id)
        assert held.done == 0 and held.state in (QUEUED, batch_pb2.BATCH_STATE_RUNNING)
        assert _batch_disclosures(index) == []
    finally:
        fcntl.flock(lock, fcntl.LOCK_UN)
        os.close(lock)
    assert _wait(client, batch_id).state == DONE
    entries = _batch_disclosures(index)
    assert collections.Counter(e["record_number"] for e in entries) == {f"NCIS-{i}": 1 for i in range(40)}
    # Each query has its own disclosure id, but a chunk shares one write: ten entries, one timestamp.
    assert len({e["disclosure_id"] for e in entries}) == 40
    assert sorted(collections.Counter(e["at"] for e in entries).values()) == [10, 10, 10, 10]
    assert [r.hits[0].tracing.key.record_number for r in _results(client, batch_id)] == [f"NCIS-{i}" for i in range(40)]


def test_finished_batches_and_their_results_are_purged_after_their_keeping_time(index: Index) -> None:
    keep = 1.0 / 86400  # one second
    start(index, BatchSettings(chunk=10, duty=1.0, keep_results_days=keep, purge_interval=0.2, idle_poll=0.1))
    queries = _people(index, 3)
    client = index.client("CCF-BATCH", "ARMY-CCF", [Role.QUERIER, Role.BATCH])
    batch_id = _submit(client, queries).batch_id
    assert _wait(client, batch_id).state == DONE
    deadline = time.monotonic() + 30
    while True:
        try:
            _status(client, batch_id)
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.NOT_FOUND
            break
        assert time.monotonic() < deadline, "the finished batch was never purged"
        time.sleep(0.2)
    conn = sqlite3.connect(index.data_dir / "batch.db")
    try:
        assert conn.execute("SELECT count(*) FROM batch_query").fetchone() == (0,)
    finally:
        conn.close()


def test_purge_keeps_active_and_recent_batches(tmp_path: Path) -> None:
    now = [dt.datetime(2026, 1, 1, tzinfo=dt.UTC)]
    queue = BatchQueue(tmp_path / "batch.db", clock=lambda: now[0])
    owner_ = Owner("CCF-BATCH", "", "ab" * 32)
    old = queue.submit(owner_, "old", [])
    queue.record(old, [])  # no queries: DONE at once
    active = queue.submit(owner_, "active", [NewQuery("q", b"")])
    now[0] += dt.timedelta(days=40)
    recent = queue.submit(owner_, "recent", [])
    queue.record(recent, [])
    assert queue.purge_finished(now[0] - dt.timedelta(days=30)) == 1
    assert queue.get(old.batch_id) is None
    assert queue.get(active.batch_id) is not None and queue.get(recent.batch_id) is not None
    queue.close()


def test_a_batch_whose_operator_was_suspended_is_not_answered(index: Index) -> None:
    # Identified again at the data: the submitter's account must still be active when the worker answers, or
    # another operator of the activity would stream results that the accounting says the submitter received.
    start(index, BatchSettings(threads=0))  # no worker yet: the batch stays queued
    queries = _people(index, 3)
    cert, account, password = index.accredit("CCF-BATCH", "ARMY-CCF", [Role.QUERIER, Role.BATCH])
    registry = index.registry
    registry.add_operator("ccf-second", "CCF-BATCH", "another-long-password")
    registry.close()
    client = index.connect(cert)
    client.login(account, password)
    batch_id = _submit(client, queries).batch_id
    index.stop()
    registry = index.registry
    registry.set_operator_status(account, Status.SUSPENDED)
    registry.close()
    start(index, BatchSettings(chunk=25, duty=1.0))
    other = index.connect(cert)
    other.login("ccf-second", "another-long-password")
    finished = _wait(other, batch_id)
    assert finished.state == batch_pb2.BATCH_STATE_FAILED
    assert finished.reason == "the submitting operator's account is no longer active"  # status said FAILED alone
    assert _batch_disclosures(index) == []


def test_a_purged_batch_leaves_nothing_of_its_queries_or_results_in_the_files(tmp_path: Path) -> None:
    """A batch review read a purged batch's SSNs in batch.db-wal (the rows were gone from batch.db)."""
    now = [dt.datetime(2026, 1, 1, tzinfo=dt.UTC)]
    queue = BatchQueue(tmp_path / "batch.db", clock=lambda: now[0])
    marker = b"ZZQXWYVE-287654329"
    batch = queue.submit(Owner("CCF-BATCH", "", "ab" * 32), "old", [NewQuery("q", marker + b"-query")])
    queue.record(batch, [Answered(0, marker + b"-result", False)])
    assert queue.get(batch.batch_id).state.value == "DONE"  # type: ignore[union-attr]
    assert any(marker in path.read_bytes() for path in tmp_path.iterdir())
    now[0] += dt.timedelta(days=40)
    reader = sqlite3.connect(tmp_path / "batch.db")  # a results stream, say, reading as the purge runs
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM batch").fetchone()
    assert queue.purge_finished(now[0] - dt.timedelta(days=30)) == 1
    reader.close()
    assert queue.purge_finished(now[0] - dt.timedelta(days=30)) == 0  # nothing to delete: the WAL all the same
    assert [path.name for path in tmp_path.iterdir() if marker in path.read_bytes()] == []
    queue.close()
