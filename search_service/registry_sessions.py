"""The registry's operator sessions and failed logins, as statements in the caller's transaction or reads on
its connection (search_service.registry decides when; these say what is written and what is checked)."""

from __future__ import annotations

import datetime as dt
import hmac
import sqlite3

from indexer.exc import PermissionDenied, Unauthenticated
from search_service.account_policy import LOCKOUT, MAX_FAILED_LOGINS, SESSION_TTL
from search_service.accreditation import Activity, Status
from search_service.registry_rows import hash_token, iso, parse_time


def count_failed_login(conn: sqlite3.Connection, account_code: str, now: dt.datetime) -> None:
    """One more failed login on the account, counted atomically (for other processes); at MAX_FAILED_LOGINS
    the account is locked for LOCKOUT and its count starts again."""
    (failed,) = conn.execute(
        "UPDATE operator SET failed_logins = failed_logins + 1 WHERE account_code = ? RETURNING failed_logins",
        (account_code,),
    ).fetchone()
    if failed >= MAX_FAILED_LOGINS:
        conn.execute(
            "UPDATE operator SET failed_logins = 0, locked_until = ? WHERE account_code = ?",
            (iso(now + LOCKOUT), account_code),
        )


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
