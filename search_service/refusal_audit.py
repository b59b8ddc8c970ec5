"""What the audit trail records of a refusal (a REFUSAL event) and of the lock that failed logins set (an
OPERATOR_LOCKED event): enough for an auditor to reconstruct a password-guessing attack, a lockout, or an
activity writing another agency's tracings, and no PII.

A REFUSAL's actor is the caller as far as it was known when refused: "<activity>/<operator>" once the
certificate's activity was found ("-" for the operator before a login), as other events name theirs
(`Caller.actor`), the certificate's fingerprint otherwise ("no-certificate" without one). Its detail holds
the method and the reason (the server's own words), and where they apply: `certificate`, the fingerprint,
when the actor is the activity's (which of its terminals); `account`, the account code a refused login
tried when such an account exists, else "unknown <keyed hash of what was typed>"; `target`, the tracings
(agency/record_number) an ingest action was refused on; `count`, for a call refused in part (a stream's
actions, a batch's queries).

What a client sent (an account code, a tracing key) is recorded through `printable`: capped and without
control characters, so that a client cannot write arbitrary text, nor forge lines, into the trail or the
`dcii audit events` listing. A password is never recorded.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from indexer.exc import PermissionDenied
from search_service.accounting import AuditLog
from search_service.accreditation import Caller

REFUSAL = "REFUSAL"
OPERATOR_LOCKED = "OPERATOR_LOCKED"
# A lock is the rule's doing (five failed logins), not an operator's: named as the dormancy sweep names its
# own (search_service.account_sweep); the REFUSAL events just before it name the terminal that guessed.
LOCK_ACTOR = "registry"

# Longer than any account code issued, and than any tracing key (an agency code, "/", a record number of at
# most 40 characters).
TEXT_LIMIT = 64
# Tracings named in one event of a stream's refused actions: they come at most once a second with their
# count; a stream of a thousand refused deletes a second must not make each event a thousand keys long.
TARGETS_LIMIT = 20


def printable(text: str, limit: int = TEXT_LIMIT) -> str:
    """`text` as a client's words may enter the trail: each character that does not print (a newline, an
    escape, a bidirectional override) as "?", cut to `limit` characters ("..." marks the cut)."""
    shown = "".join(c if c.isprintable() else "?" for c in text[: limit + 1])
    return shown if len(shown) <= limit else shown[:limit] + "..."


class TracingRefused(PermissionDenied):
    """PermissionDenied for an action on a tracing the caller may not change (another agency's), naming the
    tracing for the audit trail (`target`, agency/record_number: the trail's disclosures name tracings so,
    none of it PII); the caller hears only the message."""

    def __init__(self, message: str, target: str) -> None:
        super().__init__(message)
        self.target = target


@dataclass(frozen=True, slots=True)
class RefusedCall:
    """One refusal, as the REFUSAL event records it (see the module's docstring)."""

    method: str
    fingerprint: str
    reason: str
    caller: Caller | None = None
    account: str | None = None  # what a refused login named as its account code (never its password)
    targets: Sequence[str] = ()
    count: int | None = None
    # Whether `account` names an existing account (any activity's). One that does not is recorded by its
    # keyed hash: an operator who typed the password into the account field by mistake left it, in clear,
    # for the trail's five years and every reader of `dcii audit events` (a security review).
    account_exists: bool = True

    @property
    def actor(self) -> str:
        if self.caller is not None:
            return self.caller.actor
        return self.fingerprint or "no-certificate"

    def detail(self, typed_ref: Callable[[str], str] | None = None) -> dict[str, str]:
        """The event's detail; `typed_ref` names an unknown account by its keyed hash (AuditLog.typed_ref)."""
        detail = {"method": self.method, "reason": self.reason}
        if self.caller is not None:
            detail["certificate"] = self.fingerprint
        if self.account is not None and self.account_exists:
            detail["account"] = printable(self.account)  # the account attacked: it tells an auditor whose
        elif self.account is not None:
            detail["account"] = f"unknown {typed_ref(self.account) if typed_ref else ''}".strip()
        if self.targets:
            detail["target"] = ",".join(printable(t) for t in self.targets[:TARGETS_LIMIT])
        if self.count is not None:
            detail["count"] = str(self.count)
        return detail

    def record(self, audit: AuditLog) -> None:
        """Write the REFUSAL event (raises Unavailable if the trail cannot take it)."""
        audit.record_event(REFUSAL, self.actor, self.detail(audit.typed_ref))


class OnRefusalInCall(Protocol):
    """Records what a call refuses part of (ingest's and the batch service's `on_refusal`): the caller, the
    method, the reason, how many, and the tracings targeted (ingest only)."""

    def __call__(self, caller: Caller, method: str, reason: str, count: int, targets: Sequence[str] = ()) -> None: ...


def record_locked(audit: AuditLog, account_code: str, until: dt.datetime) -> None:
    """The OPERATOR_LOCKED event of an account that failed logins locked until `until` (one per lock)."""
    audit.record_event(OPERATOR_LOCKED, LOCK_ACTOR, {"account": account_code, "until": until.isoformat()})
