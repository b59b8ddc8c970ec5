"""The metrics read at scrape time (search_service.metrics): the store's size and state and the batches'
progress, each computed at most once per refresh, in a thread of its own, never per request."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from indexer.failures import failure_fields
from indexer.store.base import TracingStore
from search_service.batch_queue import BatchQueue, BatchState

log = logging.getLogger(__name__)


class Cached:
    """A value computed at most once per `ttl` seconds, when asked for (a scrape), in a thread of its own:
    the scrape gets the last value at once (None until the first is in, or while reading fails). Computed
    in the scrape, a hung cluster held every scrape past Prometheus's timeout, and every instance looked down
    for exactly the time its UNAVAILABLE counters described (a review of the OpenSearch backend)."""

    def __init__(self, compute: Callable[[], Any], ttl: float, what: str) -> None:
        self._compute = compute
        self._ttl = ttl
        self._what = what
        self._lock = threading.Lock()
        self._value: Any = None
        self._at = -float("inf")
        self._running = False
        self._first = threading.Event()  # the first reading made (or failed): a first scrape waits a moment

    def get(self) -> Any:
        with self._lock:
            if not self._running and time.monotonic() - self._at >= self._ttl:
                self._at, self._running = time.monotonic(), True
                threading.Thread(target=self._refresh, name=f"metrics-{self._what}", daemon=True).start()
        self._first.wait(timeout=1.0)
        with self._lock:
            return self._value

    def _refresh(self) -> None:
        try:
            value = self._compute()
        except Exception as error:  # the backend is down: the scrape goes on without this gauge
            log.warning("metrics: cannot read", extra={"source": self._what, **failure_fields(error)})
            value = None
        with self._lock:
            self._value, self._running = value, False
        self._first.set()


class StateCollector(Collector):
    """The store size and the batch progress, read at scrape time (cached, so a scrape storm is cheap)."""

    def __init__(self, store: TracingStore, batch_queue: BatchQueue, refresh: float) -> None:
        self._backend = type(store).__name__
        self._size = Cached(store.size_hint, refresh, "store")
        self._rebuilding = Cached(store.rebuilding, refresh, "rebuild")
        self._batches = Cached(lambda: _batch_progress(batch_queue), min(refresh, 5.0), "batch")

    def collect(self) -> Iterable[Metric]:
        info = GaugeMetricFamily("dcii_store_info", "The storage backend in use (always 1)", labels=["backend"])
        info.add_metric([self._backend], 1)
        yield info
        size = self._size.get()
        if size is not None:
            yield GaugeMetricFamily("dcii_store_tracings", "Live tracings in the store (may lag writes)", value=size)
        if (rebuilding := self._rebuilding.get()) is not None:
            text = "1 while an index rebuild runs or was cut short (OpenSearch: docs/OPENSEARCH.md, Rebuild)"
            yield GaugeMetricFamily("dcii_store_rebuilding", text, value=int(rebuilding))
        progress = self._batches.get()
        if progress is not None:
            queries = GaugeMetricFamily(
                "dcii_batch_queries",
                "Queries of the active batches, answered (done) or not (pending)",
                labels=["state"],
            )
            batches = GaugeMetricFamily("dcii_batches_active", "Batches queued or running", labels=["state"])
            pending, done, by_state = progress
            queries.add_metric(["pending"], pending)
            queries.add_metric(["done"], done)
            for state, count in by_state.items():
                batches.add_metric([state], count)
            yield queries
            yield batches


def _batch_progress(batch_queue: BatchQueue) -> tuple[int, int, dict[str, int]]:
    active = batch_queue.runnable()
    by_state = {BatchState.QUEUED.value: 0, BatchState.RUNNING.value: 0}
    for batch in active:
        by_state[batch.state.value] = by_state.get(batch.state.value, 0) + 1
    pending = sum(max(batch.total - batch.done, 0) for batch in active)
    return pending, sum(batch.done for batch in active), by_state
