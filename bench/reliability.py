"""docs/RELIABILITY.md in one command: every crash, fault, fuzzing and load piece of issue 8, full counts.

    .venv/bin/python -m bench.reliability                      # everything; the soak runs 10 minutes
    .venv/bin/python -m bench.reliability --soak-minutes 1 --out /tmp/RELIABILITY.md   # a shorter rehearsal

Each piece runs as its own process: pytest (the slow variants where there are any) with
$DCII_RELIABILITY_RESULTS pointing at a JSON-lines file the tests append their figures to
(tests/server_proc.record) and a JUnit file for each test's outcome; then bench/soak.py twice, once
without the server's concurrency cap (the "before" of the overload row) and once as configured. The
document gets one table row per test: what it did, how many trials or requests, what was lost, and what
failed. A known failure (a strict xfail: a bug found and reported, in a file this work may not change) is
listed as such, never hidden.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

# (label, pytest arguments, what a passing test proves when it records no figures of its own)
PIECES: list[tuple[str, list[str], dict[str, str]]] = [
    (
        "crash: ingest",
        ["-m", "slow", "tests/test_crash.py"],
        {"test_kill_9_during_ingest_fifty_times": "50 kills mid-stream: every acknowledged tracing kept, none doubled"},
    ),
    (
        "crash: lifecycle, retention, batch",
        ["-m", "slow", "tests/test_crash_lifecycle.py", "tests/test_crash_batch.py"],
        {},
    ),
    (
        "crash: a serving replica",
        ["-m", "slow", "tests/test_crash_replica.py"],
        {
            "test_kill_9_a_replica_twenty_times": "20 kills of a replica (dcii serve --processes 2) mid-ingest and "
            "mid-search: every acknowledged tracing kept, every answer accounted, the trail intact, the primary "
            "answering throughout"
        },
    ),
    ("faults: storage", ["tests/test_faults.py"], {}),
    ("faults: clients", ["tests/test_client_faults.py", "tests/test_client_overload.py"], {}),
    ("bad input: every RPC (hypothesis)", ["-m", "slow", "-s", "tests/test_fuzz_rpc.py"], {}),
    ("bad input: file parsers (atheris)", ["-m", "slow or not slow", "tests/test_fuzz_parsers.py"], {}),
    ("limits and security", ["tests/test_limits.py", "tests/test_security.py"], {}),
]


@dataclass
class Outcome:
    name: str
    status: str  # passed, failed, known failure, skipped
    seconds: float
    message: str = ""


def junit(path: Path) -> list[Outcome]:
    found = []
    for case in ET.parse(path).getroot().iter("testcase"):  # noqa: S314 (our own pytest's file)
        status, message = "passed", ""
        for child in case:
            if child.tag in ("failure", "error"):
                status, message = "failed", (child.get("message") or "")[:300]
            elif child.tag == "skipped":
                xfail = child.get("type") == "pytest.xfail"
                status, message = ("known failure" if xfail else "skipped"), child.get("message") or ""
        found.append(Outcome(case.get("name", "?"), status, float(case.get("time", 0)), message))
    return found


def run_pytest(args: list[str], results: Path, work: Path, label: str) -> tuple[list[Outcome], str, float]:
    report = work / f"{re.sub(r'[^a-z]+', '-', label.lower())}.xml"
    command = [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--timeout=7200", f"--junitxml={report}", *args]
    started = time.monotonic()
    print(f"== {label}: {' '.join(command[2:])}", flush=True)
    env = dict(os.environ, DCII_RELIABILITY_RESULTS=str(results))
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    print(done.stdout[-1500:], flush=True)
    return (junit(report) if report.exists() else []), done.stdout, time.monotonic() - started


def run_soak(minutes: float, cap_off: bool, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    out = work / f"soak-{'uncapped' if cap_off else 'capped'}.json"
    command = [PYTHON, "bench/soak.py", "--tracings", str(args.tracings), "--minutes", str(minutes), "--json", str(out)]
    command += ["--overload-seconds", str(args.overload_seconds)]
    if cap_off:
        command += ["--max-concurrent-rpcs", "0"]
    print(f"== load: {' '.join(command[1:])}", flush=True)
    subprocess.run(command, cwd=ROOT, check=False)
    return json.loads(out.read_text()) if out.exists() else {"failed_checks": ["did not finish"]}


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    except OSError:
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def revision() -> str:
    """The commit the tree is at, and whether it had changes not yet committed (the run tests the tree)."""
    head = _git("rev-parse", "--short", "HEAD")
    if head is None:
        return "an unknown revision"
    return f"commit {head}" + (" with uncommitted changes" if _git("status", "--porcelain") else "")


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if "model name" in line
        ),
        platform.processor(),
    )
    memory = next(
        line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    return (
        f"{cpu}, {os.cpu_count()} CPUs, {int(memory) // 2**20} GiB memory; Linux {platform.release()}; "
        f"Python {platform.python_version()}"
    )


def rows(pieces: list[tuple[str, list[Outcome], str]], records: list[dict[str, Any]]) -> list[list[str]]:
    by_node = {r["node"]: r for r in records if r.get("node")}
    table = []
    for label, outcomes, stdout in pieces:
        defaults = next((d for name, _, d in PIECES if name == label), {})
        sent = re.search(r"generated requests sent: (\d+)", stdout)
        for outcome in outcomes:
            if outcome.status == "skipped" and "slow" not in label and "not selected" in outcome.message:
                continue
            found = by_node.get(outcome.name, {})
            what = found.get("test") or outcome.name.removeprefix("test_").replace("_", " ")
            detail = str(found.get("detail") or defaults.get(outcome.name, ""))
            requests = found.get("requests", "")
            if sent and outcome.name == "test_slow_run_sent_100000_requests":
                requests, detail = sent.group(1), "generated requests over every RPC: never INTERNAL, never a crash"
            if outcome.status == "known failure":
                detail = outcome.message
            figures = {
                k: v
                for k, v in found.items()
                if k not in ("test", "node", "trials", "requests", "lost", "failed", "detail")
            }
            if figures:
                detail = (detail + "; " if detail else "") + ", ".join(f"{k} {v}" for k, v in figures.items())
            lost = found.get("lost", 0 if outcome.status == "passed" else "")
            failed = found.get(
                "failed", 0 if outcome.status == "passed" else ("see result" if outcome.status != "skipped" else "")
            )
            table.append(
                [
                    label,
                    what,
                    str(found.get("trials", "")),
                    str(requests),
                    str(lost),
                    str(failed),
                    outcome.status,
                    detail,
                ]
            )
    return table


def _checks(phase: dict[str, Any]) -> str:
    bad = [name for name, ok in phase.get("checks", {}).items() if not ok]
    return "passed" if phase.get("checks") and not bad else "failed: " + ", ".join(bad or ["did not run"])


def _disk_figures(disk: dict[str, Any] | None) -> str:
    """The data disk's write time per second (bench.soak_disk): a stalled disk stalls every answer."""
    if not disk:
        return ""
    figures = (
        f"; the data's disk spent {disk['write_ms_median_second']} ms on writes in the median second, "
        f"{disk['write_ms_slowest_second']} ms in the slowest (at {disk['slowest_second_at_s']} s)"
    )
    if disk.get("write_ms_near_refusals") is not None:
        figures += f", {disk['write_ms_near_refusals']} ms at worst around the refusals"
    return figures


def load_rows(before: dict[str, Any], after: dict[str, Any]) -> list[list[str]]:
    m, s, o, r = (after.get(k, {}) for k in ("maximum", "soak", "overload", "recovery"))
    ob = before.get("overload", {})
    cap = after.get("settings", {}).get("server", {}).get("max_concurrent_rpcs", "the default")
    steps = ", ".join(f"{x.get('rate')} → {x.get('ok_per_second')}" for x in m.get("steps", [])[1:])
    ingest = s.get("ingest", {})
    soak_errors = sum(n for code, n in s.get("codes", {}).items() if code != "OK") + ingest.get("errors", 0)
    soak_figures = (
        f"p99 first {s.get('window_s')} s {s.get('p99_first_ms')} ms, last {s.get('p99_last_ms')} ms; "
        f"RSS (median) {s.get('rss_start_mib')} → {s.get('rss_end_mib')} MiB ({s.get('rss_growth_pct')}%) after "
        f"warm-up, peak {s.get('rss_max_mib')} MiB; the server used {s.get('server_cpu_cores')} cores, "
        f"{s.get('server_cpu_ms_per_query')} ms of CPU a query ({s.get('server_cpu_ms_per_query_first')} in the "
        f"first minute, {s.get('server_cpu_ms_per_query_last')} in the last)"
    )
    soak_figures += _disk_figures(s.get("disk"))
    capped = (
        f"served {o.get('ok_per_second')}/s, p99 {o.get('ok_p99_ms')} ms; refusals p99 {o.get('shed_p99_ms')} ms; "
        f"{o.get('timed_out_pct')}% reached the 5 s deadline"
    )
    uncapped = (
        f"served {ob.get('ok_per_second')}/s, p50 {ob.get('ok_p50_ms')} ms; "
        f"{ob.get('timed_out_pct')}% reached the 5 s deadline"
    )
    recovered = f"errors in its first second: {r.get('first_second_errors')}; p99 {r.get('ok_p99_ms')} ms"
    return [
        ["maximum sustained query rate (4 modes)", f"{m.get('ok_per_second', '?')} queries/s", "", "", "measured",
         f"open-loop steps, asked → answered a second: {steps}"],
        [f"soak: {s.get('minutes', '?')} min at 80% ({s.get('rate', '?')}/s), ingest beside (updates of"
         f" {s.get('ingest', {}).get('records', '?')} records)",
         f"{s.get('calls', '?')} queries, {ingest.get('sent', '?')} tracings",
         str(ingest.get("sent", 0) - ingest.get("acknowledged", 0)), str(soak_errors), _checks(s), soak_figures],
        [f"overload at 2x ({o.get('rate', '?')}/s), max_concurrent_rpcs {cap}", f"{o.get('calls', '?')} queries", "0",
         json.dumps(o.get("codes", {})), _checks(o), capped],
        [f"overload at 2x ({ob.get('rate', '?')}/s) before the fix: no cap", f"{ob.get('calls', '?')} queries", "0",
         json.dumps(ob.get("codes", {})), "what the cap fixes" if ob else "not run", uncapped],
        [f"recovery at 50% ({r.get('rate', '?')}/s) right after", f"{r.get('calls', '?')} queries", "0",
         json.dumps(r.get("codes", {})), _checks(r), recovered],
    ]  # fmt: skip


def table(header: list[str], body: list[list[str]]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in body]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "RELIABILITY.md")
    parser.add_argument("--soak-minutes", type=float, default=10.0)
    parser.add_argument("--tracings", type=int, default=20_000, help="demo tracings behind the load runs")
    parser.add_argument("--overload-seconds", type=float, default=30.0)
    parser.add_argument("--skip", nargs="*", default=[], help="labels of pieces to leave out (for a rehearsal)")
    parser.add_argument(
        "--pieces-from",
        type=Path,
        help="take the pytest pieces from an earlier run's work directory (its junit reports and results.jsonl)"
        " instead of running them again, and run only the load; the document says so",
    )
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="dcii-reliability-"))
    results = work / "results.jsonl"
    started, load_start, tree = dt.datetime.now(dt.UTC), os.getloadavg(), revision()
    pieces = []
    for label, pytest_args, _ in PIECES:
        if label in args.skip:
            continue
        if args.pieces_from is not None:
            report = args.pieces_from / f"{re.sub(r'[^a-z]+', '-', label.lower())}.xml"
            pieces.append((label, junit(report) if report.exists() else [], ""))
            continue
        outcomes, stdout, _seconds = run_pytest(pytest_args, results, work, label)
        pieces.append((label, outcomes, stdout))
    (work / "tree.txt").write_text(tree + "\n")
    reused = ""
    if args.pieces_from is not None:
        earlier_tree = args.pieces_from / "tree.txt"
        tree_then = earlier_tree.read_text().strip() if earlier_tree.exists() else "a tree it did not record"
        shutil.copy(args.pieces_from / "results.jsonl", results)
        earlier = dt.datetime.fromtimestamp((args.pieces_from / "results.jsonl").stat().st_mtime, dt.UTC)
        reused = (
            f"\nThe crash, fault, bad-input and security pieces were not run again: their reports are those of an"
            f" earlier run of this command, finished {earlier:%Y-%m-%d %H:%M} UTC on the tree at {tree_then}"
            f" (`--pieces-from`); only the load ran on this tree.\n"
        )
    before = after = {}
    if "load" not in args.skip:
        before = run_soak(0.25, True, work, args)
        after = run_soak(args.soak_minutes, False, work, args)
    records = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    body = rows(pieces, records)
    finished = dt.datetime.now(dt.UTC)
    loaded = load_rows(before, after) if after else []
    failed = [row for row in body if row[6] == "failed"] + [row for row in loaded if row[4].startswith("failed")]
    known = [row for row in body if row[6] == "known failure"]
    command = " ".join([".venv/bin/python -m bench.reliability", *(argv if argv is not None else sys.argv[1:])])
    document = f"""# Reliability: crashes, faults, bad input, load

Produced by one command, `{command}`
(bench/reliability.py), on the tree at {tree}, from {started:%Y-%m-%d %H:%M} to {finished:%H:%M} UTC.
{reused}
Machine: {machine()}. Load average {load_start[0]:.1f} when the run began and {os.getloadavg()[0]:.1f} when it
ended (the run's own processes count in it; the machine may be shared with other work): latencies and rates
depend on what else ran, the counts of what was lost or failed do not.

Every row below either shows nothing lost and no unexpected status, or is marked: {len(failed)} failed,
{len(known)} known failures (bugs found by this work in files it may not change, reported, pinned by strict
xfails that will fail loudly once fixed).

## Crash, fault, fuzzing, limit and security tests

{table(["piece", "test", "trials", "requests", "lost", "failed", "result", "what it shows"], body)}

## Load (bench/soak.py)

{table(["run", "calls", "lost", "statuses", "result", "figures"], loaded) if loaded else "(not run)"}

## How to read it

- **trials**: kills, rounds of faults, or fuzzing runs; **requests**: actions, queries or generated inputs sent.
- **lost**: acknowledged records missing afterwards (crash tests check every one), or queries never answered.
- **failed**: unexpected statuses or failed checks; a passing test asserts there were none.
- The overload rows compare the server without its concurrency cap (`ServerConfig.max_concurrent_rpcs`:
  calls queue until their deadline) with the cap (calls beyond it refused at once with RESOURCE_EXHAUSTED).
"""
    args.out.write_text(document)
    print(f"wrote {args.out} ({len(body)} test rows; {len(failed)} failed, {len(known)} known failures)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
