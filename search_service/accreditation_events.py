"""The audit trail's record of changes to who may use the index: activities accredited, certificates added or
revoked, activities' roles and purposes changed, activities and operators added, suspended, revoked or
reinstated.

Seed 002 has administrators accredit activities and issue and revoke their credentials; an auditor expects
each such change in the audit trail (search_service.accounting), with who made it and when (the entry's
actor and time). `KINDS` is the table of these events and of the fields of their detail. None of it is PII:
activity ids, agency codes, roles, purposes, statuses, account codes, and certificate fingerprints (SHA-256
of a public certificate). Never a password nor a person's name.

Each event is written inside the registry's transaction, after the change and before its commit (the
`record` hook of search_service.registry's administration methods): if the trail cannot be written, the
change is rolled back, so that no change is ever made without its event. Only the converse can happen, and
only when the registry's commit itself fails after the event is durable (a disk error): then the trail
holds one event too many, the safe side (as a disclosure accounted but not sent).

Actors: "cli:<OS user>" for `dcii accredit` at the server's console (dcii.cli.admin); the calling
"<activity>/<operator>" for the AdminService (`Caller.actor`, as the privacy office's events name theirs).
OPERATOR_DISABLED, the sweep of dormant accounts, is recorded by search_service.account_sweep.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from search_service.accounting import AuditLog
from search_service.accreditation import Purpose, Role, Status

ACTIVITY_ACCREDITED = "ACTIVITY_ACCREDITED"
CERTIFICATE_ADDED = "CERTIFICATE_ADDED"
CERTIFICATE_REVOKED = "CERTIFICATE_REVOKED"
ACTIVITY_ACCESS_SET = "ACTIVITY_ACCESS_SET"
ACTIVITY_STATUS_SET = "ACTIVITY_STATUS_SET"
OPERATOR_ADDED = "OPERATOR_ADDED"
OPERATOR_STATUS_SET = "OPERATOR_STATUS_SET"
OPERATOR_PASSWORD_SET = "OPERATOR_PASSWORD_SET"  # noqa: S105 (an event kind, not a password)

# Each kind, and the fields its detail holds (exactly these).
KINDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        ACTIVITY_ACCREDITED: ("activity", "agency", "roles", "purposes"),
        CERTIFICATE_ADDED: ("activity", "fingerprint"),
        CERTIFICATE_REVOKED: ("activity", "fingerprint"),
        ACTIVITY_ACCESS_SET: ("activity", "roles", "purposes"),  # the new ones (the trail holds the former)
        ACTIVITY_STATUS_SET: ("activity", "status"),
        OPERATOR_ADDED: ("account", "activity"),
        OPERATOR_STATUS_SET: ("account", "status"),
        OPERATOR_PASSWORD_SET: ("account",),  # that it changed, never the password
    }
)


@dataclass(frozen=True, slots=True)
class Change:
    """One change to the accreditations, as the audit trail records it."""

    kind: str
    detail: Mapping[str, str]

    def __post_init__(self) -> None:
        fields = KINDS.get(self.kind)
        if fields is None or sorted(fields) != sorted(self.detail):
            raise ValueError(f"an {self.kind} event's detail holds {fields}")

    def recorder(self, audit: AuditLog, actor: str) -> Callable[[], None]:
        """The registry's `record` hook that writes this change to `audit` (raises Unavailable if it cannot)."""
        return lambda: audit.record_event(self.kind, actor, self.detail)


def _names(values: Iterable[str]) -> str:
    return ",".join(sorted(values))  # as the registry keeps them


def accredited(activity_id: str, agency: str, roles: Iterable[Role], purposes: Iterable[Purpose]) -> Change:
    detail = {"activity": activity_id, "agency": agency, "roles": _names(roles), "purposes": _names(purposes)}
    return Change(ACTIVITY_ACCREDITED, detail)


def certificate_added(activity_id: str, fingerprint: str) -> Change:
    return Change(CERTIFICATE_ADDED, {"activity": activity_id, "fingerprint": fingerprint.lower()})


def certificate_revoked(activity_id: str, fingerprint: str) -> Change:
    return Change(CERTIFICATE_REVOKED, {"activity": activity_id, "fingerprint": fingerprint.lower()})


def access_set(activity_id: str, roles: Iterable[Role], purposes: Iterable[Purpose]) -> Change:
    return Change(ACTIVITY_ACCESS_SET, {"activity": activity_id, "roles": _names(roles), "purposes": _names(purposes)})


def activity_status_set(activity_id: str, status: Status) -> Change:
    return Change(ACTIVITY_STATUS_SET, {"activity": activity_id, "status": status.value})


def operator_added(account_code: str, activity_id: str) -> Change:
    return Change(OPERATOR_ADDED, {"account": account_code, "activity": activity_id})


def operator_status_set(account_code: str, status: Status) -> Change:
    return Change(OPERATOR_STATUS_SET, {"account": account_code, "status": status.value})


def operator_password_set(account_code: str) -> Change:
    return Change(OPERATOR_PASSWORD_SET, {"account": account_code})
