"""The backends every storage-contract test (tests/test_store_contract*.py) runs against: the embedded store (a
real SQLite file), osmem-server (the OpenSearch API in-process), and a real OpenSearch cluster when
DCII_OPENSEARCH_URL is set (the `opensearch` backend is skipped otherwise).

Each test takes `open_store`, which opens (or reopens) the backend under test with a fixed clock; `open_cluster`
does the same for the OpenSearch backends only, and `store` is one store opened by `open_store`. The
cross-backend tests (tests/test_store_contract_reads.py) load the same data into every backend and compare the
answers. This is a plain module, not a conftest.py: each test module binds the fixtures it takes under their
names (pytest finds a fixture in any module attribute) and imports the helpers that more than one of them use."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from indexer.model import Dispute, ImpersonalTitleDetails, ImpersonalTitleKind, Tracing, TracingKey
from indexer.store.base import TracingStore
from indexer.store.opensearch import OpenSearchStore
from indexer.store.opensearch_settings import OpenSearchSettings
from indexer.store.sqlite import SqliteStore

NOW = dt.datetime(2026, 1, 15, 9, 30, tzinfo=dt.UTC)
REAL_URL = os.environ.get("DCII_OPENSEARCH_URL", "")
BACKENDS = [
    "sqlite",
    "osmem",
    pytest.param("opensearch", marks=pytest.mark.skipif(not REAL_URL, reason="DCII_OPENSEARCH_URL is not set")),
]
OPENSEARCH_BACKENDS = BACKENDS[1:]

Opener = Callable[..., TracingStore]


def _settings(backend: str, url: str, prefix: str) -> OpenSearchSettings:
    if backend == "osmem":
        return OpenSearchSettings.from_url(
            url, prefix=prefix, replicas=0, drain_seconds=0.2, timeout=60.0, rebuild_lease_seconds=4.0
        )
    return OpenSearchSettings.from_url(REAL_URL, prefix=prefix, drain_seconds=2.0, rebuild_lease_seconds=4.0)


def _opener(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    opened: list[TracingStore] = []
    cleanup: Callable[[], None] = lambda: None  # noqa: E731
    if backend == "sqlite":
        path = tmp_path / f"index-{uuid.uuid4().hex[:8]}.db"

        def make(clock: Callable[[], dt.datetime] = lambda: NOW) -> TracingStore:
            opened.append(SqliteStore(path, clock=clock))
            return opened[-1]

    else:
        prefix = f"dcii-test-{uuid.uuid4().hex[:12]}"
        if backend == "osmem":
            clone = request.getfixturevalue("osmem").clone()
            url = clone.url
            cleanup = clone.close
        else:
            url = REAL_URL
            cleanup = lambda: _drop_real(prefix)  # noqa: E731

        def make(clock: Callable[[], dt.datetime] = lambda: NOW) -> TracingStore:
            opened.append(OpenSearchStore(_settings(backend, url, prefix), clock=clock))
            return opened[-1]

    try:
        yield make
    finally:
        for store in opened:
            store.close()
        cleanup()


@pytest.fixture(params=BACKENDS)
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens the backend under test (again and again: each call is a new store on the same data)."""
    yield from _opener(request.param, request, tmp_path)


@pytest.fixture(params=OPENSEARCH_BACKENDS)
def open_cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Opener]:
    """Opens an OpenSearch backend (osmem-server, or the real cluster when DCII_OPENSEARCH_URL is set)."""
    yield from _opener(request.param, request, tmp_path)


def _drop_real(prefix: str) -> None:
    from indexer.store.opensearch_settings import connect

    client = connect(OpenSearchSettings.from_url(REAL_URL, prefix=prefix))
    client.indices.delete(index=f"{prefix}-*", params={"expand_wildcards": "all"})
    client.indices.delete_index_template(name=f"{prefix}-tracings")
    client.close()


@pytest.fixture
def store(open_store: Opener) -> TracingStore:
    return open_store()


def _live(store: TracingStore) -> set[str]:
    return {stored.tracing.key.record_number for stored in store.iter_all()}


def _dispute(n: int) -> Dispute:
    return Dispute(f"DSP-{n}", f"PRIVACY OFFICE FILE PA-{n}", "subject disputes the entry", NOW)


def _title(record: str, title: str) -> Tracing:
    details = ImpersonalTitleDetails(title, ImpersonalTitleKind.ORGANIZATION, "DSS", f"T-{record}", 1990)
    return Tracing(TracingKey("DSS", record), 1, None, details)
