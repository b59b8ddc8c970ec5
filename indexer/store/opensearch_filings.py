"""The dispute mark of an OpenSearch store (TracingStore.dispute_mark): the version of one document,
`<prefix>-dispute-filings/_doc/disputes`, written again by every instance after each statement it attaches.

The mark was the count of statements held, and a count stands still when a statement replaces another on
the same tracing, or is attached while another goes with its tracing: an answer read before such a filing
and accounted after it then left without the new statement, and the filer, reading the accounting before
the answer's entry was in it, never notified its recipient. A document's version moves by one on every
write, atomically on its primary, whichever instance writes it; a realtime GET reads it without a refresh.

Written after the statement's own write has landed and before `set_dispute` returns, so a filer reads the
accounting only once the mark has moved (the embedded store's sqlite_signal makes the same argument). An
index or document that is not there reads 0: a mark taken before it was made (or after an operator removed
it) differs from the one after, which errs toward the check.
"""

from __future__ import annotations

from opensearchpy import OpenSearch
from opensearchpy.exceptions import NotFoundError, TransportError

from indexer.store.opensearch_io import unavailable

_DOC = "disputes"
_MAPPING = {"dynamic": "strict", "properties": {}}


class DisputeFilings:
    def __init__(self, client: OpenSearch, index: str, replicas: int) -> None:
        self._client, self._index, self._replicas = client, index, replicas

    def mark(self) -> int:
        try:
            found = self._client.get(index=self._index, id=_DOC, params={"_source": "false"})
        except NotFoundError:
            return 0
        except TransportError as error:
            raise unavailable("read its dispute mark", error) from error
        return int(found["_version"])

    def bump(self) -> None:
        """Move the mark (after a statement was attached); Unavailable if the cluster would not."""
        try:
            try:
                self._client.index(index=self._index, id=_DOC, body={})
            except NotFoundError:  # the index is made by the first filing (no template creates it)
                settings = {"number_of_shards": 1, "number_of_replicas": self._replicas}
                # 400: made meanwhile by another instance (resource_already_exists).
                self._client.indices.create(
                    index=self._index, body={"settings": settings, "mappings": _MAPPING}, ignore=[400]
                )
                self._client.index(index=self._index, id=_DOC, body={})
        except TransportError as error:
            raise unavailable("move its dispute mark", error) from error
