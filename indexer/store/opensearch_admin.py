"""Index management for the OpenSearch backend: first start, and rebuilding behind the alias.

`ensure` (every store open, idempotent, safe for several instances starting at once) puts the index
template of the versioned tracing indices, creates `<prefix>-tracings-v1` behind the alias when there is
no alias yet, and creates the disputes and deletions indices.

`rebuild` makes the next version while searches go on and every service instance goes on writing (the
aliases that tell them how: indexer.store.opensearch_phase):
1. put the template (the mapping this program writes), create `<prefix>-tracings-v<N+1>` with the building
   alias: from then on every writer also sends each tracing document there (a mirror);
2. copy every document of the current version through a point in time, *re-deriving* each live one from
   its stored tracing with this program's code (match keys, normalized names, dates: a rebuild is how a
   change of indexer.match_keys reaches the stored keys), each with its source version as the external
   version, so a newer mirrored version is never overwritten;
3. put the leaving alias on the current version and wait SETTLE_SECONDS: from then on every writer reads a
   key in both versions, so a record written during the copy can be completed, deleted or disputed the
   moment the alias swaps;
4. catch up (whatever the instances wrote to the old version before they saw the building alias, by
   indexed_at with a minute's margin for clock skew), then swap the alias in one `_aliases` request
   (remove old, add new, drop the building alias): a search runs against the old or the new version,
   never against neither, and finds what was written during the copy;
5. catch up again, wait `drain_seconds` for searches still holding a point in time on the old version,
   catch up once more, drop the leaving alias and delete the old versions.

A rebuild cut short leaves its aliases (or, after its swap, the old version): the next one refuses to start
until told to finish it (`resume`, `dcii index rebuild --resume`).
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
from indexer.store.opensearch_lease import Lease, held
from indexer.store.opensearch_phase import SETTLE_SECONDS, rebuild_aliases
from indexer.store.opensearch_schema import (
    DELETION_MAPPING,
    DISPUTE_FILINGS_MAPPING,
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
        if not client.indices.exists(index=names.dispute_filings):  # one document: one shard
            one = index_settings(1, settings.replicas)
            _create(client, names.dispute_filings, {"settings": one, "mappings": DISPUTE_FILINGS_MAPPING})
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
    target: str,
    *,
    since: dt.datetime | None = None,
    progress: Progress | None = None,
) -> int:
    """Copy (re-derived) every document of `source_index`, or those indexed since `since`, into
    `target`, an alias (the building alias before the swap, the tracings alias after), with external
    versions and `require_alias`: once the alias is gone (the version deleted by a `--resume` beside this
    rebuild, or the swap undone), the copy fails instead of making an index of that name, partly filled,
    that the swap would then put behind the alias (a review of the rebuild). Returns how many were sent."""
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
            batch.append(Action("index", target, hit["_id"], doc, doc["source_version"], kind, require_alias=True))
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


Step = Callable[[str], None]


def _aliases(client: OpenSearch, actions: list[dict[str, Any]], changed: Callable[[], None]) -> None:
    client.indices.update_aliases(body={"actions": actions})  # one request: atomic
    changed()


def _leftovers(client: OpenSearch, names: Names) -> list[str]:
    """The aliases and versions a rebuild leaves until it ends (empty: none)."""
    current, existing = current_versions(client, names), all_versions(client, names)
    building, leaving = rebuild_aliases(client, names)
    found = [f"{index} is not behind the alias and is older than its version" for index in left_behind(
        names, current, existing)]  # fmt: skip
    found += [f"{index} is being built (alias {names.building})" for index in building]
    found += [f"{index} is being left (alias {names.leaving})" for index in leaving]
    return found


def unfinished(client: OpenSearch, names: Names) -> list[str]:
    """What a rebuild cut short has left (empty: none, or its lease was renewed lately: running). A lease
    alone, with nothing else left, is no problem: the rebuild stopped before making anything, or after
    finishing (the next rebuild takes the lease over)."""
    found = _leftovers(client, names)
    lease = held(client, names.rebuild_lease)
    if not found or lease is None:
        return found
    if lease.heard_lately():  # by two machines' clocks: a hint (the next rebuild watches the lease instead)
        return []
    return [*found, f"the rebuild's lease is held {lease.describe()}"]


def resume(client: OpenSearch, names: Names, changed: Callable[[], None], progress: Progress | None = None) -> bool:
    """Finish what a rebuild cut short left: after its swap, copy what only the version the alias left holds
    (newer versions only land) and delete it; before its swap, drop the version it was building. Returns
    whether the swap had happened (nothing more to do)."""
    current, existing = current_versions(client, names), all_versions(client, names)
    building, leaving = rebuild_aliases(client, names)
    behind = left_behind(names, current, existing)
    for index in behind:
        copy(client, index, names.tracings, progress=progress)
        client.indices.refresh(index=names.tracings)
    removes = [{"remove": {"index": i, "alias": names.building}} for i in building]
    removes += [{"remove": {"index": i, "alias": names.leaving}} for i in leaving]
    if removes:
        _aliases(client, removes, changed)
    removed = [index for index in existing if index not in current]
    for index in removed:
        client.indices.delete(index=index)
    log.info("cut-short rebuild cleared", extra={"copied_back": behind, "removed": removed})
    return bool(behind)


def rebuild(
    client: OpenSearch,
    names: Names,
    settings: OpenSearchSettings,
    changed: Callable[[], None],
    *,
    progress: Progress | None = None,
    step: Step | None = None,
    resume_cut_short: bool = False,
) -> str:
    """Build the next version, swap the alias to it, delete the old ones; returns the new index name.
    `changed` is called after each change of the aliases (this process's writer reads them again), `step`
    with the name of each step as it begins. It holds the rebuild's lease throughout (opensearch_lease):
    FailedPrecondition while another rebuild runs. What a rebuild cut short left (a version older than the
    alias's, whose writes made during its copy may be there only, or its aliases) refuses the rebuild with
    FailedPrecondition before anything is made, unless `resume_cut_short`: then it is finished first
    (`resume`), and a rebuild cut short after its swap needs nothing more."""
    # A lease left with nothing else (a rebuild gone before making anything, or after finishing) is taken over.
    take_over = resume_cut_short or not _leftovers(client, names)
    lease = Lease.take(
        client, names.rebuild_lease, settings.rebuild_lease_seconds, settings.replicas, take_over=take_over
    )
    try:
        return _rebuild(client, names, settings, changed, lease, progress, step, resume_cut_short)
    finally:
        lease.end()


def _rebuild(
    client: OpenSearch,
    names: Names,
    settings: OpenSearchSettings,
    changed: Callable[[], None],
    lease: Lease,
    progress: Progress | None,
    step: Step | None,
    resume_cut_short: bool,
) -> str:
    def announce(name: str) -> None:
        lease.check()  # taken over (this one was thought cut short): stop before the next step
        if step is not None:
            step(name)

    put_template(client, names, settings)
    # Numbered past every version there is, a dropped one included: an instance's view of a version's
    # schema is kept by name, and the name of a version made again may not be the same program's.
    number = max((int(n.rsplit("-v", 1)[1]) for n in all_versions(client, names)), default=0) + 1
    if left := _leftovers(client, names):
        if not resume_cut_short:
            raise FailedPrecondition(
                f"a rebuild was cut short: {'; '.join(left)}. `dcii index rebuild --resume` finishes it"
                " (docs/OPENSEARCH.md, Rebuild)"
            )
        announce("finishing a rebuild cut short")
        if resume(client, names, changed, progress):
            return current_versions(client, names)[0]
    old = current_versions(client, names)
    existing = all_versions(client, names)
    new = names.version(number)
    # Created with the building alias in the same request: no writer that sees the version misses the alias.
    client.indices.create(index=new, body={"aliases": {names.building: {}}})
    changed()
    announce("copying")
    since = dt.datetime.now(dt.UTC)
    for index in old:
        copy(client, index, names.building, progress=progress)
    _aliases(client, [{"add": {"index": index, "alias": names.leaving}} for index in old], changed)
    announce("waiting for every instance to see the rebuild")
    time.sleep(SETTLE_SECONDS)
    # What instances wrote to the old version only, before they saw the building alias: searchable at the swap.
    announce("catching up")
    since = _catch_up(client, old, names.building, since)
    client.indices.refresh(index=new)
    announce("swapping")
    if rebuild_aliases(client, names) != ([new], old) or current_versions(client, names) != old:
        raise FailedPrecondition("the aliases changed under the rebuild (another process?): not swapped")
    swap = [{"remove": {"index": index, "alias": names.tracings}} for index in old]
    swap += [{"add": {"index": new, "alias": names.tracings}}, {"remove": {"index": new, "alias": names.building}}]
    _aliases(client, swap, changed)
    log.info("index alias swapped", extra={"alias": names.tracings, "to": new, "from": old})
    announce("swapped")
    since = _catch_up(client, old, names.tracings, since)  # writes routed to the old version as the alias swapped
    announce("draining")
    time.sleep(settings.drain_seconds)
    _catch_up(client, old, names.tracings, since)
    client.indices.refresh(index=new)
    _aliases(client, [{"remove": {"index": index, "alias": names.leaving}} for index in old], changed)
    for index in existing:
        if index != new:
            client.indices.delete(index=index)
    return new


def _catch_up(client: OpenSearch, old: list[str], target: str, since: dt.datetime) -> dt.datetime:
    """Copy what was written to the old versions since `since` (less the clock margin); returns when this
    pass began, the `since` of the next."""
    began = dt.datetime.now(dt.UTC)
    for index in old:
        copy(client, index, target, since=since)
    return began
