"""The machinery every connector shares: push, checkpoint, retry, dead letters, progress.

A source yields SourceRecords in order; `position` is the source's high-water mark after the record.
The Runner streams the requests to IngestService.Ingest in chunks. The checkpoint advances only to the
position of the last record whose result came back (every outcome counts as answered), so a restarted
connector resumes after it; with the index keeping the highest source version per key, a replay
changes nothing, and the index ends as after an uninterrupted run.

Dead letters go to a JSONL reject file (connectors.checkpoint.DeadLetters): records the connector cannot
read, those the index refuses or does not find (a completion of an open case it lacks), and a second
version of a record with the same source version and other content within one file (a collision). The
checkpoint also records how far that file had been written, and a restarted connector cuts off what was
written after it, so the records it re-reads are not dead-lettered twice.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Protocol

import grpc

from connectors.checkpoint import Checkpoint, DeadLetters, save_json_atomically, utc_now
from connectors.client import BATCH_BYTES
from connectors.progress import Progress, Stats
from dcii.v1 import ingest_pb2

__all__ = ["Backoff", "DeadLetters", "Progress", "Runner", "SourceRecord", "Stats", "StreamCutShort", "unreadable"]

RETRYABLE = frozenset(
    {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED}
)
_ANSWERED = frozenset(
    {ingest_pb2.INGEST_OUTCOME_APPLIED, ingest_pb2.INGEST_OUTCOME_UNCHANGED, ingest_pb2.INGEST_OUTCOME_NOT_FOUND}
)
_REFUSED = frozenset({ingest_pb2.INGEST_OUTCOME_REJECTED, ingest_pb2.INGEST_OUTCOME_PERMISSION_DENIED})


@dataclass(frozen=True)
class SourceRecord:
    """One record of a source. `request` None with `error` set: a record the connector cannot read
    (a dead letter without asking the index); with `error` None too: nothing to send."""

    position: str
    request: ingest_pb2.IngestRequest | None
    raw: dict[str, str]
    error: str | None = None
    violations: tuple[tuple[str, str], ...] = ()
    line: int | None = None  # in its file (a reject entry, a collision say where); None for an SQL row


def unreadable(
    position: str, raw: dict[str, str], violations: Iterable[tuple[str, str]], *, line: int | None = None
) -> SourceRecord:
    found = tuple(violations)
    why = "; ".join(f"{f}: {d}" for f, d in found) or "unreadable"
    return SourceRecord(position, None, raw, why, found, line)


class IngestSession(Protocol):
    def ingest(
        self, requests: Iterator[ingest_pb2.IngestRequest], timeout: float
    ) -> Iterable[ingest_pb2.IngestResult]: ...

    def close(self) -> None: ...


Reader = Callable[[str | None], Iterable[SourceRecord]]


class StreamCutShort(Exception):
    """The index ended a stream without answering every request (treated as UNAVAILABLE)."""


@dataclass
class Backoff:
    """Exponential backoff with full jitter: sleep uniform(0, min(cap, base * 2**attempt))."""

    base: float = 0.2
    cap: float = 30.0
    max_attempts: int = 30
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    def wait(self, attempt: int) -> None:
        # Capped before the power: a polling connector retries for ever, and 0.2 * 2**1100 is no float.
        self.sleep(self.rng.uniform(0, min(self.cap, self.base * 2 ** min(attempt, 64))))


class Runner:
    """Pushes a source's records to the index; one Runner per connector process. `forever` (polling mode):
    an outage longer than the backoff's max_attempts is retried at the cap's pace, never given up."""

    def __init__(
        self,
        connect: Callable[[], IngestSession],
        checkpoint: Checkpoint,
        rejects: Path,
        progress: Progress,
        *,
        chunk: int = 500,
        timeout: float = 120.0,
        backoff: Backoff | None = None,
        forever: bool = False,
    ) -> None:
        self.connect, self.checkpoint, self.progress = connect, checkpoint, progress
        self.dead_letters = DeadLetters(rejects, checkpoint)
        self.chunk, self.timeout, self.forever = chunk, timeout, forever
        self.backoff = backoff or Backoff()
        self.stats = Stats()
        self.source = ""  # the file (or table) being pushed: its reject entries name it
        self.after_run: Callable[[], None] | None = None
        self.started = utc_now()
        self._session: IngestSession | None = None
        self._next_id = 0
        self._progressed = False
        self._seen: dict[tuple[str, str, int], tuple[bytes, SourceRecord]] = {}
        self._unadvanced = 0  # dead letters added for the record not yet advanced past (see `_send`)
        self._last_run: dict[str, object] = {}

    def run(self, read: Reader) -> None:
        """Push everything the source holds after the checkpoint; retries transient failures."""
        attempt, relogged = 0, False
        self._seen.clear()  # a collision is within one file, or one poll of a table
        while True:
            self._progressed = False
            logging_in = self._session is None
            try:
                if self._session is None:
                    self._session = self.connect()
                logging_in = False
                self._push(self._session, read)
                break
            except (grpc.RpcError, StreamCutShort) as error:
                code = error.code() if isinstance(error, grpc.RpcError) else grpc.StatusCode.UNAVAILABLE
                if self._progressed:
                    attempt, relogged = 0, False
                if code is not grpc.StatusCode.RESOURCE_EXHAUSTED:
                    # An overloaded index (its rate, its cap on calls) keeps the session: logging in again
                    # costs it a password check and more of the rate it just refused.
                    self._drop_session()
                # An expired session gets one new login; a login refused (a wrong password, a locked or
                # suspended account) is never tried again: each try counts toward the account's lockout.
                if code is grpc.StatusCode.UNAUTHENTICATED and not relogged and not logging_in:
                    relogged = True
                    continue
                if code not in RETRYABLE or (attempt >= self.backoff.max_attempts and not self.forever):
                    raise
                if attempt == self.backoff.max_attempts:  # polling mode: the docs say it polls for ever
                    self.progress.log("outage", attempts=attempt, details=_OUTAGE)
                self.stats.retries += 1
                # The status's message says why ("the store's disk is full ..." is not "index busy"). The index's
                # messages name no person (indexer.exc), nor do gRPC's own; an SSN shape is masked anyway.
                details = error.details() if isinstance(error, grpc.RpcError) else str(error)
                self.progress.log("retry", code=code.name, attempt=attempt + 1, details=details or "")
                self.progress.update(self.stats)
                self.backoff.wait(attempt)
                attempt += 1
        if self.after_run is not None:
            self.after_run()

    def close(self, **extra: object) -> None:
        self._drop_session()
        self.progress.close(self.stats, **extra)

    def write_last_run(self, **fields: object) -> None:
        """STATE/last_run.json: when the connector last finished a run or a file, and its counts so far.
        `fields` stay for later writes (the last file is still the last one when the run ends)."""
        self._last_run.update(fields)
        data: dict[str, object] = {"connector": self.progress.name, "started": self.started, "timestamp": utc_now()}
        data |= {"counts": self.stats.as_dict(), **self._last_run}
        save_json_atomically(self.checkpoint.path.with_name("last_run.json"), data)

    def remember(self, record: SourceRecord) -> None:
        """Note a record answered before a restart, for the collisions of the rest of its file."""
        if record.request is not None:
            self._collides(record, record.request)

    def _drop_session(self) -> None:
        # A fresh channel after a failure: gRPC's own reconnect backoff would otherwise hold us back.
        if self._session is not None:
            self._session.close()
            self._session = None

    def _push(self, session: IngestSession, read: Reader) -> None:
        source = iter(read(self.checkpoint.position))
        while chunk := list(islice(source, self.chunk)):
            self._send(session, chunk)

    def _send(self, session: IngestSession, chunk: list[SourceRecord]) -> None:
        pending: deque[SourceRecord] = deque()
        requests: list[ingest_pb2.IngestRequest] = []
        for record in chunk:
            item = record
            if item.request is not None and item.request.ByteSize() > BATCH_BYTES:
                # Alone in a message it would still be refused (RESOURCE_EXHAUSTED), and retried for ever.
                why = [("row", f"too large to send (over {BATCH_BYTES} bytes)")]
                item = unreadable(item.position, item.raw, why, line=item.line)
            if item.request is None:
                pending.append(item)
                continue
            request = ingest_pb2.IngestRequest()
            request.CopyFrom(item.request)
            request.request_id = str(self._next_id)
            self._next_id += 1
            requests.append(request)
            pending.append(SourceRecord(item.position, request, item.raw, item.error, item.violations, item.line))
        try:
            if requests:
                for result in session.ingest(iter(requests), self.timeout):
                    self._settle_local(pending)
                    record = pending.popleft()
                    assert record.request is not None
                    if result.request_id != record.request.request_id:
                        raise StreamCutShort("results out of order")
                    self._settle(record, result)
            self._settle_local(pending)
            if pending:
                raise StreamCutShort(f"{len(pending)} requests unanswered")
        finally:
            # Only the entries of records the checkpoint has passed: a stop (SIGTERM) between a record's
            # dead letter and its advance wrote the entry, and the record, read again after the restart,
            # wrote it a second time (a review).
            self.dead_letters.discard_last(self._unadvanced)
            self._unadvanced = 0
            self.dead_letters.flush(self.checkpoint)
            self.checkpoint.save()

    def _dead_letter(self, record: SourceRecord, errors: Iterable[tuple[str, str]], outcome: str) -> None:
        position = None if record.line is not None else record.position  # an SQL row's (change value, key)
        self.dead_letters.add(
            record.raw, errors, outcome=outcome, source=self.source, line=record.line, position=position
        )
        self._unadvanced += 1

    def _settle_local(self, pending: deque[SourceRecord]) -> None:
        while pending and pending[0].request is None:
            record = pending.popleft()
            if record.error is not None:
                self._dead_letter(record, record.violations or (("row", record.error),), "UNREADABLE")
                self.stats.rejected += 1
            self._advance(record)

    def _settle(self, record: SourceRecord, result: ingest_pb2.IngestResult) -> None:
        assert record.request is not None
        outcome = result.outcome
        earlier = self._collides(record, record.request)
        if outcome in _REFUSED or outcome not in _ANSWERED:
            violations = [(v.field, v.description) for v in result.violations] or [("row", "refused")]
            if outcome == ingest_pb2.INGEST_OUTCOME_PERMISSION_DENIED:
                self.stats.denied += 1
            else:
                self.stats.rejected += 1
            self._dead_letter(record, violations, _outcome_name(outcome))
        elif outcome == ingest_pb2.INGEST_OUTCOME_APPLIED:
            self.stats.applied += 1
        elif outcome == ingest_pb2.INGEST_OUTCOME_UNCHANGED:
            self.stats.unchanged += 1
            if earlier is not None:
                self._collision(record, earlier)
        else:  # a completion of an open case the index lacks, a delete of a record it never had: say which
            self.stats.not_found += 1
            reasons = [(v.field, v.description) for v in result.violations] or [_not_found(record.request)]
            self._dead_letter(record, reasons, "NOT_FOUND")
        self._advance(record)

    def _collides(self, record: SourceRecord, request: ingest_pb2.IngestRequest) -> SourceRecord | None:
        """The record this file (or poll) earlier held with this one's key and source version and other
        content, else None; the record is remembered. The index answers UNCHANGED for the second, as for a
        replay: it cannot say whether the content differed, but the connector can, within what it read."""
        key = _key_of(request)
        if key is None:
            return None
        request_id, request.request_id = request.request_id, ""
        digest = hashlib.blake2b(request.SerializeToString(deterministic=True), digest_size=16).digest()
        request.request_id = request_id
        seen = self._seen.setdefault(key, (digest, SourceRecord(record.position, None, {}, line=record.line)))
        if len(self._seen) > _REMEMBERED:
            del self._seen[next(iter(self._seen))]  # the oldest: memory stays bounded on a whole table
        return seen[1] if seen[0] != digest else None

    def _collision(self, record: SourceRecord, earlier: SourceRecord) -> None:
        assert record.request is not None
        agency, number, version = _key_of(record.request) or ("", "", 0)
        here, there = (
            (f"line {record.line}", f"line {earlier.line}")
            if record.line is not None and earlier.line is not None
            else ("this row", f"the row at {earlier.position}")  # an SQL row's key: in the reject file only
        )
        why = (
            f"{here} has the agency, record number and source version {version} of {there} with other content:"
            " the index kept one and answered UNCHANGED (send a correction with a higher source_version)"
        )
        self.stats.collisions += 1
        self._dead_letter(record, [("source_version", why)], "COLLISION")
        # The record's key, never its values: which row lost is in the reject file.
        self.progress.log("collision", file=self.source, key=f"{agency}/{number}", version=version,
                          line=record.line, earlier_line=earlier.line)  # fmt: skip

    def _advance(self, record: SourceRecord) -> None:
        self.checkpoint.position = record.position
        self._unadvanced = 0  # its dead letters, if any, are behind the checkpoint now
        self._progressed = True
        self.progress.update(self.stats)


_OUTAGE = "more failures in a row than --max-retries: polling mode goes on retrying, at most 30 s apart"
_REMEMBERED = 100_000  # keys remembered for collisions within one file or poll


def _outcome_name(outcome: int) -> str:
    try:
        return ingest_pb2.IngestOutcome.Name(outcome).removeprefix("INGEST_OUTCOME_")  # type: ignore[arg-type]
    except ValueError:  # an outcome newer than this connector: refused, as any it does not know
        return "REFUSED"


def _key_of(request: ingest_pb2.IngestRequest) -> tuple[str, str, int] | None:
    action = request.WhichOneof("action")
    if action == "delete":
        return request.delete.key.agency, request.delete.key.record_number, request.delete.source_version
    if action is None:
        return None
    tracing = (
        request.upsert
        if action == "upsert"
        else request.complete_open_case.file
        if action == "complete_open_case"
        else request.complete_nac_pending.nac_history
    )
    return tracing.key.agency, tracing.key.record_number, tracing.source_version


def _not_found(request: ingest_pb2.IngestRequest) -> tuple[str, str]:
    """The reason `dcii submit` gives for a NOT_FOUND answer, which comes without violations."""
    action = request.WhichOneof("action")
    if action == "delete":
        key = request.delete.key
        return "record_number", f"the index holds no tracing {key.agency}/{key.record_number} to delete"
    replaced = (
        request.complete_open_case.open_case
        if action == "complete_open_case"
        else request.complete_nac_pending.nac_pending
    )
    return (
        "replaces_record_number",
        f"the index holds no live tracing {replaced.agency}/{replaced.record_number} to complete",
    )
