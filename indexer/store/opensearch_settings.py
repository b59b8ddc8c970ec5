"""How the OpenSearch backend reaches its cluster: settings, the store URL, and the client.

A store URL names the cluster and every connection setting in one string, so that the server, the CLI
and the tests all configure the backend the same way (indexer.store.factory.open_store):

    opensearch://localhost:9200                                   plain HTTP (tests, osmem-server)
    opensearch+https://node1:9200,node2:9200?ca=/etc/dcii/os-ca.pem&user=dcii&password_file=/run/secrets/os
    opensearch+https://node1:9200?ca=ca.pem&cert=dcii.pem&key=dcii-key.pem   client-certificate auth

Query parameters: `ca` (CA bundle that signed the cluster's certificates), `user` with `password_file`
(or the DCII_OPENSEARCH_PASSWORD environment variable, or `user:password@` in the URL, the least safe),
`cert` and `key` (a client certificate instead of a password), `verify=false` (tests only: no
certificate check), `timeout` (seconds per request, default 30), `retries` (default 5), `prefix` (of
every index name, default `dcii`), `shards` and `replicas` (of newly created indices, default 1 and 1),
`refresh` (`wait_for`, the default, or `true`: see docs/OPENSEARCH.md), `pit_keep_alive` (default 2m),
`drain_seconds` (rebuild, default 5), `rebuild_lease` (a rebuild's lease: a heartbeat every twelfth of it,
default 60 s), `pool_size` (HTTP connections per node, default 32). Plain
`http://` and `https://` URLs are taken too (DCII_OPENSEARCH_URL may be either).

Requests that fail with 429 (the cluster sheds load) or a 5xx, or do not connect, are retried with
exponential backoff and jitter up to `retries` times. Every write the store sends is idempotent
(external versions, deterministic ids), so a retried request can never apply twice.
"""

from __future__ import annotations

import os
import random
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from opensearchpy import OpenSearch, Transport
from opensearchpy.exceptions import ConnectionError as OsConnectionError
from opensearchpy.exceptions import ConnectionTimeout, TransportError
from urllib3.exceptions import ConnectTimeoutError

SCHEMES = {
    "opensearch": "http",
    "opensearch+http": "http",
    "opensearch+https": "https",
    "http": "http",
    "https": "https",
}
# Retried: the cluster is busy (429) or a node failed (5xx). Never a 4xx that says the request is wrong.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_TRUE = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class OpenSearchSettings:
    hosts: tuple[str, ...] = ("http://localhost:9200",)
    ca_file: Path | None = None
    username: str = ""
    password: str = field(default="", repr=False)
    client_cert: Path | None = None
    client_key: Path | None = None
    verify_certs: bool = True
    timeout: float = 30.0
    retries: int = 5
    backoff: float = 0.2  # first retry delay, seconds; doubles each time, capped at 10 s
    prefix: str = "dcii"
    shards: int = 1
    replicas: int = 1
    refresh: str = "wait_for"  # how a write is made visible before it returns: "wait_for" or "true"
    pit_keep_alive: str = "2m"  # how long a snapshot's point in time may stay idle
    drain_seconds: float = 5.0  # rebuild: how long searches may still use an old version after the swap
    # A rebuild's lease (indexer.store.opensearch_lease): its holder beats every twelfth of it, and another
    # rebuild watches three of the holder's beats before it calls it gone (cut short).
    rebuild_lease_seconds: float = 60.0
    pool_size: int = 32  # HTTP connections kept per node: one per concurrent request (server worker threads)

    def __post_init__(self) -> None:
        if self.refresh not in ("wait_for", "true"):
            raise ValueError("refresh must be 'wait_for' or 'true'")
        if not self.prefix or self.prefix != self.prefix.lower() or any(c in self.prefix for c in ' ,"*\\<|>/?#:'):
            raise ValueError("prefix must be a lowercase index-name prefix")
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("a client certificate needs both cert and key")

    @classmethod
    def from_url(cls, url: str, **overrides: Any) -> OpenSearchSettings:
        """Settings from a store URL (see the module's docstring); keyword arguments override it."""
        parts = urlsplit(url)
        scheme = SCHEMES.get(parts.scheme)
        if scheme is None:
            raise ValueError(f"not an OpenSearch store URL: scheme {parts.scheme!r}")
        netloc = parts.netloc
        username = password = ""
        if "@" in netloc:
            auth, netloc = netloc.rsplit("@", 1)
            username, _, password = (unquote(p) for p in auth.partition(":"))
        if not netloc:
            raise ValueError("an OpenSearch store URL names at least one host")
        hosts = tuple(f"{scheme}://{host.strip()}" for host in netloc.split(",") if host.strip())
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        unknown = set(query) - {
            "ca", "user", "password_file", "cert", "key", "verify", "timeout", "retries", "prefix",
            "shards", "replicas", "refresh", "pit_keep_alive", "drain_seconds", "rebuild_lease", "pool_size",
        }  # fmt: skip
        if unknown:
            raise ValueError(f"unknown OpenSearch URL parameter(s): {', '.join(sorted(unknown))}")
        username = query.get("user", username)
        if "password_file" in query:
            password = Path(query["password_file"]).read_text(encoding="utf-8").strip()
        elif not password:
            password = os.environ.get("DCII_OPENSEARCH_PASSWORD", "")

        def path(name: str) -> Path | None:
            return Path(query[name]) if query.get(name) else None

        settings = cls(
            hosts=hosts,
            ca_file=path("ca"),
            username=username,
            password=password,
            client_cert=path("cert"),
            client_key=path("key"),
            verify_certs=query.get("verify", "true").lower() in _TRUE,
            timeout=float(query.get("timeout", 30.0)),
            retries=int(query.get("retries", 5)),
            prefix=query.get("prefix", "dcii"),
            shards=int(query.get("shards", 1)),
            replicas=int(query.get("replicas", 1)),
            refresh=query.get("refresh", "wait_for"),
            pit_keep_alive=query.get("pit_keep_alive", "2m"),
            drain_seconds=float(query.get("drain_seconds", 5.0)),
            rebuild_lease_seconds=float(query.get("rebuild_lease", 60.0)),
            pool_size=int(query.get("pool_size", 32)),
        )
        return replace(settings, **overrides)

    def describe(self) -> str:
        """The settings without secrets, for logs and messages."""
        auth = "client certificate" if self.client_cert else ("basic" if self.username else "none")
        return f"{','.join(self.hosts)} (auth {auth}, prefix {self.prefix})"


class RetryingTransport(Transport):
    """opensearch-py's transport, retrying 429, 5xx and connection failures with exponential backoff.

    The stock transport retries at once and without 429; a cluster that sheds load needs the caller to
    wait. Set through `retry_settings` after construction (the client builds the transport itself)."""

    retry_attempts = 5
    retry_backoff = 0.2

    def perform_request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        # A bulk whose answer was lost (a timeout, a gateway's 5xx, a dropped connection) may have been
        # applied: sent again, its own versions would come back as conflicts and pass for another writer's,
        # and what follows from it (a completion's, a supersession's tombstones) would be dropped. Only a
        # refusal made before any work (429) is sent again here; anything else reaches the writer, which
        # fails the write, and the client's retry is planned afresh against what the cluster holds.
        maybe_applied = url.split("?", 1)[0].rstrip("/").endswith("/_bulk")
        attempt = 0
        while True:
            try:
                return super().perform_request(method, url, *args, **kwargs)
            except TransportError as error:
                if maybe_applied:
                    # A bulk that never reached a node (refused, or no connection in time: a node down) was
                    # not applied: sent to the next node. Else every write that met a dead node failed, at
                    # each return of that node to the rotation (a review of the backend).
                    retryable = error.status_code == 429 or _never_sent(error)
                elif isinstance(error, ConnectionTimeout):
                    # A cluster that does not answer within `timeout`: asked again, each search held its
                    # worker (retries + 1) x timeout, 185 s, long after its client gave up, and the
                    # activity's cap filled with abandoned calls (a review of the backend). Unavailable now.
                    retryable = False
                else:
                    retryable = isinstance(error, OsConnectionError) or error.status_code in RETRY_STATUSES
                if not retryable or attempt >= self.retry_attempts:
                    raise
            delay = min(10.0, self.retry_backoff * 2**attempt)
            time.sleep(delay * (0.5 + random.random() / 2))
            attempt += 1


def _never_sent(error: TransportError) -> bool:
    """Whether the request failed before a connection was made: nothing of it reached the cluster."""
    return isinstance(error, OsConnectionError) and isinstance(error.info, ConnectTimeoutError)


def connect(settings: OpenSearchSettings) -> OpenSearch:
    """A client for the cluster (thread-safe; one per store)."""
    options: dict[str, Any] = {
        "hosts": list(settings.hosts),
        "timeout": settings.timeout,
        "max_retries": 0,  # RetryingTransport does the retrying, with backoff
        "retry_on_timeout": False,
        "transport_class": RetryingTransport,
        "http_compress": True,
        "pool_maxsize": settings.pool_size,
    }
    if any(h.startswith("https://") for h in settings.hosts):
        options |= {"use_ssl": True, "verify_certs": settings.verify_certs, "ssl_show_warn": settings.verify_certs}
        if settings.ca_file is not None:
            options["ca_certs"] = str(settings.ca_file)
        if settings.client_cert is not None and settings.client_key is not None:
            options |= {"client_cert": str(settings.client_cert), "client_key": str(settings.client_key)}
    if settings.username:
        options["http_auth"] = (settings.username, settings.password)
    client = OpenSearch(**options)
    transport = client.transport
    assert isinstance(transport, RetryingTransport)
    transport.retry_attempts, transport.retry_backoff = settings.retries, settings.backoff
    return client
