"""SessionService (operator login) and AdminService (accreditation over the wire)."""

from __future__ import annotations

import grpc

from dcii.v1 import admin_pb2, admin_pb2_grpc, search_pb2
from indexer.exc import FailedPrecondition, InvalidArgument
from indexer.model import Violation
from search_service import accreditation_events
from search_service.accounting import AuditLog
from search_service.accreditation import Activity, Role, Status
from search_service.auth import caller_of
from search_service.convert import timestamp
from search_service.peer_certificate import peer_fingerprint
from search_service.registry import Registry


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


class AdminServicer(admin_pb2_grpc.AdminServiceServicer):
    """Every change it makes is an event in `audit`, naming the calling administrator, written within the
    registry's transaction: a trail that cannot be written refuses the change, UNAVAILABLE
    (search_service.accreditation_events).

    It never suspends or revokes the calling administrator's own activity, nor the last active one holding
    ADMINISTRATOR (FAILED_PRECONDITION): either would lock the administrators out over the wire, and a revoke
    also revokes the activity's certificates, so that only the CA's key and `dcii accredit` on the server's
    machine could let them back in."""

    def __init__(self, registry: Registry, audit: AuditLog) -> None:
        self._registry = registry
        self._audit = audit

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
        change = accreditation_events.activity_status_set(request.activity_id, status)
        record = change.recorder(self._audit, caller.actor)

        def record_unless_no_administrator_is_left() -> None:
            # Inside the registry's write transaction, after the change: what it reads is what would be
            # committed, and no other change can come between. Two administrators revoking each other at
            # once passed the caller check each; the second one is refused here.
            if status is not Status.ACTIVE and not any(
                a.status is Status.ACTIVE and Role.ADMINISTRATOR in a.roles and a.fingerprints
                for a in self._registry.list_activities()
            ):
                raise FailedPrecondition(
                    f"making {request.activity_id} {status.value} would leave no active ADMINISTRATOR activity with"
                    " a certificate, locking every administrator out (`dcii accredit` on the server's machine can)"
                )
            record()

        changed = self._registry.set_activity_status(
            request.activity_id, status, record=record_unless_no_administrator_is_left
        )
        return activity_out(changed)
