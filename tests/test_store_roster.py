"""The roster of instances serving a store (indexer.store.roster), on each backend: the OpenSearch one is
shared by every instance of a deployment and kept in the cluster; the embedded store is served by one
instance and keeps none. What a privacy answer checks its peers against (tests/test_privacy_peers.py)."""

from __future__ import annotations

import time

from indexer.store.opensearch import OpenSearchStore
from tests import store_backends
from tests.store_backends import Opener

open_store = store_backends.open_store

A, B = "a" * 32, "b" * 32
HERE, THERE = "1" * 16, "2" * 16  # places: a host's name and data directory, hashed


def test_every_entry_that_joins_is_on_the_roster_until_retired(open_store: Opener) -> None:
    first, second = open_store(), open_store()  # two instances' stores on the same data
    if not isinstance(first, OpenSearchStore):
        first.roster().join(A, HERE, "host-a")  # one instance serves an embedded store: nothing to keep
        assert first.roster().members() == [] and first.roster().retire(A) == []
        return
    assert first.roster().members() == []  # no roster index yet: read as empty, not an error
    assert first.roster().retire(A) == [] and first.roster().members() == []  # nor made by a retirement
    first.roster().join(A, HERE, "host-a")
    time.sleep(0.01)
    second.roster().join(B, HERE, "host-b")
    members = second.roster().members()
    assert [(m.entry, m.host, m.retired_at) for m in members] == [(f"{A}/{HERE}", "host-a", None),
                                                                   (f"{B}/{HERE}", "host-b", None)]  # fmt: skip
    joined = members[0]

    time.sleep(0.01)
    first.roster().join(A, HERE, "host-a2")  # started again: first seen as before
    again = {m.entry: m for m in second.roster().members()}[joined.entry]
    assert again.first_seen == joined.first_seen and again.last_seen > joined.last_seen and again.host == "host-a2"
    second.roster().join(A, THERE, "host-c")  # A's id from another place (a copy of its data directory)
    assert [m.entry for m in first.roster().members()] == [f"{A}/{HERE}", f"{B}/{HERE}", f"{A}/{THERE}"]

    assert [m.entry for m in second.roster().retire(f"{A}/{THERE}")] == [f"{A}/{THERE}"]
    retired = {m.entry: m.retired_at is not None for m in first.roster().members()}
    assert retired == {f"{A}/{HERE}": False, f"{B}/{HERE}": False, f"{A}/{THERE}": True}
    assert {m.entry for m in second.roster().retire(A)} == {f"{A}/{HERE}", f"{A}/{THERE}"}  # every place of an id
    assert second.roster().retire("c" * 32) == []
    first.roster().join(A, HERE, "host-a")  # it serves again: back on the reckoning
    assert {m.entry for m in first.roster().members() if m.retired_at is None} == {f"{A}/{HERE}", f"{B}/{HERE}"}
