"""The operator's and administrator's commands refuse what they cannot do, in one line (UAT findings): `dcii
certs` without the CA's key, `dcii accredit activity add` with an agency that cannot submit or a querier
without a purpose, a reinstate that leaves an activity unable to connect, `dcii index` reading
DCII_STORE_URL, `dcii audit verify` on a directory without a trail and `volume` over a period that is not
one, a backup of a damaged index; and AdminService.SetActivityStatus never locking the administrators out.
Every command runs as a real subprocess on real files; the AdminService tests on a real server."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest

from dcii.v1 import admin_pb2
from indexer.store.sqlite import SqliteStore
from search_service import pki
from search_service.accounting import AuditLog, load_or_create_key
from search_service.accreditation import Purpose, Role, Status
from search_service.accreditation_events import ACTIVITY_STATUS_SET
from search_service.audit_chain import head_path
from search_service.registry import Registry
from tests.support import ROOT, Client, Index, make_index


def dcii(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dcii.cli.main", *args],
        cwd=cwd,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        text=True,
        capture_output=True,
        timeout=120,
        check=False,
    )


def _one_line(done: subprocess.CompletedProcess[str]) -> str:
    """The refusal's only line on stderr (a traceback or a page of output fails the test)."""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


# ---- dcii certs ----


def test_certs_without_the_ca_key_or_the_ca_say_so_in_one_line(tmp_path: Path) -> None:
    """The RUNBOOK moves ca-key.pem offline once the certificates are issued: `certs server` and `certs issue`
    then printed a FileNotFoundError traceback, and so did the default --dir where there is none."""
    ca_dir = tmp_path / "pki"
    assert dcii("certs", "init", "--dir", str(ca_dir)).returncode == 0
    (ca_dir / "ca-key.pem").rename(tmp_path / "ca-key.pem")  # offline
    for args in (
        ("certs", "server", "--dir", str(ca_dir), "--hostname", "localhost", "--out", str(tmp_path / "new")),
        ("certs", "issue", "ADJ-X", "--agency", "DSS", "--dir", str(ca_dir)),
    ):
        done = dcii(*args)
        assert done.returncode == 1, args
        expected = (
            f"dcii: no CA key in {ca_dir}: bring the CA's key back (RUNBOOK, Rotating certificates) or pass --dir"
        )
        assert _one_line(done) == expected, args
    assert not (tmp_path / "new").exists() and not (ca_dir / "ADJ-X.pem").exists()
    default = dcii("certs", "server", "--hostname", "localhost", "--out", str(tmp_path / "x"), cwd=tmp_path)
    assert default.returncode == 1
    assert _one_line(default) == "dcii: no CA in var/pki: pass --dir, the directory holding ca.pem and ca-key.pem"
    (tmp_path / "ca-key.pem").rename(ca_dir / "ca-key.pem")  # brought back: it works again
    assert dcii("certs", "issue", "ADJ-X", "--agency", "DSS", "--dir", str(ca_dir)).returncode == 0


# ---- dcii accredit ----


def _accredit(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return dcii("accredit", "--data", str(data), *args)


def _activities(data: Path) -> dict[str, tuple[str, Status, int]]:
    registry = Registry(data / "registry.db")
    try:
        return {a.activity_id: (a.agency, a.status, len(a.fingerprints)) for a in registry.list_activities()}
    finally:
        registry.close()


def test_an_activity_that_could_never_work_is_not_accredited(tmp_path: Path) -> None:
    """An agency that owns no tracings for a SUBMITTER, and a QUERIER or BATCH activity without a purpose,
    were accredited: neither could ever do its work. An unknown agency for another role is allowed (the
    RUNBOOK's own example is NAVY), with a warning."""
    data = tmp_path / "data"
    assert _accredit(data, "activity", "add", "ADJ-A", "--agency", "DSS", "--roles", "QUERIER", "--purposes",
                     "SECURITY_CLEARANCE", "--new-registry").returncode == 0  # fmt: skip
    for args, why in [
        (("--agency", "NOTANAGENCY", "--roles", "SUBMITTER"), "dcii: --agency NOTANAGENCY: a SUBMITTER writes"),
        (("--agency", "FBI", "--roles", "SUBMITTER"), "dcii: --agency FBI: a SUBMITTER writes"),  # checked, not owning
        (("--agency", "DSS", "--roles", "QUERIER"), "dcii: --purposes: a QUERIER or BATCH activity needs"),
        (("--agency", "DSS", "--roles", "BATCH,SUBMITTER"), "dcii: --purposes: a QUERIER or BATCH activity needs"),
    ]:
        done = _accredit(data, "activity", "add", "ADJ-X", *args)
        assert done.returncode == 1 and _one_line(done).startswith(why), (args, done.stderr)
    assert set(_activities(data)) == {"ADJ-A"}
    odd = _accredit(data, "activity", "add", "ADJ-N", "--agency", "navy", "--roles", "QUERIER", "--purposes",
                    "SECURITY_CLEARANCE")  # fmt: skip
    assert odd.returncode == 0 and "accredited ADJ-N" in odd.stdout
    assert _one_line(odd).startswith("dcii: warning: --agency NAVY is not an agency the index knows")
    known = _accredit(data, "activity", "add", "NCIS-C", "--agency", "NCIS", "--roles", "SUBMITTER")
    assert known.returncode == 0 and known.stderr == ""  # a submitter needs no purpose; a known agency no warning
    assert _activities(data)["ADJ-N"][0] == "NAVY"


def test_a_reinstate_after_a_revoke_says_the_activity_has_no_certificate(tmp_path: Path) -> None:
    """A revoke revokes the activity's certificates: reinstated, it said only "now ACTIVE" and could not
    connect. The reinstate stands, and says what is missing."""
    ca_dir, data = tmp_path / "pki", tmp_path / "data"
    pki.init_pki(ca_dir, activities=[])
    first, _key = pki.issue_client_into(ca_dir, "ADJ-X", "DSS")
    assert _accredit(data, "activity", "add", "ADJ-X", "--agency", "DSS", "--roles", "QUERIER", "--purposes",
                     "SECURITY_CLEARANCE", "--cert", str(first), "--new-registry").returncode == 0  # fmt: skip
    assert _accredit(data, "activity", "revoke", "ADJ-X").returncode == 0
    reinstated = _accredit(data, "activity", "reinstate", "ADJ-X")
    assert reinstated.returncode == 0 and "ADJ-X is now ACTIVE" in reinstated.stdout
    assert "ADJ-X has no certificate and cannot connect" in _one_line(reinstated)
    assert "dcii accredit activity add-cert ADJ-X" in reinstated.stderr
    assert _activities(data)["ADJ-X"] == ("DSS", Status.ACTIVE, 0)
    second, _key = pki.issue_client_into(ca_dir, "ADJ-X", "DSS", force=True)  # the RUNBOOK's order
    assert _accredit(data, "activity", "add-cert", "ADJ-X", str(second)).returncode == 0
    assert _accredit(data, "activity", "suspend", "ADJ-X").returncode == 0
    again = _accredit(data, "activity", "reinstate", "ADJ-X")
    assert again.returncode == 0 and again.stderr == ""  # with a certificate: nothing to say


# ---- dcii index ----


def test_index_commands_read_the_store_from_dcii_store_url(tmp_path: Path) -> None:
    """The RUNBOOK's `dcii index check` (step 6 of an upgrade) stopped at "--store is required" inside an
    instance where DCII_STORE_URL names the store, which `dcii serve` reads."""
    path = tmp_path / "index.db"
    SqliteStore(path).close()
    unset = {k: v for k, v in os.environ.items() if k != "DCII_STORE_URL"}
    for command in ("check", "instances"):
        done = dcii("index", command, env={"DCII_STORE_URL": str(path)})
        assert done.returncode == 0, (command, done.stderr)
        missing = subprocess.run(
            [sys.executable, "-m", "dcii.cli.main", "index", command],
            cwd=ROOT, env=unset, text=True, capture_output=True, timeout=60, check=False,
        )  # fmt: skip
        assert missing.returncode == 2, command
        assert _one_line(missing) == f"dcii index {command}: --store URL is required, or set DCII_STORE_URL"
    elsewhere = dcii("index", "check", "--store", str(tmp_path / "none.db"), env={"DCII_STORE_URL": str(path)})
    assert elsewhere.returncode == 1  # --store given wins over the variable (that file is not there)


# ---- dcii audit ----


def test_verify_without_a_trail_is_a_usage_error_not_a_broken_trail(tmp_path: Path) -> None:
    """`dcii audit verify` from cron with a wrong --data said "audit trail broken" and exited 1, the tamper
    alarm. Nothing there at all is a usage error (2); a database gone beside its head file stays broken (1)."""
    nowhere = dcii("audit", "verify", "--data", str(tmp_path / "nowhere"))
    assert nowhere.returncode == 2 and nowhere.stdout == ""
    assert _one_line(nowhere) == f"dcii: no audit trail at {tmp_path / 'nowhere' / 'audit.db'} (is --data right?)"
    data = tmp_path / "data"
    data.mkdir()
    audit = AuditLog(data / "audit.db", key=load_or_create_key(data / "audit.key"))
    audit.record_event("TEST_EVENT", "cli:test", {"n": "1"})
    audit.close()
    assert dcii("audit", "verify", "--data", str(data)).returncode == 0
    (data / "audit.db").unlink()  # the trail deleted; its head file remains
    assert head_path(data / "audit.db").exists()
    gone = dcii("audit", "verify", "--data", str(data))
    assert gone.returncode == 1 and "audit trail broken" in gone.stdout, gone.stdout


def test_volume_refuses_a_period_that_is_not_one(tmp_path: Path) -> None:
    """`--hours -5` reported a clean window in the future and exited 0: a mistyped cron line read as clean."""
    data = tmp_path / "data"
    data.mkdir()
    audit = AuditLog(data / "audit.db", key=load_or_create_key(data / "audit.key"))
    audit.close()
    for hours in ("-5", "0", "nan", "inf", "ten"):
        done = dcii("audit", "volume", "--data", str(data), f"--hours={hours}", "--over", "10")
        assert done.returncode == 2 and "argument --hours:" in done.stderr and "Traceback" not in done.stderr, hours
    assert dcii("audit", "volume", "--data", str(data), "--hours", "0.5", "--over", "10").returncode == 0


# ---- dcii backup ----


def test_a_backup_of_a_damaged_index_fails_in_one_line(tmp_path: Path) -> None:
    """SQLite's quick_check of the copy gave ~100 lines ("Page N is never used"...) under "backup failed"."""
    index = make_index(tmp_path / "live")
    index.start()
    index.stop()
    conn = sqlite3.connect(index.data_dir / "index.db", isolation_level=None)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("CREATE TABLE scratch (x)")  # pages that go to the free list when dropped
    conn.execute("INSERT INTO scratch SELECT randomblob(600) FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL"
                 " SELECT i + 1 FROM n WHERE i < 2000) SELECT i FROM n)")  # fmt: skip
    conn.execute("DROP TABLE scratch")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    with (index.data_dir / "index.db").open("r+b") as handle:  # the free list lost: each of its pages unused
        handle.seek(32)
        handle.write(b"\0" * 8)
    out = tmp_path / "backup"
    done = dcii("backup", "--data", str(index.data_dir), "--out", str(out))
    assert done.returncode == 1
    *progress, line = done.stderr.strip().splitlines()  # one line per file copied, then the failure
    assert all(" bytes in " in shown for shown in progress) and "Traceback" not in done.stderr, done.stderr
    assert line.startswith("backup failed: the copy of index.db fails SQLite's quick_check: Page "), line
    assert line.endswith(" is never used (and at least 99 more problems)"), line
    assert not out.exists()


# ---- AdminService.SetActivityStatus ----


def _set(client: Client, activity_id: str, status: admin_pb2.ActivityStatus.ValueType) -> admin_pb2.Activity:
    request = admin_pb2.SetActivityStatusRequest(activity_id=activity_id, status=status)
    response: admin_pb2.Activity = client.admin.SetActivityStatus(request, metadata=client.metadata, timeout=60)
    return response


def _status(index: Index, activity_id: str) -> Status:
    registry = index.registry
    try:
        return registry.activity(activity_id).status
    finally:
        registry.close()


def test_an_administrator_cannot_suspend_or_revoke_its_own_activity(index: Index) -> None:
    """Revoking its own activity over gRPC revoked its certificates too: every administrator was locked out."""
    admin = index.client("DSS-ADMIN", "DSS", [Role.ADMINISTRATOR])
    other = index.client("DSS-ADMIN-2", "DSS", [Role.ADMINISTRATOR])
    assert index.running is not None
    for status in (admin_pb2.ACTIVITY_STATUS_SUSPENDED, admin_pb2.ACTIVITY_STATUS_REVOKED):
        with pytest.raises(grpc.RpcError) as refused:
            _set(admin, "DSS-ADMIN", status)
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "cannot make its own activity" in str(refused.value.details())
    assert index.running.audit.events(ACTIVITY_STATUS_SET) == []  # nothing changed, nothing recorded
    assert _status(index, "DSS-ADMIN") is Status.ACTIVE
    assert _set(admin, "DSS-ADMIN", admin_pb2.ACTIVITY_STATUS_ACTIVE).status == admin_pb2.ACTIVITY_STATUS_ACTIVE
    assert _set(other, "DSS-ADMIN", admin_pb2.ACTIVITY_STATUS_SUSPENDED).status == admin_pb2.ACTIVITY_STATUS_SUSPENDED


def test_two_administrators_revoking_each_other_at_once_leave_one(index: Index) -> None:
    """Each passes the check of its own activity; the second to commit would have left no administrator at all.
    Both calls are held at the registry's write lock (taken here) until both have been let in, then released."""
    a = index.client("ADM-A", "DSS", [Role.ADMINISTRATOR])
    b = index.client("ADM-B", "DSS", [Role.ADMINISTRATOR])
    index.accredit("CCF-TERM-01", "ARMY-CCF", [Role.QUERIER], [Purpose.SECURITY_CLEARANCE])
    outcomes: dict[str, grpc.StatusCode] = {}
    reasons: dict[str, str] = {}

    def revoke(caller: Client, target: str) -> None:
        try:
            _set(caller, target, admin_pb2.ACTIVITY_STATUS_REVOKED)
            outcomes[target] = grpc.StatusCode.OK
        except grpc.RpcError as error:
            outcomes[target], reasons[target] = error.code(), str(error.details())

    lock = sqlite3.connect(index.data_dir / "registry.db", isolation_level=None, timeout=30)
    lock.execute("BEGIN IMMEDIATE")
    threads = [threading.Thread(target=revoke, args=pair) for pair in ((a, "ADM-B"), (b, "ADM-A"))]
    for thread in threads:
        thread.start()
    time.sleep(3)  # both calls past authorization, waiting on the lock
    lock.execute("COMMIT")
    lock.close()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes.values(), key=str) == [grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.OK], outcomes
    [refused] = reasons
    assert "would leave no active ADMINISTRATOR activity" in reasons[refused]
    assert _status(index, refused) is Status.ACTIVE
    # The administrator left can still change the others, not itself.
    survivor = a if refused == "ADM-A" else b
    assert _set(survivor, "CCF-TERM-01", admin_pb2.ACTIVITY_STATUS_SUSPENDED).activity_id == "CCF-TERM-01"
