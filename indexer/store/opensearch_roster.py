"""The roster (indexer.store.roster) of an OpenSearch store: one document per instance in `<prefix>-instances`."""

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

    def join(self, instance_id: str, host: str) -> None:
        now = _now().isoformat()
        try:
            self._ensure()
            # first_seen kept if the instance joined before; retired_at cleared: it serves again.
            self._client.update(
                index=self._index,
                id=instance_id,
                body={
                    "doc": {"host": host, "last_seen": now, "retired_at": None},
                    "upsert": {"host": host, "first_seen": now, "last_seen": now},
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

    def retire(self, instance_id: str) -> Member | None:
        try:
            done = self._client.update(
                index=self._index,
                id=instance_id,
                body={"doc": {"retired_at": _now().isoformat()}},
                params={"refresh": "true"},
                ignore=[404],
            )
            if done.get("status") == 404 or done.get("error"):
                return None
            found = self._client.get(index=self._index, id=instance_id)
        except TransportError as error:
            raise unavailable("retire an instance from its roster", error) from error
        return _member(found)


def _member(hit: dict[str, Any]) -> Member:
    source = hit["_source"]
    first, last = _time(source["first_seen"]), _time(source["last_seen"])
    assert first is not None and last is not None  # written together by join
    return Member(hit["_id"], source["host"], first, last, _time(source.get("retired_at")))
