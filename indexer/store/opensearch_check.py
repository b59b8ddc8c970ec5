"""The OpenSearch backend's integrity check and its repair (`dcii index check`, `dcii index repair`).

The check reports what a cluster or a write cut short can leave wrong: a red cluster, an alias on more
or fewer than one index, an index of an older schema, a completion or a favorable NAC history applied in
part (both need the owner's resend, which finishes them: the message says so), and statements of dispute
whose tracing is no longer live.

Only the last is repaired here. The writer removes a deleted tracing's dispute in its last request
(indexer.store.opensearch_writer); when that request fails, the dispute stays behind, naming (by `born`)
the life of the tracing that ended, so no reader ever attaches it. It is harmless but the check reports
it until it is gone, so an operator needs a way to clear it. Each removal is conditional on the document
being as it was read (if_seq_no, if_primary_term): a dispute filed meanwhile against a new life of the
tracing, under the same document id, is kept.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from opensearchpy import OpenSearch
from opensearchpy.exceptions import TransportError

from indexer.codec import tracing_from_json
from indexer.model import TracingType
from indexer.store.opensearch_admin import current_versions, schema_of, unfinished
from indexer.store.opensearch_io import PAGE, Action, bulk, require, search_pages
from indexer.store.opensearch_lifecycle import unfinished_supersessions
from indexer.store.opensearch_schema import SCHEMA_VERSION, Names, parse_instant


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
        found += _lifecycle_problems(client, names)
        if strays := stray_disputes(client, names):
            found.append(
                f"{len(strays)} dispute documents point at no live tracing (left by a write cut short; "
                "no reader attaches them: `dcii index repair` removes them)"
            )
    except TransportError as error:
        found.append(f"the cluster could not be checked ({error.status_code} {error.error})")
    return found


def _lifecycle_problems(client: OpenSearch, names: Names) -> list[str]:
    """Completions left half done (the old record live) and favorable NAC histories that left earlier ones live."""
    found = []
    # A new record deleted before its completion was finished names the old one too (its tombstone).
    body = {"query": {"bool": {"filter": [{"exists": {"field": "replaces"}}]}},
            "sort": [{"tid": "asc"}], "_source": ["replaces", "replaces_version"]}  # fmt: skip
    named = {
        h["_source"]["replaces"]: h["_source"]["replaces_version"]
        for h in search_pages(client, body, index=names.tracings)
    }
    pending = 0
    for start in range(0, len(named), PAGE):
        ids = list(named)[start : start + PAGE]
        docs = client.mget(index=names.tracings, body={"ids": ids}, _source_includes=["live", "source_version"])
        pending += sum(1 for d in docs["docs"] if d.get("found") and d["_source"]["live"]
                       and d["_source"]["source_version"] <= named[d["_id"]])  # fmt: skip
    if pending:
        found.append(f"{pending} completions left their old record live (replay the completion to finish it)")
    live_histories = [{"term": {"live": True}}, {"term": {"type": TracingType.NAC_HISTORY.value}}]
    body = {"query": {"bool": {"filter": live_histories}}, "sort": [{"tid": "asc"}],
            "_source": ["body", "indexed_at"]}  # fmt: skip
    histories = [
        (tracing_from_json(h["_source"]["body"]), parse_instant(h["_source"]["indexed_at"]))
        for h in search_pages(client, body, index=names.tracings)
    ]
    if unfinished := unfinished_supersessions(histories):
        to_resend = ", ".join(str(key) for key in unfinished[:5]) + (", ..." if len(unfinished) > 5 else "")
        summary = f"{len(unfinished)} favorable NAC histories left earlier histories live"
        found.append(f"{summary} (resend them to finish: {to_resend})")
    return found


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
    actions = [
        Action("delete", names.disputes, doc_id, seq_no=version.seq_no, primary_term=version.primary_term)
        for doc_id, version in strays.items()
    ]
    removed = kept = 0
    for start in range(0, len(actions), PAGE):
        results = bulk(client, actions[start : start + PAGE], refresh="wait_for")
        require(results, allowed=frozenset({404, 409}))  # else Unavailable: what went before stays removed
        removed += sum(result.ok for result in results)
        kept += sum(result.conflict for result in results)
    return removed, kept
