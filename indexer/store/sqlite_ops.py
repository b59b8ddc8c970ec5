"""What the callers of the embedded store's writer (indexer.store.sqlite_writer) send it and hear back.

The operations it takes beyond WriteOp (SetDispute, Restore), their preparation in the caller's thread
(prepared_ops), and the error every caller of a group hears when the group's transaction fails
(write_failure). Kept apart from the writer, which holds only its thread and the rules of each operation.
"""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from indexer.exc import ResourceExhausted, Unavailable
from indexer.model import Dispute, StoredTracing, TracingKey
from indexer.store.base import DeletionRecord, Replace, Tombstone, Upsert, WriteOp
from indexer.store.prepared import as_prepared

# SQLite's primary result code for a full disk; an OSError with one of these errnos says the same.
_SQLITE_FULL = 13
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


class StoreDiskFull(ResourceExhausted):
    """The store's disk is full. RESOURCE_EXHAUSTED, so that a connector waits and sends again, but the
    server's fault, not the caller's: search_service.errors logs it as such (a full disk looked like a
    rate limit at 3 a.m.: WARNINGs only, and the rate limit's alert; an operator's test)."""


def write_failure(error: Exception) -> Exception:
    """What the callers of a group that failed hear (nothing of the group was stored)."""
    code = getattr(error, "sqlite_errorcode", None)
    if (isinstance(code, int) and code & 0xFF == _SQLITE_FULL) or getattr(error, "errno", None) in _FULL_ERRNOS:
        return StoreDiskFull("the store's disk is full: nothing of this write was stored; retry once space is freed")
    if isinstance(error, sqlite3.Error | OSError):
        return Unavailable(f"the store could not be written ({type(error).__name__}: {error})")
    return error  # a defect (INTERNAL for the callers), of this group alone


@dataclass(frozen=True, slots=True)
class SetDispute:
    """The writer's form of TracingStore.set_dispute (not a WriteOp: ingest never sends one)."""

    key: TracingKey
    dispute: Dispute


@dataclass(frozen=True, slots=True)
class Restore:
    """The writer's form of TracingStore.restore (migration): records taken as another store held them."""

    tracings: Sequence[StoredTracing]
    tombstones: Sequence[Tombstone]
    deletions: Sequence[DeletionRecord]


Op = WriteOp | SetDispute | Restore


def prepared_ops(ops: Sequence[Op]) -> list[Op]:
    """The ops with every tracing they write prepared (PreparedTracing), in the caller's thread: the
    single writer thread then only runs SQL. The writer is the one serial stage of ingest; the callers are
    many and work while it waits on SQLite (and ingest's worker processes send them prepared already)."""
    out: list[Op] = []
    for op in ops:
        if isinstance(op, Upsert):
            out.append(Upsert(as_prepared(op.tracing)))
        elif isinstance(op, Replace):
            out.append(Replace(op.old, op.expected_type, as_prepared(op.new)))
        else:
            out.append(op)
    return out
