"""`python -m connectors filedrop|fixedwidth|sql ...`: run a connector (docs/CONNECTORS.md).

The exit status tells a cron job (`--once`) what happened; polling mode ends only when stopped (SIGTERM:
the summary, then status 0) or when the index refuses the connector. Every status is in --help and in
CONNECTORS.md, "Exit status".
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import signal
import sys
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from types import FrameType
from typing import NoReturn, TextIO

import grpc

from connectors.checkpoint import Checkpoint, CheckpointError, utc_now
from connectors.client import Profile, Session
from connectors.filedrop import TRACING_READERS, run_inbox
from connectors.fixedwidth import FIXED_WIDTH_READERS
from connectors.machinery import Backoff, Progress, Runner, Stats, StreamCutShort
from connectors.progress import mask

EXIT_DEAD_LETTERS = 3
EXIT_FAILED_FILES = 4
EXIT_STATUSES = """\
exit status:
  0    everything read was taken (applied or unchanged); or stopped by SIGTERM in polling mode
  1    a configuration mistake, on one line naming it (the profile, --dsn, --table...); or a failure
       of the connector's own (error INTERNAL)
  2    an option is wrong (a usage line, then the option named); the index refused the connector (a
       login, a permission); --once gave up after --max-retries; or the state folder cannot be used
       (error CHECKPOINT)
  3    (--once) records went to the reject file: refused, not found, or a collision
  4    (--once) a file went to INBOX/failed/ (records may have gone to the reject file too)
  130  interrupted (Ctrl-C)

STATE holds checkpoint.json, the reject file rejects.jsonl (refused, not-found and colliding records,
each with its file, line, time and reasons; personal data: handle as the source) and last_run.json
(when the last run or file ended, with its counts and exit status). See docs/CONNECTORS.md."""


_locks: list[TextIO] = []  # the state folders' locks, held until the process ends


class _Stopped(BaseException):
    """SIGTERM (a service manager's stop): raised where the connector is, as Ctrl-C's KeyboardInterrupt is.
    Its checkpoint stands as after a kill; unlike a kill, the summary and last_run.json are written."""


def _stop(signum: int, frame: FrameType | None) -> NoReturn:
    raise _Stopped


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


def _inbox(text: str) -> Path:
    # A missing inbox ended the run as `INTERNAL FileNotFoundError`, naming neither the option nor the folder.
    path = Path(text)
    try:
        with os.scandir(path):
            pass
    except OSError as error:
        raise argparse.ArgumentTypeError(f"{text}: {error.strerror or type(error).__name__}") from None
    return path


def _mapping(text: str) -> tuple[str, str]:
    column, equals, db_column = text.partition("=")
    if not equals or not column.strip() or not db_column.strip():  # was `INTERNAL ValueError`
        raise argparse.ArgumentTypeError(f"{text!r} is not COLUMN=DBCOLUMN (a tracing column = a database column)")
    return column.strip(), db_column.strip()


def _error(**fields: object) -> None:
    safe = {k: mask(v) if isinstance(v, str) else v for k, v in fields.items()}  # as every log line
    print(json.dumps({"event": "error", **safe, "timestamp": utc_now()}), file=sys.stderr, flush=True)


def _parser() -> argparse.ArgumentParser:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="python -m connectors",
        description="push a repository's records to the index",
        epilog=EXIT_STATUSES,
        formatter_class=formatter,
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--profile", help="profile JSON (default: $DCII_PROFILE)")
    common.add_argument(
        "--state", required=True, help="the connector's own folder: checkpoint.json, rejects.jsonl, last_run.json"
    )
    common.add_argument("--once", action="store_true", help="process what is there now, then exit (a cron job)")
    common.add_argument(
        "--poll", type=_positive_seconds, default=5.0, help="seconds between polls (default: %(default)s)"
    )
    common.add_argument(
        "--chunk", type=_positive_int, default=500, help="records per Ingest stream (default: %(default)s)"
    )
    common.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=120.0,
        help="deadline of one Ingest stream, seconds (default: %(default)s)",
    )
    common.add_argument(
        "--max-retries",
        type=_non_negative_int,
        default=30,
        help="failures in a row before --once gives up; polling mode goes on retrying (default: %(default)s)",
    )
    common.add_argument(
        "--log-every",
        type=_positive_int,
        default=1000,
        help="records between progress log lines (default: %(default)s)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, what in (("filedrop", "tracing files (*.csv, *.jsonl, *.ndjson)"), ("fixedwidth", "*.dat, *.txt")):
        command = commands.add_parser(
            name, parents=[common], help=f"an inbox folder of {what}", epilog=EXIT_STATUSES, formatter_class=formatter
        )
        command.add_argument(
            "--inbox",
            required=True,
            type=_inbox,
            help=f"the folder {what} are moved into when complete; read ones go to INBOX/done/, unreadable ones"
            " to INBOX/failed/",
        )
    sql = commands.add_parser(
        "sql",
        parents=[common],
        help="a table polled by a change column",
        epilog=EXIT_STATUSES,
        formatter_class=formatter,
    )
    sql.add_argument("--dsn", required=True, help="an SQLite file (opened read-only), or a postgresql:// DSN")
    sql.add_argument("--table", required=True, help="the table (or schema.table) holding the tracings, one a row")
    sql.add_argument("--change-column", required=True, help="a sequence or an updated timestamp")
    sql.add_argument(
        "--key-column", default="id", help="the primary key: orders rows with one change value (default: %(default)s)"
    )
    sql.add_argument(
        "--deleted-column",
        default="deleted",
        help="true: the row is a DELETE (if the column exists) (default: %(default)s)",
    )
    sql.add_argument(
        "--map",
        action="append",
        default=[],
        type=_mapping,
        metavar="COLUMN=DBCOLUMN",
        help="a tracing column from a database column of another name (repeatable)",
    )
    sql.add_argument("--page", type=_positive_int, default=1000, help="rows per query (default: %(default)s)")
    sql.add_argument(
        "--version-offset",
        type=_non_negative_int,
        default=0,
        help="added to every source version, to store rows again after a --map fix; keep it (default: %(default)s)",
    )
    return parser


def _status(stats: Stats) -> int:
    """--once's exit status for a run that ended: what the operator must look at, the worse first."""
    if stats.files_failed:
        return EXIT_FAILED_FILES
    return EXIT_DEAD_LETTERS if stats.dead_letters else 0


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    chosen = args.profile or os.environ.get("DCII_PROFILE")
    if not chosen:
        raise SystemExit("no profile: pass --profile FILE or set DCII_PROFILE")
    runner = _runner(args, lambda: Session(profile))  # `profile` is loaded before any connection is made
    # After the state folder: a damaged one is named as such, whatever the profile holds.
    profile = Profile.load(Path(chosen))
    status = _run(args, runner)
    if status:
        raise SystemExit(status)


def _runner(args: argparse.Namespace, connect: Callable[[], Session]) -> Runner:
    """The runner on the state folder, locked for this process; a folder that cannot be used ends the run."""
    state = Path(args.state)
    try:
        state.mkdir(mode=0o700, parents=True, exist_ok=True)  # checkpoints and refused records (PII)
        lock = (state / "lock").open("w")
    except OSError as error:
        raise SystemExit(f"connector: --state {state}: {error.strerror or type(error).__name__}") from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        raise SystemExit(f"another connector is running on {state}") from None
    _locks.append(lock)  # a lock file closed (collected) would release the lock
    try:
        return Runner(
            connect,
            Checkpoint(state / "checkpoint.json", kind=args.command),
            state / "rejects.jsonl",
            Progress(args.command, every=args.log_every),
            chunk=args.chunk,
            timeout=args.timeout,
            backoff=Backoff(max_attempts=args.max_retries),
            forever=not args.once,
        )
    except (ValueError, TypeError, OSError) as error:  # a damaged or unreadable state folder: what to do
        why = f"{error}: " if isinstance(error, CheckpointError) else "cannot be read: "
        _error(
            code="CHECKPOINT",
            type=type(error).__name__,
            details=f"{state}/checkpoint.json or rejects.jsonl {why}restore the state folder from its backup, or"
            " delete checkpoint.json to push the source again from the start (CONNECTORS.md)",
        )
        raise SystemExit(2) from None


def _run(args: argparse.Namespace, runner: Runner) -> int:
    """Run the connector; its exit status. The summary and last_run.json are written however it ends."""
    status, stopped = 0, ""
    signal.signal(signal.SIGTERM, _stop)
    try:
        if args.command == "sql":
            _run_sql(args, runner)
        else:
            readers = TRACING_READERS if args.command == "filedrop" else FIXED_WIDTH_READERS
            run_inbox(args.inbox, runner, readers, once=args.once, poll=args.poll)
        status = _status(runner.stats) if args.once else 0
    except grpc.RpcError as error:
        _error(code=error.code().name, details=error.details())
        status = 2
    except StreamCutShort:  # retried as UNAVAILABLE until --max-retries, then given up the same way
        _error(code="UNAVAILABLE", details="the index ended streams without answering every record")
        status = 2
    except _Stopped:  # a clean stop: what was answered stands, the rest is read again at the next start
        stopped, status = "SIGTERM", _status(runner.stats) if args.once else 0
    except KeyboardInterrupt:
        stopped, status = "SIGINT", 130
    except SystemExit as exiting:  # a configuration mistake found on the way (one line): it says why
        status = exiting.code if isinstance(exiting.code, int) else 1
        raise
    except Exception as error:  # its text could quote a row's values (PII): the type only
        _error(code="INTERNAL", type=type(error).__name__)
        status = 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM does not cut the summary short
        extra: dict[str, object] = {"stopped": stopped} if stopped else {}
        runner.close(**extra, exit_status=status)
        with suppress(OSError):  # a full disk: the summary above said it all, and the status stands
            runner.write_last_run(running=False, **extra, exit_status=status)
    return status


def _run_sql(args: argparse.Namespace, runner: Runner) -> None:
    from connectors.sql import SqlSource, run_sql

    source = SqlSource(
        args.dsn,
        args.table,
        args.change_column,
        key_column=args.key_column,
        deleted_column=args.deleted_column,
        mapping=dict(args.map),
        page=args.page,
        version_offset=args.version_offset,
    )
    runner.source = args.table  # a reject entry names the table, and its row by (change value, key)
    written = [-1]

    def after_poll() -> None:  # a poll that moved nothing leaves last_run.json as the last one that did
        moved = runner.stats.records + runner.stats.retries
        if moved != written[0]:
            written[0] = moved
            runner.write_last_run(running=True)

    runner.after_run = after_poll
    try:
        run_sql(source, runner, once=args.once, poll=args.poll)
    finally:
        source.close()


if __name__ == "__main__":
    main()
