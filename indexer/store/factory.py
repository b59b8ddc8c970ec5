"""Open a store by URL: the one place that chooses the backend.

    var/data/index.db                      the embedded store (a path, relative or absolute)
    sqlite:///var/data/index.db            the same, as a URL (sqlite:////abs/path for an absolute path)
    opensearch://localhost:9200            an OpenSearch cluster over plain HTTP (tests)
    opensearch+https://node1:9200,node2:9200?ca=ca.pem&user=dcii&password_file=/run/secrets/os

The OpenSearch URL's parameters (TLS, authentication, timeouts, retries, index prefix) are described in
indexer.store.opensearch_settings. Both backends keep the same interface and give the same answers;
the OpenSearch one needs the `opensearch-py` package, imported only when such a URL is opened.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

from indexer.store.base import TracingStore

_OPENSEARCH = ("opensearch", "opensearch+http", "opensearch+https")


def is_opensearch(url: str) -> bool:
    return urlsplit(url).scheme in _OPENSEARCH


def sqlite_path(url: str) -> Path | None:
    """The file of an embedded-store URL or path (None for any other backend)."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        if parts.netloc not in ("", "localhost"):
            raise ValueError("a sqlite:// store URL names a local file: sqlite:///relative or sqlite:////absolute")
        return Path(unquote(parts.path[1:] if parts.path.startswith("/") else parts.path))
    if parts.scheme in ("", "file") or (len(parts.scheme) == 1 and url[1:3] in (":\\", ":/")):  # C:\ on Windows
        return Path(unquote(parts.path) if parts.scheme == "file" else url)
    return None


def open_store(
    url: str | Path, *, clock: Callable[[], dt.datetime] | None = None, read_only: bool = False
) -> TracingStore:
    """The store named by `url` (see the module's docstring), opened and ready; close it when done.
    `read_only`: a store opened to be looked at: an embedded store's file left exactly as it is
    (SqliteStore); an OpenSearch store's indices never created (a prefix without them is refused)."""
    text = str(url)
    path = sqlite_path(text)
    if path is not None:
        from indexer.store.sqlite import SqliteStore

        if clock is None:
            return SqliteStore(path, read_only=read_only)
        return SqliteStore(path, clock=clock, read_only=read_only)
    if is_opensearch(text):
        from indexer.store.opensearch import OpenSearchStore
        from indexer.store.opensearch_settings import OpenSearchSettings

        settings = OpenSearchSettings.from_url(text)
        if clock is None:
            return OpenSearchStore(settings, create=not read_only)
        return OpenSearchStore(settings, clock=clock, create=not read_only)
    raise ValueError(f"no store backend for {urlsplit(text).scheme!r} URLs (use a path, sqlite:/// or opensearch://)")


def describe(url: str | Path) -> str:
    """The URL without secrets (for messages and logs)."""
    text = str(url)
    if is_opensearch(text):
        from indexer.store.opensearch_settings import OpenSearchSettings

        return "OpenSearch " + OpenSearchSettings.from_url(text).describe()
    path = sqlite_path(text)
    return f"embedded store {path}" if path is not None else "unknown store"
