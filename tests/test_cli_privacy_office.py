"""`dcii privacy dispute|open|access` end to end: `dcii serve --demo` in a real subprocess, each command a process
of its own over mutual TLS with the demo privacy officer's profile. Until these the office needed a gRPC
client of its own to file a dispute, register a request or answer one (a privacy officer's review)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from dcii.cli.bootstrap import sample_subject
from tests.support import free_port, server_process
from tests.test_cli import dcii

COUNT, SEED = 2000, 9
MARKING = "FOR OFFICIAL USE ONLY - PRIVACY SENSITIVE"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("office")
    with server_process(root / "data", root / "pki", free_port(), "--demo", str(COUNT), "--seed", str(SEED)):
        yield root / "data" / "profiles"


def test_the_office_registers_a_request_disputes_a_record_and_answers_the_person(demo: Path) -> None:
    tracing = sample_subject(COUNT, SEED)
    assert tracing.subject is not None
    name, ssn = tracing.subject.name, tracing.subject.identifiers.ssn
    office, adjudicator = demo / "privacy.json", demo / "adjudicator.json"
    person = ["--surname", name.surname, "--given", name.given_name]
    # An adjudicator's search: a disclosure the person's accounting must show.
    dcii("search", "--mode", "exact", *person, "--ssn", ssn, profile=adjudicator)

    opened = dcii("privacy", "open", "PA-2026-0042", "--kind", "access", "--received", "2026-11-20", profile=office)
    assert "request PA-2026-0042 (access) received" in opened.stdout and "acknowledge by 2026-12-" in opened.stdout

    filed = dcii(
        "privacy", "dispute", tracing.key.agency, tracing.key.record_number,
        "--statement-location", "PO-2026-0042", "--summary", "disputes the date of birth", profile=office,
    )  # fmt: skip
    assert f"filed on {tracing.key}" in filed.stdout and "notices queued for 1 earlier recipients" in filed.stdout
    assert filed.stdout.count(MARKING) == 2
    seen = json.loads(dcii("search", "--json", "--mode", "exact", *person, "--ssn", ssn, profile=adjudicator).stdout)
    [hit] = [h for h in seen["hits"] if h["tracing"]["key"]["record_number"] == tracing.key.record_number]
    assert hit["dispute"]["statement_location"] == "PO-2026-0042"

    answered = dcii("privacy", "access", "PA-2026-0042", *person, "--ssn", ssn, "--json", profile=office)
    answer = json.loads(answered.stdout)
    assert tracing.key.record_number in {t["tracing"]["key"]["record_number"] for t in answer["tracings"]}
    recipients = {(d["tracing"]["record_number"], d["recipient_activity"]) for d in answer["disclosures"]}
    assert (tracing.key.record_number, "DEMO-ADJUDICATOR") in recipients
    table = dcii("privacy", "access", "PA-2026-0042", *person, "--ssn", ssn, profile=office).stdout
    assert table.count(MARKING) == 2 and "Accounting of disclosures" in table and "DEMO-ADJUDICATOR" in table


def test_a_refused_call_is_one_line_naming_the_field(demo: Path) -> None:
    ssn_shaped = dcii(
        "privacy", "open", "123-45-6789", "--kind", "access", "--received", "2026-11-20",
        profile=demo / "privacy.json", check=False,
    )  # fmt: skip
    assert ssn_shaped.returncode == 2 and "INVALID_ARGUMENT" in ssn_shaped.stderr
    assert "request_number:" in ssn_shaped.stderr and "Traceback" not in ssn_shaped.stderr
    not_the_office = dcii(
        "privacy", "access", "PA-1", "--surname", "Smith", "--ssn", "318-52-4471",
        profile=demo / "adjudicator.json", check=False,
    )  # fmt: skip
    assert not_the_office.returncode == 2 and "PERMISSION_DENIED" in not_the_office.stderr
    no_offset = dcii(
        "privacy", "open", "PA-9", "--kind", "amendment", "--received", "2026-11-20T14:00",
        profile=demo / "privacy.json", check=False,
    )  # fmt: skip
    assert no_offset.returncode != 0 and "needs its offset" in no_offset.stderr
