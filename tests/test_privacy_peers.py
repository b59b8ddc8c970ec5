"""The Privacy Act duties with several instances (search_service.peers): two real servers on one OpenSearch
store (osmem-server), each with its own audit trail. An access request's accounting and a dispute's notices
on one instance hold what the other disclosed; a peer that does not answer, refuses, or is listed twice fails
the privacy office's call before anything is recorded; PeerService answers only the PEER role, checks its
requests, and records that it answered, without PII.

Before: each instance's PrivacyService read its own trail only, and the RUNBOOK had the privacy office run
`dcii audit disclosures` on every other instance by hand."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import shutil
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from dcii.cli import index_cmd
from dcii.cli import privacy as privacy_cli
from dcii.v1 import peer_pb2, peer_pb2_grpc, privacy_pb2, privacy_pb2_grpc, search_pb2
from indexer.exc import FailedPrecondition
from indexer.model import TracingKey
from search_service import audit_chain, pki
from search_service.accounting import AuditLog, load_or_create_key
from search_service.accreditation import Purpose, Role
from search_service.errors import field_violations
from search_service.peers import PEER_CERTIFICATE
from search_service.privacy_requests import PrivacyRequests, RequestKind
from tests import factories as f
from tests.support import Client, Index, channel_for, free_port

EXACT = search_pb2.SEARCH_MODE_EXACT
ASKER = "0123456789abcdef" * 2 + "/" + "fedcba9876543210"  # a peer's Identity.tag
HAROLD = {"surname": "Whitfield", "given_name": "Harold"}
SSN = "318-52-4471"


class _Pair:
    """Instances A and B of one deployment: one PKI, one store, a data directory each; A lists B (and itself,
    as every instance's copy of one list would) as its peers."""

    def __init__(self, root: Path, store_url: str) -> None:
        pki_dir = root / "pki"
        pki.init_pki(pki_dir, activities=[])
        pki.issue_client_into(pki_dir, PEER_CERTIFICATE, "DSS")
        ca = pki.load_issued(pki_dir, "ca")
        self.a = Index(pki_dir, root / "a", ca, store_url=store_url, port=free_port())
        self.b = Index(pki_dir, root / "b", ca, store_url=store_url, port=free_port())
        self.peer_cert = pki.load_issued(pki_dir, PEER_CERTIFICATE)
        for instance in (self.a, self.b):
            self.accredit_peer(instance)

    def accredit_peer(self, instance: Index) -> None:
        registry = instance.registry
        try:
            registry.add_activity(PEER_CERTIFICATE, "DSS", [Role.PEER], [])
            registry.add_certificate(PEER_CERTIFICATE, self.peer_cert.fingerprint)
        finally:
            registry.close()

    def start(self, *a_peers: Index) -> None:
        self.b.start()
        self.a.start(peers=tuple(f"localhost:{peer.port}" for peer in (self.a, *a_peers)))

    def stop(self) -> None:
        self.a.stop()
        self.b.stop()


@pytest.fixture
def pair(osmem: Any, tmp_path: Path) -> Iterator[_Pair]:
    url = osmem.clone().url.replace("http://", "opensearch://") + "?prefix=peers&replicas=0&drain_seconds=0.2"
    built = _Pair(tmp_path, url)
    try:
        yield built
    finally:
        built.stop()


def _officer(index: Index) -> tuple[Client, privacy_pb2_grpc.PrivacyServiceStub]:
    client = index.client("DSS-PRIVACY", "DSS", [Role.PRIVACY_OFFICER], purposes=[Purpose.PRIVACY_ACT_REQUEST])
    return client, privacy_pb2_grpc.PrivacyServiceStub(client.channel)


def _open(privacy: privacy_pb2_grpc.PrivacyServiceStub, officer: Client, number: str) -> None:
    opened = privacy_pb2.PrivacyRequest(request_number=number, kind=privacy_pb2.PRIVACY_REQUEST_KIND_ACCESS)
    opened.received_at.FromDatetime(dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
    privacy.OpenPrivacyRequest(opened, metadata=officer.metadata, timeout=10)


def _ask(privacy: privacy_pb2_grpc.PrivacyServiceStub, officer: Client, number: str) -> privacy_pb2.AccessResponse:
    request = privacy_pb2.AccessRequest(request_number=number, ssn=SSN)
    request.name.surname, request.name.given_name = HAROLD["surname"], HAROLD["given_name"]
    return privacy.AnswerAccessRequest(request, metadata=officer.metadata, timeout=60)


def _dispute(
    privacy: privacy_pb2_grpc.PrivacyServiceStub, officer: Client, record: str
) -> privacy_pb2.FileDisputeResponse:
    request = privacy_pb2.FileDisputeRequest(statement_location="PRIVACY OFFICE FILE 26-17", summary="Disputed")
    request.tracing.agency, request.tracing.record_number = "NCIS", record
    return privacy.FileDispute(request, metadata=officer.metadata, timeout=60)


def _searched_on_both(pair: _Pair) -> None:
    """NCIS-1 (Harold Whitfield) written through A; found by a terminal of A and by a terminal of B."""
    pair.a.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER]).upsert(
        f.person(record="NCIS-1"), f.person(record="NCIS-9", surname="Okafor", given="Ngozi", ssn="212-44-8765")
    )
    on_a = pair.a.client("CCF-TERM-A", "ARMY-CCF", [Role.QUERIER], purposes=[Purpose.SECURITY_CLEARANCE])
    on_b = pair.b.client("AFOSI-TERM-B", "AFOSI", [Role.QUERIER], purposes=[Purpose.CRIMINAL_INVESTIGATION])
    assert [
        h.tracing.key.record_number for h in on_a.search(mode=EXACT, name=HAROLD, identifiers={"ssn": SSN}).hits
    ] == ["NCIS-1"]
    found = on_b.search(
        mode=EXACT, name=HAROLD, identifiers={"ssn": SSN}, purpose=search_pb2.PURPOSE_CRIMINAL_INVESTIGATION
    )
    assert [h.tracing.key.record_number for h in found.hits] == ["NCIS-1"]


def _id(index: Index) -> str:
    return (index.data_dir / "instance.id").read_text().strip()


def _leaks(events: list[dict[str, str]]) -> bool:
    """Whether an event names the person (the SSN's digits, the surname)."""
    return any("318524471" in v or "WHITFIELD" in v.upper() for e in events for v in e.values())


def _events(index: Index, kind: str) -> list[dict[str, str]]:
    audit = AuditLog(index.data_dir / "audit.db", key=load_or_create_key(index.data_dir / "audit.key"))
    try:
        return [dict(e.detail) for e in audit.events(kind)]
    finally:
        audit.close()


def test_an_access_answer_and_a_dispute_on_one_instance_hold_what_the_other_disclosed(pair: _Pair) -> None:
    pair.start(pair.b)
    _searched_on_both(pair)
    officer, privacy = _officer(pair.a)
    _open(privacy, officer, "PA-26-101")

    answer = _ask(privacy, officer, "PA-26-101")
    told = sorted((d.recipient_activity, d.purpose, d.law_enforcement) for d in answer.disclosures)
    assert told == [
        ("AFOSI-TERM-B", search_pb2.PURPOSE_CRIMINAL_INVESTIGATION, True),  # in B's trail only
        ("CCF-TERM-A", search_pb2.PURPOSE_SECURITY_CLEARANCE, False),
    ]
    assert len({d.disclosure_id for d in answer.disclosures}) == 2  # A, listed among its own peers, counted once
    assert [d.disclosed_at.ToDatetime() for d in answer.disclosures] == sorted(
        d.disclosed_at.ToDatetime() for d in answer.disclosures
    )
    # B answered from its trail and recorded that it did: which instance asked, about whom (the trail's keyed
    # hash of the SSN), how many; no name nor SSN. A, asked by itself, answered with nothing and recorded nothing.
    given = _events(pair.b, "PEER_ACCOUNTING_GIVEN")
    assert [(e["accounting"], e["disclosures"]) for e in given] == [("PERSON", "1")]
    assert given[0]["asked_by"].startswith(_id(pair.a) + "/") and re.fullmatch("[0-9a-f]{64}", given[0]["person"])
    assert not _leaks(given) and _events(pair.a, "PEER_ACCOUNTING_GIVEN") == []

    disputed = _dispute(privacy, officer, "NCIS-1")
    assert disputed.notices_queued == 2
    register = PrivacyRequests(pair.a.data_dir / "privacy.db")
    try:
        notices = register.notices(dispute_id=disputed.dispute.dispute_id)
    finally:
        register.close()
    assert sorted(n.recipient_activity for n in notices) == ["AFOSI-TERM-B", "CCF-TERM-A"]
    assert [e["accounting"] for e in _events(pair.b, "PEER_ACCOUNTING_GIVEN")] == ["PERSON", "TRACING", "TRACING"]


def test_a_peer_that_does_not_answer_fails_the_call_and_nothing_is_recorded(pair: _Pair) -> None:
    pair.start(pair.b)
    _searched_on_both(pair)
    officer, privacy = _officer(pair.a)
    _open(privacy, officer, "PA-26-102")
    gone = pair.b.port
    pair.b.stop()

    with pytest.raises(grpc.RpcError) as refused:
        _ask(privacy, officer, "PA-26-102")
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert f"localhost:{gone}" in (refused.value.details() or "")
    with pytest.raises(grpc.RpcError) as not_filed:
        _dispute(privacy, officer, "NCIS-1")
    assert not_filed.value.code() == grpc.StatusCode.UNAVAILABLE
    # Nothing was answered, disclosed to the office, or filed.
    assert _events(pair.a, "ACCESS_REQUEST_ANSWERED") == [] and _events(pair.a, "DISPUTE_FILED") == []
    register = PrivacyRequests(pair.a.data_dir / "privacy.db")
    try:
        request = register.request("PA-26-102")
        assert request is not None and request.responded_at is None
        assert register.notices() == []
    finally:
        register.close()
    assert pair.a.running is not None
    stored = pair.a.running.store.get(TracingKey("NCIS", "NCIS-1"))
    assert stored is not None and stored.dispute is None


def test_a_peer_that_refuses_this_instance_fails_the_call(pair: _Pair) -> None:
    # B's registry does not know the peer certificate: B refuses, and the call says what to fix.
    registry = pair.b.registry
    try:
        registry.revoke_certificate(pair.peer_cert.fingerprint)
    finally:
        registry.close()
    pair.start(pair.b)
    _searched_on_both(pair)
    officer, privacy = _officer(pair.a)
    with pytest.raises(grpc.RpcError) as refused:  # a number is opened once in the deployment: B is asked
        _open(privacy, officer, "PA-26-103")
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "accredit the peer certificate" in (refused.value.details() or "")
    register = PrivacyRequests(pair.a.data_dir / "privacy.db")
    try:
        assert register.request("PA-26-103") is None
    finally:
        register.close()
    assert _events(pair.a, "ACCESS_REQUEST_ANSWERED") == []


def test_two_peer_addresses_reaching_one_instance_fail_the_call(pair: _Pair) -> None:
    """As a load balancer's address would: whichever instance it reaches, the list misses one."""
    pair.b.start()
    pair.a.start(peers=(f"localhost:{pair.b.port}", f"127.0.0.1:{pair.b.port}"))
    _searched_on_both(pair)
    officer, privacy = _officer(pair.a)
    for call in (_open, _ask):
        with pytest.raises(grpc.RpcError) as twice:
            call(privacy, officer, "PA-26-104")
        assert twice.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "reach the same instance" in (twice.value.details() or "")


def test_a_request_opened_on_one_instance_is_answered_and_listed_on_the_other(pair: _Pair) -> None:
    pair.a.start(peers=(f"localhost:{pair.b.port}",))
    pair.b.start(peers=(f"localhost:{pair.a.port}",))
    _searched_on_both(pair)
    officer_b, privacy_b = _officer(pair.b)
    _open(privacy_b, officer_b, "PA-26-105")
    officer_a, privacy_a = _officer(pair.a)
    with pytest.raises(grpc.RpcError) as twice:  # registered on B: not opened again on A
        _open(privacy_a, officer_a, "PA-26-105")
    assert twice.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert f"localhost:{pair.b.port}" in (twice.value.details() or "")
    _open(privacy_a, officer_a, "PA-26-106")

    answer = _ask(privacy_a, officer_a, "PA-26-105")  # opened on B, answered on A
    assert {d.recipient_activity for d in answer.disclosures} == {"CCF-TERM-A", "AFOSI-TERM-B"}
    register = PrivacyRequests(pair.b.data_dir / "privacy.db")
    try:
        on_b = register.request("PA-26-105")
        assert on_b is not None and on_b.responded_at is not None and on_b.acknowledged_at is not None
    finally:
        register.close()
    responded = _events(pair.b, "PEER_PRIVACY_REQUEST_RESPONDED")
    assert [(e["request_number"], e["asked_by"].split("/")[0]) for e in responded] == [("PA-26-105", _id(pair.a))]
    for privacy, officer in ((privacy_a, officer_a), (privacy_b, officer_b)):
        listed = privacy.ListPrivacyRequests(
            privacy_pb2.ListPrivacyRequestsRequest(), metadata=officer.metadata, timeout=30
        ).requests
        assert [(r.request_number, r.HasField("responded_at")) for r in listed] == [
            ("PA-26-105", True),
            ("PA-26-106", False),
        ]


def test_the_peer_service_answers_the_peer_role_only_and_checks_its_requests(pair: _Pair) -> None:
    pair.start()
    _searched_on_both(pair)
    terminal_cert, _, _ = pair.b.accredit("CCF-TERM-X", "ARMY-CCF", [Role.QUERIER, Role.PRIVACY_OFFICER])
    request = peer_pb2.PersonAccountingRequest(ssn=SSN, asked_by=ASKER)
    request.names.add(surname="Whitfield", given_name="Harold")
    with channel_for(pair.b.port, pair.b.ca.cert_pem, terminal_cert) as channel, pytest.raises(grpc.RpcError) as denied:
        list(peer_pb2_grpc.PeerServiceStub(channel).PersonAccounting(request, timeout=10))
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED

    with channel_for(pair.b.port, pair.b.ca.cert_pem, pair.peer_cert) as channel:
        stub = peer_pb2_grpc.PeerServiceStub(channel)
        answer = list(stub.PersonAccounting(request, timeout=10))
        assert [d.recipient_activity for part in answer for d in part.disclosures] == ["AFOSI-TERM-B"]
        assert {part.instance_id for part in answer} == {_id(pair.b)}
        bad = peer_pb2.PersonAccountingRequest(ssn="000-12-3456", asked_by="someone")
        bad.tracings.add().key.agency = "NOT-AN-AGENCY"
        bad.tracings[0].life_began.seconds = 2**40  # past year 9999
        with pytest.raises(grpc.RpcError) as invalid:
            list(stub.PersonAccounting(bad, timeout=10))
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = {name for name, _ in field_violations(invalid.value)}
    assert fields >= {"ssn", "names", "tracings[0].key.agency", "tracings[0].key.record_number"}
    assert fields >= {"tracings[0].life_began"}
    given = _events(pair.b, "PEER_ACCOUNTING_GIVEN")
    assert [e["asked_by"] for e in given] == [ASKER] and not _leaks(given)


class _SlowLink:
    """A TCP relay to `port` that holds each chunk the server sends for `delay` seconds: a peer that answers,
    slowly (a congested link, a peer busy with a long trail)."""

    def __init__(self, port: int, delay: float) -> None:
        self._port, self._delay = port, delay
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self._listener.accept()
                server = socket.create_connection(("127.0.0.1", self._port))
                threading.Thread(target=self._pump, args=(client, server, 0.0), daemon=True).start()
                threading.Thread(target=self._pump, args=(server, client, self._delay), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, target: socket.socket, delay: float) -> None:
        with contextlib.suppress(OSError), source, target:
            while chunk := source.recv(65536):
                time.sleep(delay)
                target.sendall(chunk)

    def close(self) -> None:
        self._listener.close()


def test_a_slow_peer_costs_the_call_its_own_deadline_and_nothing_is_recorded(pair: _Pair) -> None:
    """The office's call gives up at its deadline; A, whose questions to the slow peer were bounded by it, stops
    then and records no answer (before: each question waited up to 30 s, and A went on to account an answer,
    and mark the request answered, after its client had gone)."""
    register = PrivacyRequests(pair.a.data_dir / "privacy.db")
    try:
        register.open_request("PA-26-107", RequestKind.ACCESS, dt.datetime.now(dt.UTC))
    finally:
        register.close()
    pair.b.start()
    slow = _SlowLink(pair.b.port, delay=0.7)
    try:
        # One call in progress per activity: a second one is refused while the first still runs in A.
        pair.a.start(peers=(f"localhost:{slow.port}",), max_calls_per_activity=1)
        officer, privacy = _officer(pair.a)
        request = privacy_pb2.AccessRequest(request_number="PA-26-107", ssn=SSN)
        request.name.surname, request.name.given_name = HAROLD["surname"], HAROLD["given_name"]
        with pytest.raises(grpc.RpcError) as late:
            privacy.AnswerAccessRequest(request, metadata=officer.metadata, timeout=1.5)
        assert late.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        time.sleep(0.5)
        listed = privacy.ListPrivacyRequests(
            privacy_pb2.ListPrivacyRequestsRequest(), metadata=officer.metadata, timeout=30
        )  # A's first call is over (not RESOURCE_EXHAUSTED); the slow peer answers this one in time
        assert [(r.request_number, r.HasField("responded_at")) for r in listed.requests] == [("PA-26-107", False)]
    finally:
        slow.close()
    assert _events(pair.a, "ACCESS_REQUEST_ANSWERED") == []


def test_an_instance_with_another_ones_id_fails_the_call(pair: _Pair) -> None:
    """B's data directory made from a copy of A's (its instance.id with it): B's answers would have been taken
    for A's own and dropped, its disclosures missing from the answer without a word."""
    (pair.a.data_dir / "instance.id").write_text("ab" * 16 + "\n")
    (pair.b.data_dir / "instance.id").write_text("ab" * 16 + "\n")
    pair.start(pair.b)
    _searched_on_both(pair)
    officer, privacy = _officer(pair.a)
    with pytest.raises(grpc.RpcError) as copied:
        _open(privacy, officer, "PA-26-108")
    assert copied.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "has this instance's id" in (copied.value.details() or "")


def test_a_request_opened_on_two_instances_is_refused_until_one_is_withdrawn(
    pair: _Pair, capsys: pytest.CaptureFixture[str]
) -> None:
    """Opened on each before they were peers (or by two officers at the same moment): its answer would have to
    close one of two registered deadlines. Refused, naming both; `dcii privacy requests withdraw` on one settles it."""
    for instance in (pair.a, pair.b):
        register = PrivacyRequests(instance.data_dir / "privacy.db")
        try:
            register.open_request("PA-26-109", RequestKind.ACCESS, dt.datetime.now(dt.UTC))
        finally:
            register.close()
    pair.start(pair.b)
    _searched_on_both(pair)
    officer, privacy = _officer(pair.a)
    with pytest.raises(grpc.RpcError) as twice:
        _ask(privacy, officer, "PA-26-109")
    assert twice.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "registered on 2 instances" in (twice.value.details() or "")
    privacy_cli.main(["requests", "withdraw", "PA-26-109", "--data", str(pair.b.data_dir)])
    assert "PA-26-109 withdrawn" in capsys.readouterr().out
    [withdrawn] = _events(pair.b, "PRIVACY_REQUEST_WITHDRAWN")  # with what went: kind, receipt, not answered
    assert (withdrawn["request_number"], withdrawn["kind"], withdrawn["responded"]) == ("PA-26-109", "ACCESS", "no")
    answer = _ask(privacy, officer, "PA-26-109")
    assert {d.recipient_activity for d in answer.disclosures} == {"CCF-TERM-A", "AFOSI-TERM-B"}


def test_an_instance_missing_from_the_peers_fails_the_call_until_it_is_named_or_retired(
    pair: _Pair, capsys: pytest.CaptureFixture[str]
) -> None:
    """B serves the store and is not among A's peers (a pod added by scaling up, its name not added): before
    the roster, A answered with its own trail alone and B's disclosures were missing without a word."""
    pair.b.start()
    pair.a.start()  # no peers at all, as an instance of an earlier deployment's configuration
    _searched_on_both(pair)
    officer, privacy = _officer(pair.a)
    with pytest.raises(grpc.RpcError) as unasked:
        _open(privacy, officer, "PA-26-110")
    assert unasked.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert _id(pair.b) in (unasked.value.details() or "") and "DCII_PEERS" in (unasked.value.details() or "")
    assert pair.a.store_url is not None
    index_cmd.main(["index", "instances", "--store", pair.a.store_url])
    listed = capsys.readouterr().err
    assert _id(pair.a) in listed and _id(pair.b) in listed and "2 instances on the roster" in listed

    # Retired (its trail kept and read by hand elsewhere): no longer waited for.
    index_cmd.main(["index", "retire-instance", _id(pair.b), "--store", pair.a.store_url])
    assert "retired" in capsys.readouterr().err
    _open(privacy, officer, "PA-26-110")
    answer = _ask(privacy, officer, "PA-26-110")
    assert {d.recipient_activity for d in answer.disclosures} == {"CCF-TERM-A"}  # A's own trail, as decided
    # B starts again: on the reckoning again.
    pair.b.stop()
    pair.b.start()
    with pytest.raises(grpc.RpcError) as back:
        _open(privacy, officer, "PA-26-111")
    assert back.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_an_unlisted_copy_of_an_instance_fails_the_call(pair: _Pair) -> None:
    """B runs on a copy of A's data directory (its instance.id with it) and is not among A's peers: the roster
    holds A's id at B's place as an entry of its own, which A's answer did not hear from (review N1: the roster
    kept by id alone took B's entry for A's own)."""
    (pair.a.data_dir / "instance.id").write_text("cd" * 16 + "\n")
    (pair.b.data_dir / "instance.id").write_text("cd" * 16 + "\n")
    pair.b.start()
    pair.a.start()
    _searched_on_both(pair)
    officer, privacy = _officer(pair.a)
    with pytest.raises(grpc.RpcError) as unasked:
        _open(privacy, officer, "PA-26-112")
    assert unasked.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    said = unasked.value.details() or ""
    assert "cd" * 16 in said and "not asked" in said and "a copy of this instance" in said
    # Retiring by the id alone would take A's own entry off the reckoning too: refused, the entries named.
    assert pair.a.store_url is not None
    with pytest.raises(SystemExit, match="at 2 places"):
        index_cmd.main(["index", "retire-instance", "cd" * 16, "--store", pair.a.store_url])


def _archive(instance: Index, directory: Path) -> Path:
    """A stopped instance's trail, head file and key, as the RUNBOOK has them kept once it is retired."""
    directory.mkdir(mode=0o700, parents=True)
    with (
        contextlib.closing(sqlite3.connect(instance.data_dir / "audit.db")) as source,
        contextlib.closing(sqlite3.connect(directory / "audit.db")) as target,
    ):
        source.backup(target)
    for name in ("audit.db.head", "audit.key"):
        shutil.copy2(instance.data_dir / name, directory / name)
    return directory


def test_a_retired_instances_archived_trail_is_read_with_the_living_ones(pair: _Pair) -> None:
    """B is gone for good: retired from the roster, its trail kept in A's data directory (`archived/`), read
    at every start of A without a setting to forget. Before: its part of every accounting had to be looked up
    by hand for five years."""
    pair.start(pair.b)
    _searched_on_both(pair)
    pair.stop()
    assert pair.a.store_url is not None
    index_cmd.main(["index", "retire-instance", _id(pair.b), "--store", pair.a.store_url])
    kept = _archive(pair.b, pair.a.data_dir / "archived" / "search-2")
    pair.a.start()  # alone now: no peers
    assert (kept / "audit.lookup.db").exists()  # its lookups made at the start, not a scan at every read
    officer, privacy = _officer(pair.a)
    _open(privacy, officer, "PA-26-113")
    answer = _ask(privacy, officer, "PA-26-113")
    assert {d.recipient_activity for d in answer.disclosures} == {"CCF-TERM-A", "AFOSI-TERM-B"}
    assert _dispute(privacy, officer, "NCIS-1").notices_queued == 2
    pair.a.stop()

    # A copy cut short (its head file names entries the copy lacks), and another instance's key: each refuses
    # the start rather than leave disclosures out of the answers.
    head = (kept / "audit.db.head").read_bytes()
    named = audit_chain.read_head_file(kept / "audit.db.head")
    assert named is not None
    audit_chain.write_head_file(kept / "audit.db.head", audit_chain.Head(named.seq + 5, named.hash))
    with pytest.raises(FailedPrecondition, match="copy both again"):
        pair.a.start()
    (kept / "audit.db.head").write_bytes(head)
    shutil.copy2(pair.a.data_dir / "audit.key", kept / "audit.key")
    with pytest.raises(FailedPrecondition, match=r"not the key of its audit\.db"):
        pair.a.start()
