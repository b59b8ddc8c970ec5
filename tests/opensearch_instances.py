"""Two service instances on one store for the contract tests of writes cut short or overtaken
(tests/test_store_contract_partial.py, tests/test_store_contract_lost.py): the store as readers see it, and
another instance whose bulk requests the failing proxy (tests/opensearch_proxy.py) refuses or lets another
write overtake. On the embedded store both are the one store, and each helper runs the serial order the
test names. Also `through_proxy`, the OpenSearch-only pair of the write-step tests
(tests/test_opensearch_write_*.py). A plain module, not a test."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pytest

from indexer.exc import Unavailable
from indexer.model import TracingKey
from indexer.store.base import TracingStore, WriteOp, WriteResult
from indexer.store.opensearch import OpenSearchStore
from indexer.store.opensearch_schema import tid_for
from tests.opensearch_proxy import FailingProxy
from tests.store_backends import NOW, Opener

Clock = Callable[[], dt.datetime]


@dataclass
class Instances:
    """The store as readers see it, and another service instance on the same data whose bulk requests can be
    refused or overtaken (OpenSearch, through the proxy); on the embedded store both are the one store."""

    store: TracingStore
    other: TracingStore
    proxy: FailingProxy | None

    def cut_short(
        self, write: Callable[[TracingStore], object], *, at_request: int, landed: bool, lose_answer: bool = False
    ) -> None:
        """`write` by the other instance, its `at_request`-th bulk request refused (it raises Unavailable), or
        with `lose_answer` forwarded and its answer lost. On the embedded store: applied when `landed` (the
        failure came after the operation itself landed), else nothing."""
        if self.proxy is None:
            if landed:
                write(self.store)
            return
        self.proxy.arm(at_request, lose_answer=lose_answer)
        with pytest.raises(Unavailable):
            write(self.other)
        self.proxy.arm(0)

    def refused(self, write: Callable[[TracingStore], object], key: TracingKey) -> None:
        """`write` by the other instance, every write of `key`'s tracing document refused by its shard (the rest of
        each request goes on; it raises Unavailable). On the embedded store: nothing (the operation never landed)."""
        if self.proxy is None:
            return
        tid = str(tid_for(key))
        self.proxy.fail_items = lambda op, meta: op == "index" and meta.get("_id") == tid
        with pytest.raises(Unavailable):
            write(self.other)
        self.proxy.fail_items = None

    def race(
        self,
        ops: Sequence[WriteOp],
        meanwhile: Callable[[], object],
        *,
        before_request: int,
        serially: Literal["meanwhile first", "ops first"],
        actor: str,
    ) -> list[WriteResult]:
        """`ops` by the other instance, `meanwhile` (this instance's write) landing just before its
        `before_request`-th bulk request; on the embedded store, the two in the serial order given."""
        if self.proxy is None:
            if serially == "meanwhile first":
                meanwhile()
                return self.store.write(ops, actor=actor)
            results = self.store.write(ops, actor=actor)
            meanwhile()
            return results
        self.proxy.before[before_request] = meanwhile
        results = self.other.write(ops, actor=actor)
        assert not self.proxy.before, "the other write did not run between the requests"
        return results


@pytest.fixture
def instances(open_store: Opener) -> Iterator[Callable[..., Instances]]:
    """Opens the backend under test (with `clock`) and another instance on it (OpenSearch: with `other_clock`,
    through the failing proxy, its retries off)."""
    opened: list[tuple[OpenSearchStore, FailingProxy]] = []

    def make(clock: Clock = lambda: NOW, other_clock: Clock | None = None) -> Instances:
        store = open_store(clock=clock)
        if not isinstance(store, OpenSearchStore):
            return Instances(store, store, None)
        proxy = FailingProxy(store.settings.hosts[0])
        settings = dataclasses.replace(store.settings, hosts=(proxy.url,), retries=0)
        other = OpenSearchStore(settings, clock=other_clock or clock)
        opened.append((other, proxy))
        return Instances(store, other, proxy)

    yield make
    for other, proxy in opened:
        other.close()
        proxy.close()


def ticking(start: dt.datetime) -> Clock:
    """A clock a millisecond on at every reading: each write group of one instance its own instant."""
    ticks = itertools.count()
    return lambda: start + dt.timedelta(milliseconds=next(ticks))


def logged(store: TracingStore) -> list[tuple[str, int]]:
    """The deletion log as (record number, version), in its order."""
    return [(r.key.record_number, r.source_version) for r in store.deletions()]


@pytest.fixture
def through_proxy(open_cluster: Any) -> Iterator[tuple[OpenSearchStore, OpenSearchStore, FailingProxy]]:
    """The store (direct) and a second store on the same indices through the failing proxy, retries off."""
    direct = open_cluster()
    assert isinstance(direct, OpenSearchStore)
    proxy = FailingProxy(direct.settings.hosts[0])
    settings = dataclasses.replace(direct.settings, hosts=(proxy.url,), retries=0)
    faulty = OpenSearchStore(settings, clock=lambda: NOW)
    try:
        yield direct, faulty, proxy
    finally:
        faulty.close()
        proxy.close()
