"""The lifecycle side of the SQLite store: the NAC-history index behind retention and favorable-NAC
supersession, statements of dispute, and the migration that adds them to a schema-1 file.

Plain functions over the writer's connection, called inside the writer's transaction (so each is part
of the write that caused it), plus the read of a dispute row.

Supersession (seed 002: "a later favorable NAC on the same subject is entered as a new history and
deletes the previous one"): when a FAVORABLE NAC history is applied, every other live NAC history of the
same subject completed strictly earlier is deleted. The same subject is:
- the same full SSN, when the new history carries one (only the SSN then: a name is never enough to
  overrule an identifier);
- otherwise the same primary name (normalized surname and given name) and the same full date of birth,
  on a history that has no SSN either (one with an SSN is someone the name cannot vouch for: two
  namesakes born the same day, each with their own SSN, were both deleted), whose middle name, suffix
  and place of birth do not tell them apart (indexer.subjects.details_agree: an incomplete history of
  JOHN ALLEN SMITH born in Virginia went with a favorable one of JOHN BRUCE SMITH born in Texas the
  same day). Aliases are not used, and a history without an SSN and without a full date of birth
  supersedes nothing: a deletion on a guess cannot be undone.
Only the submitting agency's own histories are superseded: only the owning agency changes or deletes its
tracings (seed 002), and across agencies any submitter could erase another agency's history, an
unfavorable one say, by sending a favorable history on its SSN under any name and then deleting its own.
Another agency's earlier history stays until that agency deletes it or retention does.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3

from indexer.codec import tracing_from_json
from indexer.model import Dispute, NacHistoryDetails, NacOutcome, Tracing
from indexer.normalize import name_key
from indexer.retention import due_on, earliest_day, latest_day
from indexer.subjects import Details, details_agree, details_of, same_subject

LIFECYCLE_SCHEMA = """
-- One row per live NAC history: the day it falls due for retention (indexer.retention) and who it is
-- about, so that neither retention nor supersession scans the tracings.
CREATE TABLE IF NOT EXISTS nac_history (
    tracing_id INTEGER PRIMARY KEY,
    completed_on TEXT NOT NULL,  -- ISO day; a partial date as its latest possible day
    due_on TEXT NOT NULL,        -- ISO day: the first day a retention run removes it
    ssn TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS nac_history_due ON nac_history (due_on, tracing_id);
CREATE INDEX IF NOT EXISTS nac_history_ssn ON nac_history (ssn, completed_on);
-- The statement of dispute on a tracing (at most one). It stays while the tracing's key is updated
-- about the same person (indexer.subjects) and goes when the tracing is deleted or refiled to another.
CREATE TABLE IF NOT EXISTS dispute (
    tracing_id INTEGER PRIMARY KEY,
    dispute_id TEXT NOT NULL,
    statement_location TEXT NOT NULL,
    summary TEXT NOT NULL,
    filed_at INTEGER NOT NULL
);
"""


def _micros(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


# What the store keeps and asks of a NAC history, worked out from the tracing alone (so ahead of the write,
# in an ingest worker process; indexer.store.prepared): (completed_on, due_on, ssn, favorable_since,
# surname, given, dob). A plain tuple so that it crosses a process boundary as it is.
# - completed_on, due_on: ISO days ("" both: no usable completion date, never due);
# - favorable_since: for a FAVORABLE history, the first day it may have completed: the histories of the same
#   subject completed before it are superseded ("": it supersedes nothing);
# - surname, given (normalized primary name), dob (a full date of birth, else "") and the subject's
#   details (middle name, suffix, place of birth: indexer.subjects.details_of): the same subject when the
#   history has no SSN.
NacFacts = tuple[str, str, str, str, str, str, str, Details]


def nac_facts(tracing: Tracing) -> NacFacts | None:
    """The NacFacts of a NAC history (None for any other tracing)."""
    details, subject = tracing.details, tracing.subject
    if not isinstance(details, NacHistoryDetails):
        return None
    completed = due = since = ""
    if details.completed_on is not None:
        with contextlib.suppress(ValueError):
            completed, due = latest_day(details.completed_on).isoformat(), due_on(details.completed_on).isoformat()
        if details.outcome is NacOutcome.FAVORABLE and subject is not None:
            with contextlib.suppress(ValueError):
                # Strictly earlier: an earlier history's latest possible day before this one's first.
                since = earliest_day(details.completed_on).isoformat()
    if subject is None:
        return (completed, due, "", since, "", "", "", ((), "", ""))
    ids, key = subject.identifiers, name_key(subject.name)
    dob = ids.date_of_birth.iso() if ids.date_of_birth is not None and ids.date_of_birth.is_full else ""
    return (completed, due, ids.ssn, since, key.surname, key.given, dob, details_of(subject))


def index_nac_history(conn: sqlite3.Connection, tracing_id: int, facts: NacFacts) -> None:
    """Record a NAC history's due day and SSN (a history with no usable completion date is never due)."""
    completed, due, ssn = facts[0], facts[1], facts[2]
    if completed:
        conn.execute("INSERT OR REPLACE INTO nac_history VALUES (?, ?, ?, ?)", (tracing_id, completed, due, ssn))


def unindex_nac_history(conn: sqlite3.Connection, tracing_id: int) -> None:
    conn.execute("DELETE FROM nac_history WHERE tracing_id = ?", (tracing_id,))


def superseded_ids(conn: sqlite3.Connection, tracing_id: int, facts: NacFacts) -> list[int]:
    """Ids of the live NAC histories that the history with these facts, just stored under `tracing_id`,
    supersedes (empty unless it is FAVORABLE); see the module's docstring for "same subject"."""
    _, _, ssn, since, surname, given, dob, details = facts
    if not since:
        return []
    if ssn:
        rows = conn.execute(
            "SELECT h.tracing_id FROM nac_history h JOIN tracing t ON t.id = h.tracing_id"
            " WHERE h.ssn = ? AND h.completed_on < ? AND h.tracing_id != ?"
            " AND t.agency = (SELECT agency FROM tracing WHERE id = ?)",
            (ssn, since, tracing_id, tracing_id),
        )
        return sorted({row[0] for row in rows})
    if not dob or not surname:
        return []
    namesakes = conn.execute(  # a handful at most: their bodies give the middle names' words
        "SELECT n.tracing_id, t.body FROM name n"
        " JOIN nac_history h ON h.tracing_id = n.tracing_id JOIN tracing t ON t.id = n.tracing_id"
        " WHERE n.surname = ? AND n.given = ? AND n.alias_no = 0 AND n.dob = ?"
        " AND h.completed_on < ? AND n.tracing_id != ? AND h.ssn = ''"
        " AND t.agency = (SELECT agency FROM tracing WHERE id = ?)",
        (surname, given, dob, since, tracing_id, tracing_id),
    )
    return sorted({found for found, body in namesakes if details_agree(details, _details(body))})


def _details(body: str | None) -> Details:
    subject = tracing_from_json(body).subject if body else None
    return details_of(subject) if subject is not None else ((), "", "")


DISPUTES_FILED = "disputes_filed"  # the meta row counting statements attached: TracingStore.dispute_mark


def set_dispute(conn: sqlite3.Connection, tracing_id: int, dispute: Dispute) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO dispute VALUES (?, ?, ?, ?, ?)",
        (tracing_id, dispute.dispute_id, dispute.statement_location, dispute.summary, _micros(dispute.filed_at)),
    )
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, '1')"
        " ON CONFLICT (key) DO UPDATE SET value = CAST(value AS INTEGER) + 1",
        (DISPUTES_FILED,),
    )


def drop_dispute(conn: sqlite3.Connection, tracing_id: int) -> None:
    conn.execute("DELETE FROM dispute WHERE tracing_id = ?", (tracing_id,))


def end_dispute_of_another_subject(conn: sqlite3.Connection, tracing_id: int, old_body: str, new: Tracing) -> None:
    """An update of a disputed live tracing: its statement of dispute describes its person, and goes when
    the update makes the record another person's (indexer.subjects). The writer asks only for a tracing
    that has one (its row read says so), so the old body is decoded for those alone."""
    if not same_subject(tracing_from_json(old_body).subject, new.subject):
        drop_dispute(conn, tracing_id)


# The columns a reader selects to build a dispute (NULLs when the tracing has none), by LEFT JOIN on
# "dispute d".
DISPUTE_COLUMNS = "d.dispute_id, d.statement_location, d.summary, d.filed_at"


def dispute_from_row(dispute_id: str | None, location: str, summary: str, filed_at: int) -> Dispute | None:
    if dispute_id is None:
        return None
    return Dispute(dispute_id, location, summary, dt.datetime.fromtimestamp(filed_at / 1_000_000, dt.UTC))


def lifecycle_problems(conn: sqlite3.Connection) -> list[str]:
    """Lifecycle rows left behind by a deleted tracing (for SqliteStore.check_integrity)."""
    problems = []
    for table in ("nac_history", "dispute"):
        stray = conn.execute(
            f"SELECT count(*) FROM {table} WHERE tracing_id NOT IN (SELECT id FROM tracing WHERE live = 1)"  # noqa: S608
        ).fetchone()[0]
        if stray:
            problems.append(f"{stray} {table} rows point at no live tracing")
    return problems


def fill_nac_history(conn: sqlite3.Connection) -> None:
    """Index the live NAC histories of a schema-1 file, which had no NAC-history index (inside the
    caller's transaction; indexer.store.sqlite_schema upgrades files)."""
    rows = conn.execute("SELECT id, body FROM tracing WHERE live = 1 AND type = 'NAC_HISTORY'").fetchall()
    for tracing_id, body in rows:
        facts = nac_facts(tracing_from_json(body))
        if facts is not None:
            index_nac_history(conn, tracing_id, facts)
