"""The connectors (connectors/) against a real server subprocess over mutual TLS and real sources.

Each connector runs as `python -m connectors ...` in its own process, as an operator would run it. The
crash tests SIGKILL the connector (or the server) mid-run, restart it, and compare the index (and the
reject file) with an uninterrupted run's: nothing lost, nothing doubled.
"""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
import pytest

from connectors.checkpoint import Checkpoint
from connectors.filedrop import read_csv, read_jsonl
from connectors.fixedwidth import compose, parse_line
from connectors.machinery import Backoff, Progress, Runner, SourceRecord
from connectors.rows import COLUMNS, to_request
from dcii.v1 import ingest_pb2, ingest_pb2_grpc
from indexer.model import TracingKey
from indexer.store.sqlite import SqliteStore
from search_service.accreditation import Role
from tests.support import ROOT, Index, free_port, make_index, server_process

AGENCY = "DSS"


# ---- a repository's data ----


def _ssn(i: int) -> str:
    return f"{101 + i % 400:03d}-{11 + i % 80:02d}-{1001 + i % 8000:04d}"


def person_row(i: int, version: int, **extra: str) -> dict[str, str]:
    return {
        "type": "FILE",
        "agency": AGENCY,
        "record_number": f"PSI-{i:06d}",
        "source_version": str(version),
        "surname": random.Random(i).choice(["HARTWELL", "MORALES", "BRANDT", "OKAFOR", "LINDQVIST"]),
        "given_name": random.Random(i + 1).choice(["DONALD", "ANDREA", "KLAUS", "CHIDI", "ASTRID"]),
        "ssn": _ssn(i),
        "date_of_birth": f"{1950 + i % 50}-{1 + i % 12:02d}-{1 + i % 28:02d}",
        "place_of_birth": "US-VA/Norfolk",
        "year_indexed": str(2000 + i % 25),
        "custodian": AGENCY,
        "file_number": f"F-{i:06d}",
        **extra,
    }


def dataset(count: int) -> list[tuple[str, list[dict[str, str]]]]:
    """Files of rows: upserts, changes, deletions, completions, and records the index or reader refuse."""
    base = [person_row(i, 10) for i in range(count)]
    for i in range(50, count, 97):  # refusals all through the files, for the reader ...
        base[i]["date_of_birth"] = "1970-5-"
    for i in range(40, count, 89):  # ... and for the index
        base[i]["ssn"] = "000-11-2222"
    lifecycle = [
        person_row(900_001, 10, type="OPEN_CASE", record_number="IC-1", location="Columbia MD", year_indexed="2024")
        | {"custodian": "", "file_number": "", "investigative_number": "IN-1"},
        person_row(900_002, 10, type="NAC_PENDING", record_number="NP-1", case_number="C-1")
        | {"requester_category": "MILITARY", "nac_type": "T3", "year_indexed": "", "custodian": "", "file_number": ""},
    ]
    changes = [person_row(i, 20, given_name="CHANGED") for i in range(0, count, 7)]
    changes += [{"action": "DELETE", "agency": AGENCY, "record_number": f"PSI-{i:06d}", "source_version": "30",
                 "delete_reason": "REVOKED"} for i in range(3, count, 11)]  # fmt: skip
    changes += [
        person_row(900_001, 20, action="COMPLETE", record_number="PSI-IC-1", replaces_record_number="IC-1"),
        person_row(900_002, 20, action="COMPLETE", type="NAC_HISTORY", record_number="NH-1")
        | {
            "replaces_record_number": "NP-1",
            "completed_on": "2024-06-01",
            "agencies_checked": "FBI; OPM",
            "outcome": "FAVORABLE",
            "year_indexed": "",
            "custodian": "",
            "file_number": "",
        },
        person_row(5, 40, ssn="000-12-3456"),  # the index refuses: no SSN starts 000
        person_row(6, 40, date_of_birth="12/05/1970"),  # the reader refuses: not a date
        person_row(7, 40, agency="NCIS"),  # another agency's tracing: permission denied
        person_row(8, 5),  # older than what the index holds: unchanged
    ]
    files = [(f"a-{n:02d}.csv", base[n : n + 400]) for n in range(0, count, 400)]
    return [*files, ("b-lifecycle.jsonl", lifecycle), ("c-changes.csv", changes)]


def write_files(inbox: Path, files: list[tuple[str, list[dict[str, str]]]]) -> None:
    inbox.mkdir(parents=True, exist_ok=True)
    for name, rows in files:
        path = inbox / name
        if name.endswith(".csv"):
            with path.open("w", newline="", encoding="utf-8") as out:
                writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
                writer.writeheader()
                writer.writerows(rows)
        else:
            path.write_text("".join(json.dumps({k: v for k, v in r.items() if v}) + "\n" for r in rows))


# ---- the index, a profile, the connector process ----


class Site:
    """An index (server subprocess on a fixed port) and a repository accredited to push to it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.index: Index = make_index(root)
        self.port = free_port()
        cert, account, password = self.index.accredit("DSS-REPO-01", AGENCY, [Role.SUBMITTER])
        secrets = root / "profile"
        secrets.mkdir()
        (secrets / "ca.pem").write_bytes(self.index.ca.cert_pem)
        (secrets / "repo.pem").write_bytes(cert.cert_pem)
        (secrets / "repo-key.pem").write_bytes(cert.key_pem)
        (secrets / "password").write_text(password)
        self.profile = secrets / "profile.json"
        profile = {"server": f"localhost:{self.port}", "ca": "ca.pem", "cert": "repo.pem", "key": "repo-key.pem"}
        self.profile.write_text(json.dumps({**profile, "account_code": account, "password_file": "password"}))
        self.state = root / "state"

    def server(self) -> Any:
        return server_process(self.index.data_dir, self.index.pki_dir, self.port)

    def command(self, connector: str, *args: str) -> list[str]:
        profile, state = str(self.profile), str(self.state)
        return [sys.executable, "-m", "connectors", connector, "--profile", profile, "--state", state, *args]

    def run(self, connector: str, *args: str) -> dict[str, int]:
        done = subprocess.run(
            self.command(connector, *args), check=False, cwd=ROOT, capture_output=True, text=True, timeout=240
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return summary(done.stderr)

    def rejects(self) -> list[dict[str, Any]]:
        path = self.state / "rejects.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def dump(self) -> tuple[list[tuple[str, str]], list[tuple[str, str, int, str]]]:
        """The index's live tracings and deletions (call with the server stopped), times left out."""
        store = SqliteStore(self.index.data_dir / "index.db")
        try:
            assert store.check_integrity() == []
            live = sorted((str(s.tracing.key), repr(s.tracing)) for s in store.iter_all())
            gone = sorted((str(d.key), d.type.value, d.source_version, d.reason) for d in store.deletions())
            return live, gone
        finally:
            store.close()

    def get(self, record: str) -> Any:
        store = SqliteStore(self.index.data_dir / "index.db")
        try:
            return store.get(TracingKey(AGENCY, record))
        finally:
            store.close()


def summary(stderr: str) -> dict[str, int]:
    for line in reversed(stderr.splitlines()):
        if line.startswith("{") and json.loads(line).get("event") == "summary":
            return dict(json.loads(line))
    raise AssertionError(f"no summary: {stderr[-2000:]}")


def reasons(entry: dict[str, Any]) -> set[str]:
    return {error["field"] for error in entry["errors"]}


COUNT = 3000
Dump = tuple[list[tuple[str, str]], list[tuple[str, str, int, str]]]


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Dump, list[dict[str, Any]]]:
    """The dataset pushed by the file drop without interruption: the index and reject file to compare with."""
    site = Site(tmp_path_factory.mktemp("clean"))
    write_files(site.root / "inbox", dataset(COUNT))
    with site.server():
        counts = site.run("filedrop", "--inbox", str(site.root / "inbox"), "--once", "--chunk", "100")
    assert counts["applied"] > COUNT and counts["rejected"] > 60 and counts["denied"] == 1, counts
    return site.dump(), site.rejects()


# ---- the file drop ----


def test_filedrop_pushes_files_and_dead_letters_refusals(tmp_path: Path) -> None:
    site = Site(tmp_path)
    inbox = tmp_path / "inbox"
    write_files(inbox, dataset(30))
    (inbox / "notes.txt").write_text("not for this connector")
    (inbox / "broken.csv").write_text("action,surnmae\nUPSERT,SMITH\n")  # a header that cannot be trusted
    with site.server():
        counts = site.run("filedrop", "--inbox", str(inbox), "--once")
    assert sorted(p.name for p in (inbox / "done").iterdir()) == ["a-00.csv", "b-lifecycle.jsonl", "c-changes.csv"]
    assert [p.name for p in (inbox / "failed").iterdir()] == ["broken.csv"]
    assert (inbox / "notes.txt").exists()
    assert counts["applied"] == 30 + 2 + 5 + 3 + 2 and counts["unchanged"] == 1, counts
    rejects = {entry["record_number"]: entry for entry in site.rejects()}
    assert set(rejects) == {"PSI-000005", "PSI-000006", "PSI-000007"}
    assert any("ssn" in field for field in reasons(rejects["PSI-000005"]))  # the index's field-level reason
    assert reasons(rejects["PSI-000006"]) == {"date_of_birth"}  # the reader's
    assert any("agency" in field for field in reasons(rejects["PSI-000007"]))  # permission denied
    assert site.get("PSI-000000").tracing.subject.name.given_name == "CHANGED"
    assert site.get("PSI-000003") is None  # deleted
    assert site.get("IC-1") is None and site.get("PSI-IC-1") is not None  # open case completed
    assert site.get("NP-1") is None and site.get("NH-1") is not None  # NAC completed

    # The operator fixes the reject file, removes its errors and drops it in the inbox again.
    fixed = []
    for entry in site.rejects():
        del entry["errors"]
        entry.update(ssn="212-09-4471", date_of_birth="1970-05-12", agency=AGENCY)
        fixed.append(json.dumps(entry))
    (tmp_path / "state" / "rejects.jsonl").rename(tmp_path / "taken-away.jsonl")
    (inbox / "d-fixed.jsonl").write_text("\n".join(fixed) + "\n")
    with site.server():
        counts = site.run("filedrop", "--inbox", str(inbox), "--once")
    assert counts["applied"] == 3 and counts["rejected"] == counts["denied"] == 0, counts
    assert site.get("PSI-000005").tracing.subject.identifiers.ssn == "212094471"


def _kill_and_restart(site: Site, command: list[str], kills: int, rng: random.Random) -> None:
    """Run the connector, SIGKILL it soon after it made progress, restart; `kills` times, then to the end."""
    checkpoint = site.state / "checkpoint.json"
    killed = 0
    while True:
        before = checkpoint.read_bytes() if checkpoint.exists() else b""
        process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if killed < kills:
            deadline = time.monotonic() + 60
            while process.poll() is None and time.monotonic() < deadline:
                if checkpoint.exists() and checkpoint.read_bytes() != before:
                    time.sleep(rng.uniform(0, 0.1))  # land the kill anywhere in the next few chunks
                    break
                time.sleep(0.01)
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                killed += 1
        _, err = process.communicate(timeout=240)
        if process.returncode == 0:
            assert killed == kills, "the run ended before every kill landed"
            return
        assert process.returncode == -signal.SIGKILL, err.decode()[-3000:]


def _crash_run(tmp_path: Path, clean: tuple[Dump, list[dict[str, Any]]], kills: int) -> None:
    site = Site(tmp_path)
    write_files(tmp_path / "inbox", dataset(COUNT))
    command = site.command("filedrop", "--inbox", str(tmp_path / "inbox"), "--once", "--chunk", "25")
    with site.server():
        _kill_and_restart(site, command, kills, random.Random(kills))
    assert site.dump() == clean[0]
    assert site.rejects() == clean[1]  # every refusal dead-lettered exactly once
    assert not [p for p in (tmp_path / "inbox").iterdir() if p.is_file()]


def test_connector_killed_and_restarted_ends_as_a_clean_run(
    tmp_path: Path, clean_run: tuple[Dump, list[dict[str, Any]]]
) -> None:
    _crash_run(tmp_path, clean_run, kills=3)


@pytest.mark.slow
def test_connector_killed_ten_times_ends_as_a_clean_run(
    tmp_path: Path, clean_run: tuple[Dump, list[dict[str, Any]]]
) -> None:
    _crash_run(tmp_path, clean_run, kills=10)


def test_server_restarted_mid_push_ends_as_a_clean_run(
    tmp_path: Path, clean_run: tuple[Dump, list[dict[str, Any]]]
) -> None:
    site = Site(tmp_path)
    write_files(tmp_path / "inbox", dataset(COUNT))
    checkpoint = site.state / "checkpoint.json"
    command = site.command("filedrop", "--inbox", str(tmp_path / "inbox"), "--once", "--chunk", "100")
    with site.server() as server:
        connector = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while not checkpoint.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        server.kill()
    time.sleep(1.0)  # the connector retries against nothing for a while
    with site.server():
        _, err = connector.communicate(timeout=240)
    assert connector.returncode == 0, err.decode()[-3000:]
    assert summary(err.decode())["retries"] >= 1
    assert site.dump() == clean_run[0]
    assert site.rejects() == clean_run[1]


# ---- the fixed-width transaction file ----


def fw(action: str, type_code: str, record: str, version: int, **fields: str) -> str:
    values = {"action": action, "type": type_code, "agency": AGENCY, "record_number": record}
    values["source_version"] = str(version)
    if action != "D":
        values |= {"surname": "OKAFOR", "given_name": "CHIDI", "ssn": "318524471", "date_of_birth": "1970----"}
        values |= {"pob_kind": "C", "pob_code": "NG", "pob_city": "Lagos", "role": "S"}
    return compose(values | fields)


def test_fixed_width_file_flows_with_deletes_and_completions(tmp_path: Path) -> None:
    site = Site(tmp_path)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    file_fields = {"year_indexed": "2015", "custodian": AGENCY, "file_number": "98-04417-PSI"}
    lines = [
        fw("A", "F", "FW-1", 1, **file_fields),
        fw("C", "F", "FW-1", 2, **file_fields, given_name="CHIDIEBERE"),
        fw("A", "F", "FW-2", 1, **file_fields),
        fw("D", "", "FW-2", 2, delete_reason="ENTERED_IN_ERROR"),
        fw("A", "O", "FW-OC", 1, year_indexed="2024", location="Columbia MD Field Office", investigative_number="I-9"),
        fw("X", "F", "FW-3", 2, **file_fields, replaces_record_number="FW-OC"),
        fw("A", "P", "FW-NP", 1, case_number="C-7", requester_category="CONTRACTOR", nac_type="T3"),
        fw(
            "X",
            "H",
            "FW-NH",
            2,
            completed_on="20240601",
            outcome="F",
            replaces_record_number="FW-NP",
            **{"agencies_checked.0": "FBI", "agencies_checked.1": "OPM"},
        ),
        fw("A", "C", "FW-CL", 1, granted_on="20190506", eligibility_level="3", access_level="2", subject_category="K"),
        "Z" + "garbage" * 10,  # not a transaction: a dead letter, not a crash
        fw("A", "F", "FW-BAD", 1, **file_fields, date_of_birth="19701399"),  # the index refuses the date
        fw("A", "C", "FW-BADCODE", 1, granted_on="20190506", eligibility_level="9", subject_category="K"),
    ]
    (inbox / "tx-0001.dat").write_text("\n".join(lines) + "\n")
    with site.server():
        counts = site.run("fixedwidth", "--inbox", str(inbox), "--once")
    assert counts["applied"] == 9 and counts["rejected"] == 3, counts
    assert (inbox / "done" / "tx-0001.dat").exists()
    one = site.get("FW-1").tracing
    assert one.subject.name.given_name == "CHIDIEBERE" and one.source_version == 2
    assert one.subject.identifiers.date_of_birth.year == 1970 and one.subject.identifiers.date_of_birth.month == 0
    assert site.get("FW-2") is None and site.get("FW-OC") is None and site.get("FW-NP") is None
    assert site.get("FW-NH").tracing.details.agencies_checked == ("FBI", "OPM")
    assert site.get("FW-CL") is not None
    rejects = site.rejects()
    assert [reasons(r) for r in rejects[:1]] == [{"action"}]
    assert rejects[0]["raw_line"].startswith("Zgarbage")
    assert rejects[1]["record_number"] == "FW-BAD" and any("date_of_birth" in f for f in reasons(rejects[1]))
    assert reasons(rejects[2]) == {"eligibility_level"}


def test_fixed_width_layout_round_trips() -> None:
    line = fw("A", "F", "R-1", 7, year_indexed="2015", custodian="DSS", file_number="F-1", date_of_birth="197005--")
    row, problems = parse_line(line)
    assert problems == []
    assert row["date_of_birth"] == "1970-05" and row["place_of_birth"] == "NG/Lagos" and row["role"] == "SUBJECT"
    assert not isinstance(to_request(row), list)
    assert parse_line("A" + "F" + " " * 400 + "x")[1][0][0] == "row"
    doc = (ROOT / "docs" / "CONNECTORS.md").read_text().split("### Example", 1)[1].split("```")[1]
    examples = doc.strip().splitlines()
    assert len(examples) == 2
    for example in examples:  # the documented lines read as documented
        row, problems = parse_line(example)
        assert problems == [] and not isinstance(to_request(row), list)
    assert parse_line(examples[0])[0]["place_of_birth"] == "US-VA/Norfolk"


# ---- the SQL repository ----

SCHEMA = """CREATE TABLE {table} (
    id INTEGER PRIMARY KEY, updated_at {ts} NOT NULL, deleted INTEGER NOT NULL DEFAULT 0,
    type TEXT, agency TEXT, record_number TEXT, last_name TEXT, given_name TEXT, ssn TEXT,
    date_of_birth {date}, year_indexed INTEGER, custodian TEXT, file_number TEXT)"""


def _insert(table: str, i: int, stamp: str, *, ssn: str = "", deleted: int = 0, given: str = "ASTRID") -> str:
    return (
        f"INSERT INTO {table} VALUES ({i}, '{stamp}', {deleted}, 'FILE', '{AGENCY}', 'SQL-{i}', 'LINDQVIST', "
        f"'{given}', '{ssn or _ssn(i)}', '1981-02-03', 2019, '{AGENCY}', 'F-{i}')"
    )


def _sql_scenario(tmp_path: Path, dsn: str, execute: Callable[[str], object], table: str, ts: str, date: str) -> None:
    site = Site(tmp_path)
    execute(SCHEMA.format(table=table, ts=ts, date=date))
    stamps = ["2025-01-02 03:04:05", "2025-01-02 03:04:05", "2025-01-02 03:04:05", "2025-01-02 03:04:06"]
    for i, stamp in enumerate(stamps, 1):  # three rows share one timestamp, across pages of two
        execute(_insert(table, i, stamp))
    execute(_insert(table, 5, "2025-01-02 03:04:07", ssn="666-12-3456"))  # the index refuses: area 666
    args = ["--dsn", dsn, "--table", table, "--change-column", "updated_at", "--map", "surname=last_name"]
    args += ["--page", "2", "--once"]
    with site.server():
        counts = site.run("sql", *args)
        assert counts["applied"] == 4 and counts["rejected"] == 1, counts
        assert site.run("sql", *args)["records"] == 0  # nothing new
        execute(f"UPDATE {table} SET updated_at = '2025-02-01 00:00:00', given_name = 'ASTA' WHERE id = 2")
        execute(f"UPDATE {table} SET updated_at = '2025-02-01 00:00:00', deleted = 1 WHERE id = 3")
        execute(_insert(table, 6, "2025-02-01 00:00:00"))
        counts = site.run("sql", *args)
    assert counts["records"] == 3 and counts["applied"] == 3, counts
    assert site.get("SQL-1").tracing.subject.name.surname == "LINDQVIST"
    assert site.get("SQL-2").tracing.subject.name.given_name == "ASTA"
    assert site.get("SQL-3") is None and site.get("SQL-6") is not None and site.get("SQL-5") is None
    [reject] = site.rejects()
    assert reject["record_number"] == "SQL-5" and any("ssn" in f for f in reasons(reject))


def test_sql_repository_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "repository.db"
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        _sql_scenario(tmp_path, str(path), connection.execute, "tracings", "TEXT", "TEXT")
    finally:
        connection.close()


@pytest.mark.skipif(not os.environ.get("DCII_TEST_POSTGRES_DSN"), reason="DCII_TEST_POSTGRES_DSN not set")
def test_sql_repository_postgresql(tmp_path: Path) -> None:
    psycopg = pytest.importorskip("psycopg")
    dsn = os.environ["DCII_TEST_POSTGRES_DSN"]
    table = f"tracings_{os.getpid()}_{random.randrange(1 << 30)}"
    with psycopg.connect(dsn, autocommit=True) as connection:
        try:
            _sql_scenario(tmp_path, dsn, connection.execute, table, "TIMESTAMP", "DATE")
        finally:
            connection.execute(f"DROP TABLE IF EXISTS {table}")


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
