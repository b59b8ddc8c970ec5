"""Changes to who may use the index are events in the audit trail (search_service.accreditation_events):
made by `dcii accredit` (real subprocesses on a data directory, actor "cli:<OS user>") or by the
AdminService (a real server, actor the calling administrator); a refused change records nothing, and a
change whose event cannot be written is not made."""

from __future__ import annotations

import getpass
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from dcii.v1 import admin_pb2
from search_service import pki
from search_service.accounting import AuditLog, load_or_create_key
from search_service.accreditation import Purpose, Role, Status
from search_service.accreditation_events import (
    ACTIVITY_ACCESS_SET,
    ACTIVITY_ACCREDITED,
    ACTIVITY_STATUS_SET,
    CERTIFICATE_ADDED,
    CERTIFICATE_REVOKED,
    KINDS,
    OPERATOR_ADDED,
    OPERATOR_PASSWORD_SET,
    OPERATOR_STATUS_SET,
)
from search_service.registry import Registry
from tests.support import ROOT, Index

PASSWORD = "correct horse battery staple"
ACTOR = f"cli:{getpass.getuser()}"
Event = tuple[str, str, dict[str, str]]  # kind, actor, detail


def _dcii(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dcii.cli.main", *args],
        cwd=ROOT,
        env={**os.environ, "DCII_PASSWORD": PASSWORD, "COLUMNS": "200"},
        text=True,
        capture_output=True,
        check=check,
        timeout=120,
    )


def _events(data: Path) -> list[Event]:
    """Every event in the data directory's trail, read with the trail's own reader."""
    if not (data / "audit.db").exists():
        return []
    with AuditLog(data / "audit.db", key=load_or_create_key(data / "audit.key")) as audit:
        return [(e.kind, e.actor, dict(e.detail)) for e in audit.events()]


def _verified(data: Path) -> str:
    return _dcii("audit", "verify", "--data", str(data)).stdout


# A QUERIER is accredited for a purpose (`activity add` refuses one without: it could never query).
QUERYING = ("--roles", "QUERIER", "--purposes", "SECURITY_CLEARANCE")


def _accredit(data: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return _dcii("accredit", "--data", str(data), *args, check=check)


@pytest.fixture
def certs(tmp_path: Path) -> tuple[Path, Path]:
    ca_dir = tmp_path / "pki"
    pki.init_pki(ca_dir, activities=[])
    first, _key = pki.issue_client_into(ca_dir, "CCF-TERM-01", "ARMY-CCF")
    second, _key = pki.issue_client_into(ca_dir, "CCF-TERM-01b", "ARMY-CCF")
    return first, second


def test_each_accredit_command_records_exactly_its_event(tmp_path: Path, certs: tuple[Path, Path]) -> None:
    data = tmp_path / "data"
    first, second = (pki.fingerprint(c.read_bytes()) for c in certs)
    steps: list[tuple[list[str], list[tuple[str, dict[str, str]]]]] = [
        (
            [
                *("activity", "add", "CCF-TERM-01", "--agency", "army-ccf", "--roles", "querier,batch"),
                *("--purposes", "SECURITY_CLEARANCE", "--cert", str(certs[0]), "--new-registry"),
            ],
            [
                (
                    ACTIVITY_ACCREDITED,
                    {
                        "activity": "CCF-TERM-01",
                        "agency": "ARMY-CCF",
                        "roles": "BATCH,QUERIER",
                        "purposes": "SECURITY_CLEARANCE",
                    },
                ),
                (CERTIFICATE_ADDED, {"activity": "CCF-TERM-01", "fingerprint": first}),
            ],
        ),
        (
            ["activity", "add-cert", "CCF-TERM-01", str(certs[1])],
            [(CERTIFICATE_ADDED, {"activity": "CCF-TERM-01", "fingerprint": second})],
        ),
        (
            ["activity", "set", "CCF-TERM-01", "--purposes", "security_clearance,installation_access"],
            [
                (
                    ACTIVITY_ACCESS_SET,
                    {
                        "activity": "CCF-TERM-01",
                        "roles": "BATCH,QUERIER",
                        "purposes": "INSTALLATION_ACCESS,SECURITY_CLEARANCE",
                    },
                )
            ],
        ),
        (
            ["activity", "revoke-cert", "CCF-TERM-01", str(certs[1])],
            [(CERTIFICATE_REVOKED, {"activity": "CCF-TERM-01", "fingerprint": second})],
        ),
        *(
            (
                ["activity", action, "CCF-TERM-01"],
                [(ACTIVITY_STATUS_SET, {"activity": "CCF-TERM-01", "status": status})],
            )
            for action, status in (("suspend", "SUSPENDED"), ("revoke", "REVOKED"), ("reinstate", "ACTIVE"))
        ),
        (
            ["operator", "add", "jdoe", "--activity", "CCF-TERM-01"],
            [(OPERATOR_ADDED, {"account": "jdoe", "activity": "CCF-TERM-01"})],
        ),
        (["operator", "password", "jdoe"], [(OPERATOR_PASSWORD_SET, {"account": "jdoe"})]),
        *(
            (
                ["operator", action, "jdoe"],
                [(OPERATOR_STATUS_SET, {"account": "jdoe", "status": status})],
            )
            for action, status in (("suspend", "SUSPENDED"), ("revoke", "REVOKED"), ("reinstate", "ACTIVE"))
        ),
    ]
    seen: list[Event] = []
    for args, expected in steps:
        _accredit(data, *args)
        seen += [(kind, ACTOR, detail) for kind, detail in expected]
        assert _events(data) == seen, args
    assert {kind for kind, _actor, _detail in seen} == set(KINDS)
    assert all(actor.startswith("cli:") for _kind, actor, _detail in seen)
    assert "intact: 13 entries" in _verified(data)
    assert PASSWORD.encode() not in (data / "audit.db").read_bytes()  # the password is never recorded
    registry = Registry(data / "registry.db")  # and each change was made
    assert registry.activity("CCF-TERM-01").status is Status.ACTIVE
    assert registry.activity("CCF-TERM-01").fingerprints == ()  # the revoke revoked both
    assert [(o.account_code, o.status) for o in registry.list_operators()] == [("jdoe", Status.ACTIVE)]
    registry.close()


def test_a_refused_change_records_nothing(tmp_path: Path, certs: tuple[Path, Path]) -> None:
    data = tmp_path / "data"
    refused = _accredit(data, "activity", "suspend", "NO-SUCH-ACTIVITY", check=False)
    assert refused.returncode != 0
    assert "no registry at" in refused.stderr  # a data directory without a registry: a mistyped --data
    assert not (data / "audit.db").exists()  # a refusal opens no trail
    _accredit(data, "activity", "add", "CCF-TERM-01", "--agency", "ARMY-CCF", *QUERYING, "--new-registry")
    before = _events(data)
    assert [kind for kind, _actor, _detail in before] == [ACTIVITY_ACCREDITED]
    for args, why in [
        (["activity", "add", "CCF-TERM-01", "--agency", "NAVY", *QUERYING], "already exists"),
        (["activity", "add-cert", "NO-SUCH-ACTIVITY", str(certs[0])], "no activity"),
        (["activity", "revoke", "NO-SUCH-ACTIVITY"], "no activity"),
        (["operator", "add", "jdoe", "--activity", "NO-SUCH-ACTIVITY"], "no activity"),
        (["operator", "suspend", "nobody"], "no operator"),
    ]:
        result = _accredit(data, *args, check=False)
        assert result.returncode != 0 and why in result.stderr, args
        assert _events(data) == before, args
    _accredit(data, "operator", "add", "jdoe", "--activity", "CCF-TERM-01")
    result = _accredit(data, "operator", "add", "jdoe", "--activity", "CCF-TERM-01", check=False)
    assert result.returncode != 0 and "already exists" in result.stderr
    assert [kind for kind, _actor, _detail in _events(data)] == [ACTIVITY_ACCREDITED, OPERATOR_ADDED]
    assert "intact: 2 entries" in _verified(data)


def test_a_change_whose_event_cannot_be_written_is_not_made(tmp_path: Path) -> None:
    """The trail taken for another one (its key replaced): each command fails, saying so, and changes nothing."""
    data = tmp_path / "data"
    _accredit(data, "activity", "add", "CCF-TERM-01", "--agency", "ARMY-CCF", *QUERYING, "--new-registry")
    _accredit(data, "operator", "add", "jdoe", "--activity", "CCF-TERM-01")
    key = (data / "audit.key").read_bytes()
    (data / "audit.key").write_bytes(os.urandom(len(key)))
    for args in (
        ["activity", "add", "CCF-TERM-02", "--agency", "ARMY-CCF", *QUERYING],
        ["activity", "suspend", "CCF-TERM-01"],
        ["operator", "add", "asmith", "--activity", "CCF-TERM-01"],
        ["operator", "suspend", "jdoe"],
    ):
        result = _accredit(data, *args, check=False)
        assert result.returncode != 0, args
        assert "not made: the audit trail cannot be written" in result.stderr, args
    (data / "audit.key").write_bytes(key)
    registry = Registry(data / "registry.db")
    assert [(a.activity_id, a.status) for a in registry.list_activities()] == [("CCF-TERM-01", Status.ACTIVE)]
    assert [(o.account_code, o.status) for o in registry.list_operators()] == [("jdoe", Status.ACTIVE)]
    registry.close()
    assert [kind for kind, _actor, _detail in _events(data)] == [ACTIVITY_ACCREDITED, OPERATOR_ADDED]


# ---- the registry's hook: a `record` that raises leaves the registry as it was ----


class TrailDown(Exception):
    pass


def _raise() -> None:
    raise TrailDown


@pytest.mark.parametrize(
    "change",
    [
        lambda r: r.add_activity(
            "CCF-TERM-02", "ARMY-CCF", [Role.QUERIER], [Purpose.SECURITY_CLEARANCE], record=_raise
        ),
        lambda r: r.add_certificate("CCF-TERM-01", "cd" * 32, record=_raise),
        lambda r: r.set_activity_status("CCF-TERM-01", Status.REVOKED, record=_raise),
        lambda r: r.add_operator("asmith", "CCF-TERM-01", PASSWORD, record=_raise),
        lambda r: r.set_operator_status("jdoe", Status.SUSPENDED, record=_raise),
    ],
    ids=["add_activity", "add_certificate", "set_activity_status", "add_operator", "set_operator_status"],
)
def test_a_change_whose_record_fails_is_rolled_back(tmp_path: Path, change: Callable[[Registry], object]) -> None:
    registry = Registry(tmp_path / "registry.db")
    registry.add_activity("CCF-TERM-01", "ARMY-CCF", [Role.QUERIER], [])
    registry.add_certificate("CCF-TERM-01", "ab" * 32)
    registry.add_operator("jdoe", "CCF-TERM-01", PASSWORD)
    before = (registry.list_activities(), registry.list_operators())
    with pytest.raises(TrailDown):
        change(registry)
    assert (registry.list_activities(), registry.list_operators()) == before
    registry.close()


# ---- AdminService.SetActivityStatus ----


def test_set_activity_status_over_the_wire_records_the_caller(index: Index) -> None:
    admin = index.client("DSS-ADMIN", "DSS", [Role.ADMINISTRATOR])
    index.accredit("CCF-TERM-01", "ARMY-CCF", [Role.QUERIER])
    assert index.running is not None
    audit = index.running.audit
    admin.admin.SetActivityStatus(
        admin_pb2.SetActivityStatusRequest(activity_id="CCF-TERM-01", status=admin_pb2.ACTIVITY_STATUS_SUSPENDED),
        metadata=admin.metadata,
        timeout=10,
    )
    [event] = audit.events(ACTIVITY_STATUS_SET)
    assert (event.actor, dict(event.detail)) == (
        "DSS-ADMIN/dss-admin-op",
        {"activity": "CCF-TERM-01", "status": "SUSPENDED"},
    )
    again = admin.admin.SetActivityStatus(  # already SUSPENDED: answered as it is, and nothing recorded
        admin_pb2.SetActivityStatusRequest(activity_id="CCF-TERM-01", status=admin_pb2.ACTIVITY_STATUS_SUSPENDED),
        metadata=admin.metadata,
        timeout=10,
    )
    assert again.status == admin_pb2.ACTIVITY_STATUS_SUSPENDED
    assert [e.seq for e in audit.events(ACTIVITY_STATUS_SET)] == [event.seq]
    with pytest.raises(grpc.RpcError) as refused:  # no such activity: refused, and nothing recorded
        admin.admin.SetActivityStatus(
            admin_pb2.SetActivityStatusRequest(activity_id="NO-SUCH", status=admin_pb2.ACTIVITY_STATUS_REVOKED),
            metadata=admin.metadata,
            timeout=10,
        )
    assert refused.value.code() == grpc.StatusCode.NOT_FOUND
    assert [e.seq for e in audit.events(ACTIVITY_STATUS_SET)] == [event.seq]
    registry = index.registry
    assert registry.activity("CCF-TERM-01").status is Status.SUSPENDED
    registry.close()
    assert audit.verify().ok


def test_the_demo_bootstrap_records_whom_it_accredits(tmp_path: Path) -> None:
    # `dcii serve --demo` accredited four activities (an administrator among them) with no event at all.
    from dcii.cli.bootstrap import DEMO_ACTIVITIES, bootstrap

    bootstrap(tmp_path / "data", tmp_path / "pki", port=1, count=10, seed=1)
    recorded = _events(tmp_path / "data")
    accredited = sorted(detail["activity"] for kind, actor, detail in recorded if kind == "ACTIVITY_ACCREDITED")
    assert accredited == sorted(a.activity_id for a in DEMO_ACTIVITIES)
    assert {kind for kind, _, _ in recorded} == {"ACTIVITY_ACCREDITED", "CERTIFICATE_ADDED", "OPERATOR_ADDED"}
    assert {actor for _, actor, _ in recorded} == {"demo bootstrap"}
    assert "intact" in _verified(tmp_path / "data")
