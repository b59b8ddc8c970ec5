"""`dcii retention run`: remove the NAC histories 15 years past their completion (indexer.retention).

Opens `<data>/index.db` directly, on the server's machine. It may run beside a live server: each
process has its own single writer and SQLite's file lock (busy_timeout 30 s) takes their short
transactions in turn, so ingest waits at most for one retention batch and nothing is lost. The server
also runs retention on its own schedule; this command is for an administrator who wants it now, or a
dry run (`--dry-run`) of what would go. `--today` sets the day the run acts as of (default: the day that
has begun everywhere, the date at UTC-12, as the server's runs: indexer.retention.retention_today); a day
after that only with `--dry-run` (to see what will go then). Its deletions are logged with the actor
"retention cli:<OS user>": who ran it at the console (the server's own runs: "retention").
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from rich.console import Console
from rich.table import Table

from dcii.cli.admin import console_actor
from dcii.cli.private import private_files
from indexer.retention import RETENTION_ACTOR, RETENTION_YEARS, RetentionItem, retention_today, run_retention
from indexer.store.factory import open_store

MARKING = "FOR OFFICIAL USE ONLY - PRIVACY SENSITIVE"
DATA_DEFAULT = "var/data"

console = Console(soft_wrap=True, highlight=False, markup=False)  # the data as it is, never markup


def _day(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from error


def _print(items: list[RetentionItem], today: dt.date, *, dry_run: bool) -> None:
    verb = "due for retention" if dry_run else "removed by retention"
    table = Table(title=f"NAC histories {verb} on {today.isoformat()} ({RETENTION_YEARS} years after completion)")
    for header in ("key", "type", "completed_on", "due_on"):
        table.add_column(header, overflow="fold")  # an official record: wrap, never elide
    for item in items:
        table.add_row(str(item.key), item.type.value, item.completed_on.iso(), item.due_on.isoformat())
    console.print(MARKING, markup=False)
    console.print(table)
    console.print(MARKING, markup=False)
    if dry_run:
        console.print(f"{len(items)} would be removed; dry run: nothing removed", markup=False)
    else:
        console.print(f"{len(items)} removed", markup=False)


def cmd_run(args: argparse.Namespace) -> None:
    path = Path(args.data) / "index.db"
    if args.store is None and not path.is_file():
        raise SystemExit(f"no index at {path}")
    real_today = retention_today()
    today: dt.date = args.today or real_today
    if today > real_today and not args.dry_run:
        # A typo (2099 for 2029) or a wrong clock would remove histories years early, each logged as due.
        raise SystemExit(
            f"--today {today.isoformat()} is after today ({real_today.isoformat()}): only a --dry-run may look ahead"
        )
    store = open_store(args.store or path, read_only=args.dry_run)  # a dry run changes no byte of the file
    try:
        items = run_retention(store, today, dry_run=args.dry_run, actor=f"{RETENTION_ACTOR} {console_actor()}")
    finally:
        store.close()
    _print(items, today, dry_run=args.dry_run)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser], data_default: str) -> None:
    retention = commands.add_parser("retention", help="remove NAC histories 15 years after completion")
    sub = retention.add_subparsers(dest="retention_command", required=True)
    run = sub.add_parser("run", help="run retention now (or list what would go, with --dry-run)")
    run.add_argument("--data", default=data_default, help="the server's data directory (index.db)")
    run.add_argument("--store", help="a store URL (opensearch+https://...) instead of the embedded store in --data")
    run.add_argument("--dry-run", action="store_true", help="list what would be removed; remove nothing")
    run.add_argument(
        "--today", type=_day, default=None, metavar="YYYY-MM-DD", help="act as of this day (later: --dry-run only)"
    )
    run.set_defaults(run=cmd_run)


def main(argv: list[str] | None = None) -> None:
    """`python -m dcii.cli.retention retention run ...`: the same command on its own."""
    top = argparse.ArgumentParser(prog="dcii")
    add_parser(top.add_subparsers(dest="command", required=True), DATA_DEFAULT)
    args = top.parse_args(argv)
    with private_files():
        args.run(args)


if __name__ == "__main__":
    main()
