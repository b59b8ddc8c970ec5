"""Batch requests (issue 5): a real server over mutual TLS, a real queue, a real audit trail. Here: the
answers (equal to the online ones, accounted as BATCH, in submission order), refusals of single queries and of
whole batches, who sees a batch, a page with more hits, and `dcii batch submit`; and the helpers the batch tests
share. The worker's own life (cancel, restarts, a killed worker process, purges): tests/test_batch_worker.py.

The worker runs as the server runs it, in a low-priority process of its own (search_service.batch_process),
unless a test passes `process=False` (threads in the server process).
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
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
from search_service import pki
from search_service.accreditation import Activity, Caller, Purpose, Role, Status
from search_service.batch import BatchServicer
from search_service.batch_process import BatchProcess
from search_service.batch_queue import BatchQueue
from search_service.batch_worker import BatchSettings
from search_service.errors import field_violations
from search_service.page_tokens import TokenEnvelope
from tests import factories as f
from tests.support import ROOT, Client, Index, make_index

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


def _refusal(
    client: Client, queries: list[batch_pb2.BatchQuery], label: str = "t"
) -> tuple[grpc.StatusCode, list[str]]:
    with pytest.raises(grpc.RpcError) as refused:
        _submit(client, queries, label)
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
    # The label and the query ids come back in every status and result: refused, not cut or stored raw.
    escaped = batch_pb2.BatchQuery(query_id="a\x1b[2J", query=q.query)
    assert _refusal(client, [escaped]) == (grpc.StatusCode.INVALID_ARGUMENT, ["queries[0].query_id"])
    for label in ("x" * 201, "red\x1b[31m\x07"):
        assert _refusal(client, [q], label=label) == (grpc.StatusCode.INVALID_ARGUMENT, ["label"])
    assert _submit(client, [q], label="x" * 200).label == "x" * 200
    querier = index.client("CCF-TERM", "ARMY-CCF", [Role.QUERIER])
    assert _refusal(querier, [q])[0] == grpc.StatusCode.PERMISSION_DENIED


def test_at_most_max_queries(tmp_path: Path) -> None:
    queue = BatchQueue(tmp_path / "batch.db")
    activity = Activity("A", "NCIS", frozenset({Role.BATCH}), frozenset(Purpose), Status.ACTIVE)
    servicer = BatchServicer(queue, dt.date.today, TokenEnvelope(os.urandom(32)), max_queries=3)
    q = _query("a", M.SEARCH_MODE_NAME_ONLY, name={"surname": "Whitfield", "given_name": "Harold"})
    messages = [batch_pb2.SubmitBatchRequest(queries=[q, q]), batch_pb2.SubmitBatchRequest(queries=[q, q])]
    with pytest.raises(InvalidArgument) as refused:
        servicer.submit(Caller(activity, "fp"), messages)
    assert [v.field for v in refused.value.violations] == ["queries"]
    assert queue.runnable() == []
    queue.close()


def test_a_query_or_a_batch_too_large_is_refused_without_being_kept(tmp_path: Path) -> None:
    # Refused queries were kept whole: 200 of 1 MB cost 204 MiB of memory and 400 MiB on disk.
    queue = BatchQueue(tmp_path / "batch.db")
    activity = Activity("A", "NCIS", frozenset({Role.BATCH}), frozenset(Purpose), Status.ACTIVE)
    servicer = BatchServicer(queue, dt.date.today, TokenEnvelope(os.urandom(32)))
    small = _query("a", M.SEARCH_MODE_NAME_ONLY, name={"surname": "Whitfield", "given_name": "Harold"})
    huge = _query("b", M.SEARCH_MODE_NAME_ONLY, name={"surname": "W" * 100_000, "given_name": "Harold"})
    status = servicer.submit(Caller(activity, "fp"), [batch_pb2.SubmitBatchRequest(queries=[small, huge])])
    assert (status.total, status.rejected) == (2, 1)
    assert (tmp_path / "batch.db").stat().st_size < 100_000  # the huge query's 100 KB not stored
    chunk = [_query(f"q{i}", M.SEARCH_MODE_NAME_ONLY, name={"surname": "W" * 4000}) for i in range(1000)]
    messages = (batch_pb2.SubmitBatchRequest(queries=chunk) for _ in range(20))  # 80 MB, read as it comes
    with pytest.raises(InvalidArgument) as refused:
        servicer.submit(Caller(activity, "fp"), messages)
    assert [v.field for v in refused.value.violations] == ["queries"]
    assert "MiB" in refused.value.violations[0].description
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


def test_only_the_operator_who_submitted_a_batch_receives_its_results(index: Index) -> None:
    # The disclosures are accounted to the submitting operator: a colleague at the same terminal (same
    # certificate, own account) sees the batch's status but may not receive its hits.
    start(index, BatchSettings(chunk=10, duty=1.0))
    index.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER]).upsert(f.person(record="NCIS-1", ssn="318-52-4471"))
    cert, account, password = index.accredit("CCF-BATCH", "ARMY-CCF", [Role.QUERIER, Role.BATCH])
    client, colleague = index.connect(cert), index.connect(cert)
    client.login(account, password)
    registry = index.registry
    registry.add_operator("ccf-colleague", "CCF-BATCH", "colleague-password-1")
    registry.close()
    colleague.login("ccf-colleague", "colleague-password-1")
    q = _query("a", M.SEARCH_MODE_NAME_ONLY, name={"surname": "Whitfield", "given_name": "Harold"})
    batch_id = _submit(client, [q]).batch_id
    assert _wait(colleague, batch_id).state == DONE
    with pytest.raises(grpc.RpcError) as denied:
        _results(colleague, batch_id)
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert [h.tracing.key.record_number for r in _results(client, batch_id) for h in r.hits] == ["NCIS-1"]


def _people(index: Index, count: int) -> list[batch_pb2.BatchQuery]:
    """count tracings on one name, told apart by SSN; one EXACT query (one hit) for each."""
    submitter = index.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER])
    ssns = [f"{101 + i:03d}-{11 + i % 80:02d}-{2001 + i:04d}" for i in range(count)]
    submitter.upsert(*(f.person(record=f"NCIS-{i}", ssn=ssn) for i, ssn in enumerate(ssns)))
    harold = {"surname": "Whitfield", "given_name": "Harold"}
    return [_query(f"q{i}", M.SEARCH_MODE_EXACT, name=harold, identifiers={"ssn": s}) for i, s in enumerate(ssns)]


def batch_profile(index: Index, tmp_path: Path) -> tuple[pki.Issued, str, str]:
    """A new batch activity's `dcii` profile in `tmp_path/profile.json` (its certificate, key, CA and the
    operator's password file beside it); (cert, account, password) of that operator."""
    cert, account, password = index.accredit("CCF-BATCH", "ARMY-CCF", [Role.QUERIER, Role.BATCH])
    for name, pem in (("ca.pem", index.ca.cert_pem), ("me.pem", cert.cert_pem), ("me-key.pem", cert.key_pem)):
        (tmp_path / name).write_bytes(pem)
    (tmp_path / "pw").write_text(password)
    profile = {"server": f"localhost:{index.port}", "ca": "ca.pem", "cert": "me.pem", "key": "me-key.pem"}
    profile |= {"account_code": account, "password_file": "pw"}
    (tmp_path / "profile.json").write_text(json.dumps(profile))
    return cert, account, password


def test_cli_submit_writes_json_lines(index: Index, tmp_path: Path) -> None:
    start(index, BatchSettings(duty=1.0))
    submitter = index.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER])
    submitter.upsert(f.person(record="NCIS-1"), f.person(record="NCIS-2", ssn="529-61-3380"))
    batch_profile(index, tmp_path)
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
    assert "threshold" not in line  # not a ranked query


def test_a_ranked_query_says_where_its_scores_stop_as_online(index: Index) -> None:
    start(index, BatchSettings(chunk=10, duty=1.0))
    _people(index, 2)
    client = index.client("CCF-BATCH", "ARMY-CCF", [Role.QUERIER, Role.BATCH])
    one_part = _query("surname", M.SEARCH_MODE_FUZZY, name={"surname": "Whitfield"})
    another = {"surname": "Whitfield", "given_name": "Zebulon"}  # no hit: the namesakes stay under the threshold
    batch_id = _submit(client, [one_part, _query("another", M.SEARCH_MODE_FUZZY, name=another)]).batch_id
    assert _wait(client, batch_id).state == DONE
    [result, none] = _results(client, batch_id)
    online = client.search(
        mode=M.SEARCH_MODE_FUZZY, name={"surname": "Whitfield"}, purpose=search_pb2.PURPOSE_SECURITY_CLEARANCE
    )
    assert 0 < result.threshold == online.threshold < 0.5 and result.hits
    line = batch_cli.result_line(result)
    assert line["threshold"] == result.threshold
    # Which scorer ranked it: a batch running across an upgrade had lines of two matchers, none named.
    assert line["matcher_version"] == result.matcher_version == online.matcher_version != ""
    # An answer with no hit says how close its best record came, as online: not a clean check.
    asked = client.search(mode=M.SEARCH_MODE_FUZZY, name=another, purpose=search_pb2.PURPOSE_SECURITY_CLEARANCE)
    assert not none.hits and 0 < none.best_below_threshold == asked.best_below_threshold < none.threshold
    assert batch_cli.result_line(none)["best_below_threshold"] == none.best_below_threshold
