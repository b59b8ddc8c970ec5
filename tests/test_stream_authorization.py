"""A stream is authorized for every message it takes and every page it sends, not once at its start
(search_service.auth.caller_again): after its activity is suspended, its operator suspended, its session
logged out or expired, an open ingest stream writes nothing more and an open batch-results stream discloses
nothing more. And what a call refuses part of is audited as a refused call is: a stream's actions on another
agency's tracings, a batch's queries for a purpose not accredited (SECURITY.md: every refusal).
Real server, real TLS; the registry changed as `dcii accredit` changes it, from outside the server."""

from __future__ import annotations

import datetime as dt
import queue
import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from dcii.v1 import admin_pb2, batch_pb2, batch_pb2_grpc, ingest_pb2, search_pb2
from indexer.model import TracingKey
from search_service.accounting import AuditLog, load_or_create_key
from search_service.accreditation import Purpose, Role, Status
from search_service.batch_worker import BatchSettings
from tests import factories as f
from tests.support import Client, Index, channel_for, make_index
from tests.test_batch import _query, _submit, _wait

NCIS, ACCOUNT = "NCIS-RA-01", "ncis-ra-01-op"


@pytest.fixture
def index(tmp_path: Path) -> Iterator[Index]:
    made = make_index(tmp_path)
    made.start(batch=BatchSettings(chunk=500, duty=1.0))
    yield made
    made.stop()


def _expire_sessions(index: Index, account: str) -> None:
    """What 8 hours do to a session: its expiry passes (set in the past, in the registry's file)."""
    conn = sqlite3.connect(index.data_dir / "registry.db", timeout=30)
    try:
        with conn:
            past = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).isoformat()
            conn.execute("UPDATE session SET expires_at = ? WHERE account_code = ?", (past, account))
    finally:
        conn.close()


def _suspend_activity(index: Index, client: Client) -> None:
    index.registry.set_activity_status(client.activity_id, Status.SUSPENDED)


def _suspend_operator(index: Index, client: Client) -> None:
    index.registry.set_operator_status(f"{client.activity_id.lower()}-op", Status.SUSPENDED)


def _log_out(index: Index, client: Client) -> None:
    client.sessions.Logout(admin_pb2.LogoutRequest(), metadata=client.metadata, timeout=10)


def _expire(index: Index, client: Client) -> None:
    _expire_sessions(index, f"{client.activity_id.lower()}-op")


CHANGES: dict[str, Callable[[Index, Client], None]] = {
    "activity suspended": _suspend_activity,
    "operator suspended": _suspend_operator,
    "logged out": _log_out,
    "session expired": _expire,
}
REFUSED = {grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED}


def _stored(index: Index, record: str) -> bool:
    assert index.running is not None
    return index.running.store.get(TracingKey("NCIS", record)) is not None


@pytest.mark.parametrize("batches", [False, True], ids=["Ingest", "IngestBatches"])
@pytest.mark.parametrize("change", list(CHANGES))
def test_an_open_ingest_stream_writes_nothing_once_its_caller_may_not(index: Index, change: str, batches: bool) -> None:
    client = index.client(NCIS, "NCIS", [Role.SUBMITTER])
    sent: queue.Queue[ingest_pb2.IngestRequest | None] = queue.Queue()

    def actions() -> Iterator[ingest_pb2.IngestRequest]:
        while (action := sent.get()) is not None:
            yield action

    def messages() -> Iterator[ingest_pb2.IngestBatchRequest]:
        for action in actions():
            yield ingest_pb2.IngestBatchRequest(requests=[action])

    stub = client.ingest
    answers: Iterator[object] = (
        stub.IngestBatches(messages(), metadata=client.metadata, timeout=60)
        if batches
        else stub.Ingest(actions(), metadata=client.metadata, timeout=60)
    )
    try:
        sent.put(f.upsert(f.person(record="NCIS-1")))
        next(answers)  # written while all is well
        CHANGES[change](index, client)
        sent.put(f.upsert(f.person(record="NCIS-2")))
        with pytest.raises(grpc.RpcError) as refused:
            next(answers)
        assert refused.value.code() in REFUSED, refused.value
    finally:
        sent.put(None)
    assert _stored(index, "NCIS-1") and not _stored(index, "NCIS-2")


def _results_stream(index: Index) -> tuple[Client, str]:
    """A finished batch of 1,200 queries with one hit each (three pages of results), and its submitter."""
    index.client("NCIS-RA-09", "NCIS", [Role.SUBMITTER]).upsert(f.person(record="NCIS-1", ssn="318-52-4471"))
    cert, account, password = index.accredit("CCF-BATCH", "ARMY-CCF", [Role.QUERIER, Role.BATCH])
    # The receive window kept at gRPC's 64 KiB: grown by its bandwidth probe (a loaded machine's long round
    # trips grow it more), it let the server write all three pages before the suspension, in one CI run.
    client = Client(channel_for(index.port, index.ca.cert_pem, cert, [("grpc.http2.bdp_probe", 0)]), (), "CCF-BATCH")
    index.clients.append(client)  # closed with the index
    client.login(account, password)
    harold = {"surname": "Whitfield", "given_name": "Harold"}
    queries = [
        _query(f"q{n}", search_pb2.SEARCH_MODE_EXACT, name=harold, identifiers={"ssn": "318-52-4471"})
        for n in range(1200)
    ]
    batch_id = _submit(client, queries).batch_id
    assert _wait(client, batch_id, timeout=240).state == batch_pb2.BATCH_STATE_DONE
    return client, batch_id


def test_an_open_results_stream_discloses_nothing_more_once_its_activity_is_suspended(index: Index) -> None:
    client, batch_id = _results_stream(index)
    stub = batch_pb2_grpc.BatchServiceStub(client.channel)
    request = batch_pb2.GetBatchRequest(batch_id=batch_id)
    whole = sum(1 for _ in stub.StreamBatchResults(request, metadata=client.metadata, timeout=60))
    assert whole == 1200  # the same stream, left alone, sends every page
    results = stub.StreamBatchResults(request, metadata=client.metadata, timeout=60)
    received = 1 if next(results) else 0
    _suspend_activity(index, client)
    with pytest.raises(grpc.RpcError) as refused:
        for _ in results:
            received += 1
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert received <= 500  # the page already read is all it sends (gRPC may still hold some of it)


def _refusals(index: Index) -> list[dict[str, str]]:
    audit = AuditLog(index.data_dir / "audit.db", key=load_or_create_key(index.data_dir / "audit.key"))
    try:
        return [dict(event.detail) for event in audit.events("REFUSAL")]
    finally:
        audit.close()


def test_a_streams_actions_on_another_agencys_tracings_are_audited(index: Index) -> None:
    army = index.client("ARMY-RA-01", "ARMY-CCF", [Role.SUBMITTER])
    army.upsert(f.person(agency="ARMY-CCF", record="ARMY-1"))
    ncis = index.client(NCIS, "NCIS", [Role.SUBMITTER])
    probes = [f.delete("ARMY-CCF", "ARMY-1", 2), f.upsert(f.person(agency="ARMY-CCF", record="ARMY-2"))]
    answered = ncis.push([*probes, f.upsert(f.person(record="NCIS-1"))])
    denied = ingest_pb2.INGEST_OUTCOME_PERMISSION_DENIED
    assert [a.outcome for a in answered] == [denied, denied, ingest_pb2.INGEST_OUTCOME_APPLIED]
    refusals = _refusals(index)  # one event for each group of actions the server took in (here 1 or 2)
    assert sum(int(refusal["count"]) for refusal in refusals) == 2
    for refusal in refusals:
        assert refusal["method"] == "/dcii.v1.IngestService/Ingest"
        assert "only the owning agency" in refusal["reason"] and "Whitfield" not in str(refusal)  # the key, no more


def test_a_batchs_queries_for_a_purpose_not_accredited_are_audited(index: Index) -> None:
    client = index.client("CCF-BATCH", "ARMY-CCF", [Role.QUERIER, Role.BATCH], purposes=[Purpose.SECURITY_CLEARANCE])
    harold = {"surname": "Whitfield", "given_name": "Harold"}
    queries = [
        _query("ok", search_pb2.SEARCH_MODE_NAME_ONLY, name=harold),
        _query("no1", search_pb2.SEARCH_MODE_NAME_ONLY, name=harold, purpose=search_pb2.PURPOSE_CRIMINAL_INVESTIGATION),
        _query("no2", search_pb2.SEARCH_MODE_NAME_ONLY, name=harold, purpose=search_pb2.PURPOSE_CRIMINAL_INVESTIGATION),
    ]
    assert _submit(client, queries).rejected == 2
    [refusal] = _refusals(index)
    assert refusal["method"] == "/dcii.v1.BatchService/SubmitBatch" and refusal["count"] == "2"


def test_a_stream_of_refused_actions_is_audited_at_most_once_a_second_with_its_count(index: Index) -> None:
    # One durable entry per message once (800 a second from one stream): the interceptor's budget of refusals
    # per certificate did not apply inside a stream (diff review 2).
    ncis = index.client(NCIS, "NCIS", [Role.SUBMITTER])
    sent: queue.Queue[ingest_pb2.IngestRequest | None] = queue.Queue()

    def actions() -> Iterator[ingest_pb2.IngestRequest]:
        while (action := sent.get()) is not None:
            yield action

    answers = ncis.ingest.Ingest(actions(), metadata=ncis.metadata, timeout=60)
    started = time.monotonic()
    for n in range(60):  # one at a time: each its own group
        sent.put(f.delete("ARMY-CCF", f"ARMY-{n}", 2))
        assert next(answers).outcome == ingest_pb2.INGEST_OUTCOME_PERMISSION_DENIED
    sent.put(None)
    assert list(answers) == []
    elapsed = time.monotonic() - started
    refusals = _refusals(index)
    assert sum(int(r["count"]) for r in refusals) == 60  # every one counted, the last ones at the stream's end
    assert len(refusals) <= elapsed + 2, (len(refusals), elapsed)
