"""The audit trail of an instance gone for good, kept and read with the living ones (`dcii serve
--archived-trail DIR`): the Privacy Act keeps an accounting five years, whatever became of the instance that
made it. DIR holds the retired instance's `audit.db` (with its head file) and `audit.key`, copied from its data
directory once it stopped; they are only read. The instance that has it attached answers for it, in its own
accountings and in its answers to its peers (search_service.peer_service), so one instance of a deployment is
enough. Its lookups are not kept beside it: every read scans the trail (search_service.audit_lookup), fine
for the few reads a privacy office makes.
"""

from __future__ import annotations

import hmac
import sqlite3
from pathlib import Path

from indexer.exc import FailedPrecondition, Unavailable
from indexer.model import PersonName
from search_service import audit_lookup
from search_service.accounting_entries import CANNOT_READ, Disclosure, read_disclosures
from search_service.accounting_keys import person_ref, read_key, subject_ref
from search_service.audit_setup import key_check


class ArchivedTrail:
    """A retired instance's trail, read-only: what search_service.privacy_person reads of a trail."""

    def __init__(self, directory: Path) -> None:
        self.path = Path(directory) / "audit.db"
        if not self.path.is_file():
            raise FailedPrecondition(f"--archived-trail {directory}: no audit.db there")
        try:
            self._key = read_key(Path(directory) / "audit.key")
        except FileNotFoundError as error:
            raise FailedPrecondition(f"--archived-trail {directory}: no audit.key there") from error
        with self._connection() as conn:
            row = conn.execute("SELECT value FROM meta WHERE name = 'key_check'").fetchone()
        if row is None or not hmac.compare_digest(str(row[0]), key_check(self._key)):
            raise FailedPrecondition(f"--archived-trail {directory}: audit.key is not the key of its audit.db")

    def _connection(self) -> sqlite3.Connection:
        try:
            return sqlite3.connect(self.path.resolve().as_uri() + "?mode=ro", uri=True, isolation_level=None)
        except sqlite3.Error as error:
            raise Unavailable(CANNOT_READ) from error

    def _read(self, by: tuple[str, str], params: tuple[str, ...]) -> list[Disclosure]:
        conn = self._connection()  # one a read: a privacy office reads a few times a day, and nothing is held
        try:
            return read_disclosures(conn, self.path, by, params)
        except sqlite3.Error as error:
            raise Unavailable(CANNOT_READ) from error
        finally:
            conn.close()

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
