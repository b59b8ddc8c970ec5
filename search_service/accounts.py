"""SessionService (operator login) and AdminService (accreditation over the wire)."""

from __future__ import annotations

import re
from collections.abc import Callable

import grpc

from dcii.v1 import admin_pb2, admin_pb2_grpc, search_pb2
from indexer.exc import FailedPrecondition, InvalidArgument
from indexer.model import Violation
from search_service import accreditation_events
from search_service.accounting import AuditLog
from search_service.accreditation import Activity, Purpose, Role, Status
from search_service.auth import caller_of
from search_service.convert import enum_name, timestamp
from search_service.peer_certificate import peer_fingerprint
from search_service.registry import Registry
from search_service.registry_rows import CertificateRow


def activity_out(activity: Activity) -> admin_pb2.Activity:
    return admin_pb2.Activity(
        activity_id=activity.activity_id,
        agency=activity.agency,
        roles=[admin_pb2.Role.Value(f"ROLE_{r.value}") for r in sorted(activity.roles)],
        purposes=[search_pb2.Purpose.Value(f"PURPOSE_{p.value}") for p in sorted(activity.purposes)],
        status=admin_pb2.ActivityStatus.Value(f"ACTIVITY_STATUS_{activity.status.value}"),
        certificate_fingerprints=list(activity.fingerprints),
    )


class SessionServicer(admin_pb2_grpc.SessionServiceServicer):
    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    def Login(self, request: admin_pb2.LoginRequest, context: grpc.ServicerContext) -> admin_pb2.LoginResponse:  # noqa: N802
        violations = [
            Violation(field, "required")
            for field, value in (("account_code", request.account_code), ("password", request.password))
            if not value
        ]
        if violations:
            raise InvalidArgument(violations)
        session = self._registry.login(peer_fingerprint(context), request.account_code, request.password)
        return admin_pb2.LoginResponse(
            session_token=session.token,
            expires_at=timestamp(session.expires_at),
            activity_id=session.activity.activity_id,
            roles=[admin_pb2.Role.Value(f"ROLE_{r.value}") for r in sorted(session.activity.roles)],
        )

    def Logout(self, request: admin_pb2.LogoutRequest, context: grpc.ServicerContext) -> admin_pb2.LogoutResponse:  # noqa: N802
        token_hash = caller_of(context).session_token_hash
        if token_hash is not None:
            self._registry.logout(token_hash)
        return admin_pb2.LogoutResponse()


# The `dcii accredit activity` command that makes an activity each status but ACTIVE.
_VERB = {Status.SUSPENDED: "suspend", Status.REVOKED: "revoke"}

_HEX_FINGERPRINT = re.compile(r"[0-9a-f]{64}")


def _required(request: object, *fields: str) -> list[Violation]:
    return [Violation(field, "required") for field in fields if not getattr(request, field)]


def _members(wrapper: object, enum: type[Role] | type[Purpose], field: str, values: list[int]) -> list[Violation]:
    """A violation naming `field` for each wire number that is no member of `enum` (UNSPECIFIED, or a number
    this contract does not define: proto3 lets those through), as `dcii accredit` refuses an unknown name."""
    prefix = f"{enum.__name__.upper()}_"
    unknown = sorted({v for v in values if enum_name(wrapper, v).removeprefix(prefix) not in enum.__members__})
    choices = ", ".join(f"{prefix}{m}" for m in enum.__members__)
    return [Violation(field, f"unknown {enum.__name__.lower()} {v} (choose from {choices})") for v in unknown]


def _roles_in(values: list[int]) -> frozenset[Role]:
    return frozenset(Role(enum_name(admin_pb2.Role, v).removeprefix("ROLE_")) for v in values)


def _purposes_in(values: list[int]) -> frozenset[Purpose]:
    return frozenset(Purpose(enum_name(search_pb2.Purpose, v).removeprefix("PURPOSE_")) for v in values)


def certificate_out(row: CertificateRow) -> admin_pb2.Certificate:
    out = admin_pb2.Certificate(fingerprint=row.fingerprint, added_at=timestamp(row.added_at))
    if row.revoked_at is not None:
        out.revoked_at.CopyFrom(timestamp(row.revoked_at))
    return out


class AdminServicer(admin_pb2_grpc.AdminServiceServicer):
    """Every change it makes is an event in `audit`, naming the calling administrator, written within the
    registry's transaction: a trail that cannot be written refuses the change, UNAVAILABLE
    (search_service.accreditation_events). The changes are the registry's own, as `dcii accredit` makes them
    (dcii.cli.admin, dcii.cli.accredit_changes): the same rules, the same events.

    It never locks the calling administrator out (FAILED_PRECONDITION): it never suspends or revokes the
    caller's own activity, never takes ADMINISTRATOR from it, never revokes the certificate the call is made
    with, and never leaves no active activity holding ADMINISTRATOR with a certificate. Any of these would
    lock the administrators out over the wire, and a revoked certificate never comes back, so that only the
    CA's key and `dcii accredit` on the server's machine could let them back in. The caller's own certificate
    (a key it believes copied) is revoked by another administrator's terminal or at the console."""

    def __init__(self, registry: Registry, audit: AuditLog) -> None:
        self._registry = registry
        self._audit = audit

    def _unless_no_administrator_is_left(self, record: Callable[[], None], change: str) -> Callable[[], None]:
        """The registry's `record` hook: refuses the change (FailedPrecondition) if, once made, no active
        activity holds ADMINISTRATOR with a live certificate; records it otherwise.

        Inside the registry's write transaction, after the change: what it reads is what would be committed,
        and no other change can come between. Two administrators revoking each other at once passed the
        caller checks each; the second one is refused here."""

        def checked() -> None:
            if not any(
                a.status is Status.ACTIVE and Role.ADMINISTRATOR in a.roles and a.fingerprints
                for a in self._registry.list_activities()
            ):
                raise FailedPrecondition(
                    f"{change} would leave no active ADMINISTRATOR activity with a certificate, locking every"
                    " administrator out (`dcii accredit` on the server's machine can)"
                )
            record()

        return checked

    def ListActivities(  # noqa: N802
        self, request: admin_pb2.ListActivitiesRequest, context: grpc.ServicerContext
    ) -> admin_pb2.ListActivitiesResponse:
        return admin_pb2.ListActivitiesResponse(activities=[activity_out(a) for a in self._registry.list_activities()])

    def SetActivityStatus(  # noqa: N802
        self, request: admin_pb2.SetActivityStatusRequest, context: grpc.ServicerContext
    ) -> admin_pb2.Activity:
        name = admin_pb2.ActivityStatus.Name(request.status) if request.status in (1, 2, 3) else ""
        status = Status.__members__.get(name.removeprefix("ACTIVITY_STATUS_"))
        if status is None:
            raise InvalidArgument([Violation("status", "ACTIVE, SUSPENDED or REVOKED")])
        caller = caller_of(context)
        if status is not Status.ACTIVE and request.activity_id == caller.activity.activity_id:
            raise FailedPrecondition(
                f"an administrator cannot make its own activity {status.value}: another administrator can, or"
                f" `dcii accredit activity {_VERB[status]}` on the server's machine"
            )
        current = self._registry.activity(request.activity_id)  # NotFound "no activity X"
        if current.already(status):  # nothing to change, nothing recorded (as `dcii accredit activity`)
            return activity_out(current)
        record = accreditation_events.activity_status_set(request.activity_id, status).recorder(
            self._audit, caller.actor
        )
        if status is not Status.ACTIVE:
            record = self._unless_no_administrator_is_left(record, f"making {request.activity_id} {status.value}")
        changed = self._registry.set_activity_status(request.activity_id, status, record=record)
        return activity_out(changed)

    def SetActivityAccess(  # noqa: N802
        self, request: admin_pb2.SetActivityAccessRequest, context: grpc.ServicerContext
    ) -> admin_pb2.Activity:
        """`dcii accredit activity set` over the wire: a list left unset stays as it is."""
        given_roles, given_purposes = request.HasField("roles"), request.HasField("purposes")
        violations = _required(request, "activity_id")
        if not given_roles and not given_purposes:
            why = "set roles, purposes or both (each replaces what the activity has)"
            violations += [Violation("roles", why), Violation("purposes", why)]
        violations += _members(admin_pb2.Role, Role, "roles", list(request.roles.values))
        violations += _members(search_pb2.Purpose, Purpose, "purposes", list(request.purposes.values))
        if violations:
            raise InvalidArgument(violations)
        current = self._registry.activity(request.activity_id)  # NotFound "no activity X"
        roles = _roles_in(list(request.roles.values)) if given_roles else current.roles
        purposes = _purposes_in(list(request.purposes.values)) if given_purposes else current.purposes
        caller = caller_of(context)
        if current.activity_id == caller.activity.activity_id and Role.ADMINISTRATOR not in roles:
            raise FailedPrecondition(
                "an administrator cannot take ADMINISTRATOR from its own activity: another administrator can, or"
                " `dcii accredit activity set` on the server's machine"
            )
        record = accreditation_events.access_set(current.activity_id, roles, purposes).recorder(
            self._audit, caller.actor
        )
        # Always, not only when `current` had ADMINISTRATOR: it was read before the transaction.
        record = self._unless_no_administrator_is_left(record, f"changing {current.activity_id}'s roles")
        changed = self._registry.set_activity_access(current.activity_id, roles, purposes, record=record)
        return activity_out(changed)

    def RevokeCertificate(  # noqa: N802
        self, request: admin_pb2.RevokeCertificateRequest, context: grpc.ServicerContext
    ) -> admin_pb2.Activity:
        """`dcii accredit activity revoke-cert` over the wire: the certificate's sessions end with it."""
        fingerprint = request.fingerprint.replace(":", "").strip().lower()
        violations = _required(request, "activity_id", "fingerprint")
        if request.fingerprint and not _HEX_FINGERPRINT.fullmatch(fingerprint):
            violations.append(Violation("fingerprint", "a SHA-256 fingerprint: 64 hex digits (colons allowed)"))
        if violations:
            raise InvalidArgument(violations)
        self._registry.activity(request.activity_id)  # a mistyped id: "no activity X", not "no such certificate"
        caller = caller_of(context)
        if fingerprint == caller.fingerprint.lower():
            raise FailedPrecondition(
                "an administrator cannot revoke the certificate it is calling with: another administrator's"
                " terminal can, or `dcii accredit activity revoke-cert` on the server's machine"
            )
        record = accreditation_events.certificate_revoked(request.activity_id, fingerprint).recorder(
            self._audit, caller.actor
        )
        record = self._unless_no_administrator_is_left(record, "revoking that certificate")
        self._registry.revoke_certificate(fingerprint, activity_id=request.activity_id, record=record)
        return activity_out(self._registry.activity(request.activity_id))

    def ListCertificates(  # noqa: N802
        self, request: admin_pb2.ListCertificatesRequest, context: grpc.ServicerContext
    ) -> admin_pb2.ListCertificatesResponse:
        """`dcii accredit activity certs`: revoked ones too, with when each was added and revoked (the
        Activity names only the live ones, and not since when)."""
        if not request.activity_id:
            raise InvalidArgument([Violation("activity_id", "required")])
        rows = self._registry.certificates(request.activity_id)  # NotFound "no activity X"
        return admin_pb2.ListCertificatesResponse(certificates=[certificate_out(row) for row in rows])
