"""The privacy office's register: Privacy Act requests with their deadlines, and the dispute-notice outbox.

Requests (DOMAIN.md "Privacy Act duties"; 32 CFR 310): a person's request for access or amendment is
acknowledged within 10 working days of receipt and answered within 30. A working day is Monday to
Friday except a federal holiday (search_service.privacy_days counts them). Days are the privacy office's
days, in its time zone (`ServerConfig.privacy_time_zone`, default America/New_York): counting starts the
working day after the office's calendar day of receipt, so a request received on a weekend or a holiday
counts from the next working day, and one received on a weekday evening counts from that weekday (in UTC it
would already be the next day, a working day more); a deadline is the end (23:59:59 office time) of its last
working day. Every instant is stored and returned as an aware UTC datetime; only the day arithmetic is local. A
request is *overdue* while a duty is outstanding past its deadline: not acknowledged after
`acknowledge_by`, or not answered after `respond_by`. Answering a request also acknowledges it. A request
is *late* while overdue and ever after if a duty was done past its deadline: the office reports each miss.

Notices: when a statement of dispute is filed, every earlier recipient of the tracing (from the
accounting of disclosures) is owed the statement (5 U.S.C. 552a(c)(4)). The server queues one notice
per recipient activity here; `dcii privacy notices` lists them and marks each sent once delivered.

Whom an ACCESS request was answered for (`request_person`): the answer binds the request to the person
asked, by the audit trail's keyed hash of their SSN (search_service.privacy_register), never their SSN or name,
in the register holding the request, wherever it was answered (search_service.privacy_binding).

A SQLite file (`<data>/privacy.db`, mode 0600) shared by the server and the `dcii privacy` CLI, like
the registry. Every time is stored as UTC ISO text, so text order is time order. A file of an earlier version
gains `request_person` as it is opened (its requests answered before it are unbound: see privacy_register).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from indexer.exc import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from indexer.failures import failure_text
from indexer.model import TracingKey, Violation
from search_service.privacy_days import (
    ACKNOWLEDGE_WORKING_DAYS,
    DEFAULT_TIME_ZONE,
    RESPOND_WORKING_DAYS,
    deadline,
    office_zone,
    utc,
)
from search_service.sqlite_files import ThreadConnections

CANNOT_USE = "the privacy register cannot be used"


# ---- the edit criteria ----

# Nine digits, alone or split by dashes, spaces or dots: the shapes an SSN is written in.
_SSN_SHAPED = re.compile(r"[0-9]{3}[-. ]?[0-9]{2}[-. ]?[0-9]{4}")


def ssn_shaped_request_number(request_number: str) -> str | None:
    """Why a request number is refused, or None. Offices use a requester's SSN as the case number, and the
    number is written in clear to the audit trail (its OPENED, ACKNOWLEDGED and ANSWERED events), to
    listings and to messages, where SECURITY.md allows a subject only as a keyed hash. The description does
    not repeat the number."""
    if _SSN_SHAPED.fullmatch(request_number.strip()):
        return "nine digits are the shape of an SSN, and the number goes to the audit trail in clear: use another"
    return None


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
-- One row per request of this register bound to its person, wherever answered: a request by its number and
-- receipt (a number withdrawn and opened again is another request), `person` the trail's keyed hash of the SSN.
-- A row of a request registered elsewhere is an earlier version's, which bound an answer where it was given.
CREATE TABLE IF NOT EXISTS request_person (
    request_number TEXT NOT NULL, received_at TEXT NOT NULL, person TEXT NOT NULL, bound_at TEXT NOT NULL,
    PRIMARY KEY (request_number, received_at)
);
"""

_REQUEST_COLUMNS = "request_number, kind, received_at, acknowledge_by, respond_by, acknowledged_at, responded_at"
_NOTICE_COLUMNS = (
    "notice_id, dispute_id, agency, record_number, recipient_activity, statement_location, summary, queued_at, sent_at"
)


def _iso(moment: dt.datetime) -> str:
    return utc(moment).isoformat(timespec="microseconds")


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
            raise Unavailable(f"{CANNOT_USE}: {failure_text(error)}") from error

    # ---- requests ----

    def open_request(self, request_number: str, kind: RequestKind, received_at: dt.datetime) -> PrivacyRequest:
        """Register a request received at `received_at`, with its deadlines; a number is used once, and is
        not SSN-shaped (`ssn_shaped_request_number`)."""
        if (why := ssn_shaped_request_number(request_number)) is not None:
            raise InvalidArgument([Violation("request_number", why)])
        request = PrivacyRequest(
            request_number,
            kind,
            utc(received_at),
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

    # ---- whom an access request was answered for ----

    def person(self, request: PrivacyRequest) -> str | None:
        """The person (a keyed hash) `request` is bound to here; None before its first answer (or, for a request
        registered elsewhere, unless an earlier version answered it here)."""
        with self._using() as conn:
            row = conn.execute(
                "SELECT person FROM request_person WHERE request_number = ? AND received_at = ?",
                (request.request_number, _iso(request.received_at)),
            ).fetchone()
        return None if row is None else str(row[0])

    def bind(self, request: PrivacyRequest, person: str) -> str:
        """Bind `request` to `person` unless it is bound already, in one transaction (two answers at once for
        two persons: the first stands); the person it is bound to."""
        at = (request.request_number, _iso(request.received_at))
        with self._using() as conn, conn:
            conn.execute(
                "INSERT OR IGNORE INTO request_person (request_number, received_at, person, bound_at)"
                " VALUES (?, ?, ?, ?)",
                (*at, person, _iso(self._clock())),
            )
            row = conn.execute(
                "SELECT person FROM request_person WHERE request_number = ? AND received_at = ?", at
            ).fetchone()
        return str(row[0])

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
        queued_at = utc(self._clock())
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
