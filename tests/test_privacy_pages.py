"""An access request's answer in pages (search_service.privacy_pages): a person asked about 41,000 times
could no longer be answered (over gRPC's 4 MiB), while the register and the trail said the request was
answered (a review of a misbehaving terminal). Pages are made small here to see them; a real server over
mutual TLS on either backend."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest

from dcii.v1 import privacy_pb2, privacy_pb2_grpc
from search_service import privacy_pages
from search_service.accreditation import Purpose
from search_service.errors import field_violations
from tests.support import Client, Index
from tests.test_privacy import EXACT, HAROLD, SSN, _audit, _load_person, _officer, _querier, _register


def _opened(privacy: privacy_pb2_grpc.PrivacyServiceStub, officer: Client, number: str) -> None:
    opened = privacy_pb2.PrivacyRequest(request_number=number, kind=privacy_pb2.PRIVACY_REQUEST_KIND_ACCESS)
    opened.received_at.FromDatetime(dt.datetime.now(dt.UTC) - dt.timedelta(days=2))
    privacy.OpenPrivacyRequest(opened, metadata=officer.metadata, timeout=10)


def _request(number: str, token: str = "") -> privacy_pb2.AccessRequest:
    request = privacy_pb2.AccessRequest(request_number=number, ssn=SSN, page_token=token)
    request.name.surname, request.name.given_name = HAROLD["surname"], HAROLD["given_name"]
    return request


def _answered_events(index: Index) -> int:
    audit = _audit(index)
    try:
        return len(list(audit.events("ACCESS_REQUEST_ANSWERED")))
    finally:
        audit.close()


def test_the_disclosures_come_in_pages_and_only_the_first_is_the_answer(
    index: Index, monkeypatch: pytest.MonkeyPatch
) -> None:
    _load_person(index)
    adjudicator = _querier(index, "CCF-TERM-01", "ARMY-CCF", Purpose.SECURITY_CLEARANCE)
    for _ in range(3):
        adjudicator.search(mode=EXACT, name=HAROLD, identifiers={"ssn": SSN})  # 3 x 2 records: 6 disclosures
    officer, privacy = _officer(index)
    _opened(privacy, officer, "PA-26-001")
    whole = privacy.AnswerAccessRequest(_request("PA-26-001"), metadata=officer.metadata, timeout=10)
    assert len(whole.disclosures) == 6 and not whole.next_page_token
    # and that answer disclosed the person's records to the privacy office, each accounted
    expected = len(whole.disclosures) + len(whole.tracings) + len(whole.unverified)
    _opened(privacy, officer, "PA-26-002")
    monkeypatch.setattr(privacy_pages, "DISCLOSURES_PER_PAGE", 4)

    first = privacy.AnswerAccessRequest(_request("PA-26-002"), metadata=officer.metadata, timeout=10)
    pages, token = [first], first.next_page_token
    while token:
        pages.append(privacy.AnswerAccessRequest(_request("PA-26-002", token), metadata=officer.metadata, timeout=10))
        token = pages[-1].next_page_token
    # Not the disclosures this answer makes (after its first page's moment).
    sizes = [len(p.disclosures) for p in pages]
    assert sum(sizes) == expected and sizes[:-1] == [4] * (len(pages) - 1) and len(pages) == -(-expected // 4)
    assert first.tracings and all(not p.tracings and not p.unverified for p in pages[1:])
    ids = [d.disclosure_id + d.tracing.record_number for p in pages for d in p.disclosures]
    assert len(set(ids)) == expected
    assert _answered_events(index) == 2  # one for each request: a later page is no answer of its own
    register = _register(index)
    try:
        assert register.request("PA-26-002").responded_at is not None  # type: ignore[union-attr]
    finally:
        register.close()
    with pytest.raises(grpc.RpcError) as other:  # a token of another request
        privacy.AnswerAccessRequest(_request("PA-26-001", first.next_page_token), metadata=officer.metadata)
    assert [f for f, _ in field_violations(other.value)] == ["page_token"]


def test_a_first_page_that_cannot_be_sent_records_nothing(index: Index, monkeypatch: pytest.MonkeyPatch) -> None:
    """The answer was recorded, the request marked answered and the records accounted, and then gRPC could
    not send it."""
    _load_person(index)
    officer, privacy = _officer(index)
    _opened(privacy, officer, "PA-26-003")
    monkeypatch.setattr(privacy_pages, "FIRST_PAGE_BYTES", 200)
    with pytest.raises(grpc.RpcError) as refused:
        privacy.AnswerAccessRequest(_request("PA-26-003"), metadata=officer.metadata, timeout=10)
    assert refused.value.code() is grpc.StatusCode.FAILED_PRECONDITION
    assert "nothing was recorded" in (refused.value.details() or "")
    assert _answered_events(index) == 0
    register = _register(index)
    try:
        assert register.request("PA-26-003").responded_at is None  # type: ignore[union-attr]
    finally:
        register.close()
    audit = _audit(index)
    try:
        assert audit.disclosures_for_person(SSN.replace("-", "")) == []
    finally:
        audit.close()
