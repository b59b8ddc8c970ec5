"""The background worker that answers queued batches, at a bounded share of the server's capacity.

Each worker thread takes an active batch no other thread holds, answers a chunk of its
queries through the online search path (`SearchServicer.answer`: the same edit criteria, the same
matchers, the same hits), stores the chunk's results in one transaction, then rests. The rest is
proportional to the chunk's own time, so a thread is busy at most `duty` of the time (0.5: it works
10 ms, rests 10 ms), and online queries keep their latency. One thread by default, in a low-priority
worker process of its own (search_service.batch_process: a thread in the server process would hold the
server's GIL for milliseconds per query, which lands in the online tail); `process=False` keeps the
threads in the server process.

Fair share: the batch taken is the oldest of the activity served least recently, so activities take turns a
chunk at a time and one activity's many batches cannot hold back another's (within one activity, oldest first).
Each activity may hold at most `max_active_per_activity` unfinished batches (search_service.batch refuses more).

Every hit is a disclosure, accounted before its result is stored, with method BATCH: a chunk's answers
are accounted together in one audit transaction (one disclosure id per query), because an audit write
per query would hold the trail's writer lock and its fsyncs for the whole batch, and online searches,
which account through the same lock, would queue behind it. The recipient
is the submitting activity and operator; the activity is read from the registry before each chunk,
so a batch stops (FAILED) once its activity is suspended, revoked or loses the BATCH role, and a
purpose the activity is no longer accredited for refuses the query (a violation on its purpose).

Restart: answered queries have their results stored, so nothing is redone. A graceful `stop` lets the
current query finish and stores the chunk so far; after a crash, at most the chunk in progress is
answered again (and accounted again: over-accounting, the safe side). If the trail cannot be written,
nothing of the chunk is stored and its queries stay pending.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from dcii.v1 import batch_pb2, search_pb2
from indexer.exc import DciiError, InvalidArgument, NotFound, PermissionDenied, ResourceExhausted
from indexer.failures import failure_fields
from indexer.model import Violation
from indexer.store.base import TracingStore
from search_service.accounting import AuditLog, DisclosureEntry
from search_service.accreditation import Caller, Role, Status
from search_service.batch_queue import Answered, Batch, BatchQueue, BatchState, PendingQuery
from search_service.disclosure_budget import DisclosureBudget
from search_service.registry import Registry
from search_service.search import SearchServicer, Unaccounted
from search_service.ssn_probes import SsnProbes

log = logging.getLogger(__name__)


# A finished batch's results hold disclosed tracings: a year at most (a larger number overflowed the purge date).
MAX_KEEP_RESULTS_DAYS = 366


@dataclass(frozen=True)
class BatchSettings:
    """How much of the server the batch worker may use."""

    threads: int = 1  # worker threads (0: none, batches wait); at most one per batch
    # Queries answered between rests, accounted in one audit write and stored in one transaction. Each audit
    # write holds the trail's writer lock (and its fsyncs) for some milliseconds, during which online
    # searches wait to account: fewer, larger writes touch fewer online queries.
    chunk: int = 200
    duty: float = 0.5  # share of wall time a thread works: it rests chunk_time * (1 - duty) / duty
    idle_poll: float = 1.0  # seconds between looks at the queue when idle (a submission wakes it at once)
    retry_delay: float = 2.0  # seconds to wait after the audit trail or the store was unavailable
    # Run the threads in a worker process of their own (search_service.batch_process), so that they never
    # hold the server's GIL; False: threads in the server process (tests that need in-process control).
    process: bool = True
    nice: int = 10  # the worker process lowers its priority by this much (os.nice); 0 leaves it
    # Finished batches (and their results, which hold disclosed tracings) are deleted this long after
    # they finished, by the serving process (search_service.batch_queue.BatchPurge): as it starts, then every
    # `purge_interval` seconds, whether or not the worker runs or is busy.
    keep_results_days: float = 30.0
    purge_interval: float = 3600.0
    # Unfinished (queued or running) batches one activity may hold at once; SubmitBatch beyond it is refused
    # with RESOURCE_EXHAUSTED. With the fair share this bounds how much work one activity can pile up.
    max_active_per_activity: int = 10

    def __post_init__(self) -> None:
        if self.threads < 0 or self.chunk < 1 or not 0 < self.duty <= 1 or not 0 <= self.nice <= 19:
            raise ValueError("batch settings: threads >= 0, chunk >= 1, 0 < duty <= 1, 0 <= nice <= 19")
        if self.max_active_per_activity < 1:
            raise ValueError("batch settings: max_active_per_activity >= 1")
        if self.keep_results_days <= 0 or self.purge_interval <= 0:
            raise ValueError("batch settings: keep_results_days and purge_interval are positive")
        if self.keep_results_days > MAX_KEEP_RESULTS_DAYS:  # disclosed tracings, kept only while needed
            raise ValueError(f"batch settings: keep_results_days at most {MAX_KEEP_RESULTS_DAYS}")


@dataclass(frozen=True)
class BatchSearch:
    """The online search path without its accounting (`respond`), and the accounting of a chunk."""

    respond: Callable[[Caller, search_pb2.SearchRequest], Unaccounted]
    account: Callable[[Sequence[Sequence[DisclosureEntry]]], list[str]]
    # The activities' budget of records disclosed a day, online and batch alike (None: no budget).
    budget: DisclosureBudget | None = None


def batch_answer(
    store: TracingStore,
    today: Callable[[], dt.date],
    audit: AuditLog,
    budget: DisclosureBudget | None = None,
    guesses: SsnProbes | None = None,
) -> BatchSearch:
    """The online search path, its disclosures accounted as BATCH a chunk at a time. `guesses`: the online
    path's count of SSN guesses when the worker runs in the server's process (a count of its own gave an
    activity ten more guesses an ending by batch)."""
    search = SearchServicer(store, today, audit, ssn_guesses=guesses)

    def respond(caller: Caller, request: search_pb2.SearchRequest) -> Unaccounted:
        return search.respond(caller, request, method="BATCH")

    return BatchSearch(respond, audit.record_disclosure_groups, budget)


def refused(query_id: str, position: int, violations: Sequence[Violation]) -> batch_pb2.BatchQueryResult:
    """The result of a query refused by the edit criteria: its violations, named within the batch."""
    result = batch_pb2.BatchQueryResult(query_id=query_id)
    at = f"queries[{position}].query"
    for v in violations:
        result.violations.add(field=f"{at}.{v.field}" if v.field else at, description=v.description)
    return result


def next_batch(runnable: Sequence[Batch], held: Collection[str], served: Mapping[str, int]) -> Batch | None:
    """The oldest batch, not in `held`, of the activity served least recently (`served`: activity -> turn;
    never served first, ties to the older batch). `runnable` is oldest first."""
    oldest: dict[str, Batch] = {}
    for batch in runnable:
        if batch.batch_id not in held:
            oldest.setdefault(batch.owner.activity_id, batch)
    if not oldest:
        return None
    return min(oldest.values(), key=lambda b: (served.get(b.owner.activity_id, -1), b.seq))


class BatchWorker:
    def __init__(
        self, queue: BatchQueue, search: BatchSearch, registry: Registry, settings: BatchSettings | None = None
    ) -> None:
        self._queue = queue
        self._search = search
        self._registry = registry
        self.settings = settings or BatchSettings()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._held: set[str] = set()
        self._claim_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        # activity id -> the turn it was last served at (a chunk taken is a turn): the fair share's memory
        self._served: dict[str, int] = {}
        self._turn = 0

    def start(self) -> None:
        resumed = sum(1 for b in self._queue.runnable() if b.state is BatchState.RUNNING)
        if resumed:
            log.info("resuming batches", extra={"batches": resumed})
        for n in range(self.settings.threads):
            thread = threading.Thread(target=self._run, name=f"batch-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def wake(self) -> None:
        """A batch was submitted: look at once."""
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Let each thread finish its current query and store its chunk, then return."""
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads.clear()

    def _run(self) -> None:
        settings = self.settings
        while not self._stop.is_set():
            try:
                worked = self.run_once()
            except Exception as error:  # the trail or the store unavailable: back off, the batch waits
                log.warning("batch chunk interrupted", extra=failure_fields(error))
                self._stop.wait(settings.retry_delay)
                continue
            if worked is None:
                self._wake.wait(settings.idle_poll)
                self._wake.clear()
            elif settings.duty < 1:
                self._stop.wait(worked * (1 - settings.duty) / settings.duty)

    def run_once(self) -> float | None:
        """Answer one chunk of the next batch in fair order (`next_batch`); its time, or None when idle."""
        with self._claim_lock:
            runnable = self._queue.runnable()
            batch = next_batch(runnable, self._held, self._served)
            if batch is None:
                return None
            self._held.add(batch.batch_id)
            self._turn += 1
            # Forget activities with nothing waiting, so the map stays as small as the queue.
            active = {b.owner.activity_id for b in runnable}
            self._served = {a: turn for a, turn in self._served.items() if a in active}
            self._served[batch.owner.activity_id] = self._turn
        started = time.monotonic()
        try:
            self._chunk(batch)
        finally:
            with self._claim_lock:
                self._held.discard(batch.batch_id)
        return time.monotonic() - started

    def _caller(self, batch: Batch) -> Caller | None:
        owner = batch.owner
        try:
            activity = self._registry.activity(owner.activity_id)
        except NotFound:
            activity = None
        if activity is None or activity.status is not Status.ACTIVE or Role.BATCH not in activity.roles:
            self._queue.fail(batch.batch_id, "the submitting activity is no longer accredited for batch requests")
            log.warning("batch failed: activity not accredited", extra={"batch_id": batch.batch_id})
            return None
        # Identified again at the data: the operator who submitted it must still hold an active account.
        if owner.operator and not any(
            op.status is Status.ACTIVE and op.activity_id == owner.activity_id
            for op in self._registry.list_operators(owner.operator)
        ):
            self._queue.fail(batch.batch_id, "the submitting operator's account is no longer active")
            log.warning("batch failed: operator not active", extra={"batch_id": batch.batch_id})
            return None
        return Caller(activity, owner.fingerprint, owner.operator or None)

    def _chunk(self, batch: Batch) -> None:
        caller = self._caller(batch)
        if caller is None:
            return
        answered: list[Answered] = []
        disclosures: list[list[DisclosureEntry]] = []
        try:
            for query in self._queue.pending(batch, self.settings.chunk):
                if self._stop.is_set():
                    break
                result, disclosed = self._answer_one(caller, query)
                answered.append(result)
                disclosures.append(disclosed)
        finally:
            # Accounted before stored (and so before any result can be streamed back); if the trail
            # refuses, this raises and nothing of the chunk is stored (nor charged to the budget).
            try:
                self._search.account(disclosures)
            except BaseException:
                charged = sum(len(d) for d in disclosures)
                if charged and self._search.budget is not None:
                    self._search.budget.refund(caller.activity.activity_id, charged)
                raise
            finished = self._queue.record(batch, answered)
            if finished.finished:
                log.info("batch finished", extra={"batch_id": batch.batch_id, "state": finished.state.value})

    def _answer_one(self, caller: Caller, query: PendingQuery) -> tuple[Answered, list[DisclosureEntry]]:
        request = search_pb2.SearchRequest.FromString(query.request)
        try:
            found = self._search.respond(caller, request)
        except InvalidArgument as error:
            result = refused(query.query_id, query.position, error.violations)
        except PermissionDenied as error:  # a purpose not accredited; too many SSN guesses (its own field)
            field = getattr(error, "field", "purpose")
            result = refused(query.query_id, query.position, [Violation(field, error.message)])
        except DciiError:
            raise  # unavailable: nothing disclosed, the query stays pending
        except Exception as error:  # a defect on this query must not hold the batch forever
            log.error("batch query failed", extra=failure_fields(error))
            result = refused(query.query_id, query.position, [Violation("", "internal error: ask it online")])
        else:
            if found.disclosures and self._search.budget is not None:
                try:  # a batch's records count against the same budget as online answers
                    self._search.budget.charge(caller.activity.activity_id, len(found.disclosures))
                except ResourceExhausted as error:
                    result = refused(query.query_id, query.position, [Violation("", error.message)])
                    return Answered(query.position, result.SerializeToString(), rejected=True), []
            response = found.response
            result = batch_pb2.BatchQueryResult(
                query_id=query.query_id,
                hits=response.hits,
                matcher_version=response.matcher_version,
                next_page_token=response.next_page_token,
                candidates_truncated=response.candidates_truncated,
                marking=response.marking,  # the online answer's FOUO marking: set when it discloses
                threshold=response.threshold,
                best_below_threshold=response.best_below_threshold,
            )
            return Answered(query.position, result.SerializeToString(), rejected=False), found.disclosures
        return Answered(query.position, result.SerializeToString(), rejected=True), []
