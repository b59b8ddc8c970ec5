"""What an administrator's UAT left open in `dcii certs` and `dcii accredit`, and `dcii privacy`'s --data: a
certificate accredited without `--pki` went unchecked in silence, and `certs issue` named no CA; `certs issue`
took any agency, checked nothing against the registry and had no `--days`; a suspend of a suspended activity
said "is now SUSPENDED" and recorded a second event; `dcii privacy --data D requests list` was refused. Each
command runs as a real subprocess on real files (tests.test_cli_admin_checks.dcii)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from cryptography import x509

from search_service import pki
from search_service.privacy_requests import PrivacyRequests, RequestKind
from search_service.registry import Registry
from tests.test_cli_admin_checks import _one_line, dcii

QUERYING = ("--roles", "QUERIER", "--purposes", "SECURITY_CLEARANCE")


def _expiry(pem: Path) -> dt.datetime:
    return x509.load_pem_x509_certificate(pem.read_bytes()).not_valid_after_utc


def test_a_certificate_accredited_without_pki_is_said_unchecked_and_issue_names_its_ca(tmp_path: Path) -> None:
    """Without --pki, `activity add --cert` and `add-cert` skipped the issuer check and said nothing: a
    certificate of another CA (the demo's var/pki) was accredited and its terminal only ever "lost the
    connection". And `certs issue` without --dir issued from ./var/pki without a word of which CA."""
    assert dcii("certs", "init", "--dir", "var/pki", cwd=tmp_path).returncode == 0
    issued = dcii("certs", "issue", "CCF-1", "--agency", "ARMY-CCF", cwd=tmp_path)
    assert issued.returncode == 0 and issued.stderr == ""
    assert "issued to CCF-1 of ARMY-CCF by the CA in var/pki (no --dir given: the default), valid until " in (
        issued.stdout
    )
    second = dcii("certs", "issue", "CCF-1", "--agency", "ARMY-CCF", "--pki", "var/pki", "--out", "t2", cwd=tmp_path)
    assert second.returncode == 0 and "by the CA in var/pki, valid until " in second.stdout, second.stderr

    add = ("accredit", "--data", "d", "activity", "add", "CCF-1", "--agency", "ARMY-CCF", *QUERYING)
    made = dcii(*add, "--cert", "var/pki/CCF-1.pem", "--new-registry", cwd=tmp_path)
    assert made.returncode == 0 and "accredited CCF-1" in made.stdout
    assert _one_line(made) == (
        "dcii: warning: no --pki given: var/pki/CCF-1.pem not checked against the deployment's CA; one another CA"
        " issued is accredited but can never connect (give --pki DIR, the CA's directory, as `dcii serve --pki`)"
    )
    added = dcii("accredit", "--data", "d", "activity", "add-cert", "CCF-1", "t2/CCF-1.pem", cwd=tmp_path)
    assert added.returncode == 0 and "no --pki given: t2/CCF-1.pem not checked" in _one_line(added)
    checked = dcii("certs", "issue", "CCF-2", "--agency", "ARMY-CCF", cwd=tmp_path)
    assert checked.returncode == 0
    with_pki = dcii(*add[:5], "CCF-2", *add[6:], "--cert", "var/pki/CCF-2.pem", "--pki", "var/pki", cwd=tmp_path)
    assert with_pki.returncode == 0 and with_pki.stderr == ""  # checked: nothing to say


def test_certs_issue_checks_the_agency_and_the_registry_and_takes_days(tmp_path: Path) -> None:
    """`certs issue` made a certificate out to any --agency (a typo is fixed in the certificate for good), did
    not look at the registry, and was always valid 825 days."""
    ca_dir, data = tmp_path / "pki", tmp_path / "data"
    pki.init_pki(ca_dir, activities=[])
    issue = ("certs", "issue", "ADJ-1", "--dir", str(ca_dir))
    typo = dcii(*issue, "--agency", "DONCAFF")
    assert typo.returncode == 1 and _one_line(typo).startswith("dcii: --agency DONCAFF: not an agency the index knows")
    assert not (ca_dir / "ADJ-1.pem").exists()
    for days in ("0", "826"):
        refused = dcii(*issue, "--agency", "DONCAF", "--days", days)
        assert _one_line(refused) == f"dcii: --days {days}: a client certificate is valid 1 to 825 days"
    short = dcii(*issue, "--agency", "doncaf", "--days", "30")
    assert short.returncode == 0 and "issued to ADJ-1 of DONCAF" in short.stdout and "(30 days)" in short.stdout, (
        short.stderr
    )
    left = _expiry(ca_dir / "ADJ-1.pem") - dt.datetime.now(dt.UTC)
    assert dt.timedelta(days=29) < left <= dt.timedelta(days=30)
    assert pki.subject_of((ca_dir / "ADJ-1.pem").read_bytes()) == ("ADJ-1", "DONCAF")

    old_ca = tmp_path / "old"  # a CA with 100 days left: a certificate may not outlive it
    old_ca.mkdir()
    pki.write_pem_pair(pki.make_ca(valid_days=100), old_ca, "ca")
    past = dcii("certs", "issue", "ADJ-2", "--agency", "DSS", "--dir", str(old_ca), "--days", "200")
    assert re.fullmatch(r"dcii: --days 200: the CA in \S+ expires on \S+, and a certificate cannot outlive it: at"
                        r" most --days 99 \(.*\)", _one_line(past))  # fmt: skip

    accredited = dcii("accredit", "--data", str(data), "activity", "add", "ADJ-1", "--agency", "DONCAF", *QUERYING,
                      "--pki", str(ca_dir), "--cert", str(ca_dir / "ADJ-1.pem"), "--new-registry")  # fmt: skip
    assert accredited.returncode == 0, accredited.stderr
    elsewhere = ("--data", str(data), "--out", str(ca_dir / "t2"))
    unknown = dcii("certs", "issue", "ADJ-9", "--agency", "DONCAF", "--dir", str(ca_dir), *elsewhere)
    assert _one_line(unknown).startswith(f"dcii: ADJ-9: no such activity in {data / 'registry.db'}")
    other = dcii(*issue, "--agency", "NCIS", *elsewhere)
    assert _one_line(other) == "dcii: --agency NCIS: ADJ-1 is accredited to agency DONCAF"
    assert not (ca_dir / "t2").exists()
    # A component without a repository: accredited with a warning, then issued its certificate with --data.
    navy = ("accredit", "--data", str(data), "activity", "add", "ADJ-N", "--agency", "NAVY", *QUERYING)
    assert dcii(*navy).returncode == 0
    assert dcii("certs", "issue", "ADJ-N", "--agency", "NAVY", "--dir", str(ca_dir)).returncode == 1
    done = dcii("certs", "issue", "ADJ-N", "--agency", "NAVY", "--dir", str(ca_dir), "--data", str(data))
    assert done.returncode == 0 and done.stderr == "" and (ca_dir / "ADJ-N.pem").is_file()


def _status_events(data: Path) -> list[str]:
    """The ACTIVITY_STATUS_SET events `dcii audit events` lists: each one's status."""
    listed = dcii("audit", "events", "--kind", "ACTIVITY_STATUS_SET", "--data", str(data))
    assert listed.returncode == 0, listed.stderr
    count = int(re.search(r"^(\d+) events?$", listed.stdout, flags=re.MULTILINE).group(1))  # type: ignore[union-attr]
    statuses = re.findall(r"status=(\w+)", listed.stdout)
    assert len(statuses) == count, listed.stdout
    return statuses


def test_a_status_an_activity_has_already_changes_and_records_nothing(tmp_path: Path) -> None:
    """A second `activity suspend` said "is now SUSPENDED" and put a second ACTIVITY_STATUS_SET in the trail
    for one change; so did a reinstate of an active activity. A revoke of a REVOKED activity given a
    certificate since still revokes that certificate."""
    ca_dir, data = tmp_path / "pki", tmp_path / "data"
    pki.init_pki(ca_dir, activities=[])
    first, _key = pki.issue_client_into(ca_dir, "ADJ-S", "DSS")
    accredit = ("accredit", "--data", str(data), "--pki", str(ca_dir), "activity")
    assert dcii(*accredit, "add", "ADJ-S", "--agency", "DSS", *QUERYING, "--cert", str(first),
                "--new-registry").returncode == 0  # fmt: skip
    for action, said in (
        ("reinstate", "ADJ-S is already ACTIVE: nothing changed"),
        ("suspend", "ADJ-S is now SUSPENDED (was ACTIVE)"),
        ("suspend", "ADJ-S is already SUSPENDED: nothing changed"),
        ("revoke", "ADJ-S is now REVOKED (was SUSPENDED)"),
        ("revoke", "ADJ-S is already REVOKED: nothing changed"),
    ):
        done = dcii(*accredit, action, "ADJ-S")
        assert done.returncode == 0 and done.stdout.strip() == said, (action, done.stderr)
    assert _status_events(data) == ["SUSPENDED", "REVOKED"]
    second, _key = pki.issue_client_into(ca_dir, "ADJ-S", "DSS", force=True)
    assert dcii(*accredit, "add-cert", "ADJ-S", str(second)).returncode == 0
    again = dcii(*accredit, "revoke", "ADJ-S")
    assert again.returncode == 0 and again.stdout.strip() == "ADJ-S is now REVOKED (was REVOKED)"
    assert _status_events(data) == ["SUSPENDED", "REVOKED", "REVOKED"]
    registry = Registry(data / "registry.db")
    try:
        assert registry.activity("ADJ-S").fingerprints == ()  # the certificate added since is revoked too
    finally:
        registry.close()


def test_privacy_takes_data_and_the_time_zone_before_or_after_the_subcommand(tmp_path: Path) -> None:
    """`dcii privacy --data D requests list` was "invalid choice: 'data'": --data went after the subcommand
    only, where `dcii accredit` and `dcii audit` take it in either place."""
    data, other = tmp_path / "data", tmp_path / "other"
    register = PrivacyRequests(data / "privacy.db")
    register.open_request("PA-26-7", RequestKind.AMENDMENT, dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
    register.close()
    before = dcii("privacy", "--data", str(data), "requests", "list")
    after = dcii("privacy", "requests", "list", "--data", str(data))
    assert before.returncode == 0 and "PA-26-7" in before.stdout, before.stderr
    assert after.stdout == before.stdout
    overridden = dcii("privacy", "--data", str(other), "requests", "list", "--data", str(data))  # after wins
    assert overridden.returncode == 0 and "PA-26-7" in overridden.stdout, overridden.stderr
    zoned = dcii("privacy", "--privacy-time-zone", "Asia/Tokyo", "--data", str(data), "notices", "list")
    assert zoned.returncode == 0, zoned.stderr
    tokyo = dcii("privacy", "--privacy-time-zone", "Asia/Tokyo", "requests", "list", "--data", str(data))
    assert "days in Asia/Tokyo" in tokyo.stdout, tokyo.stderr
    acknowledged = dcii("privacy", "--data", str(data), "requests", "acknowledge", "PA-26-7")
    assert acknowledged.returncode == 0 and "request PA-26-7 acknowledged" in acknowledged.stdout
    missing = dcii("privacy", "--data", str(other), "notices", "list")
    assert _one_line(missing).startswith(f"dcii: no privacy register at {other / 'privacy.db'}")
