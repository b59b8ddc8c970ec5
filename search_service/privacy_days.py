"""The privacy office's days: federal holidays, working days, and the deadlines of a Privacy Act request
counted in the office's time zone (search_service.privacy_requests says the rules: 10 working days to
acknowledge, 30 to answer, from the office's day of receipt; a deadline is the end of its last day)."""

from __future__ import annotations

import calendar
import datetime as dt
import functools
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

ACKNOWLEDGE_WORKING_DAYS = 10
RESPOND_WORKING_DAYS = 30
# The privacy office's zone unless configured (ServerConfig.privacy_time_zone): Eastern, the Washington area's.
DEFAULT_TIME_ZONE = "America/New_York"


def office_zone(name: str) -> ZoneInfo:
    """The IANA time zone `name` (ValueError when it is not one): the office's days are counted in it."""
    try:
        return ZoneInfo(name)
    # ValueError: a malformed key ("../x"); OSError: a directory of the database ("America").
    except (ZoneInfoNotFoundError, ValueError, OSError) as error:
        raise ValueError(f"not a known IANA time zone: {name!r}") from error


# ---- working days ----


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> dt.date:
    """The n-th `weekday` (0 = Monday) of a month; n = -1 for the last one."""
    days = [d for d in calendar.Calendar().itermonthdates(year, month) if d.month == month and d.weekday() == weekday]
    return days[n if n < 0 else n - 1]


def _observed(day: dt.date) -> dt.date:
    """A holiday on a Saturday is observed the Friday before, on a Sunday the Monday after (5 U.S.C.
    6103(b); Executive Order 11582)."""
    if day.weekday() == calendar.SATURDAY:
        return day - dt.timedelta(days=1)
    if day.weekday() == calendar.SUNDAY:
        return day + dt.timedelta(days=1)
    return day


def _fixed_holidays(year: int) -> list[dt.date]:
    days = [dt.date(year, 1, 1), dt.date(year, 7, 4), dt.date(year, 11, 11), dt.date(year, 12, 25)]
    if year >= 2021:  # Juneteenth National Independence Day Act, 2021
        days.append(dt.date(year, 6, 19))
    return days


@functools.lru_cache(maxsize=64)
def federal_holidays(year: int) -> frozenset[dt.date]:
    """The days of `year` on which the eleven legal public holidays of 5 U.S.C. 6103(a) are observed:
    New Year's Day (1 Jan), Birthday of Martin Luther King, Jr. (third Monday of January), Washington's
    Birthday (third Monday of February), Memorial Day (last Monday of May), Juneteenth (19 June, from
    2021), Independence Day (4 July), Labor Day (first Monday of September), Columbus Day (second Monday
    of October), Veterans Day (11 November), Thanksgiving Day (fourth Thursday of November) and Christmas
    Day (25 December). Fixed-date holidays move off weekends (`_observed`); so New Year's Day of the next
    year falling on a Saturday is observed on 31 December of this one."""
    floating = [
        _nth_weekday(year, 1, calendar.MONDAY, 3),
        _nth_weekday(year, 2, calendar.MONDAY, 3),
        _nth_weekday(year, 5, calendar.MONDAY, -1),
        _nth_weekday(year, 9, calendar.MONDAY, 1),
        _nth_weekday(year, 10, calendar.MONDAY, 2),
        _nth_weekday(year, 11, calendar.THURSDAY, 4),
    ]
    observed = [_observed(d) for d in (*_fixed_holidays(year), dt.date(year + 1, 1, 1))]
    return frozenset(d for d in (*floating, *observed) if d.year == year)


def is_working_day(day: dt.date) -> bool:
    return day.weekday() < calendar.SATURDAY and day not in federal_holidays(day.year)


def add_working_days(start: dt.date, count: int) -> dt.date:
    """The `count`-th working day after `start` (`start` itself never counts)."""
    day, seen = start, 0
    while seen < count:
        day += dt.timedelta(days=1)
        if is_working_day(day):
            seen += 1
    return day


def utc(moment: dt.datetime) -> dt.datetime:
    """`moment` in UTC (naive means UTC)."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def deadline(received_at: dt.datetime, working_days: int, zone: str | ZoneInfo = DEFAULT_TIME_ZONE) -> dt.datetime:
    """The end (23:59:59 in the office's `zone`) of the `working_days`-th working day after the office's day
    of receipt, as an aware UTC datetime. A naive `received_at` is read as UTC."""
    local = office_zone(zone) if isinstance(zone, str) else zone
    last = add_working_days(utc(received_at).astimezone(local).date(), working_days)
    # zoneinfo resolves the day's own offset (EST or EDT); 23:59:59 is never in a US DST gap or fold.
    return dt.datetime.combine(last, dt.time(23, 59, 59), tzinfo=local).astimezone(dt.UTC)
