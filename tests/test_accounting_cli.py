"""The `dcii audit` commands, run as subprocesses on real SQLite files (tests/test_accounting.py has the
recording): `verify` on an intact, a tampered and a missing trail, `disclosures` printing the marked accounting
of a tracing, `events` listing the other entries, and the `audit` subcommand plugged into the `dcii` command."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from dcii.cli import audit as audit_cli
from search_service.accounting import AuditLog
from search_service.audit_chain import GENESIS, Head, canonical, database_head, head_path, link, write_head_file
from search_service.audit_lookup import lookup_path
from tests import test_accounting
from tests.support import ROOT
from tests.test_accounting import ENTRIES, NAME, SSN, entry, tamper

# The fixtures these tests take, bound here by name so pytest finds them (importing them would do the same, but
# ruff reads each test's parameter of that name as a redefinition of an unused import, F811).
key, db, trail = test_accounting.key, test_accounting.db, test_accounting.trail


# ---- the CLI ----


def audit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dcii.cli.audit", *args],
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "200"},
        text=True,
        capture_output=True,
        timeout=60,
        check=False,
    )


def test_cli_verify(trail: Path) -> None:
    data = str(trail.parent)
    intact = audit("verify", "--data", data)
    head = database_head(sqlite3.connect(trail))
    assert head is not None and head.seq == ENTRIES
    assert intact.returncode == 0, intact.stdout
    assert intact.stdout.strip() == f"audit trail intact: {ENTRIES} entries; head {ENTRIES}:{head.hash}"
    tamper(trail, "DELETE FROM entry WHERE seq = 5")
    broken = audit("verify", "--data", data)
    assert broken.returncode == 1
    assert broken.stdout.startswith("audit trail broken at entry 5: entry 5 is missing"), broken.stdout
    missing = audit("verify", "--data", str(trail.parent / "nowhere"))  # a wrong --data: usage, not tampering
    assert missing.returncode == 2 and "no audit trail" in missing.stderr and "(is --data right?)" in missing.stderr


def _rewrite_and_chain_again(trail: Path, seq: int) -> None:
    """What someone with write access to the data directory can do without any key: alter entry `seq`,
    then compute every hash after it and both heads again (ops review 2)."""
    conn = sqlite3.connect(trail)
    conn.execute("DROP TRIGGER entry_never_changed")
    rows = conn.execute("SELECT seq, canonical FROM entry ORDER BY seq").fetchall()
    last = GENESIS
    for number, stored in rows:
        text = stored
        if number == seq:
            document = json.loads(stored)
            document["recipient_activity"] = "SOMEONE-ELSE"
            text = canonical(document)
        digest = link(last, text)
        conn.execute(
            "UPDATE entry SET canonical = ?, prev_hash = ?, hash = ? WHERE seq = ?", (text, last, digest, number)
        )
        last = digest
    conn.execute("UPDATE head SET seq = ?, hash = ? WHERE id = 1", (rows[-1][0], last))
    conn.commit()
    conn.close()
    write_head_file(head_path(trail), Head(rows[-1][0], last))
    # And the lookup file, whose rows keep each entry's hash in part: verify would find them disagreeing.
    for path in trail.parent.glob(lookup_path(trail).name + "*"):
        path.unlink()


def test_cli_verify_against_a_head_kept_off_the_machine(trail: Path) -> None:
    data = str(trail.parent)
    first = audit("verify", "--data", data)
    anchor = first.stdout.strip().rpartition(" ")[2]  # "SEQ:HASH", shipped off the machine by cron
    assert audit("verify", "--data", data, "--expect-head", anchor).returncode == 0
    _rewrite_and_chain_again(trail, 3)
    rechained = audit("verify", "--data", data)
    assert rechained.returncode == 0 and anchor not in rechained.stdout  # intact on its own: hence the anchor
    caught = audit("verify", "--data", data, "--expect-head", anchor)
    assert caught.returncode == 1
    assert f"entry {ENTRIES} is not the entry anchored: the trail was rewritten" in caught.stdout, caught.stdout
    later = audit("verify", "--data", data, "--expect-head", f"{ENTRIES + 5}:{'0' * 64}")
    assert later.returncode == 1 and f"the trail ends at entry {ENTRIES}" in later.stdout
    assert audit("verify", "--data", data, "--expect-head", f"0:{GENESIS}").returncode == 0  # an empty trail's head
    bad = audit("verify", "--data", data, "--expect-head", "twelve")
    assert bad.returncode == 2 and "SEQ:HASH" in bad.stderr


def test_cli_disclosures_prints_the_marked_accounting(db: Path, key: bytes) -> None:
    with AuditLog(db, key=key) as log:
        first = log.record_disclosures([entry("R-1"), entry("R-2")])
        second = log.record_disclosures([entry("R-1", method="BATCH", operator="adj-0099", law_enforcement=True)])
    shown = audit("disclosures", "--agency", "afosi", "--record", "R-1", "--data", str(db.parent))
    assert shown.returncode == 0, shown.stderr
    lines = [line for line in shown.stdout.splitlines() if line.strip()]
    assert lines[0] == lines[-1] == "FOR OFFICIAL USE ONLY - PRIVACY SENSITIVE"
    assert "AFOSI/R-1" in shown.stdout and "2 disclosures" in shown.stdout
    for value in (first, second, "adj-0007", "adj-0099", "ONLINE", "BATCH", "SECURITY_CLEARANCE", "ARMY-CCF-01"):
        assert value in shown.stdout
    assert SSN not in shown.stdout and NAME.surname not in shown.stdout
    none = audit("disclosures", "--agency", "NCIS", "--record", "R-1", "--data", str(db.parent))
    assert none.returncode == 0 and "0 disclosures" in none.stdout


def test_cli_events_lists_the_other_entries_by_kind(db: Path, key: bytes) -> None:
    with AuditLog(db, key=key) as log:
        log.record_disclosures([entry("R-1")])
        log.record_event("REFUSAL", "no-certificate", {"method": "/dcii.v1.SearchService/Search", "reason": "r1"})
        log.record_event("OPERATOR_DISABLED", "registry", {"account": "adj-0042", "reason": "unused"})
    every = audit("events", "--data", str(db.parent))
    assert every.returncode == 0, every.stderr
    assert "2 events" in every.stdout
    assert "REFUSAL" in every.stdout and "OPERATOR_DISABLED" in every.stdout and "account=adj-0042" in every.stdout
    assert "R-1" not in every.stdout  # disclosures are the accounting's, not events
    one = audit("events", "--kind", "operator_disabled", "--data", str(db.parent))
    assert one.returncode == 0 and "1 events" in one.stdout and "REFUSAL" not in one.stdout
    missing = audit("events", "--data", str(db.parent / "nowhere"))
    assert missing.returncode != 0 and "no audit trail" in missing.stderr


def test_add_parser_plugs_into_the_dcii_command(trail: Path, capsys: pytest.CaptureFixture[str]) -> None:
    top = argparse.ArgumentParser(prog="dcii")
    commands = top.add_subparsers(dest="command", required=True)
    audit_cli.add_parser(commands, str(trail.parent))
    args = top.parse_args(["audit", "verify"])
    args.run(args)
    assert capsys.readouterr().out.strip().startswith(f"audit trail intact: {ENTRIES} entries; head {ENTRIES}:")


def test_cli_volume_counts_each_recipient_s_disclosures_of_the_period(db: Path, key: bytes) -> None:
    """The limits count calls, not records disclosed: an accredited terminal paged through every surname and
    took 19,890 of 20,000 tracings in 16 s with nothing to flag it (a misbehaving-terminal review)."""
    at = [dt.datetime.now(dt.UTC) - dt.timedelta(days=2)]
    with AuditLog(db, key=key, clock=lambda: at[0]) as log:
        log.record_disclosures([entry(f"OLD-{i}", operator="adj-0001") for i in range(3)])  # before the period
        at[0] = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
        log.record_event("REFUSAL", "no-certificate", {"method": "/dcii.v1.SearchService/Search", "reason": "r"})
        log.record_disclosures([entry(f"R-{i}", operator="adj-0099") for i in range(40)])
        log.record_disclosures([entry("R-1", activity="NAVY-CCF-02", operator="adj-0003")])
    shown = audit("volume", "--hours", "24", "--data", str(db.parent))
    assert shown.returncode == 0, shown.stderr
    rows = [line.split("│")[1:4] for line in shown.stdout.splitlines() if line.count("│") >= 4]
    assert [[cell.strip() for cell in row] for row in rows] == [
        ["ARMY-CCF-01", "adj-0099", "40"],
        ["NAVY-CCF-02", "adj-0003", "1"],
    ]
    assert "41 disclosures" in shown.stdout and SSN not in shown.stdout and NAME.surname not in shown.stdout
    flagged = audit("volume", "--over", "30", "--data", str(db.parent))
    assert flagged.returncode == 1 and "1 recipients over 30" in flagged.stdout
    assert audit("volume", "--over", "40", "--data", str(db.parent)).returncode == 0
