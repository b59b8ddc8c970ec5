"""`dcii audit`: check the audit trail and read the accounting of disclosures, on the server's machine.

Both commands open `<data>/audit.db` read-only and need no key, so they can run beside the server:
`dcii audit verify` walks the hash chain and compares both heads (exit 0 when intact, printing the head to
keep off the machine; 1 when broken; 2 when there is no trail at all in --data, a usage error;
`--expect-head SEQ:HASH` checks an earlier head still holds),
`dcii audit disclosures --agency A --record R` prints the accounting for one tracing (OPNAV 5211/9),
`dcii audit events [--kind K]` the other entries (refusals, accreditation changes, privacy requests...),
`dcii audit volume [--hours H] [--over N]` the disclosures each recipient received lately (exit 1 when one
received more than N: the limits count calls, not records, so run it from cron to see a harvest).
The three readings check what they showed against the chain (search_service.audit_spot_check): exit 3, with
a warning naming the entry, when it does not check out.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from dcii.cli.help_text import after_subcommand, subcommand
from dcii.cli.private import private_files
from indexer.exc import DciiError
from indexer.model import TracingKey
from search_service.accounting import disclosures_for_tracing_file, events_file, verify_file
from search_service.accounting_entries import disclosure_volume_file, event_kinds_file
from search_service.audit_chain import Head, head_path
from search_service.audit_lookup import Reading
from search_service.audit_spot_check import spot_check_file

MARKING = "FOR OFFICIAL USE ONLY - PRIVACY SENSITIVE"
DATA_DEFAULT = "var/data"

console = Console(soft_wrap=True, highlight=False, markup=False)  # the data as it is, never markup


def audit_db(data: str) -> Path:
    return Path(data) / "audit.db"


def _anchor(text: str) -> Head:
    seq, _, digest = text.partition(":")
    if not (seq.isdigit() and len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)):
        raise argparse.ArgumentTypeError("SEQ:HASH, as `dcii audit verify` printed them (head SEQ:HASH)")
    return Head(int(seq), digest)


def _hours(text: str) -> float:
    """An argparse type: a period of hours back from now, more than 0. A negative one was a window in the
    future, which reported no disclosure and exited 0: a mistyped cron line read as a clean hour."""
    try:
        hours = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not a number of hours") from None  # not quoted: it may be anything
    if not math.isfinite(hours) or hours <= 0:
        raise argparse.ArgumentTypeError(f"hours back from now must be a number above 0, not {text}")
    return hours


def cmd_verify(args: argparse.Namespace) -> None:
    path = audit_db(args.data)
    if not path.exists() and not head_path(path).exists():
        # Nothing there at all (no database, no head file): a wrong --data or working directory, a usage error
        # (exit 2), not a tampered trail (exit 1), which cron alerts on. A database gone while its head file
        # stays is a trail deleted: verify_file says so, and it is broken.
        print(f"dcii: no audit trail at {path} (is --data right?)", file=sys.stderr)
        raise SystemExit(2)
    result = verify_file(path, args.expect_head)
    if result.ok:
        head = f"; head {result.head.seq}:{result.head.hash}" if result.head is not None else ""
        console.print(f"audit trail intact: {result.entries} entries{head}", markup=False)
        if result.reason != "intact":
            console.print(result.reason, markup=False)
        return
    where = f" at entry {result.first_bad}" if result.first_bad is not None else ""
    console.print(f"audit trail broken{where}: {result.reason}", markup=False)
    raise SystemExit(1)


def _vouched(data: str, reading: Reading, what: str) -> str | None:
    """Whether what was shown checks out against the chain (search_service.audit_spot_check): a line saying
    so, or the reason it does not (for `_distrust`, once the output is complete: an auditor sees what the
    trail holds, and that it cannot be trusted)."""
    problem = spot_check_file(audit_db(data), reading)
    if problem is None:
        console.print(f"{what} checked against the audit chain: intact (`dcii audit verify` walks all of it)")
    return problem


def _distrust(problem: str | None) -> None:
    if problem is not None:
        print(
            f"dcii: warning: the audit trail does not check out: {problem}. What is shown may be incomplete or"
            " altered: run `dcii audit verify`",
            file=sys.stderr,
        )
        raise SystemExit(3)


def cmd_disclosures(args: argparse.Namespace) -> None:
    tracing = TracingKey(args.agency.strip().upper(), args.record.strip())
    reading = Reading()
    try:
        found = disclosures_for_tracing_file(audit_db(args.data), tracing, reading)
    except DciiError as error:
        raise SystemExit(error.message) from error
    table = Table(title=f"Accounting of disclosures of {tracing}")
    for header in ("date (UTC)", "method", "purpose", "recipient activity", "operator", "law enf.", "disclosure id"):
        table.add_column(header, overflow="fold")  # an official record: wrap, never elide
    for d in found:
        table.add_row(
            d.disclosed_at.strftime("%Y-%m-%d %H:%M:%S"),
            d.method,
            d.purpose,
            d.recipient_activity,
            d.recipient_operator or "-",
            "yes" if d.law_enforcement else "no",
            d.disclosure_id,
        )
    console.print(MARKING, markup=False)
    console.print(table)
    console.print(f"{len(found)} disclosures of {tracing}", markup=False)
    problem = _vouched(args.data, reading, "the entries shown")
    console.print(MARKING, markup=False)
    _distrust(problem)


def cmd_events(args: argparse.Namespace) -> None:
    kind = args.kind.strip().upper() if args.kind else None
    reading = Reading()
    try:
        found = events_file(audit_db(args.data), kind, reading)
    except DciiError as error:
        raise SystemExit(error.message) from error
    table = Table(title=f"Audit trail events{f' of kind {kind}' if kind else ''}")
    for header in ("entry", "date (UTC)", "kind", "actor", "detail"):
        table.add_column(header, overflow="fold")  # an official record: wrap, never elide
    for event in found:
        detail = ", ".join(f"{key}={value}" for key, value in sorted(event.detail.items()))
        table.add_row(str(event.seq), event.at.strftime("%Y-%m-%d %H:%M:%S"), event.kind, event.actor, detail)
    console.print(table)
    console.print(f"{len(found)} events", markup=False)
    if kind and not found:  # a misspelt kind listed nothing and read as "nothing happened" (an admin's UAT)
        held = ", ".join(event_kinds_file(audit_db(args.data))) or "none"
        print(f"dcii: no event of kind {kind} in this trail; the kinds it holds: {held}", file=sys.stderr)
    _distrust(_vouched(args.data, reading, "the entries shown"))


def cmd_volume(args: argparse.Namespace) -> None:
    since = dt.datetime.now(dt.UTC) - dt.timedelta(hours=args.hours)
    reading = Reading()
    try:
        found = disclosure_volume_file(audit_db(args.data), since, reading)
    except DciiError as error:
        raise SystemExit(error.message) from error
    table = Table(title=f"Disclosures by recipient in the last {args.hours:g} hours (since {since:%Y-%m-%d %H:%M} UTC)")
    for header in ("recipient activity", "operator", "disclosures"):
        table.add_column(header, overflow="fold")
    for activity, operator, count in found:
        table.add_row(activity, operator or "-", f"{count:,}")
    console.print(table)
    over = [(activity, operator) for activity, operator, count in found if args.over is not None and count > args.over]
    console.print(
        f"{sum(count for *_, count in found):,} disclosures; {len(over)} recipients over {args.over}"
        if args.over is not None
        else f"{sum(count for *_, count in found):,} disclosures",
        markup=False,
    )
    # Exit 3 before 1: counts read from an altered trail mean nothing.
    _distrust(_vouched(args.data, reading, "the period's entries"))
    if over:  # for cron: a recipient disclosed more than the office expects of one in the period
        raise SystemExit(1)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser], data_default: str) -> None:
    audit = commands.add_parser(
        "audit",
        help="verify the audit trail; the accounting of disclosures; the trail's other events",
        description="Read the audit trail of --data (audit.db) read-only, beside the running server; no key"
        " needed. --data is taken before or after the subcommand.",
    )
    data_help = f"the server's data directory, which holds audit.db (default {data_default})"
    audit.add_argument("--data", default=data_default, metavar="DIR", help=data_help)
    # After the subcommand too (`dcii audit events --data D`, as the RUNBOOK writes it): an administrator's UAT
    # put it before, as `dcii accredit --data D` takes it, and got "invalid choice".
    data = after_subcommand("--data", f"{data_help}; also taken before the subcommand")
    sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = subcommand(
        sub,
        "verify",
        "walk the hash chain; exit 1 naming the first bad entry, 2 when --data holds no trail",
        "Exit 0 when intact, printing the head (SEQ:HASH) to keep off the machine and give back with"
        " --expect-head later.",
        parents=[data],
    )
    verify.add_argument(
        "--expect-head",
        type=_anchor,
        metavar="SEQ:HASH",
        help="a head an earlier run printed (kept off the machine): fail unless that entry still has that hash",
    )
    verify.set_defaults(run=cmd_verify)
    disclosures = subcommand(
        sub,
        "disclosures",
        "the accounting of disclosures of one tracing; exit 3 when it does not check out",
        "Who received the record, when, for which purpose (OPNAV 5211/9); marked FOUO - privacy sensitive.",
        parents=[data],
    )
    disclosures.add_argument("--agency", required=True, help="the owning agency's code")
    disclosures.add_argument("--record", required=True, help="the agency's record number")
    disclosures.set_defaults(run=cmd_disclosures)
    events = subcommand(
        sub,
        "events",
        "the trail's other entries (refusals, accreditation changes...); exit 3 unless they check out",
        "A kind the trail does not hold lists the kinds it does.",
        parents=[data],
    )
    events.add_argument("--kind", default="", help="only this kind (e.g. REFUSAL, OPERATOR_DISABLED)")
    events.set_defaults(run=cmd_events)
    volume = subcommand(
        sub,
        "volume",
        "disclosures by recipient activity and operator over the last hours",
        "The limits count calls, not records disclosed: run it from cron with --over to see a harvest.",
        parents=[data],
    )
    volume.add_argument("--hours", type=_hours, default=24.0, help="the period, in hours back from now (24)")
    volume.add_argument(
        "--over",
        type=int,
        default=None,
        metavar="N",
        help="exit 1 when any operator received more than N (for cron); 3 when the period does not check out",
    )
    volume.set_defaults(run=cmd_volume)


def main(argv: list[str] | None = None) -> None:
    """`python -m dcii.cli.audit ...`: the `dcii audit` commands on their own."""
    top = argparse.ArgumentParser(prog="dcii", description=__doc__)
    commands = top.add_subparsers(dest="command", required=True)
    add_parser(commands, DATA_DEFAULT)
    args = top.parse_args(["audit", *(sys.argv[1:] if argv is None else argv)])
    with private_files():
        args.run(args)


if __name__ == "__main__":
    main()
