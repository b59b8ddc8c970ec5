"""Operator account policy (seed 001): how long a session lasts, when repeated failures lock an account,
and when an unused account is dormant. Values and rules only; search_service.registry applies them to its
file (and search_service.account_sweep runs the daily sweep of dormant accounts).
"""

from __future__ import annotations

import datetime as dt

SESSION_TTL = dt.timedelta(hours=8)
# Seed 001: accounts unused for three years are removed; we disable them (the row stays for audit), at a
# login attempt and in a sweep (disable_dormant_operators: at server start, daily, `operator list`).
# Three years are 1,095 or 1,096 days: the longer, so that no account is disabled before three calendar
# years of disuse when they hold a 29 February (3 x 365 days did, a day early).
INACTIVITY_LIMIT = dt.timedelta(days=3 * 365 + 1)
MAX_FAILED_LOGINS = 5
LOCKOUT = dt.timedelta(minutes=15)


def dormant(now: dt.datetime, created: str, last_login: str | None, active_since: str | None) -> bool:
    """Unused for longer than INACTIVITY_LIMIT, counted from the latest of the last login, the last time
    the account was made active (at creation, or reinstated by an administrator) and its creation.

    The reinstatement counts so that an administrator can bring back an account disabled for disuse: from
    the old last login alone, it would be dormant again at its next login attempt or sweep. `active_since`
    is None in a registry file older than that column (unknown): then the last login or creation counts,
    as it did before."""
    moments = (dt.datetime.fromisoformat(t) for t in (created, last_login, active_since) if t is not None)
    return now - max(moments) > INACTIVITY_LIMIT
