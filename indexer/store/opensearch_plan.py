"""What the OpenSearch writer (indexer.store.opensearch_writer) plans a group of writes with.

The operation it takes beyond WriteOp (SetDispute), its in-memory view of one key's document (Doc, read
from the cluster and updated as each operation of the group is planned), and what planning one operation
yields (Plan: its result and bulk actions, and the Tombs that follow if it lands). Plain data, separate
from the writer's thread and rules so that each reads on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from indexer.codec import tracing_from_json
from indexer.exc import Unavailable
from indexer.model import Dispute, Tracing, TracingKey
from indexer.store.base import WriteOp, WriteResult
from indexer.store.opensearch_io import Action


@dataclass(frozen=True, slots=True)
class SetDispute:
    """The writer's form of TracingStore.set_dispute."""

    key: TracingKey
    dispute: Dispute


Op = WriteOp | SetDispute


@dataclass
class Doc:
    """The writer's view of one key: what the cluster holds, or will once this group is written."""

    key: TracingKey
    tid: int
    exists: bool = False
    version: int = 0
    live: bool = False
    type: str = ""
    born: int = 0
    tracing: Tracing | None = None
    indexed_at: str = ""
    replaces: tuple[str, int] | None = None

    @classmethod
    def from_source(cls, key: TracingKey, source: dict[str, Any]) -> Doc:
        body = source.get("body")
        replaces = (source["replaces"], source["replaces_version"]) if source.get("replaces") else None
        return cls(
            key,
            source["tid"],
            True,
            source["source_version"],
            source["live"],
            source["type"],
            source.get("born", 0),
            tracing_from_json(body) if source["live"] and body else None,
            source.get("indexed_at", ""),
            replaces,
        )


@dataclass
class Tomb:
    """A tombstone that follows from an operation (step 2), logged before it is sent (step 0); the entry is
    taken back (step 3) when a newer write wins over it and no serial order of the two would have logged it."""

    doc: Doc
    kind: str
    version: int
    reason: str
    actor: str
    # Its deletion-log entry, numbered when the tomb was planned so the log keeps the order of the group's
    # operations (the writer sets it: opensearch_writer_rules).
    log: Action | None = None


@dataclass
class Plan:
    result: WriteResult
    primary: list[Action] = field(default_factory=list)
    logged: list[Action] = field(default_factory=list)  # deletion-log creates, sent before the primary
    tombs: list[Tomb] = field(default_factory=list)
    after: list[Action] = field(default_factory=list)  # sent once the primary landed: its disputes' removal
    # Ids of deletion-log entries an earlier, failed attempt may have left for a deletion that can no longer
    # land (the record since written at a newer version of the same life): taken back if found (step 3).
    stale: list[str] = field(default_factory=list)
    # The tracing documents (ids) the plan read or writes: when it fails, a later plan of the group that
    # touches one of them was planned on what it would have written, and fails with it.
    touches: set[int] = field(default_factory=set)
    filing: bool = False  # a statement of dispute alone: its failure changes no document a later plan read
    failure: Unavailable | None = None  # set when an action of its own, or one that follows from it, failed


def filed_after(plans: list[Plan], disputes: str) -> set[int]:
    """Ids (`id(tomb)`) of the tombstones whose tracing gets a statement of dispute filed by a later plan of
    the group: step 3 must not remove it with the old life's (diff review 21b-4)."""
    later: set[str] = set()
    out: set[int] = set()
    for plan in reversed(plans):
        out |= {id(tomb) for tomb in plan.tombs if str(tomb.doc.tid) in later}
        later |= {a.doc_id for a in plan.primary if a.op == "index" and a.index == disputes}
    return out


def keep_later_disputes(plans: list[Plan], disputes: str) -> None:
    """A dispute's removal that follows a write (a delete, a refile to another person) is sent after every
    operation of the write group: a statement filed on the tracing's new life by a later operation of the
    same group (the writer groups concurrent submits) was removed with it, though FileDispute had said it
    was filed (diff review 1). Such a removal is dropped when a later plan of the group files one there."""
    filed_later: set[str] = set()
    for plan in reversed(plans):
        plan.after = [
            a for a in plan.after if not (a.op == "delete" and a.index == disputes and a.doc_id in filed_later)
        ]
        filed_later |= {a.doc_id for a in plan.primary if a.op == "index" and a.index == disputes}
