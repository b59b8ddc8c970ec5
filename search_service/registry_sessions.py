"""The registry's operator sessions and failed logins, as statements in the caller's transaction or reads on
its connection (search_service.registry decides when; these say what is written and what is checked), and
what a write that the file refuses becomes."""

from __future__ import annotations

import datetime as dt
import hmac
import secrets
import sqlite3
from collections.abc import Callable

from indexer.exc import PermissionDenied, Unauthenticated, Unavailable
from search_service.account_policy import LOCKOUT, MAX_FAILED_LOGINS, SESSION_TTL
from search_service.accreditation import Activity, Status
from search_service.registry_rows import hash_token, iso, parse_time

CANNOT_WRITE = "the registry cannot be written"

# SQLite's primary result codes for a file that cannot be written, in SQLite's own words (sqlite3_errstr):
# they quote no stored value, so they may reach a client and the log.
_UNWRITABLE = {
    8: "attempt to write a readonly database",  # SQLITE_READONLY
    10: "disk I/O error",  # SQLITE_IOERR
    13: "database or disk is full",  # SQLITE_FULL
    14: "unable to open database file",  # SQLITE_CANTOPEN
}


def unwritable(error: sqlite3.Error) -> Unavailable | None:
    """Unavailable naming the cause, if `error` says the file cannot be written (a full disk, a read-only
    file, an I/O error); None for any other error. Every login writes a session row: with the disk full,
    each was an INTERNAL "internal error", and nothing said that the disk was full (an operator's test)."""
    code = getattr(error, "sqlite_errorcode", None)
    cause = _UNWRITABLE.get(code & 0xFF) if isinstance(code, int) else None
    return None if cause is None else Unavailable(f"{CANNOT_WRITE}: {cause}")


def probe_write(conn: sqlite3.Connection, now: dt.datetime) -> None:
    """A write such as a login makes (a session row, ended), taken back in the same transaction: it fails
    as a login would while the file cannot be written, and leaves nothing."""
    token_hash = hash_token(secrets.token_urlsafe(32))
    conn.execute("INSERT INTO session VALUES (?, '', '', ?, 1)", (token_hash, iso(now)))
    conn.execute("DELETE FROM session WHERE token_hash = ?", (token_hash,))


def count_failed_login(conn: sqlite3.Connection, account_code: str, now: dt.datetime) -> dt.datetime | None:
    """One more failed login on the account, counted atomically (for other processes); at MAX_FAILED_LOGINS
    the account is locked for LOCKOUT and its count starts again: then until when (None otherwise). Only the
    failure that reaches the count locks, once: a locked account's logins are refused before their
    password is checked (`may_log_in`), and so are not counted."""
    (failed,) = conn.execute(
        "UPDATE operator SET failed_logins = failed_logins + 1 WHERE account_code = ? RETURNING failed_logins",
        (account_code,),
    ).fetchone()
    if failed < MAX_FAILED_LOGINS:
        return None
    until = now + LOCKOUT
    conn.execute(
        "UPDATE operator SET failed_logins = 0, locked_until = ? WHERE account_code = ?", (iso(until), account_code)
    )
    return until


def login_failed(
    on_locked: Callable[[str, dt.datetime], None] | None, account_code: str, locked_until: dt.datetime | None
) -> Unauthenticated:
    """The refusal of a failed login ("login failed", whatever the reason), once the lock it set, if it set
    one, is handed to `on_locked` (the server's audit trail: OPERATOR_LOCKED, search_service.refusal_audit).

    Called after the lock is committed, not inside its transaction as the administration's events are: a
    trail that cannot be written must not undo the lock (a guesser would then keep guessing for as long as
    the trail is down). It raises then (Unavailable), and the call is refused as any refusal is whose event
    cannot be written; the lock stands, without its event, the safe side."""
    if locked_until is not None and on_locked is not None:
        on_locked(account_code, locked_until)
    return Unauthenticated("login failed")


def may_log_in(
    conn: sqlite3.Connection, account_code: str, activity_id: str, now: dt.datetime
) -> tuple[str, str, str | None, str | None] | None:
    """The account's password hash and what its dormancy counts from (created, last login, active since), if
    it is `activity_id`'s, active and not locked; None otherwise (search_service.registry's `login`)."""
    row = conn.execute(
        "SELECT activity_id, password_hash, status, created_at, last_login_at, locked_until, active_since"
        " FROM operator WHERE account_code = ?",
        (account_code,),
    ).fetchone()
    if row is None:
        return None
    owner, stored, status, created, last, locked, since = row
    locked_until = parse_time(locked)
    if owner != activity_id or status != Status.ACTIVE or (locked_until is not None and locked_until > now):
        return None
    return stored, created, last, since


def open_session(
    conn: sqlite3.Connection, token: str, fingerprint: str, account_code: str, now: dt.datetime
) -> dt.datetime:
    """A session for the account bound to the certificate, stored by its token's hash; when it expires."""
    expires = now + SESSION_TTL
    conn.execute(
        "UPDATE operator SET last_login_at = ?, failed_logins = 0, locked_until = NULL WHERE account_code = ?",
        (iso(now), account_code),
    )
    conn.execute(
        "INSERT INTO session VALUES (?, ?, ?, ?, 0)", (hash_token(token), account_code, fingerprint, iso(expires))
    )
    return expires


def session_of(
    conn: sqlite3.Connection, token_hash: str, fingerprint: str, activity: Activity, now: dt.datetime
) -> tuple[str, dt.datetime]:
    """The operator account of a live session and when the session expires, or why not (Unauthenticated: an
    unknown, ended or expired session, or one issued to another certificate; PermissionDenied: the
    account is not active)."""
    row = conn.execute(
        "SELECT s.account_code, s.fingerprint, s.expires_at, s.ended, o.status, o.activity_id"
        " FROM session s JOIN operator o USING (account_code) WHERE s.token_hash = ?",
        (token_hash,),
    ).fetchone()
    if row is None:
        raise Unauthenticated("unknown session token")
    account, bound_to, expires, ended, status, owner = row
    if ended:
        raise Unauthenticated("the session has ended")
    if not hmac.compare_digest(bound_to, fingerprint) or owner != activity.activity_id:
        raise Unauthenticated("the session token was issued to another certificate")
    expires_at = parse_time(expires)
    if expires_at is None or expires_at <= now:
        raise Unauthenticated("the session has expired")
    if status != Status.ACTIVE:
        raise PermissionDenied(f"operator account is {status.lower()}")
    return str(account), expires_at
