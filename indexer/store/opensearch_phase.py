"""What a rebuild in progress asks of every writer on the cluster, whichever process it runs in.

`dcii index rebuild` runs in a process of its own while the serving instances go on writing. It tells them
by two aliases (indexer.store.opensearch_admin.rebuild):

- `<prefix>-tracings-building` on the version being copied into, from its creation until the swap: each
  writer sends every tracing document there too (a mirror), so that what it writes during the copy is
  searchable the moment the alias swaps, not only after the catch-up copies it;
- `<prefix>-tracings-leaving` on the version the alias is about to leave, from before the swap until the last
  catch-up: each writer reads a key there as well as behind the tracings alias and takes the newer. A
  record another instance wrote during the copy is in the old version only until the catch-up; without
  this read, its completion, deletion or statement of dispute arriving just after the swap found no such
  record (NOT_FOUND, and the connector does not send it again: a deletion without its log entry, a
  completion's new record never written; a review of the backend measured that window at 4.6 s).

A writer's view of the aliases may be PHASE_SECONDS old, counted from when its read was sent, and a
writer asks for it after reading the documents it plans with. A rebuild waits SETTLE_SECONDS after setting
the leaving alias before it swaps; so a writer whose reads were answered after the swap holds a view read
after the leaving alias was set, and reads the old version too. (Monotonic durations on two machines agree;
no wall clocks are compared.)
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from opensearchpy import OpenSearch
from opensearchpy.exceptions import TransportError

from indexer.store.opensearch_io import Action, ItemResult, unavailable
from indexer.store.opensearch_schema import SCHEMA_VERSION, Names

log = logging.getLogger(__name__)

PHASE_SECONDS = 1.0
SETTLE_SECONDS = 2.5  # above PHASE_SECONDS with room for a slow answer to the alias read


@dataclass(frozen=True, slots=True)
class Phase:
    """Where a rebuild stands, as a writer needs it."""

    mirror: str | None = None  # the version being built, when this program writes its schema
    leaving: tuple[str, ...] = ()  # versions whose documents may be newer than the alias's: read them too


def _carrying(found: dict[str, Any], alias: str) -> list[str]:
    """Of `get_alias` over the versions, those carrying `alias`."""
    return sorted(index for index, body in found.items() if alias in body["aliases"])


def rebuild_aliases(client: OpenSearch, names: Names) -> tuple[list[str], list[str]]:
    """The versions carrying the building and the leaving alias (a rebuild running, or cut short). Every
    version with its aliases is asked for: a name that matches nothing would be a 404 if asked by name."""
    found = client.indices.get_alias(index=names.pattern)
    return _carrying(found, names.building), _carrying(found, names.leaving)


class PhaseWatch:
    """One store's cached view of the rebuild aliases, shared by its writer thread and the threads that
    resolve keys beside it (OpenSearchStore.get, restore)."""

    def __init__(self, client: OpenSearch, names: Names) -> None:
        self._client, self._names = client, names
        # The view and when its read was sent, replaced together and only by a read sent later: two threads
        # reading at once could otherwise keep the older answer under the newer time.
        self._view: tuple[Phase, float] = (Phase(), -math.inf)
        self._lock = threading.Lock()
        self._schemas: dict[str, int] = {}
        self._warned = -math.inf

    def mirrors(self, actions: Sequence[Action]) -> list[Action]:
        """The copies of `actions` for the version being built (none when no rebuild copies): through its
        alias with `require_alias`, so that one sent after the alias went makes no index of that name."""
        if self.current().mirror is None:
            return []
        return [
            replace(a, index=self._names.building, require_alias=True)
            for a in actions
            if a.index == self._names.tracings
        ]

    def mirrored(self, results: Sequence[ItemResult]) -> None:
        """A mirror that failed costs no write: the catch-ups copy what landed in the old version (409: the new
        version holds this version or a newer one; 404: the alias went since it was read). Failing the
        write for it stopped every instance's writes while the new version refused them (a disk watermark's
        block, an unassigned shard), though each had landed (a review of the rebuild). Logged once a minute."""
        failed = Counter(r.error or str(r.status) for r in results if not r.ok and r.status not in (404, 409))
        if failed and time.monotonic() - self._warned > 60:
            self._warned = time.monotonic()
            log.warning("writes not mirrored into the version being built", extra={"errors": dict(failed)})

    def forget(self) -> None:
        """The next `current` reads the aliases again (the rebuilding process, once it changed them)."""
        with self._lock:
            self._view = (self._view[0], -math.inf)

    def current(self) -> Phase:
        """The phase, as read no more than PHASE_SECONDS ago (sent then; answered since)."""
        phase, sent = self._view
        if time.monotonic() - sent <= PHASE_SECONDS:
            return phase
        sent = time.monotonic()
        phase = self._read()
        with self._lock:
            if sent > self._view[1]:
                self._view = (phase, sent)
        return phase

    def _read(self) -> Phase:
        names = self._names
        try:
            found = self._client.indices.get_alias(index=names.pattern)
            # A version deleted and made again under its name (`--resume`) may be another program's now.
            self._schemas = {index: schema for index, schema in self._schemas.items() if index in found}
            mirror = next(iter(_carrying(found, names.building)), None)
            if mirror is not None and self._schema(mirror) != SCHEMA_VERSION:
                # Another program's rebuild: its documents are derived by its own code (the copy re-derives
                # what this instance writes to the old version; writing them here would keep this program's).
                mirror = None
        except TransportError as error:
            raise unavailable("read the state of a rebuild", error) from error
        return Phase(mirror, tuple(_carrying(found, names.leaving)))

    def _schema(self, index: str) -> int:
        if index not in self._schemas:
            mapping = self._client.indices.get_mapping(index=index)[index]["mappings"]
            self._schemas[index] = int(mapping.get("_meta", {}).get("schema", 0))
        return self._schemas[index]
