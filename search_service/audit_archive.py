"""The audit trails of instances gone for good, kept in a living instance's data directory and read with its
own: the Privacy Act keeps an accounting five years, whatever became of the instance that made it.

Each directory under `<data>/archived/` holds a retired instance's `audit.db`, `audit.db.head` and
`audit.key`, copied there once it stopped (docs/RUNBOOK.md, "An instance removed for good"). Every start of
the instance reads them all (nothing to configure, so nothing a restart can forget), checks each (the key is
the trail's; the trail holds every entry its head file names: a copy cut short is refused), and builds each
one's lookups beside it (search_service.audit_lookup: without them every read scanned the whole trail, about
a second a million entries, several times an accounting). The instance answers for them in its own
accountings and in its answers to its peers (search_service.peer_service), so one instance of a deployment
holding them is enough. They are only read.
"""

from __future__ import annotations

import hmac
import sqlite3
from pathlib import Path

from indexer.exc import FailedPrecondition, Unavailable
from indexer.model import PersonName
from search_service import audit_chain, audit_lookup
from search_service.accounting_entries import CANNOT_READ, Disclosure, read_disclosures
from search_service.accounting_keys import person_ref, read_key, subject_ref
from search_service.audit_setup import key_check

ARCHIVED = "archived"  # <data>/archived/<name>/audit.db, audit.db.head, audit.key


def archived_trails(data_dir: Path) -> list[ArchivedTrail]:
    """Every trail archived in `data_dir`, checked and with its lookups (FailedPrecondition for one that
    cannot be used: the start is refused, since an accounting without it would be incomplete)."""
    root = data_dir / ARCHIVED
    if not root.is_dir():
        return []
    return [ArchivedTrail(directory) for directory in sorted(root.iterdir()) if directory.is_dir()]


class ArchivedTrail:
    """A retired instance's trail, read-only: what search_service.privacy_person reads of a trail."""

    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / "audit.db"
        where = f"the archived trail {directory}"
        if not self.path.is_file():
            raise FailedPrecondition(f"{where}: no audit.db there")
        try:
            self._key = read_key(Path(directory) / "audit.key")
        except FileNotFoundError as error:
            raise FailedPrecondition(f"{where}: no audit.key there") from error
        try:
            recorded = audit_chain.read_head_file(audit_chain.head_path(self.path))
        except audit_chain.HeadUnreadable as error:
            raise FailedPrecondition(f"{where}: its audit.db.head cannot be read") from error
        try:
            with self._connection() as conn:
                row = conn.execute("SELECT value FROM meta WHERE name = 'key_check'").fetchone()
                held = audit_chain.database_head(conn)
            lookup = audit_lookup.Lookup(self.path)
            try:
                lookup.catch_up()
            finally:
                lookup.close()
        except sqlite3.Error as error:
            raise FailedPrecondition(f"{where} cannot be read ({type(error).__name__})") from error
        if row is None or not hmac.compare_digest(str(row[0]), key_check(self._key)):
            raise FailedPrecondition(f"{where}: audit.key is not the key of its audit.db")
        if recorded is None or held is None or held.seq < recorded.seq:
            have, named = held.seq if held else 0, recorded.seq if recorded else "no"
            raise FailedPrecondition(
                f"{where}: audit.db holds {have} entries and its audit.db.head names {named}: copy both again"
                " from the stopped instance (RUNBOOK)"
            )

    def _connection(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path.resolve().as_uri() + "?mode=ro", uri=True, isolation_level=None)

    def _read(self, by: tuple[str, str], params: tuple[str, ...]) -> list[Disclosure]:
        try:
            conn = self._connection()  # one a read: a privacy office reads a few times a day; nothing held
            try:
                return read_disclosures(conn, self.path, by, params)
            finally:
                conn.close()
        except sqlite3.Error as error:
            raise Unavailable(CANNOT_READ) from error

    def subject_ref(self, name: PersonName, ssn: str) -> str:
        return subject_ref(self._key, name, ssn)

    def person_ref(self, ssn: str) -> str:
        return person_ref(self._key, ssn)

    def disclosures_for_tracing(self, agency: str, record_number: str) -> list[Disclosure]:
        return self._read(audit_lookup.BY_TRACING, (agency, record_number))

    def disclosures_for_subject(self, name: PersonName, ssn: str) -> list[Disclosure]:
        return self._read(audit_lookup.BY_SUBJECT, (self.subject_ref(name, ssn),))

    def disclosures_for_person(self, ssn: str) -> list[Disclosure]:
        return self._read(audit_lookup.BY_PERSON, (self.person_ref(ssn),))
