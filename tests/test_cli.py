"""The README's path end to end: `dcii serve --demo` in a real subprocess, then `dcii search` and
`dcii submit` as separate processes, over real mutual TLS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dcii.cli.bootstrap import sample_subject
from dcii.cli.private import close_to_others
from tests.support import ROOT, free_port, server_process

COUNT, SEED = 3000, 5


def dcii(*args: str, profile: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if profile is not None:
        env["DCII_PROFILE"] = str(profile)
    return subprocess.run(
        [sys.executable, "-m", "dcii.cli.main", *args],
        cwd=ROOT,
        env=env,
        text=True,
        capture_output=True,
        check=check,
        timeout=120,
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("demo")
    port = free_port()
    with server_process(root / "data", root / "pki", port, "--demo", str(COUNT), "--seed", str(SEED)):
        yield root / "data" / "profiles"


def _keys(output: str) -> set[str]:
    response = json.loads(output)
    return {f"{h['tracing']['key']['agency']}/{h['tracing']['key']['record_number']}" for h in response.get("hits", [])}


def test_demo_subject_is_found_by_every_exact_mode(demo: Path) -> None:
    tracing = sample_subject(COUNT, SEED)
    assert tracing.subject is not None
    name, ids = tracing.subject.name, tracing.subject.identifiers
    assert ids.date_of_birth is not None
    key = str(tracing.key)
    profile = demo / "adjudicator.json"
    person = ["--surname", name.surname, "--given", name.given_name]
    queries = [
        ["--mode", "exact", *person, "--ssn", ids.ssn],
        ["--mode", "exact", *person, "--dob", ids.date_of_birth.iso()],
        ["--mode", "name-only", *person, "--page-size", "100"],
        ["--mode", "nonstandard", "--surname", name.surname, "--given", name.given_name[0], "--page-size", "100"],
        ["--mode", "fuzzy", "--surname", name.surname[:2] + name.surname[3:], "--given", name.given_name],
        ["--mode", "pid-qualified", *person, "--ssn", ids.ssn[:7] + ids.ssn[8] + ids.ssn[7]],
    ]
    for query in queries:
        found = dcii("search", "--json", *query, profile=profile)
        assert key in _keys(found.stdout), query
    wrong_ssn = dcii("search", "--json", "--mode", "exact", *person, "--ssn", "123-45-6789", profile=profile)
    assert key not in _keys(wrong_ssn.stdout)


def test_table_output_is_marked_and_masks_the_ssn(demo: Path) -> None:
    tracing = sample_subject(COUNT, SEED)
    assert tracing.subject is not None
    name, ids = tracing.subject.name, tracing.subject.identifiers
    shown = dcii(
        "search",
        "--mode",
        "exact",
        "--surname",
        name.surname,
        "--given",
        name.given_name,
        "--ssn",
        ids.ssn,
        profile=demo / "adjudicator.json",
    )
    assert shown.stdout.count("FOR OFFICIAL USE ONLY - PRIVACY SENSITIVE") == 2
    assert ids.ssn not in shown.stdout and ids.ssn[-4:] in shown.stdout


def test_a_refused_query_names_the_field(demo: Path) -> None:
    refused = dcii(
        "search",
        "--mode",
        "exact",
        "--surname",
        "Smith",
        "--given",
        "John",
        profile=demo / "adjudicator.json",
        check=False,
    )
    assert refused.returncode == 2
    assert "INVALID_ARGUMENT" in refused.stderr and "identifiers" in refused.stderr


def _submit_rows(demo: Path, tmp_path: Path, rows: list[str]) -> tuple[subprocess.CompletedProcess[str], Path, Path]:
    """`dcii submit` of these CSV lines as the demo's connector, with a rejects file: it exits 1 (each test's
    file holds a row that does not take effect)."""
    path, rejects = tmp_path / "actions.csv", tmp_path / "rejects.csv"
    path.write_text("\n".join(rows) + "\n")
    submitted = dcii("submit", str(path), "--rejects", str(rejects), profile=demo / "ncis-connector.json", check=False)
    assert submitted.returncode == 1, submitted.stderr
    return submitted, path, rejects


def test_submit_a_file_then_find_it(demo: Path, tmp_path: Path) -> None:
    rows = [
        "type,agency,record_number,source_version,surname,given_name,ssn,date_of_birth,place_of_birth,"
        "custodian,year_indexed,file_number",
        "FILE,NCIS,NCIS-CLI-1,1,Quennell,Ottoline,318-52-4471,1969-02-03,US-VA,NCIS,2012,F-CLI-1",
        "FILE,NCIS,NCIS-CLI-2,1,Quennell,Ottoline,000-52-4471,1969-02-03,US-VA,NCIS,2012,F-CLI-2",
        "FILE,NCIS,NCIS-CLI-3,1,Quennell,Ottoline,,1969-02,US-VA,NCIS,2012,F-CLI-3",
    ]
    submitted, path, rejects = _submit_rows(demo, tmp_path, rows)
    assert "2 applied" in submitted.stderr and "1 rejected" in submitted.stderr
    assert "line 3" in submitted.stderr and "ssn" in rejects.read_text()
    found = dcii(
        "search",
        "--json",
        "--mode",
        "name-only",
        "--surname",
        "QUENNELL",
        "--given",
        "ottoline",
        profile=demo / "adjudicator.json",
    )
    assert _keys(found.stdout) == {"NCIS/NCIS-CLI-1", "NCIS/NCIS-CLI-3"}
    again = dcii("submit", str(path), profile=demo / "ncis-connector.json", check=False)
    assert "2 unchanged" in again.stderr


def test_a_delete_or_completion_that_finds_nothing_names_its_line(demo: Path, tmp_path: Path) -> None:
    # Only a count ("2 not_found") and exit 0: a scripted daily submit took a mistyped key for done.
    header = "action,type,agency,record_number,source_version,surname,given_name,custodian,year_indexed,file_number"
    person = "Quennell,Ottoline,NCIS,2012"
    actions = [
        f"UPSERT,FILE,NCIS,NCIS-NF-1,1,{person},F-NF-1,",
        f"COMPLETE,FILE,NCIS,NCIS-NF-2,1,{person},F-NF-2,NCIS-OC-TYPO",
    ]
    rows = [f"{header},replaces_record_number", *actions, "DELETE,,NCIS,NCIS-TYPO,3" + "," * 6]
    submitted, _path, rejects = _submit_rows(demo, tmp_path, rows)
    assert "1 applied" in submitted.stderr and "2 not_found" in submitted.stderr
    assert "line 3: not found" in submitted.stderr and "line 4: not found" in submitted.stderr
    written = rejects.read_text()
    assert "NCIS-OC-TYPO" in written and "NCIS-TYPO" in written


def test_a_jsonl_file_gets_a_jsonl_reject_file_that_resubmits_once_fixed(demo: Path, tmp_path: Path) -> None:
    """The reject file was CSV whatever its name: `--rejects r.jsonl` held CSV, and resubmitted it was refused
    line by line as "not valid JSON" (docs review 2). A name of another kind, or a tracing file of one, is
    refused before anything is sent, in one line (it was an UNKNOWN error from inside the stream)."""
    good = {"type": "FILE", "agency": "NCIS", "record_number": "NCIS-JL-1", "source_version": 1}
    good |= {"surname": "Quennell", "given_name": "Ottoline", "custodian": "NCIS", "year_indexed": 2012}
    bad = {**good, "record_number": "NCIS-JL-2", "ssn": "000-52-4471"}
    path, rejects = tmp_path / "actions.jsonl", tmp_path / "rejects.jsonl"
    path.write_text("\n".join(json.dumps({**row, "file_number": "F"}) for row in (good, bad)) + "\n")
    connector = demo / "ncis-connector.json"
    submitted = dcii("submit", str(path), "--rejects", str(rejects), profile=connector, check=False)
    assert submitted.returncode == 1 and "1 applied" in submitted.stderr, submitted.stderr
    [entry] = [json.loads(line) for line in rejects.read_text().splitlines()]
    assert entry["record_number"] == "NCIS-JL-2" and "ssn" in entry["errors"]
    entry["ssn"] = "212-52-4471"
    rejects.write_text(json.dumps(entry) + "\n")
    fixed = dcii("submit", str(rejects), profile=connector, check=False)
    assert fixed.returncode == 0 and "1 applied" in fixed.stderr, fixed.stderr
    for args in ((str(path), "--rejects", str(tmp_path / "r.txt")), (str(tmp_path / "d.txt"),)):
        refused = dcii("submit", *args, profile=connector, check=False)
        assert refused.returncode == 1 and "Traceback" not in refused.stderr, refused.stderr
        assert "ends in .csv, .jsonl, .ndjson" in refused.stderr.strip().splitlines()[-1]


def test_a_refused_admin_command_says_why_in_one_line(tmp_path: Path) -> None:
    """An operator's mistake (accrediting an activity that exists) is one line naming it, not a traceback."""
    add = ("accredit", "--data", str(tmp_path), "activity", "add", "ADJ-X", "--agency", "DSS", "--roles", "SUBMITTER")
    dcii(*add, "--new-registry")
    again = dcii(*add, check=False)
    assert again.returncode == 1
    assert "ADJ-X already exists" in again.stderr
    assert "Traceback" not in again.stderr


def test_a_mistyped_data_directory_is_refused_not_made_a_new_registry(tmp_path: Path) -> None:
    """Only `activity add --new-registry` makes a registry (and says so); every command on a directory without
    one, `activity add` without the flag too, names the path and changes nothing, so that a typo in a 3 a.m.
    revocation, or in an accreditation on a live instance (an administrator's UAT), is not silently an empty
    registry (with its own audit trail and key) beside the real one."""
    data, typo = tmp_path / "data", tmp_path / "dta"
    add = ("activity", "add", "ADJ-X", "--agency", "DSS", "--roles", "SUBMITTER")
    made = dcii("accredit", "--data", str(data), *add, "--new-registry")
    assert f"a new registry: {data / 'registry.db'}" in made.stdout
    again = dcii("accredit", "--data", str(data), "activity", "add", "ADJ-Y", "--agency", "DSS", "--roles", "SUBMITTER")
    assert "a new registry" not in again.stdout
    for command in (
        add,
        ("activity", "revoke", "ADJ-X"),
        ("activity", "list"),
        ("operator", "list"),
        ("operator", "suspend", "jdoe"),
    ):
        refused = dcii("accredit", "--data", str(typo), *command, check=False)
        assert refused.returncode == 1, command
        assert f"no registry at {typo / 'registry.db'}: is --data right?" in refused.stderr
        assert "Traceback" not in refused.stderr
    assert "activity add ... --new-registry" in refused.stderr  # how to make one, when that was meant
    assert not typo.exists()
    assert "ADJ-X" in dcii("accredit", "--data", str(data), "activity", "list").stdout
    # A certificate path that is not there (RUNBOOK once named it without its directory): one line.
    missing = dcii(
        "accredit", "--data", str(data), "activity", "add-cert", "ADJ-X", str(tmp_path / "no.pem"), check=False
    )
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert f"cannot read the certificate {tmp_path / 'no.pem'}: No such file or directory" in missing.stderr
    (tmp_path / "key.pem").write_text("-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n")
    wrong = dcii(
        "accredit", "--data", str(data), "activity", "add-cert", "ADJ-X", str(tmp_path / "key.pem"), check=False
    )
    assert wrong.returncode == 1 and "Traceback" not in wrong.stderr and "is not a PEM certificate" in wrong.stderr


def test_the_data_directory_and_its_files_are_for_the_service_account_only(tmp_path: Path) -> None:
    # Under the usual umask 022, registry.db (password hashes), index.db (names, SSNs) and audit.db were
    # made readable by every local user, in a directory open to all.
    data = tmp_path / "data"
    add = ("accredit", "--data", str(data), "activity", "add", "ADJ-X", "--agency", "DSS", "--roles", "SUBMITTER")
    previous = os.umask(0o022)
    try:
        dcii(*add, "--new-registry")
    finally:
        os.umask(previous)
    made = [data, *data.iterdir()]
    assert any(p.name == "registry.db" for p in made)
    assert {p.name: oct(p.stat().st_mode & 0o077) for p in made} == {p.name: "0o0" for p in made}
    opened = tmp_path / "earlier"  # a data directory an earlier version made open to all: `dcii serve` closes it
    opened.mkdir(mode=0o755)
    opened.chmod(0o755)
    close_to_others(opened)
    assert opened.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("option", ["--purpose", "--type"])
def test_an_unknown_purpose_or_type_is_one_line_that_does_not_quote_it(option: str) -> None:
    """A name typed into the wrong option came back in a traceback (a PII review)."""
    done = dcii("search", option, "Zzqxwyve", "--surname", "Whitfield", check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"argument {option}: not a" in done.stderr and "zzqxwyve" not in done.stderr.lower()


def test_an_expired_certificate_is_not_accredited(tmp_path: Path) -> None:
    """`dcii accredit activity add-cert` took a certificate that had expired (TLS refuses it: it could never
    connect, and the registry listed it as the activity's)."""
    from datetime import UTC, datetime, timedelta

    from search_service import pki

    expired = pki.issue_client_cert(pki.make_ca(), "ADJ-X", "DSS", not_after=datetime.now(UTC) - timedelta(days=1))
    (tmp_path / "old.pem").write_bytes(expired.cert_pem)
    dcii("accredit", "--data", str(tmp_path), "activity", "add", "ADJ-X", "--agency", "DSS", "--roles", "SUBMITTER",
         "--new-registry")  # fmt: skip
    done = dcii(
        "accredit", "--data", str(tmp_path), "activity", "add-cert", "ADJ-X", str(tmp_path / "old.pem"), check=False
    )
    assert done.returncode != 0 and "expired on" in done.stderr and "Traceback" not in done.stderr


def test_a_refused_field_is_named_on_the_command_line(tmp_path: Path) -> None:
    """`dcii` said only "request failed the edit criteria": which field, and why, stayed in the exception."""
    done = dcii(
        "accredit", "--data", str(tmp_path), "activity", "add", "TERM-1", "--agency", "DSS", "--roles", "PEER,QUERIER",
        "--new-registry", check=False,
    )  # fmt: skip
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "(roles: PEER is for the instances' own certificate: no other role, no purpose)" in done.stderr


def _profile_without_purpose(demo: Path, tmp_path: Path) -> Path:
    """The demo adjudicator's profile as a terminal without a purpose of its own would have it."""
    data = json.loads((demo / "adjudicator.json").read_text())
    assert data.pop("purpose") == "security_clearance"  # the demo's terminal states one
    data["password_file"] = str(demo / data["password_file"])
    path = tmp_path / "terminal.json"
    path.write_text(json.dumps(data))
    return path


def test_a_query_states_its_purpose_or_is_not_sent(demo: Path, tmp_path: Path) -> None:
    """`dcii search` filled in SECURITY_CLEARANCE by itself, and the accounting recorded a purpose nobody
    stated (a privacy officer's review). Now --purpose, or the profile's "purpose"."""
    profile = _profile_without_purpose(demo, tmp_path)
    person = ["--mode", "name-only", "--surname", "Quennell", "--given", "Ottoline"]
    unstated = dcii("search", *person, profile=profile, check=False)
    assert unstated.returncode != 0 and "why do you ask? --purpose one of" in unstated.stderr
    assert "Traceback" not in unstated.stderr
    stated = dcii("search", "--json", "--purpose", "sensitive-position", *person, profile=profile)
    assert stated.returncode == 0
    batch = tmp_path / "queries.csv"
    batch.write_text("query_id,surname,given_name,mode\nq1,Quennell,Ottoline,NAME_ONLY\n")
    refused = dcii("batch", "submit", str(batch), "--out", str(tmp_path / "r.jsonl"), profile=profile, check=False)
    assert refused.returncode != 0 and "nothing was sent; no purpose on line(s) 2" in refused.stderr
    assert not (tmp_path / "r.jsonl").exists()


def test_a_copied_profile_whose_files_are_not_beside_it_is_one_line(demo: Path, tmp_path: Path) -> None:
    """Copying a profile (to change its port) left its relative password_file behind: a traceback."""
    copy = tmp_path / "copy.json"
    copy.write_text((demo / "adjudicator.json").read_text())
    done = dcii("search", "--surname", "Quennell", "--given", "Ottoline", "--dob", "1969", profile=copy, check=False)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert f"profile: password_file {tmp_path / 'adjudicator.password'}: No such file or directory" in done.stderr
    assert "relative to the profile's own directory" in done.stderr


def test_a_date_of_birth_with_a_month_or_day_of_00_is_refused_not_widened(demo: Path) -> None:
    """1952-04-00 was read as April 1952, any day: the query widened without a word (an adjudicator's review)."""
    asked = ["search", "--surname", "Quennell", "--given", "Ottoline", "--dob"]
    for text, part in (("1952-04-00", "day"), ("1952-00", "month")):
        done = dcii(*asked, text, profile=demo / "adjudicator.json", check=False)
        assert done.returncode != 0 and f"--dob: a {part} of 00: leave it out" in done.stderr
