"""`dcii accredit activity set|revoke-cert|certs` on a running server: an activity's roles and purposes
changed, and one certificate revoked, take effect at the server's next call, each recorded in the audit
trail; what could never work is refused in one line, nothing changed and nothing recorded. The CLI runs as a
real subprocess on the server's data directory; the calls go over real TLS."""

from __future__ import annotations

import subprocess
from pathlib import Path

import grpc
import pytest

from dcii.v1 import search_pb2
from search_service import pki
from search_service.accreditation import Purpose, Role
from search_service.accreditation_events import ACTIVITY_ACCESS_SET, CERTIFICATE_REVOKED, OPERATOR_PASSWORD_SET
from tests import factories as f
from tests.support import Client, Index
from tests.test_cli_admin_checks import _accredit, _one_line, dcii
from tests.test_privacy_peers import _events

EXACT = search_pb2.SEARCH_MODE_EXACT


def _ask(client: Client, purpose: search_pb2.Purpose.ValueType = search_pb2.PURPOSE_SECURITY_CLEARANCE) -> int:
    answer = client.search(
        mode=EXACT,
        name={"surname": "Whitfield", "given_name": "Harold"},
        identifiers={"ssn": "318-52-4471"},
        purpose=purpose,
    )
    return len(answer.hits)


def _refused(client: Client, purpose: search_pb2.Purpose.ValueType = search_pb2.PURPOSE_SECURITY_CLEARANCE) -> str:
    with pytest.raises(grpc.RpcError) as refused:
        _ask(client, purpose)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    return str(refused.value.details())


def test_a_purpose_or_role_changed_takes_effect_at_the_next_call_of_the_same_session(index: Index) -> None:
    index.client("NCIS-SUB", "NCIS", [Role.SUBMITTER]).upsert(f.person(record="NCIS-1"))
    terminal = index.client("CCF-1", "ARMY-CCF", [Role.QUERIER], purposes=[Purpose.SECURITY_CLEARANCE])
    assert _ask(terminal) == 1
    _refused(terminal, search_pb2.PURPOSE_INSTALLATION_ACCESS)

    data = index.data_dir
    added = _accredit(data, "activity", "set", "CCF-1", "--purposes", "security_clearance,installation_access")
    assert added.returncode == 0, added.stderr
    assert "CCF-1 now has roles QUERIER; purposes INSTALLATION_ACCESS,SECURITY_CLEARANCE" in added.stdout
    assert _ask(terminal, search_pb2.PURPOSE_INSTALLATION_ACCESS) == 1  # the same session: no new login

    taken = _accredit(data, "activity", "set", "CCF-1", "--roles", "BATCH")  # its purposes kept
    assert taken.returncode == 0, taken.stderr
    _refused(terminal)
    assert _events(index, ACTIVITY_ACCESS_SET) == [
        {"activity": "CCF-1", "roles": "QUERIER", "purposes": "INSTALLATION_ACCESS,SECURITY_CLEARANCE"},
        {"activity": "CCF-1", "roles": "BATCH", "purposes": "INSTALLATION_ACCESS,SECURITY_CLEARANCE"},
    ]


def test_what_could_never_work_is_refused_and_nothing_changes(index: Index) -> None:
    index.accredit("CCF-2", "OPM", [Role.QUERIER], [Purpose.SECURITY_CLEARANCE])
    data = index.data_dir
    assert _accredit(data, "activity", "add", "PEER-B", "--agency", "DSS", "--roles", "PEER").returncode == 0
    for args, why in [
        (("CCF-2",), "dcii: give --roles, --purposes or both"),
        (("CCF-2", "--purposes", ""), "dcii: --purposes: a QUERIER or BATCH activity needs at least one"),
        (("CCF-2", "--roles", ""), "dcii: --roles: at least one (to stop an activity: suspend or revoke it)"),
        (("CCF-2", "--roles", "SUBMITTER"), "dcii: --agency OPM: a SUBMITTER writes its own agency's"),
        (("CCF-2", "--roles", "QUERIER,PEER"), "dcii: --roles: PEER is an instance's own activity"),
        (("PEER-B", "--roles", "QUERIER"), "dcii: --roles: PEER is an instance's own activity"),
        (("PEER-B", "--roles", "PEER,QUERIER"), "dcii: --roles: a PEER activity has no other role"),
        (("PEER-B", "--purposes", "SECURITY_CLEARANCE"), "dcii: --purposes: a PEER activity has no purpose"),
        (("CCF-2", "--roles", "WIZARD"), "dcii: unknown role: WIZARD"),
        (("NOPE", "--roles", "QUERIER"), "dcii: no activity NOPE"),
    ]:
        done = _accredit(data, "activity", "set", *args)
        assert done.returncode != 0 and why in _one_line(done), (args, done.stderr)
    registry = index.registry
    try:
        kept = registry.activity("CCF-2")
        assert (kept.roles, kept.purposes) == (frozenset({Role.QUERIER}), frozenset({Purpose.SECURITY_CLEARANCE}))
    finally:
        registry.close()
    assert _events(index, ACTIVITY_ACCESS_SET) == []


def test_one_certificate_revoked_ends_its_sessions_and_leaves_the_activitys_other(index: Index) -> None:
    index.client("NCIS-SUB", "NCIS", [Role.SUBMITTER]).upsert(f.person(record="NCIS-1"))
    lost, account, password = index.accredit("CCF-3", "ARMY-CCF", [Role.QUERIER], [Purpose.SECURITY_CLEARANCE])
    kept = pki.issue_client_cert(index.ca, "CCF-3", "ARMY-CCF")
    data = index.data_dir
    pem = data.parent / "kept.pem"
    pem.write_bytes(kept.cert_pem)
    assert _accredit(data, "activity", "add-cert", "CCF-3", str(pem)).returncode == 0
    on_lost, on_kept = index.connect(lost), index.connect(kept)
    on_lost.login(account, password)
    on_kept.login(account, password)
    assert _ask(on_lost) == 1 and _ask(on_kept) == 1

    # By fingerprint as openssl prints it (colons, upper case).
    printed = ":".join(lost.fingerprint[i : i + 2] for i in range(0, 64, 2)).upper()
    revoked = _accredit(data, "activity", "revoke-cert", "CCF-3", printed)
    assert revoked.returncode == 0 and revoked.stderr == "", revoked.stderr
    assert f"certificate {lost.fingerprint[:16]}... of CCF-3 revoked" in revoked.stdout
    with pytest.raises(grpc.RpcError) as refused:
        _ask(on_lost)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert _ask(on_kept) == 1  # the same operator's session on the other terminal goes on

    again = _accredit(data, "activity", "revoke-cert", "CCF-3", lost.fingerprint)
    assert again.returncode == 1 and "that certificate was revoked on" in _one_line(again)
    other = index.accredit("CCF-4", "ARMY-CCF", [Role.QUERIER], [Purpose.SECURITY_CLEARANCE])[0]
    theirs = _accredit(data, "activity", "revoke-cert", "CCF-3", other.fingerprint)
    assert theirs.returncode == 1 and "no such certificate of activity CCF-3" in _one_line(theirs)
    assert _accredit(data, "activity", "revoke-cert", "CCF-3", "nonsense").returncode == 1
    mistyped = _accredit(data, "activity", "revoke-cert", "CCF-33", lost.fingerprint)
    assert mistyped.returncode == 1 and _one_line(mistyped) == "dcii: no activity CCF-33"

    listed = _accredit(data, "activity", "certs", "CCF-3")
    assert listed.returncode == 0 and lost.fingerprint in listed.stdout and kept.fingerprint in listed.stdout
    last = _accredit(data, "activity", "revoke-cert", "CCF-3", str(pem))  # the PEM file: the last one
    assert last.returncode == 0
    assert "CCF-3 has no other certificate and cannot connect" in _one_line(last)
    assert _events(index, CERTIFICATE_REVOKED) == [
        {"activity": "CCF-3", "fingerprint": lost.fingerprint},
        {"activity": "CCF-3", "fingerprint": kept.fingerprint},
    ]


def _column(output: str, number: int) -> str:
    """A table's column `number` (1 the first), its wrapped pieces joined in order."""
    return "".join(line.split("│")[number].strip() for line in output.splitlines() if line.startswith("│"))


def test_the_lists_wrap_an_id_never_elide_it_on_a_narrow_terminal(index: Index) -> None:
    """At 80 columns `activity list` showed "DEMO-ADJUDI…": an id nobody could type into the next command. A
    fingerprint was folded in two, and could not be copied whole into `revoke-cert` (an administrator's UAT):
    `activity certs` gives each one a line of its own."""
    cert = index.accredit("DEMO-ADJUDICATOR-FORT-MEADE", "ARMY-CCF", [Role.QUERIER, Role.BATCH], list(Purpose))[0]
    for args, column, expected in (
        (("activity", "list"), 1, "DEMO-ADJUDICATOR-FORT-MEADE"),
        (("operator", "list"), 2, "DEMO-ADJUDICATOR-FORT-MEADE"),
    ):
        done = dcii("accredit", "--data", str(index.data_dir), *args, env={"COLUMNS": "80"})
        assert done.returncode == 0 and "…" not in done.stdout, (args, done.stdout)
        assert expected in _column(done.stdout, column), (args, done.stdout)
    certs = ("activity", "certs", "DEMO-ADJUDICATOR-FORT-MEADE")
    done = dcii("accredit", "--data", str(index.data_dir), *certs, env={"COLUMNS": "80"})
    assert done.returncode == 0 and cert.fingerprint in done.stdout.splitlines(), done.stdout


def test_a_certificate_another_ca_issued_is_refused_when_the_ca_is_named(index: Index, tmp_path: Path) -> None:
    """Accredited, it could never connect: the handshake refuses it, which the terminal heard as a lost
    connection (a connector operator's UAT)."""
    foreign_dir = tmp_path / "foreign"
    pki.init_pki(foreign_dir, activities=[])
    foreign, _key = pki.issue_client_into(foreign_dir, "CCF-5", "ARMY-CCF")
    ours, _key = pki.issue_client_into(index.pki_dir, "CCF-5", "ARMY-CCF")
    data, ca_dir = index.data_dir, str(index.pki_dir)
    add = ("activity", "add", "CCF-5", "--agency", "ARMY-CCF", "--roles", "QUERIER", "--purposes", "SECURITY_CLEARANCE")
    refused = dcii("accredit", "--data", str(data), "--pki", ca_dir, *add, "--cert", str(foreign))
    assert refused.returncode == 1 and f"was not issued by the CA {ca_dir}/ca.pem" in _one_line(refused)
    assert "dcii certs issue" in refused.stderr
    assert dcii("accredit", "--data", str(data), "--pki", ca_dir, *add, "--cert", str(ours)).returncode == 0
    again = dcii("accredit", "--data", str(data), "--pki", ca_dir, "activity", "add-cert", "CCF-5", str(foreign))
    assert again.returncode == 1 and "was not issued by the CA" in again.stderr
    nowhere = dcii("accredit", "--data", str(data), "--pki", str(tmp_path), "activity", "add-cert", "CCF-5", str(ours))
    assert nowhere.returncode == 1 and "no ca.pem there" in _one_line(nowhere)
    registry = index.registry
    try:
        assert registry.activity("CCF-5").fingerprints == (pki.fingerprint(ours.read_bytes()),)
    finally:
        registry.close()


def test_an_account_code_is_a_code_and_a_password_mistake_is_one_line(index: Index, tmp_path: Path) -> None:
    """`operator add` took any text as the account code (a password, the arguments swapped, escapes, 300
    characters) into the registry and the trail; a mistyped --password-file, or no terminal to ask at, was a
    traceback (an administrator's UAT)."""
    index.accredit("CCF-6", "ARMY-CCF", [Role.QUERIER], [Purpose.SECURITY_CLEARANCE])
    secret = tmp_path / "pw"
    secret.write_text("a-long-enough-password\n")

    def add(code: str, *more: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return dcii(
            "accredit", "--data", str(index.data_dir), "operator", "add", code, "--activity", "CCF-6", *more, env=env
        )

    for code in ("", "j doe", "x\x1b[2J", "a" * 65, "Tr0ub4dor&3-horse!"):
        done = add(code, "--password-file", str(secret))
        assert done.returncode == 1 and "account_code: letters, digits" in _one_line(done), (code, done.stderr)
    missing = add("jdoe", "--password-file", str(tmp_path / "nope"))
    assert _one_line(missing) == f"dcii: --password-file {tmp_path / 'nope'}: No such file or directory"
    assert missing.returncode == 1
    asked = add("jdoe", env={"DCII_PASSWORD": ""})
    assert asked.returncode == 1 and "no terminal to ask at" in _one_line(asked)
    assert add("j.doe@ccf", "--password-file", str(secret)).returncode == 0
    assert b"Tr0ub4dor" not in (index.data_dir / "audit.db").read_bytes()


def test_a_certificate_made_out_to_another_agencys_activity_is_refused(index: Index, tmp_path: Path) -> None:
    """`add-cert` took an AFOSI certificate issued to ADJ-AF-99 for a Navy office, which it then logged in
    as (an administrator's UAT). Another terminal of the same agency is accredited, and said so."""
    index.accredit("NAVY-CAF", "DONCAF", [Role.QUERIER], [Purpose.SECURITY_CLEARANCE])
    theirs, _key = pki.issue_client_into(index.pki_dir, "ADJ-AF-99", "AFOSI")
    second, _key = pki.issue_client_into(index.pki_dir, "NAVY-CAF-2", "DONCAF")
    data = str(index.data_dir)
    refused = dcii("accredit", "--data", data, "activity", "add-cert", "NAVY-CAF", str(theirs))
    assert refused.returncode == 1
    assert "was issued to ADJ-AF-99 of AFOSI, not to NAVY-CAF of DONCAF" in _one_line(refused)
    add = ("activity", "add", "AF-X", "--agency", "AFOSI", "--roles", "QUERIER", "--purposes", "SECURITY_CLEARANCE")
    assert dcii("accredit", "--data", data, *add, "--cert", str(second)).returncode == 1  # a Navy terminal's
    taken = dcii(
        "accredit", "--data", data, "--pki", str(index.pki_dir), "activity", "add-cert", "NAVY-CAF", str(second)
    )
    assert taken.returncode == 0 and "accredited as a terminal of NAVY-CAF" in _one_line(taken)
    registry = index.registry
    try:
        assert pki.fingerprint(theirs.read_bytes()) not in registry.activity("NAVY-CAF").fingerprints
        assert [a.activity_id for a in registry.list_activities()].count("AF-X") == 0
    finally:
        registry.close()


def test_an_activity_with_no_role_or_a_peer_with_purposes_is_not_accredited(index: Index) -> None:
    data = str(index.data_dir)
    for args in (("--roles", ""), ("--roles", "PEER", "--purposes", "SECURITY_CLEARANCE")):
        done = dcii("accredit", "--data", data, "activity", "add", "ODD-1", "--agency", "DSS", *args)
        assert done.returncode != 0 and "roles" in _one_line(done), (args, done.stderr)


def test_an_event_kind_the_trail_does_not_hold_says_which_it_holds(index: Index) -> None:
    index.accredit("CCF-7", "ARMY-CCF", [Role.QUERIER], [Purpose.SECURITY_CLEARANCE])
    dcii("accredit", "--data", str(index.data_dir), "activity", "suspend", "CCF-7")
    done = dcii("audit", "events", "--kind", "activity_status", "--data", str(index.data_dir))
    assert done.returncode == 0 and "0 events" in done.stdout
    assert "no event of kind ACTIVITY_STATUS in this trail; the kinds it holds: ACTIVITY_STATUS_SET" in done.stderr


def test_a_new_password_ends_the_sessions_and_clears_the_lock(index: Index, tmp_path: Path) -> None:
    """No command changed a password: a terminal stolen with the password file beside its profile left the
    administrator revoking the account (an administrator's UAT)."""
    index.client("NCIS-SUB", "NCIS", [Role.SUBMITTER]).upsert(f.person(record="NCIS-1"))
    cert, account, old = index.accredit("CCF-8", "ARMY-CCF", [Role.QUERIER], [Purpose.SECURITY_CLEARANCE])
    terminal = index.connect(cert)
    terminal.login(account, old)
    assert _ask(terminal) == 1
    new = tmp_path / "new-password"
    new.write_text("a-brand-new-passphrase\n")
    data = str(index.data_dir)
    done = dcii("accredit", "--data", data, "operator", "password", account, "--password-file", str(new))
    assert done.returncode == 0 and f"{account} has a new password" in done.stdout, done.stderr
    with pytest.raises(grpc.RpcError) as ended:
        _ask(terminal)  # the session opened with the old password
    assert ended.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError):
        terminal.login(account, old)
    terminal.login(account, "a-brand-new-passphrase")
    assert _ask(terminal) == 1
    short = tmp_path / "short"
    short.write_text("short\n")
    refused = dcii("accredit", "--data", data, "operator", "password", account, "--password-file", str(short))
    assert refused.returncode == 1 and "password: at least 12 characters" in _one_line(refused)
    nobody = dcii("accredit", "--data", data, "operator", "password", "nobody", "--password-file", str(new))
    assert nobody.returncode == 1 and "no operator nobody" in _one_line(nobody)
    assert _events(index, OPERATOR_PASSWORD_SET) == [{"account": account}]
    assert b"brand-new" not in (index.data_dir / "audit.db").read_bytes()
