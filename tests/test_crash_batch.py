"""kill -9 during a batch being answered by the worker process: after restarts it finishes with every query
answered exactly once, and its answers equal the online ones.

Real server subprocesses (tests.server_proc), real SQLite files, SIGKILL at random moments: the server alone
(its worker follows), server and worker at once, or the worker first and then both. After every kill the
stored answers agree with the batch's counter, the store's integrity check passes and the audit chain
verifies; every answered query's hits are accounted as BATCH, a kill re-answering at most one chunk. A few
kills in CI, many with `pytest -m slow`. Completions and retention runs: tests/test_crash_lifecycle.py.
"""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path

import grpc
import pytest

from dcii.cli.bootstrap import load_demo
from dcii.v1 import batch_pb2, batch_pb2_grpc, search_pb2
from indexer.demo import generate_tracings
from indexer.store.sqlite import SqliteStore
from search_service.accreditation import Role
from tests.server_proc import alive, batch_workers, check_files, kill_hard, record, spawn_server
from tests.support import Client, free_port, make_index

M = search_pb2.SearchMode


def _queries(count: int) -> list[batch_pb2.BatchQuery]:
    """Queries on demo people in every mode, a few of which the edit criteria refuse."""
    queries: list[batch_pb2.BatchQuery] = []
    for tracing in generate_tracings(count * 3, seed=7):
        if tracing.subject is None or len(queries) >= count:
            continue
        name, ids = tracing.subject.name, tracing.subject.identifiers
        person = search_pb2.SearchRequest(purpose=search_pb2.PURPOSE_SECURITY_CLEARANCE)
        person.name.surname, person.name.given_name = name.surname, name.given_name
        kind = len(queries) % 6
        if kind == 0 and ids.ssn:
            person.mode, person.identifiers.ssn = M.SEARCH_MODE_EXACT, ids.ssn
        elif kind == 1:
            person.mode, person.page_size = M.SEARCH_MODE_NAME_ONLY, 100
        elif kind == 2:
            person.mode, person.name.given_name = M.SEARCH_MODE_NONSTANDARD, name.given_name[:1]
        elif kind == 3:
            person.mode, person.name.surname = M.SEARCH_MODE_FUZZY, name.surname[:2] + name.surname[3:]
        elif kind == 4 and ids.date_of_birth is not None:
            person.mode = M.SEARCH_MODE_PID_QUALIFIED
            person.identifiers.date_of_birth.year = ids.date_of_birth.year
        else:
            person.mode = M.SEARCH_MODE_EXACT  # no PID: refused, a result with violations all the same
        queries.append(batch_pb2.BatchQuery(query_id=f"q{len(queries):05d}", query=person))
    return queries


def _batch_rows(data_dir: Path, batch_id: str) -> tuple[int, dict[str, bytes]]:
    """(the batch's done counter, query_id -> result) as stored in batch.db."""
    conn = sqlite3.connect(f"file:{data_dir / 'batch.db'}?mode=ro", uri=True, timeout=30)
    try:
        seq, done = conn.execute("SELECT seq, done FROM batch WHERE batch_id = ?", (batch_id,)).fetchone()
        rows = conn.execute(
            "SELECT query_id, result FROM batch_query WHERE batch_seq = ? AND result IS NOT NULL", (seq,)
        ).fetchall()
    finally:
        conn.close()
    return int(done), {str(q): bytes(r) for q, r in rows}


def _batch_stub(client: Client) -> batch_pb2_grpc.BatchServiceStub:
    return batch_pb2_grpc.BatchServiceStub(client.channel)


def _batch_done(client: Client, batch_id: str) -> batch_pb2.BatchStatus:
    request = batch_pb2.GetBatchRequest(batch_id=batch_id)
    return _batch_stub(client).GetBatchStatus(request, metadata=client.metadata, timeout=10)


def _wait_done(client: Client, batch_id: str, at_least: int, timeout: float = 120) -> int:
    """Wait until the batch has `at_least` queries answered (or is finished); how many it has."""
    deadline = time.monotonic() + timeout
    while True:
        status = _batch_done(client, batch_id)
        if status.done >= at_least or status.state == batch_pb2.BATCH_STATE_DONE:
            return int(status.done)
        assert time.monotonic() < deadline, f"batch stuck at {status.done}"
        time.sleep(0.01)


def _kill_batch_round(client: Client, server: int, batch_id: str, how: int) -> int:
    """SIGKILL mid-batch. how 0: the server alone (its worker follows); 1: server and worker at once;
    2: the worker, then, once the server's restarted worker made progress, both. Worker kills made."""
    workers = batch_workers(server)
    worker_kills = 0
    if how == 2 and workers:
        kill_hard(*workers)
        worker_kills += 1
        _wait_done(client, batch_id, _batch_done(client, batch_id).done + 1)
        workers = batch_workers(server)
    kill_hard(*(workers if how else []), server)
    worker_kills += bool(how and workers)
    deadline = time.monotonic() + 30
    while any(alive(w) for w in workers):
        assert time.monotonic() < deadline, "the worker outlived its server"
        time.sleep(0.01)
    return worker_kills


def _run_batch(tmp_path: Path, kills: int, count: int) -> None:
    index = make_index(tmp_path)
    load_demo(SqliteStore(index.data_dir / "index.db"), count=2000, seed=7)
    cert, account, password = index.accredit("CCF-BATCH", "ARMY-CCF", [Role.QUERIER, Role.BATCH])
    index.port = free_port()
    queries = _queries(count)
    chunk = 5
    settings = {"chunk": chunk, "duty": 1.0, "nice": 0}
    rng = random.Random(3)
    batch_id, done, worker_kills = "", 0, 0
    for round_no in range(kills + 1):
        with spawn_server(index.data_dir, index.pki_dir, index.port, batch=settings) as server:
            client = index.connect(cert)
            client.login(account, password)
            if not batch_id:
                messages = (batch_pb2.SubmitBatchRequest(queries=queries[i : i + 100]) for i in range(0, count, 100))
                submitted = _batch_stub(client).SubmitBatch(messages, metadata=client.metadata, timeout=60)
                batch_id, done = submitted.batch_id, submitted.done  # refusals count as done at once
            if round_no == kills:  # the last round runs to the end
                assert _wait_done(client, batch_id, count, 600) == count
                _compare_with_online(client, batch_id, queries)
                client.close()
                break
            _wait_done(client, batch_id, done + rng.randrange(1, 25))
            time.sleep(rng.uniform(0, 0.05))
            worker_kills += _kill_batch_round(client, server.pid, batch_id, round_no % 3)
            client.close()
        done, results = _batch_rows(index.data_dir, batch_id)
        assert done == len(results)  # the counter and the stored answers agree
        assert all(batch_pb2.BatchQueryResult.FromString(r).query_id == q for q, r in results.items())
        assert done < count, "the batch finished before the kill"
        check_files(index.data_dir).close()
    check_files(index.data_dir).close()
    _, results = _batch_rows(index.data_dir, batch_id)
    answered = {q: batch_pb2.BatchQueryResult.FromString(r) for q, r in results.items()}
    _check_accounting(index.data_dir, answered, worker_kills, chunk)
    record(
        "kill -9 during a batch",
        trials=kills,
        requests=count,
        lost=0,
        failed=0,
        detail=f"{worker_kills} worker processes killed too; every query answered once, equal to online",
    )


def _compare_with_online(client: Client, batch_id: str, queries: list[batch_pb2.BatchQuery]) -> None:
    request = batch_pb2.GetBatchRequest(batch_id=batch_id)
    results = list(_batch_stub(client).StreamBatchResults(request, metadata=client.metadata, timeout=120))
    assert [r.query_id for r in results] == [q.query_id for q in queries]  # each exactly once, in order
    for query, result in zip(queries, results, strict=True):
        try:
            online = client.searcher.Search(query.query, metadata=client.metadata, timeout=30)
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and result.violations and not result.hits
            continue
        assert not result.violations and list(result.hits) == list(online.hits), query.query_id


def _check_accounting(data_dir: Path, answered: dict[str, batch_pb2.BatchQueryResult], kills: int, chunk: int) -> None:
    """Every answered query's hits are accounted as BATCH; a kill re-answers at most one chunk."""
    conn = sqlite3.connect(f"file:{data_dir / 'audit.db'}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT json_extract(canonical, '$.disclosure_id') FROM entry"
            " WHERE json_extract(canonical, '$.kind') = 'DISCLOSURE' AND json_extract(canonical, '$.method') = 'BATCH'"
        ).fetchall()
    finally:
        conn.close()
    with_hits = sum(1 for r in answered.values() if r.hits)
    assert with_hits <= len({row[0] for row in rows}) <= with_hits + kills * chunk


def test_kill_9_during_a_batch_resumes_and_answers_each_query_once(tmp_path: Path) -> None:
    _run_batch(tmp_path, kills=3, count=500)


@pytest.mark.slow
@pytest.mark.timeout(1800)  # about 300 s on a 2-core machine: the suite's default per-test limit
def test_kill_9_during_a_batch_fifty_times(tmp_path: Path) -> None:
    _run_batch(tmp_path, kills=50, count=6000)
