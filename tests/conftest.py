"""Shared fixtures: a real index server on loopback, with real mutual TLS and a real SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# The shared check modules assert in helpers that tests call: pytest explains their failures as it does a
# test's own asserts only if it rewrites them, which it does by itself for test_*.py files alone.
pytest.register_assert_rewrite(
    "tests.client_faults_support",
    "tests.fuzz_rpc_support",
    "tests.serving_support",
    "tests.store_backends",
    "tests.support",
)

from tests.support import Index, make_index  # noqa: E402 (after the rewrite is registered)


@pytest.fixture
def index(tmp_path: Path) -> Iterator[Index]:
    built = make_index(tmp_path)
    built.start()
    try:
        yield built
    finally:
        built.stop()


@pytest.fixture(scope="session")
def osmem() -> Iterator[Any]:
    """One osmem-server (the OpenSearch API in-process) for the session; tests take clones of it."""
    from osmem_server import OsmemServer  # type: ignore[import-untyped]

    with OsmemServer.start(japanese=False) as server:
        yield server
