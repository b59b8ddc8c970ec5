"""Instances of two versions on one cluster during an upgrade (a review of upgrades): once a newer program
has rebuilt the index, an instance of the earlier version wrote its documents with its earlier match keys
into it, where the newer instances never found them by a name part, and `dcii index check` could not tell.
Now such an instance refuses to write, saying why. osmem-server, or a real cluster when
DCII_OPENSEARCH_URL is set."""

from __future__ import annotations

import pytest

from indexer.exc import FailedPrecondition
from indexer.store import opensearch
from indexer.store.base import Upsert, WriteOutcome
from indexer.store.opensearch import OpenSearchStore
from indexer.store.opensearch_admin import current_versions
from indexer.store.opensearch_schema import SCHEMA_VERSION
from tests import store_backends
from tests.store_backends import Opener
from tests.test_store_lifecycle import file_tracing

open_cluster = store_backends.open_cluster


def test_an_instance_older_than_the_index_writes_nothing(open_cluster: Opener, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(opensearch, "WRITE_SCHEMA_SECONDS", 0.0)
    store = open_cluster()
    assert isinstance(store, OpenSearchStore)
    [written] = store.write([Upsert(file_tracing("F-1"))], actor="t")
    assert written.outcome is WriteOutcome.APPLIED
    client = store._client
    for index in current_versions(client, store.names):  # as a newer program's rebuild leaves it
        client.indices.put_mapping(index=index, body={"_meta": {"schema": SCHEMA_VERSION + 1}})
    with pytest.raises(FailedPrecondition, match=f"schema {SCHEMA_VERSION + 1}, written by a newer dcii"):
        store.write([Upsert(file_tracing("F-2"))], actor="t")
    assert store.get(file_tracing("F-2").key) is None
    assert store.get(file_tracing("F-1").key) is not None  # it still answers
