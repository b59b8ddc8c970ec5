"""`dcii certs` and `dcii accredit` at the console, as an administrator's UAT left them (its low findings): an
unlock said nothing of the lock; a dormant account read as one suspended for cause; `--data` went before the
subcommand for `accredit` and after it for `audit`; a second terminal's certificate overwrote the first's;
`activity certs` told no terminal from another; a certificate not valid yet was accredited in silence. Each
command runs as a real subprocess on real files; the lockout is made by a real server over TLS."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import grpc
import pytest

from search_service import pki
from search_service.account_policy import INACTIVITY_LIMIT
from search_service.accreditation import Purpose, Role, Status
from search_service.accreditation_events import OPERATOR_STATUS_SET
from search_service.registry import Registry
from tests.support import Index
from tests.test_account_sweep import DAY, _last_used
from tests.test_cli_admin_checks import _one_line, dcii
from tests.test_privacy_peers import _events

PASSWORD = "correct horse battery staple"
QUERYING = ("--roles", "QUERIER", "--purposes", "SECURITY_CLEARANCE")


def _row(output: str, first_cell: str) -> list[str]:
    """The cells of the table row that begins with `first_cell` (the table is 200 columns wide: no folding)."""
    rows = [line for line in output.splitlines() if line.startswith(f"│ {first_cell} ")]
    assert len(rows) == 1, output
    return [cell.strip() for cell in rows[0].strip("│").split("│")]


def test_reinstate_says_which_lock_it_cleared_and_the_list_shows_the_lock(index: Index) -> None:
    """Five failed logins lock an account; `operator reinstate` unlocked it saying only "is now ACTIVE", as it
    said (and recorded) for an account already active. The list said ACTIVE beside an old lock time too."""
    cert, account, password = index.accredit("CCF-1", "ARMY-CCF", [Role.QUERIER], [Purpose.SECURITY_CLEARANCE])
    terminal = index.connect(cert)
    for _ in range(5):
        with pytest.raises(grpc.RpcError):
            terminal.login(account, "not-the-password-at-all")
    registry = index.registry
    try:
        until = registry.list_operators(account)[0].locked_until
    finally:
        registry.close()
    assert until is not None
    shown = f"{until.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S}"
    data = str(index.data_dir)

    listed = dcii("accredit", "--data", data, "operator", "list")
    assert listed.returncode == 0, listed.stderr
    assert _row(listed.stdout, account)[2:] == ["ACTIVE (locked)", "never", shown]
    unlocked = dcii("accredit", "--data", data, "operator", "reinstate", account)
    assert unlocked.returncode == 0, unlocked.stderr
    assert unlocked.stdout.strip() == f"{account} is now ACTIVE; its lock until {shown} UTC is cleared"
    terminal.login(account, password)  # the lock is gone
    again = dcii("accredit", "--data", data, "operator", "reinstate", account)
    assert again.returncode == 0 and again.stdout.strip() == f"{account} is already ACTIVE: nothing changed"
    assert _events(index, OPERATOR_STATUS_SET) == [{"account": account, "status": "ACTIVE"}]  # the change only
    assert _row(dcii("accredit", "--data", data, "operator", "list").stdout, account)[2] == "ACTIVE"


def test_an_account_disabled_as_dormant_is_told_from_one_an_administrator_suspended(tmp_path: Path) -> None:
    """The sweep leaves an account unused for three years SUSPENDED, as an administrator's suspension for cause
    does: `operator list` showed both alike, and a reinstate could undo a suspension for cause unnoticed."""
    data = tmp_path / "data"
    env = {"DCII_PASSWORD": PASSWORD}
    assert dcii("accredit", "--data", str(data), "activity", "add", "CCF-2", "--agency", "ARMY-CCF", *QUERYING,
                "--new-registry").returncode == 0  # fmt: skip
    for account in ("dormant-op", "cause-op", "fresh-op"):
        added = dcii("accredit", "--data", str(data), "operator", "add", account, "--activity", "CCF-2", env=env)
        assert added.returncode == 0, added.stderr
    assert dcii("accredit", "--data", str(data), "operator", "suspend", "cause-op").returncode == 0
    _last_used(data / "registry.db", "dormant-op", dt.datetime.now(dt.UTC) - INACTIVITY_LIMIT - DAY)

    listed = dcii("accredit", "--data", str(data), "operator", "list")
    assert "dormant-op disabled: unused for three years" in listed.stdout
    statuses = {account: _row(listed.stdout, account)[2] for account in ("dormant-op", "cause-op", "fresh-op")}
    assert statuses == {"dormant-op": "SUSPENDED (dormant)", "cause-op": "SUSPENDED", "fresh-op": "ACTIVE"}
    assert "(dormant): suspended by the registry, unused for three years" in listed.stdout
    back = dcii("accredit", "--data", str(data), "operator", "reinstate", "dormant-op")
    assert back.stdout.strip() == "dormant-op is now ACTIVE (was SUSPENDED, dormant)"
    cause = dcii("accredit", "--data", str(data), "operator", "reinstate", "cause-op")
    assert cause.stdout.strip() == "cause-op is now ACTIVE (was SUSPENDED)"
    # Suspended by an administrator after the sweep disabled it: the later event says why it is suspended now.
    _last_used(data / "registry.db", "fresh-op", dt.datetime.now(dt.UTC) - INACTIVITY_LIMIT - DAY)
    assert "fresh-op disabled" in dcii("accredit", "--data", str(data), "operator", "list").stdout
    for action in ("reinstate", "suspend"):
        assert dcii("accredit", "--data", str(data), "operator", action, "fresh-op").returncode == 0
    assert _row(dcii("accredit", "--data", str(data), "operator", "list").stdout, "fresh-op")[2] == "SUSPENDED"


def test_data_and_pki_are_taken_before_and_after_the_subcommand(tmp_path: Path) -> None:
    """`dcii accredit activity list --data D` was "unrecognized arguments", `dcii audit --data D events` an
    "invalid choice": each took --data in one place only, not the same one."""
    data, other = tmp_path / "data", tmp_path / "other"
    ca_dir = tmp_path / "pki"
    pki.init_pki(ca_dir, activities=[])
    cert, _key = pki.issue_client_into(ca_dir, "CCF-3", "ARMY-CCF")
    made = dcii("accredit", "activity", "add", "CCF-3", "--agency", "ARMY-CCF", *QUERYING, "--new-registry",
                "--data", str(data), "--pki", str(ca_dir), "--cert", str(cert))  # fmt: skip
    assert made.returncode == 0, made.stderr
    dcii("accredit", "--data", str(other), "activity", "add", "OTHER-1", "--agency", "DSS", *QUERYING, "--new-registry")
    listings: tuple[tuple[str, ...], ...] = (
        ("accredit", "--data", str(data), "activity", "list"),
        ("accredit", "activity", "list", "--data", str(data)),
        ("accredit", "--data", str(other), "activity", "list", "--data", str(data)),  # the later one
    )
    for args in listings:
        done = dcii(*args)
        assert done.returncode == 0 and "CCF-3" in done.stdout and "OTHER-1" not in done.stdout, (args, done.stderr)
    readings: tuple[tuple[str, ...], ...] = (
        ("audit", "--data", str(data), "events", "--kind", "ACTIVITY_ACCREDITED"),
        ("audit", "events", "--kind", "ACTIVITY_ACCREDITED", "--data", str(data)),
        ("audit", "--data", str(other), "events", "--kind", "ACTIVITY_ACCREDITED", "--data", str(data)),
    )
    for args in readings:
        done = dcii(*args)
        assert done.returncode == 0 and "activity=CCF-3" in done.stdout and "OTHER-1" not in done.stdout, args
    for verify in (("audit", "--data", str(data), "verify"), ("audit", "verify", "--data", str(data))):
        assert dcii(*verify).returncode == 0, verify
    foreign_dir = tmp_path / "foreign"
    pki.init_pki(foreign_dir, activities=[])
    foreign, _key = pki.issue_client_into(foreign_dir, "CCF-3", "ARMY-CCF")
    refused = dcii("accredit", "activity", "add-cert", "CCF-3", str(foreign), "--pki", str(ca_dir), "--data", str(data))
    assert refused.returncode == 1 and "was not issued by the CA" in _one_line(refused)


def test_a_second_terminal_gets_its_own_pair_without_replacing_the_first(tmp_path: Path) -> None:
    """`certs issue` for a second terminal of an activity needed --force, which overwrote the first terminal's
    pair in the CA's directory (the PEM `revoke-cert` takes), and its refusal said "(force=True)"."""
    ca_dir, data = tmp_path / "pki", tmp_path / "data"
    assert dcii("certs", "init", "--dir", str(ca_dir)).returncode == 0
    assert dcii("certs", "issue", "CCF-4", "--agency", "ARMY-CCF", "--dir", str(ca_dir)).returncode == 0
    first = (ca_dir / "CCF-4.pem").read_bytes()
    again = dcii("certs", "issue", "CCF-4", "--agency", "ARMY-CCF", "--dir", str(ca_dir))
    assert again.returncode == 1 and "force=True" not in again.stderr
    assert _one_line(again) == (
        f"dcii: {ca_dir / 'CCF-4.pem'} already exists: --out DIR writes another terminal's pair elsewhere;"
        " --force replaces it (the key there is lost)"
    )
    terminal_2 = tmp_path / "terminals" / "2"
    second = dcii("certs", "issue", "CCF-4", "--agency", "ARMY-CCF", "--dir", str(ca_dir), "--out", str(terminal_2))
    assert second.returncode == 0, second.stderr
    assert f"client certificate for CCF-4: {terminal_2 / 'CCF-4.pem'}" in second.stdout
    assert (ca_dir / "CCF-4.pem").read_bytes() == first  # the first terminal's pair untouched
    issued = pki.load_issued(terminal_2, "CCF-4")  # the key belongs to the certificate
    assert pki.subject_of(issued.cert_pem) == ("CCF-4", "ARMY-CCF")
    assert issued.fingerprint != pki.fingerprint(first) and issued.fingerprint in second.stdout
    assert (terminal_2 / "CCF-4-key.pem").stat().st_mode & 0o077 == 0
    twice = dcii("certs", "issue", "CCF-4", "--agency", "ARMY-CCF", "--dir", str(ca_dir), "--out", str(terminal_2))
    assert twice.returncode == 1 and "already exists" in _one_line(twice)
    assert pki.load_issued(terminal_2, "CCF-4").fingerprint == issued.fingerprint
    for reserved in ("ca", "server", "x-key"):
        done = dcii("certs", "issue", reserved, "--agency", "DSS", "--dir", str(ca_dir), "--out", str(terminal_2))
        assert done.returncode == 1 and "reserved for the PKI's own files" in _one_line(done), reserved
    # Both accredited to the activity, the second silently: it names the activity.
    add = ("activity", "add", "CCF-4", "--agency", "ARMY-CCF", *QUERYING, "--cert", str(ca_dir / "CCF-4.pem"))
    assert dcii("accredit", "--data", str(data), "--pki", str(ca_dir), *add, "--new-registry").returncode == 0
    added = dcii("accredit", "--data", str(data), "--pki", str(ca_dir), "activity", "add-cert", "CCF-4",
                 str(terminal_2 / "CCF-4.pem"))  # fmt: skip
    assert added.returncode == 0 and added.stderr == "", added.stderr
    registry = Registry(data / "registry.db")
    try:
        assert registry.activity("CCF-4").fingerprints == (pki.fingerprint(first), issued.fingerprint)
    finally:
        registry.close()


def _blocks(output: str) -> dict[str, list[str]]:
    """`activity certs`' blocks: each fingerprint (a line of its own) and the lines under it."""
    blocks: dict[str, list[str]] = {}
    current: list[str] = []
    for line in output.splitlines():
        if re.fullmatch(r"[0-9a-f]{64}", line):
            current = blocks.setdefault(line, [])
        elif line.startswith("    "):
            current.append(line.strip())
    return blocks


def test_activity_certs_shows_each_certificates_holder_and_expiry_from_the_ca_directory(tmp_path: Path) -> None:
    """`activity certs` showed a fingerprint, folded in two at 80 columns, and when it was added: nothing told
    the stolen laptop's row from the others. The registry keeps no certificate, only its fingerprint: the
    certificates `dcii certs issue` wrote under the CA's directory say the rest."""
    ca_dir, data = tmp_path / "pki", tmp_path / "data"
    pki.init_pki(ca_dir, activities=[])
    first, _key = pki.issue_client_into(ca_dir, "CCF-5", "ARMY-CCF")
    laptop_pem = ca_dir / "laptop" / "CCF-5.pem"  # a second terminal's pair (`certs issue --out`)
    issued = dcii(
        "certs", "issue", "CCF-5", "--agency", "ARMY-CCF", "--dir", str(ca_dir), "--out", str(ca_dir / "laptop")
    )
    assert issued.returncode == 0, issued.stderr
    unknown = pki.issue_client_cert(pki.load_issued(ca_dir, "ca"), "CCF-5", "ARMY-CCF")
    (tmp_path / "elsewhere").mkdir()
    unknown_pem, _key = pki.write_pem_pair(unknown, tmp_path / "elsewhere", "CCF-5")  # kept outside the CA's directory
    accredit = ("accredit", "--data", str(data))
    add = ("activity", "add", "CCF-5", "--agency", "ARMY-CCF", *QUERYING, "--cert", str(first), "--new-registry")
    assert dcii(*accredit, *add).returncode == 0
    for pem in (laptop_pem, unknown_pem):
        assert dcii(*accredit, "activity", "add-cert", "CCF-5", str(pem)).returncode == 0
    assert dcii(*accredit, "activity", "revoke-cert", "CCF-5", str(unknown_pem)).returncode == 0

    shown = dcii(*accredit, "activity", "certs", "CCF-5", "--pki", str(ca_dir), env={"COLUMNS": "80"})
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[0] == "Certificates of CCF-5: 3 (2 in use)"
    blocks = _blocks(shown.stdout)
    assert list(blocks) == [pki.fingerprint(p.read_bytes()) for p in (first, laptop_pem, unknown_pem)]
    for pem in (first, laptop_pem):
        expires = pki.load_issued(pem.parent, "CCF-5").certificate.not_valid_after_utc
        added, holder = blocks[pki.fingerprint(pem.read_bytes())]
        assert added.startswith("added ") and added.endswith(", in use")
        assert holder == f"CN CCF-5, O ARMY-CCF, not after {expires:%Y-%m-%d %H:%M} UTC: {pem}"
    added, missing = blocks[unknown.fingerprint]
    assert ", REVOKED " in added and missing == f"not among the certificates under {ca_dir}"

    bare = dcii(*accredit, "activity", "certs", "CCF-5")
    assert list(_blocks(bare.stdout)) == list(blocks)
    assert "The registry keeps each certificate's fingerprint, not the certificate: --pki DIR" in bare.stdout
    before = dcii("accredit", "--data", str(data), "--pki", str(ca_dir), "activity", "certs", "CCF-5")
    assert _blocks(before.stdout) == blocks  # --pki before the subcommand, as `activity add` takes it


def test_a_certificate_not_valid_yet_is_accredited_with_a_warning(tmp_path: Path) -> None:
    """Accredited in silence, its terminal could not connect until its not-before (a clock set wrong where it
    was issued): the handshake refuses it, which the terminal hears as a lost connection."""
    ca_dir, data = tmp_path / "pki", tmp_path / "data"
    pki.init_pki(ca_dir, activities=[])
    starts = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=5)
    ca = pki.load_issued(ca_dir, "ca")
    early, _key = pki.write_pem_pair(pki.issue_client_cert(ca, "CCF-6", "ARMY-CCF", not_before=starts), ca_dir, "a")
    later, _key = pki.write_pem_pair(pki.issue_client_cert(ca, "CCF-6", "ARMY-CCF", not_before=starts), ca_dir, "b")
    accredit = ("accredit", "--data", str(data), "--pki", str(ca_dir))
    warning = "is not valid before {:%Y-%m-%d %H:%M} UTC: accredited, but its terminal cannot connect until then"
    made = dcii(*accredit, "activity", "add", "CCF-6", "--agency", "ARMY-CCF", *QUERYING, "--cert", str(early),
                "--new-registry")  # fmt: skip
    assert made.returncode == 0 and "accredited CCF-6" in made.stdout
    assert _one_line(made) == f"dcii: warning: the certificate {early} {warning.format(starts)}"
    added = dcii(*accredit, "activity", "add-cert", "CCF-6", str(later))
    assert added.returncode == 0 and "certificate added to CCF-6" in added.stdout
    assert _one_line(added) == f"dcii: warning: the certificate {later} {warning.format(starts)}"
    registry = Registry(data / "registry.db")
    try:
        activity = registry.activity("CCF-6")
        assert activity.status is Status.ACTIVE
        assert activity.fingerprints == tuple(pki.fingerprint(p.read_bytes()) for p in (early, later))
    finally:
        registry.close()


def test_the_readme_first_activity_path_works_on_a_new_machine(tmp_path: Path) -> None:
    """The README's tour on a machine where no server ran yet: the CA, a certificate, then the first
    activity with --new-registry (in the default ./var/data), and its operator."""
    assert dcii("certs", "init", "--dir", "var/pki", cwd=tmp_path).returncode == 0
    assert dcii("certs", "issue", "ADMIN-1", "--agency", "DSS", cwd=tmp_path).returncode == 0
    add = ("activity", "add", "ADMIN-1", "--agency", "DSS", "--roles", "ADMINISTRATOR", "--cert", "var/pki/ADMIN-1.pem")
    refused = dcii("accredit", *add, cwd=tmp_path)
    assert refused.returncode == 1 and "no registry at var/data/registry.db" in _one_line(refused)
    made = dcii("accredit", "--pki", "var/pki", *add, "--new-registry", cwd=tmp_path)
    assert made.returncode == 0 and "accredited ADMIN-1" in made.stdout, made.stderr
    env = {"DCII_PASSWORD": PASSWORD}
    operator = dcii("accredit", "operator", "add", "admin", "--activity", "ADMIN-1", cwd=tmp_path, env=env)
    assert operator.returncode == 0, operator.stderr
    registry = Registry(tmp_path / "var" / "data" / "registry.db")
    try:
        assert [o.account_code for o in registry.list_operators()] == ["admin"]
    finally:
        registry.close()
