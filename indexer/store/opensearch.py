"""The OpenSearch backend: the index on a cluster, for when one machine is not enough (issue 6).

Same interface and the same answers as the embedded store (indexer.store.sqlite); the design, and where
osmem-server (the in-process test server) differs from a real cluster, are in docs/OPENSEARCH.md.

- Writes (indexer.store.opensearch_writer): one writer thread per store, group commit, external
  versions from the source version, every result visible when `write` returns (refresh=wait_for).
- Reads: searches on the `<prefix>-tracings` alias; within `snapshot()` on one point in time (PIT) on
  it, so a search's scan and its load see one state (disputes are read beside it by realtime mget; a
  dispute shows only with the life of the tracing it was filed against). A document that a completion's
  new record names (`replaces`) is dropped when that record is seen with it: a reader sees the old
  record or the new one, never both and never neither.
- Any number of stateless service instances may share one cluster: ids are hashes of the keys
  (opensearch_schema), and the cluster's version checks settle races between their writers.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from opensearchpy import OpenSearch
from opensearchpy.exceptions import NotFoundError, TransportError

from indexer.exc import FailedPrecondition
from indexer.model import Dispute, StoredTracing, TracingKey
from indexer.store import opensearch_check, opensearch_deletion_log
from indexer.store.base import (
    DeletionRecord,
    Tombstone,
    TracingHead,
    TracingStore,
    WriteOp,
    WriteOutcome,
    WriteResult,
    last_end,
)
from indexer.store.opensearch_admin import (
    Progress,
    Step,
    current_versions,
    ensure,
    rebuild,
    schema_of,
)
from indexer.store.opensearch_filings import DisputeFilings, attach_and_announce
from indexer.store.opensearch_io import hits, search_pages, unavailable
from indexer.store.opensearch_io import search as _search
from indexer.store.opensearch_phase import rebuild_aliases
from indexer.store.opensearch_plan import SetDispute
from indexer.store.opensearch_restore import RestoreTarget
from indexer.store.opensearch_restore import restore as restore_into
from indexer.store.opensearch_roster import OpenSearchRoster
from indexer.store.opensearch_scan import Scans
from indexer.store.opensearch_schema import (
    SCHEMA_VERSION,
    Names,
    dispute_from_source,
    keys_version_of,
    parse_instant,
    stored_from_source,
    tid_for,
)
from indexer.store.opensearch_settings import OpenSearchSettings, connect
from indexer.store.opensearch_writer import Writer

WRITE_SCHEMA_SECONDS = 10.0  # how stale a writer's view of the index's schema may be

log = logging.getLogger(__name__)

_LOAD_CHUNK = 2000  # ids per load request: with disputes and replacing records, under PAGE hits
_GET_PROBES = 4


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class OpenSearchStore(Scans, TracingStore):
    def __init__(
        self,
        settings: OpenSearchSettings,
        *,
        clock: Callable[[], dt.datetime] = _utcnow,
        client: OpenSearch | None = None,
        create: bool = True,
    ) -> None:
        """`create`: make a new cluster's indices (`dcii serve`, the tools that write); False for the tools
        that only read, which refuse a prefix with no indices (opensearch_admin.ensure)."""
        self.settings = settings
        self.names = Names(settings.prefix)
        self._client = client or connect(settings)
        ensure(self._client, self.names, settings, create=create)
        self._writer = Writer(self._client, self.names, refresh=settings.refresh, clock=clock)
        self._filings = DisputeFilings(self._client, self.names.dispute_filings)
        self._local = threading.local()
        self._size, self._size_at = 0, -math.inf
        self._keys, self._keys_at = 1, -math.inf
        self._schema = 0  # the schema of the index behind the alias, as `keys_version` last read it

    # ---- reading: plain, or on the snapshot's point in time ----

    def _search(self, body: dict[str, Any], *, index: str) -> dict[str, Any]:
        """A search on `index`, or on this thread's point in time when a snapshot is open. A point in
        time that vanished (its index deleted by a rebuild after the drain time, or expired) is opened
        again once: the search still answers, from a newer state."""
        pit = getattr(self._local, "pit", None)
        if pit is None:
            return _search(self._client, body, index=index)
        try:
            return _search(
                self._client, body | {"pit": {"id": pit, "keep_alive": self.settings.pit_keep_alive}}, index=None
            )
        except Exception as error:
            if not isinstance(error.__cause__, NotFoundError):
                raise
            log.warning("snapshot point in time lost; reading from a new one")
            self._local.pit = self._open_pit()
            return _search(self._client, body | {"pit": {"id": self._local.pit}}, index=None)

    def _open_pit(self) -> str:
        try:
            found = self._client.create_pit(
                index=self.names.tracings,
                params={"keep_alive": self.settings.pit_keep_alive},
            )
        except TransportError as error:
            raise unavailable("open a snapshot", error) from error
        pit: str = found["pit_id"]
        return pit

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        depth = getattr(self._local, "depth", 0)
        if depth == 0:
            self._local.pit = self._open_pit()
        self._local.depth = depth + 1
        try:
            yield
        finally:
            self._local.depth = depth
            if depth == 0:
                pit, self._local.pit = self._local.pit, None
                try:
                    self._client.delete_pit(body={"pit_id": [pit]})
                except TransportError:
                    log.warning("could not close a snapshot point in time; it expires by itself")

    def _disputes(self, doc_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Dispute documents by tracing document id (realtime; a dispute counts only for the tracing life
        it was filed against, so reading it outside the snapshot cannot attach it to the wrong record)."""
        if not doc_ids:
            return {}
        try:
            found = self._client.mget(index=self.names.disputes, body={"ids": list(doc_ids)})
        except TransportError as error:
            raise unavailable("read", error) from error
        return {doc["_id"]: doc["_source"] for doc in found["docs"] if doc.get("found")}

    def _read(self, doc_ids: Sequence[str], *, disputes: bool = True) -> dict[str, StoredTracing]:
        """Live tracings by document id, each with its dispute (if filed in its present life; none read
        when not `disputes`), leaving out one whose completion's new record is visible too (it is being
        replaced: the new one stands)."""
        found: dict[str, StoredTracing] = {}
        for start in range(0, len(doc_ids), _LOAD_CHUNK):
            chunk = list(doc_ids[start : start + _LOAD_CHUNK])
            query = {"bool": {"filter": [{"term": {"live": True}}], "minimum_should_match": 1,
                              "should": [{"ids": {"values": chunk}}, {"terms": {"replaces": chunk}}]}}  # fmt: skip
            docs: dict[str, dict[str, Any]] = {}
            hidden: dict[str, int] = {}
            for hit in hits(self._search({"query": query, "size": 2 * len(chunk) + 1}, index=self.names.tracings)):
                source = hit["_source"]
                if source.get("replaces"):
                    hidden[source["replaces"]] = max(hidden.get(source["replaces"], 0), source["replaces_version"])
                docs[hit["_id"]] = source
            kept = [d for d in chunk if d in docs and hidden.get(d, -1) < docs[d]["source_version"]]
            filed_disputes = self._disputes(kept) if disputes else {}
            for doc_id in kept:
                source, dispute = docs[doc_id], filed_disputes.get(doc_id)
                filed = dispute_from_source(dispute) if dispute and dispute["born"] == source["born"] else None
                found[doc_id] = stored_from_source(source, filed)
        return found

    def get(self, key: TracingKey) -> StoredTracing | None:
        probes = [str(tid_for(key, probe)) for probe in range(_GET_PROBES)]
        for stored in self._read(probes).values():
            if stored.tracing.key == key:
                return stored
        # A key deeper than four probes (never seen in practice): ask the writer's realtime resolution.
        doc = self._writer.resolve([key])[key]
        if doc.live and str(doc.tid) not in probes:
            return self._read([str(doc.tid)]).get(str(doc.tid))
        return None

    def load(self, tracing_ids: Sequence[int]) -> dict[int, StoredTracing]:
        if not tracing_ids:
            return {}
        return {
            int(doc_id): stored for doc_id, stored in self._read([str(i) for i in dict.fromkeys(tracing_ids)]).items()
        }

    def load_heads(self, tracing_ids: Sequence[int]) -> dict[int, TracingHead]:
        # The body is one stored string (no subject fields to fetch alone), but ranking needs no dispute:
        # that read of every candidate is saved (the page's hits get theirs from `load`).
        if not tracing_ids:
            return {}
        found = self._read([str(i) for i in dict.fromkeys(tracing_ids)], disputes=False)
        return {int(doc_id): TracingHead.of(stored.tracing) for doc_id, stored in found.items()}

    # ---- writing ----

    def write(self, ops: Sequence[WriteOp], *, actor: str) -> list[WriteResult]:
        if not ops:
            return []
        self._refuse_newer_index()
        return self._writer.submit(ops, actor)

    def _refuse_newer_index(self) -> None:
        """FailedPrecondition once another instance's newer program has rebuilt the index (read again at most
        every WRITE_SCHEMA_SECONDS): an instance of the earlier version left running wrote its documents
        with its own, earlier match keys into the rebuilt index, where the newer instances never found them
        by a name part, and `dcii index check` could not tell (a review of upgrades)."""
        if time.monotonic() - self._keys_at > WRITE_SCHEMA_SECONDS:
            self._keys_at = -math.inf
        self.keys_version()
        if self._schema > SCHEMA_VERSION:
            raise FailedPrecondition(
                f"the index {self.names.tracings} is of schema {self._schema}, written by a newer dcii than this"
                f" instance's (schema {SCHEMA_VERSION}): upgrade this instance; it writes nothing until then"
            )

    def set_dispute(self, key: TracingKey, dispute: Dispute) -> bool:
        def attach() -> bool:
            [result] = self._writer.submit([SetDispute(key, dispute)], "privacy")
            return result.outcome is WriteOutcome.APPLIED

        return attach_and_announce(attach, self._filings)

    def restore(
        self,
        tracings: Sequence[StoredTracing],
        tombstones: Sequence[Tombstone] = (),
        deletions: Sequence[DeletionRecord] = (),
    ) -> None:
        """Migration into the cluster (indexer.store.opensearch_restore)."""
        target = RestoreTarget(
            self._client, self.names, self.settings.refresh, self._writer.resolve, self._filings, self.rebuilding
        )
        restore_into(target, tracings, tombstones, deletions)

    # ---- the rest of the interface ----

    def deletions(self, since: dt.datetime | None = None) -> list[DeletionRecord]:
        """In the order logged; without the entries of deletions that never landed (opensearch_deletion_log)."""
        try:
            records = opensearch_deletion_log.standing(self._client, self.names, opensearch_deletion_log.since(since))
        except TransportError as error:
            raise unavailable("read", error) from error
        return [r for r in records if since is None or r.deleted_at >= since]

    def last_deleted(self, key: TracingKey) -> dt.datetime | None:
        try:
            logged = opensearch_deletion_log.standing(self._client, self.names, opensearch_deletion_log.of_key(key))
        except TransportError as error:
            raise unavailable("read", error) from error
        return last_end(key, logged)

    def count(self) -> int:
        try:
            found = self._client.count(index=self.names.tracings, body={"query": {"term": {"live": True}}})
        except TransportError as error:
            raise unavailable("read", error) from error
        return int(found["count"])

    def dispute_mark(self) -> int | None:
        """Moved by every statement attached, a replacement included (opensearch_filings)."""
        return self._filings.mark()

    def size_hint(self) -> int:
        now = time.monotonic()
        if now - self._size_at > 60:
            self._size, self._size_at = self.count(), now
        return self._size

    def keys_version(self) -> int:
        # The schema of the index behind the alias, looked at again once a minute: another instance's
        # rebuild brings it up to date. Until then a query looks up the older keys, a larger set.
        now = time.monotonic()
        if now - self._keys_at > 60:
            try:
                versions = current_versions(self._client, self.names)
                schema = min(schema_of(self._client, index) for index in versions) if versions else 0
            except TransportError as error:
                raise unavailable("read its schema", error) from error
            self._keys, self._keys_at, self._schema = keys_version_of(schema), now, schema
        return self._keys

    def rebuilding(self) -> bool:
        try:
            return any(rebuild_aliases(self._client, self.names))
        except TransportError as error:
            raise unavailable("read the state of a rebuild", error) from error

    def roster(self) -> OpenSearchRoster:
        return OpenSearchRoster(self._client, self.names.instances, self.settings.replicas)

    def check_integrity(self) -> list[str]:
        return opensearch_check.problems(self._client, self.names)

    def repair(self) -> list[str]:
        return opensearch_check.repair(self._client, self.names)

    def iter_all(self, batch: int = 10_000) -> Iterator[StoredTracing]:
        """Every live tracing with its dispute, in id order, read on one point in time."""
        with self.snapshot():
            body = {"query": {"term": {"live": True}}, "sort": [{"tid": "asc"}], "_source": False}
            after: list[Any] | None = None
            while True:
                page = body | {"size": min(batch, _LOAD_CHUNK)} | ({"search_after": after} if after else {})
                found = hits(self._search(page, index=self.names.tracings))
                if not found:
                    return
                loaded = self._read([h["_id"] for h in found])
                yield from (loaded[h["_id"]] for h in found if h["_id"] in loaded)
                after = found[-1]["sort"]

    def iter_tombstones(self, batch: int = 10_000) -> Iterator[Tombstone]:
        body = {"query": {"term": {"live": False}}, "sort": [{"tid": "asc"}],
                "_source": ["agency", "record_number", "source_version", "indexed_at"]}  # fmt: skip
        for hit in search_pages(self._client, body, index=self.names.tracings):
            source = hit["_source"]
            key = TracingKey(source["agency"], source["record_number"])
            yield Tombstone(key, source["source_version"], parse_instant(source["indexed_at"]))

    def rebuild(self, progress: Progress | None = None, step: Step | None = None, *, resume: bool = False) -> str:
        """A new version of the tracings index, re-derived with this program's code, swapped in behind the
        alias while searches and writes go on (opensearch_admin.rebuild); `resume` finishes one cut short
        first. Returns the name of the version behind the alias."""
        try:
            built = rebuild(
                self._client, self.names, self.settings, self._writer.phase.forget,
                progress=progress, step=step, resume_cut_short=resume,
            )  # fmt: skip
        except TransportError as error:
            raise unavailable("rebuild the index", error) from error
        self._keys_at = -math.inf
        return built

    def close(self) -> None:
        self._writer.stop()
        self._client.close()
