"""Load (issue 8): the maximum query rate, a soak at 80% of it with ingest beside it, overload at 2x.

    .venv/bin/python bench/soak.py                     # 10-minute soak, as for docs/RELIABILITY.md
    .venv/bin/python bench/soak.py --minutes 0.34      # about 20 seconds of soak (CI-sized)
    .venv/bin/python bench/soak.py --max-concurrent-rpcs 0   # the server without its concurrency cap

1. `dcii serve --demo`'s bootstrap makes the PKI, the demo activities and --tracings demo tracings; the
   server runs in a subprocess (tests.server_proc) over real mutual TLS, its per-activity rate limit and
   cap on calls in progress raised out of the way (this measures the server, not the limiters).
2. Maximum rate: --processes client processes; a closed-loop estimate, then an open-loop ramp from half
   of it, 15% more a step, until a step is not steady (an error, under 97% answered, a p99 over 500 ms,
   or a queue: the second half's p99 over twice the first's, or a median over three times (+5 ms) the
   first steady step's); the last steady step's rate is the maximum (what the server sustains, not what
   it can burst), never above the closed-loop estimate (what it answers saturated). Queries rotate over
   EXACT (name + SSN), NAME_ONLY, FUZZY (a letter dropped) and PID_QUALIFIED (name + date of birth).
3. Soak: open loop at 80% of the maximum for --minutes, an ingest stream (--ingest-rate tracings a
   second, keeping INGEST_RECORDS records current: the index keeps its size) beside it. Must hold: zero
   errors; p99 of the last minute within 1.5x (+5 ms) of the first; the server's resident memory after
   warm-up (the first fifth, at most a minute) grows under 5% (median of the last minute against the
   minute after warm-up). Reported beside: the data disk's write time second by second (bench.soak_disk),
   since a disk that stalls stalls every answer (each waits for its audit write's fsync).
4. Overload: open loop at 2x the maximum for --overload-seconds. Must hold: the server sheds what it
   cannot serve with RESOURCE_EXHAUSTED or UNAVAILABLE, quickly (p99 of a refusal under 1 s, a fifth of
   the deadline), and does not queue without bound (under 1% of calls reach their 5 s deadline).
5. Recovery: open loop at 50% right after, for --recovery-seconds: zero errors from the first second.

Latency is measured from each call's sending; the open-loop clients send on schedule whatever the
answers do, and report how far behind schedule they fell at worst (client_lag_max_ms). Results go to
--json (read by bench/reliability.py) and stdout; exit status 1 when a check fails.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# By its package name, not as a bare sibling (bench/scale.py's way): tests/test_bench_soak.py imports
# bench.soak, so mypy reads this module too and knows bench/ only as a package. The line above puts the
# repository on the path, so `python bench/soak.py` finds the package as well.
from bench import soak_disk
from bench.soak_clients import INGEST_RECORDS, Sample, ingest_client, queries, search_client
from dcii.cli.bootstrap import bootstrap
from tests.server_proc import rss_bytes, spawn_server
from tests.support import free_port

SHED = ("RESOURCE_EXHAUSTED", "UNAVAILABLE")


# ---- phases ----


@dataclass
class Bench:
    profiles: Path
    payloads: list[bytes]
    processes: int
    server_pid: int
    rss: list[tuple[float, int, int]] = field(default_factory=list)  # (time, VmRSS, RssAnon)
    cpu: list[tuple[float, float]] = field(default_factory=list)  # (time, the server's CPU seconds so far)
    started: float = 0.0  # wall-clock start of the last phase's load (its samples' time 0)
    ingested: tuple[int, int, int] = (0, 0, 0)  # the last phase's ingest: sent, acknowledged, errors
    disk_stat: Path | None = None  # the data directory's block device (bench.soak_disk)
    disk: list[soak_disk.Reading] = field(default_factory=list)

    def phase(self, kind: str, total: float, seconds: float, ingest: float = 0.0, seed: int = 0) -> list[Sample]:
        """Run `processes` clients (`total` calls in flight, or calls a second, split between them)."""
        context = mp.get_context("spawn")
        out = context.Queue()
        start = self.started = time.time() + 3.0  # every process logged in and warm by then
        share = total / self.processes
        workers = [
            context.Process(
                target=search_client,
                args=(
                    self.profiles / "adjudicator.json",
                    self.payloads[i :: self.processes],
                    (kind, share, seconds),
                    start,
                    out,
                ),
            )
            for i in range(self.processes)
        ]
        if ingest:
            workers.append(
                context.Process(
                    target=ingest_client, args=(self.profiles / "ncis-connector.json", ingest, seconds, seed, out)
                )
            )
        for worker in workers:
            worker.start()
        results = [out.get(timeout=seconds + 600) for _ in workers]
        for worker in workers:
            worker.join()
        self.ingested = next((r for r in results if isinstance(r, tuple)), (0, 0, 0))
        return [sample for r in results if isinstance(r, list) for sample in r]

    def cpu_seconds(self) -> float:
        """CPU time the server process has used (user + system), from /proc."""
        fields = Path(f"/proc/{self.server_pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def watch(self, stop: threading.Event) -> None:
        """Every second until `stop`: the server's memory and CPU, timed like the phase's samples."""
        while not stop.wait(1.0):
            try:
                at = time.time() - self.started
                self.rss.append((at, rss_bytes(self.server_pid), rss_bytes(self.server_pid, "RssAnon")))
                self.cpu.append((at, self.cpu_seconds()))
                if self.disk_stat is not None:
                    self.disk.append(soak_disk.read(self.disk_stat, at))
            except (OSError, LookupError):
                return

    def cpu_ms_per_query(self, samples: list[Sample], start: float, end: float) -> float:
        """The server's CPU per answered query between two moments of the phase (a growing cost is a
        server that slows down as it runs; a steady one with rising latency is a machine that got busier)."""
        inside = [cpu for at, cpu in self.cpu if start <= at <= end]
        answered = sum(1 for at, _, code in samples if start <= at < end and code == "OK")
        return round(1000 * (inside[-1] - inside[0]) / max(1, answered), 2) if len(inside) > 1 else 0.0


def p99(latencies: list[float]) -> float:
    if len(latencies) < 2:
        return latencies[0] if latencies else 0.0
    return statistics.quantiles(latencies, n=100)[98]


def summary(samples: list[Sample], seconds: float) -> dict[str, Any]:
    lags = [latency for _, latency, code in samples if code == "LAG"]
    samples[:] = [sample for sample in samples if sample[2] != "LAG"]
    codes = Counter(code for _, _, code in samples)
    ok = [latency for _, latency, code in samples if code == "OK"]
    shed = [latency for _, latency, code in samples if code in SHED]
    return {
        "calls": len(samples),
        "ok_per_second": round(len(ok) / seconds, 1),
        "codes": dict(codes),
        "ok_p50_ms": round(statistics.median(ok) * 1000, 2) if ok else None,
        "ok_p99_ms": round(p99(ok) * 1000, 2) if ok else None,
        "shed_p99_ms": round(p99(shed) * 1000, 2) if shed else None,
        "client_lag_max_ms": round(max(lags) * 1000, 1) if lags else None,
    }


def _steady(samples: list[Sample], seconds: float, rate: float, base_p50_ms: float | None) -> bool:
    """A step the server sustained: every call answered OK and nearly all that was asked, p99 under 500 ms,
    and no queue building up: the second half's p99 at most twice the first half's, and the median at
    most three times (+5 ms) the first steady step's. A saturated server can keep a queue of constant
    length for a whole step (each half alike) while every call waits in it: the median shows that queue
    (a step at 418 q/s answered all it was asked with p50 114 ms, the step before with 6 ms), and a soak
    at 80% of such a rate runs the queue into the server's concurrency cap."""
    found = summary(list(samples), seconds)
    halves = [[lat for at, lat, code in samples if code == "OK" and (at >= seconds / 2) == late] for late in (0, 1)]
    return (
        set(found["codes"]) == {"OK"}
        and found["ok_per_second"] >= 0.97 * rate
        and found["ok_p99_ms"] < 500
        and p99(halves[1]) <= 2 * p99(halves[0]) + 0.005
        and (base_p50_ms is None or found["ok_p50_ms"] <= 3 * base_p50_ms + 5)
    )


def maximum(bench: Bench, step: float) -> tuple[float, list[dict[str, Any]]]:
    """The highest rate the server sustains: open loop, from half of a closed-loop estimate, 15% more each
    step, until a step is not steady (see _steady); the last steady step's answered rate is the maximum, at
    most the closed-loop estimate's.
    Should not even the first step hold (a machine busy with other work), the start is lowered by 30% a
    step until one does; 0 when none does."""
    estimate = summary(bench.phase("closed", 4 * bench.processes, step), step)
    estimate["closed_loop_in_flight"] = 4 * bench.processes
    print("closed-loop estimate", estimate, flush=True)
    steps = [estimate]
    rate, best = max(10.0, 0.5 * estimate["ok_per_second"]), 0.0
    base_p50_ms: float | None = None  # the first steady step's median: the server without a queue
    for _ in range(20):
        samples = bench.phase("open", rate, step)
        steady = _steady(samples, step, rate, base_p50_ms)
        found = summary(samples, step) | {"rate": round(rate, 1), "steady": steady}
        steps.append(found)
        print("max-rate step", found, flush=True)
        if steady:
            best, rate = found["ok_per_second"], rate * 1.15
            base_p50_ms = found["ok_p50_ms"] if base_p50_ms is None else base_p50_ms
        elif best == 0.0 and rate > 10.0:
            rate = max(10.0, rate * 0.7)
        else:
            break
    # Never above what the server answered saturated (the closed loop keeps calls waiting at all times): an
    # open-loop step above it can look steady for its 15 s while a backlog grows slowly. A soak at 80% of
    # such a step (429 q/s against a closed-loop 370) ran the server at its one core for ten minutes, and
    # its queue into the concurrency cap.
    return min(best, estimate["ok_per_second"]), steps


def soak(bench: Bench, rate: float, minutes: float, ingest: float) -> dict[str, Any]:
    seconds = minutes * 60
    stop = threading.Event()
    watcher = threading.Thread(target=bench.watch, args=(stop,))
    watcher.start()
    cpu, wall = bench.cpu_seconds(), time.monotonic()
    samples = bench.phase("open", rate, seconds, ingest=ingest, seed=99)
    cpu, wall = bench.cpu_seconds() - cpu, time.monotonic() - wall
    stop.set()
    watcher.join()
    found = summary(samples, seconds)
    window = min(60.0, seconds / 3)
    first = [lat for at, lat, code in samples if at < window and code == "OK"]
    last = [lat for at, lat, code in samples if at >= seconds - window and code == "OK"]
    # Growth after warm-up, median of the last minute against the median of the minute after warm-up
    # (a median: a transient allocation of one moment is not growth).
    warm = min(60.0, seconds / 5)
    after = [(at, vm, anon) for at, vm, anon in bench.rss if at >= warm]
    early = [vm for at, vm, _ in after if at < warm + window] or [1]
    late = [vm for at, vm, _ in after if at >= seconds - window] or early
    growth = (statistics.median(late) - statistics.median(early)) / statistics.median(early)
    sent, acked, ingest_errors = bench.ingested
    found |= {
        "minutes": minutes,
        "rate": round(rate, 1),
        "window_s": round(window, 1),
        "p99_first_ms": round(p99(first) * 1000, 2),
        "p99_last_ms": round(p99(last) * 1000, 2),
        "rss_start_mib": round(statistics.median(early) / 2**20, 1),
        "rss_end_mib": round(statistics.median(late) / 2**20, 1),
        "rss_max_mib": round(max(vm for _, vm, _ in after) / 2**20, 1) if after else None,
        "rss_growth_pct": round(growth * 100, 2),
        # The server's own CPU: how much of the machine it got (others share it) and what a query costs.
        "server_cpu_cores": round(cpu / wall, 2),
        "server_cpu_ms_per_query": round(1000 * cpu / max(1, found["calls"]), 2),
        "server_cpu_ms_per_query_first": bench.cpu_ms_per_query(samples, 0, window),
        "server_cpu_ms_per_query_last": bench.cpu_ms_per_query(samples, seconds - window, seconds),
        "ingest": {"sent": sent, "acknowledged": acked, "errors": ingest_errors, "records": INGEST_RECORDS},
        "disk": soak_disk.report(bench.disk, samples),
        "rss_every_10s_mib": [round(vm / 2**20) for at, vm, _ in bench.rss if int(at) % 10 == 0],
    }
    errors = sum(n for code, n in found["codes"].items() if code != "OK") + ingest_errors + (sent - acked)
    found["checks"] = {
        "zero_errors": errors == 0,
        "p99_stable": found["p99_last_ms"] <= 1.5 * found["p99_first_ms"] + 5,
        "rss_growth_under_5pct": growth < 0.05,
    }
    return found


def overload(bench: Bench, rate: float, seconds: float) -> dict[str, Any]:
    found = summary(bench.phase("open", rate, seconds), seconds)
    calls = max(1, found["calls"])
    timed_out = found["codes"].get("DEADLINE_EXCEEDED", 0) + found["codes"].get("CLIENT_BACKLOG", 0)
    unexpected = set(found["codes"]) - {"OK", *SHED, "DEADLINE_EXCEEDED", "CLIENT_BACKLOG"}
    found |= {"rate": round(rate, 1), "seconds": seconds, "timed_out_pct": round(100 * timed_out / calls, 2)}
    found["checks"] = {
        "sheds_with_resource_exhausted_or_unavailable": any(code in found["codes"] for code in SHED)
        or found["codes"].get("OK", 0) == found["calls"],
        "sheds_quickly": (found["shed_p99_ms"] or 0) < 1000,
        "no_unbounded_queue": timed_out / calls < 0.01,
        "no_unexpected_status": not unexpected,
    }
    return found


def recovery(bench: Bench, rate: float, seconds: float) -> dict[str, Any]:
    samples = bench.phase("open", rate, seconds)
    found = summary(samples, seconds)
    first_second = [code for at, _, code in samples if at < 1.0]
    found |= {"rate": round(rate, 1), "first_second_errors": sum(code != "OK" for code in first_second)}
    found["checks"] = {"zero_errors": set(found["codes"]) == {"OK"}}
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, help="work directory (default: a new temporary one)")
    parser.add_argument("--tracings", type=int, default=20_000)
    parser.add_argument("--processes", type=int, default=3, help="client processes")
    parser.add_argument("--step-seconds", type=float, default=15.0, help="length of each maximum-rate step")
    parser.add_argument("--minutes", type=float, default=10.0, help="soak length")
    parser.add_argument("--ingest-rate", type=float, default=20.0, help="tracings a second streamed during the soak")
    parser.add_argument("--overload-seconds", type=float, default=30.0)
    parser.add_argument("--recovery-seconds", type=float, default=15.0)
    parser.add_argument("--max-concurrent-rpcs", type=int, default=None, help="server setting (0: no cap)")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    work = args.dir or Path(tempfile.mkdtemp(prefix="dcii-soak-"))
    data, pki_dir, port = work / "data", work / "pki", free_port()
    print(f"preparing {args.tracings} demo tracings in {work}", flush=True)
    profiles = bootstrap(data, pki_dir, port=port, count=args.tracings, seed=1)
    for profile in profiles.glob("*.json"):  # the port of this run
        document = json.loads(profile.read_text())
        document["server"] = f"localhost:{port}"
        profile.write_text(json.dumps(document, indent=2))
    # Every client process is the one adjudicator activity: its per-activity limits are raised out of the way,
    # so that overload is shed by max_concurrent_rpcs, the server-wide cap this bench measures.
    settings: dict[str, Any] = {"rate_per_activity": 1e6, "burst_per_activity": 1e6, "max_calls_per_activity": 10**6}
    if args.max_concurrent_rpcs is not None:
        settings["max_concurrent_rpcs"] = args.max_concurrent_rpcs or None
    results: dict[str, Any] = {"settings": {k: v for k, v in vars(args).items() if k != "json"} | {"server": settings}}
    results["settings"]["dir"] = str(work)
    with spawn_server(data, pki_dir, port, stderr=work / "server.log", **settings) as server:
        bench = Bench(
            profiles, queries(args.tracings, 1), args.processes, server.pid, disk_stat=soak_disk.device_stat(data)
        )
        best, steps = maximum(bench, args.step_seconds)
        results["maximum"] = {"ok_per_second": best, "steps": steps}
        print(f"maximum: {best:.0f} queries/s", flush=True)
        if best <= 0:
            results["failed_checks"] = ["maximum.no_steady_rate"]
            if args.json:
                args.json.write_text(json.dumps(results, indent=2) + "\n")
            print("FAILED: no rate was steady, nothing to soak at", flush=True)
            return 1
        results["soak"] = soak(bench, 0.8 * best, args.minutes, args.ingest_rate)
        print("soak", results["soak"], flush=True)
        results["overload"] = overload(bench, 2 * best, args.overload_seconds)
        print("overload", results["overload"], flush=True)
        results["recovery"] = recovery(bench, 0.5 * best, args.recovery_seconds)
        print("recovery", results["recovery"], flush=True)
    failed = [
        f"{phase}.{check}"
        for phase in ("soak", "overload", "recovery")
        for check, ok in results[phase]["checks"].items()
        if not ok
    ]
    results["failed_checks"] = failed
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    print("FAILED: " + ", ".join(failed) if failed else "all checks passed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
