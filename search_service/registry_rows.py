"""How the registry (search_service.registry) writes and reads its rows: moments as ISO text, session tokens
as their SHA-256, lists as commas; and the administration's statements run inside its transactions
(suspending operator accounts, revoking one certificate, changing an activity's roles and purposes)."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from indexer.agencies import SUBMITTING_AGENCIES
from indexer.exc import FailedPrecondition, InvalidArgument, NotFound
from indexer.model import Violation
from search_service.account_policy import dormant
from search_service.accreditation import Activity, Purpose, Role, Status


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


def suspend_dormant(
    conn: sqlite3.Connection, now: dt.datetime, record: Callable[[list[str]], None] | None
) -> list[str]:
    """`Registry.disable_dormant_operators` inside its transaction, made IMMEDIATE here."""
    conn.execute("BEGIN IMMEDIATE")
    rows = conn.execute(
        "SELECT account_code, created_at, last_login_at, active_since FROM operator WHERE status = ?"
        " ORDER BY account_code",
        (Status.ACTIVE,),
    ).fetchall()
    found = [account for account, created, last, since in rows if dormant(now, created, last, since)]
    if found:
        suspend_accounts(conn, found)
        if record is not None:
            record(found)
    return found


@dataclass(frozen=True, slots=True)
class CertificateRow:
    fingerprint: str
    added_at: dt.datetime
    revoked_at: dt.datetime | None


def certificates_of(conn: sqlite3.Connection, activity_id: str) -> list[CertificateRow]:
    rows = conn.execute(
        "SELECT fingerprint, added_at, revoked_at FROM certificate WHERE activity_id = ? ORDER BY added_at",
        (activity_id,),
    )
    return [CertificateRow(f, dt.datetime.fromisoformat(added), parse_time(revoked)) for f, added, revoked in rows]


def revoke_one_certificate(conn: sqlite3.Connection, fingerprint: str, activity_id: str | None, now: str) -> str:
    """Revoke a certificate and end its sessions (a session is bound to the certificate it was opened with);
    its activity's id. Revoked already: FailedPrecondition saying when."""
    row = conn.execute("SELECT activity_id, revoked_at FROM certificate WHERE fingerprint = ?", (fingerprint,))
    held = row.fetchone()
    if held is None or (activity_id is not None and held[0] != activity_id):
        raise NotFound(f"no such certificate{f' of activity {activity_id}' if activity_id else ''}")
    if held[1] is not None:
        raise FailedPrecondition(f"that certificate was revoked on {held[1][:10]}")
    conn.execute("UPDATE certificate SET revoked_at = ? WHERE fingerprint = ?", (now, fingerprint))
    conn.execute("UPDATE session SET ended = 1 WHERE fingerprint = ?", (fingerprint,))
    return str(held[0])


def check_new_activity(activity_id: str, roles: frozenset[Role], purposes: frozenset[Purpose]) -> None:
    if not activity_id or not activity_id.replace("-", "").replace("_", "").isalnum():
        raise InvalidArgument([Violation("activity_id", "letters, digits, '-' and '_' only")])
    if not roles:  # it could do nothing: `activity set` refuses the same
        raise InvalidArgument([Violation("roles", "at least one role")])
    if Role.PEER in roles and (len(roles) > 1 or purposes):  # it reads any accounting, with no session
        why = "PEER is for the instances' own certificate: no other role, no purpose"
        raise InvalidArgument([Violation("roles", why)])


def set_access(
    conn: sqlite3.Connection, activity_id: str, roles: frozenset[Role], purposes: frozenset[Purpose]
) -> None:
    row = conn.execute("SELECT roles, agency FROM activity WHERE activity_id = ?", (activity_id,)).fetchone()
    if row is None:
        raise NotFound(f"no activity {activity_id}")
    if not roles:
        raise InvalidArgument([Violation("roles", "at least one (to stop an activity: suspend or revoke it)")])
    if (Role.PEER in roles) != (Role.PEER in names_of(row[0])):
        raise InvalidArgument([Violation("roles", "PEER is an instance's own activity: accredit a new one")])
    # A PEER activity reads any person's accounting without a session: accredited with no other role and no
    # purpose (`add_activity`), and so it stays.
    if Role.PEER in roles and len(roles) > 1:
        raise InvalidArgument([Violation("roles", "a PEER activity has no other role")])
    if Role.PEER in roles and purposes:
        raise InvalidArgument([Violation("purposes", "a PEER activity has no purpose")])
    # A SUBMITTER writes its own agency's tracings, and only a submitting agency owns any (as `dcii accredit
    # activity add` refuses it, dcii.cli.admin._checked_agency).
    if Role.SUBMITTER in roles and row[1] not in SUBMITTING_AGENCIES:
        why = f"a SUBMITTER writes its own agency's tracings, and {row[1]} owns none"
        raise InvalidArgument([Violation("roles", why)])
    if not purposes and roles & {Role.QUERIER, Role.BATCH}:
        raise InvalidArgument([Violation("purposes", "a QUERIER or BATCH activity needs at least one")])
    conn.execute(
        "UPDATE activity SET roles = ?, purposes = ? WHERE activity_id = ?",
        (",".join(sorted(roles)), ",".join(sorted(purposes)), activity_id),
    )


# An account code as the registry takes it: what an operator types at login, and what the audit trail names.
_ACCOUNT_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


def check_account_code(code: str) -> None:
    """Letters, digits and . _ @ -, at most 64, a letter or digit first: `operator add` took any text, spaces,
    terminal escapes, 300 characters, or a password (the arguments swapped), and wrote it into the registry
    and the audit trail as it was (an administrator's UAT)."""
    if not _ACCOUNT_CODE.fullmatch(code):
        why = "letters, digits and . _ @ - only, at most 64, beginning with a letter or digit"
        raise InvalidArgument([Violation("account_code", why)])


def set_password(conn: sqlite3.Connection, account_code: str, password_hash: str) -> None:
    """A new password for the account (`dcii accredit operator password`): its failed logins and lock
    cleared, its sessions ended (a terminal stolen with the password file beside its profile)."""
    changed = conn.execute(
        "UPDATE operator SET password_hash = ?, failed_logins = 0, locked_until = NULL WHERE account_code = ?",
        (password_hash, account_code),
    )
    if changed.rowcount == 0:
        raise NotFound(f"no operator {account_code}")
    conn.execute("UPDATE session SET ended = 1 WHERE account_code = ?", (account_code,))


def check_password(password: str) -> None:
    if len(password) < 12:
        raise InvalidArgument([Violation("password", "at least 12 characters")])


def activity_of(conn: sqlite3.Connection, activity_id: str) -> Activity:
    """`Registry.activity`: the row and its live certificates, oldest first."""
    row = conn.execute(
        "SELECT activity_id, agency, roles, purposes, status FROM activity WHERE activity_id = ?", (activity_id,)
    ).fetchone()
    if row is None:
        raise NotFound(f"no activity {activity_id}")
    prints = conn.execute(
        "SELECT fingerprint FROM certificate WHERE activity_id = ? AND revoked_at IS NULL ORDER BY added_at",
        (activity_id,),
    )
    return Activity(
        row[0],
        row[1],
        frozenset(Role(r) for r in names_of(row[2])),
        frozenset(Purpose(p) for p in names_of(row[3])),
        Status(row[4]),
        tuple(f[0] for f in prints),
    )


def already_accredited(conn: sqlite3.Connection, activity_id: str, fingerprint: str) -> bool:
    """True when the certificate is this activity's already; FailedPrecondition when it was revoked (a
    compromised key stays out) or is another activity's (never moved)."""
    held = conn.execute("SELECT activity_id, revoked_at FROM certificate WHERE fingerprint = ?", (fingerprint,))
    found = held.fetchone()
    if found is not None and found[1] is not None:
        raise FailedPrecondition(f"that certificate was revoked on {found[1][:10]}: issue a new one")
    if found is not None and found[0] != activity_id:
        raise FailedPrecondition(f"that certificate is accredited to activity {found[0]}")
    return found is not None
