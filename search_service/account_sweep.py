"""The sweep of dormant operator accounts (seed 001: accounts unused for three years are removed).

`Registry.login` refuses and disables such an account when someone tries it (recorded alike while the
sweep runs: `Registry.on_disabled`), but an account nobody tries would stay ACTIVE for ever, in `dcii
accredit operator list` and in any session it still held. The sweep disables every one of them
(`Registry.disable_dormant_operators`) and records each disabling in the audit trail as an OPERATOR_DISABLED
event (actor "registry": the rule did it, not an operator). It runs:

- in the server: once as it starts, before it serves, then hourly (`AccountSweep`, which also deletes the
  sessions ended or expired);
- in `dcii accredit operator list`, so that the list shows the truth (`sweep_with_trail_at`).

The events are written inside the registry's transaction, before its commit: if the trail cannot be
written, no account is disabled this time (the login check still refuses them) and the next sweep tries
again, so no disabling is ever missing from the trail. Account codes are not PII.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from search_service.accounting import AuditLog, load_or_create_key
from search_service.registry import Registry

log = logging.getLogger(__name__)

DISABLED_EVENT = "OPERATOR_DISABLED"
SWEEP_ACTOR = "registry"
SWEEP_REASON = "unused for three years"
HOUR = 3600.0


def record_disabled(audit: AuditLog, accounts: list[str]) -> None:
    """One OPERATOR_DISABLED event per account (raises Unavailable if the trail cannot take them)."""
    for account in accounts:
        audit.record_event(DISABLED_EVENT, SWEEP_ACTOR, {"account": account, "reason": SWEEP_REASON})


def sweep(registry: Registry, audit: AuditLog) -> list[str]:
    """Disable the dormant operator accounts and record each in `audit`; returns their account codes."""
    disabled = registry.disable_dormant_operators(record=lambda accounts: record_disabled(audit, accounts))
    if disabled:
        log.info("dormant operator accounts disabled", extra={"accounts": disabled})
    return disabled


def sweep_with_trail_at(registry: Registry, data_dir: Path) -> list[str]:
    """`sweep` for a command run beside the server: the audit trail in `data_dir` is opened only when an
    account is to be disabled, so that listing a fresh registry makes no trail (nor key) of its own."""
    opened: list[AuditLog] = []

    def record(accounts: list[str]) -> None:
        if not opened:
            opened.append(AuditLog(data_dir / "audit.db", key=load_or_create_key(data_dir / "audit.key")))
        record_disabled(opened[0], accounts)

    try:
        return registry.disable_dormant_operators(record=record)
    finally:
        for audit in opened:
            audit.close()


class AccountSweep:
    """The sweep inside the server: `start()` runs it once at once, then a daemon thread every `interval`
    seconds until `stop()`. A failed sweep is logged and tried again at the next tick; it never takes the
    server down (meanwhile `Registry.login` still refuses a dormant account)."""

    def __init__(self, registry: Registry, audit: AuditLog, *, interval: float = HOUR) -> None:
        self._registry, self._audit, self._interval = registry, audit, interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.runs = 0  # sweeps made, failed ones included (for tests)

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("account sweep already started")
        # An account `login` finds dormant between two sweeps is disabled there: recorded alike.
        self._registry.on_disabled = lambda accounts: record_disabled(self._audit, accounts)
        self._run()  # before the server serves: no dormant account is ACTIVE at its first call
        self._thread = threading.Thread(target=self._loop, name="account-sweep", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop, waiting for a sweep in progress. Call before closing the registry and the audit trail."""
        self._registry.on_disabled = None
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        try:
            sweep(self._registry, self._audit)
        except Exception:
            log.exception("the sweep of dormant operator accounts failed; trying again at the next tick")
        try:
            dropped = self._registry.drop_old_sessions()
            if dropped:
                log.info("ended and expired sessions deleted", extra={"sessions": dropped})
        except Exception:
            log.exception("deleting ended and expired sessions failed; trying again at the next tick")
        self.runs += 1

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            self._run()
