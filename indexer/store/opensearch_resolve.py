"""The writer's realtime reads of tracing documents: behind the alias and, while a rebuild's swap is near,
in the version it leaves too (indexer.store.opensearch_phase), the newer of the two standing.

Ids are probe chains (opensearch_schema.tid_for): a key's document is at its first id that holds it or
holds nothing. During a rebuild's catch-up an id may be free behind the alias and taken in the leaving
version by a key another instance wrote during the copy; taking it for another key there would have the
catch-up overwrite one with the other, so an id taken in either version counts as taken.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opensearchpy import OpenSearch
from opensearchpy.exceptions import TransportError

from indexer.exc import Unavailable
from indexer.model import TracingKey
from indexer.store.opensearch_io import unavailable
from indexer.store.opensearch_plan import Doc
from indexer.store.opensearch_schema import Names, tid_for

MAX_PROBES = 16


def copies(client: OpenSearch, names: Names, ids: Sequence[str], leaving: Sequence[str]) -> list[list[dict[str, Any]]]:
    """For each id, the sources found for it: behind the alias first, then in each leaving version. A
    leaving version deleted meanwhile (the rebuild finished) holds nothing."""
    if not ids:
        return []
    indices = [names.tracings, *leaving]
    docs = [{"_index": index, "_id": doc_id} for doc_id in ids for index in indices]
    try:
        found = client.mget(body={"docs": docs})["docs"]
    except TransportError as error:
        raise unavailable("read", error) from error
    width = len(indices)
    return [[doc["_source"] for doc in found[i * width : (i + 1) * width] if doc.get("found")] for i in range(len(ids))]


def newest(sources: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The copy at the highest source version; on a tie a tombstone (it ends the live document of its own
    version: a delete that landed in the leaving version only), else the alias's (re-derived)."""
    best: dict[str, Any] | None = None
    for source in sources:
        if best is None or (source["source_version"], not source["live"]) > (best["source_version"], not best["live"]):
            best = source
    return best


def read(client: OpenSearch, names: Names, ids: Sequence[str], leaving: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The newest source of each id found."""
    found = {}
    for doc_id, sources in zip(ids, copies(client, names, ids, leaving), strict=True):
        if (source := newest(sources)) is not None:
            found[doc_id] = source
    return found


def resolve(
    client: OpenSearch, names: Names, keys: Sequence[TracingKey], leaving: Sequence[str]
) -> dict[TracingKey, Doc]:
    """The document of each key, following its probe chain to the key or an id free in every version."""
    view: dict[TracingKey, Doc] = {}
    todo = list(dict.fromkeys(keys))
    for probe in range(MAX_PROBES):
        if not todo:
            return view
        tids = {key: tid_for(key, probe) for key in todo}
        collided = []
        for key, sources in zip(todo, copies(client, names, [str(t) for t in tids.values()], leaving), strict=True):
            if any((s["agency"], s["record_number"]) != (key.agency, key.record_number) for s in sources):
                collided.append(key)  # another key holds this id: try the next one
                continue
            source = newest(sources)
            view[key] = Doc(key, tids[key]) if source is None else Doc.from_source(key, source)
        todo = collided
    raise Unavailable("tracing id probe chain too long")
