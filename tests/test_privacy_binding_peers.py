"""One ACCESS request, one person, with several instances (search_service.privacy_binding): the request's
holder, the instance that registered it, is the one place its person is kept. Before, each instance kept
whom it had answered a request for, wherever the request was registered: two instances answering one
unanswered request at once each bound it, to two persons, both answered; and an instance other than the one
that answered refused a repeated answer for everyone ("cannot tell for whom"). Now the answering instance
sends the SSN to the holder (PeerService CheckRequestPerson, RespondPrivacyRequest, over mutual TLS), which
checks and binds it: any instance answers the request again for its person, later pages included, and refuses
every other person with FAILED_PRECONDITION and a REFUSAL event, nothing read out, disclosed or accounted.

Two real servers on one osmem store (tests.test_privacy_peers), each listing the other as its peer."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import grpc
import pytest

from dcii.v1 import peer_pb2, peer_pb2_grpc, privacy_pb2, privacy_pb2_grpc
from search_service import privacy_pages
from search_service.accounting import AuditLog, load_or_create_key
from search_service.accreditation import Purpose, Role
from search_service.errors import field_violations
from search_service.privacy_requests import PrivacyRequests
from tests import test_privacy_peers as peers
from tests.support import Client, Index, channel_for
from tests.test_privacy_request_binding import _answer, _request

HAROLD, SSN = peers.HAROLD, peers.SSN  # NCIS-1
NGOZI, NGOZI_SSN = {"surname": "Okafor", "given_name": "Ngozi"}, "212-44-8765"  # NCIS-9
ANSWER = "/dcii.v1.PrivacyService/AnswerAccessRequest"
PII = ("318524471", "318-52-4471", "212448765", "212-44-8765", "WHITFIELD", "OKAFOR", "NGOZI")
Office = tuple[Client, privacy_pb2_grpc.PrivacyServiceStub]


@pytest.fixture
def pair(osmem: Any, tmp_path: Path) -> Iterator[peers._Pair]:
    url = osmem.clone().url.replace("http://", "opensearch://") + "?prefix=bindpeers&replicas=0&drain_seconds=0.2"
    built = peers._Pair(tmp_path, url)
    try:
        built.a.start(peers=(f"localhost:{built.b.port}",))
        built.b.start(peers=(f"localhost:{built.a.port}",))
        peers._searched_on_both(built)  # Harold Whitfield (NCIS-1) and Ngozi Okafor (NCIS-9), searched on both
        yield built
    finally:
        built.stop()


def _records(answer: privacy_pb2.AccessResponse) -> list[str]:
    return [h.tracing.key.record_number for h in answer.tracings]


def _refused(office: Office, request: privacy_pb2.AccessRequest) -> str:
    """The refusal's details: FAILED_PRECONDITION, naming no one."""
    with pytest.raises(grpc.RpcError) as refused:
        _answer(office, request)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION, refused.value.details()
    details = refused.value.details() or ""
    assert "register a new request" in details and not any(p in details.upper() for p in PII)
    return details


def _trail(index: Index) -> AuditLog:
    return AuditLog(index.data_dir / "audit.db", key=load_or_create_key(index.data_dir / "audit.key"))


def _events(index: Index, kind: str) -> list[dict[str, str]]:
    audit = _trail(index)
    try:
        return [{"actor": e.actor, **e.detail} for e in audit.events(kind)]
    finally:
        audit.close()


def _to_office(index: Index, ssn: str) -> list[str]:
    """The person's records the instance disclosed to the privacy office (its answers), as it accounted them."""
    audit = _trail(index)
    try:
        found = audit.disclosures_for_person(ssn.replace("-", ""))
    finally:
        audit.close()
    return sorted(d.tracing.record_number for d in found if d.purpose == Purpose.PRIVACY_ACT_REQUEST.value)


def _person_ref(index: Index, ssn: str) -> str:
    audit = _trail(index)
    try:
        return audit.person_ref(ssn)
    finally:
        audit.close()


def _bindings(index: Index, number: str) -> list[str]:
    """The persons (keyed hashes) the instance's privacy.db binds request `number` to."""
    conn = sqlite3.connect(index.data_dir / "privacy.db")
    try:
        rows = conn.execute("SELECT person FROM request_person WHERE request_number = ?", (number,)).fetchall()
    finally:
        conn.close()
    return [str(row[0]) for row in rows]


def _nothing_in_clear(pair: peers._Pair, caplog: pytest.LogCaptureFixture) -> None:
    """No SSN in the service's logs, in any event of either trail, nor in clear in either privacy.db."""
    ours = [r for r in caplog.records if r.name.split(".")[0] in ("search_service", "indexer", "dcii", "grpc")]
    assert not any(p in f"{r.getMessage()} {r.__dict__}".upper() for r in ours for p in PII)
    for index in (pair.a, pair.b):
        audit = _trail(index)
        try:
            events = audit.events()
        finally:
            audit.close()
        assert not any(p in value.upper() for e in events for value in e.detail.values() for p in PII)
        for path in index.data_dir.glob("privacy.db*"):
            held = path.read_bytes()
            assert not any(p.encode() in held for p in PII[:4])


def test_a_request_answered_on_another_instance_is_refused_on_its_holder_for_another_person(
    pair: peers._Pair, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    on_a, on_b = peers._officer(pair.a), peers._officer(pair.b)
    peers._open(on_a[1], on_a[0], "PA-26-401")  # registered on A
    assert _records(_answer(on_b, _request("PA-26-401", HAROLD, SSN))) == ["NCIS-1"]  # answered on B, for Harold

    # The holder knows for whom (before: it could not tell, and refused everyone alike).
    assert "PA-26-401 was answered for another person" in _refused(on_a, _request("PA-26-401", NGOZI, NGOZI_SSN))
    assert "PA-26-401 was answered for another person" in _refused(on_b, _request("PA-26-401", NGOZI, NGOZI_SSN))
    # Bound once, where it is registered, by A's own key; B keeps no binding of A's request.
    assert _bindings(pair.a, "PA-26-401") == [_person_ref(pair.a, SSN)] and _bindings(pair.b, "PA-26-401") == []
    # Nothing of Ngozi's read out to the office nor accounted; each refusal recorded where it was made.
    assert _to_office(pair.a, NGOZI_SSN) == [] and _to_office(pair.b, NGOZI_SSN) == []
    for index in (pair.a, pair.b):
        [refusal] = _events(index, "REFUSAL")
        assert refusal["method"] == ANSWER and "another person" in refusal["reason"]
    assert _events(pair.a, "ACCESS_REQUEST_ANSWERED") == []
    assert [e["request_number"] for e in _events(pair.b, "ACCESS_REQUEST_ANSWERED")] == ["PA-26-401"]
    assert [e["request_number"] for e in _events(pair.a, "PEER_PRIVACY_REQUEST_RESPONDED")] == ["PA-26-401"]
    _nothing_in_clear(pair, caplog)


def test_a_request_answered_on_another_instance_is_answered_again_for_its_person_anywhere(
    pair: peers._Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(privacy_pages, "DISCLOSURES_PER_PAGE", 1)  # Harold's accounting in several pages
    on_a, on_b = peers._officer(pair.a), peers._officer(pair.b)
    peers._open(on_a[1], on_a[0], "PA-26-402")  # registered on A
    first = _answer(on_b, _request("PA-26-402", HAROLD, SSN))  # answered on B
    assert _records(first) == ["NCIS-1"] and first.next_page_token
    later = _answer(on_b, _request("PA-26-402", HAROLD, SSN, first.next_page_token))
    assert len(later.disclosures) == 1 and not later.tracings
    assert _records(_answer(on_b, _request("PA-26-402", HAROLD, SSN))) == ["NCIS-1"]  # on B again

    # On A, the holder, for the same person (another spelling, the same SSN): his first page, and a later one.
    harald = {"surname": "Whitfeld", "given_name": "Harald"}
    again = _answer(on_a, _request("PA-26-402", harald, SSN))
    assert _records(again) == ["NCIS-1"] and again.next_page_token
    later_on_a = _answer(on_a, _request("PA-26-402", harald, SSN, again.next_page_token))
    assert len(later_on_a.disclosures) == 1 and not later_on_a.tracings
    assert _events(pair.a, "REFUSAL") == [] and _events(pair.b, "REFUSAL") == []
    assert _to_office(pair.a, SSN) == ["NCIS-1"] and _to_office(pair.b, SSN) == ["NCIS-1", "NCIS-1"]  # first pages
    assert _bindings(pair.a, "PA-26-402") == [_person_ref(pair.a, SSN)] and _bindings(pair.b, "PA-26-402") == []


def _at_once(calls: dict[str, Callable[[], object]]) -> dict[str, tuple[grpc.StatusCode, str]]:
    """Each call on its own thread, released together; how each ended (its code and details)."""
    outcomes: dict[str, tuple[grpc.StatusCode, str]] = {}
    start = threading.Barrier(len(calls))

    def run(where: str) -> None:
        start.wait()
        try:
            calls[where]()
        except grpc.RpcError as error:
            outcomes[where] = (error.code(), error.details() or "")
        else:
            outcomes[where] = (grpc.StatusCode.OK, "")

    threads = [threading.Thread(target=run, args=(where,)) for where in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(outcomes) == len(calls)
    return outcomes


def test_two_answers_at_once_for_two_persons_end_with_one_binding_and_one_refusal(pair: peers._Pair) -> None:
    """Each round: a request registered on A, answered at the same moment on A for one person and on B for the
    other (before: each instance bound it to its own, both answered and accounted)."""
    on_a, on_b = peers._officer(pair.a), peers._officer(pair.b)
    rounds = [((HAROLD, SSN), (NGOZI, NGOZI_SSN)), ((NGOZI, NGOZI_SSN), (HAROLD, SSN))] * 2
    served = {SSN: 0, NGOZI_SSN: 0}
    for i, (for_a, for_b) in enumerate(rounds):
        number = f"PA-26-41{i}"
        peers._open(on_a[1], on_a[0], number)
        asked = {"A": (on_a, *for_a), "B": (on_b, *for_b)}
        outcomes = _at_once(
            {
                where: partial(_answer, office, _request(number, name, ssn))
                for where, (office, name, ssn) in asked.items()
            }
        )
        served_on = [where for where, (code, _) in outcomes.items() if code == grpc.StatusCode.OK]
        assert len(served_on) == 1, outcomes  # before: both answered, each bound on its own instance
        [winner] = served_on
        [(code, details)] = [outcome for where, outcome in outcomes.items() if where != winner]
        assert code == grpc.StatusCode.FAILED_PRECONDITION and f"{number} was answered for another person" in details
        winner_ssn = asked[winner][2]
        served[winner_ssn] += 1
        # One binding, on the holder, to the person served; one answer and one refusal in the two trails.
        assert _bindings(pair.a, number) == [_person_ref(pair.a, winner_ssn)] and _bindings(pair.b, number) == []
        answered = [e for index in (pair.a, pair.b) for e in _events(index, "ACCESS_REQUEST_ANSWERED")]
        assert [e["request_number"] for e in answered].count(number) == 1
        refusals = [e for index in (pair.a, pair.b) for e in _events(index, "REFUSAL")]
        assert [e["reason"] for e in refusals].count(details) == 1
    # The person refused in a round had nothing read out nor accounted: each person's records went to the office
    # once per round they won, on one instance or the other.
    for ssn, times in served.items():
        assert len(_to_office(pair.a, ssn)) + len(_to_office(pair.b, ssn)) == times


def test_an_earlier_versions_binding_on_the_instance_that_answered_stands_and_moves_to_the_holder(
    pair: peers._Pair,
) -> None:
    """The earlier version bound an answer to a request registered elsewhere on the instance that gave it. That
    instance answers it again for its person (and then the holder keeps the binding, for every instance); the
    holder, until then, cannot tell for whom."""
    on_a, on_b = peers._officer(pair.a), peers._officer(pair.b)
    peers._open(on_a[1], on_a[0], "PA-26-421")  # registered on A, answered on B by the earlier version:
    register = PrivacyRequests(pair.a.data_dir / "privacy.db")
    try:
        request = register.respond("PA-26-421")
    finally:
        register.close()
    assert request is not None
    theirs = PrivacyRequests(pair.b.data_dir / "privacy.db")
    try:
        theirs.bind(request, _person_ref(pair.b, SSN))  # as that version bound it: on B, by B's key
    finally:
        theirs.close()

    assert "cannot tell for whom" in _refused(on_a, _request("PA-26-421", HAROLD, SSN))
    assert "answered for another person" in _refused(on_b, _request("PA-26-421", NGOZI, NGOZI_SSN))
    assert _records(_answer(on_b, _request("PA-26-421", HAROLD, SSN))) == ["NCIS-1"]  # B's, as before
    assert _bindings(pair.a, "PA-26-421") == [_person_ref(pair.a, SSN)]  # moved to the holder
    assert _records(_answer(on_a, _request("PA-26-421", HAROLD, SSN))) == ["NCIS-1"]
    assert "answered for another person" in _refused(on_a, _request("PA-26-421", NGOZI, NGOZI_SSN))
    assert _to_office(pair.a, NGOZI_SSN) == [] and _to_office(pair.b, NGOZI_SSN) == []


def test_the_holder_checks_the_person_it_is_told_and_records_no_answer_for_another(pair: peers._Pair) -> None:
    on_a = peers._officer(pair.a)
    peers._open(on_a[1], on_a[0], "PA-26-431")
    check = peer_pb2.CheckRequestPersonRequest(request_number="PA-26-431", ssn=SSN, asked_by=peers.ASKER)
    terminal_cert, _, _ = pair.a.accredit("CCF-TERM-Y", "ARMY-CCF", [Role.QUERIER, Role.PRIVACY_OFFICER])
    with channel_for(pair.a.port, pair.a.ca.cert_pem, terminal_cert) as channel, pytest.raises(grpc.RpcError) as no:
        peer_pb2_grpc.PeerServiceStub(channel).CheckRequestPerson(check, timeout=10)
    assert no.value.code() == grpc.StatusCode.PERMISSION_DENIED  # the PEER role only

    with channel_for(pair.a.port, pair.a.ca.cert_pem, pair.peer_cert) as channel:
        stub = peer_pb2_grpc.PeerServiceStub(channel)
        assert stub.CheckRequestPerson(check, timeout=10).person == peer_pb2.REQUEST_PERSON_UNBOUND
        bind = peer_pb2.CheckRequestPersonRequest(request_number="PA-26-431", ssn=SSN, bind=True, asked_by=peers.ASKER)
        told = stub.CheckRequestPerson(bind, timeout=10)
        assert told.person == peer_pb2.REQUEST_PERSON_THIS_PERSON and told.instance_id == peers._id(pair.a)
        other = peer_pb2.CheckRequestPersonRequest(
            request_number="PA-26-431", ssn=NGOZI_SSN, bind=True, asked_by=peers.ASKER
        )
        assert stub.CheckRequestPerson(other, timeout=10).person == peer_pb2.REQUEST_PERSON_ANOTHER_PERSON
        respond = peer_pb2.RespondPrivacyRequestRequest(request_number="PA-26-431", ssn=NGOZI_SSN, asked_by=peers.ASKER)
        with pytest.raises(grpc.RpcError) as another:
            stub.RespondPrivacyRequest(respond, timeout=10)
        assert another.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        for bad in ("", "318-52-44", "000-12-3456"):  # the SSN is required, and checked, never echoed
            with pytest.raises(grpc.RpcError) as invalid:
                stub.RespondPrivacyRequest(
                    peer_pb2.RespondPrivacyRequestRequest(request_number="PA-26-431", ssn=bad, asked_by="x"),
                    timeout=10,
                )
            assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert {name for name, _ in field_violations(invalid.value)} == {"ssn", "asked_by"}
            assert not any(p in (invalid.value.details() or "") for p in ("3185244", "000123456", "000-12-3456"))
    register = PrivacyRequests(pair.a.data_dir / "privacy.db")
    try:
        held = register.request("PA-26-431")
    finally:
        register.close()
    assert held is not None and held.responded_at is None  # no answer recorded for another person
    assert _bindings(pair.a, "PA-26-431") == [_person_ref(pair.a, SSN)]
