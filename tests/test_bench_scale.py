"""The scale bench (bench/scale.py, issue 7) runs end to end at a tiny size and reports every target.

It is a harness check, not a timing: the figures at 2,000 tracings on a shared machine mean nothing, so
only the table's shape, the answers' correctness and the recorded results are asserted. The PostgreSQL
baseline runs when PostgreSQL's binaries are installed (CI has them) and is skipped otherwise.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT

# Every row of issue 7's target table, as the bench labels it.
TARGET_ROWS = [
    "ingest through the gRPC stream, sustained",
    "ingest, total time",
    "EXACT name + SSN, one client",
    "EXACT name + DOB, one client",
    "PID_QUALIFIED, one client",
    "EXACT throughput, many clients",
    "FUZZY name only, one client",
    "of which the commonest names",
    "FUZZY throughput, many clients",
    "latency growth from 1 to 10 million",
    "server memory (RSS at the end)",
    "start-up on the existing store",
    "store on disk (index.db + WAL)",
]


def _postgres_installed() -> bool:
    return any((bin_dir / "initdb").exists() for bin_dir in Path("/usr/lib/postgresql").glob("*/bin"))


def test_scale_bench_reports_every_target_row(tmp_path: Path) -> None:
    work, markdown = tmp_path / "work", tmp_path / "table.md"
    command = [sys.executable, str(ROOT / "bench" / "scale.py"), "--tracings", "2000", "--dir", str(work)]
    command += ["--queries", "100", "--fuzzy-queries", "60", "--warmup-queries", "5", "--markdown", str(markdown)]
    command += ["--duration", "1", "--warmup", "0.5", "--rounds", "1", "--load-processes", "2", "--in-flight", "4"]
    command += ["--ingest-processes", "1", "--ingest-streams", "2", "--baseline-budget", "2"]
    postgres = _postgres_installed()
    if not postgres:
        command.append("--no-postgres")
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-4000:]

    lines = done.stdout.splitlines()
    table = markdown.read_text()
    for label in TARGET_ROWS:
        row = next((line for line in lines if line.lstrip().startswith(label)), "")
        assert row, f"no row for {label!r}"
        assert row.rstrip().endswith(("PASS", "FAIL", "n/a")), row
        assert f"| {label}" in table or f"|   {label}" in table, label
    assert "Machine:" in table and "Command:" in table

    results = json.loads((work / "results.json").read_text())
    assert results["tracings"] == 2000
    assert results["ingest"]["outcomes"] == {"APPLIED": 2000}
    for name in ("exact_ssn", "exact_dob", "pid"):
        # Queries ask for people known to be in the store: each must find that person's tracing.
        assert results["latency"][name]["errors"] == 0
        assert results["latency"][name]["found"] == 1.0
    assert results["latency"]["fuzzy"]["errors"] == 0
    for kind in ("exact", "echo", "fuzzy"):
        assert results["throughput"][kind]["qps"] > 0
    systems = [row["system"] for row in results["baselines"]]
    assert any("rapidfuzz" in s for s in systems)
    assert sum("PostgreSQL" in s for s in systems) == (2 if postgres else 0)
    assert results["memory"]["rss"] > 0 and results["store"]["per_tracing"] > 0
    assert results["startup"]["first_ranked_query_s"] > 0
    # How cold each latency pass began (bench/page_cache.py): a share of the store, said in the table's notes.
    assert all(0.0 <= results["latency"][name]["store_cached"] <= 1.0 for name in ("exact_ssn", "pid", "fuzzy"))
    assert "The store's share in the page cache as each latency pass began" in table
