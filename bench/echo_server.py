"""A bare gRPC server to compare the index's throughput against: what Python gRPC itself allows.

    .venv/bin/python bench/echo_server.py --pki DIR --port 0 --response FILE

It serves the one method the load generator calls, /dcii.v1.SearchService/Search, set up as
search_service/server.py sets up its server: mutual TLS with the same certificates (a client certificate
is required), a ThreadPoolExecutor of the same size and the same channel options. The handler parses the
request and answers with a canned SearchResponse (FILE: a real EXACT answer of the index, captured in the
same run), serialized on every call: the same message sizes and protobuf work, with no authentication,
rate limit, store or audit behind it. Prints "ready PORT" once it listens; stops on SIGTERM.

`--processes N` serves the port from N processes (SO_REUSEPORT), as `dcii serve --processes N` does, so
that the ratio compares like with like: the first starts the others and stops them when it stops; each
of those stops too when the first is gone.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
from concurrent import futures
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import grpc

from dcii.v1 import search_pb2
from search_service.server import ServerConfig
from search_service.server_grpc import MAX_MESSAGE_BYTES, server_credentials


def serve(
    pki_dir: Path,
    port: int,
    response_file: Path,
    host: str = "127.0.0.1",
    *,
    processes: int = 1,
    replica: bool = False,
) -> None:
    response = search_pb2.SearchResponse.FromString(response_file.read_bytes())

    def search(request: search_pb2.SearchRequest, context: Any) -> search_pb2.SearchResponse:
        return response

    handler = grpc.method_handlers_generic_handler(
        "dcii.v1.SearchService",
        {
            "Search": grpc.unary_unary_rpc_method_handler(
                search,
                request_deserializer=search_pb2.SearchRequest.FromString,
                response_serializer=search_pb2.SearchResponse.SerializeToString,
            )
        },
    )
    workers = ServerConfig(data_dir=Path(), pki_dir=pki_dir).max_workers
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rpc"),
        handlers=[handler],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", int(processes > 1 or replica)),
        ],
    )
    bound = server.add_secure_port(f"{host}:{port}", server_credentials(pki_dir))
    server.start()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    argv = [sys.executable, __file__, "--pki", str(pki_dir), "--port", str(bound), "--replica"]
    others = [subprocess.Popen([*argv, "--response", str(response_file)]) for _ in range(processes - 1)]
    print(f"ready {bound}", flush=True)
    parent = os.getppid()
    while not stop.wait(0.5):
        if replica and os.getppid() != parent:  # the first process is gone
            break
    for other in others:
        other.terminate()
    server.stop(1).wait()
    for other in others:
        other.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pki", required=True, help="directory with ca.pem, server.pem, server-key.pem")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--response", required=True, help="a serialized SearchResponse to answer with")
    parser.add_argument("--processes", type=int, default=1, help="processes serving the port (SO_REUSEPORT)")
    parser.add_argument("--replica", action="store_true", help="started by the first process (not by hand)")
    args = parser.parse_args()
    serve(Path(args.pki), args.port, Path(args.response), processes=args.processes, replica=args.replica)


if __name__ == "__main__":
    main()
