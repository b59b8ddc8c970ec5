"""The store's lifecycle rules applied by a real server over mutual TLS (gRPC): completing a NAC pending with a
favorable history supersedes the earlier one, a statement of dispute is carried by every later result, and the
agency's own delete is logged and takes the dispute with it. The rules on the store alone:
tests/test_store_lifecycle.py."""

from __future__ import annotations

import pytest

from dcii.v1 import ingest_pb2, search_pb2
from indexer.model import TracingKey, TracingType
from search_service.accreditation import Role
from tests import factories as f
from tests.support import Client, Index
from tests.test_store_lifecycle import _dispute


@pytest.fixture
def dss(index: Index) -> Client:
    return index.client("DSS-HQ-01", "DSS", [Role.SUBMITTER])


@pytest.fixture
def querier(index: Index) -> Client:
    return index.client("CCF-TERM-01", "ARMY-CCF", [Role.QUERIER])


def _hits(client: Client) -> list[search_pb2.Hit]:
    response = client.search(
        mode=search_pb2.SEARCH_MODE_NAME_ONLY, name={"surname": "Whitfield", "given_name": "Harold"}, page_size=100
    )
    return list(response.hits)


def test_supersession_and_disputes_over_grpc(index: Index, dss: Client, querier: Client) -> None:
    assert index.running is not None
    server_store = index.running.store
    old = f.nac_history("DSS", "DSS-NH-1", 1)
    old.nac_history.completed_on.year = 2012
    assert dss.upsert(old, f.nac_pending("DSS", "DSS-NP-1"))[0].outcome == ingest_pb2.INGEST_OUTCOME_APPLIED

    request = ingest_pb2.IngestRequest(request_id="done")
    request.complete_nac_pending.nac_pending.agency = "DSS"
    request.complete_nac_pending.nac_pending.record_number = "DSS-NP-1"
    request.complete_nac_pending.nac_history.CopyFrom(f.nac_history("DSS", "DSS-NH-2", 1))
    assert dss.push([request])[0].outcome == ingest_pb2.INGEST_OUTCOME_APPLIED

    assert [h.tracing.key.record_number for h in _hits(querier)] == ["DSS-NH-2"]
    actor = "DSS-HQ-01/dss-hq-01-op"
    assert {(r.key.record_number, r.reason, r.actor) for r in server_store.deletions()} == {
        ("DSS-NP-1", "SUPERSEDED by NAC_HISTORY DSS/DSS-NH-2", actor),
        ("DSS-NH-1", "SUPERSEDED by favorable NAC history DSS/DSS-NH-2", actor),
    }

    # A statement of dispute is carried by every later result.
    assert server_store.set_dispute(TracingKey("DSS", "DSS-NH-2"), _dispute(7))
    [hit] = _hits(querier)
    assert (hit.dispute.dispute_id, hit.dispute.statement_location) == ("DSP-7", "PRIVACY OFFICE FILE PA-7")

    # The agency's own delete: logged with its reason and actor, and the dispute goes with it.
    assert dss.push([f.delete("DSS", "DSS-NH-2", 2)])[0].outcome == ingest_pb2.INGEST_OUTCOME_APPLIED
    last = server_store.deletions()[-1]
    assert (last.key, last.type, last.reason, last.actor) == (
        TracingKey("DSS", "DSS-NH-2"),
        TracingType.NAC_HISTORY,
        "DELETED BY OWNING AGENCY",
        actor,
    )
    assert _hits(querier) == []
    assert server_store.check_integrity() == []
