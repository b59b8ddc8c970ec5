"""The program changed on disk under a running server (an upgrade in place: a `git pull` in its checkout, a
`pip install -U` into its environment). The next batch worker the server started ran the new program
beside the old server, opened the store for writing and upgraded it under it (a review of upgrades). Now
a helper process checks it runs the server's program (search_service.code_identity) before opening
anything: it exits, the server says so once and starts it no more, and the batch waits for the restart.
A real `dcii serve` run from a copy of the program, changed while it serves."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from dcii.v1 import batch_pb2, batch_pb2_grpc, search_pb2, tracing_pb2
from search_service.accreditation import Role
from search_service.code_identity import PACKAGES
from tests.support import ROOT, free_port, make_index, wait_for_port


def _copy_of_the_program(target: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, target / package, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def test_a_batch_worker_of_a_program_changed_under_the_server_is_not_run(tmp_path: Path) -> None:
    index = make_index(tmp_path)
    index.data_dir.mkdir(parents=True, exist_ok=True)
    cert, account, password = index.accredit("CCF-BATCH", "ARMY-CCF", [Role.BATCH])
    app = _copy_of_the_program(tmp_path / "app")
    port = free_port()
    log = tmp_path / "server.log"
    command = [sys.executable, "-P", "-m", "dcii.cli.main", "serve", "--data", str(index.data_dir)]
    command += ["--pki", str(index.pki_dir), "--port", str(port), "--log-level", "INFO"]
    env = dict(os.environ, PYTHONPATH=str(app))
    with log.open("ab") as err:
        server = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=err)
    try:
        wait_for_port(port, server)
        index.port = port
        client = index.connect(cert)
        client.login(account, password)
        with (app / "indexer" / "__init__.py").open("a") as changed:
            changed.write("\n# upgraded in place\n")
        query = batch_pb2.BatchQuery(
            query_id="q1",
            query=search_pb2.SearchRequest(
                mode=search_pb2.SEARCH_MODE_NAME_ONLY,
                purpose=search_pb2.PURPOSE_SECURITY_CLEARANCE,
                name=tracing_pb2.PersonName(surname="Whitfield", given_name="Harold"),
            ),
        )
        stub = batch_pb2_grpc.BatchServiceStub(client.channel)
        submitted = stub.SubmitBatch(
            iter([batch_pb2.SubmitBatchRequest(label="t", queries=[query])]), metadata=client.metadata, timeout=30
        )
        deadline = time.monotonic() + 30
        while "another program than this server" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(6)  # three ticks of the server's watch: a worker started again would have said so
        text = log.read_text()
        assert "batch worker not started: the program on disk is not the one the server runs" in text
        assert text.count("another program than this server") == 1
        assert text.count("batch worker process started") == 1  # never started again
        status = stub.GetBatchStatus(
            batch_pb2.GetBatchRequest(batch_id=submitted.batch_id), metadata=client.metadata, timeout=10
        )
        assert status.state == batch_pb2.BATCH_STATE_QUEUED  # waits for the restart, unanswered
        assert server.poll() is None  # the server itself goes on serving
    finally:
        server.terminate()
        server.wait(30)
