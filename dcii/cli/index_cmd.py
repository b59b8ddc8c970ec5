"""`dcii index`: operations on the index store itself (indexer.store.factory names a store by URL).

    dcii index rebuild --store 'opensearch+https://node1:9200?ca=ca.pem&user=dcii&password_file=pw'
    dcii index migrate --from var/data/index.db --to 'opensearch+https://node1:9200?...'
    dcii index migrate --from 'opensearch+https://node1:9200?...' --to sqlite:///var/data/index.db
    dcii index check --store URL           # or DCII_STORE_URL, as `dcii serve` reads it
    dcii index repair --store URL
    dcii index instances --store URL
    dcii index retire-instance ID[/PLACE] --store URL

`rebuild` (OpenSearch only) builds the next version of the tracings index with this program's mappings and
match keys, swaps the alias to it while searches and writes go on, and removes the old versions
(docs/OPENSEARCH.md); `--resume` first finishes one cut short (refused without it). `migrate` copies every
tracing, dispute, tombstone and deletion-log entry from one store to another (indexer.store.migrate); stop
ingest while it runs, or run it again afterwards. `check` prints the store's integrity problems and exits 1 if
there are any. `repair` removes what a write cut short left behind that no reader uses (OpenSearch: disputes
of deleted tracings; safe while the service runs), says what it did, then checks again like `check`.
`instances` lists the roster of instances serving the store (indexer.store.roster), and `retire-instance`
takes one gone for good off it, so that privacy answers no longer wait for its part. Each prints no PII.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from dcii.cli.private import private_files
from indexer.exc import DciiError
from indexer.store.factory import describe, open_store
from indexer.store.migrate import migrate
from indexer.store.sqlite_schema import require_index_file

console = Console(stderr=True, highlight=False, soft_wrap=True, markup=False)
Command = Callable[[argparse.Namespace], None]


def _progress() -> Progress:
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    return Progress(*columns, console=console, transient=not console.is_terminal)


def cmd_rebuild(args: argparse.Namespace) -> None:
    from indexer.store.opensearch import OpenSearchStore

    store = open_store(args.store)
    try:
        if not isinstance(store, OpenSearchStore):
            raise SystemExit("rebuild is for an OpenSearch store (the embedded store has no versions to swap)")
        with _progress() as progress:
            task = progress.add_task("copying tracings", total=None)
            new = store.rebuild(
                progress=lambda done, total: progress.update(task, completed=done, total=total),
                step=lambda name: progress.update(task, description=name),
                resume=args.resume,
            )
        problems = store.check_integrity()
    finally:
        store.close()
    console.print(f"{describe(args.store)}: now on {new}; old versions removed", markup=False)
    _report(problems)


def cmd_migrate(args: argparse.Namespace) -> None:
    source = open_store(args.source, read_only=_held(args.source, older_ok=True))
    try:
        target = open_store(args.target)
    except BaseException:
        source.close()
        raise
    try:
        console.print(f"copying {describe(args.source)} -> {describe(args.target)}", markup=False)
        tasks: dict[str, TaskID] = {}
        with _progress() as progress:

            def show(phase: str, done: int, total: int) -> None:
                if phase not in tasks:
                    tasks[phase] = progress.add_task(phase, total=total)
                progress.update(tasks[phase], completed=done, total=total)

            report = migrate(source, target, batch=args.batch, progress=show)
        problems = target.check_integrity()
    finally:
        source.close()
        target.close()
    console.print(
        f"copied {report.tracings} tracings, {report.tombstones} tombstones, {report.deletions} deletion-log "
        f"entries; the target holds {report.target_count} live tracings",
        markup=False,
    )
    _report(problems)


def _held(store: str, *, older_ok: bool = False) -> bool:
    """Whether `store` may be opened read-only: an embedded store must exist already and be an index store
    (opened, a mistyped path made a new empty index and the check said "0 live tracings", all well, and
    another database, registry.db or audit.db, was given the index's tables). With `older_ok` (a
    migration's source, a repair) one of an earlier schema version is taken too, and False says so: it is
    opened for writing, and upgraded, as these commands always did."""
    if "://" in store and not store.startswith("sqlite:///"):
        return True
    path = Path(store.removeprefix("sqlite:///"))
    if not path.is_file():
        raise SystemExit(f"dcii index: no index file at {path}")
    try:
        current = require_index_file(path, older_ok=older_ok)
    except DciiError as error:
        raise SystemExit(f"dcii index: {error.message}") from None
    if not current:
        console.print(f"{path}: an earlier schema version, upgraded first", markup=False)
    return current


def cmd_check(args: argparse.Namespace) -> None:
    _held(args.store)
    store = open_store(args.store, read_only=True)  # a backup's copy stays as it was
    try:
        problems = store.check_integrity()
        count = store.count()
        rebuilding = store.rebuilding()
    finally:
        store.close()
    console.print(f"{describe(args.store)}: {count} live tracings", markup=False)
    if rebuilding and not problems:  # its lease renewed lately: running, not cut short (docs/OPENSEARCH.md)
        console.print("a rebuild of the index is running (`dcii index rebuild`)", markup=False)
    _report(problems)


def cmd_repair(args: argparse.Namespace) -> None:
    _held(args.store, older_ok=True)
    store = open_store(args.store)
    try:
        done = store.repair()
        problems = store.check_integrity()
    finally:
        store.close()
    for line in done or ["nothing to repair"]:
        console.print(f"repaired: {line}" if done else line, markup=False)
    _report(problems)


def cmd_instances(args: argparse.Namespace) -> None:
    store = open_store(args.store, read_only=True)
    try:
        members = store.roster().members()
    finally:
        store.close()
    for member in members:
        retired = f", retired {member.retired_at:%Y-%m-%d %H:%M} UTC" if member.retired_at else ""
        console.print(f"{member.describe()}, first {member.first_seen:%Y-%m-%d} UTC{retired}", markup=False)
    console.print(f"{len(members)} instances on the roster", markup=False)


def cmd_retire_instance(args: argparse.Namespace) -> None:
    store = open_store(args.store, read_only=True)
    try:
        places = [m for m in store.roster().members() if m.instance_id == args.entry]
        if len(places) > 1:  # one of them may be the instance serving now: say which is meant
            listed = ", ".join(m.entry for m in places)
            raise SystemExit(f"dcii index: {args.entry} is on the roster at {len(places)} places ({listed}): name one")
        retired = store.roster().retire(args.entry)
    finally:
        store.close()
    if not retired:
        raise SystemExit(f"dcii index: no entry {args.entry} on the roster (`dcii index instances`)")
    for member in retired:
        console.print(f"retired {member.describe()}: privacy answers no longer ask for its part", markup=False)


def _report(problems: list[str]) -> None:
    for problem in problems:
        console.print(f"problem: {problem}", markup=False)
    if problems:
        raise SystemExit(1)


STORE_ENV = "DCII_STORE_URL"


def _add_store_option(command: argparse.ArgumentParser, text: str) -> None:
    """--store, by default the DCII_STORE_URL `dcii serve` reads (the RUNBOOK names both as the setting that
    chooses the store): inside a compose or Kubernetes instance the variable is set and the flag was not, and
    the RUNBOOK's `dcii index check` stopped at a usage error. Neither given: refused by `_safely`."""
    command.add_argument(
        "--store", default=os.environ.get(STORE_ENV) or None, help=f"{text.rstrip()} (default: ${STORE_ENV})"
    )


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    index = commands.add_parser("index", help="rebuild, migrate, check or repair the index store")
    sub = index.add_subparsers(dest="index_command", required=True)
    store_help = "the store: a path or sqlite:///path (embedded), or opensearch[+https]://host:port?... "
    rebuild = sub.add_parser("rebuild", help="rebuild the OpenSearch index behind its alias while searches go on")
    _add_store_option(rebuild, "the OpenSearch store only: opensearch[+https]://host:port?...")
    rebuild.add_argument(
        "--resume", action="store_true", help="finish a rebuild cut short first (refused while one is running)"
    )
    rebuild.set_defaults(run=_safely(cmd_rebuild))
    move = sub.add_parser(
        "migrate", help="copy every tracing (and disputes, tombstones, deletion log) to another store"
    )
    move.add_argument("--from", dest="source", required=True, help=store_help)
    move.add_argument("--to", dest="target", required=True, help=store_help)
    move.add_argument("--batch", type=int, default=1000, help="tracings per write (default 1000)")
    move.set_defaults(run=_safely(cmd_migrate))
    check = sub.add_parser("check", help="the store's integrity check")
    _add_store_option(check, store_help)
    check.set_defaults(run=_safely(cmd_check))
    repair = sub.add_parser("repair", help="remove what a write cut short left behind, then check")
    _add_store_option(repair, store_help)
    repair.set_defaults(run=_safely(cmd_repair))
    instances = sub.add_parser("instances", help="the instances serving the store (the roster peers answer by)")
    _add_store_option(instances, store_help)
    instances.set_defaults(run=_safely(cmd_instances))
    retire = sub.add_parser("retire-instance", help="take an instance gone for good off the roster")
    retire.add_argument(
        "entry", metavar="ID[/PLACE]", help="an entry of `dcii index instances` (ID alone: its only one)"
    )
    _add_store_option(retire, store_help)
    retire.set_defaults(run=_safely(cmd_retire_instance))


register = add_parser  # the name other modules may look for


def _safely(command: Command) -> Command:
    """A command whose store errors end the program with a message instead of a traceback."""

    def run(args: argparse.Namespace) -> None:
        if "store" in args and args.store is None:  # a usage error, as argparse's own: one line, exit 2
            print(f"dcii index {args.index_command}: --store URL is required, or set {STORE_ENV}", file=sys.stderr)
            raise SystemExit(2)
        try:
            command(args)
        except (DciiError, ValueError, OSError) as error:
            raise SystemExit(f"dcii index: {error}") from error
        except sqlite3.Error as error:  # its text may quote a stored value: the type only
            raise SystemExit(
                f"dcii index: the index file cannot be read ({type(error).__name__}: damaged, or not an index);"
                " restore it from a backup (docs/RUNBOOK.md)"
            ) from error

    return run


def main(argv: list[str] | None = None) -> None:
    """`python -m dcii.cli.index_cmd ...`: the same commands on their own."""
    top = argparse.ArgumentParser(prog="dcii")
    add_parser(top.add_subparsers(dest="command", required=True))
    args = top.parse_args(argv)
    with private_files():
        args.run(args)


if __name__ == "__main__":
    main(sys.argv[1:])
