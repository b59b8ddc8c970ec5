"""Operator accounts (seed 001): unused for three years they are disabled; repeated failures lock them."""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from indexer.exc import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from search_service.account_policy import INACTIVITY_LIMIT, LOCKOUT, dormant
from search_service.accreditation import Purpose, Role, Status
from search_service.passwords import hash_password
from search_service.registry import Registry

FINGERPRINT = "ab" * 32
ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"


T0 = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)  # where the registry's test clock starts


class Clock:
    def __init__(self) -> None:
        self.now = T0

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
    with pytest.raises(Unauthenticated, match=r"^login failed$"):
        registry.login(FINGERPRINT, "jdoe", PASSWORD)
    assert registry.list_operators()[0].status is Status.SUSPENDED
    with pytest.raises(Unauthenticated, match=r"^login failed$"):  # and stays disabled until reinstated
        registry.login(FINGERPRINT, "jdoe", PASSWORD)


def test_never_used_accounts_age_from_their_creation(setup: tuple[Registry, Clock]) -> None:
    registry, clock = setup
    clock.now += INACTIVITY_LIMIT + dt.timedelta(days=1)
    with pytest.raises(Unauthenticated, match=r"^login failed$"):
        registry.login(FINGERPRINT, "jdoe", PASSWORD)
    assert registry.list_operators()[0].status is Status.SUSPENDED


def test_a_dormant_account_says_login_failed_whether_the_password_is_right_or_not(
    setup: tuple[Registry, Clock],
) -> None:
    # A distinct answer to the right password confirmed it to a guesser (auth review 5): the account works
    # again once an administrator reinstates it. Disabled either way, as the sweep would.
    registry, clock = setup
    clock.now += INACTIVITY_LIMIT + dt.timedelta(days=1)
    with pytest.raises(Unauthenticated, match=r"^login failed$"):
        registry.login(FINGERPRINT, "jdoe", "not-the-password")
    assert registry.list_operators()[0].status is Status.SUSPENDED
    with pytest.raises(Unauthenticated, match=r"^login failed$"):
        registry.login(FINGERPRINT, "jdoe", PASSWORD)


def test_an_account_disabled_at_its_login_attempt_and_reinstated_logs_in_until_three_years_unused(
    setup: tuple[Registry, Clock],
) -> None:
    registry, clock = setup
    registry.login(FINGERPRINT, "jdoe", PASSWORD)
    clock.now += INACTIVITY_LIMIT + dt.timedelta(days=1)
    with pytest.raises(Unauthenticated, match=r"^login failed$"):
        registry.login(FINGERPRINT, "jdoe", PASSWORD)
    clock.now += dt.timedelta(days=30)
    registry.set_operator_status("jdoe", Status.ACTIVE)  # `dcii accredit operator reinstate jdoe`
    assert registry.login(FINGERPRINT, "jdoe", PASSWORD).token  # at once, not disabled again
    clock.now += INACTIVITY_LIMIT - dt.timedelta(days=1)
    assert registry.login(FINGERPRINT, "jdoe", PASSWORD).token
    clock.now += INACTIVITY_LIMIT + dt.timedelta(days=1)  # then unused again for three years
    with pytest.raises(Unauthenticated, match=r"^login failed$"):
        registry.login(FINGERPRINT, "jdoe", PASSWORD)


# The operator table as registry files made before operator.active_since have it (on deployed servers).
_OLD_SCHEMA = """
CREATE TABLE activity (
    activity_id TEXT PRIMARY KEY, agency TEXT NOT NULL, roles TEXT NOT NULL, purposes TEXT NOT NULL,
    status TEXT NOT NULL, created_at TEXT NOT NULL
);
CREATE TABLE operator (
    account_code TEXT PRIMARY KEY, activity_id TEXT NOT NULL REFERENCES activity, password_hash TEXT NOT NULL,
    status TEXT NOT NULL, created_at TEXT NOT NULL, last_login_at TEXT, failed_logins INTEGER NOT NULL DEFAULT 0,
    locked_until TEXT
);
"""


def _columns(db: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return [row[1] for row in conn.execute("PRAGMA table_info(operator)")]


def test_a_registry_file_without_active_since_gains_it_and_keeps_its_accounts_dormancy(tmp_path: Path) -> None:
    db, now = tmp_path / "registry.db", Clock().now
    year, day = dt.timedelta(days=365), dt.timedelta(days=1)
    accounts = {  # account: (created, last login), as the old code left them
        "used-op": (now - 4 * year, now - year),
        "idle-op": (now - 5 * year, now - INACTIVITY_LIMIT - day),
        "never-op": (now - INACTIVITY_LIMIT - day, None),
        "new-op": (now - year, None),
    }
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        conn.executescript(_OLD_SCHEMA)
        conn.execute(
            "INSERT INTO activity VALUES ('CCF-TERM-01', 'ARMY-CCF', 'QUERIER', '', 'ACTIVE', ?)", (now.isoformat(),)
        )
        for account, (created, last) in accounts.items():
            conn.execute(
                "INSERT INTO operator (account_code, activity_id, password_hash, status, created_at, last_login_at)"
                " VALUES (?, 'CCF-TERM-01', ?, 'ACTIVE', ?, ?)",
                (account, hash_password(PASSWORD), created.isoformat(), last and last.isoformat()),
            )
    assert "active_since" not in _columns(db)

    registry = Registry(db, clock=Clock())
    try:
        assert _columns(db)[-1] == "active_since"
        registry.add_certificate("CCF-TERM-01", FINGERPRINT)
        # Not reinstated since: dormant from the last login, or creation if never used, as before.
        assert registry.disable_dormant_operators() == ["idle-op", "never-op"]
        assert registry.login(FINGERPRINT, "used-op", PASSWORD).token
        assert registry.login(FINGERPRINT, "new-op", PASSWORD).token
        registry.set_operator_status("idle-op", Status.ACTIVE)  # and reinstating works on the upgraded file
        assert registry.login(FINGERPRINT, "idle-op", PASSWORD).token
    finally:
        registry.close()
    again = Registry(db, clock=Clock())  # opening the upgraded file again changes nothing
    again.close()
    assert _columns(db).count("active_since") == 1


def test_lockout_ends_after_its_time(setup: tuple[Registry, Clock]) -> None:
    registry, clock = setup
    for _ in range(5):
        with pytest.raises(Unauthenticated):
            registry.login(FINGERPRINT, "jdoe", "wrong password!")
    assert registry.list_operators()[0].locked_until is not None
    with pytest.raises(Unauthenticated, match=r"^login failed$"):  # the right password, locked: no hint either way
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
        with pytest.raises(Unauthenticated, match="ended"):  # reinstated, its operators log in again
            registry.caller(FINGERPRINT, token)
        token = registry.login(FINGERPRINT, "jdoe", PASSWORD).token
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


def test_guesses_sent_together_are_checked_no_more_than_the_lockout_allows(setup: tuple[Registry, Clock]) -> None:
    # The count was read before the (slow) password check and written after it: 40 guesses at once were all
    # checked and the account never locked. Each attempt is now counted before its check.
    registry, _clock = setup
    checked: list[str] = []
    lock = threading.Lock()

    def guess(n: int) -> None:
        try:
            registry.login(FINGERPRINT, "jdoe", f"wrong password {n}")
        except Unauthenticated:
            with lock:
                checked.append(str(n))

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(checked) == 20
    assert registry.list_operators()[0].locked_until is not None  # locked, however the guesses interleaved
    with pytest.raises(Unauthenticated):
        registry.login(FINGERPRINT, "jdoe", PASSWORD)


def test_logins_sent_together_with_the_right_password_all_succeed(setup: tuple[Registry, Clock]) -> None:
    # A terminal opening several connections at once: no attempt may count against the others.
    registry, _clock = setup
    tokens: list[str] = []

    def login() -> None:
        tokens.append(registry.login(FINGERPRINT, "jdoe", PASSWORD).token)

    threads = [threading.Thread(target=login) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(tokens)) == 16 and registry.list_operators()[0].locked_until is None


def test_another_activitys_terminal_cannot_lock_an_operator_out(setup: tuple[Registry, Clock]) -> None:
    registry, _clock = setup
    registry.add_activity("NCIS-FEED", "NCIS", [Role.SUBMITTER], [])
    registry.add_certificate("NCIS-FEED", "cd" * 32)
    for _ in range(6):  # naming jdoe's account from another activity's certificate, even with its password
        with pytest.raises(Unauthenticated, match=r"^login failed$"):
            registry.login("cd" * 32, "jdoe", PASSWORD)
    assert registry.list_operators()[0].locked_until is None
    assert registry.login(FINGERPRINT, "jdoe", PASSWORD).token


def test_a_suspended_account_answers_alike_whatever_the_password(setup: tuple[Registry, Clock]) -> None:
    registry, _clock = setup
    registry.set_operator_status("jdoe", Status.SUSPENDED)
    for password in (PASSWORD, "wrong password!"):
        with pytest.raises(Unauthenticated, match=r"^login failed$"):
            registry.login(FINGERPRINT, "jdoe", password)
    with pytest.raises(Unauthenticated, match=r"^login failed$"):
        registry.login(FINGERPRINT, "nobody", PASSWORD)


def test_a_certificate_is_never_moved_nor_brought_back_once_revoked(setup: tuple[Registry, Clock]) -> None:
    registry, _clock = setup
    registry.add_activity("ADMIN-X", "DSS", [Role.ADMINISTRATOR], [])
    with pytest.raises(FailedPrecondition, match="CCF-TERM-01"):
        registry.add_certificate("ADMIN-X", FINGERPRINT)  # another activity's: once moved without a word
    registry.add_certificate("CCF-TERM-01", FINGERPRINT.upper())  # its own again: nothing to do
    token = registry.login(FINGERPRINT, "jdoe", PASSWORD).token
    registry.set_activity_status("CCF-TERM-01", Status.REVOKED)
    with pytest.raises(FailedPrecondition, match="revoked"):
        registry.add_certificate("CCF-TERM-01", FINGERPRINT)  # the old, compromised key: once valid again
    registry.set_activity_status("CCF-TERM-01", Status.ACTIVE)
    with pytest.raises(PermissionDenied):
        registry.caller(FINGERPRINT, token)
    assert registry.activity("CCF-TERM-01").fingerprints == ()


def test_an_account_is_not_disabled_before_three_calendar_years_holding_a_leap_day() -> None:
    """3 x 365 days from 1 January 2024 end on 31 December 2026: a day short of three years (2024 had a
    29 February); the account was disabled then."""
    created = "2024-01-01T00:00:00+00:00"
    assert not dormant(dt.datetime(2026, 12, 31, 12, 0, tzinfo=dt.UTC), created, None, None)
    assert dormant(dt.datetime(2027, 1, 2, 0, 1, tzinfo=dt.UTC), created, None, None)


@pytest.mark.parametrize(
    ("last", "now", "is_dormant"),
    [
        # No 29 February in the three years: 1,095 days (1,096 kept it a day past three years: time review).
        ("2028-03-01T12:00:00+00:00", "2031-03-01T12:00:00+00:00", False),
        ("2028-03-01T12:00:00+00:00", "2031-03-01T12:00:01+00:00", True),
        # One in them: 1,096 days (3 x 365 disabled it a day early).
        ("2027-03-01T12:00:00+00:00", "2030-03-01T12:00:00+00:00", False),
        ("2027-03-01T12:00:00+00:00", "2030-03-01T12:00:01+00:00", True),
        # From 29 February: 1 March three years on.
        ("2028-02-29T12:00:00+00:00", "2031-02-28T23:59:59+00:00", False),
        ("2028-02-29T12:00:00+00:00", "2031-03-01T12:00:01+00:00", True),
    ],
)
def test_dormant_after_three_calendar_years_to_the_second(last: str, now: str, is_dormant: bool) -> None:
    assert dormant(dt.datetime.fromisoformat(now), "2020-01-01T00:00:00+00:00", last, None) is is_dormant


def test_the_peer_role_stands_alone_and_has_no_operators(tmp_path: Path) -> None:
    """PEER reads any person's accounting without a session or a purpose (search_service.peers): given with
    another role, a terminal's certificate could do that; an operator would log in to nothing it needs."""
    registry = Registry(tmp_path / "registry.db")
    try:
        with pytest.raises(InvalidArgument) as mixed:
            registry.add_activity("TERM-1", "DSS", [Role.PEER, Role.QUERIER], [Purpose.SECURITY_CLEARANCE])
        assert [v.field for v in mixed.value.violations] == ["roles"]
        with pytest.raises(NotFound):
            registry.activity("TERM-1")  # nothing was stored
        registry.add_activity("dcii-peer", "DSS", [Role.PEER], [])
        with pytest.raises(InvalidArgument) as operator:
            registry.add_operator("peer-op", "dcii-peer", "a long enough password")
        assert [v.field for v in operator.value.violations] == ["activity_id"]
    finally:
        registry.close()
