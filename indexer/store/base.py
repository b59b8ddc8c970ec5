"""The storage interface. The embedded SQLite store and the OpenSearch backend both implement it.

The interface is deliberately small and index-shaped: writes come as a batch of operations that the
store applies and makes durable before it returns (each operation atomic on its own), and reads are
by the keys the search modes need. Validation, ownership and ranking live above it, so that every
backend gives the same answers.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from indexer.model import StoredTracing, Tracing, TracingKey, TracingType


@dataclass(frozen=True, slots=True)
class Upsert:
    tracing: Tracing


@dataclass(frozen=True, slots=True)
class Delete:
    key: TracingKey
    source_version: int
    reason: str


@dataclass(frozen=True, slots=True)
class Replace:
    """A lifecycle completion: `old` (of type `expected_type`) gives way to `new`, atomically."""

    old: TracingKey
    expected_type: TracingType
    new: Tracing


WriteOp = Upsert | Delete | Replace


class WriteOutcome(StrEnum):
    APPLIED = "APPLIED"
    # The store already holds this source version or a newer one: a replay or a late arrival.
    UNCHANGED = "UNCHANGED"
    # A delete or replace named a tracing the store does not hold (or not of the expected type).
    NOT_FOUND = "NOT_FOUND"


@dataclass(frozen=True, slots=True)
class WriteResult:
    outcome: WriteOutcome
    # The source version the store holds for the key after the operation (0: none).
    stored_version: int


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


@dataclass(frozen=True, slots=True)
class DeletionRecord:
    key: TracingKey
    type: TracingType
    source_version: int
    reason: str
    actor: str
    deleted_at: dt.datetime


class TracingStore(ABC):
    """What the service needs from a backend."""

    @abstractmethod
    def write(self, ops: Sequence[WriteOp], *, actor: str) -> list[WriteResult]:
        """Apply `ops` in order; every result returned is durable. `actor` is recorded with deletions."""

    @abstractmethod
    def get(self, key: TracingKey) -> StoredTracing | None:
        """The live tracing under `key` (None if absent or deleted)."""

    @abstractmethod
    def load(self, tracing_ids: Sequence[int]) -> dict[int, StoredTracing]:
        """Live tracings by internal id (ids of deleted tracings are left out)."""

    @abstractmethod
    def scan_names(
        self,
        surname: str,
        given: str | None,
        *,
        given_is_prefix: bool,
        after: NameCursor | None,
        limit: int,
    ) -> list[NameRow]:
        """Indexed names with this exact surname key and, when `given` is set, this given-name key (or
        a given name starting with it), in (given, tracing_id, alias_no) order after `after`."""

    @abstractmethod
    def candidates(self, keys: Sequence[str], *, limit: int) -> tuple[list[int], bool]:
        """Ids of live tracings holding any of the match keys (indexer.match_keys), taking the keys in the
        order given (most selective first) until `limit` ids are found. The flag says whether the limit cut
        the set short, so that a caller never drops a true match silently."""

    @abstractmethod
    def scan_titles(self, title: str, *, prefix: bool, after: int | None, limit: int) -> list[int]:
        """Ids of impersonal titles whose folded title equals (or starts with) `title`, in id order."""

    @abstractmethod
    def deletions(self, since: dt.datetime | None = None) -> list[DeletionRecord]:
        """The deletion log: every tracing removed, by whom and why."""

    @abstractmethod
    def count(self) -> int:
        """Live tracings."""

    def size_hint(self) -> int:
        """Roughly how many live tracings (may lag writes); blocking uses it to judge key selectivity."""
        return self.count()

    @abstractmethod
    def check_integrity(self) -> list[str]:
        """Problems found by the backend's own integrity check (empty: sound)."""

    @abstractmethod
    def close(self) -> None: ...
