"""The floor under bench/febrl.py's latencies: the bare gRPC echo server, timed in the same run.

This shared 2-core machine moves by tenths of a millisecond from one run to the next, which is about what
separates Q1's p50 from its 2 ms target. So the FEBRL run also times the bare echo server
(bench/echo_server.py: the same mutual TLS, thread pool and channel options as the service, a canned
answer, no login, store or audit) with the same client and the same requests: the service's p50 is read
against what Python gRPC itself cost on the machine at that moment.
"""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc

from dcii.v1 import search_pb2, search_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def echo_line(
    pki_dir: Path, activity: str, requests: list[search_pb2.SearchRequest], answer: search_pb2.SearchResponse
) -> str:
    """One line for the report: the echo server's p50 and p99 for `requests`, sent one at a time over a
    channel with `activity`'s certificate, as the service's were."""
    port = _free_port()
    with tempfile.TemporaryDirectory() as scratch:
        response_file = Path(scratch) / "response.bin"
        response_file.write_bytes(answer.SerializeToString())
        argv = [sys.executable, str(ROOT / "bench" / "echo_server.py"), "--pki", str(pki_dir), "--port", str(port)]
        process = subprocess.Popen([*argv, "--response", str(response_file)], stdout=subprocess.DEVNULL)
        try:
            creds = grpc.ssl_channel_credentials(
                (pki_dir / "ca.pem").read_bytes(),
                (pki_dir / f"{activity}-key.pem").read_bytes(),
                (pki_dir / f"{activity}.pem").read_bytes(),
            )
            with grpc.secure_channel(f"localhost:{port}", creds) as channel:
                grpc.channel_ready_future(channel).result(timeout=120)
                stub = search_pb2_grpc.SearchServiceStub(channel)
                metadata = (("authorization", "Bearer " + "x" * 43),)  # a session token's size; not checked
                latencies = []
                for request in requests:
                    started = time.perf_counter()
                    stub.Search(request, metadata=metadata, timeout=30)
                    latencies.append(time.perf_counter() - started)
        finally:
            process.terminate()
            process.wait(timeout=60)
    p50 = statistics.median(latencies) * 1000
    p99 = statistics.quantiles(latencies, n=100)[98] * 1000
    return (
        f"The bare gRPC echo server (bench/echo_server.py), same run, same client, the Q1 requests as asked: "
        f"p50 {p50:.2f} ms, p99 {p99:.2f} ms (what Python gRPC and TLS cost a call on this machine just then)."
    )
