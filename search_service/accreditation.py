"""Accreditation's vocabulary: roles, purposes, statuses, and the activity, operator, caller and session
values the registry hands out.

Separate from search_service.registry (the SQLite file that stores them) because most of the server only
reads these values, to decide what a caller may do, and has no business with the file: auth, search,
ingest, batch and privacy import them from here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    SUBMITTER = "SUBMITTER"
    QUERIER = "QUERIER"
    BATCH = "BATCH"
    PRIVACY_OFFICER = "PRIVACY_OFFICER"
    ADMINISTRATOR = "ADMINISTRATOR"
    # Another instance of the deployment (search_service.peers): PeerService only, without an operator.
    PEER = "PEER"


class Purpose(StrEnum):
    SECURITY_CLEARANCE = "SECURITY_CLEARANCE"
    INSTALLATION_ACCESS = "INSTALLATION_ACCESS"
    MILITARY_ACCESSION = "MILITARY_ACCESSION"
    SENSITIVE_POSITION = "SENSITIVE_POSITION"
    CRIMINAL_INVESTIGATION = "CRIMINAL_INVESTIGATION"
    COUNTERINTELLIGENCE = "COUNTERINTELLIGENCE"
    PRIVACY_ACT_REQUEST = "PRIVACY_ACT_REQUEST"


class Status(StrEnum):
    ACTIVE = "ACTIVE"
    SUSPENDED = "SUSPENDED"
    REVOKED = "REVOKED"


@dataclass(frozen=True, slots=True)
class Activity:
    activity_id: str
    agency: str
    roles: frozenset[Role]
    purposes: frozenset[Purpose]
    status: Status
    fingerprints: tuple[str, ...] = ()  # its live certificates

    def already(self, status: Status) -> bool:
        """Whether making it `status` changes nothing (`dcii accredit activity suspend|revoke|reinstate` and
        AdminService.SetActivityStatus then record nothing): it has that status, and is not REVOKED with a
        certificate added since (a revoke revokes that one)."""
        return self.status is status and not (status is Status.REVOKED and self.fingerprints)


@dataclass(frozen=True, slots=True)
class Operator:
    account_code: str
    activity_id: str
    status: Status
    last_login_at: dt.datetime | None
    locked_until: dt.datetime | None


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: the activity behind the certificate and, once logged in, the operator."""

    activity: Activity
    fingerprint: str
    operator: str | None = None
    session_token_hash: str | None = None

    @property
    def actor(self) -> str:
        """How the audit trail names this caller in an event: "<activity>/<operator>" ("-" before login)."""
        return f"{self.activity.activity_id}/{self.operator or '-'}"


@dataclass(frozen=True, slots=True)
class Session:
    token: str
    expires_at: dt.datetime
    activity: Activity
