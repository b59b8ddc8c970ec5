"""`dcii batch submit` outlasts what a long wait meets (dcii.cli.client.Link): a server restart is waited
out, and a session that ends (its 8 hours pass) is logged in again; the results are written as if nothing had
happened. The real CLI in a subprocess against a real server over mutual TLS, restarted on the same port.
Helpers: tests/test_batch.py, tests/test_batch_cli_safety.py.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import subprocess
import time
from pathlib import Path

from search_service.accreditation import Role
from search_service.batch_worker import BatchSettings
from tests import factories as f
from tests import test_batch
from tests.support import ROOT, Index
from tests.test_batch import start
from tests.test_batch_cli_safety import _batch_ids, _cli

index = test_batch.index  # the fixture, bound by name (see tests/test_batch_worker.py)


def _submit_in_background(index: Index, tmp_path: Path, *options: str) -> tuple[subprocess.Popen[str], Path, str]:
    """`dcii batch submit` of one query (the test's operator), running; its output file and account code."""
    index.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER]).upsert(f.person(record="NCIS-1", ssn="318-52-4471"))
    dcii, env, (_, account, _) = _cli(index, tmp_path)
    out = tmp_path / "out.jsonl"
    command = [*dcii, "submit", str(tmp_path / "in.csv"), "--out", str(out), *options]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not _batch_ids(index):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the batch was never submitted"
        time.sleep(0.05)
    return process, out, account


def _finish(process: subprocess.Popen[str]) -> tuple[str, str]:
    try:
        return process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _written(out: Path) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["query_id"] for line in lines] == ["a"]
    return lines


def test_submit_waits_out_a_server_restart_and_writes_the_results(index: Index, tmp_path: Path) -> None:
    start(index, BatchSettings(threads=0))  # the batch waits, so the command waits
    process, out, _ = _submit_in_background(index, tmp_path, "--poll", "0.2", "--retry-for", "60")
    try:
        index.stop()  # the server goes away while the command polls ...
        time.sleep(2)
        start(index, BatchSettings(chunk=10, duty=1.0))  # ... and comes back on the same port, answering batches
    finally:
        stdout, stderr = _finish(process)
    assert process.returncode == 0, stderr
    assert "lost the server (UNAVAILABLE); trying again for 60 s" in stderr
    assert "Traceback" not in stderr and "1 results (1 hits)" in stdout
    [line] = _written(out)
    assert [hit["record_number"] for hit in line["hits"]] == ["NCIS-1"]  # type: ignore[attr-defined]


def test_submit_logs_in_again_when_its_session_ends_while_it_waits(index: Index, tmp_path: Path) -> None:
    start(index, BatchSettings(chunk=10, duty=1.0))
    # The first status poll comes 5 s after the submission: by then the batch is answered and the session
    # has expired, as it does after 8 hours (its expiry set in the past; only the results' submitter may
    # fetch them, so the command must log in again as the same operator).
    process, out, account = _submit_in_background(index, tmp_path, "--poll", "5")
    conn = sqlite3.connect(index.data_dir / "registry.db", timeout=30)
    try:
        with conn:
            past = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).isoformat()
            ended = conn.execute("UPDATE session SET expires_at = ? WHERE account_code = ?", (past, account))
            assert ended.rowcount == 1
    finally:
        conn.close()
        stdout, stderr = _finish(process)
    assert process.returncode == 0, stderr
    assert "logged in again" in stderr and "Traceback" not in stderr and "1 results (1 hits)" in stdout
    _written(out)
