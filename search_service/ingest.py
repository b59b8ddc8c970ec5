"""IngestService: tracings, deletions and lifecycle completions from the repositories' connectors.

Each action is checked on its own (edit criteria, ownership: search_service.ingest_plan): a refused
action is answered with its field violations and never stops the actions behind it. A bulk group is
checked and prepared in worker processes (search_service.ingest_pool). Accepted actions are written in
groups and a result goes back only once its group is durable, so an APPLIED result is an acknowledgement
the index will not lose.
"""

from __future__ import annotations

import datetime as dt
import queue
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import Any, TypeVar, cast

import grpc
from google.protobuf.message import Message

from dcii.v1 import ingest_pb2, ingest_pb2_grpc, tracing_pb2
from indexer import model as m
from indexer.exc import InvalidArgument
from indexer.store.base import TracingStore, WriteResult
from search_service.accreditation import Caller
from search_service.auth import caller_again, caller_of
from search_service.convert import outcome_value
from search_service.errors import MAX_VIOLATIONS
from search_service.ingest_plan import Plan, Refusal, plan_action
from search_service.ingest_pool import IngestPool
from search_service.refusal_audit import TARGETS_LIMIT, OnRefusalInCall, TracingRefused

# Actions read ahead from a stream and written in one group (one fsync for the lot).
_GROUP = 512
# Bytes of messages a stream may have read ahead and not yet taken (one message is always let through).
READ_AHEAD_BYTES = 16 * 2**20
# Actions one IngestBatchRequest may carry (documented in ingest.proto).
MAX_BATCH_ACTIONS = 1000
_END = object()
M = TypeVar("M", bound=Message)


def _listed(violations: Sequence[m.Violation]) -> list[tracing_pb2.FieldViolation]:
    """At most MAX_VIOLATIONS of an action's violations (as the unary calls' errors list): however many one
    malformed action has, its result stays far under the message limit, and the stream goes on."""
    listed = [tracing_pb2.FieldViolation(field=v.field, description=v.description) for v in violations[:MAX_VIOLATIONS]]
    if len(violations) > MAX_VIOLATIONS:
        more = f"and {len(violations) - MAX_VIOLATIONS} more violations, not listed"
        listed.append(tracing_pb2.FieldViolation(field=violations[MAX_VIOLATIONS].field, description=more))
    return listed


def _checked_size(batch: ingest_pb2.IngestBatchRequest) -> int:
    """A batch message's weight in a group: its number of actions (a batch over the limit ends the stream
    with INVALID_ARGUMENT; the batches before it were answered, so the client knows where to resume)."""
    count = len(batch.requests)
    if count > MAX_BATCH_ACTIONS:
        raise InvalidArgument(
            [m.Violation("requests", f"at most {MAX_BATCH_ACTIONS} actions in one batch message, got {count}")]
        )
    return count


class _ByteBudget:
    """Bytes of messages read ahead and not yet taken: 2,048 messages of up to 4 MiB each let one stream
    whose client sent and never read its answers pin gigabytes. One message is always let through."""

    def __init__(self, limit: int, stopped: threading.Event) -> None:
        self._limit, self._stopped = limit, stopped
        self._held = 0
        self._room = threading.Condition()

    def reserve(self, nbytes: int) -> bool:
        """Wait for room (False: the stream stopped meanwhile)."""
        with self._room:
            while self._held and self._held + nbytes > self._limit and not self._stopped.is_set():
                self._room.wait(0.2)
            self._held += nbytes
        return not self._stopped.is_set()

    def release(self, nbytes: int) -> None:
        with self._room:
            self._held -= nbytes
            self._room.notify()


def _read_ahead(messages: Iterator[M], *, size: Callable[[M], int]) -> Generator[list[M], None, None]:
    """The stream's messages in groups of up to about _GROUP actions: whatever has arrived when the
    previous group is done, so the group grows with the load.

    A thread of its own keeps reading while a group is being written, so the next one is ready the moment
    the fsync returns. Its queue is bounded: a fast client waits, memory does not grow. When the consumer
    stops (finished, cancelled, or the client stopped reading and the call died) the reader stops too,
    instead of waiting for ever to hand over a message no one will take. A message refused by `size` ends
    the stream with that refusal, after the groups before it.
    """
    pending: queue.Queue[object] = queue.Queue(maxsize=_GROUP * 4)
    stopped = threading.Event()
    budget = _ByteBudget(READ_AHEAD_BYTES, stopped)

    def offer(item: object) -> bool:
        while not stopped.is_set():
            try:
                pending.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def pump() -> None:
        try:
            for message in messages:
                nbytes = message.ByteSize()
                if not budget.reserve(nbytes) or not offer((message, size(message), nbytes)):
                    return
        except InvalidArgument as refusal:
            offer(refusal)
            return
        except Exception:  # noqa: S110 - the client went away; the consumer sees the end and stops
            pass
        offer(_END)

    threading.Thread(target=pump, name="ingest-reader", daemon=True).start()
    try:
        ended = False
        while not ended:
            group: list[M] = []
            weight = 0
            item = pending.get()
            while True:
                if item is _END:
                    ended = True
                    break
                if isinstance(item, InvalidArgument):
                    if group:
                        yield group
                    raise item
                message, count, nbytes = cast(tuple[M, int, int], item)
                budget.release(nbytes)
                group.append(message)
                weight += count
                if weight >= _GROUP:
                    break
                try:
                    item = pending.get_nowait()
                except queue.Empty:
                    break
            if group:
                yield group
    finally:
        stopped.set()


# Records a refusal the interceptor never sees, as it records its own: (caller, method, reason, how many,
# the tracings targeted).
OnRefusal = OnRefusalInCall
INGEST, INGEST_BATCHES = "/dcii.v1.IngestService/Ingest", "/dcii.v1.IngestService/IngestBatches"
_DENIED = "PERMISSION_DENIED"  # a Refusal's outcome for an action on another agency's tracing


def _not_recorded(caller: Caller, method: str, reason: str, count: int, targets: Sequence[str] = ()) -> None:
    """No audit trail (a servicer built without one, in tests of the write path)."""


def _target(request: ingest_pb2.IngestRequest, refusal: Refusal) -> str:
    """The tracing (agency/record_number) an action refused for its owner was on, as the request named it:
    the violation's field is the path of its key's agency ("delete.key.agency", "complete_open_case.
    open_case.agency"). For the audit trail: an auditor reads which of another agency's tracings was aimed
    at (record numbers are not PII; the trail's disclosures name tracings so)."""
    node: Any = request
    try:
        for name in refusal.violations[0].field.removesuffix(".agency").split("."):
            node = getattr(node, name)
        return f"{node.agency.strip()}/{node.record_number.strip()}"
    except (AttributeError, IndexError):  # not a key's path: a refusal of another kind, named by its reason
        return "?"


class _StreamRefusals:
    """One stream's refused actions, recorded at most once a second with their count: the interceptor
    records at most 2 refusals a second per certificate, and a stream sending one action a message wrote one
    durable audit entry per message (800 a second). The first is written at once, before the group's other
    actions; those within the second after it are carried into the next entry, or the stream's last."""

    def __init__(self, record: OnRefusal, interval: float = 1.0) -> None:
        self._record, self._interval = record, interval
        self._pending: tuple[Caller, str, str] | None = None
        self._count, self._last = 0, -interval
        self._targets: list[str] = []  # the first TARGETS_LIMIT of the refused actions counted since the last

    def add(self, caller: Caller, method: str, reason: str, count: int, targets: Sequence[str] = ()) -> None:
        self._pending, self._count = (caller, method, reason), self._count + count
        self._targets += targets[: TARGETS_LIMIT - len(self._targets)]
        if time.monotonic() - self._last >= self._interval:
            self.flush()

    def flush(self) -> None:
        if self._pending is not None and self._count:
            caller, method, reason = self._pending
            self._record(caller, method, reason, self._count, self._targets)
            self._count, self._last, self._targets = 0, time.monotonic(), []


class IngestServicer(ingest_pb2_grpc.IngestServiceServicer):
    def __init__(
        self,
        store: TracingStore,
        today: Callable[[], dt.date],
        pool: IngestPool | None = None,
        on_refusal: OnRefusal = _not_recorded,
    ) -> None:
        self._store = store
        self._today = today
        self._pool = pool or IngestPool(0)
        self._on_refusal = on_refusal

    # ---- applying ----

    def apply(
        self,
        caller: Caller,
        requests: list[ingest_pb2.IngestRequest],
        method: str = INGEST,
        refusals: _StreamRefusals | None = None,
    ) -> list[ingest_pb2.IngestResult]:
        planned = self._pool.plan(caller.activity.agency, self._today(), requests)
        denied = [
            (r, p) for r, p in zip(requests, planned, strict=True) if isinstance(p, Refusal) and p.outcome == _DENIED
        ]
        if denied:  # a stream's actions on other agencies' tracings: audited (the first before the write)
            ledger = refusals or _StreamRefusals(self._on_refusal)
            reason = denied[0][1].violations[0].description
            ledger.add(caller, method, reason, len(denied), [_target(r, p) for r, p in denied[:TARGETS_LIMIT]])
        return self._write(caller, requests, planned)

    def _write(
        self, caller: Caller, requests: list[ingest_pb2.IngestRequest], planned: list[Plan]
    ) -> list[ingest_pb2.IngestResult]:
        ops = [p for p in planned if not isinstance(p, Refusal)]
        actor = f"{caller.activity.activity_id}/{caller.operator or '-'}"
        written = iter(self._store.write(ops, actor=actor))
        results = []
        for request, plan in zip(requests, planned, strict=True):
            result = ingest_pb2.IngestResult(request_id=request.request_id)
            if isinstance(plan, Refusal):
                result.outcome = outcome_value(plan.outcome)
                result.violations.extend(_listed(plan.violations))
            else:
                done: WriteResult = next(written)
                result.stored_version = done.stored_version
                if done.refusal is not None:  # a rule only the store could check: refused like the edit criteria's
                    field, why = done.refusal
                    result.outcome = ingest_pb2.INGEST_OUTCOME_REJECTED
                    result.violations.append(tracing_pb2.FieldViolation(field=f"upsert.{field}", description=why))
                else:
                    result.outcome = outcome_value(done.outcome.value)
            results.append(result)
        return results

    def Ingest(  # noqa: N802 (gRPC's method name)
        self, request_iterator: Iterator[ingest_pb2.IngestRequest], context: grpc.ServicerContext
    ) -> Iterator[ingest_pb2.IngestResult]:
        refusals = _StreamRefusals(self._on_refusal)
        try:
            for group in _read_ahead(request_iterator, size=lambda _: 1):
                yield from self.apply(caller_again(context), group, INGEST, refusals)  # suspended since: refused
        finally:
            refusals.flush()

    def IngestBatches(  # noqa: N802
        self, request_iterator: Iterator[ingest_pb2.IngestBatchRequest], context: grpc.ServicerContext
    ) -> Iterator[ingest_pb2.IngestBatchResult]:
        refusals = _StreamRefusals(self._on_refusal)
        try:
            for batches in _read_ahead(request_iterator, size=_checked_size):
                # The actions of several batch messages go to the store as one group (one fsync), and the
                # results are cut back into one answer per message, in order.
                actions = [request for batch in batches for request in batch.requests]
                results = iter(self.apply(caller_again(context), actions, INGEST_BATCHES, refusals))
                for batch in batches:
                    yield ingest_pb2.IngestBatchResult(results=[next(results) for _ in batch.requests])
        finally:
            refusals.flush()

    def Delete(  # noqa: N802
        self, request: ingest_pb2.DeleteTracing, context: grpc.ServicerContext
    ) -> ingest_pb2.IngestResult:
        return self._unary(ingest_pb2.IngestRequest(delete=request), context)

    def CompleteOpenCaseTracing(  # noqa: N802
        self, request: ingest_pb2.CompleteOpenCase, context: grpc.ServicerContext
    ) -> ingest_pb2.IngestResult:
        return self._unary(ingest_pb2.IngestRequest(complete_open_case=request), context)

    def CompleteNacPendingTracing(  # noqa: N802
        self, request: ingest_pb2.CompleteNacPending, context: grpc.ServicerContext
    ) -> ingest_pb2.IngestResult:
        return self._unary(ingest_pb2.IngestRequest(complete_nac_pending=request), context)

    def _unary(self, request: ingest_pb2.IngestRequest, context: grpc.ServicerContext) -> ingest_pb2.IngestResult:
        """Unary calls answer refusals with a status, as unary RPCs should."""
        caller = caller_of(context)
        plan = plan_action(caller.activity.agency, self._today(), request)
        if isinstance(plan, Refusal):
            if plan.outcome == _DENIED:
                raise TracingRefused(plan.violations[0].description, _target(request, plan))
            # The paths were made for the stream's IngestRequest ("delete.key"); a unary call's request is
            # the inner message itself, so its fields are named without the wrapper ("key").
            action = request.WhichOneof("action") or ""
            raise InvalidArgument(
                [m.Violation(v.field.removeprefix(f"{action}.") or v.field, v.description) for v in plan.violations]
            )
        return self._write(caller, [request], [plan])[0]
