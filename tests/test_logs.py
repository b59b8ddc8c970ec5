"""Structured logs without PII: a real `dcii serve` logging at DEBUG as JSON, fed names, SSNs and dates of
birth through ingest, searches, refusals and a batch; neither its log lines nor its metrics hold any."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import grpc
import pytest

from dcii.cli.logs import JsonFormatter, TextFormatter
from dcii.v1 import batch_pb2, batch_pb2_grpc, search_pb2, tracing_pb2
from search_service.accreditation import Role
from tests import factories
from tests.support import ROOT, Client, free_port, make_index, server_process

# The people fed to the server, and every way their identifiers could be written in a log line.
PEOPLE = [
    ("Quarterman", "Ottoline", "523-41-9876", (1968, 3, 27)),
    ("Vandersloot", "Berenice", "401-77-2350", (1983, 11, 2)),
]
FORBIDDEN = [
    text
    for surname, given, ssn, (y, m, d) in PEOPLE
    for text in (
        surname,
        surname.upper(),
        given,
        given.upper(),
        ssn,
        ssn.replace("-", ""),
        f"{y}-{m:02d}-{d:02d}",
        f"{y}{m:02d}{d:02d}",
        f"{m:02d}/{d:02d}/{y}",
    )
]


def _drain(stream: object, into: list[bytes]) -> threading.Thread:
    """Read a pipe to its end on a thread, so a chatty server never blocks on a full pipe."""

    def run() -> None:
        assert hasattr(stream, "read")
        while chunk := stream.read(65536):
            into.append(chunk)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _exercise(submitter: Client, querier: Client) -> None:
    """Ingest (applied, replayed, rejected), searches in every mode, refusals and a batch, with PII."""
    tracings = [
        factories.person(record=f"NCIS-L{i}", surname=s, given=g, middle="", ssn=ssn, dob=dob)
        for i, (s, g, ssn, dob) in enumerate(PEOPLE)
    ]
    bad = factories.person(record="NCIS-LBAD", surname="Quarterman", given="Ottoline", ssn="000-41-9876")
    submitter.upsert(*tracings, bad)
    submitter.upsert(*tracings)
    for surname, given, ssn, (y, m, d) in PEOPLE:
        name = {"surname": surname, "given_name": given}
        dob = {"year": y, "month": m, "day": d}
        querier.search(mode=search_pb2.SEARCH_MODE_EXACT, name=name, identifiers={"ssn": ssn})
        querier.search(mode=search_pb2.SEARCH_MODE_NAME_ONLY, name=name)
        querier.search(mode=search_pb2.SEARCH_MODE_NONSTANDARD, name={"surname": surname})
        querier.search(mode=search_pb2.SEARCH_MODE_FUZZY, name={"surname": surname[:-1], "given_name": given})
        querier.search(
            mode=search_pb2.SEARCH_MODE_PID_QUALIFIED, name=name, identifiers={"ssn": ssn, "date_of_birth": dob}
        )
        with pytest.raises(grpc.RpcError):  # refused by the edit criteria, quoting nothing back to the log
            querier.search(mode=search_pb2.SEARCH_MODE_FUZZY, name=name, identifiers={"ssn": ssn})
        with pytest.raises(grpc.RpcError):  # a querier may not ingest: a refusal, logged and audited
            querier.upsert(tracings[0])
    queries = [
        batch_pb2.BatchQuery(
            query_id=f"q{i}",
            query=search_pb2.SearchRequest(
                mode=search_pb2.SEARCH_MODE_EXACT,
                name=tracing_pb2.PersonName(surname=s, given_name=g),
                identifiers=tracing_pb2.PersonalIdentifiers(ssn=ssn),
                purpose=search_pb2.PURPOSE_SECURITY_CLEARANCE,
            ),
        )
        for i, (s, g, ssn, _dob) in enumerate(PEOPLE)
    ]
    stub = batch_pb2_grpc.BatchServiceStub(querier.channel)
    status = stub.SubmitBatch(
        iter([batch_pb2.SubmitBatchRequest(label="logs", queries=queries)]), metadata=querier.metadata, timeout=30
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        got = stub.GetBatchStatus(
            batch_pb2.GetBatchRequest(batch_id=status.batch_id), metadata=querier.metadata, timeout=10
        )
        if got.state == batch_pb2.BATCH_STATE_DONE:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the batch did not finish")


def test_a_real_server_logs_json_lines_and_neither_logs_nor_metrics_hold_pii(tmp_path: Path) -> None:
    index = make_index(tmp_path)
    submitter_cert, submitter_account, submitter_password = index.accredit("NCIS-HQ", "NCIS", [Role.SUBMITTER])
    querier_cert, querier_account, querier_password = index.accredit("ADJ-1", "DSS", [Role.QUERIER, Role.BATCH])
    port, metrics_port = free_port(), free_port()
    extra: tuple[str, ...] = ("--log-level", "DEBUG", "--log-format", "json", "--metrics-port", str(metrics_port))
    # On OpenSearch too (scripts/test's second pass): its client logged every request and response body.
    extra += ("--store", index.store_url) if index.store_url else ()
    chunks: list[bytes] = []
    with server_process(index.data_dir, index.pki_dir, port, *extra) as process:
        reader = _drain(process.stderr, chunks)
        index.port = port
        submitter, querier = index.connect(submitter_cert), index.connect(querier_cert)
        submitter.login(submitter_account, submitter_password)
        querier.login(querier_account, querier_password)
        with pytest.raises(grpc.RpcError):
            querier.login(querier_account, "not the password")
        _exercise(submitter, querier)
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as response:
            metrics = response.read().decode()
        index.stop()
        process.send_signal(signal.SIGTERM)  # drains and stops cleanly, so every line is flushed
        assert process.wait(timeout=60) == 0
        reader.join(timeout=30)
    output = b"".join(chunks).decode()
    lines = [line for line in output.splitlines() if line.strip()]
    json_lines = []
    for line in lines:
        if line.startswith("DCII serving on") or line.startswith("metrics on http"):
            continue  # the ready banner `dcii serve` prints for a person at the console
        document = json.loads(line)  # every other line is one JSON object
        assert {"timestamp", "level", "logger", "message", "pid"} <= set(document), line
        json_lines.append(document)
    messages = {d["message"] for d in json_lines}
    assert "serving" in messages and "refused" in messages, messages  # DEBUG shows the whole life of the server
    assert any(d["logger"] == "search_service.batch_process" for d in json_lines), "the worker logs as JSON too"
    # Each line names its process: the worker's lines are told from the server's.
    assert {d["pid"] for d in json_lines if d["logger"] == "search_service.server"} == {process.pid}
    assert process.pid not in {d["pid"] for d in json_lines if d["logger"] == "search_service.batch_process"}
    assert 'dcii_ingest_actions_total{outcome="APPLIED"} 2.0' in metrics
    for text in FORBIDDEN:
        assert text not in output, f"{text!r} in the server's log"
        assert text not in metrics, f"{text!r} in the metrics"
    assert "Quarterman".casefold() not in output.casefold()


def _record(message: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("dcii.test", logging.WARNING, __file__, 1, message, (), None)
    record.__dict__.update(extra)
    return record


def test_the_formatter_redacts_ssn_shapes_and_logs_exceptions_without_their_message() -> None:
    line = json.loads(JsonFormatter().format(_record("lookup 523-41-9876 failed", detail="ssn 523419876", n=7)))
    assert line["message"] == "lookup [redacted] failed" and line["detail"] == "ssn [redacted]" and line["n"] == 7
    assert json.loads(JsonFormatter().format(_record("batch", batch_id="123456789abc")))["batch_id"] == "123456789abc"
    try:
        raise ValueError("Quarterman 1968-03-27 is not valid")
    except ValueError:
        record = logging.LogRecord("dcii.test", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = json.loads(JsonFormatter().format(record))
    assert line["error_type"] == "ValueError" and line["stack"][0].startswith("test_logs.py:")
    assert "Quarterman" not in json.dumps(line)
    text = TextFormatter().format(_record("refused", method="/dcii.v1.SearchService/Search", code="UNAUTHENTICATED"))
    assert " WARNING dcii.test: refused method=" in text and 'code="UNAUTHENTICATED"' in text


CHILD = """
import logging, subprocess, sys
from dcii.cli.logs import configure_logging
configure_logging(logging.INFO, sys.argv[1])
logging.getLogger("parent").info("hello", extra={"count": 1})
if sys.argv[1] != "child":
    subprocess.run([sys.executable, __file__, ""], check=True)  # no format given: the parent's
"""


def test_the_text_format_and_its_inheritance_by_child_processes(tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD.replace('sys.argv[1] != "child"', "len(sys.argv[1]) > 0"))
    done = subprocess.run(
        [sys.executable, str(script), "text"], cwd=ROOT, capture_output=True, text=True, check=False, timeout=60
    )
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 2 and all(" INFO    parent: hello count=1" in line for line in lines), lines
    refused = subprocess.run(
        [sys.executable, "-m", "dcii.cli.main", "serve", "--log-format", "xml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert refused.returncode == 2 and "invalid choice" in refused.stderr
