"""Requests the OpenSearch backend makes often: bulk writes with per-item retry, and paged searches.

Errors become indexer.exc.Unavailable (the service answers UNAVAILABLE and a connector retries) with
the cluster's error *type* only: OpenSearch puts a preview of the offending value in some reasons
("failed to parse field [dob] ... value '1971-04-12'"), and no PID may reach a log or an exception.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as OsConnectionError
from opensearchpy.exceptions import ConnectionTimeout, TransportError

from indexer.exc import Unavailable
from indexer.store.opensearch_settings import RETRY_STATUSES

# OpenSearch's default index.max_result_window: a larger answer is paged with search_after.
PAGE = 10_000


@dataclass(frozen=True, slots=True)
class Action:
    """One line (or two) of a bulk request."""

    op: str  # index | create | delete
    index: str
    doc_id: str
    source: dict[str, Any] | None = None
    version: int | None = None
    version_type: str | None = None  # external | external_gte
    # Optimistic concurrency: applied only if the document still has this sequence number and term.
    seq_no: int | None = None
    primary_term: int | None = None
    # `index` names an alias: refused (404) when it names nothing, where the cluster would make an index of it.
    require_alias: bool = False

    def lines(self) -> list[dict[str, Any]]:
        meta: dict[str, Any] = {"_index": self.index, "_id": self.doc_id}
        if self.require_alias:
            meta["require_alias"] = True
        if self.version is not None:
            meta |= {"version": self.version, "version_type": self.version_type or "external"}
        if self.seq_no is not None:
            meta |= {"if_seq_no": self.seq_no, "if_primary_term": self.primary_term}
        head = {self.op: meta}
        return [head] if self.source is None else [head, self.source]


@dataclass(frozen=True, slots=True)
class ItemResult:
    status: int
    error: str  # the error type ("" when it succeeded)
    # Of the document written (when it was): a later take-back deletes it only if nothing changed it since.
    seq_no: int | None = None
    primary_term: int | None = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def conflict(self) -> bool:
        return self.status == 409


def unavailable(what: str, error: BaseException) -> Unavailable:
    """The status an adjudicator sees: what failed and how, never urllib3's text, which names the
    cluster's hosts and ports (a review of the backend); the server's log has the error's type."""
    if isinstance(error, ConnectionTimeout):
        detail = "it did not answer in time"
    elif isinstance(error, OsConnectionError):
        detail = "it could not be reached"
    elif isinstance(error, TransportError):
        detail = f"{error.status_code} {error.error}" if isinstance(error.status_code, int) else "no answer"
    else:
        detail = type(error).__name__
    return Unavailable(f"the index cluster could not {what} ({detail})")


def bulk(
    client: OpenSearch, actions: Sequence[Action], *, refresh: str, attempts: int = 5, backoff: float = 0.2
) -> list[ItemResult]:
    """Send `actions` in one bulk request (in order) and return each item's result. Items the cluster
    refused for load (429) or a node failure (5xx) are sent again, alone, with backoff; every other
    failure is the caller's to judge (409: a version conflict, 404: nothing to delete)."""
    results: list[ItemResult | None] = [None] * len(actions)
    pending = list(range(len(actions)))
    for attempt in range(attempts + 1):
        body = [line for i in pending for line in actions[i].lines()]
        try:
            response = client.bulk(body=body, refresh=refresh)
        except TransportError as error:
            raise unavailable("write", error) from error
        retry = []
        for i, item in zip(pending, response["items"], strict=True):
            (outcome,) = item.values()
            status = int(outcome.get("status", 500))
            failure = outcome.get("error") or {}
            if status in RETRY_STATUSES and attempt < attempts:
                retry.append(i)
            kind = failure.get("type", "") if isinstance(failure, dict) else "error"
            results[i] = ItemResult(status, kind, outcome.get("_seq_no"), outcome.get("_primary_term"))
        if not retry:
            break
        time.sleep(min(10.0, backoff * 2**attempt) * (0.5 + random.random() / 2))
        pending = retry
    return [r if r is not None else ItemResult(500, "unsent") for r in results]


def require(results: Sequence[ItemResult], *, allowed: frozenset[int] = frozenset()) -> None:
    """Raise Unavailable unless every item succeeded or failed only with an allowed status."""
    for result in results:
        if not result.ok and result.status not in allowed:
            raise Unavailable(f"the index cluster refused a write ({result.status} {result.error})")


def search(
    client: OpenSearch, body: dict[str, Any], *, index: str | None, what: str = "read", ignore_unavailable: bool = False
) -> dict[str, Any]:
    """One search: against `index`, or (index None) against the point in time named in the body; with
    `ignore_unavailable`, an index of `index` deleted meanwhile holds nothing."""
    params = {"ignore_unavailable": "true"} if ignore_unavailable else {}
    try:
        if index:
            found: dict[str, Any] = client.search(index=index, body=body, params=params)
        else:
            found = client.search(body=body)
    except TransportError as error:
        raise unavailable(what, error) from error
    return found


def hits(response: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = response["hits"]["hits"]
    return found


def search_pages(
    client: OpenSearch, body: dict[str, Any], *, index: str | None, limit: int | None = None
) -> Iterator[dict[str, Any]]:
    """Every hit of a sorted search (the body must sort on a unique tiebreaker), page by page with
    search_after, at most `limit`."""
    wanted = limit
    after: list[Any] | None = None
    while wanted is None or wanted > 0:
        size = PAGE if wanted is None else min(PAGE, wanted)
        page = hits(search(client, body | {"size": size} | ({"search_after": after} if after else {}), index=index))
        yield from page
        if len(page) < size:
            return
        after = page[-1]["sort"]
        if wanted is not None:
            wanted -= len(page)
