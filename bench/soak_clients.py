"""The soak bench's load: what each spawned client process runs. The search payloads (the four modes in
rotation), a closed loop (so many calls in flight) or an open loop (so many calls a second, on schedule
whatever the answers do), and the ingest stream that keeps INGEST_RECORDS records current beside a soak.

Separate from bench/soak.py, which decides the rates of each phase and judges the samples these
processes put on their queue.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc

from connectors.client import Profile
from connectors.rows import to_request
from dcii.cli.client import session
from dcii.v1 import ingest_pb2, ingest_pb2_grpc, search_pb2, tracing_pb2
from indexer.demo import generate_tracings
from indexer.fileformat import tracing_to_row

M = search_pb2.SearchMode
DEADLINE = 5.0
Sample = tuple[float, float, str]  # (scheduled time since the phase began, latency, status name)


def queries(count: int, seed: int, limit: int = 4000) -> list[bytes]:
    """Serialized SearchRequests on demo people, rotating over the four modes."""
    found: list[bytes] = []
    for tracing in generate_tracings(count, seed=seed):
        subject = tracing.subject
        if subject is None or not subject.name.surname or not subject.name.given_name or len(found) >= limit:
            continue
        name, ids = subject.name, subject.identifiers
        request = search_pb2.SearchRequest(purpose=search_pb2.PURPOSE_SECURITY_CLEARANCE)
        request.name.CopyFrom(tracing_pb2.PersonName(surname=name.surname, given_name=name.given_name))
        kind = len(found) % 4
        if kind == 0 and ids.ssn:
            request.mode, request.identifiers.ssn = M.SEARCH_MODE_EXACT, ids.ssn
        elif kind == 2 and len(name.surname) > 3:
            request.mode, request.name.surname = M.SEARCH_MODE_FUZZY, name.surname[:2] + name.surname[3:]
        elif kind == 3 and ids.date_of_birth is not None:
            request.mode = M.SEARCH_MODE_PID_QUALIFIED
            request.identifiers.date_of_birth.year = ids.date_of_birth.year
            request.identifiers.date_of_birth.month = ids.date_of_birth.month
            request.identifiers.date_of_birth.day = ids.date_of_birth.day
        else:
            request.mode = M.SEARCH_MODE_NAME_ONLY
        found.append(request.SerializeToString())
    return found


# ---- a client process ----


def search_client(profile: Path, payloads: list[bytes], plan: tuple[str, float, float], start: float, out: Any) -> None:
    """One load process: ("closed", calls in flight, seconds) or ("open", calls a second, seconds), from
    wall-clock `start`; puts its samples on `out`."""
    kind, amount, seconds = plan
    samples: list[Sample] = []
    with session(Profile.load(profile)) as (channel, metadata):
        call = channel.unary_unary(
            "/dcii.v1.SearchService/Search",
            request_serializer=lambda b: b,
            response_deserializer=search_pb2.SearchResponse.FromString,
        )
        call(payloads[0], metadata=metadata, timeout=30)  # connected and warm before the clock starts
        time.sleep(max(0.0, start - time.time()))
        began = time.perf_counter()
        if kind == "closed":
            _closed(call, metadata, payloads, int(amount), seconds, began, samples)
        else:
            _open(call, metadata, payloads, amount, seconds, began, samples)
    out.put(samples)


def _closed(
    call: Any, metadata: Any, payloads: list[bytes], width: int, seconds: float, began: float, samples: list[Sample]
) -> None:
    def loop(offset: int) -> None:
        n = offset
        while (sent := time.perf_counter()) - began < seconds:
            try:
                call(payloads[n % len(payloads)], metadata=metadata, timeout=DEADLINE)
                code = "OK"
            except grpc.RpcError as error:
                code = error.code().name
            samples.append((sent - began, time.perf_counter() - sent, code))
            n += width

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(width)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _open(
    call: Any, metadata: Any, payloads: list[bytes], rate: float, seconds: float, began: float, samples: list[Sample]
) -> None:
    outstanding = threading.Semaphore(5000)  # the client's own bound: beyond it, a call counts as CLIENT_BACKLOG

    def done(at: float, sent: float, future: grpc.Future[Any]) -> None:
        error = future.exception()
        code = "OK" if error is None else error.code().name  # type: ignore[attr-defined]
        samples.append((at, time.perf_counter() - sent, code))
        outstanding.release()

    n = 0
    lag = 0.0
    while (at := n / rate) < seconds:
        time.sleep(max(0.0, at - (time.perf_counter() - began)))
        sent = time.perf_counter()
        lag = max(lag, sent - began - at)
        if not outstanding.acquire(blocking=False):
            samples.append((at, 0.0, "CLIENT_BACKLOG"))
        else:
            future = call.future(payloads[n % len(payloads)], metadata=metadata, timeout=DEADLINE)
            future.add_done_callback(lambda f, at=at, sent=sent: done(at, sent, f))
        n += 1
    samples.append((seconds, lag, "LAG"))  # how far behind its schedule this client fell, at worst
    for _ in range(5000):  # every call answered or timed out
        outstanding.acquire(timeout=DEADLINE + 5)


# The soak's connector keeps this many NCIS records current: each is re-sent, changed, every
# INGEST_RECORDS / rate seconds. The index keeps its size (the queries' cost with it) once they exist, so
# the rate found before the soak stays the rate the soak is a fraction of: fresh records at 20 a second
# grew a 20,000-tracing index by a fifth in 10 minutes, and a fuzzy query's cost grows with the index.
INGEST_RECORDS = 500


def ingest_client(profile: Path, rate: float, seconds: float, seed: int, out: Any) -> None:
    """Stream demo tracings (as NCIS's) at `rate` a second, as updates of INGEST_RECORDS records once each
    exists; puts (sent, acknowledged, errors)."""

    def requests() -> Iterator[ingest_pb2.IngestRequest]:
        began, n = time.perf_counter(), 0
        for tracing in generate_tracings(int(rate * seconds * 1.1) + 10, seed=seed):
            if n / rate >= seconds:
                break
            if tracing.subject is None:
                continue
            row = tracing_to_row(tracing)
            row.update(agency="NCIS", record_number=f"SOAK-{seed}-{n % INGEST_RECORDS:07d}")
            if row.get("custodian"):  # only a file or an open case has one
                row["custodian"] = "NCIS"
            request = to_request(row, request_id=str(n))
            if isinstance(request, ingest_pb2.IngestRequest):
                time.sleep(max(0.0, n / rate - (time.perf_counter() - began)))
                yield request
                n += 1

    errors = 0
    outcomes: Counter[int] = Counter()
    with session(Profile.load(profile)) as (channel, metadata):
        stub = ingest_pb2_grpc.IngestServiceStub(channel)
        try:
            for result in stub.Ingest(requests(), metadata=metadata, timeout=seconds + 60):
                outcomes[result.outcome] += 1
        except grpc.RpcError:
            errors += 1
    good = (ingest_pb2.INGEST_OUTCOME_APPLIED, ingest_pb2.INGEST_OUTCOME_UNCHANGED)
    acked = sum(n for outcome, n in outcomes.items() if outcome in good)
    out.put((sum(outcomes.values()), acked, errors + sum(outcomes.values()) - acked))
