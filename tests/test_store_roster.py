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


def test_every_instance_that_joins_is_on_the_roster_until_retired(open_store: Opener) -> None:
    first, second = open_store(), open_store()  # two instances' stores on the same data
    if not isinstance(first, OpenSearchStore):
        first.roster().join(A, "host-a")  # one instance serves an embedded store: nothing to keep
        assert first.roster().members() == [] and first.roster().retire(A) is None
        return
    assert first.roster().members() == []  # no roster index yet: read as empty, not an error
    first.roster().join(A, "host-a")
    time.sleep(0.01)
    second.roster().join(B, "host-b")
    members = second.roster().members()
    assert [(m.instance_id, m.host, m.retired_at) for m in members] == [(A, "host-a", None), (B, "host-b", None)]
    joined = members[0]

    time.sleep(0.01)
    first.roster().join(A, "host-a2")  # started again, elsewhere: first seen as before
    again = {m.instance_id: m for m in second.roster().members()}[A]
    assert again.first_seen == joined.first_seen and again.last_seen > joined.last_seen and again.host == "host-a2"

    retired = second.roster().retire(B)
    assert retired is not None and retired.instance_id == B and retired.retired_at is not None
    assert {m.instance_id: m.retired_at is not None for m in first.roster().members()} == {A: False, B: True}
    assert second.roster().retire("c" * 32) is None
    second.roster().join(B, "host-b")  # it serves again: back on the reckoning
    assert all(m.retired_at is None for m in first.roster().members())
