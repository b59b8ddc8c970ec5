"""The connectors' machinery on its own (connectors/machinery, connectors/checkpoint), against a scripted
in-process Ingest service: the retry policy (UNAVAILABLE resent from the checkpoint, INVALID_ARGUMENT never,
UNAUTHENTICATED logs in again once), dead letters cut back to the checkpoint; the file reader equal to the CLI's;
connectors/ importing nothing of the index; and the command line: a mistaken option or state folder is one
line naming it, a date of birth in a file name is masked in the log, --help shows defaults and exit statuses.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterable, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest

from connectors.checkpoint import Checkpoint
from connectors.client import BATCH_BYTES, _in_batches
from connectors.filedrop import read_csv, read_jsonl
from connectors.machinery import Backoff, Progress, Runner, SourceRecord
from connectors.rows import to_request
from dcii.v1 import ingest_pb2, ingest_pb2_grpc
from search_service import pki
from tests.support import ROOT
from tests.test_connectors import person_row

# ---- the machinery on its own: retry policy, checkpoint, dead letters ----


class Scripted(ingest_pb2_grpc.IngestServiceServicer):
    """An Ingest that fails as scripted: each call pops (status or None, how many results first)."""

    def __init__(self, script: list[tuple[grpc.StatusCode | None, int]]) -> None:
        self.script = script
        self.calls: list[list[str]] = []

    def Ingest(self, request_iterator: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:  # noqa: N802
        code, answered = self.script.pop(0) if self.script else (None, 1 << 30)
        requests = list(request_iterator)
        self.calls.append([r.upsert.key.record_number for r in requests])
        for request in requests[:answered]:
            yield ingest_pb2.IngestResult(request_id=request.request_id, outcome=ingest_pb2.INGEST_OUTCOME_APPLIED)
        if code is not None:
            context.abort(code, "scripted")

    def _unused(self, request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "not scripted")

    Delete = CompleteOpenCaseTracing = CompleteNacPendingTracing = _unused

    def IngestBatches(self, request_iterator: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:  # noqa: N802
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "not scripted (the machinery's tests speak Ingest)")
        yield from ()


class Plain:
    def __init__(self, channel: grpc.Channel) -> None:
        self.stub = ingest_pb2_grpc.IngestServiceStub(channel)

    def ingest(self, requests: Iterator[Any], timeout: float) -> Iterable[Any]:
        return self.stub.Ingest(requests, timeout=timeout)

    def close(self) -> None:
        pass


def _records(n: int) -> list[SourceRecord]:
    records = []
    for i in range(n):
        request = to_request(person_row(i, 1))
        assert not isinstance(request, list)
        records.append(SourceRecord(str(i + 1), request, {"record_number": f"PSI-{i:06d}"}))
    return records


def _scripted_run(tmp_path: Path, script: list[tuple[grpc.StatusCode | None, int]]) -> tuple[Runner, Scripted]:
    servicer = Scripted(script)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    ingest_pb2_grpc.add_IngestServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    connects: list[int] = []

    def connect() -> Plain:
        connects.append(1)
        return Plain(channel)

    records = _records(6)
    runner = Runner(
        connect,
        Checkpoint(tmp_path / "checkpoint.json"),
        tmp_path / "rejects.jsonl",
        Progress("test", stream=open(os.devnull, "w")),  # noqa: SIM115
        chunk=4,
        backoff=Backoff(sleep=lambda _: None),
    )
    try:
        runner.run(lambda after: records[int(after or 0) :])
    finally:
        runner.connects = len(connects)  # type: ignore[attr-defined]
        channel.close()
        server.stop(None)
    return runner, servicer


def test_retry_resends_from_the_checkpoint_on_unavailable(tmp_path: Path) -> None:
    runner, servicer = _scripted_run(tmp_path, [(grpc.StatusCode.UNAVAILABLE, 3), (grpc.StatusCode.UNAVAILABLE, 0)])
    assert runner.stats.retries == 2 and runner.stats.applied == 6
    # The first stream answered 3 of 4 and broke; the rest is re-sent from the 4th record, twice.
    assert servicer.calls == [[f"PSI-{i:06d}" for i in range(4)], *[[f"PSI-{i:06d}" for i in range(3, 6)]] * 2]
    assert Checkpoint(tmp_path / "checkpoint.json").position == "6"


def test_retry_never_retries_invalid_argument(tmp_path: Path) -> None:
    with pytest.raises(grpc.RpcError) as raised:
        _scripted_run(tmp_path, [(grpc.StatusCode.INVALID_ARGUMENT, 2)])
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert Checkpoint(tmp_path / "checkpoint.json").position == "2"  # the answered ones count


def test_resource_exhausted_is_retried_on_the_same_session(tmp_path: Path) -> None:
    runner, servicer = _scripted_run(tmp_path, [(grpc.StatusCode.RESOURCE_EXHAUSTED, 0)] * 2)
    assert runner.stats.retries == 2 and runner.stats.applied == 6 and len(servicer.calls) == 4
    assert runner.connects == 1  # type: ignore[attr-defined]  # no new login for an index that is overloaded


def test_unauthenticated_logs_in_again_once(tmp_path: Path) -> None:
    runner, _ = _scripted_run(tmp_path, [(grpc.StatusCode.UNAUTHENTICATED, 0)])
    assert runner.stats.applied == 6 and runner.connects == 2  # type: ignore[attr-defined]
    with pytest.raises(grpc.RpcError):
        _scripted_run(tmp_path / "again", [(grpc.StatusCode.UNAUTHENTICATED, 0)] * 2)


def test_dead_letters_written_after_the_checkpoint_are_cut_off(tmp_path: Path) -> None:
    checkpoint = Checkpoint(tmp_path / "checkpoint.json")
    rejects = tmp_path / "rejects.jsonl"
    runner = Runner(lambda: Plain(grpc.insecure_channel("127.0.0.1:1")), checkpoint, rejects, Progress("t"))
    runner.dead_letters.add({"record_number": "R-1"}, [("ssn", "not valid")])
    runner.dead_letters.flush(checkpoint)
    checkpoint.save()
    with rejects.open("a") as out:  # written, then killed before the checkpoint moved
        out.write('{"record_number": "R-2", "errors": []}\n')
    Runner(lambda: Plain(grpc.insecure_channel("127.0.0.1:1")), Checkpoint(checkpoint.path), rejects, Progress("t"))
    assert [json.loads(line)["record_number"] for line in rejects.read_text().splitlines()] == ["R-1"]


def test_a_crash_before_the_first_checkpoint_writes_no_reject_twice(tmp_path: Path) -> None:
    checkpoint, rejects = tmp_path / "checkpoint.json", tmp_path / "rejects.jsonl"
    runner = Runner(lambda: Plain(grpc.insecure_channel("127.0.0.1:1")), Checkpoint(checkpoint), rejects, Progress("t"))
    runner.dead_letters.add({"record_number": "R-1"}, [("ssn", "not valid")])
    runner.dead_letters.flush(runner.checkpoint)  # written, then killed before the first checkpoint was saved
    assert rejects.read_text().count("R-1") == 1
    Runner(lambda: Plain(grpc.insecure_channel("127.0.0.1:1")), Checkpoint(checkpoint), rejects, Progress("t"))
    assert rejects.read_text() == ""  # R-1 will be read, and refused, again


def test_a_record_too_large_for_one_message_is_refused_here_and_the_rest_flows(tmp_path: Path) -> None:
    servicer = Scripted([])
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    ingest_pb2_grpc.add_IngestServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    records = _records(3)
    assert records[1].request is not None
    records[1].request.upsert.subject.name.surname = "X" * (BATCH_BYTES + 1)
    runner = Runner(
        lambda: Plain(grpc.insecure_channel(f"127.0.0.1:{port}")),
        Checkpoint(tmp_path / "checkpoint.json"),
        tmp_path / "rejects.jsonl",
        Progress("test", stream=open(os.devnull, "w")),  # noqa: SIM115
        backoff=Backoff(max_attempts=0, sleep=lambda _: None),
    )
    try:
        runner.run(lambda after: records[int(after or 0) :])
    finally:
        server.stop(None)
    assert servicer.calls == [["PSI-000000", "PSI-000002"]] and runner.stats.applied == 2
    [reject] = [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert reject["record_number"] == "PSI-000001" and "too large" in reject["errors"][0]["description"]
    assert Checkpoint(tmp_path / "checkpoint.json").position == "3"


@pytest.mark.parametrize(
    "option", [["--chunk", "0"], ["--poll", "0"], ["--timeout", "-1"], ["--max-retries", "-1"], ["--page", "0"]]
)
def test_a_count_or_time_that_would_do_nothing_for_ever_is_refused(tmp_path: Path, option: list[str]) -> None:
    # `--chunk 0` once read nothing and moved every file to done/; `--page 0` queried for ever.
    command = [sys.executable, "-m", "connectors", "sql", "--state", str(tmp_path), "--dsn", "x", "--table", "t"]
    done = subprocess.run(
        [*command, "--change-column", "c", *option], check=False, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and f"argument {option[0]}" in done.stderr, done.stderr


def test_an_unexpected_failure_logs_its_type_only_and_exits_1(tmp_path: Path) -> None:
    # sqlite3's errors can quote a cell (a name, an SSN): the error line names the exception's type only.
    profile = offline_profile(tmp_path / "profile")  # checked at start: the run gets as far as the database
    (tmp_path / "repository.db").write_text("LINDQVIST 123-45-6789 " * 100)  # not a database
    command = [sys.executable, "-m", "connectors", "sql", "--profile", str(profile), "--state", str(tmp_path / "s")]
    command += ["--dsn", str(tmp_path / "repository.db"), "--table", "t", "--change-column", "c", "--once"]
    done = subprocess.run(command, check=False, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    errors = [json.loads(line) for line in done.stderr.splitlines() if '"error"' in line]
    assert [error.pop("timestamp") for error in errors] and errors == [
        {"event": "error", "code": "INTERNAL", "type": "DatabaseError"}
    ], done.stderr
    assert "Traceback" not in done.stderr and "LINDQVIST" not in done.stderr


def offline_profile(directory: Path, server: str = "localhost:1") -> Path:
    """A profile with a real CA, certificate and key (a connector checks them as it starts) and nothing
    listening at `server`: for runs that end before they connect, or that find the index down."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = pki.make_ca()
    cert = pki.issue_client_cert(ca, "DSS-REPO-01", "DSS")
    (directory / "ca.pem").write_bytes(ca.cert_pem)
    (directory / "repo.pem").write_bytes(cert.cert_pem)
    (directory / "repo-key.pem").write_bytes(cert.key_pem)
    (directory / "password").write_text("not-used")
    files = {"ca": "ca.pem", "cert": "repo.pem", "key": "repo-key.pem", "password_file": "password"}
    (directory / "profile.json").write_text(json.dumps({"server": server, **files, "account_code": "dss-repo-op"}))
    return directory / "profile.json"


def test_reader_matches_the_cli_reader_on_the_examples() -> None:
    from dcii.cli.submit import to_request as cli_request
    from indexer.fileformat import FileAction, read_actions

    for name, reader in (("tracings.csv", read_csv), ("tracings.jsonl", read_jsonl)):
        path = ROOT / "docs" / "examples" / name
        mine = [record.request for record in reader(path, "x", 0)]
        theirs = []
        for action in read_actions(path):
            assert isinstance(action, FileAction)
            request = cli_request(action)
            assert isinstance(request, ingest_pb2.IngestRequest)
            request.request_id = ""
            theirs.append(request)
        assert mine == theirs


def test_connectors_load_nothing_of_the_index() -> None:
    """A repository installs connectors/ with the generated API only: no indexer, search_service or dcii.cli."""
    probe = (
        "import sys, connectors.__main__, connectors.sql\n"
        "print([m for m in sys.modules\n"
        "       if m.split('.')[0] in ('indexer', 'search_service') or m.startswith('dcii.cli')])"
    )
    done = subprocess.run([sys.executable, "-c", probe], check=True, cwd=ROOT, capture_output=True, text=True)
    assert done.stdout.strip() == "[]"


def test_batch_messages_stay_under_the_servers_size_limit() -> None:
    # 500 actions of ~12 KB each would make one 6 MB message, which the server refuses however often it is
    # sent: the batches are cut by size too, and every action goes, in order, exactly once.
    requests = []
    for i in range(500):
        request = to_request(person_row(i, 1))
        assert not isinstance(request, list)
        request.request_id = f"r{i}-" + "x" * 12_000
        requests.append(request)
    batches = list(_in_batches(iter(requests)))
    assert len(batches) > 1
    assert all(batch.ByteSize() <= BATCH_BYTES for batch in batches)
    assert [r.request_id for batch in batches for r in batch.requests] == [r.request_id for r in requests]
    small = [to_request(person_row(i, 1)) for i in range(1_200)]
    assert [len(b.requests) for b in _in_batches(iter(small))] == [500, 500, 200]  # type: ignore[arg-type]


def test_a_log_line_never_carries_an_ssn_shaped_text() -> None:
    """A repository exporting one file per person may name it for them: the file drop logs file names."""
    stream = io.StringIO()
    Progress("filedrop", stream=stream).log("done", file="WHITFIELD_318-52-4471.csv", other="318524471", n=3)
    line = json.loads(stream.getvalue())
    assert line.pop("timestamp")
    assert line == {"event": "done", "connector": "filedrop", "file": "WHITFIELD_[redacted].csv",
                    "other": "[redacted]", "n": 3}  # fmt: skip
    for name in ("DOE318524471.csv", "SSN 318 52 4471.txt", "318.52.4471_doe.csv"):
        stream = io.StringIO()
        Progress("filedrop", stream=stream).log("done", file=name)
        assert "4471" not in stream.getvalue(), name
    for name in ("NCIS_RA_000123456_done.csv", "export-20261123-120000.csv", "batch-900123456.csv"):
        stream = io.StringIO()  # nine digits no SSN can be, and timestamps: the operator reads them as they are
        Progress("filedrop", stream=stream).log("done", file=name)
        assert json.loads(stream.getvalue())["file"] == name


def test_the_checkpoint_is_for_the_connectors_own_user(tmp_path: Path) -> None:
    """Its position may be a row's key, and a repository's table may be keyed by SSN."""
    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    checkpoint = Checkpoint(state / "checkpoint.json")
    checkpoint.position = "318-52-4471"
    checkpoint.save()
    assert (state / "checkpoint.json").stat().st_mode & 0o777 == 0o600


# ---- the command line: what an operator's mistakes and --help show (the connectors' UAT: M6, L2, L4, L5) ----


def _connector(profile: Path, state: Path, kind: str, *args: str) -> tuple[int, list[dict[str, Any]], str]:
    command = [sys.executable, "-m", "connectors", kind, "--profile", str(profile), "--state", str(state), *args]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    return done.returncode, [json.loads(x) for x in done.stderr.splitlines() if x.startswith("{")], done.stderr


def test_a_missing_inbox_or_a_map_without_equals_is_one_line_naming_the_option(tmp_path: Path) -> None:
    profile = offline_profile(tmp_path / "profile")
    status, _, stderr = _connector(profile, tmp_path / "s", "filedrop", "--inbox", str(tmp_path / "no-such"), "--once")
    assert status == 2 and "INTERNAL" not in stderr and "Traceback" not in stderr
    assert f"argument --inbox: {tmp_path / 'no-such'}: No such file or directory" in stderr.splitlines()[-1], stderr
    status, _, stderr = _connector(profile, tmp_path / "s2", "sql", "--dsn", "x.db", "--table", "t", "--change-column",
                             "c", "--map", "surname", "--once")  # fmt: skip
    assert status == 2 and "INTERNAL" not in stderr and "Traceback" not in stderr
    assert "argument --map: 'surname' is not COLUMN=DBCOLUMN" in stderr.splitlines()[-1], stderr


@pytest.mark.parametrize(
    ("written", "kind", "why"),
    [
        ("[]", "filedrop", "not an object"),
        ("null", "filedrop", "not an object"),
        ('{"connector": "filedrop", "position": null}', "sql", "written by a filedrop connector, not sql"),
        ('{"position": "a.csv|12|1700000000#4"}', "sql", "a position no sql connector writes"),
        ('{"position": "[41, 7]"}', "fixedwidth", "a position no fixedwidth connector writes"),
    ],
)
def test_a_state_folder_that_is_not_this_connectors_is_the_checkpoint_error(
    tmp_path: Path, written: str, kind: str, why: str
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "checkpoint.json").write_text(written)
    (tmp_path / "inbox").mkdir()
    source = ["--inbox", str(tmp_path / "inbox")] if kind != "sql" else ["--dsn", "x.db", "--table", "t"]
    source += ["--change-column", "c"] if kind == "sql" else []
    status, lines, stderr = _connector(offline_profile(tmp_path / "profile"), state, kind, *source, "--once")
    assert status == 2 and "Traceback" not in stderr, stderr
    [line] = lines
    assert line["code"] == "CHECKPOINT" and why in line["details"] and "delete checkpoint.json" in line["details"]
    assert (state / "checkpoint.json").read_text() == written  # left as it was found


def test_a_date_of_birth_in_a_file_name_is_masked_in_the_log_and_a_time_stamp_is_not() -> None:
    def logged(name: str) -> str:
        stream = io.StringIO()
        Progress("filedrop", stream=stream).log("done", file=name)
        return str(json.loads(stream.getvalue())["file"])

    for name in ("HARTWELL_DONALD_1968-03-14.csv", "DOE_19680314.csv", "DOE_03-14-1968.csv", "DOE 14.03.1968.csv",
                 "DOE_03141968.dat", "doe_1968_03_14.jsonl", "DOE_1968-03-14_1234.csv"):  # fmt: skip
        assert "1968" not in logged(name) and "[redacted]" in logged(name), name
    kept = ["export-20261123-120000.csv", "archive-2001-05-03T12:00:00.csv", "NCIS_RA_000123456_done.csv",
            "batch-99-99-1970.csv", f"daily-{dt.datetime.now(dt.UTC):%Y-%m-%d}.csv"]  # fmt: skip
    for name in kept:  # time stamps, this year's dates, no date at all: the operator reads them as they are
        assert logged(name) == name


def test_help_shows_defaults_exit_statuses_and_where_rejects_go() -> None:
    shown: dict[str, str] = {}
    for command in ("filedrop", "sql"):
        done = subprocess.run([sys.executable, "-m", "connectors", command, "--help"], cwd=ROOT, capture_output=True,
                              text=True, check=True, timeout=60)  # fmt: skip
        text = shown[command] = " ".join(done.stdout.split())
        for default in ("(default: 5.0)", "(default: 500)", "(default: 120.0)", "(default: 30)", "(default: 1000)"):
            assert default in text, (command, default)
        assert "rejects.jsonl" in text and "last_run.json" in text and "exit status:" in text
        for status in ("0 everything", "1 a configuration", "2 an option", "3 (--once)", "4 (--once)", "130"):
            assert status in text, (command, status)
    assert "INBOX/failed/" in shown["filedrop"]
    assert "the table (or schema.table) holding the tracings" in shown["sql"]
