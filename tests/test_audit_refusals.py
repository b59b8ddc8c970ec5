"""The audit trail reconstructs a password-guessing attack, a lockout, and a refused operator's calls
(search_service.refusal_audit): a refused login names the account it tried (never its password), the lock
five failures set is one OPERATOR_LOCKED event, a logged-in operator refused a method is named as
"<activity>/<operator>", and an action refused on another agency's tracing names that tracing. Real server,
real TLS, real SQLite; the trail read with its own reader and with `dcii audit events`."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest

from dcii.v1 import admin_pb2, ingest_pb2, privacy_pb2, privacy_pb2_grpc
from indexer.exc import Unauthenticated, Unavailable
from search_service.accounting import AuditLog, load_or_create_key
from search_service.accreditation import Role, Status
from search_service.refusal_audit import LOCK_ACTOR, OPERATOR_LOCKED, TARGETS_LIMIT, TEXT_LIMIT, printable
from search_service.registry import Registry
from tests import factories as f
from tests.support import ROOT, Client, Index, make_index

LOGIN = "/dcii.v1.SessionService/Login"
WRONG = "not-the-password-7Q"  # a password guessed: never in the trail
Event = tuple[str, str, dict[str, str]]  # kind, actor, detail


@pytest.fixture
def index(tmp_path: Path) -> Iterator[Index]:
    made = make_index(tmp_path)
    made.start()
    yield made
    made.stop()


def _events(index: Index, kind: str | None = None) -> list[Event]:
    with AuditLog(index.data_dir / "audit.db", key=load_or_create_key(index.data_dir / "audit.key")) as audit:
        return [(e.kind, e.actor, dict(e.detail)) for e in audit.events(kind)]


def _refused(call: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as refused:
        call()
    return refused.value


def _login(client: Client, account: str, password: str) -> grpc.RpcError:
    request = admin_pb2.LoginRequest(account_code=account, password=password)
    return _refused(lambda: client.sessions.Login(request, timeout=30))


def test_a_refused_login_names_the_account_tried_and_never_the_password(index: Index) -> None:
    cert, account, _password = index.accredit("ADJ-TERM-01", "DSS", [Role.QUERIER])
    terminal = index.connect(cert)
    typed = "x\n2026-01-01 OPERATOR_ADDED forged\x1b[2J" + "y" * 200  # a line forged into the listing, and long
    for tried in (account, "no-such-account", typed):
        refused = _login(terminal, tried, WRONG)
        assert (refused.code(), refused.details()) == (grpc.StatusCode.UNAUTHENTICATED, "login failed")
    events = _events(index, "REFUSAL")
    # An account that exists, by its code (the account attacked); what names none, by a keyed hash: an
    # operator's password typed into the account field by mistake stayed in the trail in clear.
    with AuditLog(index.data_dir / "audit.db", key=load_or_create_key(index.data_dir / "audit.key")) as audit:
        unknown = [f"unknown {audit.typed_ref(text)}" for text in ("no-such-account", typed)]
    assert [e[2]["account"] for e in events] == [account, *unknown]
    assert len(set(unknown)) == 2 and all(len(name) == len("unknown ") + 16 for name in unknown)
    again = _login(terminal, "no-such-account", WRONG)  # tried again: named the same, so repeats are seen
    assert again.details() == "login failed"
    assert _events(index, "REFUSAL")[-1][2]["account"] == unknown[0]
    for _kind, actor, detail in events:  # the activity is known from the certificate; no operator yet
        assert actor == "ADJ-TERM-01/-"
        assert detail["method"] == LOGIN and detail["reason"] == "login failed"
        assert detail["certificate"] == cert.fingerprint
    trail = (index.data_dir / "audit.db").read_bytes()
    assert WRONG.encode() not in trail and b"no-such-account" not in trail and b"forged" not in trail
    listed = subprocess.run(
        [sys.executable, "-m", "dcii.cli.main", "audit", "events", "--data", str(index.data_dir), "--kind", "REFUSAL"],
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "400"},
        text=True,
        capture_output=True,
        check=True,
        timeout=120,
    ).stdout
    assert f"account={account}" in listed and f"account={unknown[0]}" in listed and "\x1b" not in listed


def test_five_failed_logins_lock_the_account_and_the_lock_is_one_event(index: Index) -> None:
    cert, account, password = index.accredit("ADJ-TERM-01", "DSS", [Role.QUERIER])
    terminal = index.connect(cert)
    before = dt.datetime.now(dt.UTC)
    for _ in range(5):
        assert _login(terminal, account, WRONG).details() == "login failed"
    after = dt.datetime.now(dt.UTC)
    # Locked: the right password, more guesses, all told the same, and none of them locks it again.
    for guess in (password, WRONG, WRONG):
        refused = _login(terminal, account, guess)
        assert (refused.code(), refused.details()) == (grpc.StatusCode.UNAUTHENTICATED, "login failed")
    locks = [e for e in _events(index) if e[0] == OPERATOR_LOCKED]
    assert len(locks) == 1
    [(_kind, actor, detail)] = locks
    assert actor == LOCK_ACTOR and sorted(detail) == ["account", "until"] and detail["account"] == account
    until = dt.datetime.fromisoformat(detail["until"])
    assert before + dt.timedelta(minutes=15) <= until <= after + dt.timedelta(minutes=15)
    registry = index.registry
    try:
        [operator] = registry.list_operators(account)
        assert operator.locked_until == until  # the event says what the registry holds
    finally:
        registry.close()
    kinds = [(kind, d.get("account")) for kind, _actor, d in _events(index)]
    # The lock is recorded as the fifth failure sets it, before that failure's refusal.
    assert kinds == [*[("REFUSAL", account)] * 4, (OPERATOR_LOCKED, account), *[("REFUSAL", account)] * 4]


def test_an_unknown_a_suspended_and_another_activitys_account_are_all_login_failed(index: Index) -> None:
    cert, account, password = index.accredit("ADJ-TERM-01", "DSS", [Role.QUERIER])
    _other_cert, other, other_password = index.accredit("CCF-TERM-01", "ARMY-CCF", [Role.QUERIER])
    terminal = index.connect(cert)
    registry = index.registry
    registry.set_operator_status(account, Status.SUSPENDED)
    registry.close()
    for tried, guess in ((account, password), ("nobody", password), (other, other_password)):
        refused = _login(terminal, tried, guess)
        assert (refused.code(), refused.details()) == (grpc.StatusCode.UNAUTHENTICATED, "login failed")
    named = [e[2]["account"] for e in _events(index, "REFUSAL")]
    assert named[0] == account and named[1].startswith("unknown ") and named[2] == other  # another's: it exists
    assert not [e for e in _events(index) if e[0] == OPERATOR_LOCKED]


def test_a_logged_in_operator_refused_a_method_is_named_by_activity_and_operator(index: Index) -> None:
    adjudicator = index.client("ADJ-TERM-01", "DSS", [Role.QUERIER])
    privacy = privacy_pb2_grpc.PrivacyServiceStub(adjudicator.channel)
    call = lambda: privacy.FileDispute(privacy_pb2.FileDisputeRequest(), metadata=adjudicator.metadata, timeout=10)  # noqa: E731
    assert _refused(call).code() == grpc.StatusCode.PERMISSION_DENIED
    cert, _account, _password = index.accredit("ADJ-TERM-02", "DSS", [Role.QUERIER])
    no_session = index.connect(cert)  # no operator known: its certificate is all there is to name
    privacy_again = privacy_pb2_grpc.PrivacyServiceStub(no_session.channel)
    assert _refused(lambda: privacy_again.FileDispute(privacy_pb2.FileDisputeRequest(), timeout=10)).code() in (
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
    )
    [(_kind, actor, detail), (_kind2, bare, detail2)] = _events(index, "REFUSAL")
    assert actor == "ADJ-TERM-01/adj-term-01-op"
    assert detail["method"] == "/dcii.v1.PrivacyService/FileDispute" and "PRIVACY_OFFICER" in detail["reason"]
    assert len(detail["certificate"]) == 64  # which of the activity's terminals
    assert bare == cert.fingerprint and "certificate" not in detail2


def test_a_delete_of_another_agencys_tracing_names_the_tracing(index: Index) -> None:
    army = index.client("ARMY-RA-01", "ARMY-CCF", [Role.SUBMITTER])
    army.upsert(f.person(agency="ARMY-CCF", record="ARMY-1"))
    ncis = index.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER])
    delete = f.delete("ARMY-CCF", "ARMY-1", 2).delete
    refused = _refused(lambda: ncis.ingest.Delete(delete, metadata=ncis.metadata, timeout=10))
    assert refused.code() == grpc.StatusCode.PERMISSION_DENIED and "ARMY-1" not in (refused.details() or "")
    [(_kind, actor, detail)] = _events(index, "REFUSAL")
    assert actor == "NCIS-RA-01/ncis-ra-01-op"
    assert detail["method"] == "/dcii.v1.IngestService/Delete" and detail["target"] == "ARMY-CCF/ARMY-1"


def test_a_streams_actions_on_another_agencys_tracings_name_them(index: Index) -> None:
    army = index.client("ARMY-RA-01", "ARMY-CCF", [Role.SUBMITTER])
    army.upsert(f.person(agency="ARMY-CCF", record="ARMY-1"))
    ncis = index.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER])
    probes = [f.delete("ARMY-CCF", "ARMY-1", 2), f.upsert(f.person(agency="ARMY-CCF", record="ARMY-2"))]
    many = [f.delete("ARMY-CCF", f"ARMY-X{n}", 2, request_id=f"x{n}") for n in range(TARGETS_LIMIT + 5)]
    answered = ncis.push([*probes, *many, f.upsert(f.person(record="NCIS-1"))])
    assert answered[-1].outcome == ingest_pb2.INGEST_OUTCOME_APPLIED
    events = _events(index, "REFUSAL")
    assert sum(int(d["count"]) for _k, _a, d in events) == 2 + TARGETS_LIMIT + 5
    assert {actor for _k, actor, _d in events} == {"NCIS-RA-01/ncis-ra-01-op"}
    named = [target for _k, _a, d in events for target in d["target"].split(",")]
    assert named[:3] == ["ARMY-CCF/ARMY-1", "ARMY-CCF/ARMY-2", "ARMY-CCF/ARMY-X0"]
    assert all(len(d["target"].split(",")) <= TARGETS_LIMIT for _k, _a, d in events)
    trail = str(events)
    assert "Whitfield" not in trail and "318-52-4471" not in trail and "1971" not in trail  # no subject's data


# ---- the registry's lock hook, on a registry with its own clock ----


def test_the_lock_hook_is_called_once_per_lock_and_a_trail_down_does_not_undo_the_lock(tmp_path: Path) -> None:
    now = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
    registry = Registry(tmp_path / "registry.db", clock=lambda: now)
    registry.add_activity("ADJ-TERM-01", "DSS", [Role.QUERIER], [])
    registry.add_certificate("ADJ-TERM-01", "ab" * 32)
    registry.add_operator("adj-op", "ADJ-TERM-01", "correct horse battery staple")
    locks: list[tuple[str, dt.datetime]] = []
    registry.on_locked = lambda account, until: locks.append((account, until))
    for _ in range(7):
        with pytest.raises(Unauthenticated, match=r"^login failed$"):
            registry.login("ab" * 32, "adj-op", WRONG)
    assert locks == [("adj-op", now + dt.timedelta(minutes=15))]

    now += dt.timedelta(minutes=16)  # the lock has passed: five more failures lock it again, recorded again

    def trail_down(account: str, until: dt.datetime) -> None:
        raise Unavailable("the audit trail cannot be written")

    registry.on_locked = trail_down
    for _ in range(4):
        with pytest.raises(Unauthenticated):
            registry.login("ab" * 32, "adj-op", WRONG)
    with pytest.raises(Unavailable):  # refused as any refusal whose event cannot be written
        registry.login("ab" * 32, "adj-op", WRONG)
    [operator] = registry.list_operators("adj-op")
    assert operator.locked_until == now + dt.timedelta(minutes=15)  # the lock stands
    with pytest.raises(Unauthenticated, match=r"^login failed$"):
        registry.login("ab" * 32, "adj-op", "correct horse battery staple")
    registry.close()


def test_printable_keeps_a_clients_words_to_one_short_line() -> None:
    assert printable("adj-0042") == "adj-0042"
    assert printable("a\nb\tc\x00d\u202ee") == "a?b?c?d?e"
    assert printable("z" * 500) == "z" * TEXT_LIMIT + "..."
    assert printable("z" * TEXT_LIMIT) == "z" * TEXT_LIMIT
