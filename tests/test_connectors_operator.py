"""What the connectors' operator sees (their user-acceptance test: H2, M1-M3, M5, L1, L3), on the real
`python -m connectors` against a real server subprocess over mutual TLS, or with no index listening: a
record the index does not find, and a second version of a record with the same source version and other
content within one file, are dead letters; every reject entry says its file (or table), line (or SQL
position) and time; `--once` ends with a documented status; log lines have timestamps, `done` and `failed`
lines the file's counts; STATE/last_run.json says when and with what counts; a CSV field over 128 KiB gets
its own reason. Stops, outages, a terminal and a second connector: tests/test_connectors_stop.py. The command
line's mistakes, masked dates and --help: tests/test_connectors_machinery.py.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors.checkpoint import Checkpoint
from connectors.client import Profile, Session
from connectors.filedrop import process_file, read_csv
from connectors.machinery import Backoff, Progress, Runner
from tests.support import ROOT
from tests.test_connectors import AGENCY, Site, person_row, write_files
from tests.test_connectors_sources import fw

Lines = list[dict[str, Any]]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """One index for the module, running: each test has its own state folders and record numbers."""
    running = Site(tmp_path_factory.mktemp("operator"))
    with running.server():
        yield running


def _command(profile: Path, state: Path, kind: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "connectors", kind, "--profile", str(profile), "--state", str(state), *args]


def _run(profile: Path, state: Path, kind: str, *args: str) -> tuple[int, Lines, str]:
    done = subprocess.run(
        _command(profile, state, kind, *args), cwd=ROOT, capture_output=True, text=True, timeout=180, check=False
    )
    return done.returncode, _json_lines(done.stderr), done.stderr


def _json_lines(text: str) -> Lines:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def _rejects(state: Path) -> Lines:
    path = state / "rejects.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _event(lines: Lines, event: str) -> Lines:
    return [line for line in lines if line["event"] == event]


def _utc(stamp: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(stamp)
    assert moment.utcoffset() == dt.timedelta(0), stamp
    return moment


def _csv(inbox: Path, name: str, rows: list[dict[str, str]]) -> Path:
    write_files(inbox, [(name, rows)])
    return inbox / name


# ---- H2: not found ----


def test_a_record_the_index_does_not_find_is_a_dead_letter_with_its_reason(site: Site, tmp_path: Path) -> None:
    inbox, state = tmp_path / "inbox", tmp_path / "state"
    complete = person_row(1, 400, action="COMPLETE", record_number="H2-CF-1", replaces_record_number="H2-OC-NEVER")
    delete = {"action": "DELETE", "agency": AGENCY, "record_number": "H2-NOPE-1", "source_version": "400"}
    _csv(inbox, "day.csv", [complete, delete, person_row(2, 400, record_number="H2-OK-1")])
    status, lines, _ = _run(site.profile, state, "filedrop", "--inbox", str(inbox), "--once")
    assert status == 3, lines
    [summary] = _event(lines, "summary")
    assert (summary["not_found"], summary["applied"], summary["exit_status"]) == (2, 1, 3)
    found = {entry["record_number"]: entry for entry in _rejects(state)}
    assert set(found) == {"H2-CF-1", "H2-NOPE-1"}
    assert {e["dead_letter"] for e in found.values()} == {"NOT_FOUND"}
    assert found["H2-CF-1"]["errors"] == [
        {
            "field": "replaces_record_number",
            "description": "the index holds no live tracing DSS/H2-OC-NEVER to complete",
        }
    ]
    assert found["H2-NOPE-1"]["errors"] == [
        {"field": "record_number", "description": "the index holds no tracing DSS/H2-NOPE-1 to delete"}
    ]
    assert (found["H2-CF-1"]["source"], found["H2-CF-1"]["line"], found["H2-NOPE-1"]["line"]) == ("day.csv", 2, 3)

    fixed_inbox, fixed_state = tmp_path / "legacy", tmp_path / "legacy-state"
    fixed_inbox.mkdir()
    (fixed_inbox / "tx.dat").write_text(fw("D", "", "H2-FW-999", 2, delete_reason="REVOKED") + "\n")
    status, _, _ = _run(site.profile, fixed_state, "fixedwidth", "--inbox", str(fixed_inbox), "--once")
    [entry] = _rejects(fixed_state)
    assert status == 3 and entry["dead_letter"] == "NOT_FOUND" and (entry["source"], entry["line"]) == ("tx.dat", 1)
    assert entry["raw_line"].startswith("D DSS")


# ---- M1: a collision within one file ----


def test_the_same_key_and_version_with_other_content_in_one_file_is_a_collision(site: Site, tmp_path: Path) -> None:
    inbox, state = tmp_path / "inbox", tmp_path / "state"
    first = person_row(3, 200, record_number="M1-DUP-1", given_name="GARY")
    second = person_row(3, 200, record_number="M1-DUP-1", given_name="GARRY", ssn="212-45-6786")
    same = person_row(4, 200, record_number="M1-SAME-1")
    _csv(inbox, "a_monday.csv", [first, same, second, same])
    status, lines, stderr = _run(site.profile, state, "filedrop", "--inbox", str(inbox), "--once")
    assert status == 3, stderr
    [collision] = _event(lines, "collision")
    assert (collision["key"], collision["line"], collision["earlier_line"], collision["version"]) == (
        "DSS/M1-DUP-1",
        4,
        2,
        200,
    )
    assert "GARRY" not in stderr and "212-45" not in stderr  # the key, never the values
    [entry] = _rejects(state)
    assert (entry["given_name"], entry["dead_letter"], entry["line"]) == ("GARRY", "COLLISION", 4)
    assert "line 2" in entry["errors"][0]["description"] and entry["errors"][0]["field"] == "source_version"
    [summary] = _event(lines, "summary")
    assert (summary["collisions"], summary["unchanged"], summary["applied"]) == (1, 2, 2)  # M1-SAME-1: no collision


def test_a_collision_with_a_line_answered_before_a_restart_is_still_seen(site: Site, tmp_path: Path) -> None:
    """Resumed after line 2, the lines up to it are read again only to be remembered."""
    inbox, state = tmp_path / "inbox", tmp_path / "state"
    first = person_row(5, 300, record_number="M1-RESUME-1", given_name="ANNE")
    second = person_row(5, 300, record_number="M1-RESUME-1", given_name="ANNA")
    runner = _runner(site, state)
    try:
        process_file(_csv(inbox, "before.csv", [first]), runner, read_csv)  # line 2 went in before the stop
        path = _csv(inbox, "a.csv", [first, second])
        stat = path.stat()
        runner.checkpoint.position = f"a.csv|{stat.st_size}|{stat.st_mtime_ns}#2"  # as the stop left it
        runner.checkpoint.save()
        assert process_file(path, runner, read_csv)
    finally:
        runner.close()
    [entry] = _rejects(state)
    assert (entry["given_name"], entry["dead_letter"], entry["source"], entry["line"]) == (
        "ANNA",
        "COLLISION",
        "a.csv",
        3,
    )


def test_a_collision_within_one_poll_of_a_table(site: Site, tmp_path: Path) -> None:
    db = tmp_path / "repository.db"
    with sqlite3.connect(db) as connection:
        connection.execute(
            "CREATE TABLE tracings (id INTEGER PRIMARY KEY, seq INTEGER, type TEXT, agency TEXT, record_number TEXT,"
            " source_version INTEGER, surname TEXT, given_name TEXT, year_indexed INTEGER, custodian TEXT,"
            " file_number TEXT)"
        )
        for row, given in ((1, "OLIVE"), (2, "OLIVIA")):  # one record exported twice at one version
            connection.execute(
                f"INSERT INTO tracings VALUES ({row}, {row}, 'FILE', 'DSS', 'M1-SQL-1', 9, 'NASH', '{given}', 2010,"
                " 'DSS', 'F-1')"
            )
    connection.close()
    state = tmp_path / "state"
    status, lines, stderr = _run(site.profile, state, "sql", "--dsn", str(db), "--table", "tracings",
                                 "--change-column", "seq", "--once")  # fmt: skip
    assert status == 3, stderr
    [entry] = _rejects(state)
    assert (entry["given_name"], entry["dead_letter"], json.loads(entry["position"])) == ("OLIVIA", "COLLISION", [2, 2])
    assert "the row at [1, 1]" in entry["errors"][0]["description"]
    [collision] = _event(lines, "collision")
    assert (collision["key"], collision["file"], collision["line"]) == ("DSS/M1-SQL-1", "tracings", None)


def _runner(site: Site, state: Path, stream: io.StringIO | None = None) -> Runner:
    profile = Profile.load(site.profile)
    return Runner(
        lambda: Session(profile),
        Checkpoint(state / "checkpoint.json", kind="filedrop"),
        state / "rejects.jsonl",
        Progress("filedrop", stream=stream or io.StringIO()),
        backoff=Backoff(max_attempts=0),
    )


# ---- M2, M3, L2: where, when, counts, exit status ----


def test_each_reject_entry_says_which_file_line_and_when(site: Site, tmp_path: Path) -> None:
    inbox, state = tmp_path / "inbox", tmp_path / "state"
    refused = person_row(6, 200, record_number="M2-1", ssn="000-12-3456")
    _csv(inbox, "a_HARTWELL_DONALD_1968-03-14.csv", [person_row(7, 200, record_number="M2-OK"), refused])
    _csv(inbox, "b_tuesday.csv", [refused])
    started = dt.datetime.now(dt.UTC)
    status, lines, stderr = _run(site.profile, state, "filedrop", "--inbox", str(inbox), "--once")
    assert status == 3, stderr
    entries = _rejects(state)
    assert [(e["record_number"], e["source"], e["line"]) for e in entries] == [
        ("M2-1", "a_HARTWELL_DONALD_1968-03-14.csv", 3),  # the reject file is 0600: the real name stands
        ("M2-1", "b_tuesday.csv", 2),
    ]
    assert all(started <= _utc(e["timestamp"]) <= dt.datetime.now(dt.UTC) for e in entries)
    assert (state / "rejects.jsonl").stat().st_mode & 0o777 == 0o600
    # L2: the log masks the date of birth in the file's name
    assert "1968" not in stderr and "a_HARTWELL_DONALD_[redacted].csv" in stderr
    # M3: the file's own counts on its done line, a timestamp on every line
    done = _event(lines, "done")
    assert [(d["records"], d["applied"], d["rejected"]) for d in done] == [(2, 1, 1), (1, 0, 1)]
    assert all(_utc(line["timestamp"]) >= started for line in lines)


def test_sql_reject_entries_name_the_table_and_the_rows_position(site: Site, tmp_path: Path) -> None:
    db = tmp_path / "repository.db"
    with sqlite3.connect(db) as connection:
        connection.execute(
            "CREATE TABLE tracings (id INTEGER PRIMARY KEY, seq INTEGER, type TEXT, agency TEXT, record_number TEXT,"
            " surname TEXT, given_name TEXT, ssn TEXT, year_indexed INTEGER, custodian TEXT, file_number TEXT)"
        )
        connection.execute(
            "INSERT INTO tracings VALUES (7, 41, 'FILE', 'DSS', 'M2-SQL-1', 'KING', 'LARRY', '000-12-3456', 2010,"
            " 'DSS', 'F-1')"
        )
    connection.close()
    state = tmp_path / "state"
    status, _, stderr = _run(site.profile, state, "sql", "--dsn", str(db), "--table", "tracings", "--change-column",
                             "seq", "--once")  # fmt: skip
    [entry] = _rejects(state)
    assert status == 3, stderr
    assert (entry["source"], json.loads(entry["position"]), entry["dead_letter"]) == ("tracings", [41, 7], "REJECTED")
    last = json.loads((state / "last_run.json").read_text())
    assert (last["connector"], last["exit_status"], last["counts"]["rejected"]) == ("sql", 3, 1)


def test_once_exit_status_says_what_to_look_at(site: Site, tmp_path: Path) -> None:
    clean, state = tmp_path / "clean", tmp_path / "clean-state"
    _csv(clean, "a.csv", [person_row(8, 1, record_number="M3-1")])
    status, lines, _ = _run(site.profile, state, "filedrop", "--inbox", str(clean), "--once")
    assert status == 0 and _event(lines, "summary")[0]["files_done"] == 1
    last = json.loads((state / "last_run.json").read_text())
    assert (last["exit_status"], last["running"], last["counts"]["applied"]) == (0, False, 1)
    assert (last["last_file"]["file"], last["last_file"]["outcome"], last["last_file"]["counts"]["applied"]) == (
        "a.csv",
        "done",
        1,
    )
    assert _utc(last["timestamp"]) >= _utc(last["started"])

    mixed, state = tmp_path / "mixed", tmp_path / "mixed-state"
    _csv(mixed, "a.csv", [person_row(9, 1, record_number="M3-2", ssn="000-12-3456")])
    (mixed / "b.csv").write_text("surname,givne_name\nX,Y\n")
    status, lines, _ = _run(site.profile, state, "filedrop", "--inbox", str(mixed), "--once")
    assert status == 4, lines  # a failed file outranks the dead letters
    [failed] = _event(lines, "failed")
    assert failed["file"] == "b.csv" and "givne_name" in failed["reason"] and failed["records"] == 0
    [summary] = _event(lines, "summary")
    assert (summary["files_done"], summary["files_failed"], summary["rejected"]) == (1, 1, 1)
    assert json.loads((state / "last_run.json").read_text())["exit_status"] == 4


_LONG_ROW = (
    "action,type,agency,record_number,source_version,surname,given_name,year_indexed,custodian,file_number\n"
    "UPSERT,FILE,DSS,L1-2,1,EVANS," + "B" * 140_000 + ",2010,DSS,L1F\n"
)


def test_a_field_over_128_kib_gets_its_own_reason(site: Site, tmp_path: Path) -> None:
    path = tmp_path / "long.csv"
    path.write_text(_LONG_ROW)
    # Each reader in a process of its own: the csv module's limit is the process's.
    probes = {
        "connector": "from connectors.filedrop import read_csv as r; [x] = r(p, 'x', 0); print(x.error or 'row')",
        "dcii submit": "from indexer.fileformat import read_actions; [x] = read_actions(p); print(x)",
    }
    for reader, probe in probes.items():
        code = (
            f"import csv, sys; from pathlib import Path; p = Path(sys.argv[1]); {probe}; print(csv.field_size_limit())"
        )
        done = subprocess.run([sys.executable, "-c", code, str(path)], cwd=ROOT, capture_output=True, text=True,
                              check=True, timeout=60)  # fmt: skip
        *read, limit = done.stdout.splitlines()
        assert read and "well-formed" not in done.stdout, (reader, done.stdout[:300])
        assert limit == "131072", reader  # raised for the line only: `dcii batch`'s reader keeps its own
    inbox, state = tmp_path / "inbox", tmp_path / "state"
    inbox.mkdir()
    os.replace(path, inbox / "long.csv")
    status, _, _ = _run(site.profile, state, "filedrop", "--inbox", str(inbox), "--once")
    [entry] = _rejects(state)
    assert status == 3 and [e["field"] for e in entry["errors"]] == ["upsert.subject.name.given_name"], entry["errors"]
