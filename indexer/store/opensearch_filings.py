"""The dispute mark of an OpenSearch store (TracingStore.dispute_mark): a number drawn at random by every
filing and written into one document, `<prefix>-dispute-filings/_doc/disputes` (its index made with the
disputes' by opensearch_admin.ensure), after each statement attached and before `set_dispute` returns.

The mark was the count of statements held, and a count stands still when a statement replaces another on
the same tracing, or is attached while another goes with its tracing: an answer read before such a filing
and accounted after it then left without the new statement, and the filer, reading the accounting before
the answer's entry was in it, never notified its recipient. The document's version was tried first and
not kept: it starts again at 1 when the index is made again, is put back by a snapshot's restore, and a
bump lost with a failed primary would be numbered again by the next; a random 63-bit number drawn by each
filing never comes back (a review of this change). A realtime GET reads it without a refresh (from the
primary under segment replication since OpenSearch 2.10; docs/OPENSEARCH.md).

Written after the statement's own write has landed, so a filer reads the accounting only once the mark has
moved (the embedded store's sqlite_signal makes the same argument). A document not there reads 0.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable

from opensearchpy import OpenSearch
from opensearchpy.exceptions import TransportError

from indexer.exc import DciiError, Unavailable
from indexer.store.opensearch_io import unavailable

_DOC = "disputes"


class DisputeFilings:
    def __init__(self, client: OpenSearch, index: str) -> None:
        self._client, self._index = client, index

    def mark(self) -> int:
        try:
            # 404 (no filing yet) ignored: the client would log every one at WARNING, two an answer.
            found = self._client.get(index=self._index, id=_DOC, params={"_source_includes": "n"}, ignore=[404])
        except TransportError as error:
            raise unavailable("read its dispute mark", error) from error
        return int(found["_source"]["n"]) if found.get("found") else 0

    def bump(self) -> None:
        """Move the mark (after a statement was attached); Unavailable if the cluster would not."""
        try:
            self._client.index(index=self._index, id=_DOC, body={"n": secrets.randbits(63)})
        except TransportError as error:
            raise unavailable("move its dispute mark", error) from error


def attach_and_announce(attach: Callable[[], bool], filings: DisputeFilings) -> bool:
    """`attach()` (the statement's write: whether it was attached), then the mark moved."""
    try:
        attached = attach()
    except Exception:
        # The statement may have landed before its write group failed: the mark moves anyway (an extra move
        # costs an answer one re-read), and the filer hears the group's error.
        with contextlib.suppress(DciiError):
            filings.bump()
        raise
    if attached:
        try:
            filings.bump()  # landed: moved before the filer reads whom to notify
        except DciiError as error:
            raise Unavailable(
                f"the statement was attached, but answers in progress cannot be told: file it again ({error})"
            ) from error
    return attached
