"""`dcii accredit operator add|suspend|revoke|reinstate|password|list`: operator accounts, at the console.

What the registry keeps of an account tells less than an administrator needs (an administrator's UAT):
- a lockout (five failed logins) is cleared by `reinstate`, which said only "is now ACTIVE", as it did for an
  account already active: it now says the lock it cleared, and a reinstate of an account active and unlocked
  changes nothing and records nothing (the trail showed two identical events for one change);
- an account the sweep disabled for three years unused is SUSPENDED in the registry, as one an administrator
  suspended for cause: `list` told them apart by nothing, and a reinstate could undo a suspension for cause
  unnoticed. The audit trail knows which it was (OPERATOR_DISABLED, or OPERATOR_STATUS_SET): `list` shows
  the former "SUSPENDED (dormant)", and a lock in force as "ACTIVE (locked)" with until when.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import os
import sys
from pathlib import Path

from dcii.cli.admin import STATUS_OF_ACTION, Trail, _registry, console, folding_table
from indexer.exc import DciiError, NotFound
from search_service import accreditation_events as events
from search_service.account_sweep import DISABLED_EVENT, sweep_with_trail_at
from search_service.accounting import events_file
from search_service.accreditation import Operator, Status
from search_service.registry import Registry


def _read_password(args: argparse.Namespace) -> str:
    """--password-file, else DCII_PASSWORD, else asked twice at the terminal; each failure one line (a
    mistyped file, or no terminal to ask at, ended in a traceback: an administrator's UAT)."""
    if args.password_file:
        try:
            return Path(args.password_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            why = error.strerror if isinstance(error, OSError) and error.strerror else "not UTF-8 text"
            raise SystemExit(f"dcii: --password-file {args.password_file}: {why}") from None
    from_env = os.environ.get("DCII_PASSWORD")
    if from_env:
        return from_env
    if not sys.stdin.isatty():
        raise SystemExit("dcii: no password: give --password-file FILE or set DCII_PASSWORD (no terminal to ask at)")
    try:
        first = getpass.getpass("password: ")
        again = getpass.getpass("again: ")
    except (EOFError, KeyboardInterrupt):
        raise SystemExit("dcii: no password given: nothing changed") from None
    if first != again:
        raise SystemExit("dcii: the passwords differ: nothing changed")
    return first


def cmd_operator_add(args: argparse.Namespace) -> None:
    password = _read_password(args)
    with Trail(Path(args.data)) as trail:
        record = trail.recorder(events.operator_added(args.account_code, args.activity))
        _registry(args).add_operator(args.account_code, args.activity, password, record=record)
    console.print(f"operator {args.account_code} added to {args.activity}")


def cmd_operator_password(args: argparse.Namespace) -> None:
    password = _read_password(args)
    with Trail(Path(args.data)) as trail:
        record = trail.recorder(events.operator_password_set(args.account_code))
        _registry(args).set_password(args.account_code, password, record=record)
    console.print(f"{args.account_code} has a new password; its sessions ended, its lock (if any) cleared")


def _utc(moment: dt.datetime) -> str:
    return f"{moment.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC"


def _lock_in_force(operator: Operator, now: dt.datetime) -> dt.datetime | None:
    """Until when the account is locked, if it is now (a lock past its time stays in the row until the next
    login, but no longer refuses anything)."""
    until = operator.locked_until
    return until if until is not None and until > now and operator.status is Status.ACTIVE else None


def _operator(registry: Registry, account_code: str) -> Operator:
    found = registry.list_operators(account_code)
    if not found:
        raise NotFound(f"no operator {account_code}")
    return found[0]


def dormant_accounts(data_dir: Path, suspended: set[str]) -> set[str] | None:
    """Of the `suspended` accounts, those the registry disabled as dormant: the latest event in the audit
    trail that set the account's status is an OPERATOR_DISABLED (the sweep's, or a login's that found it
    dormant), not an administrator's OPERATOR_STATUS_SET. None when the trail cannot be read (the registry
    alone cannot tell them apart)."""
    if not suspended:
        return set()
    latest: dict[str, tuple[int, str]] = {}  # account -> (entry, kind) of its latest status change
    try:
        for kind in (events.OPERATOR_STATUS_SET, DISABLED_EVENT):
            for event in events_file(data_dir / "audit.db", kind):
                account = event.detail.get("account", "")
                if account in suspended and event.seq > latest.get(account, (0, ""))[0]:
                    latest[account] = (event.seq, kind)
    except DciiError:
        return None
    return {account for account, (_seq, kind) in latest.items() if kind == DISABLED_EVENT}


def _why(args: argparse.Namespace, before: Operator) -> str:
    """What the reinstate message adds to "was SUSPENDED" when the registry suspended the account for three
    years unused: a reinstate undid a suspension for cause as silently as a dormant one's (an administrator's
    UAT)."""
    if before.status is not Status.SUSPENDED:
        return ""
    return ", dormant" if dormant_accounts(Path(args.data), {before.account_code}) else ""


def cmd_operator_status(args: argparse.Namespace) -> None:
    status = STATUS_OF_ACTION[args.action]
    registry = _registry(args)
    before = _operator(registry, args.account_code)
    lock = _lock_in_force(before, dt.datetime.now(dt.UTC))
    if before.status is status and lock is None:
        console.print(f"{args.account_code} is already {status.value}: nothing changed")
        return
    was = "" if before.status is status else f" (was {before.status.value}{_why(args, before)})"  # before the event
    with Trail(Path(args.data)) as trail:
        record = trail.recorder(events.operator_status_set(args.account_code, status))
        registry.set_operator_status(args.account_code, status, record=record)
    cleared = f"; its lock until {_utc(lock)} is cleared" if lock is not None and status is Status.ACTIVE else ""
    console.print(f"{args.account_code} is now {status.value}{was}{cleared}")


def cmd_operator_list(args: argparse.Namespace) -> None:
    registry = _registry(args)
    # The sweep first (as the server makes at its start and daily): a dormant account must not be listed
    # ACTIVE. Each disabling goes into the audit trail, as the server's do.
    for account in sweep_with_trail_at(registry, Path(args.data)):
        console.print(f"{account} disabled: unused for three years", markup=False)
    operators = registry.list_operators()
    now = dt.datetime.now(dt.UTC)
    suspended = {o.account_code for o in operators if o.status is Status.SUSPENDED}
    dormant = dormant_accounts(Path(args.data), suspended)
    table = folding_table("account", "activity", "status", "last login (UTC)", "locked until (UTC)")
    for o in operators:
        lock = _lock_in_force(o, now)
        shown = o.status.value
        if lock is not None:
            shown += " (locked)"
        elif dormant is not None and o.account_code in dormant:
            shown += " (dormant)"
        table.add_row(
            o.account_code,
            o.activity_id,
            shown,
            f"{o.last_login_at.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S}" if o.last_login_at else "never",
            f"{lock.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S}" if lock is not None else "",
        )
    console.print(table)
    if dormant:
        console.print("(dormant): suspended by the registry, unused for three years; `operator reinstate` lets it in")
    if suspended and dormant is None:
        print(
            f"dcii: warning: the audit trail in {args.data} cannot be read: a SUSPENDED account may also be one"
            " disabled for three years unused (`dcii audit events --kind OPERATOR_DISABLED`)",
            file=sys.stderr,
        )
