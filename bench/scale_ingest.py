"""Ingest through the gRPC stream: client processes push the pre-serialized tracings over mutual TLS.

Only an agency's own activity may write its tracings, so each process logs in once per agency (before
the clock starts) and its threads take chunks from one shared queue: one IngestService stream per chunk,
with that agency's session. A stream sends bytes as they were generated (no protobuf work on the client)
and counts the results, which come back only once durable. Every 1,000 acknowledgements a thread notes
the wall-clock time, so the run's rate can be read between any two points.
"""

from __future__ import annotations

import multiprocessing as mp
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for entry in (str(ROOT), str(ROOT / "bench")):
    if entry not in sys.path:
        sys.path.insert(0, entry)

import grpc  # noqa: E402
from scale_data import Manifest, read_chunk  # noqa: E402
from scale_server import Account, channel, cpu_seconds, login  # noqa: E402

from dcii.v1 import ingest_pb2  # noqa: E402

MARK_EVERY = 1000
_METHOD = "/dcii.v1.IngestService/Ingest"
_BATCH_METHOD = "/dcii.v1.IngestService/IngestBatches"


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def batch_bytes(requests: list[bytes]) -> bytes:
    """An IngestBatchRequest of already-serialized IngestRequests, built without protobuf work: field 1
    (repeated, length-delimited) is tag 0x0A, the length, then the bytes, once per request."""
    return b"".join(b"\x0a" + _varint(len(request)) + request for request in requests)


@dataclass
class IngestFigures:
    tracings: int
    seconds: float  # first request sent to last acknowledgement
    sustained: float  # tracings/s between 10% and 90% acknowledged
    outcomes: dict[str, int]
    slowest_window: float  # tracings/s in the slowest 10% of the run's duration
    processes: int
    streams: int
    errors: list[str] = field(default_factory=list)
    batch: int = 1  # actions a message
    client_cores: float = 0.0  # CPU the client processes used over the run, in cores
    server_cores: float = 0.0  # CPU the server process used over the run, in cores

    @property
    def overall(self) -> float:
        return self.tracings / self.seconds if self.seconds else 0.0


def _results(chan: grpc.Channel, metadata: Any, requests: list[bytes], batch: int) -> Iterator[ingest_pb2.IngestResult]:
    """The stream's results: one message per action (Ingest), or `batch` actions a message (IngestBatches)."""
    if batch <= 1:
        call: grpc.StreamStreamMultiCallable[bytes, ingest_pb2.IngestResult] = chan.stream_stream(
            _METHOD, request_serializer=None, response_deserializer=ingest_pb2.IngestResult.FromString
        )
        yield from call(iter(requests), metadata=metadata, timeout=24 * 3600)
        return
    batches: grpc.StreamStreamMultiCallable[bytes, ingest_pb2.IngestBatchResult] = chan.stream_stream(
        _BATCH_METHOD, request_serializer=None, response_deserializer=ingest_pb2.IngestBatchResult.FromString
    )
    messages = (batch_bytes(requests[i : i + batch]) for i in range(0, len(requests), batch))
    for answer in batches(messages, metadata=metadata, timeout=24 * 3600):
        yield from answer.results


def _stream(
    chan: grpc.Channel, metadata: Any, requests: list[bytes], marks: list[tuple[float, int]], batch: int
) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    since = 0
    for result in _results(chan, metadata, requests, batch):
        outcomes[ingest_pb2.IngestOutcome.Name(result.outcome).removeprefix("INGEST_OUTCOME_")] += 1
        since += 1
        if since >= MARK_EVERY:
            marks.append((time.time(), since))
            since = 0
    if since:
        marks.append((time.time(), since))
    return outcomes


def _worker(
    port: int,
    pki_dir: Path,
    inputs: Path,
    accounts: dict[str, Account],
    threads: int,
    chunks: Any,
    barrier: Barrier,
    results: Any,
    batch: int,
) -> None:
    """One client process: a channel and a session per agency, `threads` streams at a time."""
    sessions = {}
    for agency, account in accounts.items():
        chan = channel(port, pki_dir, account.activity)
        sessions[agency] = (chan, login(chan, account))
    barrier.wait()
    cpu = time.process_time()
    marks: list[tuple[float, int]] = []
    outcomes: Counter[str] = Counter()
    errors: list[str] = []
    lock = threading.Lock()

    def run() -> None:
        while (item := chunks.get()) is not None:
            agency, offset, length, _count = item
            requests = read_chunk(inputs, agency, offset, length)
            local: list[tuple[float, int]] = []
            try:
                counted = _stream(*sessions[agency], requests, local, batch)
            except grpc.RpcError as error:
                counted = Counter()
                with lock:
                    errors.append(f"{agency}: {error.code()} {error.details()}")
            with lock:
                outcomes.update(counted)
                marks.extend(local)

    pool = [threading.Thread(target=run) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    results.put((marks, dict(outcomes), errors, time.process_time() - cpu))


def _rate_between(marks: list[tuple[float, int]], low: float, high: float) -> tuple[float, float]:
    """Times at which `low` and `high` shares of all acknowledgements had arrived."""
    total = sum(n for _, n in marks)
    done, t_low, t_high = 0, marks[0][0], marks[-1][0]
    for t, n in marks:
        before = done
        done += n
        if before < low * total <= done:
            t_low = t
        if before < high * total <= done:
            t_high = t
    return t_low, t_high


def run_ingest(
    port: int,
    pki_dir: Path,
    inputs: Path,
    accounts: dict[str, Account],
    processes: int,
    streams: int,
    server_pid: int | None = None,
    batch: int = 500,
) -> IngestFigures:
    """Push every chunk of the manifest; `streams` concurrent streams spread over `processes` processes,
    `batch` actions a message (IngestBatches; 1: one a message through Ingest)."""
    manifest = Manifest.load(inputs / "manifest.json")
    ctx = mp.get_context("spawn")
    chunks = ctx.Queue()
    # Largest chunks first, so the run does not end on one long stream.
    for chunk in sorted(manifest.chunks, key=lambda c: -c[3]):
        chunks.put(chunk)
    per_process = [streams // processes + (i < streams % processes) for i in range(processes)]
    for _ in range(streams):
        chunks.put(None)
    barrier = ctx.Barrier(processes + 1)
    results = ctx.Queue()
    by_agency = {a.agency: a for a in accounts.values() if a.role == "SUBMITTER"}
    workers = [
        ctx.Process(target=_worker, args=(port, pki_dir, inputs, by_agency, n, chunks, barrier, results, batch))
        for n in per_process
    ]
    for worker in workers:
        worker.start()
    barrier.wait(timeout=600)
    started = time.time()
    server_cpu = cpu_seconds(server_pid) if server_pid else 0.0
    marks: list[tuple[float, int]] = []
    outcomes: Counter[str] = Counter()
    errors: list[str] = []
    client_cpu = 0.0
    for _ in workers:
        got_marks, got_outcomes, got_errors, got_cpu = results.get()
        marks += got_marks
        outcomes.update(got_outcomes)
        errors += got_errors
        client_cpu += got_cpu
    server_cpu = cpu_seconds(server_pid) - server_cpu if server_pid else 0.0
    for worker in workers:
        worker.join()
    marks.sort()
    if not marks:
        return IngestFigures(0, 0.0, 0.0, dict(outcomes), 0.0, processes, streams, errors or ["no results"])
    total = sum(n for _, n in marks)
    seconds = marks[-1][0] - started
    t10, t90 = _rate_between(marks, 0.1, 0.9)
    sustained = 0.8 * total / (t90 - t10) if t90 > t10 else total / max(seconds, 1e-9)
    return IngestFigures(
        tracings=total,
        seconds=round(seconds, 2),
        sustained=round(sustained, 1),
        outcomes=dict(outcomes),
        slowest_window=round(_slowest_window(marks, started, seconds), 1),
        processes=processes,
        streams=streams,
        errors=errors,
        batch=batch,
        client_cores=round(client_cpu / max(seconds, 1e-9), 2),
        server_cores=round(server_cpu / max(seconds, 1e-9), 2),
    )


def _slowest_window(marks: list[tuple[float, int]], started: float, seconds: float) -> float:
    """The lowest rate over ten equal windows of the run (the last one partly drains, so it is left out)."""
    if seconds < 10 or len(marks) < 50:  # too short a run to cut into windows
        return 0.0
    width = seconds / 10
    counts = [0] * 10
    for t, n in marks:
        counts[min(9, int((t - started) / width))] += n
    return min(counts[:9]) / width
