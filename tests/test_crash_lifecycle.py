"""kill -9 during a lifecycle transition and a retention run: all or nothing, then resume.

Real server subprocesses (tests.server_proc), real SQLite files, SIGKILL at random moments:
- completions (open case -> file, NAC pending -> NAC history) streaming in and arriving as unary calls:
  after every kill each transition is whole or absent (never both records, never neither), and every
  acknowledged one is applied, with exactly one deletion-log entry for what it replaced;
- a retention run (the server's own schedule, or `dcii retention run`): what was removed is logged once,
  only due NAC histories go, and the next run finishes the work.
After every kill the store's integrity check passes and the audit chain verifies. A few kills in CI,
many with `pytest -m slow`. A batch being answered: tests/test_crash_batch.py.
"""

from __future__ import annotations

import datetime as dt
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

from dcii.v1 import ingest_pb2, tracing_pb2
from indexer.model import TracingKey, TracingType
from indexer.retention import RETENTION_ACTOR, RETENTION_REASON
from indexer.store.sqlite import SqliteStore
from search_service import pki
from search_service.accreditation import Role
from tests import factories as f
from tests.server_proc import check_files, record, spawn_server, ssn, store_directly, wait_until
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
    cut = rounds = 0
    # A kill that lands after the server answered everything interrupts nothing (a stream's answers come in
    # batches, and a quiet machine finishes a round within the delay): such a round is run again with fresh
    # pairs, up to three times the kills asked, so that the kills asked really cut completions short.
    while True:
        fresh = [Pair(len(pairs) + i, nac=rng.random() < 0.5, same_key=rng.random() < 0.5) for i in range(per_round)]
        store_directly(index.data_dir, [p.old() for p in fresh])
        pairs += fresh
        todo = [p for p in pairs if p.n not in done]
        rng.shuffle(todo)
        todo += rng.sample([p for p in pairs if p.n in done], min(20, len(done)))  # replays: UNCHANGED
        last = cut >= kills or rounds >= 3 * kills
        state = _completion_round(index, login, todo, None if last else rng.randrange(5, 150), rng.uniform(0, 0.03))
        acked |= state.acked
        cut += not last and len(state.outcomes) < len(todo)
        rounds += 1
        done = _check_pairs(index.data_dir, pairs, acked)
        if last:
            break
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
        by = {RETENTION_ACTOR, f"{RETENTION_ACTOR} cli:"}  # the server's schedule, or the command (who ran it)
        assert all(r.reason == RETENTION_REASON and r.actor[: len(RETENTION_ACTOR) + 5] in by for r in log)
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
            _nac_history(f"DSS-NH-{n:06d}", rng.randrange(1997, 2010), n, n % 3 == 0) for n in range(n0, n0 + per_round)
        ]
        store_directly(index.data_dir, fresh, checked_on=dt.date(2010, 12, 31))  # due: held since then
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
