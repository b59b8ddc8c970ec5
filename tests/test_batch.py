"""Batch requests (issue 5): a real server over mutual TLS, a real queue, a real audit trail.

The worker runs as the server runs it, in a low-priority process of its own (search_service.batch_process),
unless a test passes `process=False` (threads in the server process).
"""

from __future__ import annotations

import collections
import datetime as dt
import fcntl
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from dcii.cli import batch as batch_cli
from dcii.cli.bootstrap import load_demo
from dcii.v1 import batch_pb2, batch_pb2_grpc, search_pb2
from indexer.demo import generate_tracings
from indexer.exc import InvalidArgument
from indexer.store.factory import open_store
from search_service.accreditation import Activity, Caller, Purpose, Role, Status
from search_service.batch import BatchServicer
from search_service.batch_process import BatchProcess
from search_service.batch_queue import BatchQueue, NewQuery, Owner
from search_service.batch_worker import BatchSettings
from search_service.errors import field_violations
from tests import factories as f
from tests.support import ROOT, Client, Index, free_port, make_index, server_process

M = search_pb2.SearchMode
DONE, QUEUED = batch_pb2.BATCH_STATE_DONE, batch_pb2.BATCH_STATE_QUEUED


def start(index: Index, batch: BatchSettings | None = None, **settings: Any) -> None:
    index.start(batch=batch or BatchSettings(), **settings)


@pytest.fixture
def index(tmp_path: Path) -> Iterator[Index]:
    built = make_index(tmp_path)
    try:
        yield built
    finally:
        built.stop()


def _stub(client: Client) -> batch_pb2_grpc.BatchServiceStub:
    return batch_pb2_grpc.BatchServiceStub(client.channel)


def _submit(client: Client, queries: list[batch_pb2.BatchQuery], label: str = "t") -> batch_pb2.BatchStatus:
    messages = [
        batch_pb2.SubmitBatchRequest(label=label, queries=queries[i : i + 100]) for i in range(0, len(queries), 100)
    ]
    return _stub(client).SubmitBatch(iter(messages), metadata=client.metadata, timeout=60)


def _status(client: Client, batch_id: str) -> batch_pb2.BatchStatus:
    return _stub(client).GetBatchStatus(batch_pb2.GetBatchRequest(batch_id=batch_id), metadata=client.metadata)


def _results(client: Client, batch_id: str) -> list[batch_pb2.BatchQueryResult]:
    request = batch_pb2.GetBatchRequest(batch_id=batch_id)
    return list(_stub(client).StreamBatchResults(request, metadata=client.metadata, timeout=60))


def _wait(client: Client, batch_id: str, until: int | None = None, timeout: float = 120) -> batch_pb2.BatchStatus:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = _status(client, batch_id)
        if status.state not in (QUEUED, batch_pb2.BATCH_STATE_RUNNING) or (until is not None and status.done >= until):
            return status
        time.sleep(0.05)
    raise TimeoutError(batch_id)


def _query(query_id: str, mode: search_pb2.SearchMode.ValueType, **fields: Any) -> batch_pb2.BatchQuery:
    fields.setdefault("purpose", search_pb2.PURPOSE_SECURITY_CLEARANCE)
    return batch_pb2.BatchQuery(query_id=query_id, query=search_pb2.SearchRequest(mode=mode, **fields))


def _mixed_queries(count: int, seed: int, n: int) -> list[batch_pb2.BatchQuery]:
    """n queries on demo people, every mode, with some the edit criteria refuse."""
    queries: list[batch_pb2.BatchQuery] = []
    for tracing in generate_tracings(count, seed=seed):
        if tracing.subject is None or len(queries) >= n:
            continue
        name, ids = tracing.subject.name, tracing.subject.identifiers
        person = {"surname": name.surname, "given_name": name.given_name}
        dob = {}
        if ids.date_of_birth is not None:
            dob = {"date_of_birth": {"year": ids.date_of_birth.year, "month": ids.date_of_birth.month}}
            dob["date_of_birth"]["day"] = ids.date_of_birth.day
        i, qid = len(queries), f"q{len(queries):04d}"
        kind = i % 7
        if kind == 0 and ids.ssn:
            queries.append(_query(qid, M.SEARCH_MODE_EXACT, name=person, identifiers={"ssn": ids.ssn}))
        elif kind in (0, 1):
            queries.append(_query(qid, M.SEARCH_MODE_EXACT, name=person, identifiers=dob))
        elif kind == 2:
            queries.append(_query(qid, M.SEARCH_MODE_NAME_ONLY, name=person, page_size=100))
        elif kind == 3:
            initial = {"surname": name.surname, "given_name": name.given_name[:1]}
            queries.append(_query(qid, M.SEARCH_MODE_NONSTANDARD, name=initial))
        elif kind == 4:
            typo = {"surname": name.surname[:2] + name.surname[3:], "given_name": name.given_name}
            queries.append(_query(qid, M.SEARCH_MODE_FUZZY, name=typo))
        elif kind == 5:
            queries.append(_query(qid, M.SEARCH_MODE_PID_QUALIFIED, name=person, identifiers=dob))
        else:  # refused: EXACT without a PID
            queries.append(_query(qid, M.SEARCH_MODE_EXACT, name=person))
    return queries


def _batch_disclosures(index: Index) -> list[dict[str, Any]]:
    conn = sqlite3.connect(index.data_dir / "audit.db")
    try:
        documents = [json.loads(row[0]) for row in conn.execute("SELECT canonical FROM entry")]
    finally:
        conn.close()
    return [d for d in documents if d.get("kind") == "DISCLOSURE" and d["method"] == "BATCH"]


def test_batch_answers_equal_online_answers_and_are_accounted_as_batch(index: Index) -> None:
    load_demo(open_store(index.store_url or index.data_dir / "index.db"), count=3000, seed=7)
    start(index, BatchSettings(chunk=40, duty=1.0))
    assert index.running is not None and isinstance(index.running.batch_worker, BatchProcess)
    client = index.client("CCF-BATCH", "ARMY-CCF", [Role.QUERIER, Role.BATCH])
    queries = _mixed_queries(3000, 7, 500)
    submitted = _submit(client, queries, label="nightly")
    assert (submitted.state, submitted.total, submitted.label, len(submitted.batch_id)) == (QUEUED, 500, "nightly", 32)
    assert submitted.rejected == submitted.done > 0  # refused at submission, counted at once
    status = _wait(client, submitted.batch_id)
    assert (status.state, status.done, status.rejected) == (DONE, 500, submitted.rejected)
    assert status.finished_at.seconds > 0
    results = _results(client, submitted.batch_id)
    assert [r.query_id for r in results] == [q.query_id for q in queries]  # submission order
    batch_hits = collections.Counter[tuple[str, str]]()
    for i, (query, result) in enumerate(zip(queries, results, strict=True)):
        batch_hits.update((h.tracing.key.agency, h.tracing.key.record_number) for h in result.hits)
        try:
            online = client.searcher.Search(query.query, metadata=client.metadata, timeout=30)
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
            fields = [f"queries[{i}].query.{field}" for field, _ in field_violations(error)]
            assert [v.field for v in result.violations] == fields and not result.hits
            continue
        assert not result.violations
        assert [(h.tracing.key.record_number, h.score) for h in result.hits] == [
            (h.tracing.key.record_number, h.score) for h in online.hits
        ]
        assert list(result.hits) == list(online.hits)  # the whole hit: tracing, explanation, dispute
        assert result.matcher_version == online.matcher_version
    modes = collections.Counter(q.query.mode for q, r in zip(queries, results, strict=True) if r.hits)
    assert len(modes) == 5  # every mode found something
    entries = _batch_disclosures(index)
    assert collections.Counter((e["agency"], e["record_number"]) for e in entries) == batch_hits
    assert {(e["recipient_activity"], e["recipient_operator"]) for e in entries} == {("CCF-BATCH", "ccf-batch-op")}
    assert len({e["disclosure_id"] for e in entries}) == sum(1 for r in results if r.hits)  # one per query


def test_refused_queries_do_not_sink_the_batch(index: Index) -> None:
    start(index, BatchSettings(duty=1.0, process=False))  # threads in the server process
    assert index.running is not None and not isinstance(index.running.batch_worker, BatchProcess)
    submitter = index.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER])
    submitter.upsert(f.person(record="NCIS-1"))
    client = index.client("CCF-BATCH", "ARMY-CCF", [Role.QUERIER, Role.BATCH], purposes=[Purpose.SECURITY_CLEARANCE])
    harold = {"surname": "Whitfield", "given_name": "Harold"}
    queries = [
        _query("good", M.SEARCH_MODE_EXACT, name=harold, identifiers={"ssn": "318-52-4471"}),
        _query("no-pid", M.SEARCH_MODE_EXACT, name=harold),
        _query("bad-ssn", M.SEARCH_MODE_EXACT, name=harold, identifiers={"ssn": "000-00-0000"}),
        _query(
            "not-accredited",
            M.SEARCH_MODE_EXACT,
            name=harold,
            identifiers={"ssn": "318-52-4471"},
            purpose=search_pb2.PURPOSE_CRIMINAL_INVESTIGATION,
        ),
    ]
    submitted = _submit(client, queries)
    assert (submitted.total, submitted.rejected) == (4, 3)
    assert _wait(client, submitted.batch_id).state == DONE
    good, no_pid, bad_ssn, not_accredited = _results(client, submitted.batch_id)
    assert [h.tracing.key.record_number for h in good.hits] == ["NCIS-1"] and not good.violations
    assert [v.field for v in no_pid.violations] == ["queries[1].query.identifiers"]
    assert [v.field for v in bad_ssn.violations] == ["queries[2].query.identifiers.ssn"]
    assert [v.field for v in not_accredited.violations] == ["queries[3].query.purpose"]
    assert not (no_pid.hits or bad_ssn.hits or not_accredited.hits)


def _refusal(client: Client, queries: list[batch_pb2.BatchQuery]) -> tuple[grpc.StatusCode, list[str]]:
    with pytest.raises(grpc.RpcError) as refused:
        _submit(client, queries)
    return refused.value.code(), [field for field, _ in field_violations(refused.value)]


def test_whole_batch_refusals_and_roles(index: Index) -> None:
    start(index, BatchSettings(threads=0))
    client = index.client("CCF-BATCH", "ARMY-CCF", [Role.QUERIER, Role.BATCH])
    q = _query("a", M.SEARCH_MODE_NAME_ONLY, name={"surname": "Whitfield", "given_name": "Harold"})
    assert _refusal(client, []) == (grpc.StatusCode.INVALID_ARGUMENT, ["queries"])
    duplicate = [q, q]
    assert _refusal(client, duplicate) == (grpc.StatusCode.INVALID_ARGUMENT, ["queries[1].query_id"])
    blank, long = batch_pb2.BatchQuery(query=q.query), batch_pb2.BatchQuery(query_id="x" * 65, query=q.query)
    fields = ["queries[1].query_id", "queries[2].query_id"]
    assert _refusal(client, [q, blank, long]) == (grpc.StatusCode.INVALID_ARGUMENT, fields)
    querier = index.client("CCF-TERM", "ARMY-CCF", [Role.QUERIER])
    assert _refusal(querier, [q])[0] == grpc.StatusCode.PERMISSION_DENIED


def test_at_most_max_queries(tmp_path: Path) -> None:
    queue = BatchQueue(tmp_path / "batch.db")
    activity = Activity("A", "NCIS", frozenset({Role.BATCH}), frozenset(Purpose), Status.ACTIVE)
    servicer = BatchServicer(queue, dt.date.today, max_queries=3)
    q = _query("a", M.SEARCH_MODE_NAME_ONLY, name={"surname": "Whitfield", "given_name": "Harold"})
    messages = [batch_pb2.SubmitBatchRequest(queries=[q, q]), batch_pb2.SubmitBatchRequest(queries=[q, q])]
    with pytest.raises(InvalidArgument) as refused:
        servicer.submit(Caller(activity, "fp"), messages)
    assert [v.field for v in refused.value.violations] == ["queries"]
    assert queue.runnable() == []
    queue.close()


def test_only_the_submitter_sees_a_batch_and_cancel(index: Index) -> None:
    start(index, BatchSettings(threads=0))  # no worker: the batch stays queued
    client = index.client("CCF-BATCH", "ARMY-CCF", [Role.QUERIER, Role.BATCH])
    other = index.client("NAVY-BATCH", "NAVY", [Role.QUERIER, Role.BATCH])
    admin = index.client("DSS-ADMIN", "DSS", [Role.ADMINISTRATOR, Role.BATCH])
    q = _query("a", M.SEARCH_MODE_NAME_ONLY, name={"surname": "Whitfield", "given_name": "Harold"})
    batch_id = _submit(client, [q]).batch_id
    request = batch_pb2.GetBatchRequest(batch_id=batch_id)
    for call in ("GetBatchStatus", "CancelBatch", "StreamBatchResults"):
        with pytest.raises(grpc.RpcError) as hidden:
            answer = getattr(_stub(other), call)(request, metadata=other.metadata)
            list(answer) if call == "StreamBatchResults" else answer
        assert hidden.value.code() == grpc.StatusCode.NOT_FOUND
    assert _status(admin, batch_id).state == QUEUED  # an administrator sees the status, not the results
    with pytest.raises(grpc.RpcError) as hidden:
        _results(admin, batch_id)
    assert hidden.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as early:
        _results(client, batch_id)
    assert early.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "not finished" in str(early.value.details())
    cancelled = _stub(client).CancelBatch(request, metadata=client.metadata)
    assert cancelled.state == batch_pb2.BATCH_STATE_CANCELLED and cancelled.finished_at.seconds > 0
    assert _results(client, batch_id) == []


def _people(index: Index, count: int) -> list[batch_pb2.BatchQuery]:
    """count tracings on one name, told apart by SSN; one EXACT query (one hit) for each."""
    submitter = index.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER])
    ssns = [f"{101 + i:03d}-{11 + i % 80:02d}-{2001 + i:04d}" for i in range(count)]
    submitter.upsert(*(f.person(record=f"NCIS-{i}", ssn=ssn) for i, ssn in enumerate(ssns)))
    harold = {"surname": "Whitfield", "given_name": "Harold"}
    return [_query(f"q{i}", M.SEARCH_MODE_EXACT, name=harold, identifiers={"ssn": s}) for i, s in enumerate(ssns)]


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


def test_cli_submit_writes_json_lines(index: Index, tmp_path: Path) -> None:
    start(index, BatchSettings(duty=1.0))
    submitter = index.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER])
    submitter.upsert(f.person(record="NCIS-1"), f.person(record="NCIS-2", ssn="529-61-3380"))
    cert, account, password = index.accredit("CCF-BATCH", "ARMY-CCF", [Role.QUERIER, Role.BATCH])
    for name, pem in (("ca.pem", index.ca.cert_pem), ("me.pem", cert.cert_pem), ("me-key.pem", cert.key_pem)):
        (tmp_path / name).write_bytes(pem)
    (tmp_path / "pw").write_text(password)
    profile = {"server": f"localhost:{index.port}", "ca": "ca.pem", "cert": "me.pem", "key": "me-key.pem"}
    profile |= {"account_code": account, "password_file": "pw"}
    (tmp_path / "profile.json").write_text(json.dumps(profile))
    header = "query_id,surname,given_name,middle_name,suffix,ssn,date_of_birth,place_of_birth,mode,purpose\n"
    rows = [
        "a,Whitfield,Harold,,,318-52-4471,,,EXACT,SECURITY_CLEARANCE",
        "b,Whitfield,Harold,,,,1971-04-12,US-VA,EXACT,security_clearance",
        "c,Whitfield,Harold,,,,,,EXACT,SECURITY_CLEARANCE",
        "d,Whitfeld,Harold,,,,,,FUZZY,SECURITY_CLEARANCE",
    ]
    (tmp_path / "in.csv").write_text(header + "\n".join(rows) + "\n")
    out = tmp_path / "out.jsonl"
    command = [sys.executable, "-m", "dcii.cli.main", "batch", "submit", str(tmp_path / "in.csv"), "--out", str(out)]
    env = dict(os.environ, DCII_PROFILE=str(tmp_path / "profile.json"))
    done = subprocess.run(
        [*command, "--poll", "0.1"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "FOR OFFICIAL USE ONLY - PRIVACY SENSITIVE" in done.stdout
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["query_id"] for line in lines] == ["a", "b", "c", "d"]
    assert [h["record_number"] for h in lines[0]["hits"]] == ["NCIS-1"]
    assert sorted(h["record_number"] for h in lines[1]["hits"]) == ["NCIS-1", "NCIS-2"]
    assert lines[0]["hits"][0]["type"] == "FILE" and lines[0]["hits"][0]["score"] == 1.0
    assert lines[0]["hits"][0]["explanation"]["matched_name"] == "primary" and "violations" not in lines[0]
    assert lines[2]["violations"][0]["field"] == "queries[2].query.identifiers" and lines[2]["hits"] == []
    assert {h["record_number"] for h in lines[3]["hits"]} == {"NCIS-1", "NCIS-2"}
    assert out.stat().st_mode & 0o777 == 0o600
    (tmp_path / "bad.csv").write_text(header + "x,Whitfield,Harold,,,,1971-4-x,,EXAKT,SECURITY_CLEARANCE\n")
    bad = subprocess.run(
        [*command[:5], str(tmp_path / "bad.csv"), "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode != 0 and "line 2: mode" in bad.stderr and "line 2: date_of_birth" in bad.stderr


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


def test_a_query_with_more_hits_than_its_page_says_so_and_the_rest_is_asked_online(index: Index) -> None:
    start(index, BatchSettings(chunk=10, duty=1.0))
    _people(index, 5)  # five Harold Whitfields
    client = index.client("CCF-BATCH", "ARMY-CCF", [Role.QUERIER, Role.BATCH])
    harold = {"surname": "Whitfield", "given_name": "Harold"}
    query = _query("all", M.SEARCH_MODE_NAME_ONLY, name=harold, page_size=3)
    batch_id = _submit(client, [query]).batch_id
    assert _wait(client, batch_id).state == DONE
    [result] = _results(client, batch_id)
    assert len(result.hits) == 3 and result.next_page_token and not result.candidates_truncated
    line = batch_cli.result_line(result)
    assert line["next_page_token"] == result.next_page_token and "candidates_truncated" not in line
    rest = client.search(
        mode=M.SEARCH_MODE_NAME_ONLY,
        name=harold,
        page_size=3,
        page_token=result.next_page_token,
        purpose=search_pb2.PURPOSE_SECURITY_CLEARANCE,
    )
    records = [h.tracing.key.record_number for h in (*result.hits, *rest.hits)]
    assert sorted(records) == [f"NCIS-{i}" for i in range(5)] and not rest.next_page_token


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
