"""The OpenSearch backend's write path: one writer thread per store, group commit, and the rules of
each operation (the same outcomes as the embedded store, indexer.store.sqlite).

A group of waiting writes is read (one realtime mget per probe step), planned against an in-memory view
of the documents it touches (so a later operation sees an earlier one of the same group), then sent in
at most four bulk requests, each waiting for a refresh, so that every result returned is visible:

0. the deletion-log entry of every delete the group plans, those of step 2 included (id "<tid>-<version>",
   op `create`: logged once however often the write is retried). A bulk is not atomic: sent with the
   tombstone, an entry whose shard failed left a deletion unlogged, and the retry found nothing to do;
1. the operations themselves: each tracing document with its source version as the external version
   (`external`: strictly newer wins; `external_gte` for a compare-and-delete at the version held), and
   statements of dispute;
2. what follows from an operation that landed: the tombstones of the old record of a completion
   (Replace under a new key) and of the NAC histories a favorable one supersedes, each `external_gte` at
   the version that ends it (the higher of the one read and the ending action's), so a newer write wins;
   and the removal of the disputes of the deletes that landed (sent with the tombstone, a removal outlived
   a tombstone another writer refused);
3. the removal of the disputes of the tombstones that landed, and the log entries of those a newer write
   overtook taken back.

A deletion is logged before its tombstone is written, so no failure between the requests leaves a deletion
unlogged; one leaves at worst an entry whose tombstone is not written yet, which the replay writes.

A crash or a failed group between steps 1 and 2 leaves the operation written and what follows undone; the
connector resends it, finds it held (UNCHANGED, as before) and step 2 runs for it then: the old record of
a completion that names it, and the earlier histories a favorable NAC history supersedes (those indexed no
later than it). Both are idempotent: a tombstone at the same ending version, a log entry by `create` under
a fixed id, and a history already tombstoned is no longer live, so no candidate. A later write of a completion's
new record (an update, a delete) finishes a completion left so too, and keeps naming the old record until
it has: the old record stays hidden behind an updated new one, and a deleted one still tells the check.
The transport never resends a bulk whose answer was lost (indexer.store.opensearch_settings): it may have
landed, and its own versions would come back as another writer's.

A version conflict (409) in step 1 means another writer (another service instance) stored a newer
version meanwhile: the operation reports UNCHANGED with what the cluster holds, and nothing follows.
Completion visibility: step 1 makes the new record visible (it names the document it replaces) before
step 2 removes the old one, so a reader sees the old, or both (and drops the old one, which the new one
names), or the new: never neither, never both (docs/OPENSEARCH.md).
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from opensearchpy import OpenSearch
from opensearchpy.exceptions import TransportError

from indexer.exc import DciiError, Unavailable
from indexer.model import Tracing, TracingKey, TracingType
from indexer.store import opensearch_follow as follow
from indexer.store.base import (
    IMPERSONAL_TITLE_OVER_ANOTHER_TYPE,
    Delete,
    DeletionRecord,
    Replace,
    Upsert,
    WriteOutcome,
    WriteResult,
    refuses_impersonal_title,
    superseded_reason,
)
from indexer.store.opensearch_io import Action, ItemResult, bulk, require, unavailable
from indexer.store.opensearch_phase import PhaseWatch
from indexer.store.opensearch_plan import Doc, Op, Plan, SetDispute, Tomb, filed_after, keep_later_disputes
from indexer.store.opensearch_resolve import resolve
from indexer.store.opensearch_schema import (
    Names,
    deletion_doc,
    deletion_id,
    dispute_doc,
    instant,
    parse_instant,
    tombstone_doc,
    tracing_doc,
)
from indexer.store.prepared import as_model
from indexer.subjects import same_subject

log = logging.getLogger(__name__)

_MAX_GROUP_OPS = 500


@dataclass
class _Job:
    ops: Sequence[Op]
    actor: str
    future: Future[list[WriteResult]]


class Writer:
    """The single writer thread of one OpenSearchStore and the logic of each write operation."""

    def __init__(self, client: OpenSearch, names: Names, *, refresh: str, clock: Callable[[], dt.datetime]) -> None:
        self._client, self._names, self._refresh, self._clock = client, names, refresh, clock
        # Where a rebuild stands (any process's): the version to mirror to, the versions to read beside the alias.
        self.phase = PhaseWatch(client, names)
        self._leaving: tuple[str, ...] = ()  # as the group being planned read them
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
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
            job = self._queue.get()
            if job is None:
                return
            jobs, waiting = [job], len(job.ops)
            while waiting < _MAX_GROUP_OPS:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)
                    break
                jobs.append(more)
                waiting += len(more.ops)
            try:
                results = self._commit_group(jobs)
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
            for each, result in zip(jobs, results, strict=True):
                each.future.set_result(result)

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

    # ---- planning each operation ----

    def _commit_group(self, jobs: list[_Job]) -> list[list[WriteResult]]:
        keys: list[TracingKey] = []
        for job in jobs:
            for op in job.ops:
                match op:
                    case Upsert(tracing):
                        keys.append(tracing.key)
                    case Delete(key, _, _) | SetDispute(key, _):
                        keys.append(key)
                    case Replace(old, _, new):
                        keys += [old, new.key]
        view, self._leaving = self._resolve(keys)
        follow.load_replaced(self._reads, view)
        now, seq = self._clock(), iter(range(1_000_000))
        plans = [[self._plan(op, job.actor, view, now, seq) for op in job.ops] for job in jobs]
        flat = [plan for job_plans in plans for plan in job_plans]
        keep_later_disputes(flat, self._names.disputes)
        self._execute(flat, now, seq)
        return [[plan.result for plan in job_plans] for job_plans in plans]

    def _plan(self, op: Op, actor: str, view: dict[TracingKey, Doc], now: dt.datetime, seq: Iterator[int]) -> Plan:
        match op:
            case Upsert(tracing):
                doc = view[tracing.key]
                if (
                    doc.exists
                    and doc.version < tracing.source_version
                    and refuses_impersonal_title(tracing.type, doc.type)
                ):
                    return Plan(WriteResult(WriteOutcome.REFUSED, doc.version, IMPERSONAL_TITLE_OVER_ANOTHER_TYPE))
                return self._upsert(as_model(tracing), view, now, actor, seq)
            case Delete(key, version, reason):
                return self._delete(view[key], version, reason, actor, now, seq, view)
            case Replace(old, expected, new):
                return self._replace(view, old, expected, as_model(new), actor, now, seq)
            case SetDispute(key, dispute):
                doc = view[key]
                if not doc.live:
                    return Plan(WriteResult(WriteOutcome.NOT_FOUND, doc.version))
                action = Action(
                    "index", self._names.disputes, str(doc.tid), dispute_doc(dispute, tid=doc.tid, born=doc.born)
                )
                return Plan(WriteResult(WriteOutcome.APPLIED, doc.version), [action])
        raise AssertionError(op)

    def _tracing_action(self, doc: Doc, source: dict[str, Any], version: int, version_type: str) -> Action:
        return Action("index", self._names.tracings, str(doc.tid), source, version, version_type, require_alias=True)

    def _log_action(
        self, doc: Doc, kind: str, version: int, reason: str, actor: str, now: dt.datetime, seq: Iterator[int]
    ) -> Action:
        record = DeletionRecord(doc.key, TracingType(kind), version, reason, actor, now)
        source = deletion_doc(record, tid=doc.tid, seq=next(seq))
        return Action("create", self._names.deletions, deletion_id(doc.tid, version), source)

    def _upsert(self, tracing: Tracing, view: dict[TracingKey, Doc], now: dt.datetime, actor: str, seq: Iterator[int],
                replaces: tuple[str, int] | None = None, born: int | None = None) -> Plan:  # fmt: skip
        doc = view[tracing.key]
        if doc.exists and doc.version >= tracing.source_version:
            plan = Plan(WriteResult(WriteOutcome.UNCHANGED, doc.version))
            plan.tombs += follow.finish(doc, view, actor)
            replayed = follow.resupersede(self._reads, doc, tracing.source_version, view, actor)
            plan.tombs += replayed  # a replayed history: what its first write may have left undone
            return plan
        finishing = follow.finish(doc, view, actor) if doc.live and replaces is None else []
        if finishing:
            replaces = doc.replaces  # the old record stays hidden behind this one until its tombstone lands
        version = tracing.source_version
        # Refiled to another person (indexer.subjects): a new life, whose readers no longer attach the old
        # life's dispute, which goes after the write as a deleted tracing's does.
        refiled = doc.live and doc.tracing is not None and not same_subject(doc.tracing.subject, tracing.subject)
        if born is None:
            born = doc.born if doc.live and not refiled else version
        source = tracing_doc(tracing, tid=doc.tid, born=born, indexed_at=now, replaces=replaces)
        plan = Plan(
            WriteResult(WriteOutcome.APPLIED, version), [self._tracing_action(doc, source, version, "external")]
        )
        kind = tracing.type
        assert kind is not None
        if doc.live and doc.type != kind.value:
            # A live tracing of another type ends here: logged as a completion's old record is (the embedded
            # store's rule), though the key goes on.
            reason = superseded_reason(kind, tracing.key)
            plan.logged.append(self._log_action(doc, doc.type, doc.version, reason, actor, now, seq))
        doc.exists, doc.version, doc.live, doc.type, doc.born = True, version, True, kind.value, born
        doc.tracing, doc.indexed_at, doc.replaces = tracing, instant(now), replaces
        plan.tombs += finishing
        if refiled:
            plan.after.append(Action("delete", self._names.disputes, str(doc.tid)))
        if kind is TracingType.NAC_HISTORY:
            plan.tombs += follow.superseded(self._reads, doc, view, actor)
        return plan

    def _delete(self, doc: Doc, version: int, reason: str, actor: str, now: dt.datetime, seq: Iterator[int],
                view: dict[TracingKey, Doc]) -> Plan:  # fmt: skip
        if not doc.exists:
            if version == 0:
                return Plan(WriteResult(WriteOutcome.NOT_FOUND, 0))
            # A delete that overtook its upsert: a tombstone keeps the upsert from landing later.
            source = tombstone_doc(doc.key, tid=doc.tid, version=version, kind="", at=now)
            doc.exists, doc.version, doc.indexed_at = True, version, instant(now)  # as the tombstone holds
            return Plan(
                WriteResult(WriteOutcome.NOT_FOUND, version), [self._tracing_action(doc, source, version, "external")]
            )
        effective = version or doc.version  # 0: the index's own deletions (retention)
        if effective < doc.version or (not doc.live and effective == doc.version):
            plan = Plan(WriteResult(WriteOutcome.UNCHANGED, doc.version))
            plan.tombs += follow.finish(doc, view, actor)  # a replayed delete of a completion's new record
            return plan
        finishing = follow.finish(doc, view, actor) if doc.live else []
        replaces = doc.replaces if finishing else None
        source = tombstone_doc(doc.key, tid=doc.tid, version=effective, kind=doc.type, at=now, replaces=replaces)
        if not doc.live:
            doc.version, doc.indexed_at = effective, instant(now)
            return Plan(
                WriteResult(WriteOutcome.NOT_FOUND, effective),
                [self._tracing_action(doc, source, effective, "external")],
            )
        plan = Plan(
            WriteResult(WriteOutcome.APPLIED, effective), [self._tracing_action(doc, source, effective, "external_gte")]
        )
        plan.logged.append(self._log_action(doc, doc.type, effective, reason, actor, now, seq))
        plan.after.append(Action("delete", self._names.disputes, str(doc.tid)))
        plan.tombs += finishing
        doc.version, doc.live, doc.tracing, doc.replaces = effective, False, None, replaces
        doc.indexed_at = instant(now)  # as the tombstone holds: a later op of the group compares with it
        return plan

    def _replace(self, view: dict[TracingKey, Doc], old: TracingKey, expected: TracingType, new: Tracing,
                 actor: str, now: dt.datetime, seq: Iterator[int]) -> Plan:  # fmt: skip
        target, prior = view[new.key], view[old]
        kind = new.type
        reason = f"SUPERSEDED by {kind.value if kind else '?'} {new.key}"
        if target.exists and target.version >= new.source_version:
            # A replayed completion, or one whose new record came first on its own (a reload): an old record
            # still live goes now (as on the embedded store), unless indexed after the new one (its key used
            # again). That also finishes a completion a failed step 2 left half done.
            plan = Plan(WriteResult(WriteOutcome.UNCHANGED, target.version))
            if (
                old != new.key
                and prior.live
                and prior.type == expected.value
                and (not target.indexed_at or parse_instant(prior.indexed_at) <= parse_instant(target.indexed_at))
            ):
                plan.result = WriteResult(WriteOutcome.APPLIED, target.version)
                ended = max(prior.version, new.source_version)
                plan.tombs.append(Tomb(prior, prior.type, ended, reason, actor))
                prior.live, prior.version = False, ended
            plan.tombs += follow.resupersede(self._reads, target, new.source_version, view, actor)
            return plan
        if not prior.live or prior.type != expected.value:
            return Plan(WriteResult(WriteOutcome.NOT_FOUND, 0))
        if old == new.key:
            # The same record number now holds the completed type: the old record is gone all the same,
            # and so is its dispute (a new life: born = the new version).
            plan = self._upsert(new, view, now, actor, seq, born=new.source_version)  # logs the old record's end
            plan.after.append(Action("delete", self._names.disputes, str(prior.tid)))
            return plan
        old_version = prior.version
        plan = self._upsert(new, view, now, actor, seq, replaces=(str(prior.tid), old_version))
        # At the completion's version, as the embedded store ends it (its _replace): a late, older update of
        # the old record is refused, not brought back beside the new one.
        ended = max(old_version, new.source_version)
        plan.tombs.insert(0, Tomb(prior, prior.type, ended, reason, actor))
        prior.live, prior.version = False, ended  # a later operation of this group sees it ended there
        return plan

    # ---- sending it ----

    @property
    def _reads(self) -> follow.Reads:
        return follow.Reads(self._client, self._names, self._leaving)

    def _send(self, actions: list[Action]) -> list[ItemResult]:
        """One bulk request; during a rebuild's copy each tracing document also goes to the new version."""
        mirrored = self.phase.mirrors(actions)
        results = bulk(self._client, actions + mirrored, refresh=self._refresh)
        self.phase.mirrored(results[len(actions) :])
        return results[: len(actions)]

    def _execute(self, plans: list[Plan], now: dt.datetime, seq: Iterator[int]) -> None:
        # Step 0: the deletion-log entry of every delete, those of step 2's tombstones included: logged
        # before any tombstone is sent, a deletion cannot go unlogged.
        tomb_logs = {
            id(tomb): self._log_action(tomb.doc, tomb.kind, tomb.version, tomb.reason, tomb.actor, now, seq)
            for plan in plans
            for tomb in plan.tombs
        }
        logs = [(plan, action) for plan in plans for action in plan.logged]
        logs += [(plan, tomb_logs[id(tomb)]) for plan in plans for tomb in plan.tombs]
        created: set[str] = set()
        if logs:
            results = self._send([action for _, action in logs])
            require(results, allowed=frozenset({409}))  # 409 on `create`: logged by an earlier attempt
            created = {action.doc_id for (_, action), r in zip(logs, results, strict=True) if r.ok}
        # Step 1: the operations.
        first = [(plan, action) for plan in plans for action in plan.primary]
        if first:
            results = self._send([action for _, action in first])
            lost: set[int] = set()
            for (plan, action), result in zip(first, results, strict=True):
                if result.conflict and action.index == self._names.tracings:
                    lost.add(id(plan))
                elif not result.ok and not (result.status == 404 and action.op == "delete"):
                    require([result])
            if lost:
                follow.take_back_lost(self._client, self._names, self._refresh, plans, lost, logs, created)
        # Step 2: tombstones that follow from operations that landed, and the disputes of deletes that did.
        tombs = [tomb for plan in plans for tomb in plan.tombs]
        after = [action for plan in plans for action in plan.after]
        if not tombs and not after:
            return
        actions = [
            self._tracing_action(
                tomb.doc,
                tombstone_doc(tomb.doc.key, tid=tomb.doc.tid, version=tomb.version, kind=tomb.kind, at=now),
                tomb.version,
                "external_gte",
            )
            for tomb in tombs
        ]
        results = self._send(actions + after)
        require(results, allowed=frozenset({404, 409}))
        # Step 3: the disputes of those that landed gone, and the log entries this group made for those a
        # newer write overtook taken back (an entry an earlier attempt made stays: its tombstone may have
        # landed then).
        last: list[Action] = []
        refiled = filed_after(plans, self._names.disputes)
        for tomb, result in zip(tombs, results[: len(tombs)], strict=True):
            log = tomb_logs[id(tomb)]
            # Refused only because a later operation of this same group wrote the key anew: as the embedded
            # store applies a group in order, the record was deleted (logged) and then written again.
            own = tomb.doc.version > tomb.version
            if id(tomb) in refiled and (result.ok or own):
                continue  # its end stays logged; the statement filed on its new life stays too
            if result.ok or own:
                last.append(Action("delete", self._names.disputes, str(tomb.doc.tid)))
            elif log.doc_id in created:
                last.append(Action("delete", log.index, log.doc_id))
        if last:
            done = bulk(self._client, last, refresh=self._refresh)
            require(done, allowed=frozenset({404, 409}))
