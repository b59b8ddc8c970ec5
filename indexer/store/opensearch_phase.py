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

import math
import time
from dataclasses import dataclass

from opensearchpy import OpenSearch
from opensearchpy.exceptions import TransportError

from indexer.store.opensearch_io import unavailable
from indexer.store.opensearch_schema import SCHEMA_VERSION, Names

PHASE_SECONDS = 1.0
SETTLE_SECONDS = 2.5  # above PHASE_SECONDS with room for a slow answer to the alias read


@dataclass(frozen=True, slots=True)
class Phase:
    """Where a rebuild stands, as a writer needs it."""

    mirror: str | None = None  # the version being built, when this program writes its schema
    leaving: tuple[str, ...] = ()  # versions whose documents may be newer than the alias's: read them too


class PhaseWatch:
    """One writer's cached view of the rebuild aliases (used by the writer thread; `forget` from any)."""

    def __init__(self, client: OpenSearch, names: Names) -> None:
        self._client, self._names = client, names
        self._phase, self._read_at = Phase(), -math.inf
        self._schemas: dict[str, int] = {}

    def forget(self) -> None:
        """The next `current` reads the aliases again (the rebuilding process, once it changed them)."""
        self._read_at = -math.inf

    def current(self) -> Phase:
        """The phase, as read no more than PHASE_SECONDS ago (sent then; answered since)."""
        if time.monotonic() - self._read_at > PHASE_SECONDS:
            sent = time.monotonic()
            self._phase = self._read()
            self._read_at = sent
        return self._phase

    def _read(self) -> Phase:
        names = self._names
        try:
            # Every version with its aliases; a name that matches nothing would be a 404 if asked by name.
            found = self._client.indices.get_alias(index=names.pattern)
            mirror = next((index for index, body in found.items() if names.building in body["aliases"]), None)
            if mirror is not None and self._schema(mirror) != SCHEMA_VERSION:
                # Another program's rebuild: its documents are derived by its own code (the copy re-derives
                # what this instance writes to the old version; writing them here would keep this program's).
                mirror = None
        except TransportError as error:
            raise unavailable("read the state of a rebuild", error) from error
        leaving = tuple(sorted(index for index, body in found.items() if names.leaving in body["aliases"]))
        return Phase(mirror, leaving)

    def _schema(self, index: str) -> int:
        if index not in self._schemas:
            mapping = self._client.indices.get_mapping(index=index)[index]["mappings"]
            self._schemas[index] = int(mapping.get("_meta", {}).get("schema", 0))
        return self._schemas[index]
