"""Ingest's worker processes (search_service.ingest_pool): bulk groups are checked and prepared in real
spawned processes, answered and stored exactly as the handler threads would, and a worker killed mid-stream
or a server killed outright loses nothing and leaves nothing running."""

from __future__ import annotations

import datetime as dt
import logging
import marshal
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import pytest

from dcii.v1 import ingest_pb2, tracing_pb2
from indexer.edit_criteria import check_tracing
from indexer.model import TracingKey
from indexer.store.base import Replace, Upsert
from indexer.store.prepared import PreparedTracing, as_model
from search_service import ingest_plan
from search_service.accreditation import Role
from search_service.convert import tracing_in
from search_service.ingest_plan import Plan, decode_plans, plan_action, plan_encoded
from search_service.ingest_pool import MIN_POOL_ACTIONS
from tests import factories as f
from tests.server_proc import alive, children, kill_hard, spawn_server, wait_until
from tests.support import Client, Index, free_port, make_index

APPLIED = ingest_pb2.INGEST_OUTCOME_APPLIED
TODAY = dt.date(2026, 11, 21)
SURNAMES = ["Whitfield", "Okafor", "Nguyen", "Garcia", "Kowalski", "O'Brien", "De la Cruz", "Smith-Jones"]


def _ssn(i: int) -> str:
    return f"{318 + i % 300:03d}-{52 + i % 40:02d}-{4000 + i:04d}"


def _mixed_actions(n: int) -> list[ingest_pb2.IngestRequest]:
    """Every kind of action and refusal, interleaved: upserts (aliases, NAC histories that supersede),
    replays, refused fields, another agency's records, deletes and both lifecycle completions."""
    out: list[ingest_pb2.IngestRequest] = []
    for i in range(n):
        surname, record = SURNAMES[i % len(SURNAMES)], f"NCIS-{i:05d}"
        kind = i % 10
        if kind == 0:
            out.append(f.upsert(f.person(record=record, surname=surname, ssn="123-00-4567")))  # refused SSN
        elif kind == 1:
            out.append(f.upsert(f.person("DSS", f"DSS-{i:05d}", surname=surname)))  # not this agency's
        elif kind == 2:
            history = f.nac_history("NCIS", record, surname=surname, ssn=_ssn(i // 20))
            out.append(f.upsert(history))
        elif kind == 3:
            out.append(f.upsert(f.open_case(record=record, surname=surname, ssn=_ssn(i))))
            completion = ingest_pb2.IngestRequest(request_id=f"done-{i}")
            completion.complete_open_case.open_case.agency = "NCIS"
            completion.complete_open_case.open_case.record_number = record
            completion.complete_open_case.file.CopyFrom(f.person(record=f"{record}-F", surname=surname, ssn=_ssn(i)))
            out.append(completion)
        elif kind == 4 and i > 10:
            out.append(f.delete("NCIS", f"NCIS-{i - 8:05d}", 1, request_id=f"del-{i}"))
        else:
            aliases = (("Whit", "Hal"),) if kind == 5 else ()
            tracing = f.person(record=record, surname=surname, given="Maria", ssn=_ssn(i), aliases=aliases)
            out.append(f.upsert(tracing))
            if kind == 6:
                out.append(f.upsert(tracing, request_id=f"again-{i}"))  # a replay: UNCHANGED
    return out


def _batches(actions: Sequence[ingest_pb2.IngestRequest], size: int) -> list[list[ingest_pb2.IngestRequest]]:
    return [list(actions[i : i + size]) for i in range(0, len(actions), size)]


def _push(client: Client, batches: Iterable[list[ingest_pb2.IngestRequest]]) -> list[ingest_pb2.IngestResult]:
    messages = (ingest_pb2.IngestBatchRequest(requests=batch) for batch in batches)
    answers = client.ingest.IngestBatches(messages, metadata=client.metadata, timeout=120)
    return [result for answer in answers for result in answer.results]


def _server(root: Path, processes: int) -> Index:
    index = make_index(root)
    index.start(ingest_processes=processes)
    return index


def _stored(index: Index, keys: Sequence[TracingKey]) -> list[object]:
    assert index.running is not None
    store = index.running.store
    held = [store.get(key) for key in keys]
    return [None if s is None else (s.tracing, s.dispute) for s in held]


def _keys(actions: Sequence[ingest_pb2.IngestRequest]) -> list[TracingKey]:
    keys = set()
    for action in actions:
        which = action.WhichOneof("action")
        if which == "upsert":
            keys.add(TracingKey(action.upsert.key.agency, action.upsert.key.record_number))
        elif which == "complete_open_case":
            c = action.complete_open_case
            keys |= {
                TracingKey(c.file.key.agency, c.file.key.record_number),
                TracingKey("NCIS", c.open_case.record_number),
            }
    return sorted(keys, key=lambda k: (k.agency, k.record_number))


def test_bulk_groups_are_planned_in_worker_processes_and_answered_and_stored_as_in_the_server(
    tmp_path: Path,
) -> None:
    actions = _mixed_actions(700)
    pooled, threaded = _server(tmp_path / "pooled", 2), _server(tmp_path / "threaded", 0)
    try:
        results = []
        for index in (pooled, threaded):
            client = index.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER])
            results.append(_push(client, _batches(actions, 250)))
        assert pooled.running is not None and threaded.running is not None
        assert pooled.running.ingest_pool is not None and len(pooled.running.ingest_pool.worker_pids()) == 2
        assert threaded.running.ingest_pool is not None and threaded.running.ingest_pool.worker_pids() == []
        assert results[0] == results[1]
        outcomes = {r.outcome for r in results[0]}
        assert outcomes == {
            APPLIED,
            ingest_pb2.INGEST_OUTCOME_UNCHANGED,
            ingest_pb2.INGEST_OUTCOME_REJECTED,
            ingest_pb2.INGEST_OUTCOME_PERMISSION_DENIED,
        }
        keys = _keys(actions)
        stored = _stored(pooled, keys)
        assert stored == _stored(threaded, keys)
        assert 300 < sum(s is not None for s in stored) < len(keys)  # superseded, completed and deleted ones gone
    finally:
        pooled.stop()
        threaded.stop()


def test_a_worker_killed_mid_stream_loses_nothing_and_a_new_pool_takes_over(tmp_path: Path) -> None:
    index = _server(tmp_path, 2)
    try:
        client = index.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER])
        assert index.running is not None and index.running.ingest_pool is not None
        pool = index.running.ingest_pool
        small = [f.upsert(f.person(record=f"NCIS-8{i:04d}", ssn=_ssn(i))) for i in range(MIN_POOL_ACTIONS - 1)]
        assert {r.outcome for r in _push(client, [small])} == {APPLIED}
        assert pool.worker_pids() == []  # a small group is planned in the handler's thread: no worker started
        actions = [f.upsert(f.person(record=f"NCIS-{i:05d}", ssn=_ssn(i))) for i in range(1200)]
        killed: list[int] = []

        def batches() -> Iterator[list[ingest_pb2.IngestRequest]]:
            for number, batch in enumerate(_batches(actions, 200)):
                if number == 2:  # the pool is running (the first batches went through it): kill a worker
                    wait_until(lambda: bool(pool.worker_pids()), what="ingest workers")
                    killed.extend(pool.worker_pids())
                    kill_hard(killed[0])
                yield batch

        results = _push(client, batches())
        assert len(killed) == 2  # a pool starts all its workers before its first task (none spawned later)
        assert [r.outcome for r in results] == [APPLIED] * len(actions)
        # The broken pool's other worker goes too: left blocked on a result nobody reads, it would keep the
        # server from exiting.
        wait_until(lambda: not any(alive(pid) for pid in killed), timeout=30, what="the broken pool's workers")
        assert all(s is not None for s in _stored(index, _keys(actions)))
        _push(client, _batches([f.upsert(f.person(record=f"NCIS-9{i:04d}")) for i in range(200)], 200))
        assert pool.worker_pids() and not set(killed) & set(pool.worker_pids())
    finally:
        index.stop()


def test_the_workers_stop_when_the_server_is_killed(tmp_path: Path) -> None:
    index = make_index(tmp_path)
    cert, account, password = index.accredit("NCIS-RA-01", "NCIS", [Role.SUBMITTER])
    index.port = free_port()
    with spawn_server(index.data_dir, index.pki_dir, index.port, ingest_processes=2) as server:
        client = index.connect(cert)
        client.login(account, password)
        actions = [f.upsert(f.person(record=f"NCIS-{i:05d}", ssn=_ssn(i))) for i in range(4 * MIN_POOL_ACTIONS)]
        assert {r.outcome for r in _push(client, _batches(actions, len(actions)))} == {APPLIED}
        workers = children(server.pid, b"multiprocessing")
        assert len(workers) >= 2  # the two workers (and the resource tracker spawn starts)
        kill_hard(server.pid)
        wait_until(lambda: not any(alive(pid) for pid in workers), timeout=30, what="the workers to stop")
    index.stop()


# ---- a plan sent across the process boundary is the plan made in place ----


def _completion(old: str, new: tracing_pb2.Tracing) -> ingest_pb2.IngestRequest:
    request = ingest_pb2.IngestRequest(request_id="c")
    request.complete_nac_pending.nac_pending.agency = "NCIS"
    request.complete_nac_pending.nac_pending.record_number = old
    request.complete_nac_pending.nac_history.CopyFrom(new)
    return request


CASES = [
    f.upsert(f.person(aliases=(("Whit", "Hal"),))),
    f.upsert(f.person(ssn="123-00-4567", surname="Wh1tfield")),
    f.upsert(f.person("DSS", "DSS-1")),
    f.delete("NCIS", "NCIS-0001", 3),
    f.delete("NCIS", "", 0),
    _completion("NCIS-NP-1", f.nac_history("NCIS", "NCIS-NH-1")),
    _completion("NCIS-NP-1", f.person()),  # not a NAC history
    ingest_pb2.IngestRequest(request_id="nothing"),
]


def _model(plan: Plan) -> object:
    match plan:
        case Upsert(tracing):
            return Upsert(as_model(tracing))
        case Replace(old, kind, new):
            return Replace(old, kind, as_model(new))
    return plan


@pytest.mark.parametrize("request_", CASES, ids=[c.WhichOneof("action") or "none" for c in CASES])
def test_a_plan_decoded_from_a_worker_equals_the_plan_made_in_place(request_: ingest_pb2.IngestRequest) -> None:
    in_place = plan_action("NCIS", TODAY, request_)
    [decoded] = decode_plans(plan_encoded("NCIS", TODAY.isoformat(), [request_.SerializeToString()]))
    assert _model(decoded) == in_place
    if isinstance(decoded, Upsert | Replace):
        prepared = decoded.tracing if isinstance(decoded, Upsert) else decoded.new
        assert isinstance(prepared, PreparedTracing)
        assert prepared == PreparedTracing.of(as_model(prepared))


def test_a_prepared_tracing_decodes_to_the_checked_tracing() -> None:
    checked = check_tracing(tracing_in(f.nac_history("NCIS", "NCIS-NH-1", aliases=(("Whit", "Hal"),))), today=TODAY)
    sent = PreparedTracing.from_row(PreparedTracing.of(checked).row())
    assert sent.original is None and sent.tracing() == checked


def test_rows_of_another_format_are_refused() -> None:
    """A worker started from other code (upgraded on disk while the server ran) says so with its rows."""
    other = marshal.dumps(((ingest_plan.ROWS_FORMAT[0] + 1, ingest_plan.ROWS_FORMAT[1]), []))
    with pytest.raises(ingest_plan.OtherCode):
        decode_plans(other)


def test_workers_of_other_code_are_given_up_and_the_server_plans_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The server's format moved on (as after an upgrade in place): the spawned workers, which import the
    code afresh, answer in the old one. Every action is still answered and stored, by the server's threads,
    and no worker is started again."""
    monkeypatch.setattr(ingest_plan, "ROWS_FORMAT", (ingest_plan.ROWS_FORMAT[0] + 1, ingest_plan.ROWS_FORMAT[1]))
    index = _server(tmp_path, 2)
    try:
        client = index.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER])
        assert index.running is not None and index.running.ingest_pool is not None
        pool = index.running.ingest_pool
        actions = [f.upsert(f.person(record=f"NCIS-{i:05d}", ssn=_ssn(i))) for i in range(600)]
        with caplog.at_level(logging.ERROR, logger="search_service.ingest_pool"):
            assert [r.outcome for r in _push(client, _batches(actions[:300], 300))] == [APPLIED] * 300
        assert any("other code" in record.getMessage() for record in caplog.records)
        assert [r.outcome for r in _push(client, _batches(actions[300:], 300))] == [APPLIED] * 300
        assert pool.worker_pids() == []
        assert all(s is not None for s in _stored(index, _keys(actions)))
    finally:
        index.stop()
