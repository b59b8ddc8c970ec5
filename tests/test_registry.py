"""Operator accounts (seed 001): unused for three years they are disabled; repeated failures lock them."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from indexer.exc import PermissionDenied, Unauthenticated
from search_service.accreditation import Role, Status
from search_service.registry import INACTIVITY_LIMIT, LOCKOUT, Registry

FINGERPRINT = "ab" * 32
ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Registry, Clock]:
    clock = Clock()
    registry = Registry(tmp_path / "registry.db", clock=clock)
    registry.add_activity("CCF-TERM-01", "ARMY-CCF", [Role.QUERIER], [])
    registry.add_certificate("CCF-TERM-01", FINGERPRINT)
    registry.add_operator("jdoe", "CCF-TERM-01", PASSWORD)
    return registry, clock


@pytest.mark.parametrize(
    ("idle", "allowed"),
    [(INACTIVITY_LIMIT - dt.timedelta(days=1), True), (INACTIVITY_LIMIT + dt.timedelta(days=1), False)],
)
def test_an_account_unused_for_three_years_is_disabled(
    setup: tuple[Registry, Clock], idle: dt.timedelta, allowed: bool
) -> None:
    registry, clock = setup
    registry.login(FINGERPRINT, "jdoe", PASSWORD)
    clock.now += idle
    if allowed:
        assert registry.login(FINGERPRINT, "jdoe", PASSWORD).token
        return
    with pytest.raises(PermissionDenied, match="three years"):
        registry.login(FINGERPRINT, "jdoe", PASSWORD)
    assert registry.list_operators()[0].status is Status.SUSPENDED
    with pytest.raises(PermissionDenied):  # and it stays disabled until an administrator reinstates it
        registry.login(FINGERPRINT, "jdoe", PASSWORD)


def test_never_used_accounts_age_from_their_creation(setup: tuple[Registry, Clock]) -> None:
    registry, clock = setup
    clock.now += INACTIVITY_LIMIT + dt.timedelta(days=1)
    with pytest.raises(PermissionDenied):
        registry.login(FINGERPRINT, "jdoe", PASSWORD)


def test_lockout_ends_after_its_time(setup: tuple[Registry, Clock]) -> None:
    registry, clock = setup
    for _ in range(5):
        with pytest.raises(Unauthenticated):
            registry.login(FINGERPRINT, "jdoe", "wrong password!")
    with pytest.raises(Unauthenticated, match="locked"):
        registry.login(FINGERPRINT, "jdoe", PASSWORD)
    clock.now += LOCKOUT + dt.timedelta(seconds=1)
    assert registry.login(FINGERPRINT, "jdoe", PASSWORD).token


def test_sessions_expire(setup: tuple[Registry, Clock]) -> None:
    registry, clock = setup
    session = registry.login(FINGERPRINT, "jdoe", PASSWORD)
    assert registry.caller(FINGERPRINT, session.token).operator == "jdoe"
    clock.now = session.expires_at + dt.timedelta(seconds=1)
    with pytest.raises(Unauthenticated, match="expired"):
        registry.caller(FINGERPRINT, session.token)


# ---- the callers the server remembers (Registry.caller) ----


def _statements(registry: Registry) -> list[str]:
    """The SQL this thread's connection runs from now on."""
    seen: list[str] = []
    registry._conn().set_trace_callback(seen.append)
    return seen


def test_a_known_caller_costs_one_cheap_read(setup: tuple[Registry, Clock]) -> None:
    registry, _clock = setup
    token = registry.login(FINGERPRINT, "jdoe", PASSWORD).token
    first = registry.caller(FINGERPRINT, token)
    seen = _statements(registry)
    assert registry.caller(FINGERPRINT, token) == first
    assert seen == ["PRAGMA data_version"]


def test_every_write_ends_what_was_remembered_at_the_next_call(setup: tuple[Registry, Clock], tmp_path: Path) -> None:
    registry, clock = setup
    token = registry.login(FINGERPRINT, "jdoe", PASSWORD).token
    other = Registry(tmp_path / "registry.db", clock=clock)  # another connection: the CLI's, or a test's
    try:
        # A write through the same object, in the same thread (SQLite's data_version does not see it).
        registry.caller(FINGERPRINT, token)
        registry.set_activity_status("CCF-TERM-01", Status.SUSPENDED)
        with pytest.raises(PermissionDenied):
            registry.caller(FINGERPRINT, token)
        registry.set_activity_status("CCF-TERM-01", Status.ACTIVE)
        assert registry.caller(FINGERPRINT, token).operator == "jdoe"
        # A write through another connection.
        other.set_operator_status("jdoe", Status.SUSPENDED)
        with pytest.raises(Unauthenticated, match="ended"):
            registry.caller(FINGERPRINT, token)
        other.set_operator_status("jdoe", Status.ACTIVE)
        token = registry.login(FINGERPRINT, "jdoe", PASSWORD).token
        assert registry.caller(FINGERPRINT, None).operator is None
        assert registry.caller(FINGERPRINT, token).operator == "jdoe"
        other.revoke_certificate(FINGERPRINT)
        with pytest.raises(PermissionDenied):
            registry.caller(FINGERPRINT, None)
    finally:
        other.close()


def test_a_write_from_another_thread_or_process_ends_what_was_remembered(
    setup: tuple[Registry, Clock], tmp_path: Path
) -> None:
    registry, _clock = setup
    token = registry.login(FINGERPRINT, "jdoe", PASSWORD).token
    registry.caller(FINGERPRINT, token)
    writer = threading.Thread(target=registry.logout, args=(registry.caller(FINGERPRINT, token).session_token_hash,))
    writer.start()
    writer.join()
    with pytest.raises(Unauthenticated, match="ended"):
        registry.caller(FINGERPRINT, token)
    token = registry.login(FINGERPRINT, "jdoe", PASSWORD).token
    registry.caller(FINGERPRINT, token)
    suspend = (
        "import sys; from pathlib import Path; from search_service.accreditation import Status;"
        "from search_service.registry import Registry;"
        "Registry(Path(sys.argv[1])).set_activity_status('CCF-TERM-01', Status.SUSPENDED)"
    )
    subprocess.run([sys.executable, "-c", suspend, str(tmp_path / "registry.db")], check=True, cwd=ROOT)
    with pytest.raises(PermissionDenied, match="suspended"):
        registry.caller(FINGERPRINT, token)


def test_a_remembered_session_still_expires(setup: tuple[Registry, Clock]) -> None:
    registry, clock = setup
    session = registry.login(FINGERPRINT, "jdoe", PASSWORD)
    for _ in range(3):
        assert registry.caller(FINGERPRINT, session.token).operator == "jdoe"
    clock.now = session.expires_at
    with pytest.raises(Unauthenticated, match="expired"):
        registry.caller(FINGERPRINT, session.token)
