"""A connector's (and the `dcii` CLI's) configuration checked before anything is sent (UAT H1, M4, M6): an SQL
--map that names a column the table lacks, or no tracing column, and a table without the columns a feed
needs, are refused in one line, and the columns read are logged; a client certificate the index would refuse
(expired, not yet valid, from another CA, with another key) is named at once instead of being retried as a
network outage for six minutes; a profile that cannot be read, parsed or used names its file and key; a
SQLite DSN is opened read-only (a typo is not created), and a PostgreSQL DSN's password is never printed.

Connectors and the CLI run as subprocesses, against a real server over loopback TLS where one is needed;
certificates are made here, databases are real SQLite files.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from connectors.client import Profile
from connectors.sql import SqlSource, shown
from search_service.pki import Issued, issue_client_cert, make_ca
from tests.support import ROOT, free_port
from tests.test_connectors import AGENCY, Site

NOW = dt.datetime.now(dt.UTC)

# A repository's table whose columns are not all named as the tracing format's (the UAT's H1 table).
TABLE = """CREATE TABLE tracings (id INTEGER PRIMARY KEY, seq INTEGER, type TEXT, agency TEXT,
    record_number TEXT, last_name TEXT, given_name TEXT, social TEXT, date_of_birth TEXT, year_indexed INTEGER,
    custodian TEXT, file_number TEXT)"""
ROW = f"INSERT INTO tracings VALUES (1, 7, 'FILE', '{AGENCY}', 'H1-0001', 'CLARKSON', 'BILL', '368-89-8685', "
ROW += f"'1980-05-05', 2015, '{AGENCY}', 'FF-1')"


def _database(folder: Path, schema: str = TABLE) -> Path:
    path = folder / "repository.db"
    connection = sqlite3.connect(path)
    connection.execute(schema)
    connection.execute(ROW)
    connection.commit()
    connection.close()
    return path


def _profile(folder: Path, ca: Issued, cert: Issued, *, key: Issued | None = None) -> Path:
    """A profile (with no server behind it: nothing here gets as far as connecting)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ca.pem").write_bytes(ca.cert_pem)
    (folder / "repo.pem").write_bytes(cert.cert_pem)
    (folder / "repo-key.pem").write_bytes((key or cert).key_pem)
    (folder / "password").write_text("unused")
    files = {"ca": "ca.pem", "cert": "repo.pem", "key": "repo-key.pem", "password_file": "password"}
    profile = folder / "profile.json"
    profile.write_text(json.dumps({"server": f"localhost:{free_port()}", **files, "account_code": "repo-op"}))
    return profile


def _run(*command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *command], check=False, cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def _connector(profile: Path, tmp_path: Path, connector: str, *args: str) -> subprocess.CompletedProcess[str]:
    state = str(tmp_path / "state")
    return _run("connectors", connector, "--profile", str(profile), "--state", state, *args, "--once")


def _filedrop(profile: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    (tmp_path / "inbox").mkdir(exist_ok=True)
    return _connector(profile, tmp_path, "filedrop", "--inbox", str(tmp_path / "inbox"))


def _cli(profile: Path) -> subprocess.CompletedProcess[str]:
    return _run("dcii.cli.main", "search", "--profile", str(profile), "--surname", "CLARKSON", "--given", "BILL")


def _refused(done: subprocess.CompletedProcess[str], *words: str) -> str:
    """The one line a refusal prints (the last; a connector's summary may come before it)."""
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr[-3000:]
    line = done.stderr.strip().splitlines()[-1]
    assert all(word in line for word in words), done.stderr[-3000:]
    return line


def _events(stderr: str, event: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == event]


# ---- H1: the SQL connector's columns ----

SQL = ["--table", "tracings", "--change-column", "seq"]


@pytest.mark.parametrize(
    ("maps", "words"),
    [
        (["surname=last_name", "ssn=socal"], ["--map ssn=socal", "has no column socal", "social"]),
        (["surname=last_name", "socail=social"], ["--map socail=social", "socail is not a tracing column"]),
        (["ssn=social"], ["no surname column", "--map surname="]),  # the forgotten map: given names alone
        (["surname=last_name", "agency=custodain"], ["--map agency=custodain", "has no column custodain"]),
    ],
)
def test_a_map_the_table_cannot_honour_refuses_to_start(tmp_path: Path, maps: list[str], words: list[str]) -> None:
    """A misspelt --map went in as every tracing without its SSN; a forgotten one as every person known by
    the given name alone; exit 0, no warning (UAT H1)."""
    ca = make_ca()
    profile = _profile(tmp_path / "profile", ca, issue_client_cert(ca, "DSS-REPO-01", AGENCY))
    dsn = str(_database(tmp_path))
    done = _connector(profile, tmp_path, "sql", "--dsn", dsn, *SQL, *[a for m in maps for a in ("--map", m)])
    assert _refused(done, *words).startswith("connector: ")
    assert not _events(done.stderr, "columns")


def test_a_table_without_agency_or_record_number_is_refused(tmp_path: Path) -> None:
    ca = make_ca()
    profile = _profile(tmp_path / "profile", ca, issue_client_cert(ca, "DSS-REPO-01", AGENCY))
    dsn = str(_database(tmp_path, TABLE.replace("record_number", "number")))
    done = _connector(profile, tmp_path, "sql", "--dsn", dsn, *SQL, "--map", "surname=last_name")
    _refused(done, "no record_number column", "--map record_number=")


def test_the_columns_read_are_logged_and_a_mapped_ssn_reaches_the_index(tmp_path: Path) -> None:
    site = Site(tmp_path)
    dsn = str(_database(tmp_path))
    with site.server():
        done = subprocess.run(
            site.command("sql", "--dsn", dsn, *SQL, "--map", "SURNAME=Last_Name", "--map", "ssn=SOCIAL", "--once"),
            check=False,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=240,
        )
    assert done.returncode == 0, done.stderr[-3000:]
    [columns] = _events(done.stderr, "columns")
    read = columns["read"]
    assert isinstance(read, dict) and isinstance(columns["absent"], list)
    assert read["surname"] == "last_name" and read["ssn"] == "social" and read["given_name"] == "given_name"
    assert "middle_name" in columns["absent"] and "ssn" not in columns["absent"]
    assert columns["source_version"] == "change column seq"
    subject = site.get("H1-0001").tracing.subject
    assert subject.name.surname == "CLARKSON" and subject.identifiers.ssn == "368898685"
    assert "8685" not in done.stderr and "CLARKSON" not in done.stderr  # column names only, never a value


def test_a_version_offset_raises_every_source_version_alike(tmp_path: Path) -> None:
    """After a corrected --map a table read again came back UNCHANGED: its versions were the same. Raised by
    an offset they are above what the index holds, in the same order (UAT H1)."""
    dsn = str(_database(tmp_path))
    connection = sqlite3.connect(dsn)
    connection.execute(ROW.replace("(1, 7,", "(2, 9,").replace("H1-0001", "H1-0002"))
    connection.execute("ALTER TABLE tracings ADD COLUMN deleted INTEGER")
    connection.execute("UPDATE tracings SET deleted = 1 WHERE id = 2")  # a DELETE's version is raised too
    connection.commit()
    connection.close()
    versions: dict[int, list[int]] = {}
    for offset in (0, 1000):
        source = SqlSource(dsn, "tracings", "seq", mapping={"surname": "last_name"}, version_offset=offset)
        try:
            requests = [record.request for record in source.read(None) if record.request is not None]
            versions[offset] = [r.upsert.source_version or r.delete.source_version for r in requests]
        finally:
            source.close()
    assert versions == {0: [7, 9], 1000: [1007, 1009]}  # the upsert's and the delete's


# ---- M6: the SQLite DSN, the PostgreSQL DSN's password ----


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--table", "tracings", "--change-column", "seq"], ["--dsn", "typo.db", "no such SQLite file"]),
        (["--table", "tracing", "--change-column", "seq"], ["--table tracing", "no such table: tracing"]),
        (["--table", "tracings", "--change-column", "sequence"], ["--change-column sequence", "has no such column"]),
        (["--table", "tracings", "--change-column", "seq", "--key-column", "pk"], ["--key-column pk", "no such"]),
    ],
)
def test_a_dsn_table_or_column_that_is_not_there_is_one_line(tmp_path: Path, args: list[str], words: list[str]) -> None:
    """A mistyped DSN created an empty database file, then failed as INTERNAL OperationalError (UAT M6)."""
    ca = make_ca()
    profile = _profile(tmp_path / "profile", ca, issue_client_cert(ca, "DSS-REPO-01", AGENCY))
    real = _database(tmp_path)
    dsn = str(tmp_path / "typo.db") if "typo.db" in words else f"sqlite:///{real}"
    done = _connector(profile, tmp_path, "sql", "--dsn", dsn, *args, "--map", "surname=last_name")
    _refused(done, *words)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["profile", "repository.db", "state"]  # nothing created


def test_a_postgresql_dsns_password_is_never_printed(tmp_path: Path) -> None:
    ca = make_ca()
    profile = _profile(tmp_path / "profile", ca, issue_client_cert(ca, "DSS-REPO-01", AGENCY))
    port = free_port()  # nothing listens: the connection is refused
    for dsn in (f"postgresql://reader:Hunter2pw@127.0.0.1:{port}/repo", "postgresql://reader:Hunter2%zz@db/repo"):
        done = _connector(profile, tmp_path, "sql", "--dsn", dsn, *SQL)
        _refused(done, "--dsn postgresql://reader:***@", "cannot connect")
        assert "Hunter2" not in done.stderr, done.stderr
    assert shown("postgresql://u@db/repo?sslmode=require&password=Hunter2") == (
        "postgresql://u@db/repo?sslmode=require&password=***"
    )


# ---- M6: the profile itself ----


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, ["No such file or directory"]),
        ("directory", ["Is a directory"]),
        ('{"server": "localhost:50072", "ca": ', ["not JSON", "line 1 column 37"]),
        ("[]", ["not a JSON object"]),
        ({"cert": None}, ["profile: cert in", "missing"]),
        ({"server": 50072}, ["profile: server in", "not a non-empty string"]),
        ({"password_file": 7}, ["profile: password_file in", "not a string"]),
    ],
)
def test_a_profile_that_cannot_be_used_is_one_line_naming_file_and_key(
    tmp_path: Path, content: object, words: list[str]
) -> None:
    """A garbled or missing profile ended the connector in a traceback; a missing key as KeyError: 'cert'
    (UAT M6). The connector and the CLI say the same."""
    ca = make_ca()
    good = json.loads(_profile(tmp_path / "profile", ca, issue_client_cert(ca, "DSS-REPO-01", AGENCY)).read_text())
    path = tmp_path / "profile" / "broken.json"
    if content == "directory":
        path.mkdir()
    elif isinstance(content, str):
        path.write_text(content)
    elif isinstance(content, dict):
        changed = {**good, **content}
        path.write_text(json.dumps({k: v for k, v in changed.items() if v is not None}))
    for done in (_filedrop(path, tmp_path), _cli(path)):
        _refused(done, str(path), *words)


# ---- M4: the client certificate ----


def _yesterday() -> dt.datetime:
    return NOW - dt.timedelta(days=1)


@pytest.mark.parametrize(
    ("problem", "words"),
    [
        ("expired", ["certificate", "repo.pem expired on", f"{_yesterday():%Y-%m-%d}", "ask for a new one"]),
        ("not yet valid", ["repo.pem is not valid until", "clock"]),
        ("another CA", ["repo.pem is not signed by the profile's CA", "ca.pem"]),
        ("another key", ["repo-key.pem: not the private key of", "repo.pem"]),
        ("not a certificate", ["profile: cert", "repo.pem: not a PEM certificate"]),
    ],
)
def test_a_certificate_the_index_would_refuse_is_named_before_connecting(
    tmp_path: Path, problem: str, words: list[str]
) -> None:
    ca = make_ca()
    cert = {
        "expired": lambda: issue_client_cert(ca, "DSS-REPO-01", AGENCY, not_after=_yesterday()),
        "not yet valid": lambda: issue_client_cert(ca, "DSS-REPO-01", AGENCY, not_before=NOW + dt.timedelta(days=2)),
        "another CA": lambda: issue_client_cert(make_ca("Another CA"), "DSS-REPO-01", AGENCY),
        "another key": lambda: issue_client_cert(ca, "DSS-REPO-01", AGENCY),
        "not a certificate": lambda: Issued(b"-----BEGIN CERTIFICATE-----\nnot one\n", b""),
    }[problem]()
    other = issue_client_cert(ca, "DSS-REPO-01", AGENCY) if problem in ("another key", "not a certificate") else None
    profile = _profile(tmp_path / "profile", ca, cert, key=other)
    for done in (_filedrop(profile, tmp_path), _cli(profile)):
        _refused(done, *words)


def test_an_expired_certificate_ends_the_connector_at_once_not_after_six_minutes(tmp_path: Path) -> None:
    """The handshake failure came back as UNAVAILABLE "Socket closed", retried for 5m54s, the certificate
    never named (UAT M4). Against the real index, with a record waiting to be sent."""
    site = Site(tmp_path)
    expired = issue_client_cert(site.index.ca, "DSS-REPO-01", AGENCY, not_after=_yesterday())
    (site.profile.parent / "repo.pem").write_bytes(expired.cert_pem)
    (site.profile.parent / "repo-key.pem").write_bytes(expired.key_pem)
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "a.csv").write_text("action,agency,record_number,source_version\nDELETE,DSS,X-1,1\n")
    with site.server():
        done = subprocess.run(
            site.command("filedrop", "--inbox", str(tmp_path / "inbox"), "--once"),
            check=False,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    _refused(done, f"{site.profile.parent / 'repo.pem'} expired on", "ask for a new one")
    assert not _events(done.stderr, "retry")
    assert (tmp_path / "inbox" / "a.csv").exists()  # not sent, not moved


def test_a_certificate_lapsing_within_30_days_is_a_warning_and_the_run_goes_on(tmp_path: Path) -> None:
    ca = make_ca()
    soon = issue_client_cert(ca, "DSS-REPO-01", AGENCY, not_after=NOW + dt.timedelta(days=10, hours=1))
    profile = _profile(tmp_path / "profile", ca, soon)
    done = _filedrop(profile, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    [warning] = _events(done.stderr, "warning")
    assert (
        warning["code"] == "CERTIFICATE"
        and "expires on" in str(warning["details"])
        and "in 10 days" in str(warning["details"])
    )
    assert _events(done.stderr, "summary")
    cli = _cli(profile)  # goes on to ask why (no purpose in this profile): past the certificate
    assert "warning: certificate" in cli.stderr and "in 10 days" in cli.stderr and "why do you ask" in cli.stderr
    assert not any(line.startswith("{") for line in cli.stderr.splitlines())


def test_a_certificate_that_lapsed_while_running_is_named_at_the_next_connection(tmp_path: Path) -> None:
    """A polling connector outlives its certificate: each new channel (after an outage) checks it again."""
    ca = make_ca()
    profile_path = _profile(tmp_path / "profile", ca, issue_client_cert(ca, "DSS-REPO-01", AGENCY))
    profile = Profile.load(profile_path)
    profile.channel().close()
    expired = issue_client_cert(ca, "DSS-REPO-01", AGENCY, not_after=_yesterday())
    (tmp_path / "profile" / "repo.pem").write_bytes(expired.cert_pem)
    (tmp_path / "profile" / "repo-key.pem").write_bytes(expired.key_pem)
    with pytest.raises(SystemExit, match=r"repo\.pem expired on"):
        profile.channel()
