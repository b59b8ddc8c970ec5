"""The privacy office's register refuses what would misstate it (UAT findings): `dcii privacy requests
respond` on an ACCESS request (closed only by its answer), and a request number shaped like an SSN (written
to the audit trail in clear). The CLI runs as a real subprocess on real files; the RPC on a real server."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from dcii.v1 import privacy_pb2
from indexer.exc import InvalidArgument
from search_service.accounting import AuditLog, load_or_create_key
from search_service.errors import field_violations
from search_service.privacy_requests import PrivacyRequests, RequestKind
from tests.support import ROOT, Index
from tests.test_privacy import _officer


def privacy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dcii.cli.main", "privacy", *args],
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "200"},
        text=True,
        capture_output=True,
        timeout=60,
        check=False,
    )


def _events(data: Path, kind: str) -> list[dict[str, str]]:
    audit = AuditLog(data / "audit.db", key=load_or_create_key(data / "audit.key"))
    try:
        return [dict(e.detail) for e in audit.events(kind)]
    finally:
        audit.close()


def test_respond_is_refused_for_an_access_request(tmp_path: Path) -> None:
    """`respond` marked an ACCESS request answered (and acknowledged) with no answer ever produced: the
    deadline report showed a compliance that never happened. It records an amendment's decision only."""
    data = tmp_path / "data"
    register = PrivacyRequests(data / "privacy.db")
    received = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    register.open_request("PA-26-100", RequestKind.ACCESS, received)
    register.open_request("PA-26-101", RequestKind.AMENDMENT, received)
    register.close()
    refused = privacy("requests", "respond", "PA-26-100", "--data", str(data))
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.strip() == (
        "dcii: request PA-26-100 is an ACCESS request: the access answer closes it"
        " (PrivacyService/AnswerAccessRequest); `respond` records an amendment's decision"
    )
    answered = privacy("requests", "respond", "PA-26-101", "--data", str(data))
    assert answered.returncode == 0 and "request PA-26-101 answered" in answered.stdout
    register = PrivacyRequests(data / "privacy.db")
    try:
        access, amendment = register.request("PA-26-100"), register.request("PA-26-101")
        assert access is not None and access.responded_at is None and access.acknowledged_at is None
        assert amendment is not None and amendment.responded_at is not None
    finally:
        register.close()
    assert _events(data, "PRIVACY_REQUEST_ANSWERED") == [{"request_number": "PA-26-101"}]
    acknowledged = privacy("requests", "acknowledge", "PA-26-100", "--data", str(data))  # still its to do
    assert acknowledged.returncode == 0 and "PA-26-100 acknowledged" in acknowledged.stdout


@pytest.mark.parametrize("number", ["548436305", "548-43-6305", "548 43 6305", "548.43.6305"])
def test_the_register_refuses_an_ssn_shaped_request_number(tmp_path: Path, number: str) -> None:
    register = PrivacyRequests(tmp_path / "privacy.db")
    try:
        with pytest.raises(InvalidArgument) as refused:
            register.open_request(number, RequestKind.ACCESS, dt.datetime.now(dt.UTC))
        [violation] = refused.value.violations
        assert violation.field == "request_number" and "shape of an SSN" in violation.description
        assert number not in violation.description and number not in refused.value.message
        assert register.list_requests() == []
        for kept in ("PA-548436305", "5484363050", "54843630", "2026-0001"):  # not an SSN's shape: accepted
            register.open_request(kept, RequestKind.ACCESS, dt.datetime.now(dt.UTC))
    finally:
        register.close()


def test_an_ssn_shaped_request_number_is_refused_over_the_wire_and_never_recorded(index: Index) -> None:
    """An office used the requester's SSN as its case number: OpenPrivacyRequest took it and the trail's
    PRIVACY_REQUEST_OPENED event held it in clear (SECURITY.md: subjects only as keyed hashes)."""
    officer, stub = _officer(index)
    request = privacy_pb2.PrivacyRequest(request_number="548-43-6305", kind=privacy_pb2.PRIVACY_REQUEST_KIND_ACCESS)
    request.received_at.FromDatetime(dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    with pytest.raises(grpc.RpcError) as refused:
        stub.OpenPrivacyRequest(request, metadata=officer.metadata, timeout=10)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    [(field, description)] = field_violations(refused.value)
    assert field == "request_number" and "shape of an SSN" in description
    assert "6305" not in str(refused.value.details()) and "6305" not in description
    listing = stub.ListPrivacyRequests(privacy_pb2.ListPrivacyRequestsRequest(), metadata=officer.metadata)
    assert list(listing.requests) == []
    assert _events(index.data_dir, "PRIVACY_REQUEST_OPENED") == []
    trail = (index.data_dir / "audit.db").read_bytes()
    assert b"548-43-6305" not in trail and b"548436305" not in trail
