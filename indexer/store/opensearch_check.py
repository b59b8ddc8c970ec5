"""The OpenSearch backend's integrity check and its repair (`dcii index check`, `dcii index repair`).

The check reports what a cluster, a write cut short or a snapshot can leave wrong: a red cluster, an alias on
more or fewer than one index, an index of an older schema, a completion or a favorable NAC history applied in
part (both need the owner's resend, which finishes them: the message says so), statements of dispute whose
tracing is no longer live, deletion-log entries of deletions that never landed, and deleted records whose
deletion is not in the log.

The repair removes what no reader uses, each removal conditional on the document being as it was read
(if_seq_no, if_primary_term):
- statements of dispute left behind: the writer removes a deleted tracing's dispute in its last request
  (indexer.store.opensearch_writer); when that request fails, the dispute stays, naming (by `born`) the life
  of the tracing that ended, so no reader attaches it. A dispute filed meanwhile against a new life of the
  tracing, under the same document id, is kept;
- deletion-log entries of deletions that never landed: logged before their tombstone, whose request failed,
  and the record since written at a newer version of the same life (opensearch_deletion_log: no reader
  counts them).

A tombstone without its entry is not repaired: the reason and the actor are gone with the entry. A snapshot
is consistent per shard, not across the tracings and the log; docs/RUNBOOK.md ("OpenSearch: snapshots").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opensearchpy import OpenSearch
from opensearchpy.exceptions import TransportError

from indexer.store import opensearch_deletion_log as deletion_log
from indexer.store.opensearch_admin import current_versions, schema_of, unfinished
from indexer.store.opensearch_io import PAGE, Action, bulk, require, search_pages, unavailable
from indexer.store.opensearch_schema import SCHEMA_VERSION, Names


@dataclass(frozen=True, slots=True)
class DocVersion:
    """Where a document stood when read: a conditional write succeeds only if it still stands there."""

    seq_no: int
    primary_term: int


def problems(client: OpenSearch, names: Names) -> list[str]:
    """Everything the check finds wrong (empty: sound); no PII in any message."""
    found: list[str] = []
    try:
        if (status := client.cluster.health()["status"]) == "red":
            found.append(f"cluster health is {status}")
        versions = current_versions(client, names)
        if len(versions) != 1:
            found.append(f"alias {names.tracings} points at {len(versions)} indices")
        for left in unfinished(client, names):
            found.append(
                f"{left}: a rebuild was cut short (writes made during its copy may be in the old version only);"
                " `dcii index rebuild --resume` finishes it"
            )
        for index in versions:
            if (schema := schema_of(client, index)) != SCHEMA_VERSION:
                found.append(f"{index} has schema {schema}, this program writes {SCHEMA_VERSION}: rebuild it")
        found += _completion_problems(client, names)
        found += _log_problems(client, names)
        if strays := stray_disputes(client, names):
            found.append(
                f"{len(strays)} dispute documents point at no live tracing (left by a write cut short; "
                "no reader attaches them: `dcii index repair` removes them)"
            )
    except TransportError as error:
        found.append(f"the cluster could not be checked ({error.status_code} {error.error})")
    return found


def _completion_problems(client: OpenSearch, names: Names) -> list[str]:
    """Completions left half done: an old record live at or below the version its completion ended it at (the
    new record's `born`, or the version it replaced; a new record deleted before its completion was finished
    names the old one too, by its tombstone)."""
    body = {"query": {"bool": {"filter": [{"exists": {"field": "replaces"}}]}}, "sort": [{"tid": "asc"}],
            "_source": ["replaces", "replaces_version", "live", "born"]}  # fmt: skip
    named: dict[str, int] = {}
    for hit in search_pages(client, body, index=names.tracings):
        source = hit["_source"]
        ended = max(source["replaces_version"], source.get("born", 0) if source.get("live") else 0)
        named[source["replaces"]] = max(named.get(source["replaces"], 0), ended)
    pending = 0
    for start in range(0, len(named), PAGE):
        ids = list(named)[start : start + PAGE]
        docs = client.mget(index=names.tracings, body={"ids": ids}, _source_includes=["live", "source_version"])
        pending += sum(1 for d in docs["docs"] if d.get("found") and d["_source"]["live"]
                       and d["_source"]["source_version"] <= named[d["_id"]])  # fmt: skip
    if pending:
        return [f"{pending} completions left their old record live (replay the completion to finish it)"]
    return []


def _log_problems(client: OpenSearch, names: Names) -> list[str]:
    """What the deletion log and the tracings say of each other (opensearch_deletion_log): favorable NAC
    histories whose supersession a write cut short (their entries logged, the tombstones not written),
    entries of deletions that never landed, and deleted records with no entry."""
    found = []
    # The tombstones before the log: the writer logs a deletion before it writes its tombstone, so every
    # tombstone read here has its entry in the log read next. Read the other way round, a deletion made
    # between the two reads showed as a deleted record with no entry (a rebuild's check beside a connector).
    tombstones = _tombstones(client, names)
    logged = [hit["_source"] for hit in deletion_log.entries(client, names, {"match_all": {}})]
    hidden, held = deletion_log.phantoms(client, names, logged)
    if unfinished_histories := deletion_log.favorable_pending(logged, held):
        to_resend = ", ".join(unfinished_histories[:5]) + (", ..." if len(unfinished_histories) > 5 else "")
        summary = f"{len(unfinished_histories)} favorable NAC histories left earlier histories live"
        found.append(f"{summary} (resend them to finish: {to_resend})")
    if phantoms := len(hidden):
        found.append(
            f"{phantoms} deletion-log entries name a deletion that never landed (the record was written again at"
            " a newer version before it; no reader counts them: `dcii index repair` removes them)"
        )
    if unlogged := _unlogged(tombstones, logged):
        found.append(
            f"{unlogged} deleted records have no deletion-log entry (a migration not finished: run it again; or"
            ' the log restored from a snapshot older than the tracings\': docs/RUNBOOK.md, "OpenSearch: snapshots")'
        )
    return found


def _tombstones(client: OpenSearch, names: Names) -> list[tuple[int, int]]:
    """(tid, version) of each tombstone of a record once live: a key deleted before it was ever written
    (`type` empty) has no entry by design."""
    body = {"query": {"term": {"live": False}}, "sort": [{"tid": "asc"}], "_source": ["tid", "source_version", "type"]}
    found = (hit["_source"] for hit in search_pages(client, body, index=names.tracings))
    return [(int(source["tid"]), int(source["source_version"])) for source in found if source.get("type")]


def _unlogged(tombstones: list[tuple[int, int]], logged: list[dict[str, Any]]) -> int:
    """Tombstones with no entry at or below their version (a deletion at a newer version of a key already
    deleted moves the version, not the entry)."""
    earliest: dict[int, int] = {}
    for source in logged:
        tid = int(source["tid"])
        earliest[tid] = min(earliest.get(tid, source["source_version"]), source["source_version"])
    return sum(1 for tid, version in tombstones if earliest.get(tid, version + 1) > version)


def stray_disputes(client: OpenSearch, names: Names) -> dict[str, DocVersion]:
    """The dispute documents no reader attaches (their tracing is gone, deleted, or in another life than
    the one the dispute was filed against), by document id, with the version each was read at."""
    body: dict[str, Any] = {
        "query": {"match_all": {}},
        "sort": [{"tid": "asc"}],
        "_source": ["born"],
        "seq_no_primary_term": True,
    }
    disputes = {
        h["_id"]: (h["_source"]["born"], DocVersion(h["_seq_no"], h["_primary_term"]))
        for h in search_pages(client, body, index=names.disputes)
    }
    strays: dict[str, DocVersion] = {}
    ids = list(disputes)
    for start in range(0, len(ids), PAGE):
        chunk = {"ids": ids[start : start + PAGE]}
        docs = client.mget(index=names.tracings, body=chunk, _source_includes=["live", "born"])
        for d in docs["docs"]:
            born, version = disputes[d["_id"]]
            if not d.get("found") or not d["_source"]["live"] or d["_source"]["born"] != born:
                strays[d["_id"]] = version
    return strays


def remove_disputes(client: OpenSearch, names: Names, strays: dict[str, DocVersion]) -> tuple[int, int]:
    """Delete each stray dispute if it is still as it was read; (removed, kept because it changed). One
    gone already (another repair) counts as neither."""
    return _remove(client, names.disputes, strays)


def never_landed_entries(client: OpenSearch, names: Names) -> dict[str, DocVersion]:
    """The deletion-log entries of deletions that never landed (opensearch_deletion_log), by id, with the
    version each was read at."""
    hits = deletion_log.entries(client, names, {"match_all": {}}, seq_no_primary_term=True)
    hidden, _ = deletion_log.phantoms(client, names, [hit["_source"] for hit in hits])
    return {
        hit["_id"]: DocVersion(hit["_seq_no"], hit["_primary_term"])
        for hit in hits
        if hit["_source"]["log_id"] in hidden
    }


def _remove(client: OpenSearch, index: str, found: dict[str, DocVersion]) -> tuple[int, int]:
    """Delete each document if it is still as it was read; (removed, kept because it changed). One gone
    already (another repair) counts as neither."""
    actions = [
        Action("delete", index, doc_id, seq_no=version.seq_no, primary_term=version.primary_term)
        for doc_id, version in found.items()
    ]
    removed = kept = 0
    for start in range(0, len(actions), PAGE):
        results = bulk(client, actions[start : start + PAGE], refresh="wait_for")
        require(results, allowed=frozenset({404, 409}))  # else Unavailable: what went before stays removed
        removed += sum(result.ok for result in results)
        kept += sum(result.conflict for result in results)
    return removed, kept


def repair(client: OpenSearch, names: Names) -> list[str]:
    """`TracingStore.repair`: one line per kind of thing removed (no PII), empty when nothing was."""
    try:
        strays = stray_disputes(client, names)
        phantoms = never_landed_entries(client, names)
    except TransportError as error:
        raise unavailable("read what a write cut short left", error) from error
    done = []
    if strays:
        removed, kept = remove_disputes(client, names, strays)
        done.append(f"{removed} dispute documents of no live tracing removed")
        if kept:
            done.append(f"{kept} dispute documents changed while being removed were kept (check again)")
    if phantoms:
        removed, kept = _remove(client, names.deletions, phantoms)
        done.append(f"{removed} deletion-log entries of deletions that never landed removed")
        if kept:
            done.append(f"{kept} deletion-log entries changed while being removed were kept (check again)")
    return done
