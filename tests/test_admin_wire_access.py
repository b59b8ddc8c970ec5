"""AdminService's SetActivityAccess, RevokeCertificate and ListCertificates: `dcii accredit activity set`,
`revoke-cert` and `certs` for an administrator at a remote terminal. The same rules and the same audit events
as the CLI (its actor the calling activity and operator), refusals naming the field, only an ADMINISTRATOR
with an operator session (others refused and the refusal recorded), and never an administrator locked out by
its own call. A real server, real mutual TLS."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import grpc
import pytest

from dcii.v1 import admin_pb2, search_pb2
from indexer.exc import FailedPrecondition
from search_service import pki
from search_service.accounting import AuditLog, load_or_create_key
from search_service.accounts import AdminServicer
from search_service.accreditation import Caller, Purpose, Role, Status
from search_service.accreditation_events import ACTIVITY_ACCESS_SET, CERTIFICATE_REVOKED
from search_service.auth import CallerContext
from search_service.errors import field_violations
from search_service.refusal_audit import REFUSAL
from search_service.registry import Registry
from tests import factories as f
from tests.support import Client, Index

SERVICE = "/dcii.v1.AdminService"
ADMIN_ACTOR = "DSS-ADMIN/dss-admin-op"
Code = grpc.StatusCode


def _refused(call: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as refused:
        call()
    return refused.value


def _ask(client: Client, purpose: search_pb2.Purpose.ValueType = search_pb2.PURPOSE_SECURITY_CLEARANCE) -> int:
    answer = client.search(
        mode=search_pb2.SEARCH_MODE_EXACT,
        name={"surname": "Whitfield", "given_name": "Harold"},
        identifiers={"ssn": "318-52-4471"},
        purpose=purpose,
    )
    return len(answer.hits)


def _events(index: Index, kind: str) -> list[tuple[str, dict[str, str]]]:
    assert index.running is not None
    return [(e.actor, dict(e.detail)) for e in index.running.audit.events(kind)]


def _access(
    admin: Client,
    activity_id: str,
    roles: Sequence[int] | None = None,
    purposes: Sequence[int] | None = None,
) -> admin_pb2.Activity:
    request = admin_pb2.SetActivityAccessRequest(activity_id=activity_id)
    if roles is not None:
        request.roles.SetInParent()
        request.roles.values.extend(roles)  # type: ignore[arg-type]
    if purposes is not None:
        request.purposes.SetInParent()
        request.purposes.values.extend(purposes)  # type: ignore[arg-type]
    return admin.admin.SetActivityAccess(request, metadata=admin.metadata, timeout=10)


def _revoke(admin: Client, activity_id: str, fingerprint: str) -> admin_pb2.Activity:
    request = admin_pb2.RevokeCertificateRequest(activity_id=activity_id, fingerprint=fingerprint)
    return admin.admin.RevokeCertificate(request, metadata=admin.metadata, timeout=10)


def _certs(admin: Client, activity_id: str) -> list[admin_pb2.Certificate]:
    request = admin_pb2.ListCertificatesRequest(activity_id=activity_id)
    return list(admin.admin.ListCertificates(request, metadata=admin.metadata, timeout=10).certificates)


def _activity(index: Index, activity_id: str) -> tuple[frozenset[Role], frozenset[Purpose], tuple[str, ...]]:
    registry = index.registry
    try:
        found = registry.activity(activity_id)
        return found.roles, found.purposes, found.fingerprints
    finally:
        registry.close()


def test_access_set_over_the_wire_takes_effect_at_the_next_call_and_is_recorded(index: Index) -> None:
    admin = index.client("DSS-ADMIN", "DSS", [Role.ADMINISTRATOR], purposes=[])
    index.client("NCIS-SUB", "NCIS", [Role.SUBMITTER]).upsert(f.person(record="NCIS-1"))
    terminal = index.client("CCF-1", "ARMY-CCF", [Role.QUERIER], purposes=[Purpose.SECURITY_CLEARANCE])
    assert _ask(terminal) == 1
    assert _refused(lambda: _ask(terminal, search_pb2.PURPOSE_INSTALLATION_ACCESS)).code() == Code.PERMISSION_DENIED

    both = [search_pb2.PURPOSE_SECURITY_CLEARANCE, search_pb2.PURPOSE_INSTALLATION_ACCESS]
    answer = _access(admin, "CCF-1", purposes=both)  # its roles kept
    assert answer.activity_id == "CCF-1" and list(answer.roles) == [admin_pb2.ROLE_QUERIER]
    assert sorted(answer.purposes) == sorted(both)
    assert _ask(terminal, search_pb2.PURPOSE_INSTALLATION_ACCESS) == 1  # the same session: no new login

    answer = _access(admin, "CCF-1", roles=[admin_pb2.ROLE_BATCH, admin_pb2.ROLE_BATCH])  # its purposes kept
    assert list(answer.roles) == [admin_pb2.ROLE_BATCH] and sorted(answer.purposes) == sorted(both)
    assert _refused(lambda: _ask(terminal)).code() == Code.PERMISSION_DENIED

    assert _events(index, ACTIVITY_ACCESS_SET) == [  # as `dcii accredit activity set` records them
        (ADMIN_ACTOR, {"activity": "CCF-1", "roles": "QUERIER", "purposes": "INSTALLATION_ACCESS,SECURITY_CLEARANCE"}),
        (ADMIN_ACTOR, {"activity": "CCF-1", "roles": "BATCH", "purposes": "INSTALLATION_ACCESS,SECURITY_CLEARANCE"}),
    ]
    # An activity that asks nothing may have no purpose at all: set, and empty.
    answer = _access(admin, "NCIS-SUB", purposes=[])
    assert list(answer.purposes) == [] and list(answer.roles) == [admin_pb2.ROLE_SUBMITTER]


def test_what_could_never_work_is_refused_naming_the_field_and_nothing_changes(index: Index) -> None:
    admin = index.client("DSS-ADMIN", "DSS", [Role.ADMINISTRATOR])
    index.accredit("CCF-2", "OPM", [Role.QUERIER], [Purpose.SECURITY_CLEARANCE])
    registry = index.registry
    registry.add_activity("PEER-B", "DSS", [Role.PEER], [])
    registry.close()
    querier, peer, sc = admin_pb2.ROLE_QUERIER, admin_pb2.ROLE_PEER, search_pb2.PURPOSE_SECURITY_CLEARANCE
    cases: list[tuple[Callable[[], object], Code, list[str], str]] = [
        (lambda: _access(admin, "CCF-2"), Code.INVALID_ARGUMENT, ["roles", "purposes"], "set roles, purposes or"),
        (lambda: _access(admin, "", roles=[querier]), Code.INVALID_ARGUMENT, ["activity_id"], "required"),
        (lambda: _access(admin, "CCF-2", roles=[]), Code.INVALID_ARGUMENT, ["roles"], "at least one"),
        (lambda: _access(admin, "CCF-2", purposes=[]), Code.INVALID_ARGUMENT, ["purposes"], "QUERIER or BATCH"),
        (
            lambda: _access(admin, "CCF-2", roles=[admin_pb2.ROLE_SUBMITTER]),
            Code.INVALID_ARGUMENT,
            ["roles"],
            "a SUBMITTER writes its own agency's tracings, and OPM owns none",
        ),
        (lambda: _access(admin, "CCF-2", roles=[querier, peer]), Code.INVALID_ARGUMENT, ["roles"], "PEER is an"),
        (lambda: _access(admin, "PEER-B", roles=[querier]), Code.INVALID_ARGUMENT, ["roles"], "PEER is an"),
        (lambda: _access(admin, "PEER-B", roles=[peer, querier]), Code.INVALID_ARGUMENT, ["roles"], "no other role"),
        (lambda: _access(admin, "PEER-B", purposes=[sc]), Code.INVALID_ARGUMENT, ["purposes"], "no purpose"),
        (lambda: _access(admin, "CCF-2", roles=[0]), Code.INVALID_ARGUMENT, ["roles"], "unknown role 0"),
        (lambda: _access(admin, "CCF-2", roles=[querier, 99]), Code.INVALID_ARGUMENT, ["roles"], "unknown role 99"),
        (lambda: _access(admin, "CCF-2", purposes=[0]), Code.INVALID_ARGUMENT, ["purposes"], "unknown purpose 0"),
        (lambda: _access(admin, "CCF-2", purposes=[77]), Code.INVALID_ARGUMENT, ["purposes"], "unknown purpose 77"),
        (lambda: _access(admin, "NOPE", roles=[querier]), Code.NOT_FOUND, [], "no activity NOPE"),
    ]
    for number, (call, code, fields, why) in enumerate(cases):
        error = _refused(call)
        violations = field_violations(error)
        assert (error.code(), [field for field, _ in violations]) == (code, fields), (number, error.details())
        assert why in " ".join([error.details() or "", *(text for _, text in violations)]), (number, violations)
    assert _activity(index, "CCF-2")[:2] == (frozenset({Role.QUERIER}), frozenset({Purpose.SECURITY_CLEARANCE}))
    assert _activity(index, "PEER-B")[:2] == (frozenset({Role.PEER}), frozenset())
    assert _events(index, ACTIVITY_ACCESS_SET) == []


def test_one_certificate_revoked_over_the_wire_ends_its_sessions_and_leaves_the_others(index: Index) -> None:
    admin = index.client("DSS-ADMIN", "DSS", [Role.ADMINISTRATOR])
    index.client("NCIS-SUB", "NCIS", [Role.SUBMITTER]).upsert(f.person(record="NCIS-1"))
    lost, account, password = index.accredit("CCF-3", "ARMY-CCF", [Role.QUERIER], [Purpose.SECURITY_CLEARANCE])
    kept = pki.issue_client_cert(index.ca, "CCF-3", "ARMY-CCF")
    registry = index.registry
    registry.add_certificate("CCF-3", kept.fingerprint)
    registry.close()
    on_lost, on_kept = index.connect(lost), index.connect(kept)
    on_lost.login(account, password)
    on_kept.login(account, password)
    assert _ask(on_lost) == 1 and _ask(on_kept) == 1

    printed = ":".join(lost.fingerprint[i : i + 2] for i in range(0, 64, 2)).upper()  # as openssl prints it
    answer = _revoke(admin, "CCF-3", printed)
    assert answer.activity_id == "CCF-3" and list(answer.certificate_fingerprints) == [kept.fingerprint]
    assert _refused(lambda: _ask(on_lost)).code() == Code.PERMISSION_DENIED  # at once, without a restart
    assert _refused(lambda: on_lost.login(account, password)).code() == Code.PERMISSION_DENIED
    assert _ask(on_kept) == 1  # the same operator's session on the other terminal goes on

    again = _refused(lambda: _revoke(admin, "CCF-3", lost.fingerprint))
    assert again.code() == Code.FAILED_PRECONDITION and "was revoked on" in (again.details() or "")
    other = index.accredit("CCF-4", "ARMY-CCF", [Role.QUERIER], [Purpose.SECURITY_CLEARANCE])[0]
    theirs = _refused(lambda: _revoke(admin, "CCF-3", other.fingerprint))
    assert (theirs.code(), theirs.details()) == (Code.NOT_FOUND, "no such certificate of activity CCF-3")
    unknown = _refused(lambda: _revoke(admin, "CCF-3", "ab" * 32))
    assert unknown.code() == Code.NOT_FOUND
    mistyped = _refused(lambda: _revoke(admin, "CCF-33", lost.fingerprint))
    assert (mistyped.code(), mistyped.details()) == (Code.NOT_FOUND, "no activity CCF-33")
    for fingerprint, fields in (("nonsense", ["fingerprint"]), ("", ["fingerprint"])):
        bad = _refused(lambda: _revoke(admin, "CCF-3", fingerprint))  # noqa: B023 (called at once)
        assert (bad.code(), [field for field, _ in field_violations(bad)]) == (Code.INVALID_ARGUMENT, fields)
    assert _ask(on_kept) == 1

    assert _events(index, CERTIFICATE_REVOKED) == [
        (ADMIN_ACTOR, {"activity": "CCF-3", "fingerprint": lost.fingerprint})
    ]
    last = _revoke(admin, "CCF-3", kept.fingerprint)  # its last one: the answer shows it has none
    assert list(last.certificate_fingerprints) == []
    assert _refused(lambda: _ask(on_kept)).code() == Code.PERMISSION_DENIED


def test_the_certificates_listed_show_the_revoked_ones_and_when(index: Index) -> None:
    # The Activity names only the live certificates, without dates: `dcii accredit activity certs` shows
    # the revoked ones too, and when each was added and revoked. So does ListCertificates.
    admin = index.client("DSS-ADMIN", "DSS", [Role.ADMINISTRATOR])
    lost = index.accredit("CCF-5", "ARMY-CCF", [Role.QUERIER], [Purpose.SECURITY_CLEARANCE])[0]
    kept = pki.issue_client_cert(index.ca, "CCF-5", "ARMY-CCF")
    registry = index.registry
    registry.add_certificate("CCF-5", kept.fingerprint)
    registry.close()
    _revoke(admin, "CCF-5", lost.fingerprint)
    listed = _certs(admin, "CCF-5")
    assert [c.fingerprint for c in listed] == [lost.fingerprint, kept.fingerprint]  # in the order added
    assert all(c.HasField("added_at") for c in listed)
    assert [c.HasField("revoked_at") for c in listed] == [True, False]
    assert listed[0].revoked_at.ToDatetime() >= listed[0].added_at.ToDatetime()
    missing = _refused(lambda: _certs(admin, "CCF-55"))
    assert (missing.code(), missing.details()) == (Code.NOT_FOUND, "no activity CCF-55")
    empty = _refused(lambda: _certs(admin, ""))
    assert (empty.code(), field_violations(empty)) == (Code.INVALID_ARGUMENT, [("activity_id", "required")])


def test_only_an_administrator_with_a_session_may_call_and_a_refusal_is_recorded(index: Index) -> None:
    index.client("DSS-ADMIN", "DSS", [Role.ADMINISTRATOR])
    querier = index.client("CCF-6", "ARMY-CCF", [Role.QUERIER], purposes=[Purpose.SECURITY_CLEARANCE])
    cert = index.accredit("DSS-ADMIN-2", "DSS", [Role.ADMINISTRATOR])[0]
    no_session = index.connect(cert)  # an administrator's terminal, no operator logged in
    calls: list[tuple[str, Callable[[Client], object]]] = [
        ("SetActivityAccess", lambda c: _access(c, "CCF-6", roles=[admin_pb2.ROLE_ADMINISTRATOR])),
        ("RevokeCertificate", lambda c: _revoke(c, "DSS-ADMIN", "ab" * 32)),
        ("ListCertificates", lambda c: _certs(c, "DSS-ADMIN")),
    ]
    for _method, call in calls:
        assert _refused(lambda: call(querier)).code() == Code.PERMISSION_DENIED  # noqa: B023
        assert _refused(lambda: call(no_session)).code() == Code.UNAUTHENTICATED  # noqa: B023
    refusals = [(actor, detail["method"]) for actor, detail in _events(index, REFUSAL)]
    for method, _call in calls:
        assert ("CCF-6/ccf-6-op", f"{SERVICE}/{method}") in refusals
        assert (cert.fingerprint, f"{SERVICE}/{method}") in refusals  # no session: named by its certificate
    assert _activity(index, "CCF-6")[0] == frozenset({Role.QUERIER})
    assert _events(index, ACTIVITY_ACCESS_SET) == [] and _events(index, CERTIFICATE_REVOKED) == []


def test_an_administrator_cannot_lock_itself_out_over_the_wire(index: Index) -> None:
    cert, account, password = index.accredit("DSS-ADMIN", "DSS", [Role.ADMINISTRATOR])
    admin = index.connect(cert)
    admin.login(account, password)
    other_terminal = pki.issue_client_cert(index.ca, "DSS-ADMIN", "DSS")
    registry = index.registry
    registry.add_certificate("DSS-ADMIN", other_terminal.fingerprint)
    registry.close()

    # ADMINISTRATOR taken from its own activity: refused, nothing changed, nothing recorded.
    for roles in ([admin_pb2.ROLE_QUERIER], [admin_pb2.ROLE_PRIVACY_OFFICER, admin_pb2.ROLE_QUERIER]):
        refused = _refused(lambda: _access(admin, "DSS-ADMIN", roles=roles))  # noqa: B023
        assert refused.code() == Code.FAILED_PRECONDITION
        assert "cannot take ADMINISTRATOR from its own activity" in (refused.details() or "")
    # The certificate it is calling with: refused; it still works.
    own = _refused(lambda: _revoke(admin, "DSS-ADMIN", cert.fingerprint.upper()))
    assert own.code() == Code.FAILED_PRECONDITION
    assert "cannot revoke the certificate it is calling with" in (own.details() or "")
    assert _activity(index, "DSS-ADMIN") == (
        frozenset({Role.ADMINISTRATOR}),
        frozenset(Purpose),
        (cert.fingerprint, other_terminal.fingerprint),
    )
    assert _events(index, ACTIVITY_ACCESS_SET) == [] and _events(index, CERTIFICATE_REVOKED) == []

    # What keeps ADMINISTRATOR on its own activity, and its other terminal's certificate, it may change.
    answer = _access(admin, "DSS-ADMIN", roles=[admin_pb2.ROLE_ADMINISTRATOR, admin_pb2.ROLE_QUERIER])
    assert sorted(answer.roles) == [admin_pb2.ROLE_QUERIER, admin_pb2.ROLE_ADMINISTRATOR]
    assert list(_revoke(admin, "DSS-ADMIN", other_terminal.fingerprint).certificate_fingerprints) == [cert.fingerprint]
    assert [c.fingerprint for c in _certs(admin, "DSS-ADMIN")] == [cert.fingerprint, other_terminal.fingerprint]

    # Another administrator may do either to it; then it is refused at its next call.
    second = index.client("DSS-ADMIN-2", "DSS", [Role.ADMINISTRATOR])
    _access(second, "DSS-ADMIN", roles=[admin_pb2.ROLE_QUERIER])
    assert _refused(lambda: _certs(admin, "DSS-ADMIN")).code() == Code.PERMISSION_DENIED
    _revoke(second, "DSS-ADMIN", cert.fingerprint)
    assert _refused(lambda: _certs(admin, "DSS-ADMIN")).code() == Code.PERMISSION_DENIED
    assert [actor for actor, _ in _events(index, ACTIVITY_ACCESS_SET)] == [ADMIN_ACTOR, "DSS-ADMIN-2/dss-admin-2-op"]


def test_no_change_leaves_no_administrator_even_when_two_cross(tmp_path: Path) -> None:
    """Two administrators each take ADMINISTRATOR from, or revoke the certificate of, the other at once: each
    passed its caller check (the other activity, not its own). The second change, made in the registry's
    transaction, would leave no administrator: refused there, nothing changed and nothing recorded."""
    registry = Registry(tmp_path / "registry.db")
    audit = AuditLog(tmp_path / "audit.db", key=load_or_create_key(tmp_path / "audit.key"))
    for activity_id, fingerprint in (("ADMIN-A", "a" * 64), ("ADMIN-B", "b" * 64)):
        registry.add_activity(activity_id, "DSS", [Role.ADMINISTRATOR], [])
        registry.add_certificate(activity_id, fingerprint)
    servicer = AdminServicer(registry, audit)
    # A's call was authorized before B's change came: B has taken ADMINISTRATOR from A meanwhile.
    as_a = Caller(registry.activity("ADMIN-A"), "a" * 64, "a-op", "hash")
    context = CallerContext(None, as_a, lambda: as_a)  # type: ignore[arg-type]
    registry.set_activity_access("ADMIN-A", [Role.QUERIER], [Purpose.SECURITY_CLEARANCE])
    try:
        with pytest.raises(FailedPrecondition, match="would leave no active ADMINISTRATOR activity"):
            servicer.SetActivityAccess(
                admin_pb2.SetActivityAccessRequest(
                    activity_id="ADMIN-B", roles=admin_pb2.RoleList(values=[admin_pb2.ROLE_PRIVACY_OFFICER])
                ),
                context,  # type: ignore[arg-type]
            )
        with pytest.raises(FailedPrecondition, match="would leave no active ADMINISTRATOR activity"):
            servicer.RevokeCertificate(
                admin_pb2.RevokeCertificateRequest(activity_id="ADMIN-B", fingerprint="b" * 64),
                context,  # type: ignore[arg-type]
            )
        kept = registry.activity("ADMIN-B")
        assert (kept.roles, kept.fingerprints, kept.status) == (
            frozenset({Role.ADMINISTRATOR}),
            ("b" * 64,),
            Status.ACTIVE,
        )
        assert audit.events(ACTIVITY_ACCESS_SET) == [] and audit.events(CERTIFICATE_REVOKED) == []
    finally:
        audit.close()
        registry.close()
