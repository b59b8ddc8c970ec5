"""`dcii serve`'s options for the batch worker (ServerConfig.batch) and for keepalive (ServerConfig.keepalive).

Each option defaults to None, which leaves the settings class's own default in force: the parser is built
for every `dcii` command and must not import the server to learn them (tests/test_cli_serve.py checks the
help's figures against the classes)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from search_service.batch_worker import BatchSettings
    from search_service.keepalive import Keepalive

# option dest -> the settings field it sets
BATCH_OPTIONS = {
    "batch_threads": "threads",
    "batch_duty": "duty",
    "batch_max_active": "max_active_per_activity",
    "batch_keep_days": "keep_results_days",
}
KEEPALIVE_OPTIONS = {"keepalive_time": "time", "keepalive_timeout": "timeout", "max_connection_idle": "max_idle"}


def number(
    minimum: float, *, above: bool, whole: bool = False, maximum: float = float("inf")
) -> Callable[[str], float]:
    """An argparse type: a number (a whole one with `whole`) above or at least `minimum`, at most `maximum`;
    the one validator of `dcii serve`'s numeric options."""

    def parse(text: str) -> float:
        value = int(text) if whole else float(text)
        if not (value > minimum if above else value >= minimum):  # also refuses nan
            raise argparse.ArgumentTypeError(f"must be {'above' if above else 'at least'} {minimum:g}")
        if value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum:g}")
        return value

    parse.__name__ = "whole number" if whole else "number"  # argparse's "invalid number value: 'x'"
    return parse


def add_batch_and_keepalive_options(serve: argparse.ArgumentParser) -> None:
    batch = serve.add_argument_group("batch worker (RUNBOOK, Batch requests)")
    batch.add_argument(
        "--batch-threads",
        type=number(0, above=False, whole=True),
        metavar="N",
        help="batch worker threads, at most one a batch (default 1; 0: batches wait)",
    )
    batch.add_argument(
        "--batch-duty",
        type=number(0, above=True, maximum=1),
        metavar="D",
        help="share of the time a batch thread works, up to 1 (default 0.5)",
    )
    batch.add_argument(
        "--batch-max-active",
        type=number(1, above=False, whole=True),
        metavar="N",
        help="unfinished batches one activity may hold (default 10)",
    )
    batch.add_argument(
        "--batch-keep-days",
        type=number(0, above=True),
        metavar="DAYS",
        help="days a finished batch and its results are kept (default 30)",
    )
    keepalive = serve.add_argument_group("connections (RUNBOOK, Connections and keepalive)")
    keepalive.add_argument(
        "--keepalive-time",
        type=number(0, above=True),
        metavar="S",
        help="seconds a connection is idle before the server pings it (default 60)",
    )
    keepalive.add_argument(
        "--keepalive-timeout",
        type=number(0, above=True),
        metavar="S",
        help="seconds an unanswered ping waits before the connection and its calls are closed (default 20)",
    )
    keepalive.add_argument(
        "--max-connection-idle",
        type=number(0, above=True),
        metavar="S",
        help="seconds a connection may go without a call before it is closed (default 300)",
    )


def batch_settings(args: argparse.Namespace) -> BatchSettings:
    from search_service.batch_worker import BatchSettings

    return BatchSettings(**_given(args, BATCH_OPTIONS))  # type: ignore[arg-type]


def keepalive(args: argparse.Namespace) -> Keepalive:
    from search_service.keepalive import Keepalive

    return Keepalive(**_given(args, KEEPALIVE_OPTIONS))


def _given(args: argparse.Namespace, options: dict[str, str]) -> dict[str, float]:
    return {field: getattr(args, dest) for dest, field in options.items() if getattr(args, dest) is not None}


def peer_addresses(text: str) -> tuple[str, ...]:
    """`--peer` (one address) or DCII_PEERS (several, separated by commas or spaces): each HOST:PORT."""
    addresses = tuple(a for a in text.replace(",", " ").split() if a)
    for address in addresses:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise argparse.ArgumentTypeError(f"peer address {address!r}: HOST:PORT")
    return addresses


def add_peer_option(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--peer",
        dest="peers",
        action="extend",
        type=peer_addresses,
        metavar="HOST:PORT",
        help="another instance of the deployment, asked for its part of every Privacy Act accounting (repeat for"
        " each; or DCII_PEERS, comma-separated; needs <pki>/dcii-peer.pem: RUNBOOK, several instances)",
    )


def peers(args: argparse.Namespace, environment: str) -> tuple[str, ...]:
    """The peers given (`--peer`), else DCII_PEERS's (`environment`)."""
    given: list[str] | None = args.peers
    if given:
        return tuple(given)
    try:
        return peer_addresses(environment)
    except argparse.ArgumentTypeError as error:
        raise SystemExit(f"dcii: DCII_PEERS: {error}") from None
