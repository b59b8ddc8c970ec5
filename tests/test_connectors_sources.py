"""The fixed-width transaction file and the SQL repository connectors (connectors/fixedwidth, connectors/sql)
against a real server subprocess over mutual TLS: adds, changes, deletes and completions flow, refusals are
dead-lettered, the documented layout reads as documented, and a SQL source is followed by its change column
(SQLite always; PostgreSQL when DCII_TEST_POSTGRES_DSN is set). The shared `Site`: tests/test_connectors.py.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import os
import random
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from connectors.fixedwidth import compose, parse_line
from connectors.rows import to_request
from connectors.sql import _cell, _decode, _deletion, _encode
from tests.support import ROOT
from tests.test_connectors import AGENCY, Site, _ssn, reasons

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
    # Refused records hold names and SSNs: for the connector's own user only.
    assert (site.state / "rejects.jsonl").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    ("flag", "deleted"),
    [(None, False), (0, False), (False, False), ("", False), ("0", False), ("f", False), (" False ", False),
     ("N", False), ("no", False), (1, True), (True, True), (-1, True), ("1", True), ("T", True), ("true", True),
     ("Y", True), ("yes", True), ("maybe", None), ("deleted", None), (b"\x01", None)],
)  # fmt: skip
def test_a_deleted_column_deletes_only_on_a_true_value(flag: object, deleted: bool | None) -> None:
    # A value that is neither (None) refuses the row: guessed true, it would delete a live record.
    assert _deletion(flag) is deleted


def test_sql_repository_sqlite(tmp_path: Path) -> None:
    path = tmp_path / "repository.db"
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        _sql_scenario(tmp_path, str(path), connection.execute, "tracings", "TEXT", "TEXT")
    finally:
        connection.close()


def test_a_row_with_text_that_is_not_utf8_is_refused_and_the_rest_flows(tmp_path: Path) -> None:
    # sqlite3 once failed the whole page on it, for ever, with an error quoting the cell (a name) on stderr.
    path = tmp_path / "repository.db"
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute(SCHEMA.format(table="tracings", ts="TEXT", date="TEXT"))
    for i in (1, 2, 3):
        connection.execute(_insert("tracings", i, f"2025-01-02 03:04:0{i}"))
    connection.execute("UPDATE tracings SET last_name = CAST(X'4C494E4451FF56495354' AS TEXT) WHERE id = 2")
    connection.close()
    site = Site(tmp_path)
    args = ["--dsn", str(path), "--table", "tracings", "--change-column", "updated_at", "--map", "surname=last_name"]
    with site.server():
        counts = site.run("sql", *args, "--once")
    assert counts["applied"] == 2 and counts["rejected"] == 1, counts
    [reject] = site.rejects()
    assert reject["record_number"] == "SQL-2" and reasons(reject) == {"surname"}
    assert site.get("SQL-1") is not None and site.get("SQL-3") is not None


@pytest.mark.parametrize(
    "value",
    [7, 2.5, "K-7", None, dt.datetime(2025, 1, 2, 3, 4, 5, 6), dt.datetime(2025, 1, 2, tzinfo=dt.UTC),
     dt.date(2025, 1, 2), dt.time(3, 4, 5), decimal.Decimal("12.50"), uuid.UUID(int=7), b"\x00\xff"],
)  # fmt: skip
def test_a_change_or_key_value_survives_the_checkpoint_as_its_own_type(value: object) -> None:
    # A PostgreSQL uuid key once crashed the connector on its first row.
    assert _decode(json.loads(json.dumps(_encode(value)))) == value


@pytest.mark.parametrize(
    ("value", "cell"),
    [(2019.0, 2019), (decimal.Decimal("2019.00"), 2019), (2019.5, "2019.5"), (float("inf"), "inf"),
     (decimal.Decimal("Infinity"), "Infinity"), (decimal.Decimal("NaN"), "NaN"), (decimal.Decimal("sNaN"), "sNaN")],
)  # fmt: skip
def test_a_number_cell_is_taken_as_it_is_even_when_not_finite(value: object, cell: object) -> None:
    # An infinite REAL once stopped the connector (int(inf)); such a cell is now text, which the row refuses.
    assert _cell("year_indexed", value) == cell


def test_a_change_or_key_type_no_position_can_keep_is_refused_by_name() -> None:
    with pytest.raises(SystemExit, match="complex"):
        _encode(1j)


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
