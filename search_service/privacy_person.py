"""Who a Privacy Act request is about: every live tracing of the person (by their SSN, under any name),
and the accounting of the disclosures about them (search_service.privacy answers with both).

A disclosure is about the person when the record disclosed carried their SSN (the trail names it by its
keyed hash: under whatever name, the record gone since or not), or one of their names with the SSN, or
it was one of their records then. A record number alone is not enough: it may have named someone else
once (deleted and used again, or refiled to another subject), and neither that person's accounting nor
the recipients of their record belong to this one. One of their records disclosed under one of their
names with another SSN is theirs: the SSN corrected since, as indexer.subjects has it (the name kept).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from indexer.exc import ResourceExhausted
from indexer.match_keys_query import query_keys
from indexer.model import Identifiers, PersonName, StoredTracing, TracingKey
from indexer.normalize import name_key
from indexer.store.base import NameCursor, NameRow, TracingStore
from search_service.accounting import Disclosure
from search_service.exact import name_agrees

_FIRST_LIMIT, _MAX_LIMIT = 10_000, 1_000_000
_SCAN_PAGE, _LOAD_CHUNK = 500, 500


def pair(name: PersonName) -> tuple[str, str]:
    """What identifies a name for the accounting (search_service.accounting.subject_ref): surname and given."""
    key = name_key(name)
    return key.surname, key.given


def _load(store: TracingStore, ids: Iterable[int]) -> dict[int, StoredTracing]:
    wanted, found = list(dict.fromkeys(ids)), dict[int, StoredTracing]()
    for start in range(0, len(wanted), _LOAD_CHUNK):
        found |= store.load(wanted[start : start + _LOAD_CHUNK])
    return found


def _by_name(store: TracingStore, name: PersonName, keep: Callable[[NameRow], bool]) -> list[int]:
    """Ids of tracings with a name row (primary or alias) of exactly this name that `keep` keeps."""
    key, ids, after = name_key(name), [], None
    while True:
        rows = store.scan_names(key.surname, key.given, given_is_prefix=False, after=after, limit=_SCAN_PAGE)
        ids += [row.tracing_id for row in rows if keep(row)]
        if len(rows) < _SCAN_PAGE:
            return ids
        after = NameCursor(rows[-1].given, rows[-1].tracing_id, rows[-1].alias_no)


def find_unverified(store: TracingStore, name: PersonName) -> list[StoredTracing]:
    """Every live tracing with a name row of exactly this name and no SSN at all, by key: possibly the
    person's (the access answer's `unverified`). A record with another SSN is someone else's; one with
    another middle name or suffix than the request gives too (one that lacks them may be theirs, as in
    EXACT)."""
    key = name_key(name)
    found = {
        s.tracing.key: s
        for s in _load(
            store, _by_name(store, name, lambda row: not row.ssn and name_agrees(key, row, lenient=True))
        ).values()
        if s.tracing.subject is not None and not s.tracing.subject.identifiers.ssn
    }
    return [found[k] for k in sorted(found)]


def _by_ssn(store: TracingStore, ssn: str) -> list[int]:
    """Ids of every tracing holding the SSN's blocking keys: all tracings with that SSN, and some others
    (one key matches at most a hundred SSNs, a thousand in a store of keys version 2 or older). Never a cut
    set: better no answer than an incomplete one."""
    keys, limit = query_keys(None, Identifiers(ssn=ssn), keys_version=store.keys_version()), _FIRST_LIMIT
    while True:
        ids, truncated = store.candidates(keys, limit=limit)
        if not truncated:
            return ids
        if limit >= _MAX_LIMIT:
            raise ResourceExhausted("too many candidate records for one SSN; the answer would be incomplete")
        limit *= 10


def find_person(store: TracingStore, name: PersonName, ssn: str) -> list[StoredTracing]:
    """Every live tracing whose subject has this SSN, by (agency, record number)."""
    loaded = _load(store, [*_by_name(store, name, lambda row: row.ssn == ssn), *_by_ssn(store, ssn)])
    found = {
        s.tracing.key: s
        for s in loaded.values()
        if s.tracing.subject is not None and s.tracing.subject.identifiers.ssn == ssn
    }
    return [found[key] for key in sorted(found)]


@dataclass(frozen=True, slots=True)
class Person:
    """Whom a disclosure must have been about to count for someone: their SSN's keyed hash, and the keyed
    hashes of each of their names with that SSN and without one."""

    person: str
    subjects: frozenset[str]

    @classmethod
    def of(cls, audit: Trail, names: Iterable[PersonName], ssn: str) -> Person:
        refs = frozenset(audit.subject_ref(n, each) for n in names for each in {ssn, ""})
        return cls(audit.person_ref(ssn), refs)

    def about(self, disclosure: Disclosure, life_began: dt.datetime | None = None) -> bool:
        """Whether a disclosure found by record number was about this person: the number may have named
        someone else once (deleted and used again, or refiled to another subject). An entry written
        before the trail named persons says too little to tell: it is kept, as it always was.
        `life_began`: when the record's present life began (TracingStore.last_deleted), for a disclosure
        that names only one of their names: under the SSN corrected since, within the present life only
        (before it, the number may have been a namesake's: diff review 2)."""
        if disclosure.person is None:
            return True
        if self.person and disclosure.person == self.person:
            return True
        # Otherwise only a name vouches (a record without an SSN then, or with one corrected since: a
        # subject of one of their names and their SSN has their person too), within the present life only.
        named = disclosure.subject in self.subjects or bool(disclosure.named and disclosure.named in self.subjects)
        return named and (life_began is None or disclosure.disclosed_at > life_began)


class Trail(Protocol):
    """What an accounting reads of a trail: search_service.accounting.AuditLog (this instance's), or
    search_service.audit_archive.ArchivedTrail (a retired instance's)."""

    def subject_ref(self, name: PersonName, ssn: str) -> str: ...
    def person_ref(self, ssn: str) -> str: ...
    def disclosures_for_tracing(self, agency: str, record_number: str) -> list[Disclosure]: ...
    def disclosures_for_subject(self, name: PersonName, ssn: str) -> list[Disclosure]: ...
    def disclosures_for_person(self, ssn: str) -> list[Disclosure]: ...


@dataclass(frozen=True, slots=True)
class AccountingQuery:
    """What an accounting is of, found in the shared index: the person's SSN, the name asked and every name
    on their records, and each of their live records with when its present life began. A peer instance
    (search_service.peers) is sent this and reads its own trail by it, without the index."""

    ssn: str
    names: tuple[PersonName, ...]
    tracings: tuple[tuple[TracingKey, dt.datetime | None], ...]


def accounting_query(store: TracingStore, name: PersonName, ssn: str, tracings: list[StoredTracing]) -> AccountingQuery:
    names = {pair(name): name}
    for stored in tracings:
        if stored.tracing.subject is not None:
            names.update((pair(n), n) for n in stored.tracing.subject.all_names())
    keyed = tuple((s.tracing.key, store.last_deleted(s.tracing.key)) for s in tracings)
    return AccountingQuery(ssn, tuple(names.values()), keyed)


def accounting(trails: Sequence[Trail], query: AccountingQuery, *, withhold_law_enforcement: bool) -> list[Disclosure]:
    """Every disclosure about the person in these trails (this instance's, and any archived with it): of a
    record that carried their SSN (under any name, the record gone or not), of a name of theirs with the SSN,
    and of each of their records, as long as it was about them then."""
    ssn = query.ssn
    found: dict[tuple[str, TracingKey], Disclosure] = {}
    for trail in trails:
        for each in query.names:
            found.update(((d.disclosure_id, d.tracing), d) for d in trail.disclosures_for_subject(each, ssn))
        found.update(((d.disclosure_id, d.tracing), d) for d in trail.disclosures_for_person(ssn))
        them = Person.of(trail, query.names, ssn)  # each trail names persons by its own key
        for key, began in query.tracings:
            found.update(
                ((d.disclosure_id, d.tracing), d)
                for d in trail.disclosures_for_tracing(key.agency, key.record_number)
                if them.about(d, began)
            )
    kept = [d for d in found.values() if not (withhold_law_enforcement and d.law_enforcement)]
    return in_order(kept)


def in_order(disclosures: Iterable[Disclosure]) -> list[Disclosure]:
    """Oldest first, as the accounting is given (ties by id and tracing, so every instance orders alike)."""
    return sorted(disclosures, key=lambda d: (d.disclosed_at, d.disclosure_id, d.tracing))


def tracing_accounting(
    trails: Sequence[Trail],
    key: TracingKey,
    subject: tuple[Sequence[PersonName], str] | None,
    began: dt.datetime | None,
) -> list[Disclosure]:
    """The disclosures of one tracing in these trails while it was about its present subject (names, SSN):
    whom a statement of dispute goes to. Without a subject, every disclosure of the tracing."""
    found: list[Disclosure] = []
    for trail in trails:
        earlier = trail.disclosures_for_tracing(key.agency, key.record_number)
        if subject is not None:
            # Only those who received it while it was about this person: the statement describes them, and
            # sent to the recipient of another person's record under the same number it would be a
            # disclosure the dispute process made itself.
            them = Person.of(trail, *subject)
            earlier = [d for d in earlier if them.about(d, began)]
        found += earlier
    return found
