"""The roster (indexer.store.roster) of an OpenSearch store: one document per entry (instance id and place,
`ID-PLACE`) in `<prefix>-instances`."""

from __future__ import annotations

import datetime as dt
from typing import Any

from opensearchpy import OpenSearch
from opensearchpy.exceptions import TransportError

from indexer.store.opensearch_io import unavailable
from indexer.store.roster import Member, Roster

_MAPPING = {
    "dynamic": "strict",
    "properties": {
        "instance_id": {"type": "keyword"},
        "place": {"type": "keyword"},
        "host": {"type": "keyword"},
        "first_seen": {"type": "date"},
        "last_seen": {"type": "date"},
        "retired_at": {"type": "date"},
    },
}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _time(text: str | None) -> dt.datetime | None:
    return None if text is None else dt.datetime.fromisoformat(text)


class OpenSearchRoster(Roster):
    def __init__(self, client: OpenSearch, index: str, replicas: int) -> None:
        self._client, self._index, self._replicas = client, index, replicas

    def _ensure(self) -> None:
        settings = {"number_of_shards": 1, "number_of_replicas": self._replicas}
        # 400: made meanwhile by another instance (resource_already_exists); anything else fails the next step.
        self._client.indices.create(index=self._index, body={"settings": settings, "mappings": _MAPPING}, ignore=[400])

    def join(self, instance_id: str, place: str, host: str) -> None:
        now = _now().isoformat()
        try:
            self._ensure()
            # first_seen kept if the entry joined before; retired_at cleared: it serves again.
            self._client.update(
                index=self._index,
                id=f"{instance_id}-{place}",
                body={
                    "doc": {"host": host, "last_seen": now, "retired_at": None},
                    "upsert": {
                        "instance_id": instance_id,
                        "place": place,
                        "host": host,
                        "first_seen": now,
                        "last_seen": now,
                    },
                },
                params={"refresh": "true", "retry_on_conflict": 3},
            )
        except TransportError as error:
            raise unavailable("record this instance on its roster", error) from error

    def members(self) -> list[Member]:
        try:
            found = self._client.search(
                index=self._index,
                body={"size": 10_000, "sort": [{"first_seen": "asc"}], "query": {"match_all": {}}},
                params={"ignore_unavailable": "true"},
            )
        except TransportError as error:
            raise unavailable("read the roster of its instances", error) from error
        return [_member(hit) for hit in found["hits"]["hits"]]

    def retire(self, entry: str) -> list[Member]:
        chosen = [m for m in self.members() if entry in (m.entry, m.instance_id)]  # none on a roster not made yet
        try:
            for member in chosen:
                self._client.update(
                    index=self._index,
                    id=f"{member.instance_id}-{member.place}",
                    body={"doc": {"retired_at": _now().isoformat()}},
                    params={"refresh": "true"},
                )
        except TransportError as error:
            raise unavailable("retire an instance from its roster", error) from error
        retired = {m.entry for m in chosen}
        return [m for m in self.members() if m.entry in retired]


def _member(hit: dict[str, Any]) -> Member:
    source = hit["_source"]
    first, last = _time(source["first_seen"]), _time(source["last_seen"])
    assert first is not None and last is not None  # written together by join
    return Member(source["instance_id"], source["place"], source["host"], first, last, _time(source.get("retired_at")))
