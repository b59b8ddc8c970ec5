"""`python -m connectors filedrop|fixedwidth|sql ...`: run a connector (docs/CONNECTORS.md)."""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import sys
from pathlib import Path

import grpc

from connectors.checkpoint import Checkpoint
from connectors.client import Profile, Session
from connectors.filedrop import TRACING_READERS, run_inbox
from connectors.fixedwidth import FIXED_WIDTH_READERS
from connectors.machinery import Backoff, Progress, Runner, StreamCutShort


def _positive_int(text: str) -> int:
    # `--chunk 0` would read nothing and move every file to done/; `--page 0` would query for ever.
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _positive_seconds(text: str) -> float:
    value = float(text)
    if not value > 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, not {text}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def _error(**fields: object) -> None:
    print(json.dumps({"event": "error", **fields}), file=sys.stderr, flush=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m connectors", description="push a repository's records to the index"
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--profile", help="profile JSON (or DCII_PROFILE)")
    common.add_argument("--state", required=True, help="folder for checkpoint.json and rejects.jsonl")
    common.add_argument("--once", action="store_true", help="process what is there now, then exit")
    common.add_argument("--poll", type=_positive_seconds, default=5.0, help="seconds between polls")
    common.add_argument("--chunk", type=_positive_int, default=500, help="records per Ingest stream")
    common.add_argument(
        "--timeout", type=_positive_seconds, default=120.0, help="deadline of one Ingest stream, seconds"
    )
    common.add_argument("--max-retries", type=_non_negative_int, default=30, help="retries in a row before giving up")
    common.add_argument("--log-every", type=_positive_int, default=1000, help="records between progress log lines")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, what in (("filedrop", "tracing files (*.csv, *.jsonl, *.ndjson)"), ("fixedwidth", "*.dat, *.txt")):
        command = commands.add_parser(name, parents=[common], help=f"an inbox folder of {what}")
        command.add_argument("--inbox", required=True, type=Path)
    sql = commands.add_parser("sql", parents=[common], help="a table polled by a change column")
    sql.add_argument("--dsn", required=True, help="an SQLite file, or a postgresql:// DSN")
    sql.add_argument("--table", required=True)
    sql.add_argument("--change-column", required=True, help="a sequence or an updated timestamp")
    sql.add_argument("--key-column", default="id", help="the primary key: orders rows with one change value")
    sql.add_argument("--deleted-column", default="deleted", help="true: the row is a DELETE (if the column exists)")
    sql.add_argument(
        "--map", action="append", default=[], metavar="COLUMN=DBCOLUMN", help="tracing column from DB column"
    )
    sql.add_argument("--page", type=_positive_int, default=1000, help="rows per query")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    chosen = args.profile or os.environ.get("DCII_PROFILE")
    if not chosen:
        raise SystemExit("no profile: pass --profile FILE or set DCII_PROFILE")
    profile = Profile.load(Path(chosen))
    state = Path(args.state)
    state.mkdir(mode=0o700, parents=True, exist_ok=True)  # checkpoints and refused records (PII)
    lock = (state / "lock").open("w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise SystemExit(f"another connector is running on {state}") from None
    try:
        runner = Runner(
            lambda: Session(profile),
            Checkpoint(state / "checkpoint.json"),
            state / "rejects.jsonl",
            Progress(args.command, every=args.log_every),
            chunk=args.chunk,
            timeout=args.timeout,
            backoff=Backoff(max_attempts=args.max_retries),
        )
    except (ValueError, TypeError, OSError) as error:  # a damaged or unreadable state folder: what to do
        _error(
            code="CHECKPOINT",
            type=type(error).__name__,
            details=f"{state}/checkpoint.json or rejects.jsonl cannot be read: restore the state folder from its"
            " backup, or delete checkpoint.json to push the source again from the start (CONNECTORS.md)",
        )
        raise SystemExit(2) from None
    try:
        if args.command == "sql":
            from connectors.sql import SqlSource, run_sql

            mapping = dict(item.split("=", 1) for item in args.map)
            source = SqlSource(
                args.dsn,
                args.table,
                args.change_column,
                key_column=args.key_column,
                deleted_column=args.deleted_column,
                mapping=mapping,
                page=args.page,
            )
            try:
                run_sql(source, runner, once=args.once, poll=args.poll)
            finally:
                source.close()
        else:
            readers = TRACING_READERS if args.command == "filedrop" else FIXED_WIDTH_READERS
            run_inbox(args.inbox, runner, readers, once=args.once, poll=args.poll)
    except grpc.RpcError as error:
        _error(code=error.code().name, details=error.details())
        raise SystemExit(2) from None
    except StreamCutShort:  # retried as UNAVAILABLE until --max-retries, then given up the same way
        _error(code="UNAVAILABLE", details="the index ended streams without answering every record")
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except Exception as error:  # its text could quote a row's values (PII): the type only
        _error(code="INTERNAL", type=type(error).__name__)
        raise SystemExit(1) from None
    finally:
        runner.close()


if __name__ == "__main__":
    main()
