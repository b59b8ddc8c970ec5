"""`dcii`: the one command for operators, administrators and adjudicators."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from dcii.cli import admin, audit, backup, batch, index_cmd, privacy, query, retention, submit
from dcii.cli.logs import FORMATS, configure_logging

DATA_DEFAULT = "var/data"
PKI_DEFAULT = "var/pki"


def cmd_serve(args: argparse.Namespace) -> None:
    from dcii.cli.bootstrap import bootstrap, instructions
    from search_service.server import ServerConfig, serve

    data_dir, pki_dir = Path(args.data), Path(args.pki)
    profiles = None
    if args.demo:
        print(f"preparing the demo in {data_dir} (first start loads {args.demo} tracings)...", file=sys.stderr)
        profiles = bootstrap(data_dir, pki_dir, port=args.port, count=args.demo, seed=args.seed, store_url=args.store)
    config = ServerConfig(
        data_dir=data_dir,
        pki_dir=pki_dir,
        host=args.host,
        port=args.port,
        metrics_port=args.metrics_port,
        store_url=args.store,
        ingest_processes=args.ingest_processes,
    )

    def ready(port: int) -> None:
        print(f"DCII serving on {args.host}:{port}", file=sys.stderr, flush=True)
        if args.metrics_port is not None:
            print(f"metrics on http://{args.host}:{args.metrics_port}/metrics", file=sys.stderr, flush=True)
        if profiles is not None:
            print(instructions(profiles, args.demo, args.seed), file=sys.stderr, flush=True)

    serve(config, on_ready=ready)


def cmd_demo(args: argparse.Namespace) -> None:
    from indexer.demo import generate_tracings
    from indexer.fileformat import tracing_to_row, write_csv, write_jsonl

    rows = (tracing_to_row(t) for t in generate_tracings(args.count, seed=args.seed))
    out = Path(args.out)
    (write_jsonl if out.suffix in (".jsonl", ".ndjson") else write_csv)(rows, out)
    print(f"{args.count} tracings written to {out} (seed {args.seed})", file=sys.stderr)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="dcii", description=__doc__)
    top.add_argument("--log-level", default="WARNING")
    top.add_argument("--log-format", choices=FORMATS, help="json (default; or DCII_LOG_FORMAT) or text")
    commands = top.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the gRPC service (mutual TLS) on the embedded store")
    serve.add_argument("--data", default=DATA_DEFAULT, help="data directory (index.db, registry.db)")
    serve.add_argument("--pki", default=PKI_DEFAULT, help="directory with ca.pem, server.pem, server-key.pem")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=50051)
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
    serve.add_argument("--metrics-port", type=int, help="serve Prometheus metrics over plain HTTP on this port")
    serve.add_argument(
        "--ingest-processes",
        type=int,
        default=2,
        metavar="N",
        help="worker processes that check and prepare bulk ingest (default 2; 0: in the server's threads)",
    )
    # Also after `serve` (SUPPRESS: unless given here, the values before the command stand).
    serve.add_argument("--log-level", default=argparse.SUPPRESS)
    serve.add_argument("--log-format", choices=FORMATS, default=argparse.SUPPRESS)
    serve.set_defaults(run=cmd_serve)

    demo = commands.add_parser("demo", help="write realistic synthetic tracings to a CSV or JSONL file")
    demo.add_argument("--count", type=int, default=1000)
    demo.add_argument("--seed", type=int, default=1)
    demo.add_argument("--out", required=True, help="FILE.csv or FILE.jsonl")
    demo.set_defaults(run=cmd_demo)

    admin.add_parsers(commands, DATA_DEFAULT)
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
    configure_logging(getattr(logging, args.log_level.upper(), logging.WARNING), args.log_format)
    args.run(args)


if __name__ == "__main__":
    main()
