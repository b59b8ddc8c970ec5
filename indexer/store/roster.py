"""Which instances serve a store: the roster every instance joins as it starts (search_service.peers).

Each instance keeps its own accounting of disclosures; a privacy answer is complete only if it holds every
instance's part. The peers an instance asks are configured (DCII_PEERS), and a list that misses an instance
(one added by scaling up without its name) would leave that instance's disclosures out without a word. So
every instance joins the roster of the store it serves, and an answer that did not hear from an instance on
the roster is refused until the instance is asked or retired (`dcii index retire-instance`: its trail is kept,
and consulted by hand, elsewhere). The embedded store is served by one instance only: it keeps no roster.
An entry is an instance id at a place (a hash of its host's name and data directory): a copy of an
instance's data directory serving elsewhere is an entry of its own, and an answer that did not hear from
it is refused as well. No PII: the id, the place, the host it last started on, and when.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Member:
    instance_id: str
    place: str  # search_service.peers.Identity.place
    host: str  # the host name it last started on, to tell the operator which one it is
    first_seen: dt.datetime
    last_seen: dt.datetime  # its last start
    retired_at: dt.datetime | None = None

    @property
    def entry(self) -> str:
        """How `dcii index instances` names it, and `retire-instance` takes it: ID/PLACE."""
        return f"{self.instance_id}/{self.place}"

    def describe(self) -> str:
        host = self.host if len(self.host) <= 40 else self.host[:39] + "…"
        return f"{self.entry} (host {host}, last started {self.last_seen:%Y-%m-%d %H:%M} UTC)"


class Roster:
    """The roster of a store one instance serves (the embedded store): empty, and nothing to join."""

    def join(self, instance_id: str, place: str, host: str) -> None:
        """Record that `instance_id` serves the store from `place` (again: a retired entry that starts is back)."""

    def members(self) -> list[Member]:
        """Every instance that joined, retired or not, first seen first."""
        return []

    def retire(self, entry: str) -> list[Member]:
        """Take an entry (ID/PLACE), or every entry of an id (ID), off the answers' reckoning; those retired."""
        return []
