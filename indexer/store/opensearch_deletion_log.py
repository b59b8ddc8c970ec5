"""The OpenSearch backend's deletion log (`<prefix>-deletions`) as readers, the check and the repair judge it.

The writer logs a deletion (step 0, indexer.store.opensearch_writer) before its tombstone is written, so that
no failure leaves a deletion unlogged. An entry therefore runs a step ahead of its tombstone until the
connector's replay writes it. When the record is written at a newer version of the same life before that
(an update, the agency's correction before a retention run is tried again), the deletion can no longer land:
the replay is UNCHANGED. On the embedded store the failed write was one rolled-back transaction and left
nothing. Such an entry has `never_landed`: no reader counts it (the log, `last_deleted`, and through them
privacy notices and batch results would treat a live record as deleted), the check reports it, and the
repair removes it.

An entry `<tid>-<v>` stands when the document it names is a tombstone at `v` or later, or is live in a life
born after `v`. It never landed when the document is live at a newer version of a life born at or before
`v`: had the deletion landed, the key would have been born again above `v`. An update that changes a
record's type under the same key is logged with the old version and leaves the life going on
(`base.superseded_reason` of its own key): it stands once anything newer is written.

A completion's entry (`SUPERSEDED by <type> <key>`) also stands while its new record is live and names the
old one in `replaces`: the completion landed, so the old life ended, whatever `born` says. Its tombstone may
have been refused by an update of the old record that the writer then tells of its new life (`born`
rewritten, opensearch_writer_steps `_rebirth`); until that last request lands, or for good if the write
stops before it, the `born` rule alone would call the entry never landed, and `repair` would delete the
end of the old life from the log (a review of the parity fixes, finding 7).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from opensearchpy import OpenSearch

from indexer.model import TracingKey, TracingType
from indexer.store.base import DeletionRecord, superseded_reason
from indexer.store.opensearch_io import PAGE, search_pages
from indexer.store.opensearch_schema import Names, deletion_from_source, instant, parse_instant

# The reason a favorable NAC history's supersession logs (opensearch_follow.superseded); the key follows it.
FAVORABLE_PREFIX = "SUPERSEDED by favorable NAC history "

_HELD_FIELDS = ["live", "source_version", "born"]
_TYPES = {kind.value for kind in TracingType}

Held = dict[int, dict[str, Any]]  # the tracing documents entries name, by tid


def changes_type_only(source: dict[str, Any]) -> bool:
    """Whether the entry logs a record sent again as another type under its own key (its life goes on)."""
    key = TracingKey(source["agency"], source["record_number"])
    return source["reason"] in {superseded_reason(kind, key) for kind in TracingType}


def never_landed(entry: dict[str, Any], held: dict[str, Any] | None) -> bool:
    """Whether the entry (a deletion-log `_source`) names a deletion that never landed and no longer can:
    the document it names (`held`: its live, source_version and born) is live at a newer version of a life
    born at or before the entry's version. A document not found is not judged (a rebuild's leaving version
    may hold it for a moment)."""
    if held is None or not held["live"] or changes_type_only(entry):
        return False
    version = entry["source_version"]
    born = held.get("born")
    return born is not None and held["source_version"] > version and born <= version


def phantoms(client: OpenSearch, names: Names, sources: Sequence[dict[str, Any]]) -> tuple[set[str], Held]:
    """The log ids of the entries (`_source`s) that never landed, with the documents they name (by tid)."""
    held = held_documents(client, names, (source["tid"] for source in sources))
    judged = [source for source in sources if never_landed(source, held.get(source["tid"]))]
    if not judged:
        return set(), held
    # Live records that a completion made of one of these (the module's docstring): one search, only when
    # the `born` rule names an entry, which is rare.
    query = {
        "bool": {"filter": [{"terms": {"replaces": sorted({str(s["tid"]) for s in judged})}}, {"term": {"live": True}}]}
    }
    body = {"query": query, "sort": [{"tid": "asc"}], "_source": ["agency", "record_number", "type", "replaces"]}
    landed = set()
    for hit in search_pages(client, body, index=names.tracings):
        new = hit["_source"]
        if new.get("type") in _TYPES:
            by = TracingKey(new["agency"], new["record_number"])
            landed.add((new["replaces"], superseded_reason(TracingType(new["type"]), by)))
    return {s["log_id"] for s in judged if (str(s["tid"]), s["reason"]) not in landed}, held


def waiting(entry: dict[str, Any], held: dict[str, Any] | None) -> bool:
    """Whether the entry's tombstone is not written yet but still can be (the record live at or below the
    entry's version): a write cut short between its requests, which the owner's resend finishes."""
    return held is not None and held["live"] and held["source_version"] <= entry["source_version"]


def held_documents(client: OpenSearch, names: Names, tids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """The tracing documents the entries name, by tid (realtime; only what the judgement needs)."""
    ids = sorted({str(tid) for tid in tids})
    found: dict[int, dict[str, Any]] = {}
    for start in range(0, len(ids), PAGE):
        docs = client.mget(index=names.tracings, body={"ids": ids[start : start + PAGE]}, _source_includes=_HELD_FIELDS)
        found |= {int(d["_id"]): d["_source"] for d in docs["docs"] if d.get("found")}
    return found


def entries(client: OpenSearch, names: Names, query: dict[str, Any], **extra: Any) -> list[dict[str, Any]]:
    """Every entry the query finds, as search hits (`_source` and whatever `extra` asks for)."""
    body = {"query": query, "sort": [{"log_id": "asc"}]} | extra
    return list(search_pages(client, body, index=names.deletions))


def standing(client: OpenSearch, names: Names, query: dict[str, Any]) -> list[DeletionRecord]:
    """The entries the query finds, leaving out those that `never_landed`, in the order they were logged:
    by the exact instant (a date field sorts by the millisecond) and, within one, by their number (each
    write group numbers its entries in the order of its operations, opensearch_writer_rules)."""
    found = [hit["_source"] for hit in entries(client, names, query)]
    hidden, _ = phantoms(client, names, found)
    kept = [source for source in found if source["log_id"] not in hidden]
    return [deletion_from_source(source) for source in sorted(kept, key=_logged_order)]


def _logged_order(source: dict[str, Any]) -> tuple[dt.datetime, int, str]:
    return parse_instant(source["deleted_at"]), int(source.get("seq", 0)), str(source["log_id"])


def of_key(key: TracingKey) -> dict[str, Any]:
    """The query for one key's entries."""
    return {"bool": {"filter": [{"term": {"agency": key.agency}}, {"term": {"record_number": key.record_number}}]}}


def since(moment: dt.datetime | None) -> dict[str, Any]:
    """The query for the entries logged at or after `moment` (every entry when None). The date field keeps
    milliseconds: it asks a millisecond early, and the caller compares exactly."""
    if moment is None:
        return {"match_all": {}}
    return {"range": {"deleted_at": {"gte": instant(moment - dt.timedelta(milliseconds=1))}}}


def favorable_pending(sources: Sequence[dict[str, Any]], held: dict[int, dict[str, Any]]) -> list[str]:
    """The favorable NAC histories (as "AGENCY/NUMBER") whose supersession a write cut short left waiting:
    an entry of theirs whose tombstone is not written yet (step 0 logged it, step 2 did not land)."""
    named = {
        source["reason"][len(FAVORABLE_PREFIX) :]
        for source in sources
        if source["reason"].startswith(FAVORABLE_PREFIX) and waiting(source, held.get(source["tid"]))
    }
    return sorted(named)
