"""The machinery every connector shares: push, checkpoint, retry, dead letters, progress.

A source yields SourceRecords in order; `position` is the source's high-water mark after the record.
The Runner streams the requests to IngestService.Ingest in chunks. The checkpoint advances only to the
position of the last record whose result came back (every outcome counts as answered), so a restarted
connector resumes after it; with the index keeping the highest source version per key, a replay
changes nothing, and the index ends as after an uninterrupted run.

Dead letters (refused or unreadable records) go to a JSONL reject file. The checkpoint also records
how far that file had been written, and a restarted connector cuts off what was written after it, so
the records it re-reads are not dead-lettered twice.
"""

from __future__ import annotations

import json
import os
import random
import re
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path
from typing import Protocol, TextIO

import grpc

from connectors.checkpoint import Checkpoint
from connectors.client import BATCH_BYTES
from dcii.v1 import ingest_pb2

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


def unreadable(position: str, raw: dict[str, str], violations: Iterable[tuple[str, str]]) -> SourceRecord:
    found = tuple(violations)
    return SourceRecord(position, None, raw, "; ".join(f"{f}: {d}" for f, d in found) or "unreadable", found)


class IngestSession(Protocol):
    def ingest(
        self, requests: Iterator[ingest_pb2.IngestRequest], timeout: float
    ) -> Iterable[ingest_pb2.IngestResult]: ...

    def close(self) -> None: ...


Reader = Callable[[str | None], Iterable[SourceRecord]]


class StreamCutShort(Exception):
    """The index ended a stream without answering every request (treated as UNAVAILABLE)."""


@dataclass
class Stats:
    applied: int = 0
    unchanged: int = 0
    rejected: int = 0
    not_found: int = 0
    denied: int = 0
    retries: int = 0

    @property
    def records(self) -> int:
        return self.applied + self.unchanged + self.rejected + self.not_found + self.denied

    def as_dict(self) -> dict[str, int]:
        return {"records": self.records, **asdict(self)}


# The safety net the server's log lines have (dcii.cli.logs), wider: nine digits, an SSN as a person or a
# file name writes it (dashes, dots, spaces or underscores between, letters around: DOE123456789.csv),
# never goes into a log line. A file's name is logged, and a repository exporting one file per person may
# name it for them.
_SSN_SHAPED = re.compile(r"(?<!\d)(\d{3})[-. _]?(\d{2})[-. _]?(\d{4})(?!\d)")


def _unless_never_an_ssn(found: re.Match[str]) -> str:
    """[redacted], but for nine digits no SSN can be (area 000, 666 or 900-999, group 00, serial 0000): a
    sequence number such as NCIS_RA_000123456 is what the operator needs to read (a review of the diff)."""
    area, group, serial = found.groups()
    if area in ("000", "666") or area >= "900" or group == "00" or serial == "0000":
        return found.group(0)
    return "[redacted]"


class Progress:
    """Counts while running: a rich bar on a terminal, else a JSON log line every `every` records."""

    def __init__(self, name: str, *, every: int = 1000, stream: TextIO | None = None) -> None:
        self.name, self.every = name, every
        self.stream = stream or sys.stderr
        self._bar: object | None = None
        self._last = 0
        if self.stream.isatty():
            from rich.console import Console
            from rich.progress import Progress as Bar
            from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

            bar = Bar(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=Console(file=self.stream),
            )
            bar.start()
            self._task = bar.add_task(name, total=None)
            self._bar = bar

    def log(self, event: str, **fields: object) -> None:
        safe = {k: _SSN_SHAPED.sub(_unless_never_an_ssn, v) if isinstance(v, str) else v for k, v in fields.items()}
        line = json.dumps({"event": event, "connector": self.name, **safe}, sort_keys=True)
        if self._bar is None:
            print(line, file=self.stream, flush=True)

    def update(self, stats: Stats) -> None:
        if self._bar is not None:
            counts = ", ".join(f"{k} {v}" for k, v in stats.as_dict().items() if v)
            self._bar.update(self._task, description=f"{self.name}: {counts}")  # type: ignore[attr-defined]
        elif stats.records - self._last >= self.every:
            self._last = stats.records
            self.log("progress", **stats.as_dict())

    def close(self, stats: Stats) -> None:
        if self._bar is not None:
            self.update(stats)
            self._bar.stop()  # type: ignore[attr-defined]
        print(json.dumps({"event": "summary", "connector": self.name, **stats.as_dict()}), file=self.stream, flush=True)


class DeadLetters:
    """The reject file: one JSON object per refused record, the raw row plus "errors": [{field, description}]."""

    def __init__(self, path: Path, checkpoint: Checkpoint) -> None:
        self.path = path
        self._pending: list[str] = []
        if "rejects_size" not in checkpoint.data:
            # A first run: record where the file stands before anything is written, so that a crash before
            # the first checkpoint cuts back to here too instead of writing the same rejects again.
            self.flush(checkpoint)
            checkpoint.save()
        else:  # cut off what was written after the last checkpoint: those records will be read again
            self.cut_back(int(checkpoint.data.get("rejects_size", 0)), checkpoint.data.get("rejects_inode"))

    def cut_back(self, size: int, inode: object) -> None:
        """Cut the reject file back to `size` bytes, if it is still the file (`inode`) it had when that
        size was taken (another: the operator took the old one away, and the new one holds only later)."""
        if not self.path.exists():
            return
        stat = self.path.stat()
        if inode is not None and inode != stat.st_ino:
            size = 0
        if stat.st_size > size:
            with self.path.open("r+b") as handle:
                handle.truncate(size)
                os.fsync(handle.fileno())

    def add(self, raw: dict[str, str], errors: Iterable[tuple[str, str]]) -> None:
        entry = {**raw, "errors": [{"field": f, "description": d} for f, d in errors]}
        self._pending.append(json.dumps(entry, ensure_ascii=False) + "\n")

    def flush(self, checkpoint: Checkpoint) -> None:
        if self._pending:
            # Refused records hold names, SSNs and dates of birth: for the connector's own user only.
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            os.fchmod(descriptor, 0o600)  # a file made before this rule was readable by all
            with open(descriptor, "a", encoding="utf-8", errors="backslashreplace") as out:  # a lone surrogate too
                out.writelines(self._pending)
                out.flush()
                os.fsync(out.fileno())
            self._pending.clear()
        stat = self.path.stat() if self.path.exists() else None
        checkpoint.data["rejects_size"] = stat.st_size if stat else 0
        checkpoint.data["rejects_inode"] = stat.st_ino if stat else None


@dataclass
class Backoff:
    """Exponential backoff with full jitter: sleep uniform(0, min(cap, base * 2**attempt))."""

    base: float = 0.2
    cap: float = 30.0
    max_attempts: int = 30
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    def wait(self, attempt: int) -> None:
        self.sleep(self.rng.uniform(0, min(self.cap, self.base * 2**attempt)))


class Runner:
    """Pushes a source's records to the index; one Runner per connector process."""

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
    ) -> None:
        self.connect, self.checkpoint, self.progress = connect, checkpoint, progress
        self.dead_letters = DeadLetters(rejects, checkpoint)
        self.chunk, self.timeout = chunk, timeout
        self.backoff = backoff or Backoff()
        self.stats = Stats()
        self._session: IngestSession | None = None
        self._next_id = 0
        self._progressed = False

    def run(self, read: Reader) -> None:
        """Push everything the source holds after the checkpoint; retries transient failures."""
        attempt, relogged = 0, False
        while True:
            self._progressed = False
            logging_in = self._session is None
            try:
                if self._session is None:
                    self._session = self.connect()
                logging_in = False
                self._push(self._session, read)
                return
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
                if code not in RETRYABLE or attempt >= self.backoff.max_attempts:
                    raise
                self.stats.retries += 1
                # The status's message says why ("the store's disk is full ..." is not "index busy"). The index's
                # messages name no person (indexer.exc), nor do gRPC's own; an SSN shape is masked anyway.
                details = error.details() if isinstance(error, grpc.RpcError) else str(error)
                self.progress.log("retry", code=code.name, attempt=attempt + 1, details=details or "")
                self.backoff.wait(attempt)
                attempt += 1

    def close(self) -> None:
        self._drop_session()
        self.progress.close(self.stats)

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
                item = unreadable(item.position, item.raw, [("row", f"too large to send (over {BATCH_BYTES} bytes)")])
            if item.request is None:
                pending.append(item)
                continue
            request = ingest_pb2.IngestRequest()
            request.CopyFrom(item.request)
            request.request_id = str(self._next_id)
            self._next_id += 1
            requests.append(request)
            pending.append(SourceRecord(item.position, request, item.raw, item.error, item.violations))
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
            self.dead_letters.flush(self.checkpoint)
            self.checkpoint.save()

    def _settle_local(self, pending: deque[SourceRecord]) -> None:
        while pending and pending[0].request is None:
            record = pending.popleft()
            if record.error is not None:
                self.dead_letters.add(record.raw, record.violations or (("row", record.error),))
                self.stats.rejected += 1
            self._advance(record)

    def _settle(self, record: SourceRecord, result: ingest_pb2.IngestResult) -> None:
        outcome = result.outcome
        if outcome in _REFUSED or outcome not in _ANSWERED:
            violations = [(v.field, v.description) for v in result.violations] or [("row", "refused")]
            if outcome == ingest_pb2.INGEST_OUTCOME_PERMISSION_DENIED:
                self.stats.denied += 1
            else:
                self.stats.rejected += 1
            self.dead_letters.add(record.raw, violations)
        elif outcome == ingest_pb2.INGEST_OUTCOME_APPLIED:
            self.stats.applied += 1
        elif outcome == ingest_pb2.INGEST_OUTCOME_UNCHANGED:
            self.stats.unchanged += 1
        else:
            self.stats.not_found += 1
        self._advance(record)

    def _advance(self, record: SourceRecord) -> None:
        self.checkpoint.position = record.position
        self._progressed = True
        self.progress.update(self.stats)
