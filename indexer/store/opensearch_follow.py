"""What follows from an OpenSearch write (indexer.store.opensearch_writer): the tombstones a group plans
beyond its operations, found in the cluster and in the group's view of the documents it touches.

- A favorable NAC history supersedes the subject's earlier histories (opensearch_lifecycle judges as the
  embedded store does); replayed, it finishes what its first write may have left undone: the histories its
  deletion-log entries name whose tombstones did not land (logged in step 0, so marked before the history
  itself is written). No two instances' clocks are compared for that.
- A completion (Replace under a new key) tombstones its old record in a second request; when that request
  failed, the old record stays live, hidden behind the new one that names it (`replaces`). The next write
  of the new record or of the old one, or the completion's replay, finishes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from opensearchpy import OpenSearch
from opensearchpy.exceptions import TransportError

from indexer.model import Tracing, TracingKey, TracingType
from indexer.store.base import WriteOutcome, WriteResult
from indexer.store.opensearch_deletion_log import FAVORABLE_PREFIX, entries
from indexer.store.opensearch_io import PAGE, Action, bulk, hits, require, search, unavailable
from indexer.store.opensearch_lifecycle import candidates_query, supersedes
from indexer.store.opensearch_plan import Doc, Plan, Tomb
from indexer.store.opensearch_resolve import read
from indexer.store.opensearch_schema import Names

View = dict[TracingKey, Doc]


@dataclass(frozen=True, slots=True)
class Reads:
    """Where a write group reads: the alias, and the versions a rebuild is leaving (opensearch_phase)."""

    client: OpenSearch
    names: Names
    leaving: tuple[str, ...] = ()
    # The marks (`_left_waiting`) of the histories a group replays, read at once by `load_marks`: by reason,
    # the version each names. A reason not in it is searched for on its own.
    marks: dict[str, dict[str, int]] = field(default_factory=dict)


def load_marks(reads: Reads, replayed: list[Tracing]) -> None:
    """Read in one search the marks of the favorable histories a group replays (a review of the fixes, 4: one
    search per replayed history, one after another in the writer's thread). Only those that can supersede
    something have marks to finish."""
    reasons = sorted({f"{FAVORABLE_PREFIX}{t.key}" for t in replayed if candidates_query(t) is not None})
    if len(reasons) < 2:
        return  # one is searched for as it is planned: no request is saved
    for reason in reasons:
        reads.marks[reason] = {}
    for hit in entries(reads.client, reads.names, {"terms": {"reason": reasons}}):
        source = hit["_source"]
        reads.marks[str(source["reason"])][str(source["tid"])] = int(source["source_version"])


def load_replaced(reads: Reads, view: View) -> None:
    """Add to the view the old records the group's completions name (`finish` needs them)."""
    named = sorted({doc.replaces[0] for doc in view.values() if doc.replaces})
    for source in read(reads.client, reads.names, named, reads.leaving).values():
        key = TracingKey(source["agency"], source["record_number"])
        view.setdefault(key, Doc.from_source(key, source))  # what this group did to it stands


def load_replacing(reads: Reads, view: View) -> dict[str, list[TracingKey]]:
    """Add to the view the documents that name (`replaces`) a live record of the group, and return their keys
    by the id they name: a write of a completion's old record finishes that completion first, as the new
    record's next write does. Else an older update of the old record (a file arriving late) landed beside
    the new one, where the embedded store refuses it (the old record ended at the completion's version).
    Searched, not read by id: step 1 of the completion waited for a refresh before its step 2 could fail."""
    live = sorted(str(doc.tid) for doc in view.values() if doc.live)
    if not live:
        return {}
    body = {"query": {"terms": {"replaces": live}}, "size": PAGE, "_source": False}
    index = ",".join([reads.names.tracings, *reads.leaving])
    ids = sorted({hit["_id"] for hit in hits(search(reads.client, body, index=index, ignore_unavailable=True))})
    naming: dict[str, list[TracingKey]] = {}
    for source in read(reads.client, reads.names, ids, reads.leaving).values():
        if source.get("replaces") in live:
            key = TracingKey(source["agency"], source["record_number"])
            view.setdefault(key, Doc.from_source(key, source))  # what this group did to it stands
            naming.setdefault(source["replaces"], []).append(key)
    return naming


def unfinished(doc: Doc, view: View) -> Doc | None:
    """The old record of the completion whose new record `doc` is, if that completion was left half done:
    the old record still live at or below the version the completion ended it at (the new record's `born`),
    or the version it replaced."""
    if doc.replaces is None:
        return None
    tid, version = doc.replaces
    ended = max(version, doc.born)
    return next((d for d in view.values() if str(d.tid) == tid and d.live and d.version <= ended), None)


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
    """A replay of the live NAC history `doc` holds at `version`: what its first write left undone, and
    nothing more. That is the histories its deletion-log entries name whose tombstones did not land (each
    at the version logged), and the histories of its own write group it supersedes. A history that arrived
    after it was kept then (supersession is at indexing, as on the embedded store) and stays kept, whatever
    the clocks of the instances that wrote the two say (a review found a resend deleting one a clock running
    behind had dated earlier). The documents do not keep a group's order: a history that came after it in its
    group goes too, as on the embedded store, whose resend takes those indexed in the same instant."""
    new = doc.tracing
    if not doc.live or doc.version != version or doc.type != TracingType.NAC_HISTORY.value or new is None:
        return []
    if candidates_query(new) is None:
        return []  # it supersedes nothing as it is now: no deletion-log search per replayed history (a review, 4)
    reason = f"{FAVORABLE_PREFIX}{doc.key}"
    tombs = []
    for other, ended in _left_waiting(reads, reason, view):
        # Only what the history, as it is now, still supersedes: an entry written for a favorable version that
        # never landed (its step 1 refused, the entry kept as the outcome was unknown) must not end a history
        # the embedded store keeps once the history was corrected (a review found a resend deleting one).
        if other.tracing is None or not supersedes(new, other.tracing):
            continue
        other.live, other.version = False, ended  # a later operation of this group sees it ended there
        tombs.append(Tomb(other, other.type, ended, reason, actor))
    for other in _same_instant(reads, doc, view):
        if other.live and other.tracing is not None and supersedes(new, other.tracing):
            ended = max(other.version, doc.version)
            other.live, other.version = False, ended
            tombs.append(Tomb(other, other.type, ended, reason, actor))
    return tombs


def _left_waiting(reads: Reads, reason: str, view: View) -> list[tuple[Doc, int]]:
    """The live NAC histories a deletion-log entry with this reason names whose tombstone did not land (the
    history at or below the version logged), each with that version."""
    logged = reads.marks.get(reason)
    if logged is None:
        marks = entries(reads.client, reads.names, {"term": {"reason": reason}})
        logged = {str(hit["_source"]["tid"]): int(hit["_source"]["source_version"]) for hit in marks}
    by_tid = {str(d.tid): d for d in view.values()}
    unread = sorted(tid for tid in logged if tid not in by_tid)
    for source in read(reads.client, reads.names, unread, reads.leaving).values():
        key = TracingKey(source["agency"], source["record_number"])
        by_tid[str(source["tid"])] = view.setdefault(key, Doc.from_source(key, source))
    found = [(by_tid[tid], ended) for tid, ended in sorted(logged.items()) if tid in by_tid]
    history = TracingType.NAC_HISTORY.value
    return [(d, ended) for d, ended in found if d.live and d.type == history and d.version <= ended]


def _same_instant(reads: Reads, doc: Doc, view: View) -> list[Doc]:
    """The live histories `doc` may supersede that were indexed in the very instant it was: its own write
    group (one writer's one reading of its clock, so no two clocks are compared)."""
    assert doc.tracing is not None
    query = candidates_query(doc.tracing)
    if query is None or not doc.indexed_at:
        return []
    instant = {"range": {"indexed_at": {"gte": doc.indexed_at, "lte": doc.indexed_at}}}  # to the millisecond
    body = {"query": {"bool": {"filter": [query, instant]}}, "size": PAGE, "_source": False}
    index = ",".join([reads.names.tracings, *reads.leaving])
    ids = sorted({hit["_id"] for hit in hits(search(reads.client, body, index=index, ignore_unavailable=True))})
    found = []
    for source in read(reads.client, reads.names, ids, reads.leaving).values():
        key = TracingKey(source["agency"], source["record_number"])
        other = view.setdefault(key, Doc.from_source(key, source))  # what this group did to it stands
        if other is not doc and other.indexed_at == doc.indexed_at and other.type == TracingType.NAC_HISTORY.value:
            found.append(other)
    return sorted(found, key=lambda d: d.tid)


# Candidates per request: OpenSearch's default index.max_result_window (opensearch_io.PAGE). A constant, so that
# a test pages through more candidates than one request holds without writing ten thousand of them.
SUPERSESSION_PAGE = 10_000


def superseded(reads: Reads, doc: Doc, view: View, actor: str) -> list[Tomb]:
    """Tombstones for the live NAC histories that `doc` (a NAC history just planned) supersedes: found
    in the cluster and in this group's view, judged as the embedded store judges (opensearch_lifecycle)."""
    new = doc.tracing
    assert new is not None
    query = candidates_query(new)
    if query is None:
        return []

    def every_candidate(index: str, *, ignore_unavailable: bool = False) -> list[dict[str, Any]]:
        # Page after page (search_after on the unique tid): one page cut a common name's candidates at the
        # result window, silently keeping the subject's earlier history live (a review of the backends).
        body: dict[str, Any] = {"query": query, "size": SUPERSESSION_PAGE, "sort": [{"tid": "asc"}]}
        found: list[dict[str, Any]] = []
        while True:
            page = hits(search(reads.client, body, index=index, ignore_unavailable=ignore_unavailable))
            found += page
            if len(page) < SUPERSESSION_PAGE:
                return found
            body["search_after"] = page[-1]["sort"]

    found = [hit["_source"] for hit in every_candidate(reads.names.tracings)]
    if reads.leaving:
        # Also the histories written to the leaving version only, each as the newer of its two copies (one
        # live in the old version may have been ended behind the alias).
        more = {hit["_id"] for hit in every_candidate(",".join(reads.leaving), ignore_unavailable=True)}
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
