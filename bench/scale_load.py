"""Load on the server from other processes, over mutual TLS.

* `latency`: one client process, one channel, one query at a time; each query is timed from the call to
  the parsed response (end to end, as an adjudicator's terminal sees it).
* `throughput`: several client processes, each an asyncio event loop (grpc.aio) with its own channels
  (one per load activity: the server's rate limit is per activity, as for real terminals) and a fixed
  number of calls in flight. Requests go out as the bytes they were serialized to and answers are not
  parsed, so the client spends as little as a Python gRPC client can per call. Only calls that end inside
  the measuring window count; the window starts after a warm-up. The same generator drives the echo server.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for entry in (str(ROOT), str(ROOT / "bench")):
    if entry not in sys.path:
        sys.path.insert(0, entry)

import grpc  # noqa: E402
from page_cache import resident_fraction  # noqa: E402
from scale_server import Account, channel, cpu_seconds, credentials, login  # noqa: E402

from dcii.v1 import search_pb2  # noqa: E402
from indexer.normalize import fold  # noqa: E402

SEARCH = "/dcii.v1.SearchService/Search"
# Connections each load activity opens (one session shared): 2 activities a load process, so 8 connections
# a process, one call in flight on each at the default 8.
CONNECTIONS_PER_ACTIVITY = 4


@dataclass(frozen=True)
class Answer:
    seconds: float
    keys: tuple[str, ...]  # "AGENCY|RECORD" of the hits, in order
    top_name: str  # "GIVEN SURNAME" of the first hit, folded
    size: int  # serialized response bytes
    error: str = ""


def _answer(seconds: float, response: search_pb2.SearchResponse) -> Answer:
    keys = tuple(f"{h.tracing.key.agency}|{h.tracing.key.record_number}" for h in response.hits)
    top = ""
    if response.hits:
        name = response.hits[0].tracing.subject.name
        top = fold(f"{name.given_name} {name.surname}")
    return Answer(seconds, keys, top, response.ByteSize())


def _latency_client(
    port: int, pki_dir: Path, account: Account, sets: dict[str, list[bytes]], warmup: int, store_file: Path
) -> tuple[dict[str, list[Answer]], dict[str, float]]:
    chan = channel(port, pki_dir, account.activity)
    metadata = login(chan, account)
    call: grpc.UnaryUnaryMultiCallable[bytes, search_pb2.SearchResponse] = chan.unary_unary(
        SEARCH, request_serializer=None, response_deserializer=search_pb2.SearchResponse.FromString
    )
    out: dict[str, list[Answer]] = {}
    cached: dict[str, float] = {}
    for name, payloads in sets.items():
        for payload in payloads[:warmup]:
            call(payload, metadata=metadata, timeout=120)
        cached[name] = resident_fraction(store_file)
        answers = []
        for payload in payloads:
            started = time.perf_counter()
            try:
                response = call(payload, metadata=metadata, timeout=120)
            except grpc.RpcError as error:
                answers.append(Answer(time.perf_counter() - started, (), "", 0, str(error.code())))
                continue
            answers.append(_answer(time.perf_counter() - started, response))
        out[name] = answers
    chan.close()
    return out, cached


def latency(
    port: int, pki_dir: Path, account: Account, sets: dict[str, list[bytes]], warmup: int, store_file: Path
) -> tuple[dict[str, list[Answer]], dict[str, float]]:
    """Run the query sets one after another from a separate client process: each set's answers, and the
    share of `store_file` in the page cache as its timed queries began (bench/page_cache.py)."""
    with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as pool:
        return pool.submit(_latency_client, port, pki_dir, account, sets, warmup, store_file).result()


@dataclass
class Throughput:
    qps: float
    calls: int
    errors: dict[str, int]
    client_cores: float  # CPU the load processes used, in cores, during the window
    server_cores: float  # CPU the server process used, in cores, during the window
    processes: int
    in_flight: int
    samples: list[float] = field(default_factory=list)  # qps of each round


async def _load(
    port: int,
    pki_dir: Path,
    channels: list[tuple[str, Any]],
    payloads: list[bytes],
    in_flight: int,
    warmup: float,
    duration: float,
    barrier: Barrier,
) -> tuple[int, dict[str, int], float]:
    # Each channel its own connection (a local subchannel pool): with several server processes the kernel
    # spreads connections, not calls, so a few connections would load the processes unevenly.
    own = [("grpc.use_local_subchannel_pool", 1)]
    chans = [grpc.aio.secure_channel(f"localhost:{port}", credentials(pki_dir, a), options=own) for a, _ in channels]
    calls: list[grpc.aio.UnaryUnaryMultiCallable[bytes, bytes]] = [
        c.unary_unary(SEARCH, request_serializer=None, response_deserializer=None) for c in chans
    ]
    for call, (_, metadata) in zip(calls, channels, strict=True):
        await call(payloads[0], metadata=metadata, timeout=120)  # connect and handshake before the clock
    barrier.wait()
    begin = time.time() + warmup
    end = begin + duration
    ok = 0
    errors: Counter[str] = Counter()
    cpu: list[float] = []

    async def meter() -> None:
        await asyncio.sleep(max(0.0, begin - time.time()))
        cpu.append(time.process_time())
        await asyncio.sleep(max(0.0, end - time.time()))
        cpu.append(time.process_time())

    async def caller(i: int) -> None:
        nonlocal ok
        call, metadata = calls[i % len(calls)], channels[i % len(calls)][1]
        j = i
        while time.time() < end:
            payload = payloads[j % len(payloads)]
            j += in_flight
            try:
                await call(payload, metadata=metadata, timeout=120)
                ok += begin <= time.time() < end
            except grpc.aio.AioRpcError as error:
                if begin <= time.time() < end:
                    errors[str(error.code())] += 1

    await asyncio.gather(meter(), *(caller(i) for i in range(in_flight)))
    for chan in chans:
        await chan.close()
    return ok, dict(errors), cpu[1] - cpu[0]


def _load_worker(
    port: int,
    pki_dir: Path,
    accounts: list[Account],
    log_in: bool,
    payloads: list[bytes],
    in_flight: int,
    warmup: float,
    duration: float,
    barrier: Barrier,
    results: Any,
) -> None:
    channels: list[tuple[str, Any]] = []
    for account in accounts:
        if log_in:
            with channel(port, pki_dir, account.activity) as chan:
                metadata = login(chan, account)
        else:  # the echo server checks no session; send a header of the same size
            metadata = (("authorization", "Bearer " + "x" * 43),)
        channels += [(account.activity, metadata)] * CONNECTIONS_PER_ACTIVITY
    results.put(asyncio.run(_load(port, pki_dir, channels, payloads, in_flight, warmup, duration, barrier)))


def throughput(
    port: int,
    pki_dir: Path,
    accounts: list[Account],
    payloads: list[bytes],
    *,
    processes: int,
    in_flight: int,
    warmup: float,
    duration: float,
    log_in: bool = True,
    server_pids: list[int] | None = None,
) -> Throughput:
    """Closed-loop load: `processes` client processes with `in_flight` calls each, for `duration` seconds."""
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(processes + 1)
    shares = [accounts[i::processes] or accounts[:1] for i in range(processes)]
    results = ctx.Queue()
    workers = [
        ctx.Process(
            target=_load_worker,
            args=(port, pki_dir, share, log_in, payloads, in_flight, warmup, duration, barrier, results),
        )
        for share in shares
    ]
    for worker in workers:
        worker.start()
    barrier.wait(timeout=600)
    time.sleep(warmup)
    pids = server_pids or []
    server_cpu = sum(cpu_seconds(pid) for pid in pids)
    time.sleep(duration)
    server_cpu = sum(cpu_seconds(pid) for pid in pids) - server_cpu
    done: list[tuple[int, dict[str, int], float]] = [results.get(timeout=600) for _ in workers]
    for worker in workers:
        worker.join()
    errors: Counter[str] = Counter()
    for _, errs, _ in done:
        errors.update(errs)
    calls = sum(ok for ok, _, _ in done)
    return Throughput(
        qps=calls / duration,
        calls=calls,
        errors=dict(errors),
        client_cores=sum(c for _, _, c in done) / duration,
        server_cores=server_cpu / duration,
        processes=processes,
        in_flight=in_flight * processes,
    )
