"""Batch requests under online load (issue 5): does a running batch keep online p99 within 2x?

    .venv/bin/python bench/batch.py                                   # 100,000 tracings, 100,000-query batch
    .venv/bin/python bench/batch.py --tracings 20000 --batch 10000   # a quick run

1. `dcii serve --demo`'s bootstrap makes the PKI, the demo activities and N demo tracings (seeded).
2. `dcii serve` runs in a subprocess, with its default batch worker (search_service.batch_worker's
   BatchSettings: one thread in a low-priority worker process of its own, duty 0.5).
3. Unloaded: one client asks --online EXACT queries (name + SSN of demo people) one after another,
   before the batch and again after it (both count in the baseline).
4. Loaded: a --batch query batch (every mode, on demo people) is submitted; the same client asks the
   same online queries, in a loop, for as long as the batch runs. Only queries timed while the batch was
   RUNNING count.
5. A --sample of the batch's queries is asked online afterwards: hits must be equal (records, scores,
   explanations).
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import grpc

from dcii.cli.bootstrap import bootstrap
from dcii.cli.client import Profile, session
from dcii.v1 import batch_pb2, batch_pb2_grpc, search_pb2, search_pb2_grpc, tracing_pb2
from indexer.demo import generate_tracings
from search_service.batch_worker import BatchSettings
from tests.support import free_port, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
M = search_pb2.SearchMode
ACTIVE = (batch_pb2.BATCH_STATE_QUEUED, batch_pb2.BATCH_STATE_RUNNING)


def people(count: int, seed: int) -> list[Any]:
    return [
        t.subject
        for t in generate_tracings(count, seed=seed)
        if t.subject is not None and t.subject.name.surname and t.subject.name.given_name
    ]


def online_queries(subjects: list[Any], n: int) -> list[search_pb2.SearchRequest]:
    with_ssn = [s for s in subjects if s.identifiers.ssn]
    return [
        search_pb2.SearchRequest(
            mode=M.SEARCH_MODE_EXACT,
            purpose=search_pb2.PURPOSE_SECURITY_CLEARANCE,
            name=tracing_pb2.PersonName(surname=s.name.surname, given_name=s.name.given_name),
            identifiers=tracing_pb2.PersonalIdentifiers(ssn=s.identifiers.ssn),
        )
        for s in (with_ssn[i % len(with_ssn)] for i in range(n))
    ]


def batch_query(i: int, subject: Any) -> batch_pb2.BatchQuery:
    name = tracing_pb2.PersonName(surname=subject.name.surname, given_name=subject.name.given_name)
    ids = subject.identifiers
    dob = ids.date_of_birth
    request = search_pb2.SearchRequest(purpose=search_pb2.PURPOSE_SECURITY_CLEARANCE, name=name)
    kind = i % 6
    if kind == 0 and ids.ssn:
        request.mode, request.identifiers.ssn = M.SEARCH_MODE_EXACT, ids.ssn
    elif kind in (0, 1, 5) and dob is not None:
        request.mode = M.SEARCH_MODE_EXACT if kind != 5 else M.SEARCH_MODE_PID_QUALIFIED
        d = request.identifiers.date_of_birth
        d.year, d.month, d.day = dob.year, dob.month, dob.day
    elif kind == 3:
        request.mode, request.name.given_name = M.SEARCH_MODE_NONSTANDARD, subject.name.given_name[:1]
    elif kind == 4:
        request.mode, request.name.surname = M.SEARCH_MODE_FUZZY, name.surname[:2] + name.surname[3:]
    else:
        request.mode = M.SEARCH_MODE_NAME_ONLY
    return batch_pb2.BatchQuery(query_id=f"q{i:06d}", query=request)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


def timed(stub: search_pb2_grpc.SearchServiceStub, metadata: Any, request: search_pb2.SearchRequest) -> float:
    started = time.perf_counter()
    stub.Search(request, metadata=metadata, timeout=30)
    return time.perf_counter() - started


def server_command(data: Path, pki_dir: Path, port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "dcii.cli.main",
        "serve",
        "--data",
        str(data),
        "--pki",
        str(pki_dir),
        "--port",
        str(port),
    ]


def worker_settings() -> str:
    s = BatchSettings()
    where = f"a worker process at nice {s.nice}" if s.process else "threads in the server process"
    return f"{s.threads} thread(s) in {where}, duty {s.duty}, chunk {s.chunk}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracings", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=100_000)
    parser.add_argument("--online", type=int, default=2000)
    parser.add_argument("--sample", type=int, default=500)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--dir", help="work directory (default: a temporary one)")
    args = parser.parse_args()
    root = Path(args.dir or tempfile.mkdtemp(prefix="dcii-bench-batch-"))
    data, pki_dir, port = root / "data", root / "pki", free_port()
    started = time.perf_counter()
    profiles = bootstrap(data, pki_dir, port=port, count=args.tracings, seed=args.seed)
    profile = Profile.load(profiles / "adjudicator.json")
    profile = dataclasses.replace(profile, server=f"localhost:{port}")
    print(f"{args.tracings} tracings loaded in {time.perf_counter() - started:.0f} s ({root})", file=sys.stderr)
    subjects = people(args.tracings, args.seed)
    online = online_queries(subjects, args.online)
    batch = [batch_query(i, subjects[(i * 7919) % len(subjects)]) for i in range(args.batch)]
    server = subprocess.Popen(server_command(data, pki_dir, port), cwd=ROOT, stderr=subprocess.PIPE)
    try:
        wait_for_port(port, server)
        with session(profile) as (channel, metadata):
            rows = run(channel, metadata, online, batch, args.sample)
    finally:
        server.terminate()
        server.wait(timeout=60)
    print(f"\nbatch benchmark: {args.tracings} tracings, seed {args.seed}, one online client")
    print(f"batch worker: {worker_settings()}")
    width = max(len(r[0]) for r in rows)
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")


def run(
    channel: grpc.Channel, metadata: Any, online: list[search_pb2.SearchRequest], batch: list[Any], sample: int
) -> list[tuple[str, str]]:
    searcher, batches = search_pb2_grpc.SearchServiceStub(channel), batch_pb2_grpc.BatchServiceStub(channel)
    for warm in online[:200]:
        timed(searcher, metadata, warm)
    unloaded = [timed(searcher, metadata, r) for r in online]
    started = time.perf_counter()
    messages = (
        batch_pb2.SubmitBatchRequest(label="bench", queries=batch[i : i + 1000]) for i in range(0, len(batch), 1000)
    )
    status = batches.SubmitBatch(messages, metadata=metadata, timeout=600)
    submitted = time.perf_counter() - started
    request = batch_pb2.GetBatchRequest(batch_id=status.batch_id)
    loaded: list[float] = []
    last_poll = 0.0
    while status.state in ACTIVE:
        for r in online:
            elapsed = timed(searcher, metadata, r)
            if time.perf_counter() - last_poll > 0.5:
                status, last_poll = batches.GetBatchStatus(request, metadata=metadata), time.perf_counter()
                if status.state not in ACTIVE:
                    break
            if status.state == batch_pb2.BATCH_STATE_RUNNING:
                loaded.append(elapsed)
    answered = time.perf_counter() - started
    # The unloaded baseline again, now the batch is done: the machine's own drift over the run (other
    # work on a shared machine) shows as a difference between the two, and both count in the baseline.
    unloaded_after = [timed(searcher, metadata, r) for r in online]
    results = list(batches.StreamBatchResults(request, metadata=metadata, timeout=600))
    picks = random.Random(1).sample(range(len(batch)), min(sample, len(batch)))
    equal = 0
    for i in picks:
        try:
            response = searcher.Search(batch[i].query, metadata=metadata, timeout=30)
            same = list(response.hits) == list(results[i].hits) and not results[i].violations
        except grpc.RpcError:
            same = bool(results[i].violations) and not results[i].hits
        equal += same and results[i].query_id == batch[i].query_id
    baseline = unloaded + unloaded_after
    p99_unloaded, p99_loaded = pct(baseline, 99), pct(loaded, 99)
    return [
        (
            "online EXACT unloaded p50 / p99",
            f"{pct(baseline, 50):.2f} / {p99_unloaded:.2f} ms ({len(baseline)} queries: before the batch"
            f" {pct(unloaded, 50):.2f} / {pct(unloaded, 99):.2f}, after {pct(unloaded_after, 50):.2f} /"
            f" {pct(unloaded_after, 99):.2f})",
        ),
        ("online EXACT during batch p50 / p99", f"{pct(loaded, 50):.2f} / {p99_loaded:.2f} ms ({len(loaded)} queries)"),
        ("p99 ratio (target <= 2x)", f"{p99_loaded / p99_unloaded:.2f}x"),
        ("batch", f"{len(batch)} queries, state {batch_pb2.BatchState.Name(status.state)}, {status.rejected} refused"),
        ("batch submit (stream + durable queue)", f"{submitted:.1f} s"),
        ("batch answered in", f"{answered:.1f} s ({len(batch) / answered:.0f} queries/s)"),
        (
            "hits in results",
            f"{sum(len(r.hits) for r in results)} (mean {statistics.mean(len(r.hits) for r in results):.1f})",
        ),
        ("sample equal to online", f"{equal} / {len(picks)}"),
    ]


if __name__ == "__main__":
    main()
