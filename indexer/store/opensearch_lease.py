"""Which process is rebuilding the index: one lease document that the rebuild renews while it runs.

The aliases a rebuild leaves (indexer.store.opensearch_phase) look the same whether it is running or was
cut short. Without the lease, `dcii index check` said "running, or cut short" during every healthy rebuild,
and `dcii index rebuild --resume` run beside a running rebuild deleted the version it was copying into; the
copy's next bulk made that version again, partly filled, and the rebuild swapped to it (a review of the
rebuild: 1,000 of 2,500 records gone, the check clean).

The lease is the document `rebuild` in `<prefix>-rebuild`: who holds it (host and process id, and a token of
its own), since when, and its heartbeat, renewed twelve times a lease's length (`rebuild_lease`, 60 s by
default: every 5 s) by a thread of the rebuild. Another rebuild that finds it watches it for three
heartbeats: renewed, it is running; not, its holder is gone (cut short, or it ended without giving the lease
up). No two machines' clocks are compared for that; `dcii index check` only hints by them. Every renewal is
conditional on the document as the holder last wrote it, so a holder taken over (by `--resume`, after it
went quiet) learns it at its next renewal and stops before its next step; a failed renewal is tried again.
A rebuild that ends, well or not, gives the lease up.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConflictError, NotFoundError, TransportError

from indexer.exc import FailedPrecondition
from indexer.failures import failure_fields

log = logging.getLogger(__name__)

BEATS_A_LEASE = 12  # heartbeats within one lease's length (a 60 s lease: one every 5 s)
WATCHED_BEATS = 3  # how many of the holder's heartbeats a rebuild waits for before it calls the holder gone
_ID = "rebuild"
_MAPPING = {
    "dynamic": "strict",
    "properties": {
        "holder": {"type": "keyword"},
        "token": {"type": "keyword"},
        "started": {"type": "date"},
        "beat": {"type": "date"},
        "every": {"type": "float"},
    },
}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class Holder:
    holder: str
    token: str
    started: dt.datetime
    beat: dt.datetime
    every: float  # seconds between its heartbeats
    seq_no: int
    primary_term: int

    def heard_lately(self) -> bool:
        """By this machine's clock against the holder's: a hint for the check, never for taking the lease."""
        return (_now() - self.beat).total_seconds() < self.every * BEATS_A_LEASE

    def describe(self) -> str:
        quiet = max(0, int((_now() - self.beat).total_seconds()))
        return f"by {self.holder} since {self.started:%Y-%m-%d %H:%M:%S} UTC, last heard {quiet} s ago by its clock"


def held(client: OpenSearch, index: str) -> Holder | None:
    """The lease as it stands (None: no rebuild holds it)."""
    found = client.get(index=index, id=_ID, ignore=[404])  # absent is the usual answer: not logged as a failure
    if not found.get("found"):
        return None
    source = found["_source"]
    return Holder(
        source["holder"],
        source["token"],
        dt.datetime.fromisoformat(source["started"]),
        dt.datetime.fromisoformat(source["beat"]),
        float(source["every"]),
        found["_seq_no"],
        found["_primary_term"],
    )


def _alive(client: OpenSearch, index: str, other: Holder) -> bool:
    """Whether the holder renews its lease: watched for WATCHED_BEATS of its heartbeats, so that no two
    machines' clocks are compared (a dead holder whose clock ran ten minutes ahead looked alive for ten
    minutes, and a live one looked dead to a machine whose clock ran ahead; a review of the lease)."""
    deadline = time.monotonic() + other.every * WATCHED_BEATS
    while time.monotonic() < deadline:
        time.sleep(min(other.every / 2, max(0.0, deadline - time.monotonic())))
        now = held(client, index)
        if now is None or (now.seq_no, now.primary_term) != (other.seq_no, other.primary_term):
            return True  # renewed, given up or taken by another: not this one's to take now
    return False


class Lease:
    """The lease of a running rebuild: taken by `take`, renewed by a thread, ended by `end`."""

    def __init__(self, client: OpenSearch, index: str, body: dict[str, Any], seq: tuple[int, int]) -> None:
        self._client, self._index, self._body, self._seq = client, index, body, seq
        self._lost = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name="rebuild-lease", daemon=True)
        self._thread.start()

    @classmethod
    def take(cls, client: OpenSearch, index: str, seconds: float, replicas: int, *, take_over: bool) -> Lease:
        """The lease, or FailedPrecondition: another rebuild renews it (whatever `take_over` says), or one that
        stopped renewing left it and `take_over` is not given (`dcii index rebuild --resume`)."""
        settings = {"number_of_shards": 1, "number_of_replicas": replicas}
        made = client.indices.create(index=index, body={"settings": settings, "mappings": _MAPPING}, ignore=[400])
        if made.get("error") and made["error"].get("type") != "resource_already_exists_exception":
            raise FailedPrecondition(f"the rebuild's lease index could not be made ({made['error'].get('type')})")
        now = _now().isoformat()
        body = {
            "holder": f"{socket.gethostname()} pid {os.getpid()}", "token": secrets.token_hex(8),
            "started": now, "beat": now, "every": seconds / BEATS_A_LEASE,
        }  # fmt: skip
        if (mine := cls._write(client, index, body, None)) is not None:
            return cls(client, index, body, mine)
        other = held(client, index)
        if other is not None and _alive(client, index, other):
            raise FailedPrecondition(f"a rebuild is running ({other.describe()}): wait for it to finish")
        if other is not None and not take_over:
            raise FailedPrecondition(
                f"a rebuild was cut short ({other.describe()}): `dcii index rebuild --resume` finishes it"
            )
        if (
            mine := cls._write(client, index, body, None if other is None else (other.seq_no, other.primary_term))
        ) is None:
            raise FailedPrecondition("another process took the rebuild's lease at the same moment")
        return cls(client, index, body, mine)

    @staticmethod
    def _write(
        client: OpenSearch, index: str, body: dict[str, Any], over: tuple[int, int] | None
    ) -> tuple[int, int] | None:
        """Write the lease: created, or over `over` as it was read. Its sequence number, or None when another
        write came first. A write whose answer was lost and that the client sent again meets itself: the
        document read back with this lease's token is this lease's (a review of the lease)."""
        if over is None:
            condition: dict[str, Any] = {"op_type": "create"}
        else:
            condition = {"if_seq_no": over[0], "if_primary_term": over[1]}
        try:
            written = client.index(index=index, id=_ID, body=body, refresh=True, ignore=[409], **condition)
        except ConflictError:  # a retry of a write that landed, answered 409 against itself
            written = {"status": 409}
        if written.get("status") != 409 and "_seq_no" in written:
            return written["_seq_no"], written["_primary_term"]
        # Only this lease writes its token: the document is still this lease's (a write of it landed, its
        # answer lost, and the renewal after it carried the sequence number before it).
        now = held(client, index)
        return (now.seq_no, now.primary_term) if now is not None and now.token == body["token"] else None

    def check(self) -> None:
        """FailedPrecondition once the lease is lost (another process took it over, this one being thought
        gone; or its document was deleted): the rebuild stops before its next step."""
        if self._lost:
            raise FailedPrecondition(f"the rebuild's lease was lost ({self._lost}): stopped before its next step")

    def _renew(self) -> None:
        while not self._stop.wait(self._body["every"]):
            try:
                body = self._body | {"beat": _now().isoformat()}
                written = self._write(self._client, self._index, body, self._seq)
            except NotFoundError:
                self._lost = "its document or index was deleted"
                return
            except Exception as error:  # a failed renewal is not a lost lease: tried again at the next beat
                log.warning("could not renew the rebuild's lease", extra=failure_fields(error))
                continue
            if written is None:
                self._lost = "taken over by another process"
                return
            self._body, self._seq = body, written

    def end(self) -> None:
        """Stop renewing and give the lease up, if it is still this one's."""
        self._stop.set()
        self._thread.join()
        if self._lost:
            return
        try:
            now = held(self._client, self._index)
            if now is not None and now.token == self._body["token"]:
                self._client.delete(
                    index=self._index, id=_ID, refresh=True, if_seq_no=now.seq_no, if_primary_term=now.primary_term,
                    ignore=[404, 409],
                )  # fmt: skip
        except TransportError:
            log.warning("could not give up the rebuild's lease: the next rebuild waits for it to go quiet")
