"""Which process is rebuilding the index: one lease document that the rebuild renews while it runs.

The aliases a rebuild leaves (indexer.store.opensearch_phase) look the same whether it is running or was
cut short. Without the lease, `dcii index check` said "running, or cut short" during every healthy rebuild,
and `dcii index rebuild --resume` run beside a running rebuild deleted the version it was copying into; the
copy's next bulk made that version again, partly filled, and the rebuild swapped to it (a review of the
rebuild: 1,000 of 2,500 records gone, the check clean).

The lease is the document `rebuild` in `<prefix>-rebuild`: who holds it (host and process id), since when, and
its last heartbeat, renewed twelve times a lease's length (`rebuild_lease`, 60 s by default: every 5 s) by a
thread of the rebuild. A heartbeat newer than the lease's length (by the wall clocks of two machines: NTP
keeps them seconds apart) means running; an older one, cut short. Every renewal is conditional on the document
being as the holder last wrote it, so a holder that lost its lease (taken over by `--resume` after it went
quiet) learns it at its next renewal and stops before its swap. A rebuild that ends, well or not, deletes it.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
from dataclasses import dataclass
from typing import Any

from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConflictError, NotFoundError, TransportError

from indexer.exc import FailedPrecondition

log = logging.getLogger(__name__)

BEATS_A_LEASE = 12  # heartbeats within one lease's length (a 60 s lease: one every 5 s)
_ID = "rebuild"
_MAPPING = {
    "dynamic": "strict",
    "properties": {"holder": {"type": "keyword"}, "started": {"type": "date"}, "beat": {"type": "date"}},
}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class Holder:
    seconds: float  # the lease's length
    holder: str
    started: dt.datetime
    beat: dt.datetime
    seq_no: int
    primary_term: int

    def running(self, now: dt.datetime | None = None) -> bool:
        return ((now or _now()) - self.beat).total_seconds() < self.seconds

    def describe(self) -> str:
        quiet = max(0, int((_now() - self.beat).total_seconds()))
        return f"by {self.holder} since {self.started:%Y-%m-%d %H:%M:%S} UTC, last heard {quiet} s ago"


def held(client: OpenSearch, index: str, seconds: float) -> Holder | None:
    """The lease as it stands (None: no rebuild holds it), judged by a lease of `seconds`."""
    found = client.get(index=index, id=_ID, ignore=[404])  # absent is the usual answer: not logged as a failure
    if not found.get("found"):
        return None
    source = found["_source"]
    return Holder(
        seconds,
        source["holder"],
        dt.datetime.fromisoformat(source["started"]),
        dt.datetime.fromisoformat(source["beat"]),
        found["_seq_no"],
        found["_primary_term"],
    )


class Lease:
    """The lease of a running rebuild: taken by `take`, renewed by a thread, ended by `end`."""

    def __init__(
        self, client: OpenSearch, index: str, seconds: float, body: dict[str, Any], response: dict[str, Any]
    ) -> None:
        self._client, self._index, self._seconds, self._body = client, index, seconds, body
        self._seq = (response["_seq_no"], response["_primary_term"])
        self._lost = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name="rebuild-lease", daemon=True)
        self._thread.start()

    @classmethod
    def take(cls, client: OpenSearch, index: str, seconds: float, *, take_over: bool) -> Lease:
        """The lease, or FailedPrecondition: another rebuild is running (whatever `take_over` says), or one was
        cut short and `take_over` is not given (`dcii index rebuild --resume`)."""
        made = client.indices.create(index=index, body={"mappings": _MAPPING}, ignore=[400])  # 400: there already
        if made.get("error") and made["error"].get("type") != "resource_already_exists_exception":
            raise FailedPrecondition(f"the rebuild's lease index could not be made ({made['error'].get('type')})")
        now = _now().isoformat()
        body = {"holder": f"{socket.gethostname()} pid {os.getpid()}", "started": now, "beat": now}
        try:
            response = client.index(index=index, id=_ID, body=body, op_type="create", refresh=True)
            return cls(client, index, seconds, body, response)
        except ConflictError:
            pass
        other = held(client, index, seconds)
        if other is not None and other.running():
            raise FailedPrecondition(f"a rebuild is running ({other.describe()}): wait for it to finish")
        if other is not None and not take_over:
            raise FailedPrecondition(
                f"a rebuild was cut short ({other.describe()}): `dcii index rebuild --resume` finishes it"
            )
        try:
            if other is None:
                response = client.index(index=index, id=_ID, body=body, op_type="create", refresh=True)
            else:
                response = client.index(
                    index=index, id=_ID, body=body, refresh=True,
                    if_seq_no=other.seq_no, if_primary_term=other.primary_term,
                )  # fmt: skip
        except ConflictError as error:
            raise FailedPrecondition("another process took the rebuild's lease at the same moment") from error
        return cls(client, index, seconds, body, response)

    def check(self) -> None:
        """FailedPrecondition once the lease is lost: another process took it over (this one was thought
        cut short) or it could not be renewed for the lease's length; the rebuild stops before its next step."""
        if self._lost:
            raise FailedPrecondition(f"the rebuild's lease was lost ({self._lost}): stopped before its next step")

    def _renew(self) -> None:
        last_ok = _now()
        while not self._stop.wait(self._seconds / BEATS_A_LEASE):
            self._body = self._body | {"beat": _now().isoformat()}
            try:
                response = self._client.index(
                    index=self._index, id=_ID, body=self._body, refresh=True,
                    if_seq_no=self._seq[0], if_primary_term=self._seq[1],
                )  # fmt: skip
            except (ConflictError, NotFoundError):
                self._lost = "taken over by another process"
                return
            except TransportError as error:
                log.warning("could not renew the rebuild's lease", extra={"status": error.status_code})
                if (_now() - last_ok).total_seconds() >= self._seconds:
                    self._lost = "not renewed for the lease's length"
                    return
                continue
            self._seq, last_ok = (response["_seq_no"], response["_primary_term"]), _now()

    def end(self) -> None:
        """Stop renewing and give the lease up (kept if another process holds it now)."""
        self._stop.set()
        self._thread.join()
        if self._lost:
            return
        try:
            self._client.delete(
                index=self._index, id=_ID, refresh=True, if_seq_no=self._seq[0], if_primary_term=self._seq[1]
            )
        except (ConflictError, NotFoundError):
            pass
        except TransportError:
            log.warning("could not give up the rebuild's lease: it goes stale by itself")
