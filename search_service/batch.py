"""BatchService: many queries submitted at once, answered in the background (issue 5).

SubmitBatch reads the whole stream, checks every query with the same edit criteria as an online
search (`check_query`, fields named `queries[i].query.<field>`), queues the batch durably in one
transaction and answers its status (QUEUED, with a uuid4 batch id). A query that fails the criteria,
or asks for a purpose the activity is not accredited for (`queries[i].query.purpose`), is kept with
its violations as its result: it does not sink the batch. The whole batch is refused
(INVALID_ARGUMENT) only when it is empty, has more than MAX_BATCH_QUERIES queries, or has a query_id
that is empty, longer than 64 characters or used twice; and with RESOURCE_EXHAUSTED when the activity already
holds `max_active` unfinished batches (BatchSettings.max_active_per_activity), so that no activity can pile
up work that holds back everyone else's.

Who sees what: a batch is visible to the activity that submitted it; its status, and cancelling it,
also to an administrator (who must hold the BATCH role to reach this service at all). Its results are
disclosures accounted to the operator who submitted it, so only that operator may stream them: another
operator of the activity is told PERMISSION_DENIED. Anyone outside the activity is told NOT_FOUND, as for a
batch that does not exist.

Status: `total` queries, `done` of them answered (refused ones included), `rejected` refused. Results
stream in submission order once the batch is finished: all of them when DONE, those answered before
the stop when CANCELLED or FAILED; an active batch is FAILED_PRECONDITION ("not finished"). A result
holds the first page of hits (the query's page_size, 20 by default, at most 100), as online.
The hits were accounted when the worker answered them (search_service.batch_worker); streaming them
again does not account them again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Callable, Iterable, Iterator

import grpc

from dcii.v1 import batch_pb2, batch_pb2_grpc, search_pb2
from indexer import edit_rules as rules
from indexer.exc import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from indexer.model import Identifiers, StoredTracing, Subject, TracingKey, Violation
from indexer.store.base import TracingStore
from indexer.subjects import same_subject
from search_service.accreditation import Caller, Role
from search_service.auth import caller_again, caller_of
from search_service.batch_queue import Batch, BatchPurge, BatchQueue, NewQuery, Owner, too_many_active
from search_service.batch_worker import BatchSettings
from search_service.convert import dispute_out, name_in, timestamp
from search_service.page_tokens import TokenEnvelope
from search_service.search_query import check_query

# The most queries one batch may hold; a larger list is split by the client (`dcii batch submit` does not).
MAX_BATCH_QUERIES = 100_000
MAX_QUERY_ID = 64
MAX_LABEL = 200
# Bytes of one query, and of all of a batch's queries: refused queries were kept whole too, and 200 refused
# queries of 1 MB cost 204 MiB of memory and 400 MiB on disk (with 100,000 allowed, 500 times that). A real
# query is a few hundred bytes.
MAX_QUERY_BYTES = 8 * 1024
MAX_BATCH_BYTES = 64 * 2**20
# At most this many batch-level violations are sent back (the status travels in trailing metadata).
_REPORTED = 50
_RESULT_PAGE = 500


def status_out(batch: Batch, keep_results: dt.timedelta | None = None) -> batch_pb2.BatchStatus:
    """`keep_results`: how long the server keeps a finished batch (its status then says until when)."""
    status = batch_pb2.BatchStatus(
        batch_id=batch.batch_id,
        state=batch_pb2.BatchState.Value(f"BATCH_STATE_{batch.state.value}"),
        total=batch.total,
        done=batch.done,
        rejected=batch.rejected,
        label=batch.label,
        submitted_at=timestamp(batch.submitted_at),
        reason=batch.reason,
    )
    if batch.finished_at is not None:
        status.finished_at.CopyFrom(timestamp(batch.finished_at))
        if keep_results is not None:
            # A security office fetches results when it likes; without this, the first it learned of the purge
            # was NOT_FOUND for a batch it had just seen DONE.
            status.purge_after.CopyFrom(timestamp(batch.finished_at + keep_results))
    return status


def _refusal(query_id: str, violations: Iterable[Violation]) -> bytes:
    result = batch_pb2.BatchQueryResult(query_id=query_id)
    for v in violations:
        result.violations.add(field=v.field, description=v.description)
    return result.SerializeToString()


def _surely_theirs(hit: search_pb2.Hit, stored: StoredTracing) -> bool:
    """Whether the record as it stands is surely about the person the hit showed, so that a statement of
    dispute filed on it since is theirs to carry: a name in common, or the same full SSN (indexer.subjects).
    A record refiled since to another person carried that person's statement onto the first one's hit
    (privacy review 2). The last four alone vouch for nothing (another SSN may end so), and a record whose
    name and SSN both changed since, even in two corrections, is not sure: its hit goes as it was answered,
    without the newer statement, rather than being dropped as a deleted record's is (diff review 3)."""
    live, shown = stored.tracing.subject, hit.tracing.subject
    if live is None or not hit.tracing.HasField("subject"):
        return live is None and not hit.tracing.HasField("subject")
    names = [name_in(n) for n in (shown.name, *shown.aliases)]
    return same_subject(Subject(names[0], tuple(names[1:]), identifiers=Identifiers(ssn=shown.identifiers.ssn)), live)


class _AsNow:
    """Results are kept for weeks and fetched when the operator likes, so each hit says how its record
    stands when fetched: a record disputed since the batch was answered reaches them annotated, as an
    online search would show it (seed 004: anyone who later sees a disputed record knows it is disputed),
    and one its agency has deleted since (or retention removed, or a completion replaced) is not sent at
    all: its disclosure was accounted when the batch was answered, the index no longer holds it (nor one
    that ended since and was filed again under its number: TracingStore.last_deleted). A
    statement filed since goes onto the hit only when the record is surely still that person's
    (`_surely_theirs`). A record written again since is marked `changed_since`: the hit shows it as it was
    answered (its score and explanation are of that content), and an online search shows it as it stands
    (a batch review: a corrected record came back as it was, with nothing to say so). Each hit's record is
    read once per stream."""

    def __init__(self, store: TracingStore | None) -> None:
        self._store = store
        self._known: dict[TracingKey, StoredTracing | None] = {}
        self._ended: dict[TracingKey, dt.datetime | None] = {}

    def _ended_since(self, key: TracingKey, hit: search_pb2.Hit, stored: StoredTracing) -> bool:
        """Whether the record the hit showed has ended since (deleted, its number perhaps used again for a
        namesake whose statement would then go onto it: diff review 21b-1): as a deleted record, not sent.
        A record indexed when the hit's was is the same write: nothing ended between (the log not read)."""
        assert self._store is not None
        if not hit.tracing.HasField("indexed_at"):
            return False
        shown = hit.tracing.indexed_at.ToDatetime(dt.UTC)
        if stored.indexed_at == shown:
            return False
        if key not in self._ended:
            self._ended[key] = self._store.last_deleted(key)
        ended = self._ended[key]
        return ended is not None and ended > shown  # one at the shown instant: that same write, before it

    def current(self, result: batch_pb2.BatchQueryResult) -> batch_pb2.BatchQueryResult:
        if self._store is None or not result.hits:
            return result
        kept = []
        for hit in result.hits:
            key = TracingKey(hit.tracing.key.agency, hit.tracing.key.record_number)
            if key not in self._known:
                self._known[key] = self._store.get(key)
            stored = self._known[key]
            if stored is None or self._ended_since(key, hit, stored):
                continue
            disputed = stored.dispute is not None and hit.dispute.dispute_id != stored.dispute.dispute_id
            if disputed and _surely_theirs(hit, stored):
                dispute_out(stored.dispute, hit)
            if hit.tracing.HasField("indexed_at") and stored.indexed_at != hit.tracing.indexed_at.ToDatetime(dt.UTC):
                hit.changed_since = True
            kept.append(hit)
        if len(kept) < len(result.hits):
            del result.hits[:]
            result.hits.extend(kept)
            if not kept:
                result.marking = ""  # nothing disclosed in it any more
        return result


class BatchServicer(batch_pb2_grpc.BatchServiceServicer):
    def __init__(
        self,
        queue: BatchQueue,
        today: Callable[[], dt.date],
        tokens: TokenEnvelope,
        *,
        on_submit: Callable[[], None] | None = None,
        max_queries: int = MAX_BATCH_QUERIES,
        store: TracingStore | None = None,
        max_active: int | None = None,
        on_refusal: Callable[[Caller, str, str, int], None] | None = None,
        keep_results: dt.timedelta | None = None,
    ) -> None:
        self._queue = queue
        self._tokens = tokens  # opens a query's page token (this instance's, sealed for the activity) to check it
        self._keep_results = keep_results
        self._submitting: dict[str, int] = {}  # submissions being read, per activity (`_reserved`)
        self._submitting_lock = threading.Lock()
        # Records the queries refused for a purpose the activity is not accredited for, as the interceptor
        # records an online search's (caller, method, reason, how many).
        self._on_refusal = on_refusal
        self._max_active = max_active
        # Read as results are sent, for the statements of dispute filed since the batch was answered.
        self._store = store
        self._today = today
        self._on_submit = on_submit
        self._max = max_queries

    # ---- the service, callable without gRPC ----

    def submit(
        self,
        caller: Caller,
        requests: Iterable[batch_pb2.SubmitBatchRequest],
        again: Callable[[], Caller] | None = None,
    ) -> batch_pb2.BatchStatus:
        """`again` checks the caller anew once the stream is read (a long upload), before anything is kept."""
        activity_id = caller.activity.activity_id
        with self._reserved(activity_id):
            return self._submit(caller, requests, again)

    @contextlib.contextmanager
    def _reserved(self, activity_id: str) -> Iterator[None]:
        """A place among the activity's unfinished batches, held while its submission is read: refused before
        the stream is read (up to 64 MiB, 100,000 queries checked). Counting only the batches stored, sixteen
        submissions at once all passed and six were refused after 36 s of work each (a misbehaving-terminal
        review). Counted in this process; the queue checks again, for every process, as it stores a batch."""
        with self._submitting_lock:
            under_way = self._submitting.get(activity_id, 0)
            if self._max_active is not None and self._queue.active_count(activity_id) + under_way >= self._max_active:
                raise too_many_active(self._max_active)
            self._submitting[activity_id] = under_way + 1
        try:
            yield
        finally:
            with self._submitting_lock:
                left = self._submitting[activity_id] - 1
                if left:
                    self._submitting[activity_id] = left
                else:
                    del self._submitting[activity_id]

    def _submit(
        self, caller: Caller, requests: Iterable[batch_pb2.SubmitBatchRequest], again: Callable[[], Caller] | None
    ) -> batch_pb2.BatchStatus:
        activity_id = caller.activity.activity_id
        today = self._today()
        label = ""
        queries: list[NewQuery] = []
        seen: set[str] = set()
        problems: list[Violation] = []
        held = purposes_denied = 0
        for message in requests:
            label = label or message.label
            if len(queries) + len(message.queries) > self._max:
                raise InvalidArgument([Violation("queries", f"at most {self._max} queries in one batch")])
            held += message.ByteSize()
            if held > MAX_BATCH_BYTES:
                raise InvalidArgument([Violation("queries", f"at most {MAX_BATCH_BYTES // 2**20} MiB of queries")])
            for item in message.queries:
                i = len(queries)
                if not item.query_id or len(item.query_id) > MAX_QUERY_ID or rules.has_control(item.query_id):
                    problems.append(Violation(f"queries[{i}].query_id", f"1 to {MAX_QUERY_ID} printable characters"))
                elif item.query_id in seen:
                    problems.append(Violation(f"queries[{i}].query_id", "used by an earlier query of the batch"))
                seen.add(item.query_id)
                if item.query.ByteSize() > MAX_QUERY_BYTES:  # refused, and not kept
                    too_big = Violation(f"queries[{i}].query", f"at most {MAX_QUERY_BYTES} bytes")
                    queries.append(NewQuery(item.query_id, b"", _refusal(item.query_id, [too_big])))
                    continue
                refusal, denied = self._check(item, i, today, caller)
                purposes_denied += denied
                queries.append(NewQuery(item.query_id, item.query.SerializeToString(), refusal))
        if not queries:
            problems.append(Violation("queries", "a batch holds at least one query"))
        if len(label) > MAX_LABEL or rules.has_control(label):  # echoed in every status: kept whole and plain
            problems.insert(0, Violation("label", f"at most {MAX_LABEL} printable characters"))
        if problems:
            more = [Violation("queries", f"and {len(problems) - _REPORTED} more")] if len(problems) > _REPORTED else []
            raise InvalidArgument([*problems[:_REPORTED], *more], "the batch was refused")
        if again is not None:
            caller = again()
        if purposes_denied and self._on_refusal is not None:  # audited before the batch is kept: fails closed
            reason = "a purpose this activity is not accredited for"
            self._on_refusal(caller, "/dcii.v1.BatchService/SubmitBatch", reason, purposes_denied)
        owner = Owner(activity_id, caller.operator or "", caller.fingerprint)
        batch = self._queue.submit(owner, label, queries, max_active=self._max_active)
        if self._on_submit is not None:
            self._on_submit()
        return status_out(batch, self._keep_results)

    def _check(self, item: batch_pb2.BatchQuery, i: int, today: dt.date, caller: Caller) -> tuple[bytes | None, bool]:
        """None for a query that passes the edit criteria, else its result (the violations); and whether it
        was refused for its purpose."""
        at = f"queries[{i}].query"
        try:
            check_query(item.query, caller, today, self._tokens, prefix=at)
        except InvalidArgument as error:
            return _refusal(item.query_id, error.violations), False
        except PermissionDenied as error:
            return _refusal(item.query_id, [Violation(f"{at}.purpose", error.message)]), True
        return None, False

    def _visible(self, caller: Caller, batch_id: str, *, results: bool = False) -> Batch:
        batch = self._queue.get(batch_id) if batch_id else None
        if batch is not None:
            if batch.owner.activity_id == caller.activity.activity_id:
                return batch
            if not results and Role.ADMINISTRATOR in caller.activity.roles:
                return batch
        raise NotFound("no such batch")

    def status(self, caller: Caller, batch_id: str) -> batch_pb2.BatchStatus:
        return status_out(self._visible(caller, batch_id), self._keep_results)

    def cancel(self, caller: Caller, batch_id: str) -> batch_pb2.BatchStatus:
        self._visible(caller, batch_id)
        batch = self._queue.cancel(batch_id)
        assert batch is not None
        return status_out(batch, self._keep_results)

    def results(
        self, caller: Caller, batch_id: str, again: Callable[[], Caller] | None = None
    ) -> Iterator[batch_pb2.BatchQueryResult]:
        """`again` checks the caller anew before each page: a suspension stops a stream of disclosures."""
        batch = self._visible(caller, batch_id, results=True)
        if caller.operator != batch.owner.operator:
            # Its disclosures were accounted to the operator who submitted it: only they may receive them.
            raise PermissionDenied("only the operator who submitted a batch may retrieve its results")
        if not batch.finished:
            raise FailedPrecondition(f"batch not finished: {batch.done} of {batch.total} queries answered")
        after, as_now = -1, _AsNow(self._store)
        while page := self._queue.results(batch, after, _RESULT_PAGE):
            if again is not None and after >= 0:  # the first page's check was the call's own
                again()
            for position, result in page:
                after = position
                yield as_now.current(batch_pb2.BatchQueryResult.FromString(result))

    # ---- gRPC ----

    def SubmitBatch(  # noqa: N802 (gRPC's method name)
        self, request_iterator: Iterator[batch_pb2.SubmitBatchRequest], context: grpc.ServicerContext
    ) -> batch_pb2.BatchStatus:
        return self.submit(caller_of(context), request_iterator, lambda: caller_again(context))

    def GetBatchStatus(  # noqa: N802
        self, request: batch_pb2.GetBatchRequest, context: grpc.ServicerContext
    ) -> batch_pb2.BatchStatus:
        return self.status(caller_of(context), request.batch_id)

    def StreamBatchResults(  # noqa: N802
        self, request: batch_pb2.GetBatchRequest, context: grpc.ServicerContext
    ) -> Iterator[batch_pb2.BatchQueryResult]:
        return self.results(caller_of(context), request.batch_id, lambda: caller_again(context))

    def CancelBatch(  # noqa: N802
        self, request: batch_pb2.GetBatchRequest, context: grpc.ServicerContext
    ) -> batch_pb2.BatchStatus:
        return self.cancel(caller_of(context), request.batch_id)


def add_batch_service(
    server: grpc.Server,
    queue: BatchQueue,
    today: Callable[[], dt.date],
    wake: Callable[[], None],
    store: TracingStore,
    settings: BatchSettings,
    primary: bool,
    tokens: TokenEnvelope,
    on_refusal: Callable[[Caller, str, str, int], None] | None = None,
) -> BatchPurge | None:
    """Add the BatchService to `server`; in the primary, also start the purge of expired results (its first run
    now, before the server takes a call). The purge belongs to the server, not to the worker: it must run
    whether a worker runs, has threads, or is busy with other batches."""
    keep = dt.timedelta(days=settings.keep_results_days)
    servicer = BatchServicer(
        queue,
        today,
        tokens,
        on_submit=wake,
        store=store,
        max_active=settings.max_active_per_activity,
        on_refusal=on_refusal,
        keep_results=keep,
    )
    batch_pb2_grpc.add_BatchServiceServicer_to_server(servicer, server)
    if not primary:
        return None
    purge = BatchPurge(queue, keep, settings.purge_interval)
    purge.start()
    return purge
