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
(`base.superseded_reason` of its own key): the `born` rule does not judge it (below).

A completion's entry (`SUPERSEDED by <type> <key>`) also stands while its new record is live and names the
old one in `replaces`: the completion landed, so the old life ended, whatever `born` says. Its tombstone may
have been refused by an update of the old record that the writer then tells of its new life (`born`
rewritten, opensearch_writer_steps `_rebirth`); until that last request lands, or for good if the write
stops before it, the `born` rule alone would call the entry never landed, and `repair` would delete the
end of the old life from the log (a review of the parity fixes, finding 7). The writer's replays judge by
the same rule (`never_landed`), exception included.

A request that failed as a whole (no answer: what landed is unknown) leaves its step-0 entries, which the
`born` rule cannot judge in three cases (a review of the parity fixes, findings 1, 5, 8, 9):
- a type change under its own key, then the record written on in its old type (or deleted): no reader can
  tell it from one that landed (a guess from the record's next entry by version counted entries that never
  landed themselves, and hid a real type change, which `repair` deleted: a review of 82df28f, finding 1). The
  writer of the later write knows (the record live at the entry's version in its old type) and takes it back
  itself (opensearch_writer_rules `_type_change_entry`, opensearch_writer_steps `_stale`);
- a favorable history's mark on an earlier history still live at or below it: it waits for the resend only
  while the history it names, as it is now, is live and supersedes the earlier one; else (deleted,
  corrected, never written) it never landed (`_supersessions_lost`). A history that landed has its waiting
  supersessions finished before any write changes it (opensearch_follow `finish_marks`: a review of 82df28f,
  finding 2, found a landed history's supersession lost once the history was deleted);
- a deletion, then a new life of the record (refiled to another person, completed under its own key): read
  afterwards, it cannot be told from a deletion that landed. The writer takes such entries back in the new
  life's own step 0 (`before_new_lives`, opensearch_writer_steps `_unlanded`).
The check and the repair leave an entry judged by the second alone until it is `SETTLING` old (`settled`):
it may belong to a write under way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from opensearchpy import OpenSearch

from indexer.model import TracingKey, TracingType
from indexer.store.base import DeletionRecord, superseded_reason
from indexer.store.opensearch_io import PAGE, search_pages
from indexer.store.opensearch_lifecycle import supersedes
from indexer.store.opensearch_plan import Doc
from indexer.store.opensearch_resolve import read, resolve
from indexer.store.opensearch_schema import Names, deletion_from_source, instant, parse_instant

# The reason a favorable NAC history's supersession logs (opensearch_follow.superseded); the key follows it.
FAVORABLE_PREFIX = "SUPERSEDED by favorable NAC history "

_HELD_FIELDS = ["live", "source_version", "born", "type"]
_TYPES = {kind.value for kind in TracingType}

Held = dict[int, dict[str, Any]]  # the tracing documents entries name, by tid


def changes_type_only(source: dict[str, Any]) -> bool:
    """Whether the entry logs a record sent again as another type under its own key (its life goes on)."""
    key = TracingKey(source["agency"], source["record_number"])
    return source["reason"] in {superseded_reason(kind, key) for kind in TracingType}


def never_landed(
    entry: dict[str, Any], held: dict[str, Any] | None, completions: Collection[tuple[str, str]] = ()
) -> bool:
    """Whether the entry (a deletion-log `_source`) names a deletion that never landed and no longer can:
    the document it names (`held`: its live, source_version and born) is live at a newer version of a life
    born at or before the entry's version, and no completion that landed names it (`completions`: (old
    record's tid, reason) of the live records that name one in `replaces`, `completed`). A document not found
    is not judged (a rebuild's leaving version may hold it for a moment). The one rule of the readers, the
    check, the repair and the writer's replays (opensearch_writer_rules `_stale_entry`, which once lacked the
    completion's exception: a review of the fixes found a completion's replay taking back its landed end)."""
    if held is None or changes_type_only(entry) or (str(entry["tid"]), entry["reason"]) in completions:
        return False
    return ended_in_its_life(held["live"], held["source_version"], held.get("born"), entry["source_version"])


def ended_in_its_life(live: bool, version: int, born: int | None, ended: int) -> bool:
    """The `born` rule, the writer's (opensearch_writer_rules, a replay's take-back) and the readers': an end at
    `ended` never landed when the record is live at a newer `version` of a life `born` at or before it."""
    return live and born is not None and version > ended and born <= ended


def phantoms(client: OpenSearch, names: Names, sources: Sequence[dict[str, Any]]) -> tuple[set[str], Held]:
    """The log ids of the entries (`_source`s) that never landed, with the documents they name (by tid): by
    the `born` rule, unless a completion that landed names the record (`completed`); a supersession that
    waits for a history that no longer supersedes (`_supersessions_lost`)."""
    held = held_documents(client, names, (source["tid"] for source in sources))
    judged = [source for source in sources if never_landed(source, held.get(source["tid"]))]
    landed = completed(client, names, judged)
    hidden = {s["log_id"] for s in judged if never_landed(s, held.get(s["tid"]), landed)}
    return hidden | _supersessions_lost(client, names, sources, held), held


# How long a write may take between its step 0 and its step 1 (far longer than any write group): an entry
# younger than this, judged never landed by the rules that read what came after it, may belong to a write
# still under way.
SETTLING = dt.timedelta(minutes=10)


def settled(entry: dict[str, Any], now: dt.datetime | None = None) -> bool:
    """Whether the check may report, and the repair remove, an entry judged never landed. A supersession mark
    whose favorable history is not written (yet) may belong to a write under way (step 0 logged, step 1 not
    landed): removed then, the write would land without its entries. Such an entry stays until it is
    `SETTLING` old (readers skip it meanwhile, as what it logs has not happened). The `born` rule needs no
    wait: the tombstone can no longer land."""
    if not str(entry["reason"]).startswith(FAVORABLE_PREFIX):
        return True
    return parse_instant(entry["deleted_at"]) <= (now or dt.datetime.now(dt.UTC)) - SETTLING


def completed(client: OpenSearch, names: Names, judged: Sequence[dict[str, Any]]) -> set[tuple[str, str]]:
    """(old record's tid, reason) of the completions that landed among the entries `judged` (the module's
    docstring): a live record names the old one in `replaces`. One search, only when there is something to
    judge, which is rare."""
    if not judged:
        return set()
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
    return landed


def _supersessions_lost(
    client: OpenSearch, names: Names, sources: Sequence[dict[str, Any]], held: Held, leaving: Sequence[str] = ()
) -> set[str]:
    """The supersession entries left waiting (the history at or below the entry's version) by a favorable
    history that, as it is now, does not supersede it: deleted, corrected, or never written (its request
    failed as a whole, the entry kept as the outcome was unknown). A resend would not finish them, and the
    embedded store keeps the history. Read only when such entries wait, which is rare."""
    pending = [s for s in sources if str(s["reason"]).startswith(FAVORABLE_PREFIX) and waiting(s, held.get(s["tid"]))]
    if not pending:
        return set()
    named = {s["log_id"]: _named(s) for s in pending}
    favorable = resolve(client, names, sorted({key for key in named.values() if key is not None}), leaving)
    earlier = read(client, names, sorted({str(s["tid"]) for s in pending}), leaving)
    lost = set()
    for source in pending:
        key, document = named[source["log_id"]], earlier.get(str(source["tid"]))
        new = favorable.get(key) if key is not None else None
        if document is None or new is None:
            continue  # not judged: a reason of another form, or the record gone from view for a moment
        old = Doc.from_source(TracingKey(source["agency"], source["record_number"]), document).tracing
        if not new.live or new.tracing is None or old is None or not supersedes(new.tracing, old):
            lost.add(source["log_id"])
    return lost


def _named(source: dict[str, Any]) -> TracingKey | None:
    """The favorable history a supersession entry names (the same agency's: sqlite_lifecycle)."""
    prefix = f"{FAVORABLE_PREFIX}{source['agency']}/"
    reason = str(source["reason"])
    return TracingKey(source["agency"], reason[len(prefix) :]) if reason.startswith(prefix) else None


def before_new_lives(
    client: OpenSearch, names: Names, reborn: Sequence[tuple[int, int, int]], leaving: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """The entries a new life written over a live record leaves unlanded for good (each `(tid, held, new)`:
    a version from the one held to before the new one), as search hits with their `_seq_no`. A mark of a
    favorable history is among them only if it waits for a history that does not supersede the record
    (`_supersessions_lost`): else the history landed, and serially ended the record before its new life."""
    if not reborn:
        return []
    # One `terms` clause, the version ranges judged here: a `should` of a range per refile came near the
    # cluster's `indices.query.bool.max_clause_count` (1,024 by default) in a group of 500 operations.
    ranges: dict[int, list[tuple[int, int]]] = {}
    for tid, low, high in reborn:
        ranges.setdefault(tid, []).append((low, high))
    query = {"terms": {"tid": sorted(ranges)}}
    found = [
        hit
        for hit in entries(client, names, query, seq_no_primary_term=True)
        if any(low <= hit["_source"]["source_version"] < high for low, high in ranges[int(hit["_source"]["tid"])])
    ]
    marks = [hit["_source"] for hit in found if str(hit["_source"]["reason"]).startswith(FAVORABLE_PREFIX)]
    held = held_documents(client, names, [s["tid"] for s in marks])
    lost = _supersessions_lost(client, names, marks, held, leaving)
    return [
        hit
        for hit in found
        if not str(hit["_source"]["reason"]).startswith(FAVORABLE_PREFIX) or hit["_source"]["log_id"] in lost
    ]


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
