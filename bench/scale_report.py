"""The scale bench's figures, judged against issue 7's targets, as a console table or Markdown."""

from __future__ import annotations

import datetime as dt
import math
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from scale_queries import Query

TEN_MILLION = 10_000_000
GB = 1024**3


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest rank, in milliseconds (values in seconds)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] * 1000


def judge(queries: Sequence[Query], answers: Sequence[Any]) -> dict[str, Any]:
    """Latency and accuracy of answers (objects with seconds, keys, top_name, error) to their queries."""
    from scale_data import full_name

    ok = [(q, a) for q, a in zip(queries, answers, strict=False) if not a.error]
    seconds = [a.seconds for _, a in ok]
    n = len(ok) or 1
    return {
        "count": len(answers),
        "errors": len(answers) - len(ok),
        "p50_ms": percentile(seconds, 50),
        "p99_ms": percentile(seconds, 99),
        # The person's own tracing among the first 10 answers (for EXACT: among all of them).
        "recall10": sum(bool(set(q.truth) & set(a.keys[:10])) for q, a in ok) / n,
        "found": sum(bool(set(q.truth) & set(a.keys)) for q, a in ok) / n,
        # The first answer bears the name the query meant (namesakes of a common name count as right).
        "name1": sum(a.top_name == full_name(q.surname, q.given) for q, a in ok) / n,
    }


def _ms(figures: dict[str, Any]) -> str:
    return f"p50 {figures['p50_ms']:.2f} ms, p99 {figures['p99_ms']:.2f} ms ({figures['count']:,} queries)"


def _latency_ok(figures: dict[str, Any], p50: float, p99: float) -> bool:
    return bool(figures["count"]) and not figures["errors"] and figures["p50_ms"] <= p50 and figures["p99_ms"] <= p99


def _status(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


def _growth(results: dict[str, Any], earlier: dict[str, Any] | None) -> tuple[str, bool | None]:
    if earlier is None:
        return "not measured: pass --compare with the results.json of another size", None
    small, large = sorted((results, earlier), key=lambda r: int(r["tracings"]))
    ratios = []
    for name in ("exact_ssn", "exact_dob", "pid", "fuzzy"):
        for p in ("p50_ms", "p99_ms"):
            before, now = small["latency"][name][p], large["latency"][name][p]
            ratios.append((now / before if before else math.inf, f"{name} {p[:3]}"))
    worst, which = max(ratios)
    text = f"worst {worst:.2f}x ({which}) from {small['tracings']:,} to {large['tracings']:,} tracings"
    return text, worst <= 2.0


def rows(results: dict[str, Any], earlier: dict[str, Any] | None = None) -> list[tuple[str, str, str, str]]:
    """(what, measured, target, PASS/FAIL/n/a) for every row of issue 7's target table."""
    out: list[tuple[str, str, str, str]] = []
    n = results["tracings"]
    ingest = results.get("ingest")
    reused = " (earlier run)" if results.get("ingest_reused") else ""
    if ingest and ingest["tracings"]:
        rate = ingest["sustained"]
        out.append(
            (
                "ingest through the gRPC stream, sustained",
                f"{rate:,.0f} tracings/s{reused}",
                ">= 25,000 tracings/s",
                _status(rate >= 25_000),
            )
        )
        overall = ingest["tracings"] / ingest["seconds"]
        minutes = TEN_MILLION / overall / 60
        basis = "measured" if n >= TEN_MILLION else "projected at the overall rate"
        out.append(
            (
                "ingest, total time",
                f"{ingest['tracings']:,} in {ingest['seconds']:.1f} s; 10M {basis}: {minutes:.1f} min{reused}",
                "10 million in < 10 min",
                _status(minutes < 10),
            )
        )
    else:
        out.append(("ingest through the gRPC stream, sustained", "not measured", ">= 25,000 tracings/s", "n/a"))
        out.append(("ingest, total time", "not measured", "10 million in < 10 min", "n/a"))
    lat = results["latency"]
    for name, label in (
        ("exact_ssn", "EXACT name + SSN, one client"),
        ("exact_dob", "EXACT name + DOB, one client"),
        ("pid", "PID_QUALIFIED, one client"),
    ):
        out.append((label, _ms(lat[name]), "p50 <= 1 ms, p99 <= 3 ms", _status(_latency_ok(lat[name], 1, 3))))
    tp = results["throughput"]
    ratio = tp["exact"]["qps"] / tp["echo"]["qps"] if tp["echo"]["qps"] else 0.0
    out.append(
        (
            "EXACT throughput, many clients",
            f"{tp['exact']['qps']:,.0f} q/s = {100 * ratio:.0f}% of echo's {tp['echo']['qps']:,.0f} q/s",
            ">= 80% of a bare gRPC echo server",
            _status(ratio >= 0.8 and not tp["exact"]["errors"]),
        )
    )
    for name, label in (
        ("fuzzy", "FUZZY name only, one client"),
        ("fuzzy_common", "  of which the commonest names"),
    ):
        out.append((label, _ms(lat[name]), "p50 <= 10 ms, p99 <= 40 ms", _status(_latency_ok(lat[name], 10, 40))))
    fq = tp["fuzzy"]["qps"]
    out.append(
        (
            "FUZZY throughput, many clients",
            f"{fq:,.0f} q/s",
            ">= 300 q/s",
            _status(fq >= 300 and not tp["fuzzy"]["errors"]),
        )
    )
    text, ok = _growth(results, earlier)
    out.append(("latency growth from 1 to 10 million", text, "each latency at most 2x", _status(ok)))
    mem = results["memory"]
    out.append(
        (
            "server memory (RSS at the end)",
            f"RSS {mem['rss'] / GB:.2f} GB = anon {mem['anon'] / GB:.2f} + file {mem['file'] / GB:.2f} (SQLite mmap, "
            f"per connection); PSS {mem['pss'] / GB:.2f} GB; {results['memory_at_start']['rss'] / GB:.2f} GB at start",
            "<= 3 GB at 10 million",
            _status(mem["rss"] <= 3 * GB),
        )
    )
    start = results["startup"]
    out.append(
        (
            "start-up on the existing store",
            f"serving after {start['serving_s']:.2f} s; first EXACT answered after {start['first_query_s']:.2f} s"
            + (f"; the first FUZZY query took {ranked:.2f} s" if (ranked := start.get("first_ranked_query_s")) else ""),
            "<= 5 s to serving",
            _status(start["serving_s"] <= 5),
        )
    )
    store = results["store"]
    out.append(
        (
            "store on disk (index.db + WAL)",
            f"{store['per_tracing']:,.0f} bytes/tracing ({store['bytes'] / 1024**2:,.1f} MB)",
            "<= 3 KB per tracing",
            _status(store["per_tracing"] <= 3 * 1024),
        )
    )
    return out


def baseline_rows(results: dict[str, Any]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for b in results["baselines"]:
        out.append(
            (
                b["system"],
                f"{b['count']:,}",
                f"{b['p50_ms']:.2f} ms",
                f"{b['p99_ms']:.2f} ms",
                f"{100 * b['recall10']:.1f}%",
                f"{100 * b['name1']:.1f}%",
                b.get("note", ""),
            )
        )
    return out


BASELINE_HEAD = ("FUZZY name only, same queries", "queries", "p50", "p99", "recall@10", "name@1", "note")


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    ram = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            ram = int(line.split()[1]) * 1024
    return (
        f"{cpu}, {os.cpu_count()} cores, {ram / GB:.0f} GB RAM; {platform.system()} {platform.release()}, "
        f"{platform.python_implementation()} {platform.python_version()}"
    )


def _table(head: Sequence[str], body: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [head, *body]) for i in range(len(head))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()

    return [line(head), "  ".join("-" * w for w in widths), *(line(r) for r in body)]


def _md(head: Sequence[str], body: Sequence[Sequence[str]]) -> list[str]:
    return [
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
        *("| " + " | ".join(str(c) for c in r) + " |" for r in body),
    ]


HEAD = ("what", "measured", "target", "result")


def render(results: dict[str, Any], earlier: dict[str, Any] | None, *, markdown: bool) -> str:
    table = _md if markdown else _table
    head = [
        f"Scale benchmark: {results['tracings']:,} tracings (dcii demo, seed {results['seed']}).",
        f"Machine: {machine()}. Date: {results.get('date') or dt.date.today().isoformat()}.",
        f"Command: `{results['command']}`",
    ]
    lines = [
        *(head if not markdown else [part for line in head for part in (line, "")][:-1]),
        "",
        *table(HEAD, rows(results, earlier)),
        "",
        *table(BASELINE_HEAD, baseline_rows(results)),
        "",
        *("- " + note if markdown else "  " + note for note in results["notes"]),
    ]
    return "\n".join(lines) + "\n"
