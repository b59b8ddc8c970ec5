"""The accounting's entries: what a disclosure and an event are, and how they are kept as documents.

A disclosure is checked (`check_entry`) before it is recorded, stored as one JSON document in the
hash-chained trail (search_service.audit_chain) and read back as a `Disclosure`. The read-only
functions at the end serve the `dcii audit` CLI, which reads the trail file offline, without a key.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import sqlite3
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from indexer.exc import Unavailable
from indexer.model import PersonName, TracingKey
from search_service import audit_chain, audit_lookup
from search_service.audit_chain import VerifyResult
from search_service.audit_lookup_check import lookup_disagreement

DISCLOSURE = "DISCLOSURE"
METHODS = frozenset({"ONLINE", "BATCH"})
CANNOT_READ = "the audit trail cannot be read"


@dataclass(frozen=True, slots=True)
class DisclosureEntry:
    """One tracing disclosed to one recipient, as the server hands it to `record_disclosures`."""

    tracing: TracingKey
    subject_name: PersonName | None
    subject_ssn: str
    method: str
    purpose: str
    recipient_activity: str
    recipient_operator: str
    law_enforcement: bool


@dataclass(frozen=True, slots=True)
class Disclosure:
    """One line of the accounting (OPNAV 5211/9): what was disclosed, when, how, why and to whom."""

    disclosure_id: str
    tracing: TracingKey
    disclosed_at: dt.datetime
    method: str
    purpose: str
    recipient_activity: str
    recipient_operator: str
    law_enforcement: bool
    # Whom it was about, as the trail names them (search_service.accounting_keys): the keyed hash of the
    # record's name and SSN, and of its SSN alone ("" without one; None in entries written before the
    # trail recorded it). An accounting or a dispute notice checks them before it takes a disclosure
    # found by record number: the number may have named another person once.
    subject: str = ""
    person: str | None = None
    # The keyed hash of the record's name alone, beside an SSN ("" otherwise, and in entries written
    # before the trail recorded it): the record was about the same person after an SSN corrected under the
    # same name (indexer.subjects), so its earlier recipients are theirs (privacy review 3).
    named: str = ""


@dataclass(frozen=True, slots=True)
class AuditEvent:
    seq: int
    kind: str
    actor: str
    at: dt.datetime
    detail: Mapping[str, str]


class DisclosureIds:
    """Random uuid4 ids (hex) for disclosures, drawn from one os.urandom call per IDS_PER_DRAW ids.
    uuid.uuid4() calls os.urandom once per id, and that call lets go of the GIL: under load, each
    hand-back waits for a busy thread's switch interval. The pool is dropped in a forked child, which
    must not hand out its parent's ids."""

    IDS_PER_DRAW = 256

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool = b""
        self._at = 0
        self._pid = -1

    def take(self, count: int) -> list[str]:
        with self._lock:
            if self._pid != os.getpid():
                self._pool, self._at, self._pid = b"", 0, os.getpid()
            need = 16 * count
            if self._at + need > len(self._pool):
                self._pool, self._at = os.urandom(16 * max(self.IDS_PER_DRAW, count)), 0
            raw, self._at = self._pool[self._at : self._at + need], self._at + need
        return [uuid.UUID(bytes=raw[i : i + 16], version=4).hex for i in range(0, need, 16)]


def iso_time(moment: dt.datetime) -> str:
    """`moment` in UTC, ISO 8601 to the microsecond, as every entry stores it (naive means UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds")


def check_entry(entry: DisclosureEntry) -> None:
    """Refuse (ValueError, naming every problem) an entry the accounting could not stand on."""
    problems = []
    if entry.method not in METHODS:
        problems.append(f"method must be one of {', '.join(sorted(METHODS))}")
    if not entry.tracing.agency or not entry.tracing.record_number:
        problems.append("the tracing needs an agency and a record number")
    if not entry.purpose:
        problems.append("a purpose is required")
    if not entry.recipient_activity:
        problems.append("a recipient activity is required")
    if problems:
        raise ValueError("disclosure entry refused: " + "; ".join(problems))


_KIND = re.compile(r"[A-Z][A-Z0-9_]{0,63}")


def check_event(kind: str, actor: str, detail: Mapping[str, str]) -> None:
    """Refuse (ValueError) an event the trail does not take: `kind` UPPER_SNAKE, not DISCLOSURE nor AUDIT_*
    (the trail's own), an actor, details of text."""
    if not _KIND.fullmatch(kind) or kind == DISCLOSURE or kind.startswith("AUDIT_"):
        raise ValueError(f"event kind {kind!r} refused: UPPER_SNAKE, not DISCLOSURE nor AUDIT_*")
    if not actor:
        raise ValueError("an event needs an actor")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in detail.items()):
        raise ValueError("event details are text")


def disclosure_document(
    disclosure_id: str, at: str, entry: DisclosureEntry, subject: str, person: str, named: str = ""
) -> dict[str, Any]:
    """The trail's document of one disclosure; `subject`, `person` and `named` are the keyed hashes naming
    the person by name and SSN, by SSN alone and by name alone ("" none; `named` kept only when set)."""
    document = {
        "v": 1,
        "kind": DISCLOSURE,
        "disclosure_id": disclosure_id,
        "at": at,
        "agency": entry.tracing.agency,
        "record_number": entry.tracing.record_number,
        "subject": subject,
        "person": person,
        "method": entry.method,
        "purpose": entry.purpose,
        "recipient_activity": entry.recipient_activity,
        "recipient_operator": entry.recipient_operator,
        "law_enforcement": entry.law_enforcement,
    }
    if named:
        document["named"] = named
    return document


def disclosure_from_document(document: Mapping[str, Any]) -> Disclosure:
    return Disclosure(
        disclosure_id=str(document["disclosure_id"]),
        tracing=TracingKey(str(document["agency"]), str(document["record_number"])),
        disclosed_at=dt.datetime.fromisoformat(str(document["at"])),
        method=str(document["method"]),
        purpose=str(document["purpose"]),
        recipient_activity=str(document["recipient_activity"]),
        recipient_operator=str(document["recipient_operator"]),
        law_enforcement=bool(document["law_enforcement"]),
        subject=str(document.get("subject") or ""),
        person=None if "person" not in document else str(document["person"] or ""),
        named=str(document.get("named") or ""),
    )


def read_disclosures(
    conn: sqlite3.Connection,
    trail: Path,
    by: tuple[str, str],
    params: tuple[str, ...],
    reading: audit_lookup.Reading | None = None,
) -> list[Disclosure]:
    """The disclosures matching `by` (audit_lookup.BY_TRACING or BY_SUBJECT), oldest first."""
    found = []
    for _, text in audit_lookup.find(conn, trail, by, params, reading):
        document = audit_chain.parse_document(text)
        if document is not None and document.get("kind") == DISCLOSURE:
            found.append(disclosure_from_document(document))
    return found


def read_events(
    conn: sqlite3.Connection, trail: Path, kind: str | None, reading: audit_lookup.Reading | None = None
) -> list[AuditEvent]:
    """The recorded events (not disclosures), oldest first; only those of `kind` when given."""
    by = audit_lookup.BY_KIND if kind else audit_lookup.NOT_KIND
    found = []
    for seq, text in audit_lookup.find(conn, trail, by, (kind or DISCLOSURE,), reading):
        document = audit_chain.parse_document(text)
        if document is not None and isinstance(document.get("detail"), dict):
            found.append(
                AuditEvent(
                    seq,
                    str(document["kind"]),
                    str(document["actor"]),
                    dt.datetime.fromisoformat(str(document["at"])),
                    {str(k): str(v) for k, v in document["detail"].items()},
                )
            )
    return found


def _read_only(path: Path) -> sqlite3.Connection:
    if not path.exists():
        raise Unavailable(f"no audit trail at {path}")
    return sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, isolation_level=None)


def verify_file(path: Path, anchor: audit_chain.Head | None = None) -> VerifyResult:
    """Verify the trail at `path` offline (read-only, no key needed): the `dcii audit verify` check;
    with `anchor`, also that the entry it names still has its hash (audit_chain.verify_chain)."""
    path = Path(path)
    head_file = audit_chain.head_path(path)
    if not path.exists():
        recorded = None
        with contextlib.suppress(audit_chain.HeadUnreadable):
            recorded = audit_chain.read_head_file(head_file)
        if recorded is not None and recorded.seq > 0:
            return VerifyResult(False, 0, 1, f"the database is gone: entries 1 to {recorded.seq} are missing")
        return VerifyResult(False, 0, None, f"no audit trail at {path}")
    try:
        conn = _read_only(path)
        try:
            result = audit_chain.verify_chain(conn, head_file, anchor)
            wrong = lookup_disagreement(conn, path) if result.ok else None
            return result if wrong is None else VerifyResult(False, result.entries, *wrong)
        finally:
            conn.close()
    except sqlite3.Error as error:
        return VerifyResult(False, 0, None, f"{CANNOT_READ}: {error}")


def disclosures_for_tracing_file(
    path: Path, tracing: TracingKey, reading: audit_lookup.Reading | None = None
) -> list[Disclosure]:
    """The accounting for one tracing, read-only from the trail at `path` (the `dcii audit` CLI)."""
    params = (tracing.agency, tracing.record_number)
    try:
        conn = _read_only(Path(path))
        try:
            return read_disclosures(conn, path, audit_lookup.BY_TRACING, params, reading)
        finally:
            conn.close()
    except sqlite3.Error as error:
        raise Unavailable(CANNOT_READ) from error


def events_file(path: Path, kind: str | None = None, reading: audit_lookup.Reading | None = None) -> list[AuditEvent]:
    """The recorded events (not disclosures), read-only from the trail at `path` (the `dcii audit` CLI)."""
    try:
        conn = _read_only(Path(path))
        try:
            return read_events(conn, path, kind, reading)
        finally:
            conn.close()
    except sqlite3.Error as error:
        raise Unavailable(CANNOT_READ) from error


def disclosure_volume_file(
    path: Path, since: dt.datetime, reading: audit_lookup.Reading | None = None
) -> list[tuple[str, str, int]]:
    """(recipient activity, operator, disclosures) made since `since`, most first, read-only from the trail at
    `path` (`dcii audit volume`): the limits count calls, not records disclosed, and one accredited terminal
    paged NONSTANDARD through every surname, 19,890 of 20,000 tracings in 16 s (a misbehaving-terminal
    review). The trail is in time order: the first entry of the period is found by bisection, then only the
    period is read."""
    moment = iso_time(since)  # as every entry stores it: text order is time order
    try:
        conn = _read_only(Path(path))
        try:
            last = int(conn.execute("SELECT coalesce(max(seq), 0) FROM entry").fetchone()[0])
            low, high = 1, last + 1
            while low < high:  # the first seq at or after `moment`
                middle = (low + high) // 2
                row = conn.execute("SELECT json_extract(canonical, '$.at') FROM entry WHERE seq = ?", (middle,))
                at = row.fetchone()
                if reading is not None:
                    # Each entry the search read is vouched for: a missing one, taken for "before the period",
                    # or one whose time was edited, let 8 entries move the period's start to the trail's end:
                    # `volume` counted nothing and said intact (a security review).
                    (reading.missing if at is None or at[0] is None else reading.shown).append(middle)
                if at is None or at[0] is None or str(at[0]) < moment:
                    low = middle + 1
                else:
                    high = middle
            rows = conn.execute(
                "SELECT json_extract(canonical, '$.recipient_activity'),"
                " json_extract(canonical, '$.recipient_operator'), count(*)"
                " FROM entry WHERE seq BETWEEN ? AND ? AND json_extract(canonical, '$.kind') = ?"
                " GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2",
                (low, last, DISCLOSURE),
            ).fetchall()
            if reading is not None:
                reading.spans.append((low, last))
        finally:
            conn.close()
    except sqlite3.Error as error:
        raise Unavailable(CANNOT_READ) from error
    return [(str(activity), str(operator or ""), int(count)) for activity, operator, count in rows]


def event_kinds_file(path: Path) -> list[str]:
    """The kinds of event the trail at `path` holds, sorted (read whole: for a question that found nothing)."""
    try:
        conn = _read_only(Path(path))
        try:
            rows = conn.execute(
                "SELECT DISTINCT json_extract(canonical, '$.kind') FROM entry"
                " WHERE json_extract(canonical, '$.kind') != ?",
                (DISCLOSURE,),
            ).fetchall()
        finally:
            conn.close()
    except sqlite3.Error as error:
        raise Unavailable(CANNOT_READ) from error
    return sorted(str(kind) for (kind,) in rows if kind)
