"""Operator accounts (seed 001): unused for three years they are disabled; repeated failures lock them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from indexer.exc import PermissionDenied, Unauthenticated
from search_service.registry import INACTIVITY_LIMIT, LOCKOUT, Registry, Role, Status

FINGERPRINT = "ab" * 32
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
