"""One terminal floods the server; how long does another terminal wait?

A second accredited querier (FLOOD) keeps OUTSTANDING EXACT searches open over 4 connections from a process
of its own, firing each refused one again at once, while the demo adjudicator (the victim) searches one at a
time from this process. The server runs without a per-connection stream limit and with `dcii serve`'s
default, alternately, ROUNDS times (the machine is shared and noisy: compare the rounds side by side).

    .venv/bin/python bench/flood.py                      # 1,000 outstanding, 10 s a run, 2 rounds
    .venv/bin/python bench/flood.py --outstanding 1000 --seconds 10 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import grpc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.scale_server import free_port  # noqa: E402
from bench.soak_clients import queries  # noqa: E402
from connectors.client import Profile  # noqa: E402
from dcii.cli.client import session  # noqa: E402

DCII = str(Path(sys.executable).parent / "dcii")
SEARCH = "/dcii.v1.SearchService/Search"
UNLIMITED = 2**31 - 1  # HTTP/2's largest stream limit: none in effect


def _dcii(*args: str, env: dict[str, str] | None = None) -> None:
    subprocess.run([DCII, *args], check=True, cwd=ROOT, stdout=subprocess.DEVNULL, env=env)


def prepare(base: Path) -> tuple[Path, Path]:
    """A 20,000-tracing demo data directory, with a second querier activity, FLOOD, and its profile."""
    data, pki = base / "data", base / "pki"
    port = free_port()
    server = subprocess.Popen(
        [DCII, "serve", "--demo", "20000", "--data", str(data), "--pki", str(pki), "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_serving(server, port, data / "profiles" / "adjudicator.json")
    finally:
        server.terminate()
        server.wait(60)
    _dcii("certs", "issue", "FLOOD", "--agency", "ARMY-CCF", "--dir", str(pki))
    _dcii(
        "accredit",
        "--data",
        str(data),
        "activity",
        "add",
        "FLOOD",
        "--agency",
        "ARMY-CCF",
        "--roles",
        "QUERIER",
        "--purposes",
        "SECURITY_CLEARANCE",
        "--cert",
        str(pki / "FLOOD.pem"),
    )
    password = "flood-" + os.urandom(12).hex()
    (data / "profiles" / "flood.password").write_text(password + "\n")
    _dcii(
        "accredit",
        "--data",
        str(data),
        "operator",
        "add",
        "flood",
        "--activity",
        "FLOOD",
        env={**os.environ, "DCII_PASSWORD": password},
    )
    profile = {
        "server": "",
        "ca": str(pki / "ca.pem"),
        "cert": str(pki / "FLOOD.pem"),
        "key": str(pki / "FLOOD-key.pem"),
        "account_code": "flood",
        "password_file": "flood.password",
    }
    (data / "profiles" / "flood.json").write_text(json.dumps(profile))
    return data, pki


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _wait_serving(server: subprocess.Popen[bytes], port: int, ready: Path | None = None) -> None:
    """Until `server` listens on `port` (and `ready` exists); RuntimeError if it exits or takes 10 minutes."""
    deadline = time.monotonic() + 600
    while not (ready is None or ready.exists()) or not _listening(port):
        if server.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.2)


def _profile(path: Path, port: int) -> Profile:
    loaded = Profile.load(path)
    return Profile(f"localhost:{port}", loaded.ca, loaded.cert, loaded.key, loaded.account_code, loaded.password_file)


def flood(profile_path: str, port: int, outstanding: int, seconds: float, body: bytes, out: Any) -> None:
    """The flooding terminal (its own process): `outstanding` calls open at all times over 4 connections."""
    profile = _profile(Path(profile_path), port)
    with session(profile) as (_, metadata):
        credentials = grpc.ssl_channel_credentials(
            profile.ca.read_bytes(), profile.key.read_bytes(), profile.cert.read_bytes()
        )
        own = [("grpc.use_local_subchannel_pool", 1)]
        channels = [grpc.secure_channel(profile.server, credentials, options=own) for _ in range(4)]
        calls: list[grpc.UnaryUnaryMultiCallable[bytes, bytes]] = [
            c.unary_unary(SEARCH, request_serializer=None, response_deserializer=None) for c in channels
        ]
        codes: Counter[str] = Counter()
        lock, room = threading.Lock(), threading.Semaphore(outstanding)

        def done(future: grpc.Future[bytes]) -> None:
            try:
                future.result()
                code = "OK"
            except grpc.RpcError as error:
                code = error.code().name
            with lock:
                codes[code] += 1
            room.release()

        end, n = time.time() + seconds, 0
        while time.time() < end:
            room.acquire()
            calls[n % 4].future(body, metadata=metadata, timeout=30).add_done_callback(done)
            n += 1
        for _ in range(outstanding):
            room.acquire(timeout=35)
        out.put(dict(codes))


def victim(profile: Profile, body: bytes, seconds: float) -> dict[str, Any]:
    """The other terminal: one EXACT search at a time for `seconds`."""
    latencies: list[float] = []
    codes: Counter[str] = Counter()
    with session(profile) as (channel, metadata):
        call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(
            SEARCH, request_serializer=None, response_deserializer=None
        )
        end = time.time() + seconds
        while time.time() < end:
            started = time.perf_counter()
            try:
                call(body, metadata=metadata, timeout=10)
                codes["OK"] += 1
                latencies.append(time.perf_counter() - started)
            except grpc.RpcError as error:
                codes[error.code().name] += 1
            time.sleep(0.05)
    latencies.sort()

    def at(q: float) -> float:
        return round(1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))], 1) if latencies else 0.0

    return {"answered": len(latencies), "p50_ms": at(0.5), "p90_ms": at(0.9), "p99_ms": at(0.99), "codes": dict(codes)}


def run(data: Path, pki: Path, streams: int, args: argparse.Namespace, body: bytes) -> dict[str, Any]:
    port = free_port()
    server = subprocess.Popen(
        [
            DCII,
            "serve",
            "--data",
            str(data),
            "--pki",
            str(pki),
            "--port",
            str(port),
            "--max-streams-per-connection",
            str(streams),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_serving(server, port)
        adjudicator = _profile(data / "profiles" / "adjudicator.json", port)
        idle = victim(adjudicator, body, 3)
        context = mp.get_context("spawn")
        out = context.Queue()
        flooder = context.Process(
            target=flood,
            args=(str(data / "profiles" / "flood.json"), port, args.outstanding, args.seconds + 4, body, out),
        )
        flooder.start()
        time.sleep(2)
        during = victim(adjudicator, body, args.seconds)
        flooded = out.get(timeout=args.seconds + 120)
        flooder.join()
        return {"streams_per_connection": streams, "idle": idle, "during": during, "flood": flooded}
    finally:
        server.terminate()
        server.wait(60)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--outstanding", type=int, default=1000, help="calls the flooding terminal keeps open")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds of flood a run")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each setting, alternately")
    parser.add_argument(
        "--streams", type=int, default=32, help="the limit measured against none (dcii serve's default)"
    )
    args = parser.parse_args(argv)
    body = queries(200, seed=7, limit=1)[0]  # an EXACT search (name and SSN) of a demo person
    with tempfile.TemporaryDirectory(prefix="dcii-flood-") as base:
        data, pki = prepare(Path(base))
        for _ in range(args.rounds):
            for streams in (UNLIMITED, args.streams):
                print(json.dumps(run(data, pki, streams, args, body)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
