"""Index management for the OpenSearch backend: first start, and rebuilding behind the alias.

`ensure` (every store open, idempotent, safe for several instances starting at once) puts the index
template of the versioned tracing indices, creates `<prefix>-tracings-v1` behind the alias when there is
no alias yet, and creates the disputes and deletions indices.

`rebuild` makes the next version while searches and writes go on:
1. put the template (the mapping this program writes), create `<prefix>-tracings-v<N+1>`;
2. from now on the store's writer sends every tracing document to the new version too (dual write);
3. copy every document of the current version through a point in time, *re-deriving* each live one from
   its stored tracing with this program's code (match keys, normalized names, dates: a rebuild is how a
   change of indexer.match_keys reaches the stored keys), each with its source version as the external
   version, so a newer dual-written version is never overwritten;
4. swap the alias in one `_aliases` request (remove old, add new): a search runs against the old or the
   new version, never against neither;
5. catch up: copy again whatever another service instance wrote to the old version since the copy
   began (indexed_at, with a minute's margin for clock skew), wait `drain_seconds` for searches still
   holding a point in time on the old version, catch up once more, and delete the old versions.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

from opensearchpy import OpenSearch
from opensearchpy.exceptions import RequestError, TransportError

from indexer.codec import tracing_from_json
from indexer.exc import FailedPrecondition
from indexer.store.opensearch_io import Action, bulk, require, search_pages, unavailable
from indexer.store.opensearch_schema import (
    DELETION_MAPPING,
    DISPUTE_MAPPING,
    SCHEMA_VERSION,
    TRACING_MAPPING,
    Names,
    index_settings,
    parse_instant,
    tracing_doc,
)
from indexer.store.opensearch_settings import OpenSearchSettings

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
_CHUNK = 1000
_SKEW = dt.timedelta(minutes=1)


def _create(client: OpenSearch, index: str, body: dict[str, Any]) -> None:
    try:
        client.indices.create(index=index, body=body)
    except RequestError as error:
        if error.error != "resource_already_exists_exception":  # another instance was first: fine
            raise


def put_template(client: OpenSearch, names: Names, settings: OpenSearchSettings) -> None:
    body = {
        "index_patterns": [names.pattern],
        "priority": 200,
        "_meta": {"schema": SCHEMA_VERSION},
        "template": {"settings": index_settings(settings.shards, settings.replicas), "mappings": TRACING_MAPPING},
    }
    client.indices.put_index_template(name=names.template, body=body)


def ensure(client: OpenSearch, names: Names, settings: OpenSearchSettings, *, create: bool = True) -> None:
    """Create what a new cluster lacks (idempotent); with `create` False, or where the indices were there
    and are lost (the deletion log without the tracings' alias), FailedPrecondition instead. Every open
    created them: `dcii index check` of a mistyped prefix made empty indices and said "0 live tracings", and
    after the indices were lost a check or a restart made them afresh, empty, and the instances answered
    "no record" where they had failed closed (a review of the OpenSearch backend)."""
    try:
        # Scoped to our indices: unscoped, the security plugin checks the look-up against every index (`*`),
        # which the store's role (`dcii*` only) may not read (opensearch-project/security#5871).
        if not client.indices.exists_alias(index=names.pattern, name=names.tracings):
            if not create:
                raise FailedPrecondition(
                    f"no index under the prefix {names.prefix!r} on this cluster: a mistyped store URL, or lost"
                    " indices (restore them); a new cluster's are made by `dcii serve`"
                )
            if client.indices.exists(index=names.deletions):
                raise FailedPrecondition(
                    f"the tracings of prefix {names.prefix!r} are gone while its deletion log is not: lost, not"
                    " new; restore them from a snapshot (RUNBOOK, Restore) rather than start on an empty index"
                )
            put_template(client, names, settings)
            _create(client, names.version(1), {"aliases": {names.tracings: {}}})
        if not create:
            return
        put_template(client, names, settings)
        plain = index_settings(settings.shards, settings.replicas)
        for index, mapping in ((names.disputes, DISPUTE_MAPPING), (names.deletions, DELETION_MAPPING)):
            if not client.indices.exists(index=index):
                _create(client, index, {"settings": plain, "mappings": mapping})
    except TransportError as error:
        raise unavailable("prepare its indices", error) from error


def left_behind(names: Names, current: list[str], existing: list[str]) -> list[str]:
    """The versions older than the alias's that are still there (a rebuild cut short after its swap)."""
    if not current:
        return []
    newest = max(int(index.rsplit("-v", 1)[1]) for index in current)
    return [index for index in existing if index not in current and int(index.rsplit("-v", 1)[1]) < newest]


def current_versions(client: OpenSearch, names: Names) -> list[str]:
    """The physical indices behind the alias (one, except in a broken state)."""
    return sorted(client.indices.get_alias(index=names.pattern, name=names.tracings))


def all_versions(client: OpenSearch, names: Names) -> list[str]:
    return sorted(client.indices.get(index=names.pattern), key=lambda n: int(n.rsplit("-v", 1)[1]))


def schema_of(client: OpenSearch, index: str) -> int:
    mapping = client.indices.get_mapping(index=index)[index]["mappings"]
    return int(mapping.get("_meta", {}).get("schema", 0))


def rederive(source: dict[str, Any]) -> dict[str, Any]:
    """A tracing document as this program would write it now (a tombstone is copied as it is)."""
    if not source.get("live") or not source.get("body"):
        return source
    replaces = (source["replaces"], source["replaces_version"]) if source.get("replaces") else None
    return tracing_doc(
        tracing_from_json(source["body"]),
        tid=source["tid"],
        born=source["born"],
        indexed_at=parse_instant(source["indexed_at"]),
        replaces=replaces,
    )


def copy(
    client: OpenSearch,
    source_index: str,
    target_index: str,
    *,
    since: dt.datetime | None = None,
    progress: Progress | None = None,
) -> int:
    """Copy (re-derived) every document of `source_index`, or those indexed since `since`, into
    `target_index` with external versions. Returns how many were sent."""
    query: dict[str, Any] = {"match_all": {}}
    if since is not None:
        query = {"range": {"indexed_at": {"gte": (since - _SKEW).isoformat()}}}
    total = int(client.count(index=source_index, body={"query": query})["count"])
    pit = client.create_pit(index=source_index, params={"keep_alive": "5m"})["pit_id"]
    sent = 0
    try:
        body = {"pit": {"id": pit, "keep_alive": "5m"}, "query": query, "sort": [{"tid": "asc"}]}
        batch: list[Action] = []
        for hit in search_pages(client, body, index=None):
            doc = rederive(hit["_source"])
            # A tombstone at the version of the live document it ends (a completion's old record, a
            # superseded history, retention) must replace that document where it was copied already.
            kind = "external" if doc.get("live") else "external_gte"
            batch.append(Action("index", target_index, hit["_id"], doc, doc["source_version"], kind))
            if len(batch) >= _CHUNK:
                sent += _flush(client, batch)
                batch = []
                if progress is not None:
                    progress(sent, total)
        sent += _flush(client, batch)
    finally:
        try:
            client.delete_pit(body={"pit_id": [pit]})
        except TransportError:
            log.warning("could not close a rebuild point in time; it expires by itself")
    if progress is not None:
        progress(sent, max(total, sent))
    return sent


def _flush(client: OpenSearch, batch: list[Action]) -> int:
    if batch:
        # 409: the target already holds this version or a newer one (dual write): it stays.
        require(bulk(client, batch, refresh="false"), allowed=frozenset({409}))
    return len(batch)


def rebuild(
    client: OpenSearch,
    names: Names,
    settings: OpenSearchSettings,
    set_dual_write: Callable[[str | None], None],
    *,
    progress: Progress | None = None,
) -> str:
    """Build the next version, swap the alias to it, delete the old ones; returns the new index name.
    FailedPrecondition, before anything is made, while a version older than the alias's is left: a rebuild
    cut short after its swap, whose writes made during the copy may be there only (deleting it lost them
    for good; a review of the backend). A newer one left (a copy cut short before its swap) is deleted."""
    put_template(client, names, settings)
    old = current_versions(client, names)
    existing = all_versions(client, names)
    if behind := left_behind(names, old, existing):
        raise FailedPrecondition(
            f"{', '.join(behind)} is older than the alias's version and still here: a rebuild was cut short"
            " after its swap, and writes made during its copy may be there only; see docs/OPENSEARCH.md (Rebuild)"
        )
    number = max((int(n.rsplit("-v", 1)[1]) for n in existing), default=0) + 1
    new = names.version(number)
    client.indices.create(index=new)
    started = dt.datetime.now(dt.UTC)
    set_dual_write(new)
    try:
        for index in old:
            copy(client, index, new, progress=progress)
        client.indices.refresh(index=new)
        actions: list[dict[str, Any]] = [{"remove": {"index": index, "alias": names.tracings}} for index in old]
        actions.append({"add": {"index": new, "alias": names.tracings}})
        client.indices.update_aliases(body={"actions": actions})  # one request: atomic
        log.info("index alias swapped", extra={"alias": names.tracings, "to": new, "from": old})
        for index in old:
            copy(client, index, new, since=started)
    finally:
        set_dual_write(None)
    time.sleep(settings.drain_seconds)
    for index in old:
        copy(client, index, new, since=started)
    client.indices.refresh(index=new)
    for index in existing:
        if index != new:
            client.indices.delete(index=index)
    return new
