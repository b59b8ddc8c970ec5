"""The privacy office's register: Privacy Act requests with their deadlines, and the dispute-notice outbox.

Requests (DOMAIN.md "Privacy Act duties"; 32 CFR 310): a person's request for access or amendment is
acknowledged within 10 working days of receipt and answered within 30. A working day is Monday to
Friday except a federal holiday (`federal_holidays`). Days are the privacy office's days, in its time
zone (`ServerConfig.privacy_time_zone`, default America/New_York): counting starts the working day after
the office's calendar day of receipt, so a request received on a weekend or a holiday counts from the next
working day, and one received on a weekday evening counts from that weekday (in UTC it would already be the
next day, a working day more); a deadline is the end (23:59:59 office time) of its last working day. Every
instant is stored and returned as an aware UTC datetime; only the day arithmetic is local. A
request is *overdue* while a duty is outstanding past its deadline: not acknowledged after
`acknowledge_by`, or not answered after `respond_by`. Answering a request also acknowledges it. A request
is *late* while overdue and ever after if a duty was done past its deadline: the office reports each miss.

Notices: when a statement of dispute is filed, every earlier recipient of the tracing (from the
accounting of disclosures) is owed the statement (5 U.S.C. 552a(c)(4)). The server queues one notice
per recipient activity here; `dcii privacy notices` lists them and marks each sent once delivered.

A SQLite file (`<data>/privacy.db`, mode 0600) shared by the server and the `dcii privacy` CLI, like
the registry. Every time is stored as UTC ISO text, so text order is time order.
"""

from __future__ import annotations

import calendar
import contextlib
import datetime as dt
import functools
import os
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from indexer.exc import FailedPrecondition, NotFound, Unavailable
from indexer.model import TracingKey
from search_service.sqlite_files import ThreadConnections

ACKNOWLEDGE_WORKING_DAYS = 10
RESPOND_WORKING_DAYS = 30
CANNOT_USE = "the privacy register cannot be used"
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


def _utc(moment: dt.datetime) -> dt.datetime:
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def deadline(received_at: dt.datetime, working_days: int, zone: str | ZoneInfo = DEFAULT_TIME_ZONE) -> dt.datetime:
    """The end (23:59:59 in the office's `zone`) of the `working_days`-th working day after the office's day
    of receipt, as an aware UTC datetime. A naive `received_at` is read as UTC."""
    local = office_zone(zone) if isinstance(zone, str) else zone
    last = add_working_days(_utc(received_at).astimezone(local).date(), working_days)
    # zoneinfo resolves the day's own offset (EST or EDT); 23:59:59 is never in a US DST gap or fold.
    return dt.datetime.combine(last, dt.time(23, 59, 59), tzinfo=local).astimezone(dt.UTC)


# ---- records ----


class RequestKind(StrEnum):
    ACCESS = "ACCESS"
    AMENDMENT = "AMENDMENT"


@dataclass(frozen=True, slots=True)
class PrivacyRequest:
    request_number: str
    kind: RequestKind
    received_at: dt.datetime
    acknowledge_by: dt.datetime
    respond_by: dt.datetime
    acknowledged_at: dt.datetime | None = None
    responded_at: dt.datetime | None = None

    def overdue(self, now: dt.datetime) -> bool:
        late_acknowledgement = self.acknowledged_at is None and _past(now, self.acknowledge_by)
        return late_acknowledgement or (self.responded_at is None and _past(now, self.respond_by))

    def late(self, now: dt.datetime) -> tuple[str, ...]:
        """The duties done after their deadline, or still outstanding past it ("acknowledgement",
        "response"): a request answered late is no longer overdue, but the office still reports the miss."""
        acknowledged = self.acknowledged_at or now
        responded = self.responded_at or now
        return tuple(
            duty
            for duty, done, due in (
                ("acknowledgement", acknowledged, self.acknowledge_by),
                ("response", responded, self.respond_by),
            )
            if _past(done, due)
        )


def _past(moment: dt.datetime, deadline: dt.datetime) -> bool:
    """Whether `moment` is after the deadline's day: a deadline is the day's last second (23:59:59), and a
    duty done within that second (23:59:59.5) is on time."""
    return moment >= deadline.replace(microsecond=0) + dt.timedelta(seconds=1)


@dataclass(frozen=True, slots=True)
class DisputeNotice:
    """A statement of dispute owed to one earlier recipient of the disputed tracing."""

    notice_id: str
    dispute_id: str
    tracing: TracingKey
    recipient_activity: str
    statement_location: str
    summary: str
    queued_at: dt.datetime
    sent_at: dt.datetime | None = None


_SCHEMA = """
CREATE TABLE IF NOT EXISTS privacy_request (
    request_number TEXT PRIMARY KEY, kind TEXT NOT NULL, received_at TEXT NOT NULL,
    acknowledge_by TEXT NOT NULL, respond_by TEXT NOT NULL, acknowledged_at TEXT, responded_at TEXT
);
CREATE TABLE IF NOT EXISTS dispute_notice (
    notice_id TEXT PRIMARY KEY, dispute_id TEXT NOT NULL, agency TEXT NOT NULL, record_number TEXT NOT NULL,
    recipient_activity TEXT NOT NULL, statement_location TEXT NOT NULL, summary TEXT NOT NULL,
    queued_at TEXT NOT NULL, sent_at TEXT, UNIQUE (dispute_id, recipient_activity)
);
CREATE INDEX IF NOT EXISTS dispute_notice_unsent ON dispute_notice (sent_at, queued_at);
"""

_REQUEST_COLUMNS = "request_number, kind, received_at, acknowledge_by, respond_by, acknowledged_at, responded_at"
_NOTICE_COLUMNS = (
    "notice_id, dispute_id, agency, record_number, recipient_activity, statement_location, summary, queued_at, sent_at"
)


def _iso(moment: dt.datetime) -> str:
    return _utc(moment).isoformat(timespec="microseconds")


def _parse(text: str | None) -> dt.datetime | None:
    return None if text is None else dt.datetime.fromisoformat(text)


def _request(row: tuple[str, str, str, str, str, str | None, str | None]) -> PrivacyRequest:
    number, kind, received, acknowledge_by, respond_by, acknowledged, responded = row
    return PrivacyRequest(
        number,
        RequestKind(kind),
        dt.datetime.fromisoformat(received),
        dt.datetime.fromisoformat(acknowledge_by),
        dt.datetime.fromisoformat(respond_by),
        _parse(acknowledged),
        _parse(responded),
    )


def _notice(row: tuple[str, str, str, str, str, str, str, str, str | None]) -> DisputeNotice:
    notice_id, dispute_id, agency, record, recipient, location, summary, queued, sent = row
    return DisputeNotice(
        notice_id,
        dispute_id,
        TracingKey(agency, record),
        recipient,
        location,
        summary,
        dt.datetime.fromisoformat(queued),
        _parse(sent),
    )


class PrivacyRequests:
    """The register and the outbox. Methods raise Unavailable when the file cannot be used."""

    def __init__(
        self, path: Path, *, clock: Callable[[], dt.datetime] | None = None, time_zone: str = DEFAULT_TIME_ZONE
    ) -> None:
        self.zone = office_zone(time_zone)  # first: an unknown zone is refused before any file is made
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self._db = ThreadConnections(self.path)
        with self._using() as conn, conn:
            conn.executescript(_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        return self._db.get()

    @contextlib.contextmanager
    def _using(self) -> Iterator[sqlite3.Connection]:
        try:
            yield self._conn()
        except sqlite3.IntegrityError:
            raise
        except sqlite3.Error as error:
            raise Unavailable(f"{CANNOT_USE}: {error.__class__.__name__}") from error

    # ---- requests ----

    def open_request(self, request_number: str, kind: RequestKind, received_at: dt.datetime) -> PrivacyRequest:
        """Register a request received at `received_at`, with its deadlines; a number is used once."""
        request = PrivacyRequest(
            request_number,
            kind,
            _utc(received_at),
            deadline(received_at, ACKNOWLEDGE_WORKING_DAYS, self.zone),
            deadline(received_at, RESPOND_WORKING_DAYS, self.zone),
        )
        try:
            with self._using() as conn, conn:
                conn.execute(
                    f"INSERT INTO privacy_request ({_REQUEST_COLUMNS}) VALUES (?, ?, ?, ?, ?, NULL, NULL)",  # noqa: S608
                    (
                        request_number,
                        kind.value,
                        _iso(received_at),
                        _iso(request.acknowledge_by),
                        _iso(request.respond_by),
                    ),
                )
        except sqlite3.IntegrityError as error:
            raise FailedPrecondition(f"privacy request {request_number} is already registered") from error
        return request

    def request(self, request_number: str) -> PrivacyRequest | None:
        with self._using() as conn:
            row = conn.execute(
                f"SELECT {_REQUEST_COLUMNS} FROM privacy_request WHERE request_number = ?",  # noqa: S608
                (request_number,),
            ).fetchone()
        return None if row is None else _request(row)

    def list_requests(self, *, overdue_only: bool = False, late_only: bool = False) -> list[PrivacyRequest]:
        """Every request, oldest received first; or only the overdue ones as of the clock, or only those with
        a duty done late or overdue (PrivacyRequest.late)."""
        with self._using() as conn:
            rows = conn.execute(
                f"SELECT {_REQUEST_COLUMNS} FROM privacy_request ORDER BY received_at, request_number"  # noqa: S608
            ).fetchall()
        found = [_request(row) for row in rows]
        now = self._clock()
        if overdue_only:
            found = [r for r in found if r.overdue(now)]
        if late_only:
            found = [r for r in found if r.late(now)]
        return found

    def acknowledge(self, request_number: str) -> PrivacyRequest:
        """Record the acknowledgement (the first one stands); NotFound for an unknown number."""
        with self._using() as conn, conn:
            conn.execute(
                "UPDATE privacy_request SET acknowledged_at = ? WHERE request_number = ? AND acknowledged_at IS NULL",
                (_iso(self._clock()), request_number),
            )
        return self._existing(request_number)

    def respond(self, request_number: str) -> PrivacyRequest | None:
        """Record the answer (which also acknowledges); None when the number is not registered."""
        now = _iso(self._clock())
        with self._using() as conn, conn:
            conn.execute(
                "UPDATE privacy_request SET responded_at = coalesce(responded_at, ?),"
                " acknowledged_at = coalesce(acknowledged_at, ?) WHERE request_number = ?",
                (now, now, request_number),
            )
        return self.request(request_number)

    def withdraw(self, request_number: str) -> PrivacyRequest:
        """Take a request out of this register (one opened on two instances: the office keeps the other)."""
        found = self._existing(request_number)
        with self._using() as conn, conn:
            conn.execute("DELETE FROM privacy_request WHERE request_number = ?", (request_number,))
        return found

    def _existing(self, request_number: str) -> PrivacyRequest:
        found = self.request(request_number)
        if found is None:
            raise NotFound(f"no privacy request {request_number}")
        return found

    # ---- the notice outbox ----

    def queue_notices(
        self, dispute_id: str, tracing: TracingKey, recipients: Iterable[str], statement_location: str, summary: str
    ) -> list[DisputeNotice]:
        """One unsent notice per distinct recipient activity, all in one transaction."""
        queued_at = _utc(self._clock())
        notices = [
            DisputeNotice(uuid.uuid4().hex, dispute_id, tracing, recipient, statement_location, summary, queued_at)
            for recipient in dict.fromkeys(recipients)
        ]
        with self._using() as conn, conn:
            conn.executemany(
                f"INSERT INTO dispute_notice ({_NOTICE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",  # noqa: S608
                [
                    (
                        n.notice_id,
                        n.dispute_id,
                        n.tracing.agency,
                        n.tracing.record_number,
                        n.recipient_activity,
                        n.statement_location,
                        n.summary,
                        _iso(n.queued_at),
                    )
                    for n in notices
                ],
            )
        return notices

    def notices(self, *, unsent_only: bool = False, dispute_id: str | None = None) -> list[DisputeNotice]:
        """The outbox, oldest first; only unsent notices, or one dispute's, when asked."""
        clauses, params = [], []
        if unsent_only:
            clauses.append("sent_at IS NULL")
        if dispute_id is not None:
            clauses.append("dispute_id = ?")
            params.append(dispute_id)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._using() as conn:
            rows = conn.execute(
                f"SELECT {_NOTICE_COLUMNS} FROM dispute_notice{where} ORDER BY queued_at, recipient_activity",  # noqa: S608
                params,
            ).fetchall()
        return [_notice(row) for row in rows]

    def mark_sent(self, notice_id: str) -> DisputeNotice:
        """Record that a notice was delivered; a notice is marked sent once."""
        sent_at = _iso(self._clock())
        with self._using() as conn, conn:
            conn.execute(
                "UPDATE dispute_notice SET sent_at = ? WHERE notice_id = ? AND sent_at IS NULL", (sent_at, notice_id)
            )
            row = conn.execute(
                f"SELECT {_NOTICE_COLUMNS} FROM dispute_notice WHERE notice_id = ?",  # noqa: S608
                (notice_id,),
            ).fetchone()
        if row is None:
            raise NotFound(f"no notice {notice_id}")
        if row[-1] != sent_at:
            raise FailedPrecondition(f"notice {notice_id} was already marked sent at {row[-1]}")
        return _notice(row)

    def close(self) -> None:
        self._db.close_all()
