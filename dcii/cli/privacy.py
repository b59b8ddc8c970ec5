"""`dcii privacy`: the privacy office's register and dispute-notice outbox, on the server's machine.

Like `dcii accredit`, these commands work on `<data>/privacy.db` directly (the server shares the file):
`notices list [--unsent]` shows the statements of dispute owed to earlier recipients (marked FOUO -
privacy sensitive: a summary may describe the person), `notices mark-sent NOTICE_ID` records a delivery,
`requests list [--overdue] [--late]` shows access and amendment requests with their 10- and 30-working-day
deadlines (a duty done past its deadline stays marked late: `--late` lists those for the office's report),
`requests acknowledge` and `requests respond` record those steps (`respond` an amendment's decision only: an
access request is closed by its answer, AnswerAccessRequest). Days are shown in the privacy office's time
zone (`--privacy-time-zone`, or DCII_PRIVACY_TIME_ZONE, as `dcii serve` counts them), times in UTC.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from dcii.cli import privacy_office
from dcii.cli.admin import console_actor
from dcii.cli.help_text import after_subcommand, subcommand
from dcii.cli.private import private_files
from indexer.exc import DciiError
from search_service.accounting import AuditLog, load_or_create_key
from search_service.privacy_days import DEFAULT_TIME_ZONE, office_zone
from search_service.privacy_requests import PrivacyRequest, PrivacyRequests, RequestKind

if TYPE_CHECKING:
    from dcii.cli.help_text import Subcommands

MARKING = "FOR OFFICIAL USE ONLY - PRIVACY SENSITIVE"
DATA_DEFAULT = "var/data"

console = Console(soft_wrap=True, highlight=False, markup=False)  # the data as it is, never markup


def _zone_name(text: str) -> str:
    """An argparse type: an IANA time zone name, refused by the parser when unknown."""
    try:
        office_zone(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error
    return text


def add_time_zone_option(command: argparse.ArgumentParser) -> None:
    """`--privacy-time-zone`, for `dcii serve` (the deadlines it sets) and `dcii privacy` (the days it shows):
    both read DCII_PRIVACY_TIME_ZONE, so that one setting of the environment keeps them in step."""
    command.add_argument(
        "--privacy-time-zone",
        type=_zone_name,
        default=os.environ.get("DCII_PRIVACY_TIME_ZONE") or DEFAULT_TIME_ZONE,
        metavar="ZONE",
        help="the privacy office's IANA time zone, whose working days Privacy Act deadlines count"
        f" (default {DEFAULT_TIME_ZONE}; or DCII_PRIVACY_TIME_ZONE)",
    )


def _time_zone_after(command: argparse.ArgumentParser) -> None:
    """`--privacy-time-zone` after a `dcii privacy` subcommand too; unset there, the group's value stands
    (given before the subcommand, or DCII_PRIVACY_TIME_ZONE, or the default)."""
    command.add_argument(
        "--privacy-time-zone",
        type=_zone_name,
        default=argparse.SUPPRESS,
        metavar="ZONE",
        help="the privacy office's IANA time zone (as before the subcommand; default"
        f" {DEFAULT_TIME_ZONE}, or DCII_PRIVACY_TIME_ZONE)",
    )


def _register(args: argparse.Namespace) -> PrivacyRequests:
    """The data directory's register; a directory without one is a mistyped --data (the server makes the
    register at its start): refused, where it made an empty register and said nothing was overdue."""
    path = Path(args.data) / "privacy.db"
    if not path.is_file():
        raise SystemExit(f"dcii: no privacy register at {path}: is --data right? (the server makes it at its start)")
    return PrivacyRequests(path, time_zone=args.privacy_time_zone)


def _when(moment: dt.datetime | None) -> str:
    return "-" if moment is None else moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _day(moment: dt.datetime, zone: dt.tzinfo) -> str:
    """The office's calendar day of an instant: a deadline ends 23:59:59 office time, the next day in UTC."""
    return moment.astimezone(zone).strftime("%Y-%m-%d")


def cmd_notices_list(args: argparse.Namespace) -> None:
    register = _register(args)
    try:
        found = register.notices(unsent_only=args.unsent)
    finally:
        register.close()
    table = Table(title="Statements of dispute owed to earlier recipients")
    for header in ("notice id", "queued (UTC)", "recipient", "tracing", "statement at", "summary", "sent (UTC)"):
        table.add_column(header, overflow="fold")  # an official record: wrap, never elide
    for n in found:
        table.add_row(
            n.notice_id,
            _when(n.queued_at),
            n.recipient_activity,
            str(n.tracing),
            n.statement_location,
            n.summary or "-",
            _when(n.sent_at) if n.sent_at else "not sent",
        )
    console.print(MARKING, markup=False)
    console.print(table)
    console.print(f"{len(found)} {'unsent ' if args.unsent else ''}notices", markup=False)
    console.print(MARKING, markup=False)


_EVENTS = {
    "mark-sent": "DISPUTE_NOTICE_SENT",
    "acknowledge": "PRIVACY_REQUEST_ACKNOWLEDGED",
    "respond": "PRIVACY_REQUEST_ANSWERED",
    "withdraw": "PRIVACY_REQUEST_WITHDRAWN",
}


def _request_to_change(register: PrivacyRequests, action: str, subject: str) -> PrivacyRequest | None:
    """The registered request `action` is to change; None (said why) when there is nothing to record."""
    registered = register.request(subject)
    if registered is None:
        raise SystemExit(f"no privacy request {subject}")
    # The first acknowledgement and answer stand (the register keeps them): a second is recorded
    # nowhere, not as an event saying someone did it again at a time the register never held.
    done = registered.acknowledged_at if action == "acknowledge" else registered.responded_at
    if done is not None and action != "withdraw":
        verb = "acknowledged" if action == "acknowledge" else "answered"
        console.print(f"request {subject} was already {verb} {_when(done)} (UTC); nothing recorded", markup=False)
        return None
    if action == "respond" and registered.kind is RequestKind.ACCESS:
        # An access request is answered by the records themselves, whose answer closes it (and is accounted):
        # marked answered here, it showed the deadline met with no answer ever produced.
        raise SystemExit(
            f"dcii: request {subject} is an ACCESS request: the access answer closes it"
            " (PrivacyService/AnswerAccessRequest); `respond` records an amendment's decision"
        )
    return registered


def _run(action: str, args: argparse.Namespace) -> None:
    """One change to the register, recorded in the audit trail first: who acknowledged or answered a
    request, or sent a statement, and when, is the privacy office's record (an answer given over gRPC is
    recorded so already). A change the trail cannot record is not made."""
    register = _register(args)
    data = Path(args.data)
    try:
        subject = args.notice_id if action == "mark-sent" else args.request_number
        if action == "mark-sent":
            notice = next((n for n in register.notices(unsent_only=True) if n.notice_id == subject), None)
            if notice is None:  # unknown, or marked already: mark_sent says which, and nothing is recorded
                register.mark_sent(subject)
        else:
            registered = _request_to_change(register, action, subject)
            if registered is None:
                return
        audit = AuditLog(data / "audit.db", key=load_or_create_key(data / "audit.key"))
        try:
            field = "notice_id" if action == "mark-sent" else "request_number"
            detail = {field: subject}
            if action == "withdraw" and registered is not None:  # what went with it: gone from the register
                detail |= {"kind": registered.kind.value, "received_at": registered.received_at.isoformat()}
                detail["responded"] = "yes" if registered.responded_at else "no"
            audit.record_event(_EVENTS[action], console_actor(), detail)
        finally:
            audit.close()
        if action == "mark-sent":
            notice = register.mark_sent(args.notice_id)
            console.print(f"notice {notice.notice_id} to {notice.recipient_activity} marked sent", markup=False)
            return
        if action == "withdraw":
            register.withdraw(args.request_number)
            console.print(f"request {args.request_number} withdrawn from this instance's register", markup=False)
            return
        if action == "acknowledge":
            request = register.acknowledge(args.request_number)
        else:
            answered = register.respond(args.request_number)
            if answered is None:
                raise SystemExit(f"no privacy request {args.request_number}")
            request = answered
        done = request.acknowledged_at if action == "acknowledge" else request.responded_at
        verb = "acknowledged" if action == "acknowledge" else "answered"
        console.print(f"request {request.request_number} {verb} {_when(done)} (UTC)", markup=False)
    except DciiError as error:
        raise SystemExit(error.message) from error
    finally:
        register.close()


def cmd_notices_mark_sent(args: argparse.Namespace) -> None:
    _run("mark-sent", args)


def cmd_requests_acknowledge(args: argparse.Namespace) -> None:
    _run("acknowledge", args)


def cmd_requests_respond(args: argparse.Namespace) -> None:
    _run("respond", args)


def cmd_requests_withdraw(args: argparse.Namespace) -> None:
    _run("withdraw", args)


def _state(request: PrivacyRequest, now: dt.datetime) -> str:
    if request.overdue(now):
        return "OVERDUE"
    state = "answered" if request.responded_at else "open"
    late = request.late(now)
    return f"{state} (late: {', '.join(late)})" if late else state


def cmd_requests_list(args: argparse.Namespace) -> None:
    register = _register(args)
    try:
        found = register.list_requests(overdue_only=args.overdue, late_only=args.late)
    finally:
        register.close()
    now = dt.datetime.now(dt.UTC)
    zone = office_zone(args.privacy_time_zone)
    table = Table(title=f"Privacy Act requests (days in {zone.key}, times in UTC)")
    for header in ("request", "kind", "received", "acknowledge by", "acknowledged", "respond by", "responded", "state"):
        table.add_column(header, overflow="fold")
    for r in found:
        table.add_row(
            r.request_number,
            r.kind.value,
            _day(r.received_at, zone),
            _day(r.acknowledge_by, zone),
            _when(r.acknowledged_at),
            _day(r.respond_by, zone),
            _when(r.responded_at),
            _state(r, now),
        )
    console.print(table)
    which = "".join(word for word, asked in (("overdue ", args.overdue), ("late ", args.late)) if asked)
    console.print(f"{len(found)} {which}requests", markup=False)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser], data_default: str) -> None:
    privacy = commands.add_parser(
        "privacy",
        help="the privacy office: disputes, requests and their deadlines, access answers, notices",
        description="`dispute`, `open` and `access` run at the privacy office's terminal, over the wire (its"
        " profile); `notices` and `requests` on the server's machine, on the privacy register of --data."
        " --data and --privacy-time-zone are taken before or after the subcommand, as by `dcii accredit`.",
    )
    # Before the subcommand and after it (help_text.after_subcommand): `dcii privacy --data D requests list`
    # was an "invalid choice", where `dcii accredit --data D ...` and `dcii audit --data D ...` take it.
    data_help = f"the server's data directory, which holds privacy.db (notices, requests; default {data_default})"
    privacy.add_argument("--data", default=data_default, metavar="DIR", help=f"{data_help}; also after the subcommand")
    add_time_zone_option(privacy)
    data = after_subcommand("--data", f"{data_help}; also taken before the subcommand")
    kinds = privacy.add_subparsers(dest="privacy_kind", required=True)
    privacy_office.add_parsers(kinds, _time_zone_after)  # over the wire, from the office's terminal

    def leaf(parent: Subcommands, name: str, text: str, details: str = "") -> argparse.ArgumentParser:
        command = subcommand(parent, name, text, details, parents=[data])
        _time_zone_after(command)
        return command

    notices = subcommand(
        kinds,
        "notices",
        "the outbox of statements of dispute",
        "A statement of dispute filed on a record is owed to each earlier recipient of it: listed here until"
        " marked sent.",
    ).add_subparsers(dest="notices_command", required=True)
    listing = leaf(notices, "list", "queued notices (FOUO - privacy sensitive)", "A summary may describe the person.")
    listing.add_argument("--unsent", action="store_true", help="only notices not yet marked sent")
    listing.set_defaults(run=cmd_notices_list)
    sent = leaf(notices, "mark-sent", "record that a notice was delivered", "Recorded in the audit trail.")
    sent.add_argument("notice_id", help="the notice's id, as `notices list` shows it")
    sent.set_defaults(run=cmd_notices_mark_sent)

    requests = subcommand(
        kinds,
        "requests",
        "access and amendment requests",
        "Privacy Act requests with their 10 and 30 working-day deadlines, in the office's time zone.",
    ).add_subparsers(dest="requests_command", required=True)
    listed = leaf(requests, "list", "requests with their deadlines", "Days in the office's time zone, times in UTC.")
    listed.add_argument("--overdue", action="store_true", help="only requests with a duty past its deadline")
    listed.add_argument(
        "--late", action="store_true", help="only requests with a duty done past its deadline, or overdue (to report)"
    )
    listed.set_defaults(run=cmd_requests_list)
    for action, run, text in (
        ("acknowledge", cmd_requests_acknowledge, "record that a request was acknowledged"),
        (
            "respond",
            cmd_requests_respond,
            "record an AMENDMENT request's decision (an ACCESS request is closed by AnswerAccessRequest's answer)",
        ),
        ("withdraw", cmd_requests_withdraw, "take a request opened on two instances out of this one's register"),
    ):
        step = leaf(requests, action, text, "Recorded in the audit trail.")
        step.add_argument("request_number", help="the office's tracking number, as `requests list` shows it")
        step.set_defaults(run=run)


def main(argv: list[str] | None = None) -> None:
    """`python -m dcii.cli.privacy ...`: the `dcii privacy` commands on their own."""
    top = argparse.ArgumentParser(prog="dcii", description=__doc__)
    commands = top.add_subparsers(dest="command", required=True)
    add_parser(commands, DATA_DEFAULT)
    args = top.parse_args(["privacy", *(sys.argv[1:] if argv is None else argv)])
    with private_files():
        args.run(args)


if __name__ == "__main__":
    main()
