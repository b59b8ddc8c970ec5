"""`dcii index migrate` into OpenSearch (OpenSearchStore.restore): records taken exactly as another store held
them (indexer.store.migrate), with no lifecycle rule, and what the target holds at the same or a newer version
kept, as the embedded store's restore keeps it (sqlite_rules.WriteRules._restore).

The embedded store restores a batch in one transaction. Here a tracing and its statement of dispute are two
documents, so a statement goes out only once its tracing has landed, with the `born` of the tracing document
as written (a dispute attaches to one life of its tracing):
- every restored tracing begins its life (`born`) at the restored version. The source may have ended the
  held life in between (deleted, then filed again for the same person: a review of the parity fixes,
  finding 2), and the source's deletion-log entry of that end is below the restored version; kept, the held
  `born` would make the entry read as one that never landed (opensearch_deletion_log.never_landed), hidden
  from readers and removed by `repair`. The restore cannot tell from the tracings alone (the log comes in a
  later call), and a `born` at the restored version is only ever later than the life began, never earlier;
- over a live tracing of the same person (indexer.subjects), the target's own statement stays unless the
  source's replaces it, as an update keeps it: it is written again with the new `born`, before the tracing
  (so a run cut short between the two is finished by running it again, which writes the tracing), and only
  if unchanged since it was read; put back at the held `born` when a newer write refuses the tracing;
- over another person's tracing, a tombstone or nothing, another person's statement goes;
- a tracing the target holds at the same or a newer version is left with its statement: one filed on the
  target since an earlier run, or one of a record deleted or refiled since, is never overwritten. One held at
  the same version, live and with no statement of its life, gets the source's: that is a run cut short
  between a tracing and its statement (a statement is never withdrawn, only ended with its life), which
  running the migration again then finishes.

A value a real cluster cannot index is refused, the whole batch before anything of it is written: a keyword
longer than 32,766 bytes (Lucene's limit on one term) fails its document on a cluster ("immense term") where
osmem-server takes it. Ingest never gets near it (its edit criteria refuse over-long names, record numbers,
titles and reasons, and never cut them), and a migration may not change a record to fit it either: cut, a
record number is another key and a name another person; left out of the index (`ignore_above`), the record
is no longer found by it. So the operator hears which record and field, and corrects it at the source.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from opensearchpy import OpenSearch
from opensearchpy.exceptions import TransportError

from indexer.exc import FailedPrecondition
from indexer.model import Dispute, StoredTracing, TracingKey
from indexer.store.base import DeletionRecord, Tombstone
from indexer.store.opensearch_filings import DisputeFilings
from indexer.store.opensearch_io import Action, ItemResult, bulk, require, search_pages, unavailable
from indexer.store.opensearch_plan import Doc
from indexer.store.opensearch_schema import (
    DELETION_MAPPING,
    DISPUTE_MAPPING,
    TRACING_MAPPING,
    Names,
    deletion_doc,
    dispute_doc,
    tombstone_doc,
    tracing_doc,
)
from indexer.subjects import same_subject

KEYWORD_MAX_BYTES = 32_766  # Lucene's limit on one indexed term or doc value: a longer one fails its document
_BULK_PART = 1000  # actions per bulk request


@dataclass(frozen=True, slots=True)
class RestoreTarget:
    """What a restore needs of its OpenSearchStore: where it writes, its writer's realtime view of a key,
    its dispute mark, and whether a rebuild is under way."""

    client: OpenSearch
    names: Names
    refresh: str
    resolve: Callable[[Sequence[TracingKey]], dict[TracingKey, Doc]]
    filings: DisputeFilings
    rebuilding: Callable[[], bool]


@dataclass(frozen=True, slots=True)
class _Write:
    """A tracing document or tombstone to write and what follows once it has landed: its statement of
    dispute written, or the statement of the life it ends removed."""

    action: Action
    then: Action | None


def restore(
    target: RestoreTarget,
    tracings: Sequence[StoredTracing],
    tombstones: Sequence[Tombstone],
    deletions: Sequence[DeletionRecord],
) -> None:
    """TracingStore.restore on a cluster (the module's docstring)."""
    if target.rebuilding():
        # Its writes keep the source's indexed_at and are not mirrored: the rebuild's catch-up, which goes
        # by indexed_at, never copied them, and they went with the old version (a review of the rebuild).
        raise FailedPrecondition(
            "a rebuild of the index is running or was cut short: migrate into it once `dcii index rebuild`"
            " (with --resume if it was cut short) has finished"
        )
    names = target.names
    view = target.resolve([s.tracing.key for s in tracings] + [t.key for t in tombstones] + [r.key for r in deletions])
    unfinished = _statements_cut_short(target, view, tracings)  # before the writes below change the view
    carried = _statements_carried(target, view, tracings)  # likewise
    writes = [w for stored in tracings if (w := _tracing_write(names, view[stored.tracing.key], stored))]
    writes += [w for tomb in tombstones if (w := _tombstone_write(names, view[tomb.key], tomb))]
    entries = []
    for seq, record in enumerate(deletions):
        entry = deletion_doc(record, tid=view[record.key].tid, seq=seq)
        entries.append(Action("create", names.deletions, entry["log_id"], entry))
    _refuse_immense(names, [w.action for w in writes] + [w.then for w in writes if w.then] + unfinished + entries)

    # 409: the statement changed since it was read (filed again, or ended): the newer one stands.
    carried_as = _send(target, [action for action, _ in carried], allowed=frozenset({409}))
    landed = _send(target, [w.action for w in writes], allowed=frozenset({409}))
    # 409: the target got a newer version since it was read; its statement is its own, so one carried to the
    # restored life goes back to the held life's `born` (if unchanged since), where that write left it.
    refused = {w.action.doc_id for w, result in zip(writes, landed, strict=True) if result.conflict}
    _send(target, _carried_back(carried, carried_as, refused), allowed=frozenset({409}))
    if any(result.ok for result in carried_as):
        target.filings.bump()  # statements moved to another life
    follow = unfinished + [w.then for w, result in zip(writes, landed, strict=True) if result.ok and w.then]
    _send(target, follow, allowed=frozenset({404}))  # 404: a statement to remove that was never there
    if any(action.op == "index" for action in follow):
        target.filings.bump()  # statements attached as they were held
    _send(target, entries, allowed=frozenset({409}))  # 409 on `create`: logged by an earlier run
    if target.rebuilding():  # one began while these were written: they may go with the old version
        raise FailedPrecondition(
            "a rebuild of the index began during the migration: run `dcii index migrate` again once it has"
            " finished (what it copied again is kept once)"
        )


def _tracing_write(names: Names, doc: Doc, stored: StoredTracing) -> _Write | None:
    """The live tracing `stored` over `doc` (what the target holds), None when the target keeps its own."""
    tracing = stored.tracing
    version = tracing.source_version
    if doc.exists and doc.version >= version:
        return None
    refiled = doc.live and doc.tracing is not None and not same_subject(doc.tracing.subject, tracing.subject)
    born = version  # the module's docstring: the held life may have ended in the source in between
    source = tracing_doc(tracing, tid=doc.tid, born=born, indexed_at=stored.indexed_at)
    then = None
    if stored.dispute is not None:
        then = Action("index", names.disputes, str(doc.tid), dispute_doc(stored.dispute, tid=doc.tid, born=born))
    elif refiled:
        then = Action("delete", names.disputes, str(doc.tid))  # another person's statement ends with its life
    # A tombstone of the same key later in this call is planned over what this leaves.
    doc.exists, doc.version, doc.live, doc.born, doc.tracing = True, version, True, born, tracing
    doc.type = tracing.type.value if tracing.type is not None else ""
    action = Action("index", names.tracings, str(doc.tid), source, version, "external", require_alias=True)
    return _Write(action, then)


def _tombstone_write(names: Names, doc: Doc, tomb: Tombstone) -> _Write | None:
    """The tombstone `tomb` over `doc`, at the time it was written in the source (a completion onto it
    compares that with its old record's: `Replace`); None when the target holds the key as new or newer."""
    if doc.exists and doc.version >= tomb.source_version:
        return None
    version = tomb.source_version
    source = tombstone_doc(tomb.key, tid=doc.tid, version=version, kind=doc.type, at=tomb.indexed_at)
    # Over a live tracing, its statement ends with it (the embedded store drops it with the row's life).
    then = Action("delete", names.disputes, str(doc.tid)) if doc.live else None
    doc.exists, doc.version, doc.live, doc.tracing = True, version, False, None
    action = Action("index", names.tracings, str(doc.tid), source, version, "external", require_alias=True)
    return _Write(action, then)


def _carried_back(
    carried: Sequence[tuple[Action, int]], results: Sequence[ItemResult], refused: set[str]
) -> list[Action]:
    """The statements carried to a restored life whose tracing write was then refused, back at the held
    life's `born`, each only if unchanged since carried."""
    return [
        Action("index", action.index, action.doc_id, (action.source or {}) | {"born": born}, **_at(result))
        for (action, born), result in zip(carried, results, strict=True)
        if result.ok and action.doc_id in refused
    ]


def _at(result: ItemResult) -> dict[str, Any]:
    return {"seq_no": result.seq_no, "primary_term": result.primary_term}


def _statements_carried(
    target: RestoreTarget, view: dict[TracingKey, Doc], tracings: Sequence[StoredTracing]
) -> list[tuple[Action, int]]:
    """The target's own statements of the live tracings of the same person that this restore writes anew
    with no statement of the source's, written again with the restored version as their `born` (the
    restored tracing's), each only if unchanged since read here."""
    over: dict[str, tuple[int, int]] = {}  # tid: the held life's born, the restored one's
    for stored in tracings:
        tracing, doc = stored.tracing, view[stored.tracing.key]
        if stored.dispute is not None or not doc.live or doc.version >= tracing.source_version:
            continue
        if doc.tracing is not None and same_subject(doc.tracing.subject, tracing.subject):
            over[str(doc.tid)] = (doc.born, tracing.source_version)
    if not over:
        return []
    body = {"query": {"ids": {"values": list(over)}}, "sort": [{"tid": "asc"}], "seq_no_primary_term": True}
    try:
        found = list(search_pages(target.client, body, index=target.names.disputes))
    except TransportError as error:
        raise unavailable("read its disputes", error) from error
    carried = []  # each with the held life's `born`
    for held in found:
        old, new = over[held["_id"]]
        if held["_source"]["born"] != old:
            continue  # none, or one left of an earlier life (not shown: it stays so)
        source = held["_source"] | {"born": new}
        seq = {"seq_no": held["_seq_no"], "primary_term": held["_primary_term"]}
        carried.append((Action("index", target.names.disputes, held["_id"], source, **seq), old))
    return carried


def _statements_cut_short(
    target: RestoreTarget, view: dict[TracingKey, Doc], tracings: Sequence[StoredTracing]
) -> list[Action]:
    """The source's statements of the tracings the target holds live at the same version with none attached
    to that life: an earlier run wrote the tracing and was cut short before its statement."""
    held: list[tuple[Doc, Dispute]] = []
    for stored in tracings:
        doc = view[stored.tracing.key]
        if stored.dispute is not None and doc.live and doc.version == stored.tracing.source_version:
            held.append((doc, stored.dispute))
    if not held:
        return []
    try:
        found = target.client.mget(index=target.names.disputes, body={"ids": [str(doc.tid) for doc, _ in held]})
    except TransportError as error:
        raise unavailable("read its disputes", error) from error
    attached = {d["_id"]: d["_source"]["born"] for d in found["docs"] if d.get("found")}
    return [
        Action("index", target.names.disputes, str(doc.tid), dispute_doc(dispute, tid=doc.tid, born=doc.born))
        for doc, dispute in held
        if attached.get(str(doc.tid)) != doc.born
    ]


def _send(target: RestoreTarget, actions: Sequence[Action], *, allowed: frozenset[int]) -> list[ItemResult]:
    results: list[ItemResult] = []
    for start in range(0, len(actions), _BULK_PART):
        part = bulk(target.client, actions[start : start + _BULK_PART], refresh=target.refresh)
        require(part, allowed=allowed)
        results += part
    return results


def _refuse_immense(names: Names, actions: Sequence[Action]) -> None:
    """FailedPrecondition, before anything is written, when a document holds a keyword a cluster cannot
    index (the module's docstring). The message names the record and the field, never the value."""
    mappings = {names.tracings: TRACING_MAPPING, names.disputes: DISPUTE_MAPPING, names.deletions: DELETION_MAPPING}
    for action in actions:
        if action.source is None:
            continue
        found = _immense_field(action.source, mappings[action.index]["properties"])
        if found is None:
            continue
        field, size = found
        raise FailedPrecondition(
            f"{_what(names, action, field)} has a {field} of {size} bytes, more than the {KEYWORD_MAX_BYTES} a"
            " cluster indexes as one value: nothing of this batch was migrated; correct it in the source (ingest"
            " refuses such a value) and migrate again"
        )


def _what(names: Names, action: Action, field: str) -> str:
    """Which record an action writes, for the operator: its key, unless the key is the value refused."""
    assert action.source is not None
    agency, record = action.source.get("agency", ""), action.source.get("record_number", "")
    key = {"agency": "a record", "record_number": f"a record of {agency}"}.get(field, f"{agency}/{record}")
    if action.index == names.disputes:
        return f"the statement of dispute of tracing id {action.doc_id}"
    if action.index == names.deletions:
        return f"the deletion-log entry of {key}"
    return f"the tracing {key}"


def _immense_field(source: dict[str, Any], properties: dict[str, Any], path: str = "") -> tuple[str, int] | None:
    """The first keyword field of `source` (by its mapping's `properties`) whose value a cluster cannot index,
    with its size in bytes; a field kept only in _source (neither indexed nor with doc values) takes any."""
    for field, value in source.items():
        spec, name = properties.get(field, {}), f"{path}{field}"
        values = value if isinstance(value, list) else [value]
        if "properties" in spec:
            for inner in values:
                if isinstance(inner, dict) and (found := _immense_field(inner, spec["properties"], f"{name}.")):
                    return found
            continue
        if spec.get("type") != "keyword" or not (spec.get("index", True) or spec.get("doc_values", True)):
            continue
        for each in values:
            if isinstance(each, str) and (size := len(each.encode())) > KEYWORD_MAX_BYTES:
                return name, size
    return None
