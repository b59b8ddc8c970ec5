"""`dcii batch`: submit a CSV of queries, follow its progress, fetch its results as JSON lines.

    dcii batch submit queries.csv --out results.jsonl [--label L]   # submit, wait, write results
    dcii batch status ID | dcii batch cancel ID | dcii batch results ID --out results.jsonl

The CSV has a header row with the columns query_id, surname, given_name, middle_name, suffix, ssn,
date_of_birth (YYYY, YYYY-MM or YYYY-MM-DD), place_of_birth (US-VA, DE, or with a city: US-VA/Norfolk),
mode (EXACT, NAME_ONLY, NONSTANDARD, FUZZY, PID_QUALIFIED) and purpose (e.g. SECURITY_CLEARANCE), in any
case and order; only query_id is required, and a blank cell means absent, but every query states its purpose:
a blank purpose cell (or no such column) takes `--purpose`, else the profile's "purpose", else nothing is sent.
It is UTF-8 text (a spreadsheet's "CSV UTF-8"); empty columns at the header's end and rows of empty cells
are passed over. A cell this command cannot read (an unknown mode, a malformed date, a blank query_id) stops
it before anything is sent, with every such problem named by line; what the index refuses is reported per
query in the results. At most 100,000 queries (64 MiB) in one batch, each at most 8 KiB (a larger one is
refused alone).

The results file holds one JSON object per line and nothing else: query_id, hits (agency,
record_number, type, score, explanation, tracing (the record disclosed, as `dcii search --json` shows
it), and dispute {dispute_id, statement_location, summary} when the record is disputed; each hit says how
its record stands when the results are fetched: disputed since, it says so; written again since (a
correction), changed_since is true and the hit is as the batch answered it (search online for the record as
it stands); a record deleted since the batch ran is left out), marking ("FOR OFFICIAL USE ONLY - PRIVACY
SENSITIVE", on every line that has hits:
there is no header line, so each disclosing line marks itself), next_page_token when the query has more
hits than its page held (ask the same query online with it), candidates_truncated when the index had to
cut the candidate set short, threshold for a ranked query (the score its hits stop at), and, for a
refused query, violations. It is written with mode 0600: each
hit is a disclosure, accounted by the index to the operator who submitted the batch: only that operator
may fetch its results (`status` and `cancel` work for any operator of the activity). The lines go first to
OUT.partial, created afresh (never through an existing file or symlink: one there is refused), then renamed
to OUT.

While `submit` waits, a server that cannot be reached (a restart) is tried again for up to `--retry-for`
seconds (default 600), and a session that ended (8 hours passed; the activity suspended and reinstated) is
logged in again. If it still loses the server, the batch goes on: it says so in one line, with the commands
that fetch the status and results later, and exits 1. `results` of a batch that is not DONE (running,
cancelled, or failed: the status says why) writes what was answered and exits 1, saying how much that is.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import json_format
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from dcii.cli.batch_csv import SHOWN, read_queries_and_lines
from dcii.cli.client import Link, Metadata, find_profile, lasting_session, session
from dcii.cli.query import PURPOSES, _one_of
from dcii.v1 import batch_pb2, batch_pb2_grpc, search_pb2, tracing_pb2
from search_service.errors import field_violations

MARKING = "FOR OFFICIAL USE ONLY - PRIVACY SENSITIVE"
CHUNK = 1000  # queries per streamed message
_ACTIVE = (batch_pb2.BATCH_STATE_QUEUED, batch_pb2.BATCH_STATE_RUNNING)


def _state(status: batch_pb2.BatchStatus) -> str:
    """The state's name, with the reason a CANCELLED or FAILED batch stopped."""
    name = batch_pb2.BatchState.Name(status.state).removeprefix("BATCH_STATE_")
    return f"{name} ({status.reason})" if status.reason else name


def _messages(queries: list[batch_pb2.BatchQuery], label: str) -> Iterator[batch_pb2.SubmitBatchRequest]:
    for start in range(0, len(queries), CHUNK):
        yield batch_pb2.SubmitBatchRequest(label=label if start == 0 else "", queries=queries[start : start + CHUNK])


def _hit_line(hit: search_pb2.Hit) -> dict[str, Any]:
    line: dict[str, Any] = {
        "agency": hit.tracing.key.agency,
        "record_number": hit.tracing.key.record_number,
        "type": tracing_pb2.TracingType.Name(hit.type).removeprefix("TRACING_TYPE_"),
        "score": hit.score,
        "explanation": json_format.MessageToDict(hit.explanation, preserving_proto_field_name=True),
        # The record as disclosed, as `dcii search --json` shows it: whom the hit is about and what it holds.
        "tracing": json_format.MessageToDict(hit.tracing, preserving_proto_field_name=True),
    }
    if hit.changed_since:  # written again since the batch answered: search online for it as it stands
        line["changed_since"] = True
    if hit.dispute.dispute_id:  # a statement of dispute goes wherever the record is disclosed (seed 004)
        dispute = hit.dispute
        line["dispute"] = {
            "dispute_id": dispute.dispute_id,
            "statement_location": dispute.statement_location,
            "summary": dispute.summary,
        }
    return line


def result_line(result: batch_pb2.BatchQueryResult) -> dict[str, Any]:
    line: dict[str, Any] = {"query_id": result.query_id, "hits": [_hit_line(hit) for hit in result.hits]}
    # Every line that discloses carries the FOUO marking, so that the file marks itself wherever it goes. A
    # result stored by a server that did not yet set it (results are kept for days) is marked here.
    marking = result.marking or (MARKING if result.hits else "")
    if marking:
        line["marking"] = marking
    if result.next_page_token:  # more hits than one page: ask online with this token for the rest
        line["next_page_token"] = result.next_page_token
    if result.candidates_truncated:
        line["candidates_truncated"] = True
    if result.threshold:  # a ranked query: the score its hits stop at
        line["threshold"] = result.threshold
    if result.best_below_threshold:  # and the best under it: a query with no hit is not a clean check then
        line["best_below_threshold"] = result.best_below_threshold
    if result.matcher_version:  # a ranked query's scorer: a batch running at an upgrade may hold two
        line["matcher_version"] = result.matcher_version
    if result.violations:
        line["violations"] = [{"field": v.field, "description": v.description} for v in result.violations]
    return line


def partial_path(out: Path) -> Path:
    return out.with_name(out.name + ".partial")


def _partial_exists(partial: Path) -> SystemExit:
    return SystemExit(
        f"{partial} already exists (another run writing it, or one that stopped, or a file planted there):"
        " nothing was written; check it, remove it, then run again"
    )


def write_results(results: Iterable[batch_pb2.BatchQueryResult], out: Path) -> tuple[int, int]:
    """Write the JSON lines (mode 0600, whole or not at all); (queries, hits) written."""
    partial = partial_path(out)
    # Created here or not at all: an existing file (or a symlink, even a dangling one) at that name, e.g.
    # planted in a shared directory, would otherwise receive the disclosed records with its own owner and mode.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(partial, flags, 0o600)
    except FileExistsError:
        raise _partial_exists(partial) from None
    queries = hits = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            for result in results:
                handle.write(json.dumps(result_line(result), separators=(",", ":")) + "\n")
                queries, hits = queries + 1, hits + len(result.hits)
        partial.replace(out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return queries, hits


def _fetch(stub: batch_pb2_grpc.BatchServiceStub, metadata: Metadata, batch_id: str, out: Path) -> None:
    stream = stub.StreamBatchResults(batch_pb2.GetBatchRequest(batch_id=batch_id), metadata=metadata)
    queries, hits = write_results(stream, out)
    print(f"{queries} results ({hits} hits) written to {out}")
    if queries:
        print(MARKING)


def _wait(
    stub: batch_pb2_grpc.BatchServiceStub, link: Link, status: batch_pb2.BatchStatus, poll: float
) -> batch_pb2.BatchStatus:
    console = Console(stderr=True, markup=False)  # rows and reasons as they are, never markup
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    request = batch_pb2.GetBatchRequest(batch_id=status.batch_id)
    with Progress(*columns, console=console, transient=not console.is_terminal) as progress:
        task = progress.add_task(f"batch {status.batch_id}", total=status.total, completed=status.done)
        while status.state in _ACTIVE:
            time.sleep(poll)
            status = link.call(lambda metadata: stub.GetBatchStatus(request, metadata=metadata, timeout=30))
            progress.update(task, completed=status.done, description=f"batch {status.batch_id} {_state(status)}")
    return status


def _refused(error: grpc.RpcError, lines: Sequence[int] = ()) -> SystemExit:
    """The server's refusal; with `lines` (the CSV's line of each query), each query's violation names its line."""
    print(f"refused: {error.code().name}: {error.details()}", file=sys.stderr)
    for field, why in field_violations(error)[:SHOWN]:
        found = re.match(r"queries\[(\d+)\]", field)
        index = int(found.group(1)) if found else -1
        where = f"line {lines[index]}: " if 0 <= index < len(lines) else ""
        print(f"  {where}{field}: {why}", file=sys.stderr)
    return SystemExit(2)


def _lost(error: grpc.RpcError, batch_id: str, out: Path) -> SystemExit:
    """One line instead of a traceback: the batch goes on in the server, and how to reach it later."""
    code = error.code().name if error.code() is not None else "UNKNOWN"
    print(
        f"\nbatch {batch_id}: lost the server ({code}); the batch goes on in it; later:"
        f" dcii batch status {batch_id} | dcii batch results {batch_id} --out {out}",
        file=sys.stderr,
    )
    return SystemExit(1)


def cmd_submit(args: argparse.Namespace) -> None:
    queries, lines = read_queries_and_lines(Path(args.file))
    profile = find_profile(args.profile)
    _state_purposes(Path(args.file), queries, lines, args.purpose or profile.purpose)
    out = Path(args.out)
    if os.path.lexists(partial_path(out)):  # refused now, not after a wait of hours (write_results checks again)
        raise _partial_exists(partial_path(out))
    with lasting_session(profile, args.retry_for) as link:
        stub = batch_pb2_grpc.BatchServiceStub(link.channel)
        try:  # not repeated: a submission cut short may have been queued, and a second would answer it twice
            status = stub.SubmitBatch(_messages(queries, args.label or Path(args.file).name), metadata=link.metadata)
        except grpc.RpcError as error:
            raise _refused(error, lines) from None
        print(f"batch {status.batch_id} queued: {status.total} queries ({status.rejected} refused)", file=sys.stderr)
        batch_id = status.batch_id
        try:
            status = _wait(stub, link, status, args.poll)
            if status.state != batch_pb2.BATCH_STATE_DONE:
                raise SystemExit(f"batch {batch_id} ended {_state(status)}: {status.done} of {status.total} answered")
            link.call(lambda metadata: _fetch(stub, metadata, batch_id, out))  # a cut stream leaves no partial
        except KeyboardInterrupt:
            print(f"\nthe batch goes on; later: dcii batch results {batch_id} --out {out}", file=sys.stderr)
            raise SystemExit(130) from None
        except grpc.RpcError as error:  # the server restarted or went away, the session expired, ...
            raise _lost(error, batch_id, out) from None


def _state_purposes(path: Path, queries: list[batch_pb2.BatchQuery], lines: list[int], default: str) -> None:
    """Every query states why it is asked (the accounting records it): a blank purpose cell takes `default`
    (--purpose, or the profile's); with none, nothing is sent. A file without the column was sent, every query
    refused by the index, and the command ended 0 (an adjudicator's review)."""
    unstated = [line for query, line in zip(queries, lines, strict=True) if not query.query.purpose]
    if not unstated:
        return
    if not default:
        shown = ", ".join(str(line) for line in unstated[:SHOWN]) + (" ..." if len(unstated) > SHOWN else "")
        raise SystemExit(
            f"{path}: nothing was sent; no purpose on line(s) {shown}: fill the purpose column, or give --purpose"
            f" for the rows that leave it blank (one of {', '.join(PURPOSES)})"
        )
    if default.lower().replace("-", "_") not in PURPOSES:
        raise SystemExit(f"purpose {default!r}: one of {', '.join(PURPOSES)}")
    stated = search_pb2.Purpose.Value("PURPOSE_" + default.upper().replace("-", "_"))
    for query in queries:
        if not query.query.purpose:
            query.query.purpose = stated


def _one(args: argparse.Namespace, action: str) -> None:
    with session(find_profile(args.profile)) as (channel, metadata):
        stub = batch_pb2_grpc.BatchServiceStub(channel)
        request = batch_pb2.GetBatchRequest(batch_id=args.batch_id)
        try:
            if action == "results":
                status = stub.GetBatchStatus(request, metadata=metadata, timeout=30)  # before: it may finish
                _fetch(stub, metadata, args.batch_id, Path(args.out))
                if status.state != batch_pb2.BATCH_STATE_DONE:  # a script must not take part for the whole
                    raise SystemExit(
                        f"batch {status.batch_id} is {_state(status)}: the results hold the {status.done}"
                        f" of {status.total} queries answered"
                    )
                return
            call = stub.CancelBatch if action == "cancel" else stub.GetBatchStatus
            status = call(request, metadata=metadata, timeout=30)
        except grpc.RpcError as error:
            raise _refused(error) from None
    print(
        f"batch {status.batch_id} {_state(status)}: {status.done} of {status.total} answered, "
        f"{status.rejected} refused; label {status.label!r}{_kept(status)}"
    )


def _kept(status: batch_pb2.BatchStatus) -> str:
    """Until when a finished batch's results can be fetched (the server purges them after)."""
    if not status.HasField("purge_after"):
        return ""
    until = status.purge_after.ToDatetime().strftime("%Y-%m-%d %H:%M UTC")
    return f"; results kept until {until}"


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    batch = commands.add_parser("batch", help="batch requests: submit a CSV of queries, follow it, fetch results")
    actions = batch.add_subparsers(dest="action", required=True)
    submit = actions.add_parser("submit", help="submit a CSV of queries (at most 100,000), wait, write results")
    submit.add_argument("file", help="CSV: query_id, surname, given_name, ..., mode, purpose")
    submit.add_argument("--out", required=True, help="results, one JSON line per query")
    submit.add_argument("--label", help="shown in the batch's status (default: the file's name)")
    submit.add_argument(
        "--purpose",
        type=_one_of(PURPOSES, "purpose"),
        help="why the rows that leave the purpose cell blank are asked (default: the profile's purpose)",
    )
    submit.add_argument("--poll", type=float, default=1.0, help="seconds between status checks")
    submit.add_argument(
        "--retry-for",
        type=float,
        default=600.0,
        metavar="S",
        help="seconds to keep trying while the server cannot be reached (a restart), default 600;"
        " an ended session is logged in again",
    )
    submit.set_defaults(run=cmd_submit)
    for action, text in (("status", "a batch's progress"), ("cancel", "stop a batch"), ("results", "fetch results")):
        sub = actions.add_parser(action, help=text)
        sub.add_argument("batch_id")
        if action == "results":
            sub.add_argument("--out", required=True, help="results, one JSON line per query")
        sub.set_defaults(run=lambda args, action=action: _one(args, action))
    for sub in actions.choices.values():
        sub.add_argument("--profile", help="client profile (default: DCII_PROFILE)")
