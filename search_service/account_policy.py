"""Operator account policy (seed 001): how long a session lasts, when repeated failures lock an account,
and when an unused account is dormant. Values and rules only; search_service.registry applies them to its
file (and search_service.account_sweep runs the daily sweep of dormant accounts).
"""

from __future__ import annotations

import datetime as dt

SESSION_TTL = dt.timedelta(hours=8)
# Seed 001: accounts unused for three years are removed; we disable them (the row stays for audit), at a
# login attempt and in a sweep (disable_dormant_operators: at server start, daily, `operator list`).
# Three calendar years (`three_years_after`): 1,095 or 1,096 days. INACTIVITY_LIMIT is the longer, an
# upper bound for whoever needs a length; a fixed 1,096 days kept an account a day past three years when
# they hold no 29 February (a review of the time duties), and 3 x 365 days disabled one a day early when
# they do.
INACTIVITY_LIMIT = dt.timedelta(days=3 * 365 + 1)
INACTIVITY_YEARS = 3
MAX_FAILED_LOGINS = 5
LOCKOUT = dt.timedelta(minutes=15)


def dormant(now: dt.datetime, created: str, last_login: str | None, active_since: str | None) -> bool:
    """Unused for longer than three calendar years, counted from the latest of the last login, the last time
    the account was made active (at creation, or reinstated by an administrator) and its creation.

    The reinstatement counts so that an administrator can bring back an account disabled for disuse: from
    the old last login alone, it would be dormant again at its next login attempt or sweep. `active_since`
    is None in a registry file older than that column (unknown): then the last login or creation counts,
    as it did before."""
    moments = (dt.datetime.fromisoformat(t) for t in (created, last_login, active_since) if t is not None)
    return now > three_years_after(max(moments))


def three_years_after(moment: dt.datetime) -> dt.datetime:
    """The same day and time INACTIVITY_YEARS later; from 29 February, 1 March (the anniversary does not
    exist, and 1 March is the first day three full years have certainly passed)."""
    year = moment.year + INACTIVITY_YEARS
    try:
        return moment.replace(year=year)
    except ValueError:  # 29 February, into a year without one
        return moment.replace(year=year, month=3, day=1)
