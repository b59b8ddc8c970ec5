"""A budget of records each activity may receive a day (search_service.disclosure_budget): one accredited
terminal paged through 19,890 of 20,000 tracings in 16 s within its call rate (a review of a misbehaving
terminal). An answer past the budget is refused whole, nothing recorded or sent; other activities keep
theirs. A real server over mutual TLS, and two budgets sharing one table as two serving processes do."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from dcii.v1 import batch_pb2, batch_pb2_grpc, search_pb2, tracing_pb2
from indexer.exc import ResourceExhausted
from search_service.accreditation import Role
from search_service.batch_worker import BatchSettings
from search_service.disclosure_budget import FILE_NAME, DisclosureBudget
from tests import factories as f
from tests.server_proc import set_fsize, spawn_server
from tests.support import Client, Index, audit_entries, free_port, make_index

HAROLD = {"surname": "Whitfield", "given_name": "Harold"}


@pytest.fixture
def index(tmp_path: Path) -> Iterator[Index]:
    built = make_index(tmp_path)
    built.start(disclosures_per_activity_per_day=3, batch=BatchSettings(threads=0))
    try:
        yield built
    finally:
        built.stop()


def _exact(client: Client) -> list[str]:
    answer = client.search(mode=search_pb2.SEARCH_MODE_EXACT, name=HAROLD, identifiers={"ssn": "318-52-4471"})
    return sorted(hit.tracing.key.record_number for hit in answer.hits)


def test_an_answer_past_the_budget_is_refused_whole_and_others_keep_theirs(index: Index) -> None:
    index.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER]).upsert(f.person(record="NCIS-1"), f.person(record="NCIS-2"))
    querier = index.client("CCF-TERM-01", "ARMY-CCF", [Role.QUERIER])
    other = index.client("NAVY-TERM-01", "NAVY-CAF", [Role.QUERIER])
    assert _exact(querier) == ["NCIS-1", "NCIS-2"]  # 2 of its 3
    before = audit_entries(index.data_dir)
    with pytest.raises(grpc.RpcError) as refused:
        _exact(querier)  # 2 more would be 4
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    details = refused.value.details() or ""
    assert "disclosure budget" in details and "3 records a day" in details and "would disclose 2" in details
    assert audit_entries(index.data_dir) == before  # nothing accounted: nothing was sent
    nobody = querier.search(mode=search_pb2.SEARCH_MODE_NAME_ONLY, name={"surname": "Nobody", "given_name": "Atall"})
    assert list(nobody.hits) == []  # an answer that discloses nothing costs nothing
    assert _exact(other) == ["NCIS-1", "NCIS-2"]  # another activity's budget is its own


def test_a_restart_keeps_what_was_spent(index: Index) -> None:
    """Kept in memory, a restart gave every activity a new day's worth at once (a review of this budget)."""
    index.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER]).upsert(f.person(record="NCIS-1"), f.person(record="NCIS-2"))
    cert, account, password = index.accredit("CCF-TERM-01", "ARMY-CCF", [Role.QUERIER])
    querier = index.connect(cert)
    querier.login(account, password)
    assert _exact(querier) == ["NCIS-1", "NCIS-2"]
    querier.close()
    index.stop()
    index.start(disclosures_per_activity_per_day=3, batch=BatchSettings(threads=0))
    querier = index.connect(cert)
    querier.login(account, password)
    with pytest.raises(grpc.RpcError) as refused:
        _exact(querier)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_an_answer_whose_accounting_failed_costs_nothing(tmp_path: Path) -> None:
    """Charged before its disclosures were recorded, an answer the audit trail then refused (nothing sent)
    still counted against the budget (a review of this budget)."""
    index = make_index(tmp_path)
    index.data_dir.mkdir(parents=True, exist_ok=True)
    submitter = index.accredit("NCIS-RA-01", "NCIS", [Role.SUBMITTER])
    querier_cert = index.accredit("CCF-TERM-01", "ARMY-CCF", [Role.QUERIER])
    port = free_port()
    with spawn_server(index.data_dir, index.pki_dir, port, disclosures_per_activity_per_day=2) as server:
        index.port = port
        ncis = index.connect(submitter[0])
        ncis.login(*submitter[1:])
        ncis.upsert(f.person(record="NCIS-1"), f.person(record="NCIS-2"))
        querier = index.connect(querier_cert[0])
        querier.login(*querier_cert[1:])
        set_fsize(server.pid, 4096)  # every write of the audit trail fails (smaller than its files)
        with pytest.raises(grpc.RpcError) as failed:
            _exact(querier)
        assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
        set_fsize(server.pid, -1)
        assert _exact(querier) == ["NCIS-1", "NCIS-2"]  # the failed answer's 2 were given back


def test_serving_processes_share_one_budget(tmp_path: Path) -> None:
    first, second = DisclosureBudget(5, tmp_path), DisclosureBudget(5, tmp_path)
    first.charge("ARMY-CCF", 3)
    with pytest.raises(ResourceExhausted):
        second.charge("ARMY-CCF", 3)  # 3 of 5 spent through the other process's handle
    second.charge("ARMY-CCF", 2)
    second.charge("NAVY-CAF", 5)
    first.refund("NAVY-CAF", 9)  # given back, never above a day's worth
    with pytest.raises(ResourceExhausted):
        second.charge("NAVY-CAF", 6)  # more than a day's budget at once: never
    second.charge("NAVY-CAF", 5)
    assert (tmp_path / FILE_NAME).exists()


def test_a_batchs_records_count_against_the_same_budget(tmp_path: Path) -> None:
    """A batch's answers were not charged: an activity accredited for both spent its online budget and had
    116 more records from an 8-query batch (a review of this budget). The batch worker, a process of its own,
    charges the same table; a query past the budget is refused with the reason, the others answered."""
    built = make_index(tmp_path)
    built.start(disclosures_per_activity_per_day=3, batch=BatchSettings(chunk=10, duty=1.0))
    try:
        built.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER]).upsert(
            f.person(record="NCIS-1"), f.person(record="NCIS-2")
        )
        client = built.client("CCF-BATCH", "ARMY-CCF", [Role.QUERIER, Role.BATCH])
        assert _exact(client) == ["NCIS-1", "NCIS-2"]  # online: 2 of its 3
        exact = search_pb2.SearchRequest(
            mode=search_pb2.SEARCH_MODE_EXACT,
            purpose=search_pb2.PURPOSE_SECURITY_CLEARANCE,
            name=tracing_pb2.PersonName(**HAROLD),
            identifiers=tracing_pb2.PersonalIdentifiers(ssn="318-52-4471"),
        )
        nobody = search_pb2.SearchRequest(
            mode=search_pb2.SEARCH_MODE_NAME_ONLY,
            purpose=search_pb2.PURPOSE_SECURITY_CLEARANCE,
            name=tracing_pb2.PersonName(surname="Nobody", given_name="Atall"),
        )
        queries = [
            batch_pb2.BatchQuery(query_id="harold", query=exact),
            batch_pb2.BatchQuery(query_id="nobody", query=nobody),
        ]
        before = audit_entries(built.data_dir)
        stub = batch_pb2_grpc.BatchServiceStub(client.channel)
        batch_id = stub.SubmitBatch(
            iter([batch_pb2.SubmitBatchRequest(label="b", queries=queries)]), metadata=client.metadata, timeout=30
        ).batch_id
        deadline = time.monotonic() + 60
        while True:
            status = stub.GetBatchStatus(batch_pb2.GetBatchRequest(batch_id=batch_id), metadata=client.metadata)
            if status.state == batch_pb2.BATCH_STATE_DONE or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert status.state == batch_pb2.BATCH_STATE_DONE
        request = batch_pb2.GetBatchRequest(batch_id=batch_id)
        results = {r.query_id: r for r in stub.StreamBatchResults(request, metadata=client.metadata, timeout=30)}
        assert not results["harold"].hits and "disclosure budget" in results["harold"].violations[0].description
        assert not results["nobody"].hits and not results["nobody"].violations  # answered: nothing to disclose
        assert audit_entries(built.data_dir) == before  # nothing disclosed, nothing accounted
    finally:
        built.stop()
