"""How the registry (search_service.registry) writes and reads its rows: moments as ISO text, session tokens
as their SHA-256, lists as commas; and suspending operator accounts inside a transaction."""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3

from search_service.accreditation import Status


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def iso(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def parse_time(text: str | None) -> dt.datetime | None:
    return None if text is None else dt.datetime.fromisoformat(text)


def names_of(values: str) -> list[str]:
    return [v for v in values.split(",") if v]


def suspend_accounts(conn: sqlite3.Connection, accounts: list[str]) -> None:
    """Disable operator accounts and end their sessions (in the caller's transaction).

    Suspended, not deleted, although seed 001 says "removed": the audit trail names operators as the
    recipients of disclosures, and each such name must still lead to an account (and its activity) for as
    long as the accounting is kept. A suspended account cannot log in, and the server refuses its sessions,
    until an administrator reinstates it."""
    for account in accounts:
        conn.execute("UPDATE operator SET status = ? WHERE account_code = ?", (Status.SUSPENDED, account))
        conn.execute("UPDATE session SET ended = 1 WHERE account_code = ?", (account,))
