"""Accreditation: activities, their certificates, their operators, and operator sessions.

Identification and authentication happen twice (seed 002): at the network edge by the activity's
client certificate (mutual TLS; the registry knows certificates by SHA-256 fingerprint), and at the data
by the operator's account code and password, which buy a random, expiring session token bound to the
certificate it was issued to (seed 001: tokens cannot be replayed from another terminal).

The registry is a SQLite file shared by the server and the `dcii accredit` CLI. The server checks it on
every call, so a suspension or revocation takes effect at once, without a restart (what it found is
remembered only while the file is unchanged: see `Registry.caller`). The values it hands out (Activity,
Caller, Role, Purpose, Status, ...) are defined in search_service.accreditation; how rows are written, and
what a session's and a failed login's statements are, in search_service.registry_rows and
search_service.registry_sessions.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from indexer.exc import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied, Unauthenticated
from indexer.model import Violation
from search_service.account_policy import dormant
from search_service.accreditation import Activity, Caller, Operator, Purpose, Role, Session, Status
from search_service.passwords import DUMMY_HASH, hash_password, verify_password
from search_service.registry_rows import (
    CertificateRow,
    activity_of,
    already_accredited,
    certificates_of,
    check_account_code,
    check_new_activity,
    check_password,
    hash_token,
    iso,
    parse_time,
    revoke_one_certificate,
    set_access,
    set_password,
    suspend_accounts,
    suspend_dormant,
)
from search_service.registry_schema import SCHEMA, add_active_since
from search_service.registry_sessions import (
    count_failed_login,
    login_failed,
    may_log_in,
    open_session,
    probe_write,
    session_of,
    unwritable,
)
from search_service.sqlite_files import ThreadConnections

# The administration methods' hook for the audit trail (see `Registry._transaction`).
Record = Callable[[], None] | None

# Callers one thread remembers at most (each a certificate and session); past it, it starts afresh.
_KNOWN_MAX = 1024


@dataclass(frozen=True, slots=True)
class _Known:
    """A caller found valid, and until when its session is (None: no session)."""

    caller: Caller
    expires_at: dt.datetime | None


class Registry:
    def __init__(self, path: Path, *, clock: Callable[[], dt.datetime] | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._db = ThreadConnections(self.path, foreign_keys=True)
        # Callers found valid, per thread, while nothing in the file has changed (see `caller`).
        self._known = threading.local()
        self._generations = itertools.count(1)
        self._generation = 0  # moved on by every write through this object (see `_transaction`)
        self._login_guard = threading.Lock()
        self._login_locks: dict[str, threading.Lock] = {}
        # Records the accounts `login` disables (the server's audit trail: search_service.account_sweep).
        self.on_disabled: Callable[[list[str]], None] | None = None
        self.on_locked: Callable[[str, dt.datetime], None] | None = None  # and the locks it sets (login_failed)
        self._unwritable: list[Callable[[], None]] = []  # see `observe_failures`
        with self._transaction() as conn:
            conn.executescript(SCHEMA)  # leaves no transaction open: add_active_since opens its own
            add_active_since(conn)

    def _conn(self) -> sqlite3.Connection:
        return self._db.get()

    @contextlib.contextmanager
    def _transaction(self, record: Record = None) -> Iterator[sqlite3.Connection]:
        """This thread's connection in a transaction (committed, or rolled back on error). Every write
        goes through here: the bump tells every thread's cache of callers that the file changed (SQLite's
        data_version does not count the checking connection's own writes).

        `record`, if given, is called once the change is made, before the commit: if it raises, nothing
        is changed. The administration methods take it, so that the audit trail never lacks a change to
        the accreditations (search_service.accreditation_events).

        A write the file refuses (a full disk, a read-only file) is Unavailable, and the observers hear of it."""
        try:
            conn = self._conn()
            with conn:
                yield conn
                if record is not None:
                    record()
        except sqlite3.Error as error:
            failure = unwritable(error)
            if failure is None:
                raise
            for observer in self._unwritable:
                observer()
            raise failure from error
        finally:
            self._generation = next(self._generations)  # atomic: always a value no stamp holds yet

    def observe_failures(self, observer: Callable[[], None]) -> None:
        """Call `observer()` after each write that failed because the file cannot be written (Unavailable)."""
        self._unwritable.append(observer)

    def check_writable(self) -> None:
        """Write as a login does, and take it back: Unavailable while the file cannot be written."""
        with self._transaction() as conn:
            probe_write(conn, self._clock())

    def _version(self, conn: sqlite3.Connection) -> tuple[int, int]:
        """Changes whenever the file may have changed: a write through this object (any thread), or a
        commit by any other connection, in this process or another (the CLI)."""
        generation = self._generation  # before the read: a write between the two makes a stale stamp
        return generation, int(conn.execute("PRAGMA data_version").fetchone()[0])

    # ---- administration (the `dcii accredit` CLI and AdminService) ----

    def add_activity(
        self,
        activity_id: str,
        agency: str,
        roles: Iterable[Role],
        purposes: Iterable[Purpose],
        *,
        record: Record = None,
    ) -> Activity:
        roles, purposes = frozenset(roles), frozenset(purposes)
        check_new_activity(activity_id, roles, purposes)
        with self._transaction(record) as conn:
            try:
                conn.execute(
                    "INSERT INTO activity VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        activity_id,
                        agency,
                        ",".join(sorted(roles)),
                        ",".join(sorted(purposes)),
                        Status.ACTIVE,
                        iso(self._clock()),
                    ),
                )
            except sqlite3.IntegrityError as error:
                raise FailedPrecondition(f"activity {activity_id} already exists") from error
        return self.activity(activity_id)

    def activity(self, activity_id: str) -> Activity:
        """The activity, its live certificates' fingerprints with it; NotFound "no activity X"."""
        return activity_of(self._conn(), activity_id)

    def list_activities(self) -> list[Activity]:
        ids = self._conn().execute("SELECT activity_id FROM activity ORDER BY activity_id").fetchall()
        return [self.activity(row[0]) for row in ids]

    def set_activity_status(self, activity_id: str, status: Status, *, record: Record = None) -> Activity:
        with self._transaction(record) as conn:
            changed = conn.execute("UPDATE activity SET status = ? WHERE activity_id = ?", (status, activity_id))
            if changed.rowcount == 0:
                raise NotFound(f"no activity {activity_id}")
            if status is Status.REVOKED:
                conn.execute(
                    "UPDATE certificate SET revoked_at = ? WHERE activity_id = ? AND revoked_at IS NULL",
                    (iso(self._clock()), activity_id),
                )
            if status is not Status.ACTIVE:
                # Its sessions end with it: reinstated, its operators identify themselves again at the data.
                conn.execute(
                    "UPDATE session SET ended = 1 WHERE account_code IN"
                    " (SELECT account_code FROM operator WHERE activity_id = ?)",
                    (activity_id,),
                )
        return self.activity(activity_id)

    def add_certificate(self, activity_id: str, fingerprint: str, *, record: Record = None) -> None:
        """Accredit a certificate to an activity. One already known is never moved to another activity nor
        made valid again once revoked (a compromised key stays out): refused, FailedPrecondition."""
        self.activity(activity_id)
        fingerprint = fingerprint.lower()
        if already_accredited(self._conn(), activity_id, fingerprint):
            return
        with self._transaction(record) as conn:
            try:
                conn.execute(
                    "INSERT INTO certificate VALUES (?, ?, ?, NULL)", (fingerprint, activity_id, iso(self._clock()))
                )
            except sqlite3.IntegrityError as error:  # added meanwhile by another process
                raise FailedPrecondition("that certificate was accredited meanwhile") from error

    def revoke_certificate(self, fingerprint: str, *, activity_id: str | None = None, record: Record = None) -> str:
        """Revoke one certificate (a terminal's key lost or stolen) and end the sessions opened with it; the
        activity and its other certificates stay. Returns its activity's id. `activity_id`: it must be that
        activity's (NotFound otherwise, as for a fingerprint never accredited)."""
        with self._transaction(record) as conn:
            return revoke_one_certificate(conn, fingerprint.lower(), activity_id, iso(self._clock()) or "")

    def certificates(self, activity_id: str) -> list[CertificateRow]:
        """The activity's certificates, revoked ones too, in the order they were added."""
        self.activity(activity_id)
        return certificates_of(self._conn(), activity_id)

    def set_activity_access(
        self, activity_id: str, roles: Iterable[Role], purposes: Iterable[Purpose], *, record: Record = None
    ) -> Activity:
        """Replace the activity's roles and purposes; its sessions go on, and its next call is authorized on
        the new ones. PEER is an instance's own certificate: never given to or taken from an activity here."""
        roles = frozenset(roles)
        with self._transaction(record) as conn:
            set_access(conn, activity_id, roles, frozenset(purposes))
        return self.activity(activity_id)

    def add_operator(self, account_code: str, activity_id: str, password: str, *, record: Record = None) -> None:
        check_account_code(account_code)
        if Role.PEER in self.activity(activity_id).roles:
            raise InvalidArgument([Violation("activity_id", "a PEER activity (another instance) has no operators")])
        check_password(password)
        now = iso(self._clock())
        with self._transaction(record) as conn:
            try:
                conn.execute(
                    "INSERT INTO operator (account_code, activity_id, password_hash, status, created_at, active_since)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (account_code, activity_id, hash_password(password), Status.ACTIVE, now, now),
                )
            except sqlite3.IntegrityError as error:
                raise FailedPrecondition(f"operator {account_code} already exists") from error

    def set_operator_status(self, account_code: str, status: Status, *, record: Record = None) -> None:
        """ACTIVE from another status (reinstated) starts its three years again (account_policy.dormant)."""
        with self._transaction(record) as conn:
            changed = conn.execute(
                "UPDATE operator SET status = ?1, failed_logins = 0, locked_until = NULL, active_since ="
                " CASE WHEN ?1 = ?2 AND status <> ?2 THEN ?3 ELSE active_since END WHERE account_code = ?4",
                (status, Status.ACTIVE, iso(self._clock()), account_code),
            )
            if changed.rowcount == 0:
                raise NotFound(f"no operator {account_code}")
            if status is not Status.ACTIVE:
                conn.execute("UPDATE session SET ended = 1 WHERE account_code = ?", (account_code,))

    def set_password(self, account_code: str, password: str, *, record: Record = None) -> None:
        """Replace the operator's password; its sessions end, its lock is cleared (registry_rows.set_password)."""
        check_password(password)
        with self._transaction(record) as conn:
            set_password(conn, account_code, hash_password(password))

    def list_operators(self, account_code: str | None = None) -> list[Operator]:
        """Every operator account, or only `account_code`'s (none if there is no such account)."""
        where, args = ("WHERE account_code = ?", (account_code,)) if account_code is not None else ("", ())
        rows = self._conn().execute(
            "SELECT account_code, activity_id, status, last_login_at, locked_until FROM operator "  # noqa: S608
            f"{where} ORDER BY account_code",
            args,
        )
        return [Operator(a, b, Status(s), parse_time(last), parse_time(locked)) for a, b, s, last, locked in rows]

    def disable_dormant_operators(self, *, record: Callable[[list[str]], None] | None = None) -> list[str]:
        """Disable every active operator account unused for INACTIVITY_LIMIT by this registry's clock (as
        `login` would at its next attempt) and end its sessions; returns their account codes, sorted.

        One IMMEDIATE transaction: a login in another process waits for it, so none slips in between
        finding an account dormant and disabling it. `record`, if given, is called with the codes (only
        when there are some) before the commit: if it raises, nothing is disabled, so that the caller's
        audit trail never lacks a disabling (search_service.account_sweep)."""
        with self._transaction() as conn:
            return suspend_dormant(conn, self._clock(), record)

    # ---- the running server ----

    def activity_for_certificate(self, fingerprint: str) -> Activity:
        """The active activity that owns this certificate, or PermissionDenied."""
        row = (
            self._conn()
            .execute(
                "SELECT c.activity_id, a.status FROM certificate c JOIN activity a USING (activity_id)"
                " WHERE c.fingerprint = ? AND c.revoked_at IS NULL",
                (fingerprint,),
            )
            .fetchone()
        )
        if row is None:
            raise PermissionDenied("the client certificate belongs to no accredited activity")
        if row[1] != Status.ACTIVE:
            raise PermissionDenied(f"activity {row[0]} is {row[1].lower()}")
        return self.activity(row[0])

    def login(self, fingerprint: str, account_code: str, password: str) -> Session:
        """A session for the operator, or Unauthenticated "login failed" whatever the reason (an unknown,
        locked, suspended, dormant or another activity's account, a wrong password): the answer tells a
        guesser nothing. An attempt naming another activity's account is not counted against that account.

        One account's passwords are checked one at a time in a process, each failure counted (atomically,
        for other processes) before the next check: guesses sent together once all read the same count,
        and 40 of them were checked without locking the account."""
        activity = self.activity_for_certificate(fingerprint)
        owner = self._conn().execute("SELECT activity_id FROM operator WHERE account_code = ?", (account_code,))
        if (owner.fetchone() or (None,))[0] != activity.activity_id:
            # Unknown, or another activity's: checked at once, without the account's lock, so that nothing,
            # not even the time several guesses take together, tells whether another activity's code exists.
            verify_password(password, DUMMY_HASH)  # the same time as a real check
            raise Unauthenticated("login failed")
        with self._account_lock(account_code):
            now = self._clock()
            found = may_log_in(self._conn(), account_code, activity.activity_id, now)
            if found is None:
                verify_password(password, DUMMY_HASH)  # the same time as a real check
                raise Unauthenticated("login failed")
            stored, created, last, since = found
            if dormant(now, created, last, since):  # between two sweeps (disable_dormant_operators)
                on_disabled = self.on_disabled
                with self._transaction(None if on_disabled is None else lambda: on_disabled([account_code])) as conn:
                    suspend_accounts(conn, [account_code])
                verify_password(password, DUMMY_HASH)  # told no more than any failed login, right password or not
                raise Unauthenticated("login failed")
            if not verify_password(password, stored):
                with self._transaction() as conn:
                    locked_until = count_failed_login(conn, account_code, now)
                raise login_failed(self.on_locked, account_code, locked_until)
            token = secrets.token_urlsafe(32)
            with self._transaction() as conn:
                expires = open_session(conn, token, fingerprint, account_code, now)
            return Session(token, expires, activity)

    def _account_lock(self, account_code: str) -> threading.Lock:
        with self._login_guard:  # one lock per existing account (an unknown code never gets one)
            return self._login_locks.setdefault(account_code, threading.Lock())

    def caller(self, fingerprint: str, token: str | None) -> Caller:
        """The caller of an RPC: certificate first, then the session token (if the RPC needs one).

        Asked on every call, so a caller found valid is remembered, per thread, for as long as nothing in
        the file changes (`_version`: one cheap SQLite read instead of four queries). A suspension,
        revocation, logout or any other write, by this server, the CLI or anyone, changes the version and
        empties the cache; a session's expiry is checked against the clock on every call."""
        conn = self._conn()
        version = self._version(conn)
        known: dict[tuple[str, str | None], _Known] | None = getattr(self._known, "callers", None)
        if known is None or getattr(self._known, "version", None) != version:
            known = {}
            self._known.callers, self._known.version = known, version
        found = known.get((fingerprint, token))
        if found is not None and (found.expires_at is None or found.expires_at > self._clock()):
            return found.caller
        caller, expires_at = self._find_caller(fingerprint, token)
        if len(known) >= _KNOWN_MAX:
            known.clear()
        known[(fingerprint, token)] = _Known(caller, expires_at)
        return caller

    def _find_caller(self, fingerprint: str, token: str | None) -> tuple[Caller, dt.datetime | None]:
        """The caller and its session's expiry, from the file (refusals raise)."""
        activity = self.activity_for_certificate(fingerprint)
        if token is None:
            return Caller(activity, fingerprint), None
        token_hash = hash_token(token)
        account, expires_at = session_of(self._conn(), token_hash, fingerprint, activity, self._clock())
        return Caller(activity, fingerprint, account, token_hash), expires_at

    def logout(self, token_hash: str) -> None:
        with self._transaction() as conn:
            conn.execute("UPDATE session SET ended = 1 WHERE token_hash = ?", (token_hash,))

    def drop_old_sessions(self) -> int:
        """Delete the sessions ended or expired (nothing reads them again); how many. A row was kept for
        every login for ever: 570 MB of registry a day at 20 logins a second (a misbehaving-terminal review)."""
        with self._transaction() as conn:
            return conn.execute(
                "DELETE FROM session WHERE ended = 1 OR expires_at <= ?", (iso(self._clock()),)
            ).rowcount

    def close(self) -> None:
        self._db.close_all()
        # A thread's next connection counts data_version afresh: what was remembered must not match it.
        self._generation = next(self._generations)
