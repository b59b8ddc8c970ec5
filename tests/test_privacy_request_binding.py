"""One ACCESS request, one person (search_service.privacy_register): a review found that a request answered for
one person could be answered again, under its number, for any other: their records with full SSNs and their
accounting, first page or a later one, while the register showed one request. The first answer now binds the
request to the person (the trail's keyed hash of the SSN); another person's answer under the number is refused
FAILED_PRECONDITION, recorded as a REFUSAL, nothing disclosed nor accounted; the same person's answers go on.
Over the real gRPC service (mutual TLS) on real SQLite files; across instances, two servers on one osmem store."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from dcii.v1 import privacy_pb2, privacy_pb2_grpc, search_pb2
from search_service import privacy_pages
from search_service.accounting import AuditLog, load_or_create_key
from search_service.accreditation import Activity, Caller, Purpose, Status
from search_service.page_tokens import TokenEnvelope
from search_service.privacy_requests import PrivacyRequests, RequestKind
from tests import test_privacy_peers as peers
from tests.support import Client, Index, make_index
from tests.test_privacy import HAROLD, SSN, _load_person, _officer, _open, _querier

EXACT = search_pb2.SEARCH_MODE_EXACT
NGOZI, NGOZI_SSN = {"surname": "Okafor", "given_name": "Ngozi"}, "212-44-8765"
ANSWER = "/dcii.v1.PrivacyService/AnswerAccessRequest"
PII = ("318524471", "212448765", "WHITFIELD", "HAROLD", "OKAFOR", "NGOZI")
Office = tuple[Client, privacy_pb2_grpc.PrivacyServiceStub]


def _request(number: str, name: dict[str, str], ssn: str, token: str = "") -> privacy_pb2.AccessRequest:
    request = privacy_pb2.AccessRequest(request_number=number, ssn=ssn, page_token=token)
    request.name.surname, request.name.given_name = name["surname"], name["given_name"]
    return request


def _answer(office: Office, request: privacy_pb2.AccessRequest) -> privacy_pb2.AccessResponse:
    officer, privacy = office
    return privacy.AnswerAccessRequest(request, metadata=officer.metadata, timeout=60)


def _refused(office: Office, request: privacy_pb2.AccessRequest) -> str:
    """The details of the answer's refusal, which must be FAILED_PRECONDITION and name no one."""
    with pytest.raises(grpc.RpcError) as refused:
        _answer(office, request)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    details = refused.value.details() or ""
    assert "register a new request" in details and not any(p in details.upper() for p in PII)
    return details


def _trail(data_dir: Path) -> AuditLog:
    return AuditLog(data_dir / "audit.db", key=load_or_create_key(data_dir / "audit.key"))


def _to_office(data_dir: Path, ssn: str) -> list[str]:
    """The records of the person of `ssn` disclosed to the privacy office (its answers), as accounted."""
    audit = _trail(data_dir)
    try:
        found = audit.disclosures_for_person(ssn.replace("-", ""))
    finally:
        audit.close()
    return sorted(d.tracing.record_number for d in found if d.purpose == Purpose.PRIVACY_ACT_REQUEST.value)


def _events(data_dir: Path, kind: str) -> list[dict[str, str]]:
    audit = _trail(data_dir)
    try:
        return [{"actor": e.actor, **e.detail} for e in audit.events(kind)]
    finally:
        audit.close()


def _names_no_one(events: list[dict[str, str]]) -> bool:
    return not any(p in value.upper() for e in events for value in e.values() for p in PII)


def test_an_answered_request_is_refused_for_another_person_and_answered_again_for_its_own(index: Index) -> None:
    _load_person(index)  # Harold Whitfield's records, and Ngozi Okafor's (NCIS-5)
    _querier(index, "CCF-TERM-01", "ARMY-CCF", Purpose.SECURITY_CLEARANCE).search(
        mode=EXACT, name=NGOZI, identifiers={"ssn": NGOZI_SSN}
    )
    office = _officer(index)
    _open(office[1], office[0], "PA-26-301")
    first = _answer(office, _request("PA-26-301", HAROLD, SSN))
    assert first.tracings and _to_office(index.data_dir, SSN)

    # Ngozi under Harold's request (the review's reuse): refused, nothing of hers read out nor accounted.
    details = _refused(office, _request("PA-26-301", NGOZI, NGOZI_SSN))
    assert "PA-26-301 was answered for another person" in details
    assert _to_office(index.data_dir, NGOZI_SSN) == []
    assert [e["request_number"] for e in _events(index.data_dir, "ACCESS_REQUEST_ANSWERED")] == ["PA-26-301"]
    [refusal] = _events(index.data_dir, "REFUSAL")  # as the project records a refusal, naming no one
    assert refusal["method"] == ANSWER and refusal["reason"] == details
    assert refusal["actor"].startswith("DSS-PRIVACY/") and _names_no_one([refusal])

    # Harold again, under another spelling of his name (the same SSN: the same person), is answered.
    again = _answer(office, _request("PA-26-301", {"surname": "Whitfeld", "given_name": "Harald"}, SSN))
    assert sorted(h.tracing.key.record_number for h in again.tracings) == sorted(
        h.tracing.key.record_number for h in first.tracings
    )
    # Ngozi's own request is answered, and is hers from then on.
    _open(office[1], office[0], "PA-26-302")
    assert [h.tracing.key.record_number for h in _answer(office, _request("PA-26-302", NGOZI, NGOZI_SSN)).tracings] == [
        "NCIS-5"
    ]
    _refused(office, _request("PA-26-302", HAROLD, SSN))
    answered = _events(index.data_dir, "ACCESS_REQUEST_ANSWERED")
    assert [e["request_number"] for e in answered] == ["PA-26-301", "PA-26-301", "PA-26-302"]


def test_a_later_page_is_for_the_requests_person_only(index: Index, monkeypatch: pytest.MonkeyPatch) -> None:
    """A page token made for another person's request, under an answered number, read that person's accounting
    page by page, unaccounted. Tokens are sealed now (search_service.page_tokens), but the binding does not rest
    on that: one sealed with the instance's own key (as whoever holds its data directory could) is refused too."""
    _load_person(index)
    adjudicator = _querier(index, "CCF-TERM-01", "ARMY-CCF", Purpose.SECURITY_CLEARANCE)
    for _ in range(2):
        adjudicator.search(mode=EXACT, name=HAROLD, identifiers={"ssn": SSN})
        adjudicator.search(mode=EXACT, name=NGOZI, identifiers={"ssn": NGOZI_SSN})
    monkeypatch.setattr(privacy_pages, "DISCLOSURES_PER_PAGE", 1)
    office = _officer(index)
    _open(office[1], office[0], "PA-26-311")
    first = _answer(office, _request("PA-26-311", HAROLD, SSN))
    later = _answer(office, _request("PA-26-311", HAROLD, SSN, first.next_page_token))
    assert len(later.disclosures) == 1 and not later.tracings  # his own pages go on

    theirs = _request("PA-26-311", NGOZI, NGOZI_SSN)
    audit = _trail(index.data_dir)
    try:
        tokens = TokenEnvelope(audit.key_for("page tokens"))
        office_caller = Caller(Activity(office[0].activity_id, "DSS", frozenset(), frozenset(), Status.ACTIVE), "")
        disclosures = audit.disclosures_for_person(NGOZI_SSN.replace("-", ""))
        _, token = privacy_pages.page(disclosures, None, dt.datetime.now(dt.UTC), theirs, tokens, office_caller)
    finally:
        audit.close()
    assert token
    _refused(office, _request("PA-26-311", NGOZI, NGOZI_SSN, token))
    assert [e["request_number"] for e in _events(index.data_dir, "ACCESS_REQUEST_ANSWERED")] == ["PA-26-311"]
    assert _to_office(index.data_dir, NGOZI_SSN) == []


# An earlier version's privacy.db: its two tables, no record of whom a request was answered for.
_EARLIER = """
CREATE TABLE privacy_request (
    request_number TEXT PRIMARY KEY, kind TEXT NOT NULL, received_at TEXT NOT NULL,
    acknowledge_by TEXT NOT NULL, respond_by TEXT NOT NULL, acknowledged_at TEXT, responded_at TEXT
);
CREATE TABLE dispute_notice (
    notice_id TEXT PRIMARY KEY, dispute_id TEXT NOT NULL, agency TEXT NOT NULL, record_number TEXT NOT NULL,
    recipient_activity TEXT NOT NULL, statement_location TEXT NOT NULL, summary TEXT NOT NULL,
    queued_at TEXT NOT NULL, sent_at TEXT, UNIQUE (dispute_id, recipient_activity)
);
CREATE INDEX dispute_notice_unsent ON dispute_notice (sent_at, queued_at);
"""


@pytest.fixture
def upgraded(tmp_path: Path) -> Iterator[Index]:
    """A server started on an earlier version's register: PA-25-001 open, PA-25-002 answered."""
    built = make_index(tmp_path)
    built.data_dir.mkdir(parents=True)
    path = built.data_dir / "privacy.db"
    path.touch(mode=0o600)
    received = (dt.datetime.now(dt.UTC) - dt.timedelta(days=3)).isoformat(timespec="microseconds")
    due = (dt.datetime.now(dt.UTC) + dt.timedelta(days=30)).isoformat(timespec="microseconds")
    conn = sqlite3.connect(path)
    try:
        with conn:
            conn.executescript(_EARLIER)
            conn.executemany(
                "INSERT INTO privacy_request VALUES (?, 'ACCESS', ?, ?, ?, ?, ?)",
                [("PA-25-001", received, due, due, None, None), ("PA-25-002", received, due, due, received, received)],
            )
    finally:
        conn.close()
    built.start()
    try:
        yield built
    finally:
        built.stop()


def test_an_earlier_versions_register_is_used_and_its_answered_requests_are_not_answered_again(
    upgraded: Index,
) -> None:
    _load_person(upgraded)
    office = _officer(upgraded)
    listed = (
        office[1]
        .ListPrivacyRequests(privacy_pb2.ListPrivacyRequestsRequest(), metadata=office[0].metadata, timeout=10)
        .requests
    )
    assert [(r.request_number, r.HasField("responded_at")) for r in listed] == [
        ("PA-25-001", False),
        ("PA-25-002", True),
    ]
    # Answered before answers were bound: for whom is not known, so for no one (not even, unprovably, the same).
    assert "cannot tell for whom" in _refused(office, _request("PA-25-002", HAROLD, SSN))
    assert _to_office(upgraded.data_dir, SSN) == []
    # Its open request is answered, and bound as any.
    assert _answer(office, _request("PA-25-001", HAROLD, SSN)).tracings
    _refused(office, _request("PA-25-001", NGOZI, NGOZI_SSN))
    _answer(office, _request("PA-25-001", HAROLD, SSN))
    assert [e["request_number"] for e in _events(upgraded.data_dir, "ACCESS_REQUEST_ANSWERED")] == ["PA-25-001"] * 2


def test_the_first_binding_stands_and_a_number_opened_again_is_another_request(tmp_path: Path) -> None:
    register = PrivacyRequests(tmp_path / "privacy.db")
    try:
        request = register.open_request("PA-26-321", RequestKind.ACCESS, dt.datetime(2026, 11, 2, tzinfo=dt.UTC))
        assert register.person(request) is None
        assert register.bind(request, "a" * 64) == "a" * 64
        assert register.bind(request, "b" * 64) == "a" * 64  # a second answer at once, for another: refused
        register.withdraw("PA-26-321")
        reopened = register.open_request("PA-26-321", RequestKind.ACCESS, dt.datetime(2026, 11, 9, tzinfo=dt.UTC))
        assert register.person(reopened) is None
    finally:
        register.close()


@pytest.fixture
def pair(osmem: Any, tmp_path: Path) -> Iterator[peers._Pair]:
    url = osmem.clone().url.replace("http://", "opensearch://") + "?prefix=binding&replicas=0&drain_seconds=0.2"
    built = peers._Pair(tmp_path, url)
    try:
        yield built
    finally:
        built.stop()


def test_a_request_registered_on_another_instance_is_bound_where_it_is_registered(pair: peers._Pair) -> None:
    """The instance answering a request registered elsewhere sends the person to the holder, which binds it
    (search_service.privacy_binding; tests/test_privacy_binding_peers.py has the race and earlier versions'
    bindings): either instance answers it again for its person, and refuses every other."""
    pair.a.start(peers=(f"localhost:{pair.b.port}",))
    pair.b.start(peers=(f"localhost:{pair.a.port}",))
    peers._searched_on_both(pair)  # Harold Whitfield (NCIS-1) and Ngozi Okafor (NCIS-9)
    on_a, on_b = peers._officer(pair.a), peers._officer(pair.b)
    peers._open(on_b[1], on_b[0], "PA-26-331")  # registered on B
    assert [h.tracing.key.record_number for h in _answer(on_a, _request("PA-26-331", HAROLD, SSN)).tracings] == [
        "NCIS-1"
    ]
    assert "answered for another person" in _refused(on_a, _request("PA-26-331", NGOZI, NGOZI_SSN))
    assert "answered for another person" in _refused(on_b, _request("PA-26-331", NGOZI, NGOZI_SSN))
    _answer(on_b, _request("PA-26-331", HAROLD, SSN))  # his, again, on the holder
    _answer(on_a, _request("PA-26-331", HAROLD, SSN))  # and where it was first answered
    assert _to_office(pair.a.data_dir, NGOZI_SSN) == [] and _to_office(pair.b.data_dir, NGOZI_SSN) == []
    refusals = [*_events(pair.a.data_dir, "REFUSAL"), *_events(pair.b.data_dir, "REFUSAL")]
    assert [e["method"] for e in refusals] == [ANSWER] * 2 and _names_no_one(refusals)
    assert [e["request_number"] for e in _events(pair.a.data_dir, "ACCESS_REQUEST_ANSWERED")] == ["PA-26-331"] * 2
    assert [e["request_number"] for e in _events(pair.b.data_dir, "ACCESS_REQUEST_ANSWERED")] == ["PA-26-331"]
