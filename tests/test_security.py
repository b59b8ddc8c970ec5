"""Who may connect and what they may do, over real mutual TLS on loopback."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

import grpc
import pytest

from dcii.v1 import admin_pb2, search_pb2
from search_service import pki
from search_service.accreditation import Purpose, Role, Status
from tests import factories as f
from tests.support import Client, Index

NAME = {"surname": "Whitfield", "given_name": "Harold"}


def _code(call: Callable[[], object]) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as refused:
        call()
    code: grpc.StatusCode = refused.value.code()
    return code


def _search(client: Client) -> search_pb2.SearchResponse:
    return client.search(mode=search_pb2.SEARCH_MODE_NAME_ONLY, name=NAME)


def test_a_client_without_a_certificate_cannot_connect(index: Index) -> None:
    client = index.connect(None)
    assert _code(lambda: client.login("anyone", "whatever-password")) == grpc.StatusCode.UNAVAILABLE


def test_a_certificate_from_another_ca_cannot_connect(index: Index) -> None:
    other_ca = pki.make_ca("Some Other CA")
    stranger = pki.issue_client_cert(other_ca, "NCIS-RA-01", "NCIS")
    client = index.connect(stranger)
    assert _code(lambda: client.login("anyone", "whatever-password")) == grpc.StatusCode.UNAVAILABLE


def test_an_expired_certificate_cannot_connect(index: Index) -> None:
    yesterday = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    cert, account, password = index.accredit("OLD-TERM", "NCIS", [Role.QUERIER], not_after=yesterday)
    client = index.connect(cert)
    assert _code(lambda: client.login(account, password)) == grpc.StatusCode.UNAVAILABLE


def test_a_certificate_of_no_accredited_activity_is_denied(index: Index) -> None:
    unknown = pki.issue_client_cert(index.ca, "NOT-ACCREDITED", "NCIS")
    client = index.connect(unknown)
    assert _code(lambda: client.login("anyone", "whatever-password")) == grpc.StatusCode.PERMISSION_DENIED


def test_revocation_and_suspension_take_effect_without_restart(index: Index) -> None:
    client = index.client("CCF-TERM-01", "ARMY-CCF", [Role.QUERIER])
    assert _search(client).hits == []
    registry = index.registry
    registry.set_activity_status("CCF-TERM-01", Status.SUSPENDED)
    assert _code(lambda: _search(client)) == grpc.StatusCode.PERMISSION_DENIED
    registry.set_activity_status("CCF-TERM-01", Status.ACTIVE)
    assert _search(client).hits == []
    registry.set_activity_status("CCF-TERM-01", Status.REVOKED)
    assert _code(lambda: _search(client)) == grpc.StatusCode.PERMISSION_DENIED
    registry.close()


def test_a_querier_cannot_submit_and_a_submitter_cannot_query(index: Index) -> None:
    querier = index.client("CCF-TERM-01", "ARMY-CCF", [Role.QUERIER])
    submitter = index.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER])
    assert _code(lambda: querier.upsert(f.person(agency="ARMY-CCF"))) == grpc.StatusCode.PERMISSION_DENIED
    assert _code(lambda: _search(submitter)) == grpc.StatusCode.PERMISSION_DENIED
    assert (
        _code(lambda: querier.admin.ListActivities(admin_pb2.ListActivitiesRequest(), metadata=querier.metadata))
        == grpc.StatusCode.PERMISSION_DENIED
    )


def test_an_administrator_can_suspend_an_activity_over_the_wire(index: Index) -> None:
    admin = index.client("DSS-ADMIN", "DSS", [Role.ADMINISTRATOR])
    querier = index.client("CCF-TERM-01", "ARMY-CCF", [Role.QUERIER])
    listed = admin.admin.ListActivities(admin_pb2.ListActivitiesRequest(), metadata=admin.metadata)
    assert {a.activity_id for a in listed.activities} == {"DSS-ADMIN", "CCF-TERM-01"}
    admin.admin.SetActivityStatus(
        admin_pb2.SetActivityStatusRequest(activity_id="CCF-TERM-01", status=admin_pb2.ACTIVITY_STATUS_SUSPENDED),
        metadata=admin.metadata,
    )
    assert _code(lambda: _search(querier)) == grpc.StatusCode.PERMISSION_DENIED


def test_every_data_call_needs_a_session(index: Index) -> None:
    cert, _account, _password = index.accredit("CCF-TERM-01", "ARMY-CCF", [Role.QUERIER])
    client = index.connect(cert)
    assert _code(lambda: _search(client)) == grpc.StatusCode.UNAUTHENTICATED
    client.metadata = (("authorization", "Bearer not-a-token"),)
    assert _code(lambda: _search(client)) == grpc.StatusCode.UNAUTHENTICATED


def test_a_session_token_replayed_from_another_certificate_is_refused(index: Index) -> None:
    victim = index.client("CCF-TERM-01", "ARMY-CCF", [Role.QUERIER])
    thief = index.client("CCF-TERM-02", "ARMY-CCF", [Role.QUERIER])
    thief.metadata = victim.metadata
    assert _code(lambda: _search(thief)) == grpc.StatusCode.UNAUTHENTICATED
    assert _search(victim).hits == []


def test_a_token_is_dead_after_logout(index: Index) -> None:
    client = index.client("CCF-TERM-01", "ARMY-CCF", [Role.QUERIER])
    client.sessions.Logout(admin_pb2.LogoutRequest(), metadata=client.metadata)
    assert _code(lambda: _search(client)) == grpc.StatusCode.UNAUTHENTICATED


def test_an_operator_cannot_log_in_through_another_activitys_terminal(index: Index) -> None:
    _cert_a, account_a, password_a = index.accredit("CCF-TERM-01", "ARMY-CCF", [Role.QUERIER])
    cert_b, _account_b, _password_b = index.accredit("CCF-TERM-02", "ARMY-CCF", [Role.QUERIER])
    client = index.connect(cert_b)
    assert _code(lambda: client.login(account_a, password_a)) == grpc.StatusCode.UNAUTHENTICATED


def test_password_guessing_locks_the_account(index: Index) -> None:
    cert, account, password = index.accredit("CCF-TERM-01", "ARMY-CCF", [Role.QUERIER])
    client = index.connect(cert)
    for _ in range(5):
        assert _code(lambda: client.login(account, "wrong-password-guess")) == grpc.StatusCode.UNAUTHENTICATED
    # Locked now: even the right password is refused until the lockout ends.
    assert _code(lambda: client.login(account, password)) == grpc.StatusCode.UNAUTHENTICATED
    registry = index.registry
    registry.set_operator_status(account, Status.ACTIVE)  # an administrator unlocks it
    registry.close()
    assert client.login(account, password)


def test_a_purpose_the_activity_is_not_accredited_for_is_denied(index: Index) -> None:
    gate = index.client("GATE-01", "ARMY-CCF", [Role.QUERIER], purposes=[Purpose.INSTALLATION_ACCESS])
    assert (
        gate.search(
            mode=search_pb2.SEARCH_MODE_NAME_ONLY, name=NAME, purpose=search_pb2.PURPOSE_INSTALLATION_ACCESS
        ).hits
        == []
    )
    assert _code(lambda: _search(gate)) == grpc.StatusCode.PERMISSION_DENIED


def test_health_answers_any_certificate_of_our_ca_but_nothing_else_does(index: Index) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    unknown = index.connect(pki.issue_client_cert(index.ca, "LOAD-BALANCER", "DSS"))
    health = health_pb2_grpc.HealthStub(unknown.channel)
    assert health.Check(health_pb2.HealthCheckRequest()).status == health_pb2.HealthCheckResponse.SERVING
    assert _code(lambda: _search(unknown)) == grpc.StatusCode.PERMISSION_DENIED


def test_a_certificate_that_expires_while_its_connection_is_open_is_refused_on_the_next_call(index: Index) -> None:
    # The handshake checked the certificate when the connection opened; the connection outlives it.
    expiry = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=2)
    client = index.client("CCF-TERM-01", "ARMY-CCF", [Role.QUERIER], not_after=expiry)
    assert _search(client).hits == []
    time.sleep(max(0.0, (expiry - dt.datetime.now(dt.UTC)).total_seconds()) + 1.1)
    assert _code(lambda: _search(client)) == grpc.StatusCode.UNAUTHENTICATED


def test_suspension_takes_effect_at_once_on_a_caller_the_server_has_seen_many_times(index: Index) -> None:
    # The server remembers callers it found valid while the registry is unchanged: any write, here from
    # another process's connection as the CLI would make it, must end that at the very next call.
    client = index.client("CCF-TERM-01", "ARMY-CCF", [Role.QUERIER])
    for _ in range(5):
        assert _search(client).hits == []
    registry = index.registry
    try:
        for status, code in ((Status.SUSPENDED, grpc.StatusCode.PERMISSION_DENIED), (Status.ACTIVE, None)):
            registry.set_activity_status("CCF-TERM-01", status)
            for _ in range(3):
                if code is None:
                    assert _search(client).hits == []
                else:
                    assert _code(lambda: _search(client)) == code
    finally:
        registry.close()
