"""The OpenSearch backend's write path: one writer thread per store and group commit, with the same outcomes
as the embedded store (indexer.store.sqlite).

A group of waiting writes (up to 500 operations, from any number of callers) is read (one realtime mget per
probe step), planned against an in-memory view of the documents it touches, so that a later operation sees
an earlier one of the same group (the rules of each operation: opensearch_writer_rules), then sent in at most
four bulk requests, each waiting for a refresh, so that every result returned is visible
(opensearch_writer_steps): every deletion's log entry, the operations, the tombstones that follow from them
(a completion's old record, the histories a favorable NAC history supersedes), then the removal of their
disputes.

A deletion is logged before its tombstone is written, so no failure between the requests leaves a deletion
unlogged; one leaves at worst an entry whose tombstone is not written yet, which the replay writes (and one
the record's newer version overtook, which no reader counts: opensearch_deletion_log).

A crash or a failed request between steps 1 and 2 leaves the operation written and what follows undone; the
connector resends it, finds it held (UNCHANGED, as before) and step 2 runs for it then: the old record of
a completion that names it, and the earlier histories its deletion-log entries name. Both are idempotent: a
tombstone at the same ending version, a log entry by `create` under a fixed id. A later write of a
completion's new record or of its old record finishes a completion left so too. The transport never resends
a bulk whose answer was lost (indexer.store.opensearch_settings): it may have landed, and its own versions
would come back as another writer's.

Each caller hears of its own operations: OpenSearch runs the other actions of a bulk request when one fails,
so one caller's failure is not reported to the others of its group (opensearch_writer_steps). A statement of
dispute is never grouped behind a write of its own record: planned on what that write would leave, it could
land while the write failed, attached to a life the record never had.

Completion visibility: step 1 makes the new record visible (it names the document it replaces) before
step 2 removes the old one, so a reader sees the old, or both (and drops the old one, which the new one
names), or the new: never neither, never both (docs/OPENSEARCH.md).
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass

from opensearchpy import OpenSearch
from opensearchpy.exceptions import TransportError

from indexer.exc import DciiError, Unavailable
from indexer.model import TracingKey
from indexer.store import opensearch_follow as follow
from indexer.store.base import WriteResult
from indexer.store.opensearch_io import unavailable
from indexer.store.opensearch_phase import PhaseWatch
from indexer.store.opensearch_plan import Doc, Op, Plan, SetDispute, keep_later_disputes
from indexer.store.opensearch_resolve import resolve
from indexer.store.opensearch_schema import Names
from indexer.store.opensearch_writer_rules import Rules, op_keys
from indexer.store.opensearch_writer_steps import Steps

log = logging.getLogger(__name__)

_MAX_GROUP_OPS = 500


@dataclass
class _Job:
    ops: Sequence[Op]
    actor: str
    future: Future[list[WriteResult]]

    def named(self) -> set[TracingKey]:
        return {key for op in self.ops for key in op_keys(op)}

    def filed_on(self) -> set[TracingKey]:
        return {op.key for op in self.ops if isinstance(op, SetDispute)}


class Writer:
    """The single writer thread of one OpenSearchStore."""

    def __init__(self, client: OpenSearch, names: Names, *, refresh: str, clock: Callable[[], dt.datetime]) -> None:
        self._client, self._names, self._refresh, self._clock = client, names, refresh, clock
        # Where a rebuild stands (any process's): the version to mirror to, the versions to read beside the alias.
        self.phase = PhaseWatch(client, names)
        self._leaving: tuple[str, ...] = ()  # as the group being planned read them
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._next: _Job | None = None  # taken from the queue, the first of the next group (the writer's thread)
        # Deletion-log entries' order within one instant: every entry this writer logs takes the next number.
        self._numbers = itertools.count()
        self._thread = threading.Thread(target=self._run, name="opensearch-writer", daemon=True)
        self._thread.start()

    def submit(self, ops: Sequence[Op], actor: str) -> list[WriteResult]:
        job = _Job(ops, actor, Future())
        self._queue.put(job)
        return job.future.result()

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while True:
            job, self._next = self._next or self._queue.get(), None
            if job is None:
                return
            jobs = self._group(job)
            try:
                plans = self._commit_group(jobs)
            except (DciiError, TransportError, OSError) as error:
                failure = error if isinstance(error, Unavailable) else unavailable("write", error)
                for each in jobs:
                    each.future.set_exception(failure)
                continue
            except BaseException as error:  # a bug: every caller hears of it, the thread lives on
                log.exception("opensearch writer failed")
                for each in jobs:
                    each.future.set_exception(error)
                continue
            for each, job_plans in zip(jobs, plans, strict=True):
                failed = next((plan.failure for plan in job_plans if plan.failure is not None), None)
                if failed is not None:
                    each.future.set_exception(failed)
                else:
                    each.future.set_result([plan.result for plan in job_plans])

    def _group(self, first: _Job) -> list[_Job]:
        """`first` and the jobs waiting behind it, up to _MAX_GROUP_OPS operations. A job filing a statement of
        dispute on a record an earlier job of the group names begins the next group instead."""
        jobs, waiting, named = [first], len(first.ops), first.named()
        while waiting < _MAX_GROUP_OPS:
            try:
                more = self._queue.get_nowait()
            except queue.Empty:
                break
            if more is None:
                self._queue.put(None)
                break
            if more.filed_on() & named:
                self._next = more
                break
            jobs.append(more)
            waiting += len(more.ops)
            named |= more.named()
        return jobs

    # ---- reading what the cluster holds ----

    def resolve(self, keys: Sequence[TracingKey]) -> dict[TracingKey, Doc]:
        """The document of each key (realtime), following its probe chain to the key or a free id; while a
        rebuild's swap is near, the newer of the alias's and the leaving version's (opensearch_phase)."""
        return self._resolve(keys)[0]

    def _resolve(self, keys: Sequence[TracingKey]) -> tuple[dict[TracingKey, Doc], tuple[str, ...]]:
        leaving = self.phase.current().leaving
        view = resolve(self._client, self._names, keys, leaving)
        # Asked again after the reads: a view of the aliases older than them could miss a swap they saw.
        if not set(later := self.phase.current().leaving) <= set(leaving):
            view, leaving = resolve(self._client, self._names, keys, later), later
        return view, leaving

    # ---- planning and sending a group ----

    def _commit_group(self, jobs: list[_Job]) -> list[list[Plan]]:
        keys = [key for job in jobs for op in job.ops for key in op_keys(op)]
        view, self._leaving = self._resolve(keys)
        now = self._clock()
        rules = Rules(self._names, follow.Reads(self._client, self._names, self._leaving), view, now, self._numbers)
        rules.replaying([op for job in jobs for op in job.ops])
        plans = [[rules.plan(op, job.actor) for op in job.ops] for job in jobs]
        flat = [plan for job_plans in plans for plan in job_plans]
        keep_later_disputes(flat, self._names.disputes)
        Steps(self._client, self._names, self._refresh, self.phase, self._leaving, now).run(flat)
        return plans
