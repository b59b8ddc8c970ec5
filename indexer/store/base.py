"""The storage interface. The embedded SQLite store and the OpenSearch backend both implement it.

The interface is deliberately small and index-shaped: writes come as a batch of operations that the
store applies and makes durable before it returns (each operation atomic on its own), and reads are
by the keys the search modes need. Validation, ownership and ranking live above it, so that every
backend gives the same answers.

Two lifecycle rules of the index (DOMAIN.md "Lifecycle and retention") are the store's own, because they
must happen in the same transaction as the write that triggers them, whatever the backend:
- Favorable NAC supersession: when a NAC_HISTORY with outcome FAVORABLE is applied (by Upsert, or by the
  Replace that completes a NAC pending), every other live NAC_HISTORY of the same subject with an earlier
  completion date submitted by the same agency is deleted with it (only the owning agency deletes its
  tracings; another agency's stays), each in the deletion log with the reason
  "SUPERSEDED by favorable NAC history AGENCY/NUMBER" and the write's actor. The same subject is the same
  full SSN when the new history has one; otherwise the same normalized primary surname and given name
  and the same full date of birth, on a history without an SSN; without either, nothing is superseded.
  A history arriving with an earlier completion than a favorable one already held deletes nothing.
- Retention bookkeeping: the store keeps, for each live NAC_HISTORY, the day it falls due
  (indexer.retention.due_on: 15 years after completion) and answers `due_for_retention`. The removal
  itself is an ordinary Delete issued by indexer.retention.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from indexer.codec_head import head_to_text
from indexer.model import Dispute, Identifiers, StoredTracing, Subject, Tracing, TracingKey, TracingType
from indexer.store.roster import Roster

if TYPE_CHECKING:  # prepared.py needs the retention rules, which need this interface
    from indexer.store.prepared import PreparedTracing


@dataclass(frozen=True, slots=True)
class Upsert:
    """Store `tracing` (checked), unless a version as new or newer is held. It may come prepared ahead of
    the write (indexer.store.prepared, by an ingest worker process)."""

    tracing: Tracing | PreparedTracing


@dataclass(frozen=True, slots=True)
class Delete:
    """Delete `key` at `source_version`. Version 0 is the index's own deletion: it takes whatever
    version is held. A version equal to the one held is a compare-and-delete (retention uses it)."""

    key: TracingKey
    source_version: int
    reason: str


@dataclass(frozen=True, slots=True)
class Replace:
    """A lifecycle completion: `old` (of type `expected_type`) gives way to `new`, atomically. When the store
    already holds `new` at its version (a replay, or the new record sent first on its own), a live `old`
    indexed no later than it still goes (APPLIED); with nothing left to do, UNCHANGED."""

    old: TracingKey
    expected_type: TracingType
    new: Tracing | PreparedTracing


WriteOp = Upsert | Delete | Replace


class WriteOutcome(StrEnum):
    APPLIED = "APPLIED"
    # The store already holds this source version or a newer one: a replay or a late arrival.
    UNCHANGED = "UNCHANGED"
    # A delete or replace named a tracing the store does not hold (or not of the expected type).
    NOT_FOUND = "NOT_FOUND"
    # The write breaks a rule only the store can check (it depends on what the key held): nothing stored.
    # The result's `refusal` names the field and why.
    REFUSED = "REFUSED"


@dataclass(frozen=True, slots=True)
class WriteResult:
    outcome: WriteOutcome
    # The source version the store holds for the key after the operation (0: none).
    stored_version: int
    # REFUSED only: (field of the upsert's tracing, why), with no value of the record in it.
    refusal: tuple[str, str] | None = None


# An impersonal title is kept and corrected, never created (none since 19 April 1997): the edit criteria
# refuse one indexed later, and the stores refuse one written over a key that held another type of
# tracing (a person's file turned into a "1997" title would be a new title under an old date).
IMPERSONAL_TITLE_OVER_ANOTHER_TYPE = (
    "impersonal_title",
    "an impersonal title cannot replace a tracing of another type: "
    "no impersonal title has been created since 19 April 1997",
)


def refuses_impersonal_title(new_type: TracingType | None, held_type: str) -> bool:
    """True when an upsert of `new_type` over a key whose tracing (live or deleted) was of `held_type`
    ("" when the store never knew it) would create an impersonal title."""
    return new_type is TracingType.IMPERSONAL_TITLE and held_type not in ("", TracingType.IMPERSONAL_TITLE.value)


@dataclass(frozen=True, slots=True)
class NameRow:
    """One indexed name of a tracing (its primary name or an alias), with the PIDs beside it so the
    exact modes can filter without loading the tracing."""

    tracing_id: int
    alias_no: int  # 0 for the primary name
    surname: str
    given: str
    middle: str
    suffix: str
    ssn: str
    dob: str  # PartialDate.iso() or ""
    pob: str  # PlaceOfBirth.code() or ""


@dataclass(frozen=True, slots=True)
class NameCursor:
    """Where a name scan stopped: the last row returned, in the store's (surname, given, id, alias) order."""

    given: str
    tracing_id: int
    alias_no: int


# (tracing id, agency, record number, type, indexer.codec_head text): TracingStore.load_head_rows.
HeadRow = tuple[int, str, str, str, str]


@dataclass(frozen=True, slots=True)
class TracingHead:
    """What ranking reads of a candidate (`TracingStore.load_heads`): its key, type and subject, the same
    values as the full tracing's, without the rest of it."""

    key: TracingKey
    type: TracingType
    subject: Subject | None

    @classmethod
    def of(cls, tracing: Tracing) -> TracingHead:
        kind = tracing.type
        if kind is None:
            raise ValueError("a stored tracing must have a type")
        return cls(tracing.key, kind, tracing.subject)


@dataclass(frozen=True, slots=True)
class DeletionRecord:
    key: TracingKey
    type: TracingType
    source_version: int
    reason: str
    actor: str
    deleted_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Tombstone:
    """A key the store holds as deleted, at the version of its delete (so a late older upsert stays out), and
    when that was written: a completion onto the key compares it with its old record's indexing (`Replace`),
    so a migration carries it as it carries a live tracing's, and the completion goes the same way after."""

    key: TracingKey
    source_version: int
    indexed_at: dt.datetime


SUPERSEDED_PREFIX = "SUPERSEDED by "  # the index's own deletion reasons: an agency's may not begin so


def superseded_reason(kind: TracingType, by: TracingKey) -> str:
    """The deletion-log reason of a record another of `kind` under the key `by` ended (a completion, a type
    change under the same key)."""
    return f"{SUPERSEDED_PREFIX}{kind.value} {by}"


def last_end(key: TracingKey, logged: Sequence[DeletionRecord]) -> dt.datetime | None:
    """The latest of the key's deletion-log entries that ended its life (`TracingStore.last_deleted`): not
    its type changed under the same key, which the writers log with exactly `superseded_reason(type, key)`."""
    same_key = {superseded_reason(kind, key) for kind in TracingType}
    ended = [r.deleted_at for r in logged if r.reason not in same_key]
    return max(ended) if ended else None


class TracingStore(ABC):
    """What the service needs from a backend."""

    @abstractmethod
    def write(self, ops: Sequence[WriteOp], *, actor: str) -> list[WriteResult]:
        """Apply `ops` in order; every result returned is durable. `actor` is recorded with deletions."""

    @abstractmethod
    def get(self, key: TracingKey) -> StoredTracing | None:
        """The live tracing under `key` (None if absent or deleted), with its dispute if it has one."""

    @abstractmethod
    def load(self, tracing_ids: Sequence[int]) -> dict[int, StoredTracing]:
        """Live tracings by internal id (ids of deleted tracings are left out), with their disputes."""

    def load_head_rows(self, tracing_ids: Sequence[int]) -> list[HeadRow]:
        """(id, agency, record number, type, head text) of each live tracing of `tracing_ids`, in no
        particular order: the heads of `load_heads` as indexer.codec_head's text, which ranking compiles
        without building objects. A backend that keeps that text returns it as stored."""
        return [
            (i, head.key.agency, head.key.record_number, head.type.value, head_to_text(head.subject))
            for i, head in self.load_heads(tracing_ids).items()
        ]

    def load_heads(self, tracing_ids: Sequence[int]) -> dict[int, TracingHead]:
        """The heads of live tracings by internal id (ids of deleted tracings are left out): what the
        ranked modes score thousands of candidates on, before they load the page's few in full. A
        backend that can read less than the whole tracing overrides this."""
        return {i: TracingHead.of(stored.tracing) for i, stored in self.load(tracing_ids).items()}

    @abstractmethod
    def snapshot(self) -> AbstractContextManager[None]:
        """Within `with store.snapshot():`, every read of the calling thread sees one state of the index,
        so that a search's scan and the load of what it found agree: a completion (Replace) is seen
        entirely or not at all, never as both tracings or neither. Nests (the outermost one counts).
        Hold it for one request, not longer: a backend may keep old versions alive while it is open
        (SQLite: one read transaction; OpenSearch: a point-in-time)."""

    def dispute_mark(self) -> int | None:
        """A number that changes whenever a statement of dispute is attached, read before the answer's own
        reads and again once it is accounted; None when the backend keeps none (the caller then reads each
        record it needs). An answer read before a dispute and accounted after it is annotated before it
        leaves. Read on every answer: keep it cheap (the embedded store maps it, sqlite_signal)."""
        return None

    @abstractmethod
    def set_dispute(self, key: TracingKey, dispute: Dispute) -> bool:
        """Attach (or replace) the statement of dispute of the live tracing under `key`; durable when it
        returns. False when no live tracing has that key. The dispute stays with the tracing while its
        owner updates it under the same key about the same person (indexer.subjects) and is removed when an
        update refiles it to another person, and when the tracing is deleted (by its agency,
        by supersession, by retention, or by a completion that replaces it)."""

    @abstractmethod
    def due_for_retention(self, before: dt.date, limit: int) -> list[TracingKey]:
        """Keys of live NAC histories whose retention due day is strictly before `before` (so a run on
        day D asks with D + 1 day), earliest due first, at most `limit`. No other type is ever due."""

    @abstractmethod
    def scan_names(
        self,
        surname: str,
        given: str | None,
        *,
        given_is_prefix: bool,
        after: NameCursor | None,
        limit: int,
        pids: Identifiers | None = None,
    ) -> list[NameRow]:
        """Indexed names with this exact surname key and, when `given` is set, this given-name key (or
        a given name starting with it), in (given, tracing_id, alias_no) order after `after`. With `pids`,
        a row that agrees on none of them (search_service.exact.pids_agreeing) may be left out: a backend
        that can filter so saves the exact modes reading a common name's every row; the caller checks."""

    @abstractmethod
    def candidates(self, keys: Sequence[str], *, limit: int) -> tuple[list[int], bool]:
        """Ids of live tracings holding any of the match keys (indexer.match_keys), at most `limit`. The
        flag says whether the limit cut the set short, so that a caller never drops a true match silently.
        A set that fits comes in any order; a cut one is filled taking the keys in the order given (most
        selective first), so that what stays is what the first keys found."""

    @abstractmethod
    def scan_titles(self, title: str, *, prefix: bool, after: int | None, limit: int) -> list[int]:
        """Ids of impersonal titles whose folded title equals (or starts with) `title`, in id order."""

    @abstractmethod
    def deletions(self, since: dt.datetime | None = None) -> list[DeletionRecord]:
        """The deletion log: every tracing removed, by whom and why."""

    def last_deleted(self, key: TracingKey) -> dt.datetime | None:
        """When the tracing under `key` last ended (deleted, completed, superseded, removed by retention):
        its present life began after. None if it never did. A record sent again as another type under the
        same key is logged as superseded by itself, but goes on (its dispute with it): not an end. This
        reads the whole log; the backends answer from an index."""
        return last_end(key, [r for r in self.deletions() if r.key == key])

    @abstractmethod
    def count(self) -> int:
        """Live tracings."""

    def size_hint(self) -> int:
        """Roughly how many live tracings (may lag writes); blocking uses it to judge key selectivity."""
        return self.count()

    def rebuilding(self) -> bool:
        """Whether a rebuild of the index is in progress, or was cut short and left (its writers do more
        work until it is finished). The embedded store is never rebuilt in place."""
        return False

    def roster(self) -> Roster:
        """The instances that serve this store (indexer.store.roster); the embedded store has one."""
        return Roster()

    @abstractmethod
    def keys_version(self) -> int:
        """The version of indexer.match_keys its match keys were written with (`KEYS_VERSION` once brought
        up to date): a query looks up only keys the store holds (`query_keys`)."""

    @abstractmethod
    def check_integrity(self) -> list[str]:
        """Problems found by the backend's own integrity check (empty: sound)."""

    @abstractmethod
    def repair(self) -> list[str]:
        """Remove what a write cut short left behind that no reader uses, safely beside ongoing writes;
        one line (no PII) per kind of thing done, empty when there was nothing to do. What needs the
        owner (a completion or supersession to resend) or a backup is left to `check_integrity` to report."""

    @abstractmethod
    def iter_all(self, batch: int = 10_000) -> Iterator[StoredTracing]:
        """Every live tracing, with its dispute, in the store's id order (for migration and export)."""

    @abstractmethod
    def iter_tombstones(self, batch: int = 10_000) -> Iterator[Tombstone]:
        """Every key held as deleted, with the version that deleted it and when (for migration)."""

    @abstractmethod
    def restore(
        self,
        tracings: Sequence[StoredTracing],
        tombstones: Sequence[Tombstone] = (),
        deletions: Sequence[DeletionRecord] = (),
    ) -> None:
        """Take records exactly as another store held them (indexer.store.migrate): each tracing with its
        source version, indexed_at and dispute; each tombstone with its indexed_at; each deletion-log entry as
        logged. No lifecycle rule runs (the source already applied them, and replaying them in another order
        could delete what the source kept). A key the store already holds at the same or a newer version is
        left as it is, its dispute with it, so a migration run again does no harm; a tracing restored over a
        live one of the same person (indexer.subjects) keeps the held one's dispute unless it brings its own,
        as an update does. A batch holding a value the backend cannot store (OpenSearch: a keyword over
        32,766 bytes) is refused (FailedPrecondition) before anything of it is written. Durable when it
        returns."""

    @abstractmethod
    def close(self) -> None: ...
