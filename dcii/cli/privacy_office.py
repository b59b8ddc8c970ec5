"""`dcii privacy dispute|open|access`: the privacy office's duties from its own terminal, over the PrivacyService
(role PRIVACY_OFFICER, purpose PRIVACY_ACT_REQUEST), with a profile as `dcii search` takes one.

    dcii privacy dispute AGENCY RECORD --statement-location L [--summary S]   # file a statement of dispute
    dcii privacy open NUMBER --kind access|amendment --received 2026-11-20     # register a request
    dcii privacy access NUMBER --surname S --given G --ssn N [--json]          # answer an access request

Until these, the office needed a gRPC client of its own for each (a privacy officer's review): the commands
beside them (`notices`, `requests`) work on the server's machine, on its data directory. `access` prints the
person's records (every tracing with the SSN, under whatever name, then those filed under exactly the name
without any SSN, to be judged before anything goes to the person) and the accounting of their disclosures,
every page of it, marked FOUO; the answer is recorded and accounted by the index. Each record says how the
name asked agrees with its names; when it agrees with none of them (or only in part), a line before the
records says to check the requester's identity before release.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf import json_format
from rich.console import Console
from rich.table import Table
from rich.text import Text

from dcii.cli.client import Metadata, find_profile, session
from dcii.cli.help_text import subcommand
from dcii.v1 import privacy_pb2, privacy_pb2_grpc, search_pb2, tracing_pb2
from indexer.model import PartialDate
from search_service.errors import field_violations
from search_service.privacy_days import office_zone

MARKING = "FOR OFFICIAL USE ONLY - PRIVACY SENSITIVE"
CHECK = "check the requester's identity before release"
KINDS = {"access": privacy_pb2.PRIVACY_REQUEST_KIND_ACCESS, "amendment": privacy_pb2.PRIVACY_REQUEST_KIND_AMENDMENT}
Call = Callable[[privacy_pb2_grpc.PrivacyServiceStub, Metadata], Any]


def _call(args: argparse.Namespace, call: Call) -> Any:
    """One call to the PrivacyService; a refusal is one line, with each field's reason (exit 2)."""
    try:
        with session(find_profile(args.profile)) as (channel, metadata):
            return call(privacy_pb2_grpc.PrivacyServiceStub(channel), metadata)
    except grpc.RpcError as error:
        print(f"refused: {error.code().name}: {error.details()}", file=sys.stderr)
        for field, why in field_violations(error):
            print(f"  {field}: {why}", file=sys.stderr)
        raise SystemExit(2) from None


def _when(stamp: Any) -> str:
    return stamp.ToDatetime(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if stamp.seconds else "-"


def cmd_dispute(args: argparse.Namespace) -> None:
    request = privacy_pb2.FileDisputeRequest(
        tracing=tracing_pb2.TracingKey(agency=args.agency, record_number=args.record),
        statement_location=args.statement_location,
        summary=args.summary or "",
    )
    filed = _call(args, lambda stub, metadata: stub.FileDispute(request, metadata=metadata, timeout=30))
    print(MARKING)
    print(f"dispute {filed.dispute.dispute_id} filed on {args.agency}/{args.record}")
    if filed.replaced_dispute_id:
        print(f"it replaces dispute {filed.replaced_dispute_id} (the audit trail keeps both)")
    print(f"notices queued for {filed.notices_queued} earlier recipients (dcii privacy notices list --unsent)")
    print(MARKING)


def _received(text: str, zone: str) -> dt.datetime:
    """A day (its start in the office's time zone: the deadlines count the office's working days) or an ISO
    moment with its offset."""
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise SystemExit(f"--received: {text!r} is not YYYY-MM-DD or an ISO date and time") from None
    if moment.tzinfo is None:
        if len(text) > 10:
            raise SystemExit("--received: a date and time needs its offset (2026-11-20T14:00:00-05:00)")
        moment = moment.replace(tzinfo=office_zone(zone))
    return moment


def cmd_open(args: argparse.Namespace) -> None:
    request = privacy_pb2.PrivacyRequest(request_number=args.request_number, kind=KINDS[args.kind])
    request.received_at.FromDatetime(_received(args.received, args.privacy_time_zone).astimezone(dt.UTC))
    opened = _call(args, lambda stub, metadata: stub.OpenPrivacyRequest(request, metadata=metadata, timeout=30))
    print(f"request {opened.request_number} ({args.kind}) received {_when(opened.received_at)}:")
    print(f"  acknowledge by {_when(opened.acknowledge_by)}, answer by {_when(opened.respond_by)}")


def cmd_access(args: argparse.Namespace) -> None:
    request = privacy_pb2.AccessRequest(
        request_number=args.request_number,
        name=tracing_pb2.PersonName(surname=args.surname or "", given_name=args.given or ""),
        ssn=args.ssn,
        withhold_law_enforcement=args.withhold_law_enforcement,
    )

    def every_page(stub: privacy_pb2_grpc.PrivacyServiceStub, metadata: Metadata) -> privacy_pb2.AccessResponse:
        answer = stub.AnswerAccessRequest(request, metadata=metadata, timeout=60)
        page = answer
        while page.next_page_token:  # the records come with the first page; later pages hold disclosures
            request.page_token = page.next_page_token
            page = stub.AnswerAccessRequest(request, metadata=metadata, timeout=60)
            answer.disclosures.extend(page.disclosures)
        answer.next_page_token = ""
        return answer

    answer = _call(args, every_page)
    if args.json:
        print(json.dumps(json_format.MessageToDict(answer, preserving_proto_field_name=True), indent=2))
        return
    _print_answer(answer)


def _name_asked(hit: Any) -> tuple[int, str]:
    """How the name asked compares with the record's names (search_service.privacy_names): the agreement
    and the cell that says it (nothing from a server that did not say)."""
    for feature in hit.explanation.features:
        if feature.feature == "name":
            exact = feature.agreement == search_pb2.AGREEMENT_EXACT
            return feature.agreement, hit.explanation.matched_name if exact else feature.detail
    return search_pb2.AGREEMENT_UNSPECIFIED, ""


def _records(title: str, hits: Any) -> Table:
    table = Table(title=title)
    for header in ("type", "agency / record", "name", "name asked", "ssn", "born", "disputed"):
        table.add_column(header, overflow="fold")  # an official record: wrap, never elide
    for hit in hits:
        subject = hit.tracing.subject
        name = " ".join(p for p in (subject.name.given_name, subject.name.middle_name, subject.name.surname) if p)
        dob = subject.identifiers.date_of_birth
        born = PartialDate(dob.year, dob.month, dob.day).iso() if dob.year else ""
        cells = (
            tracing_pb2.TracingType.Name(hit.type).removeprefix("TRACING_TYPE_"),
            f"{hit.tracing.key.agency}/{hit.tracing.key.record_number}",
            name,
            _name_asked(hit)[1],
            subject.identifiers.ssn,
            born,
            hit.dispute.statement_location if hit.HasField("dispute") else "",
        )
        table.add_row(*(Text(cell) for cell in cells))
    return table


def _print_answer(answer: privacy_pb2.AccessResponse) -> None:
    console = Console() if Console().is_terminal else Console(width=240)
    console.print(Text(MARKING, style="bold"))
    # Found by the SSN under any name (a name changed, an alias): a wrong name gets the SSN holder's records,
    # so before they go to the requester the office checks who asked (a privacy officer's acceptance test).
    agreed = {_name_asked(hit)[0] for hit in answer.tracings}
    if agreed == {search_pb2.AGREEMENT_DISAGREE}:
        console.print(Text(f"the name asked agrees with none of these records: {CHECK}", style="bold"))
    elif agreed and search_pb2.AGREEMENT_EXACT not in agreed and search_pb2.AGREEMENT_PARTIAL in agreed:
        console.print(Text(f"the name asked agrees with these records in part only: {CHECK}", style="bold"))
    console.print(_records(f"Records with the SSN asked ({len(answer.tracings)})", answer.tracings))
    if answer.unverified:
        title = f"Filed under the name asked, with no SSN: judge before release ({len(answer.unverified)})"
        console.print(_records(title, answer.unverified))
    table = Table(title=f"Accounting of disclosures ({len(answer.disclosures)})")
    for header in ("date (UTC)", "tracing", "method", "purpose", "recipient activity", "operator", "law enf."):
        table.add_column(header, overflow="fold")
    for d in answer.disclosures:
        purpose = search_pb2.Purpose.Name(d.purpose).removeprefix("PURPOSE_")
        law = "yes" if d.law_enforcement else ""
        cells = (_when(d.disclosed_at), f"{d.tracing.agency}/{d.tracing.record_number}", d.method, purpose)
        table.add_row(*(Text(cell) for cell in (*cells, d.recipient_activity, d.recipient_operator, law)))
    console.print(table)
    console.print(Text(MARKING, style="bold"))


def add_parsers(kinds: argparse._SubParsersAction[argparse.ArgumentParser], time_zone_option: Any) -> None:
    """The three commands, under `dcii privacy`; `time_zone_option` adds `--privacy-time-zone`."""
    dispute = subcommand(
        kinds,
        "dispute",
        "file a statement of dispute on a tracing (over the wire)",
        "The record is shown disputed from then on, and a notice is queued for each activity it was disclosed to"
        " before (`dcii privacy notices list`).",
    )
    dispute.add_argument("agency", help="the owning agency's code")
    dispute.add_argument("record", help="the agency's record number")
    dispute.add_argument("--statement-location", required=True, help="where the statement can be read")
    dispute.add_argument("--summary", help="a summary shown with the record (it may describe the person)")
    dispute.set_defaults(run=cmd_dispute)
    opened = subcommand(
        kinds,
        "open",
        "register an access or amendment request (over the wire)",
        "Its deadlines (10 working days to acknowledge, 30 to answer) count from the day received.",
    )
    opened.add_argument("request_number", help="the office's tracking number (never an SSN)")
    opened.add_argument("--kind", required=True, choices=sorted(KINDS), help="what the person asks for")
    opened.add_argument("--received", required=True, help="YYYY-MM-DD (the office's day) or ISO date, time, offset")
    time_zone_option(opened)
    opened.set_defaults(run=cmd_open)
    access = subcommand(
        kinds,
        "access",
        "answer an access request: the records and their accounting",
        "The person's records and the accounting of their disclosures, marked FOUO; it warns when the name asked"
        " agrees with none of the records. The answer is recorded and accounted, and closes the request.",
    )
    access.add_argument("request_number", help="the open ACCESS request it answers")
    access.add_argument("--surname", help="the person's surname, as the request gives it")
    access.add_argument("--given", help="the person's given name")
    access.add_argument("--ssn", required=True, help="the person's SSN: their records are found by it under any name")
    access.add_argument("--withhold-law-enforcement", action="store_true", help="5 U.S.C. 552a(c)(3)")
    access.add_argument("--json", action="store_true", help="the answer as JSON instead of tables")
    access.set_defaults(run=cmd_access)
    for command in (dispute, opened, access):
        command.add_argument("--profile", help="the privacy office terminal's profile (default: DCII_PROFILE)")
