"""`dcii`: the one command for operators, administrators and adjudicators."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from dcii.cli import accredit_parsers, audit, backup, batch, index_cmd, privacy, query, retention, serve_options, submit
from dcii.cli.logs import FORMATS, configure_logging
from dcii.cli.private import close_to_others, private_files
from indexer.exc import DciiError

if TYPE_CHECKING:
    from search_service.server import ServerConfig

DATA_DEFAULT = "var/data"
PKI_DEFAULT = "var/pki"


# The server's capacity limits (SECURITY.md), as ServerConfig fields. Their options default to None, which
# leaves ServerConfig's own default in force: the parser is built for every `dcii` command and must not
# import the server to learn them (tests/test_cli_serve.py checks the help's figures against ServerConfig).
LIMITS = (
    "max_workers",
    "max_concurrent_rpcs",
    "rate_per_activity",
    "burst_per_activity",
    "max_calls_per_activity",
    "max_streams_per_connection",
    "disclosures_per_activity_per_day",
)


def serve_config(args: argparse.Namespace) -> ServerConfig:
    """The ServerConfig `dcii serve` runs with."""
    from search_service.server import ServerConfig

    limits: dict[str, object] = {name: getattr(args, name) for name in LIMITS if getattr(args, name) is not None}
    if limits.get("max_concurrent_rpcs") == 0:
        limits["max_concurrent_rpcs"] = None  # 0 on the command line: no cap
    return ServerConfig(
        data_dir=Path(args.data),
        pki_dir=Path(args.pki),
        host=args.host,
        port=args.port,
        metrics_port=args.metrics_port,
        store_url=args.store,
        ingest_processes=args.ingest_processes,
        processes=args.processes,
        privacy_time_zone=args.privacy_time_zone,
        peers=serve_options.peers(args, os.environ.get("DCII_PEERS", "")),
        batch=serve_options.batch_settings(args),
        keepalive=serve_options.keepalive(args),
        **limits,  # type: ignore[arg-type]
    )


# Each numeric option's check, by the one validator (serve_options.number).
def _at_least(minimum: int) -> Callable[[str], float]:
    return serve_options.number(minimum, above=False, whole=True)


_rate = serve_options.number(0, above=True)
_burst = serve_options.number(1, above=False)
_port = serve_options.number(0, above=False, whole=True, maximum=65535)
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def add_limit_options(serve: argparse.ArgumentParser) -> None:
    """`dcii serve`'s options for the capacity limits."""
    group = serve.add_argument_group("capacity limits (SECURITY.md; a call over one is RESOURCE_EXHAUSTED at once)")
    group.add_argument("--max-workers", type=_at_least(1), metavar="N", help="threads that run calls (default 32)")
    group.add_argument(
        "--max-concurrent-rpcs",
        type=_at_least(0),
        metavar="N",
        help="calls in progress or waiting for a worker at once, all callers together (default 128; 0: no cap)",
    )
    group.add_argument(
        "--rate-per-activity", type=_rate, metavar="R", help="calls a second each activity may make (default 1000)"
    )
    group.add_argument(
        "--burst-per-activity",
        type=_burst,
        metavar="B",
        help="calls an activity may make at once before its rate applies (default 2000)",
    )
    group.add_argument(
        "--max-calls-per-activity",
        type=_at_least(1),
        metavar="N",
        help="calls each activity may have in progress at once (default: half of --max-workers)",
    )
    group.add_argument(
        "--max-streams-per-connection",
        type=_at_least(1),
        metavar="N",
        help="calls one client connection may have open at once; gRPC holds back or refuses the rest (default: twice"
        " --max-calls-per-activity, 32 at least)",
    )
    group.add_argument(
        "--disclosures-per-activity-per-day",
        type=_at_least(1),
        metavar="N",
        help="records each activity may receive a day from searches and batches (default: no budget)",
    )


def cmd_serve(args: argparse.Namespace) -> None:
    from dcii.cli.bootstrap import bootstrap, instructions
    from search_service.server import serve

    data_dir, pki_dir = Path(args.data), Path(args.pki)
    close_to_others(data_dir)
    profiles = None
    if args.demo:
        print(f"preparing the demo in {data_dir} (first start loads {args.demo} tracings)...", file=sys.stderr)
        profiles = bootstrap(data_dir, pki_dir, port=args.port, count=args.demo, seed=args.seed, store_url=args.store)
    config = serve_config(args)

    def ready(port: int) -> None:
        print(f"DCII serving on {args.host}:{port}", file=sys.stderr, flush=True)
        if args.metrics_port is not None:
            print(f"metrics on http://{args.host}:{args.metrics_port}/metrics", file=sys.stderr, flush=True)
        if profiles is not None:
            print(instructions(profiles, args.demo, args.seed), file=sys.stderr, flush=True)

    serve(config, on_ready=ready)


def cmd_demo(args: argparse.Namespace) -> None:
    from indexer.demo import generate_tracings
    from indexer.fileformat import SUFFIXES, tracing_to_row, write_csv, write_jsonl

    out = Path(args.out)
    form = SUFFIXES.get(out.suffix.lower())
    if form is None:  # it wrote CSV into any other name, which `dcii submit` then refused
        raise SystemExit(f"--out {out}: a tracing file ends in {', '.join(SUFFIXES)} (written in that format)")
    rows = (tracing_to_row(t) for t in generate_tracings(args.count, seed=args.seed))
    (write_jsonl if form == "jsonl" else write_csv)(rows, out)
    print(f"{args.count} tracings written to {out} (seed {args.seed})", file=sys.stderr)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="dcii", description=__doc__)
    top.add_argument("--log-level", default="WARNING", type=str.upper, choices=LEVELS)
    top.add_argument("--log-format", choices=FORMATS, help="json (default; or DCII_LOG_FORMAT) or text")
    commands = top.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the gRPC service (mutual TLS) on the embedded store")
    serve.add_argument("--data", default=DATA_DEFAULT, help="data directory (index.db, registry.db)")
    serve.add_argument("--pki", default=PKI_DEFAULT, help="directory with ca.pem, server.pem, server-key.pem")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=_port, default=50051)
    serve.add_argument(
        "--demo",
        type=int,
        default=0,
        metavar="N",
        help="first start: make certificates, demo accounts and N synthetic tracings",
    )
    serve.add_argument("--seed", type=int, default=1)
    serve.add_argument(
        "--store",
        default=os.environ.get("DCII_STORE_URL"),
        help="where the tracings live: opensearch+https://... (docs/OPENSEARCH.md; or DCII_STORE_URL);"
        " default the embedded store in --data",
    )
    serve.add_argument(
        "--metrics-port", type=_port, help="serve Prometheus metrics over plain HTTP on this port (0: any free one)"
    )
    serve.add_argument(
        "--ingest-processes",
        type=_at_least(0),
        default=2,
        metavar="N",
        help="worker processes that check and prepare bulk ingest (default 2; 0: in the server's threads)",
    )
    serve.add_argument(
        "--processes",
        type=_at_least(1),
        default=1,
        help="processes that serve the port, each with a core's worth of Python (default 1; RUNBOOK, Processes)",
    )
    privacy.add_time_zone_option(serve)
    serve_options.add_peer_option(serve)
    add_limit_options(serve)
    serve_options.add_batch_and_keepalive_options(serve)
    # Also after `serve` (SUPPRESS: unless given here, the values before the command stand).
    serve.add_argument("--log-level", default=argparse.SUPPRESS, type=str.upper, choices=LEVELS)
    serve.add_argument("--log-format", choices=FORMATS, default=argparse.SUPPRESS)
    serve.set_defaults(run=cmd_serve)

    demo = commands.add_parser("demo", help="write realistic synthetic tracings to a CSV or JSONL file")
    demo.add_argument("--count", type=int, default=1000)
    demo.add_argument("--seed", type=int, default=1)
    demo.add_argument("--out", required=True, help="FILE.csv or FILE.jsonl")
    demo.set_defaults(run=cmd_demo)

    accredit_parsers.add_parsers(commands, DATA_DEFAULT)
    backup.add_parsers(commands, DATA_DEFAULT)
    audit.add_parser(commands, DATA_DEFAULT)
    privacy.add_parser(commands, DATA_DEFAULT)
    retention.add_parser(commands, DATA_DEFAULT)
    submit.add_parser(commands)
    query.add_parser(commands)
    index_cmd.add_parser(commands)
    batch.add_parser(commands)
    return top


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        configure_logging(getattr(logging, args.log_level), args.log_format)
    except ValueError as error:  # DCII_LOG_FORMAT set to something else than json or text
        raise SystemExit(f"dcii: {error}") from None
    try:
        with private_files():
            args.run(args)
    except DciiError as error:  # a refusal the operator can act on (exists already, unknown...): one line
        which = "; ".join(f"{v.field}: {v.description}" for v in getattr(error, "violations", ()))
        raise SystemExit(f"dcii: {error.message}" + (f" ({which})" if which else "")) from error


if __name__ == "__main__":
    main()
