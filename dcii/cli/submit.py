"""`dcii submit FILE`: push a tracing file (docs/TRACING_FORMAT.md) through the Ingest stream.

Rows the file format or the index refuse are reported with their line and reasons (and written to
`--rejects FILE` to be fixed and resubmitted); they never stop the rows behind them. So is a DELETE or
COMPLETE naming a tracing the index does not hold (NOT_FOUND: likely a mistyped key). Exit status 1 when
any row was refused or not found, 2 when the index refused the whole submission, 3 when the stream ended
part-way (the server stopped or restarted: the rows answered stand, their rejects are written, and the
file can be submitted again whole, the rows already in answering UNCHANGED).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
from rich.console import Console

from dcii.cli.client import find_profile, session
from dcii.v1 import ingest_pb2, ingest_pb2_grpc
from indexer.fileformat import (
    SUFFIXES,
    ActionKind,
    FileAction,
    RowError,
    action_to_row,
    read_actions,
    reject_row,
    write_csv,
    write_jsonl,
)
from indexer.model import TracingType, Violation
from search_service.convert import tracing_out
from search_service.errors import field_violations


def to_request(action: FileAction) -> ingest_pb2.IngestRequest | RowError:
    """The wire request for a parsed row (or a refusal the file format can already tell)."""
    request = ingest_pb2.IngestRequest(request_id=str(action.line))
    tracing = action.tracing
    if action.kind is ActionKind.DELETE:
        request.delete.key.agency, request.delete.key.record_number = action.key.agency, action.key.record_number
        request.delete.source_version, request.delete.reason = action.source_version, action.delete_reason
        return request
    assert tracing is not None
    if action.kind is ActionKind.UPSERT:
        tracing_out(tracing, request.upsert, full_ssn=True)
        return request
    replaces = action.replaces
    assert replaces is not None
    if tracing.type is TracingType.FILE:
        completion = request.complete_open_case
        completion.open_case.agency, completion.open_case.record_number = replaces.agency, replaces.record_number
        tracing_out(tracing, completion.file, full_ssn=True)
    elif tracing.type is TracingType.NAC_HISTORY:
        nac = request.complete_nac_pending
        nac.nac_pending.agency, nac.nac_pending.record_number = replaces.agency, replaces.record_number
        tracing_out(tracing, nac.nac_history, full_ssn=True)
    else:
        why = "COMPLETE makes a FILE (replacing an open case) or a NAC_HISTORY (replacing a NAC pending)"
        return RowError(action.line, (Violation("type", why),), action_to_row(action))
    return request


def _not_found(action: FileAction) -> Violation:
    if action.kind is ActionKind.DELETE:
        return Violation("record_number", f"the index holds no tracing {action.key} to delete")
    return Violation("replaces_record_number", f"the index holds no live tracing {action.replaces} to complete")


# How a stream ends when the server goes away or stops (SIGTERM: its calls cancelled after 5 s): what it
# answered stands, and the file can be sent again whole.
_CUT = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED)


def _formats_or_exit(path: Path, rejects_file: str | None) -> None:
    """The file's and the reject file's formats, by extension, checked before anything is sent: a `.txt`
    was refused only once the stream had begun, as "UNKNOWN: Exception iterating requests!" (docs review 6)."""
    known = ", ".join(SUFFIXES)
    if path.suffix.lower() not in SUFFIXES:
        raise SystemExit(f"{path}: a tracing file ends in {known} (its format is read from the extension)")
    if rejects_file and Path(rejects_file).suffix.lower() not in SUFFIXES:
        raise SystemExit(f"--rejects {rejects_file}: a reject file ends in {known} (written in that format)")


def cmd_submit(args: argparse.Namespace) -> None:
    path = Path(args.file)
    _formats_or_exit(path, args.rejects)
    console = Console(stderr=True, markup=False)  # rows and reasons as they are, never markup
    counts: Counter[str] = Counter()
    rejects: list[dict[str, str]] = []
    sent: dict[str, FileAction] = {}
    answered = 0

    def refuse(error: RowError) -> None:
        counts["REJECTED"] += 1
        rejects.append(reject_row(error))
        reasons = "; ".join(f"{v.field}: {v.description}" for v in error.violations)
        console.print(f"line {error.line}: rejected: {reasons}")

    def requests() -> Iterator[ingest_pb2.IngestRequest]:
        for item in read_actions(path):
            request = item if isinstance(item, RowError) else to_request(item)
            if isinstance(request, RowError):
                refuse(request)
                continue
            assert isinstance(item, FileAction)
            sent[request.request_id] = item
            yield request

    profile = find_profile(args.profile)
    try:
        with session(profile) as (channel, metadata):
            for result in ingest_pb2_grpc.IngestServiceStub(channel).Ingest(requests(), metadata=metadata):
                outcome = ingest_pb2.IngestOutcome.Name(result.outcome).removeprefix("INGEST_OUTCOME_")
                action = sent.pop(result.request_id)
                answered += 1
                if outcome in ("REJECTED", "PERMISSION_DENIED"):
                    violations = tuple(Violation(v.field, v.description) for v in result.violations)
                    refuse(RowError(action.line, violations, action_to_row(action)))
                elif outcome == "NOT_FOUND":  # a typo in a key leaves the record it meant as it was: say where
                    counts[outcome] += 1
                    rejects.append(reject_row(RowError(action.line, (_not_found(action),), action_to_row(action))))
                    console.print(f"line {action.line}: not found: {_not_found(action).description}")
                else:
                    counts[outcome] += 1
    except grpc.RpcError as error:
        if not answered or error.code() not in _CUT:  # refused as such (login, role, a suspension meanwhile)
            if answered:
                _report(console, path, counts, rejects, args.rejects)  # what it answered before stands
            print(f"refused: {error.code().name}: {error.details()}", file=sys.stderr)
            for field, why in field_violations(error):
                print(f"  {field}: {why}", file=sys.stderr)
            raise SystemExit(2) from None
        # Cut off part-way (the server stopped or restarted): what was answered stands, and its rejects are
        # written; the rest was not answered. A replay of the whole file is safe (UNCHANGED where it went in).
        _report(console, path, counts, rejects, args.rejects)
        print(
            f"the stream ended ({error.code().name}) after {answered} rows were answered: submit the"
            " file again for the rest (rows already in answer unchanged)",
            file=sys.stderr,
        )
        raise SystemExit(3) from None
    _report(console, path, counts, rejects, args.rejects)
    if counts["REJECTED"] or counts["NOT_FOUND"]:
        raise SystemExit(1)


def _report(
    console: Console, path: Path, counts: Counter[str], rejects: list[dict[str, str]], rejects_file: str | None
) -> None:
    if rejects_file and rejects:  # in the format its extension names: a `.jsonl` one was CSV inside
        if SUFFIXES[Path(rejects_file).suffix.lower()] == "jsonl":
            write_jsonl(rejects, Path(rejects_file))
        else:
            columns = list(dict.fromkeys(column for row in rejects for column in row))
            write_csv(rejects, Path(rejects_file), columns=columns)
        console.print(f"{len(rejects)} rejected rows written to {rejects_file}")
    summary = ", ".join(f"{n} {k.lower()}" for k, n in sorted(counts.items())) or "nothing to send"
    console.print(f"{path.name}: {summary}")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    submit = commands.add_parser("submit", help="push a tracing file (CSV or JSONL) to the index")
    submit.add_argument("file")
    submit.add_argument("--profile")
    submit.add_argument(
        "--rejects", help="write refused rows with their reasons to this file (.csv or .jsonl: the format it names)"
    )
    submit.set_defaults(run=cmd_submit)
