"""The file-drop connector against a real server subprocess over mutual TLS, and what every connector test
shares: a repository's data, the index with a profile accredited to push to it (`Site`), the connector process.

Each connector runs as `python -m connectors ...` in its own process, as an operator would run it. The
crash tests SIGKILL the connector (or the server) mid-run, restart it, and compare the index (and the
reject file) with an uninterrupted run's: nothing lost, nothing doubled. The other sources (fixed-width file,
SQL repository): tests/test_connectors_sources.py; the machinery on its own: tests/test_connectors_machinery.py.
"""

from __future__ import annotations

import csv
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from connectors.rows import COLUMNS
from indexer.model import TracingKey
from indexer.store.sqlite import SqliteStore
from search_service.accreditation import Role
from search_service.registry import Registry
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
        counts = summary(done.stderr)
        assert done.returncode == once_status(counts), done.stderr[-3000:]
        return counts

    def rejects(self) -> list[dict[str, Any]]:
        """The reject file's entries, but for when each was written (a rerun's times differ)."""
        path = self.state / "rejects.jsonl"
        entries = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
        return [{k: v for k, v in entry.items() if k != "timestamp"} for entry in entries]

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


def once_status(counts: dict[str, int]) -> int:
    """--once's exit status for a run with these counts (CONNECTORS.md, "Exit status"): 4 when a file went
    to failed/, 3 when records went to the reject file, else 0."""
    if counts.get("files_failed"):
        return 4
    return 3 if any(counts.get(k) for k in ("rejected", "not_found", "denied", "collisions")) else 0


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
    (inbox / "done").mkdir()
    (inbox / "done").chmod(0o755)  # as an earlier version made it
    with site.server():
        counts = site.run("filedrop", "--inbox", str(inbox), "--once")
    assert sorted(p.name for p in (inbox / "done").iterdir()) == ["a-00.csv", "b-lifecycle.jsonl", "c-changes.csv"]
    assert [p.name for p in (inbox / "failed").iterdir()] == ["broken.csv"]
    assert {(inbox / folder).stat().st_mode & 0o777 for folder in ("done", "failed")} == {0o700}  # records inside
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


def test_a_wrong_password_is_one_failed_login_a_run(tmp_path: Path) -> None:
    """A refused login was taken for an expired session and tried again: two failed logins a run, so three
    runs of a cron-driven connector locked the account (five failures). It is tried once, and the run ends
    saying why (docs review 1)."""
    site = Site(tmp_path)
    write_files(tmp_path / "inbox", dataset(5))
    (tmp_path / "profile" / "password").write_text("not-the-password")
    with site.server():
        for _ in range(3):
            done = subprocess.run(
                site.command("filedrop", "--inbox", str(tmp_path / "inbox"), "--once"),
                check=False,
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert done.returncode != 0 and "UNAUTHENTICATED" in done.stderr, done.stderr[-2000:]
    registry = Registry(site.index.data_dir / "registry.db")
    try:
        [operator] = [o for o in registry.list_operators() if o.activity_id == "DSS-REPO-01"]
        failed = (
            registry._conn()
            .execute("SELECT failed_logins FROM operator WHERE account_code = ?", (operator.account_code,))
            .fetchone()[0]
        )
    finally:
        registry.close()
    assert (failed, operator.locked_until) == (3, None)


def test_a_row_no_protobuf_string_can_hold_is_dead_lettered_and_the_rest_goes_on(tmp_path: Path) -> None:
    # Valid JSON can carry a lone surrogate: that row is refused (and its reject written), not the whole inbox.
    site = Site(tmp_path)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    good, bad = person_row(1, 1), person_row(2, 1, surname="LIND\ud800")
    (inbox / "a.jsonl").write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with site.server():
        counts = site.run("filedrop", "--inbox", str(inbox), "--once")
    assert counts["applied"] == 1 and counts["rejected"] == 1, counts
    assert [p.name for p in (inbox / "done").iterdir()] == ["a.jsonl"]
    [reject] = site.rejects()
    assert reject["record_number"] == bad["record_number"] and reasons(reject) == {"surname"}
    assert site.get(good["record_number"]) is not None


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
        if process.returncode != -signal.SIGKILL:  # the run's end: 3 when records went to the reject file
            assert process.returncode == once_status(summary(err.decode())), err.decode()[-3000:]
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
    assert connector.returncode == once_status(summary(err.decode())), err.decode()[-3000:]
    assert summary(err.decode())["retries"] >= 1
    assert site.dump() == clean_run[0]
    assert site.rejects() == clean_run[1]
