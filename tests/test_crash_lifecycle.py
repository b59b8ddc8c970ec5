"""kill -9 during a lifecycle transition, a retention run and a batch: all or nothing, then resume.

Real server subprocesses (tests.server_proc), real SQLite files, SIGKILL at random moments:
- completions (open case -> file, NAC pending -> NAC history) streaming in and arriving as unary calls:
  after every kill each transition is whole or absent (never both records, never neither), and every
  acknowledged one is applied, with exactly one deletion-log entry for what it replaced;
- a retention run (the server's own schedule, or `dcii retention run`): what was removed is logged once,
  only due NAC histories go, and the next run finishes the work;
- a batch being answered by the worker process: after restarts it finishes with every query answered
  exactly once, and its answers equal the online ones.
After every kill the store's integrity check passes and the audit chain verifies. A few kills in CI,
many with `pytest -m slow`.
"""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from dcii.cli.bootstrap import load_demo
from dcii.v1 import batch_pb2, batch_pb2_grpc, ingest_pb2, search_pb2, tracing_pb2
from indexer.demo import generate_tracings
from indexer.model import TracingKey, TracingType
from indexer.retention import RETENTION_ACTOR, RETENTION_REASON
from indexer.store.sqlite import SqliteStore
from search_service import pki
from search_service.accreditation import Role
from tests import factories as f
from tests.server_proc import (
    alive,
    batch_workers,
    check_files,
    kill_hard,
    record,
    spawn_server,
    ssn,
    store_directly,
    wait_until,
)
from tests.support import ROOT, Client, Index, free_port, make_index

ACKED = (ingest_pb2.INGEST_OUTCOME_APPLIED, ingest_pb2.INGEST_OUTCOME_UNCHANGED)


# ---- (a) completions ----


@dataclass(frozen=True)
class Pair:
    """One lifecycle transition: `old` (open case or NAC pending) replaced by `new`."""

    n: int
    nac: bool  # NAC pending -> NAC history, else open case -> file
    same_key: bool  # the completed record keeps the old record number

    @property
    def old_key(self) -> TracingKey:
        return TracingKey("NCIS", f"NCIS-{'NP' if self.nac else 'OC'}-{self.n:06d}")

    @property
    def new_key(self) -> TracingKey:
        return self.old_key if self.same_key else TracingKey("NCIS", f"NCIS-{'NH' if self.nac else 'F'}-{self.n:06d}")

    def old(self) -> tracing_pb2.Tracing:
        make = f.nac_pending if self.nac else f.open_case
        return make("NCIS", self.old_key.record_number, 1, ssn=ssn(self.n), given="Harold")

    def request(self) -> ingest_pb2.IngestRequest:
        make = f.nac_history if self.nac else f.person
        new = make("NCIS", self.new_key.record_number, 2 if self.same_key else 1, ssn=ssn(self.n), given="Harold")
        request = ingest_pb2.IngestRequest(request_id=str(self.n))
        action = request.complete_nac_pending if self.nac else request.complete_open_case
        old = getattr(action, "nac_pending" if self.nac else "open_case")
        old.agency, old.record_number = self.old_key.agency, self.old_key.record_number
        getattr(action, "nac_history" if self.nac else "file").CopyFrom(new)
        return request


def _done(store: SqliteStore, pair: Pair) -> bool:
    """Whether the transition happened; fails when the store holds both records or neither."""
    old, new = store.get(pair.old_key), store.get(pair.new_key)
    new_type = TracingType.NAC_HISTORY if pair.nac else TracingType.FILE
    if pair.same_key:
        assert old is not None, f"{pair.old_key}: neither record"
        return old.tracing.type is new_type
    assert (old is None) != (new is None), f"{pair.old_key}: {'both' if old else 'neither'} records"
    return new is not None


@dataclass
class Round:
    acked: set[int] = field(default_factory=set)
    outcomes: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ack(self, result: ingest_pb2.IngestResult, n: int | None = None) -> None:
        with self.lock:
            self.outcomes.append(result.outcome)
            if result.outcome in ACKED:
                self.acked.add(int(result.request_id) if n is None else n)  # a unary result has no request id


def _stream(client: Client, pairs: list[Pair], state: Round) -> None:
    try:
        for result in client.ingest.Ingest((p.request() for p in pairs), metadata=client.metadata, timeout=60):
            state.ack(result)
    except grpc.RpcError:
        pass  # killed under us


def _unary(client: Client, pairs: list[Pair], state: Round) -> None:
    for pair in pairs:
        request = pair.request()
        try:
            if pair.nac:
                result = client.ingest.CompleteNacPendingTracing(
                    request.complete_nac_pending, metadata=client.metadata, timeout=10
                )
            else:
                result = client.ingest.CompleteOpenCaseTracing(
                    request.complete_open_case, metadata=client.metadata, timeout=10
                )
            state.ack(result, pair.n)
        except grpc.RpcError:
            return


def _check_pairs(data_dir: Path, pairs: list[Pair], acked: set[int]) -> set[int]:
    store = check_files(data_dir)
    try:
        logged: dict[TracingKey, int] = {}
        for record in store.deletions():
            assert record.reason.startswith("SUPERSEDED"), record.reason
            logged[record.key] = logged.get(record.key, 0) + 1
        done = {p.n for p in pairs if _done(store, p)}
        assert acked <= done, f"acknowledged completions lost: {sorted(acked - done)[:5]}"
        for pair in pairs:
            assert logged.get(pair.old_key, 0) == (pair.n in done), f"{pair.old_key}: deletion log"
        return done
    finally:
        store.close()


def _completion_round(
    index: Index, login: tuple[pki.Issued, str, str], todo: list[Pair], kill_after: int | None, delay: float
) -> Round:
    """Send `todo` (a tenth as unary calls, the rest on a stream) to a fresh server; SIGKILL it once
    `kill_after` completions are acknowledged and `delay` seconds more have passed (None: never)."""
    unary, streamed = todo[: len(todo) // 10], todo[len(todo) // 10 :]
    state = Round()
    with spawn_server(index.data_dir, index.pki_dir, index.port) as server:
        client = index.connect(login[0])
        client.login(login[1], login[2])
        threads = [
            threading.Thread(target=_stream, args=(client, streamed, state)),
            threading.Thread(target=_unary, args=(client, unary, state)),
        ]
        for thread in threads:
            thread.start()
        if kill_after is not None:
            wait_until(lambda: len(state.acked) >= kill_after or not threads[0].is_alive())
            time.sleep(delay)  # land the kill at a random point
            server.kill()
        for thread in threads:
            thread.join(timeout=60)
        client.close()
    assert set(state.outcomes) <= set(ACKED), state.outcomes  # never NOT_FOUND or REJECTED
    return state


def _run_completions(tmp_path: Path, kills: int, per_round: int = 300) -> None:
    index: Index = make_index(tmp_path)
    login = index.accredit("NCIS-RA-01", "NCIS", [Role.SUBMITTER])
    index.port = free_port()
    rng = random.Random(11)
    pairs: list[Pair] = []
    acked: set[int] = set()
    done: set[int] = set()
    cut = 0
    for round_no in range(kills + 1):
        fresh = [Pair(len(pairs) + i, nac=rng.random() < 0.5, same_key=rng.random() < 0.5) for i in range(per_round)]
        store_directly(index.data_dir, [p.old() for p in fresh])
        pairs += fresh
        todo = [p for p in pairs if p.n not in done]
        rng.shuffle(todo)
        todo += rng.sample([p for p in pairs if p.n in done], min(20, len(done)))  # replays: UNCHANGED
        last = round_no == kills
        state = _completion_round(index, login, todo, None if last else rng.randrange(5, 150), rng.uniform(0, 0.03))
        acked |= state.acked
        cut += len(state.outcomes) < len(todo)
        done = _check_pairs(index.data_dir, pairs, acked)
    assert cut >= kills * 2 // 3, "the kills did not interrupt the completions"
    assert done == {p.n for p in pairs}  # the last round, never killed, finished every transition
    record(
        "kill -9 during lifecycle completions",
        trials=kills,
        requests=len(pairs),
        acknowledged=len(acked),
        lost=0,
        failed=0,
        detail="each transition whole or absent after every kill; acknowledged ones applied, logged once",
    )


def test_kill_9_during_completions_is_all_or_nothing(tmp_path: Path) -> None:
    _run_completions(tmp_path, kills=3)


@pytest.mark.slow
def test_kill_9_during_completions_fifty_times(tmp_path: Path) -> None:
    _run_completions(tmp_path, kills=50)


# ---- (b) retention ----


def _nac_history(record: str, completed: int, n: int, favorable: bool) -> tracing_pb2.Tracing:
    wire = f.nac_history("DSS", record, 1, ssn=ssn(n), given="Harold")
    wire.nac_history.completed_on.year = completed
    wire.nac_history.outcome = tracing_pb2.NAC_OUTCOME_FAVORABLE if favorable else tracing_pb2.NAC_OUTCOME_INCOMPLETE
    return wire


def _deletion_count(data_dir: Path) -> int:
    conn = sqlite3.connect(f"file:{data_dir / 'index.db'}?mode=ro", uri=True, timeout=30)
    try:
        return int(conn.execute("SELECT count(*) FROM deletion_log").fetchone()[0])
    except sqlite3.OperationalError:
        return 0  # not created yet
    finally:
        conn.close()


def _check_retention(data_dir: Path, due: set[TracingKey], kept: set[TracingKey]) -> int:
    store = check_files(data_dir)
    try:
        log = store.deletions()
        removed = {record.key for record in log}
        assert len(removed) == len(log), "a history was logged as removed twice"
        assert all(r.reason == RETENTION_REASON and r.actor == RETENTION_ACTOR for r in log)
        assert removed <= due, f"removed but not due: {sorted(map(str, removed - due))[:5]}"
        live = {stored.tracing.key for stored in store.iter_all()}
        assert kept <= live, "a tracing that was not due is gone"
        assert not removed & live and (due - removed) <= live, "a due history neither kept nor logged"
        return len(removed)
    finally:
        store.close()


def _retention_process(index: Index, port: int, use_server: bool) -> subprocess.Popen[bytes]:
    if use_server:  # the server's own schedule, starting at once
        spec = {"data_dir": str(index.data_dir), "pki_dir": str(index.pki_dir), "port": port}
        spec["settings"] = {"retention_first_delay": 0.0}
        command = [sys.executable, "-m", "tests.server_proc", json.dumps(spec)]
    else:
        command = [sys.executable, "-m", "dcii.cli.main", "retention", "run", "--data", str(index.data_dir)]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _retention_round(index: Index, port: int, use_server: bool, delay: float) -> bool:
    """Start a retention run; SIGKILL it `delay` seconds after its first removal. Whether it was cut off."""
    before = _deletion_count(index.data_dir)
    process = _retention_process(index, port, use_server)
    try:
        wait_until(lambda: _deletion_count(index.data_dir) > before or process.poll() is not None, 120, "retention")
        time.sleep(delay)
        running = process.poll() is None
        process.kill()
    finally:
        process.wait(timeout=30)
    return running


def _run_retention(tmp_path: Path, kills: int, per_round: int = 2500) -> None:
    index = make_index(tmp_path)
    port = free_port()
    rng = random.Random(5)
    kept_wires = [_nac_history(f"DSS-NH-K{i:05d}", rng.randrange(2014, 2025), i, i % 2 == 0) for i in range(300)]
    kept_wires += [f.person("DSS", f"DSS-F-{i:05d}", ssn=ssn(1000 + i)) for i in range(100)]
    store_directly(index.data_dir, kept_wires)
    kept = {TracingKey(w.key.agency, w.key.record_number) for w in kept_wires}
    due: set[TracingKey] = set()
    interrupted = 0
    for round_no in range(kills):
        n0 = 10_000 + round_no * per_round
        fresh = [
            _nac_history(f"DSS-NH-{n:06d}", rng.randrange(1990, 2010), n, n % 3 == 0) for n in range(n0, n0 + per_round)
        ]
        store_directly(index.data_dir, fresh)
        due |= {TracingKey(w.key.agency, w.key.record_number) for w in fresh}
        interrupted += _retention_round(index, port, round_no % 2 == 0, rng.uniform(0, 0.25))
        _check_retention(index.data_dir, due, kept)
    assert interrupted >= kills * 2 // 3, "the runs finished before the kills"
    finish = _retention_process(index, port, use_server=False)
    assert finish.wait(timeout=300) == 0
    assert _check_retention(index.data_dir, due, kept) == len(due)  # resumed and finished
    record(
        "kill -9 during a retention run",
        trials=kills,
        requests=len(due) + len(kept),
        lost=0,
        failed=0,
        detail=f"{len(due)} due NAC histories removed and logged once each; {len(kept)} not due all kept",
    )


def test_kill_9_during_retention_resumes_and_removes_only_what_is_due(tmp_path: Path) -> None:
    _run_retention(tmp_path, kills=3)


@pytest.mark.slow
def test_kill_9_during_retention_fifty_times(tmp_path: Path) -> None:
    _run_retention(tmp_path, kills=50)


# ---- (c) a batch ----

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
def test_kill_9_during_a_batch_fifty_times(tmp_path: Path) -> None:
    _run_batch(tmp_path, kills=50, count=6000)
