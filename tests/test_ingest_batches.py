"""IngestBatches over real mutual TLS: many actions a message, answered exactly as Ingest answers them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import grpc
import pytest

from dcii.v1 import ingest_pb2, search_pb2
from search_service.accreditation import Role
from search_service.errors import field_violations
from search_service.ingest import MAX_BATCH_ACTIONS
from tests import factories as f
from tests.support import Client, Index

APPLIED = ingest_pb2.INGEST_OUTCOME_APPLIED
UNCHANGED = ingest_pb2.INGEST_OUTCOME_UNCHANGED
REJECTED = ingest_pb2.INGEST_OUTCOME_REJECTED
DENIED = ingest_pb2.INGEST_OUTCOME_PERMISSION_DENIED


@pytest.fixture
def ncis(index: Index) -> Client:
    return index.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER])


@pytest.fixture
def querier(index: Index) -> Client:
    return index.client("CCF-TERM-01", "ARMY-CCF", [Role.QUERIER])


def _batches(batches: Sequence[Sequence[ingest_pb2.IngestRequest]]) -> Iterator[ingest_pb2.IngestBatchRequest]:
    for batch in batches:
        yield ingest_pb2.IngestBatchRequest(requests=batch)


def _push(client: Client, batches: Sequence[Sequence[ingest_pb2.IngestRequest]]) -> list[ingest_pb2.IngestBatchResult]:
    return list(client.ingest.IngestBatches(_batches(batches), metadata=client.metadata, timeout=30))


def _records(client: Client) -> list[str]:
    response = client.search(
        mode=search_pb2.SEARCH_MODE_NAME_ONLY, name={"surname": "Whitfield", "given_name": "Harold"}, page_size=100
    )
    return sorted(h.tracing.key.record_number for h in response.hits)


def test_each_batch_is_answered_in_order_and_each_action_as_ingest_answers_it(ncis: Client, querier: Client) -> None:
    good = [f.upsert(f.person(record=f"NCIS-{i:04d}")) for i in range(5)]
    bad = f.upsert(f.person(record="NCIS-0100", ssn="123-00-4567", surname="Wh1tfield"))
    other = f.upsert(f.person("DSS", "DSS-0001"))
    batches = [good[:3], [bad, other, good[3]], [], [good[4], good[0]]]

    answers = _push(ncis, batches)

    assert [len(a.results) for a in answers] == [3, 3, 0, 2]
    sent = [r.request_id for batch in batches for r in batch]
    assert [r.request_id for a in answers for r in a.results] == sent
    assert [r.outcome for a in answers for r in a.results] == [
        *[APPLIED] * 3,
        REJECTED,
        DENIED,
        APPLIED,
        APPLIED,
        UNCHANGED,  # the same tracing again at the same version
    ]
    by_ingest = ncis.push([bad, other])  # the same refusals, word for word, as one action a message
    assert list(answers[1].results[:2]) == by_ingest
    assert _records(querier) == [f"NCIS-{i:04d}" for i in range(5)]


def test_a_batch_over_the_limit_ends_the_stream_after_the_batches_before_it(ncis: Client, querier: Client) -> None:
    first = [f.upsert(f.person(record="NCIS-0001"))]
    oversized = [f.upsert(f.person(record=f"NCIS-9{i:04d}")) for i in range(MAX_BATCH_ACTIONS + 1)]
    answers: list[ingest_pb2.IngestBatchResult] = []
    with pytest.raises(grpc.RpcError) as refused:
        for answer in ncis.ingest.IngestBatches(_batches([first, oversized]), metadata=ncis.metadata, timeout=30):
            answers.append(answer)

    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [(field, str(MAX_BATCH_ACTIONS) in why) for field, why in field_violations(refused.value)] == [
        ("requests", True)
    ]
    assert [r.outcome for a in answers for r in a.results] == [APPLIED]
    assert _records(querier) == ["NCIS-0001"]  # nothing of the refused batch


def test_many_batches_of_many_actions_are_all_stored(ncis: Client, querier: Client) -> None:
    batches = [[f.upsert(f.person(record=f"NCIS-{b:02d}{i:03d}")) for i in range(300)] for b in range(7)]
    answers = _push(ncis, batches)
    assert [len(a.results) for a in answers] == [300] * 7
    assert {r.outcome for a in answers for r in a.results} == {APPLIED}
    count = querier.search(
        mode=search_pb2.SEARCH_MODE_NAME_ONLY, name={"surname": "Whitfield", "given_name": "Harold"}, page_size=1
    )
    assert count.hits and count.next_page_token
