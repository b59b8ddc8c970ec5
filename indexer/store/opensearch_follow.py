"""What follows from an OpenSearch write (indexer.store.opensearch_writer): the tombstones a group plans
beyond its operations, found in the cluster and in the group's view of the documents it touches.

- A favorable NAC history supersedes the subject's earlier histories (opensearch_lifecycle judges as the
  embedded store does); replayed, it finishes what its first write may have left undone.
- A completion (Replace under a new key) tombstones its old record in a second request; when that request
  failed, the old record stays live, hidden behind the new one that names it (`replaces`). The next write
  of the new record, or the completion's replay, finishes it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from opensearchpy import OpenSearch
from opensearchpy.exceptions import TransportError

from indexer.model import TracingKey, TracingType
from indexer.store.base import WriteOutcome, WriteResult
from indexer.store.opensearch_io import Action, bulk, hits, require, search, unavailable
from indexer.store.opensearch_lifecycle import candidates_query, supersedes
from indexer.store.opensearch_plan import Doc, Plan, Tomb
from indexer.store.opensearch_resolve import read
from indexer.store.opensearch_schema import Names, parse_instant

View = dict[TracingKey, Doc]


@dataclass(frozen=True, slots=True)
class Reads:
    """Where a write group reads: the alias, and the versions a rebuild is leaving (opensearch_phase)."""

    client: OpenSearch
    names: Names
    leaving: tuple[str, ...] = ()


def load_replaced(reads: Reads, view: View) -> None:
    """Add to the view the old records the group's completions name (`finish` needs them)."""
    named = sorted({doc.replaces[0] for doc in view.values() if doc.replaces})
    for source in read(reads.client, reads.names, named, reads.leaving).values():
        key = TracingKey(source["agency"], source["record_number"])
        view.setdefault(key, Doc.from_source(key, source))  # what this group did to it stands


def unfinished(doc: Doc, view: View) -> Doc | None:
    """The old record of the completion whose new record `doc` is, if that completion was left half done
    (the old record still live at the version it replaced)."""
    if doc.replaces is None:
        return None
    tid, version = doc.replaces
    return next((d for d in view.values() if str(d.tid) == tid and d.live and d.version <= version), None)


def finish(doc: Doc, view: View, actor: str) -> list[Tomb]:
    """The tombstone that finishes a completion `doc` left half done (none if it was finished)."""
    prior = unfinished(doc, view)
    if prior is None:
        return []
    # At the completion's version (the new record's life began there: `born`), as its first attempt logged it.
    ended = max(prior.version, doc.born)
    prior.live, prior.version = False, ended
    return [Tomb(prior, prior.type, ended, f"SUPERSEDED by {doc.type or '?'} {doc.key}", actor)]


def resupersede(reads: Reads, doc: Doc, version: int, view: View, actor: str) -> list[Tomb]:
    """A replay of the live NAC history `doc` holds at `version`: what its first write may have left
    undone. Only histories indexed no later than it: one that arrived after it was kept then (it is
    superseded at indexing only, as the embedded store does) and stays kept. A tie (the same group)
    counts as before it, erring toward the domain rule (a later favorable NAC deletes the earlier)."""
    if not doc.live or doc.version != version or doc.type != TracingType.NAC_HISTORY.value or doc.tracing is None:
        return []
    return superseded(reads, doc, view, actor, indexed_by=parse_instant(doc.indexed_at))


def superseded(reads: Reads, doc: Doc, view: View, actor: str, indexed_by: dt.datetime | None = None) -> list[Tomb]:
    """Tombstones for the live NAC histories that `doc` (a NAC history just planned) supersedes: found
    in the cluster and in this group's view, judged as the embedded store judges (opensearch_lifecycle);
    with `indexed_by`, only those indexed at or before that moment (a replay: `resupersede`)."""
    new = doc.tracing
    assert new is not None
    query = candidates_query(new)
    if query is None:
        return []
    body = {"query": query, "size": 10_000, "sort": [{"tid": "asc"}]}
    found = [hit["_source"] for hit in hits(search(reads.client, body, index=reads.names.tracings))]
    if reads.leaving:
        # Also the histories written to the leaving version only, each as the newer of its two copies (one
        # live in the old version may have been ended behind the alias).
        index = ",".join(reads.leaving)
        more = {hit["_id"] for hit in hits(search(reads.client, body, index=index, ignore_unavailable=True))}
        ids = sorted({str(source["tid"]) for source in found} | more)
        found = [s for s in read(reads.client, reads.names, ids, reads.leaving).values() if s["live"]]
    for source in found:
        key = TracingKey(source["agency"], source["record_number"])
        view.setdefault(key, Doc.from_source(key, source))  # what this group did to it stands
    reason = f"SUPERSEDED by favorable NAC history {new.key}"
    tombs = []
    for other in sorted(view.values(), key=lambda d: d.tid):
        if other is doc or not other.live or other.type != TracingType.NAC_HISTORY.value:
            continue
        if indexed_by is not None and parse_instant(other.indexed_at) > indexed_by:
            continue
        if other.tracing is not None and supersedes(new, other.tracing):
            ended = max(other.version, doc.version)
            tombs.append(Tomb(other, other.type, ended, reason, actor))
            other.live, other.version = False, ended  # a later operation of this group sees it ended there
    return tombs


def take_back_lost(
    client: OpenSearch,
    names: Names,
    refresh: str,
    plans: list[Plan],
    lost: set[int],
    logs: list[tuple[Plan, Action]],
    created: set[str],
) -> None:
    """Operations another writer overtook (`id(plan)` in `lost`): report what the cluster holds, follow
    with nothing, and take back the deletion-log entries this group wrote for them."""
    undo = [
        Action("delete", action.index, action.doc_id)
        for plan, action in logs
        if id(plan) in lost and action.doc_id in created
    ]
    if undo:
        require(bulk(client, undo, refresh=refresh), allowed=frozenset({404}))
    for plan in plans:
        if id(plan) in lost:
            key = next(a for a in plan.primary if a.index == names.tracings).doc_id
            plan.result, plan.tombs, plan.after = (
                WriteResult(WriteOutcome.UNCHANGED, _held_version(client, names, key)),
                [],
                [],
            )


def _held_version(client: OpenSearch, names: Names, doc_id: str) -> int:
    try:
        found = client.get(index=names.tracings, id=doc_id, _source_includes="source_version")
    except TransportError as error:
        raise unavailable("read", error) from error
    return int(found["_source"]["source_version"]) if found.get("found") else 0
