"""The sweep of dormant operator accounts (seed 001: accounts unused for three years are removed): in the
registry, in the running server (at start and on its timer) with OPERATOR_DISABLED in the audit trail, and
in `dcii accredit operator list`."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from dcii.v1 import search_pb2
from indexer.exc import Unauthenticated, Unavailable
from search_service.account_policy import INACTIVITY_LIMIT, SESSION_TTL
from search_service.account_sweep import AccountSweep
from search_service.accounting import AuditLog, load_or_create_key
from search_service.accreditation import Role, Status
from search_service.registry import Registry
from search_service.registry_rows import hash_token
from tests import test_registry
from tests.support import ROOT, Client, make_index
from tests.test_registry import FINGERPRINT, PASSWORD, T0, Clock

DAY = dt.timedelta(days=1)

# The registry on an injected clock, with one activity and its operator "jdoe" (tests/test_registry.py),
# bound here by name so pytest finds the fixture (an import would read as an unused one to ruff, F811).
setup = test_registry.setup


def _statuses(registry: Registry) -> dict[str, Status]:
    return {o.account_code: o.status for o in registry.list_operators()}


def _last_used(db: Path, account: str, when: dt.datetime) -> None:
    """Set an account's last login straight in the registry file, as years of disuse would leave it: made
    (and made active) no later than that login either."""
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        changed = conn.execute(
            "UPDATE operator SET last_login_at = ?1, created_at = MIN(created_at, ?1),"
            " active_since = MIN(active_since, ?1) WHERE account_code = ?2",
            (when.isoformat(), account),
        )
        assert changed.rowcount == 1


def _wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


# ---- Registry.disable_dormant_operators ----


@pytest.mark.parametrize(
    ("idle", "disabled"), [(INACTIVITY_LIMIT + DAY, True), (INACTIVITY_LIMIT - DAY, False)], ids=["3y+1d", "3y-1d"]
)
def test_the_sweep_disables_an_account_unused_for_three_years_without_a_login_attempt(
    setup: tuple[Registry, Clock], idle: dt.timedelta, disabled: bool
) -> None:
    registry, clock = setup
    clock.now += dt.timedelta(days=365)  # created a year before its last login: the last login counts
    registry.login(FINGERPRINT, "jdoe", PASSWORD)
    clock.now += idle
    assert registry.disable_dormant_operators() == (["jdoe"] if disabled else [])
    assert _statuses(registry)["jdoe"] is (Status.SUSPENDED if disabled else Status.ACTIVE)
    assert registry.disable_dormant_operators() == []  # a disabled account is not disabled again
    if disabled:
        with pytest.raises(Unauthenticated, match=r"^login failed$"):  # a disabled account tells nothing
            registry.login(FINGERPRINT, "jdoe", PASSWORD)
    else:
        assert registry.login(FINGERPRINT, "jdoe", PASSWORD).token


def test_a_never_used_account_counts_from_its_creation(setup: tuple[Registry, Clock]) -> None:
    registry, clock = setup  # jdoe made at T0, never logged in
    clock.now = T0 + 2 * DAY
    registry.add_operator("asmith", "CCF-TERM-01", PASSWORD)  # made two days later, never logged in either
    clock.now = T0 + INACTIVITY_LIMIT + DAY
    assert registry.disable_dormant_operators() == ["jdoe"]
    assert _statuses(registry) == {"asmith": Status.ACTIVE, "jdoe": Status.SUSPENDED}


def test_a_reinstated_dormant_account_can_log_in_at_once_and_the_sweep_leaves_it(
    setup: tuple[Registry, Clock],
) -> None:
    registry, clock = setup
    registry.login(FINGERPRINT, "jdoe", PASSWORD)
    clock.now += INACTIVITY_LIMIT + DAY
    assert registry.disable_dormant_operators() == ["jdoe"]
    clock.now += 30 * DAY  # the person asks to be let back in a month later
    registry.set_operator_status("jdoe", Status.ACTIVE)  # `dcii accredit operator reinstate jdoe`
    assert registry.disable_dormant_operators() == []  # the same day: the reinstatement counts as a use
    assert _statuses(registry)["jdoe"] is Status.ACTIVE
    assert registry.login(FINGERPRINT, "jdoe", PASSWORD).token
    clock.now += DAY
    assert registry.disable_dormant_operators() == []


def test_a_reinstated_account_left_unused_is_swept_three_years_after_its_reinstatement(
    setup: tuple[Registry, Clock],
) -> None:
    registry, clock = setup  # jdoe made at T0, never logged in
    clock.now = T0 + INACTIVITY_LIMIT + DAY
    assert registry.disable_dormant_operators() == ["jdoe"]
    reinstated = clock.now = T0 + INACTIVITY_LIMIT + 10 * DAY
    registry.set_operator_status("jdoe", Status.ACTIVE)
    clock.now = reinstated + INACTIVITY_LIMIT - DAY
    assert registry.disable_dormant_operators() == []
    clock.now = reinstated + INACTIVITY_LIMIT + DAY
    assert registry.disable_dormant_operators() == ["jdoe"]
    with pytest.raises(Unauthenticated, match=r"^login failed$"):
        registry.login(FINGERPRINT, "jdoe", PASSWORD)


def test_making_an_active_account_active_again_does_not_restart_its_three_years(
    setup: tuple[Registry, Clock],
) -> None:
    registry, clock = setup  # jdoe made at T0, never logged in
    clock.now = T0 + INACTIVITY_LIMIT - DAY
    registry.set_operator_status("jdoe", Status.ACTIVE)  # as to clear a lockout: it was never disabled
    clock.now = T0 + INACTIVITY_LIMIT + DAY
    assert registry.disable_dormant_operators() == ["jdoe"]


def test_a_live_session_of_a_swept_account_is_refused_even_where_remembered(
    setup: tuple[Registry, Clock], tmp_path: Path
) -> None:
    registry, _clock = setup
    token = registry.login(FINGERPRINT, "jdoe", PASSWORD).token
    # Years of disuse, written as the CLI or another process would: the session itself is still live.
    _last_used(tmp_path / "registry.db", "jdoe", T0 - INACTIVITY_LIMIT - DAY)
    with ThreadPoolExecutor(max_workers=1) as other_thread:
        # Remembered by this thread and by another (Registry.caller's per-thread cache).
        assert registry.caller(FINGERPRINT, token).operator == "jdoe"
        assert other_thread.submit(registry.caller, FINGERPRINT, token).result().operator == "jdoe"
        assert registry.disable_dormant_operators() == ["jdoe"]  # through the same object, this thread
        with pytest.raises(Unauthenticated, match="ended"):
            registry.caller(FINGERPRINT, token)
        with pytest.raises(Unauthenticated, match="ended"):
            other_thread.submit(registry.caller, FINGERPRINT, token).result()


def test_nothing_is_disabled_when_the_disabling_cannot_be_recorded(setup: tuple[Registry, Clock]) -> None:
    registry, clock = setup
    clock.now += INACTIVITY_LIMIT + DAY

    def unavailable(accounts: list[str]) -> None:
        raise Unavailable("the audit trail cannot be written")

    with pytest.raises(Unavailable):
        registry.disable_dormant_operators(record=unavailable)
    assert _statuses(registry)["jdoe"] is Status.ACTIVE  # the next sweep tries again
    seen: list[list[str]] = []
    assert registry.disable_dormant_operators(record=seen.append) == ["jdoe"]
    assert seen == [["jdoe"]]


# ---- AccountSweep: at start, then on its timer ----


def test_the_sweep_deletes_ended_and_expired_sessions(setup: tuple[Registry, Clock], tmp_path: Path) -> None:
    """Every login left a row that nothing deleted: 570 MB of registry a day at 20 logins a second."""
    registry, clock = setup
    ended = registry.login(FINGERPRINT, "jdoe", PASSWORD)
    registry.logout(hash_token(ended.token))
    registry.login(FINGERPRINT, "jdoe", PASSWORD)  # to expire
    clock.now += SESSION_TTL + dt.timedelta(seconds=1)
    live = registry.login(FINGERPRINT, "jdoe", PASSWORD)
    with AuditLog(tmp_path / "audit.db", key=load_or_create_key(tmp_path / "audit.key")) as audit:
        sweep = AccountSweep(registry, audit, interval=3600)
        sweep.start()
        sweep.stop()
    conn = sqlite3.connect(tmp_path / "registry.db")
    try:
        assert conn.execute("SELECT token_hash FROM session").fetchall() == [(hash_token(live.token),)]
    finally:
        conn.close()
    assert registry.caller(FINGERPRINT, live.token).operator == "jdoe"


def test_the_sweep_runs_at_start_and_again_on_its_timer(setup: tuple[Registry, Clock], tmp_path: Path) -> None:
    registry, clock = setup
    registry.add_operator("asmith", "CCF-TERM-01", PASSWORD)
    clock.now += INACTIVITY_LIMIT - DAY
    registry.login(FINGERPRINT, "asmith", PASSWORD)  # used: only jdoe is dormant two days on
    clock.now += 2 * DAY
    with AuditLog(tmp_path / "audit.db", key=load_or_create_key(tmp_path / "audit.key")) as audit:
        sweep = AccountSweep(registry, audit, interval=0.05)
        sweep.start()
        try:
            # The first sweep is made by start() itself, before it returns.
            assert [e.detail["account"] for e in audit.events("OPERATOR_DISABLED")] == ["jdoe"]
            clock.now += INACTIVITY_LIMIT  # asmith's turn, found by a later tick
            _wait_for(lambda: len(audit.events("OPERATOR_DISABLED")) == 2)
        finally:
            sweep.stop()
        events = audit.events("OPERATOR_DISABLED")
    assert [(e.actor, dict(e.detail)) for e in events] == [
        ("registry", {"account": "jdoe", "reason": "unused for three years"}),
        ("registry", {"account": "asmith", "reason": "unused for three years"}),
    ]
    assert _statuses(registry) == {"asmith": Status.SUSPENDED, "jdoe": Status.SUSPENDED}


def test_an_account_found_dormant_at_its_login_between_two_sweeps_is_recorded_too(
    setup: tuple[Registry, Clock], tmp_path: Path
) -> None:
    registry, clock = setup
    with AuditLog(tmp_path / "audit.db", key=load_or_create_key(tmp_path / "audit.key")) as audit:
        sweep = AccountSweep(registry, audit, interval=3600.0)  # no tick during the test
        sweep.start()
        try:
            assert audit.events("OPERATOR_DISABLED") == []
            clock.now += INACTIVITY_LIMIT + DAY
            with pytest.raises(Unauthenticated, match=r"^login failed$"):
                registry.login(FINGERPRINT, "jdoe", PASSWORD)
            events = audit.events("OPERATOR_DISABLED")
            assert [(e.actor, dict(e.detail)) for e in events] == [
                ("registry", {"account": "jdoe", "reason": "unused for three years"})
            ]
        finally:
            sweep.stop()
    assert _statuses(registry) == {"jdoe": Status.SUSPENDED}
    assert registry.on_disabled is None  # stopped with the sweep: the trail it wrote to is closed


# ---- in the server ----


def _search(client: Client) -> search_pb2.SearchResponse:
    return client.search(mode=search_pb2.SEARCH_MODE_NAME_ONLY, name={"surname": "Whitfield", "given_name": "Harold"})


def test_the_server_disables_dormant_accounts_as_it_starts_and_records_it(tmp_path: Path) -> None:
    index = make_index(tmp_path)
    _cert, dormant, _password = index.accredit("CCF-TERM-01", "ARMY-CCF", [Role.QUERIER])
    _cert, used, _password = index.accredit("CCF-TERM-02", "ARMY-CCF", [Role.QUERIER])
    now = dt.datetime.now(dt.UTC)  # the server's registry runs on the real clock
    _last_used(index.data_dir / "registry.db", dormant, now - INACTIVITY_LIMIT - DAY)
    _last_used(index.data_dir / "registry.db", used, now - INACTIVITY_LIMIT + DAY)
    index.start()
    try:
        assert index.running is not None
        events = index.running.audit.events("OPERATOR_DISABLED")
        assert [(e.actor, dict(e.detail)) for e in events] == [
            ("registry", {"account": dormant, "reason": "unused for three years"})
        ]
        assert _statuses(index.running.registry) == {dormant: Status.SUSPENDED, used: Status.ACTIVE}
    finally:
        index.stop()


def test_the_servers_daily_sweep_ends_a_live_session(tmp_path: Path) -> None:
    index = make_index(tmp_path)
    index.start(account_sweep_interval=0.1)
    try:
        client = index.client("CCF-TERM-01", "ARMY-CCF", [Role.QUERIER])
        assert _search(client).hits == []
        account = "ccf-term-01-op"
        _last_used(index.data_dir / "registry.db", account, dt.datetime.now(dt.UTC) - INACTIVITY_LIMIT - DAY)

        def refused() -> bool:
            try:
                _search(client)
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.UNAUTHENTICATED
                return True
            return False

        _wait_for(refused)
        assert index.running is not None
        assert [e.detail["account"] for e in index.running.audit.events("OPERATOR_DISABLED")] == [account]
    finally:
        index.stop()
    assert not [t for t in threading.enumerate() if t.name == "account-sweep"]  # stopped with the server


# ---- dcii accredit operator list ----


def _operator_list(data: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "dcii.cli.main", "accredit", "--data", str(data), "operator", "list"],
        cwd=ROOT,
        env=env,
        text=True,
        capture_output=True,
        check=True,
        timeout=120,
    )


def _row(output: str, account: str) -> list[str]:
    lines = [line for line in output.splitlines() if f" {account} " in line]
    assert len(lines) == 1, output
    return lines[0].replace("│", " ").split()


def test_operator_list_sweeps_first_and_shows_the_dormant_account_suspended(tmp_path: Path) -> None:
    data = tmp_path / "data"
    registry = Registry(data / "registry.db")
    registry.add_activity("CCF-TERM-01", "ARMY-CCF", [Role.QUERIER], [])
    registry.add_operator("dormant-op", "CCF-TERM-01", PASSWORD)
    registry.add_operator("fresh-op", "CCF-TERM-01", PASSWORD)
    registry.close()
    _last_used(data / "registry.db", "dormant-op", dt.datetime.now(dt.UTC) - INACTIVITY_LIMIT - DAY)

    listed = _operator_list(data)
    assert "dormant-op disabled: unused for three years" in listed.stdout
    assert "fresh-op disabled" not in listed.stdout
    assert _row(listed.stdout, "dormant-op")[2] == "SUSPENDED"
    assert _row(listed.stdout, "fresh-op")[2] == "ACTIVE"
    with AuditLog(data / "audit.db", key=load_or_create_key(data / "audit.key")) as audit:
        assert [dict(e.detail) for e in audit.events("OPERATOR_DISABLED")] == [
            {"account": "dormant-op", "reason": "unused for three years"}
        ]
    again = _operator_list(data)
    assert "disabled" not in again.stdout
    assert _row(again.stdout, "dormant-op")[2] == "SUSPENDED"


def test_operator_list_with_nothing_dormant_makes_no_audit_trail(tmp_path: Path) -> None:
    data = tmp_path / "data"
    registry = Registry(data / "registry.db")
    registry.add_activity("CCF-TERM-01", "ARMY-CCF", [Role.QUERIER], [])
    registry.add_operator("fresh-op", "CCF-TERM-01", PASSWORD)
    registry.close()
    assert _row(_operator_list(data).stdout, "fresh-op")[2] == "ACTIVE"
    assert not (data / "audit.db").exists()
    assert not (data / "audit.key").exists()
