"""A bare gRPC server to compare the index's throughput against: what Python gRPC itself allows.

    .venv/bin/python bench/echo_server.py --pki DIR --port 0 --response FILE

It serves the one method the load generator calls, /dcii.v1.SearchService/Search, set up as
search_service/server.py sets up its server: mutual TLS with the same certificates (a client certificate
is required), a ThreadPoolExecutor of the same size and the same channel options. The handler parses the
request and answers with a canned SearchResponse (FILE: a real EXACT answer of the index, captured in the
same run), serialized on every call: the same message sizes and protobuf work, with no authentication,
rate limit, store or audit behind it. Prints "ready PORT" once it listens; stops on SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from concurrent import futures
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import grpc

from dcii.v1 import search_pb2
from search_service.server import MAX_MESSAGE_BYTES, ServerConfig, server_credentials


def serve(pki_dir: Path, port: int, response: search_pb2.SearchResponse, host: str = "127.0.0.1") -> None:
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
            ("grpc.so_reuseport", 0),
        ],
    )
    bound = server.add_secure_port(f"{host}:{port}", server_credentials(pki_dir))
    server.start()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    print(f"ready {bound}", flush=True)
    stop.wait()
    server.stop(1).wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pki", required=True, help="directory with ca.pem, server.pem, server-key.pem")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--response", required=True, help="a serialized SearchResponse to answer with")
    args = parser.parse_args()
    response = search_pb2.SearchResponse.FromString(Path(args.response).read_bytes())
    serve(Path(args.pki), args.port, response)


if __name__ == "__main__":
    main()
