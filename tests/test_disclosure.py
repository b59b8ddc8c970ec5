"""Every tracing returned is a disclosure, accounted before it leaves; no trail, no data (issue 4)."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from dcii.v1 import search_pb2
from indexer.exc import FailedPrecondition, Unavailable
from indexer.model import TracingKey
from search_service.accounting import AuditLog, load_or_create_key
from search_service.accreditation import Purpose, Role
from tests import factories as f
from tests.support import Client, Index, make_index

EXACT = search_pb2.SEARCH_MODE_EXACT
HAROLD = {"surname": "Whitfield", "given_name": "Harold"}


@pytest.fixture
def index(tmp_path: Path) -> Iterator[Index]:
    built = make_index(tmp_path)
    built.start(audit_timeout=0.5)
    try:
        yield built
    finally:
        built.stop()


def _audit(index: Index) -> AuditLog:
    return AuditLog(index.data_dir / "audit.db", key=load_or_create_key(index.data_dir / "audit.key"))


def _load(index: Index) -> Client:
    submitter = index.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER])
    submitter.upsert(f.person(record="NCIS-1"), f.person(record="NCIS-2"), f.person(record="NCIS-3", ssn="529-61-3380"))
    return index.client("CCF-TERM-01", "ARMY-CCF", [Role.QUERIER], purposes=list(Purpose))


def test_each_disclosed_tracing_is_accounted(index: Index) -> None:
    querier = _load(index)
    response = querier.search(
        mode=EXACT, name=HAROLD, identifiers={"ssn": "318-52-4471"}, purpose=search_pb2.PURPOSE_CRIMINAL_INVESTIGATION
    )
    assert sorted(h.tracing.key.record_number for h in response.hits) == ["NCIS-1", "NCIS-2"]
    audit = _audit(index)
    try:
        for record in ("NCIS-1", "NCIS-2"):
            [entry] = audit.disclosures_for_tracing("NCIS", record)
            assert entry.disclosure_id == response.disclosure_id
            assert (entry.method, entry.purpose) == ("ONLINE", "CRIMINAL_INVESTIGATION")
            assert (entry.recipient_activity, entry.recipient_operator) == ("CCF-TERM-01", "ccf-term-01-op")
            assert entry.law_enforcement
            assert entry.tracing == TracingKey("NCIS", record)
        assert audit.disclosures_for_tracing("NCIS", "NCIS-3") == []  # not returned, not disclosed
        assert audit.verify().ok
    finally:
        audit.close()


def test_no_hit_no_disclosure(index: Index) -> None:
    querier = _load(index)
    response = querier.search(
        mode=EXACT, name={"surname": "Nobody", "given_name": "At-All"}, identifiers={"ssn": "318-52-4471"}
    )
    assert not response.hits and not response.disclosure_id
    audit = _audit(index)
    try:
        assert audit.verify().entries == 0 or all(e.kind != "DISCLOSURE" for e in audit.events())
    finally:
        audit.close()


def test_fail_closed_when_the_trail_cannot_be_written(index: Index, caplog: pytest.LogCaptureFixture) -> None:
    querier = _load(index)
    with (index.data_dir / "audit.db.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another writer holds the trail: nothing can be accounted
        with pytest.raises(grpc.RpcError) as refused:
            querier.search(mode=EXACT, name=HAROLD, identifiers={"ssn": "318-52-4471"})
        fcntl.flock(lock, fcntl.LOCK_UN)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "318" not in (refused.value.details() or "")
    response = querier.search(mode=EXACT, name=HAROLD, identifiers={"ssn": "318-52-4471"})
    assert len(response.hits) == 2  # recovers as soon as the trail is writable
    # ... and the server said so in its log (with no metrics port, nothing else did: ops review 3).
    [logged] = [r for r in caplog.records if r.getMessage() == "failing closed"]
    assert logged.levelname == "ERROR" and "audit trail cannot be written" in logged.__dict__["reason"]
    assert "318" not in logged.__dict__["reason"] and "Whitfield" not in logged.__dict__["reason"]


def test_a_trail_the_server_cannot_write_fails_its_start(tmp_path: Path) -> None:
    # It started, said "serving", and refused every search after, logging nothing (ops review 3). Here the
    # head file cannot be opened for writing (a directory in its place: the tests run as root, for whom
    # permission bits do not stop a write).
    index = make_index(tmp_path)
    index.data_dir.mkdir(parents=True)
    (index.data_dir / "audit.db.head").mkdir()
    with pytest.raises(Unavailable, match="the audit trail cannot be written"):
        index.start()


def test_refusals_are_audited(index: Index) -> None:
    querier = _load(index)
    with pytest.raises(grpc.RpcError):
        querier.upsert(f.person(agency="ARMY-CCF"))
    with pytest.raises(grpc.RpcError):
        querier.login("ccf-term-01-op", "not-the-password")
    audit = _audit(index)
    try:
        refusals = audit.events("REFUSAL")
        assert [e.detail["method"] for e in refusals] == [
            "/dcii.v1.IngestService/Ingest",
            "/dcii.v1.SessionService/Login",
        ]
        assert all(e.actor != "no-certificate" for e in refusals)
    finally:
        audit.close()


def test_a_missing_audit_key_is_refused_and_none_is_made(tmp_path: Path) -> None:
    # A start made a new random key, then refused it as "not the one audit.db was made with", leaving a key
    # that never belonged to the trail in the directory (ops review 8).
    index = make_index(tmp_path)
    index.start()
    index.stop()
    key = index.data_dir / "audit.key"
    key.unlink()
    with pytest.raises(FailedPrecondition, match=r"audit.key is missing, but the audit trail .* was made with one"):
        index.start()
    assert not key.exists()
    # Nor by the CLIs and workers that write the trail (dcii accredit, dcii privacy, the batch worker).
    with pytest.raises(FailedPrecondition, match="restore the key from a backup"):
        load_or_create_key(key)
    assert not key.exists()
