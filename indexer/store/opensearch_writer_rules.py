"""The rules of each write operation on the OpenSearch backend (the embedded store's outcomes, indexer.store.
sqlite_rules), planned against one write group's view of the documents it touches; indexer.store.
opensearch_writer reads the view and sends what is planned (opensearch_writer_steps).

Each plan is made in the group's order, and sees what the plans before it did to the view. Every deletion
it plans carries its deletion-log entry, numbered as it is planned: the log keeps the order of the group's
operations, as the embedded store's insertion order does (a review found a completion's entry listed after a
later delete's, every tombstone that follows from an operation having been numbered after the group's plain
deletes).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

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
from indexer.store.opensearch_io import Action
from indexer.store.opensearch_plan import Doc, Op, Plan, SetDispute, Tomb
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

View = dict[TracingKey, Doc]

# deletion_doc's `seq` is an integer field: numbers wrap rather than overflow it (they order one instant only).
_SEQ_MODULUS = 2**31


def op_keys(op: Op) -> list[TracingKey]:
    """The keys an operation names."""
    match op:
        case Upsert(tracing):
            return [tracing.key]
        case Delete(key, _, _) | SetDispute(key, _):
            return [key]
        case Replace(old, _, new):
            return [old, new.key]
    raise AssertionError(op)


class Rules:
    """One write group's planning: its view (read by the writer), its instant, and the numbers of its entries
    (`numbers`, the writer's, so groups of one instant, as with a fixed clock, keep their order too)."""

    def __init__(self, names: Names, reads: follow.Reads, view: View, now: dt.datetime, numbers: Iterator[int]) -> None:
        self._names, self._reads, self.view, self._now, self._numbers = names, reads, view, now, numbers
        follow.load_replaced(reads, view)
        self._naming = follow.load_replacing(reads, view)

    def replaying(self, ops: list[Op]) -> None:
        """Before the group's plans: the marks of the NAC histories it replays, read at once (follow.load_marks)."""
        replayed = []
        for op in ops:
            match op:
                case Upsert(tracing) | Replace(_, _, tracing):
                    doc = self.view[tracing.key]
                    if doc.live and doc.version == tracing.source_version and doc.tracing is not None:
                        replayed.append(doc.tracing)
        follow.load_marks(self._reads, [t for t in replayed if t.type is TracingType.NAC_HISTORY])

    def plan(self, op: Op, actor: str) -> Plan:
        keys = op_keys(op)
        # A completion left half done whose old record this operation names is finished first: the old record
        # ended at the completion's version, as on the embedded store, where the completion was one write.
        replayed_by = op.new.key if isinstance(op, Replace) else None  # its own replay retires it (APPLIED)
        ending = self._numbered(
            [
                tomb
                for key in keys
                for naming in self._naming.get(str(self.view[key].tid), [])
                if naming != replayed_by
                for tomb in follow.finish(self.view[naming], self.view, actor)
            ]
        )
        plan = self._dispatch(op, actor)
        plan.tombs[:0] = ending
        plan.touches = {self.view[key].tid for key in keys} | {tomb.doc.tid for tomb in plan.tombs}
        plan.filing = isinstance(op, SetDispute) and not plan.tombs  # a statement alone changes no tracing
        return plan

    def _dispatch(self, op: Op, actor: str) -> Plan:
        view = self.view
        match op:
            case Upsert(tracing):
                doc = view[tracing.key]
                if (
                    doc.exists
                    and doc.version < tracing.source_version
                    and refuses_impersonal_title(tracing.type, doc.type)
                ):
                    return Plan(WriteResult(WriteOutcome.REFUSED, doc.version, IMPERSONAL_TITLE_OVER_ANOTHER_TYPE))
                return self._upsert(as_model(tracing), actor)
            case Delete(key, version, reason):
                return self._delete(view[key], version, reason, actor)
            case Replace(old, expected, new):
                return self._replace(old, expected, as_model(new), actor)
            case SetDispute(key, dispute):
                doc = view[key]
                if not doc.live:
                    return Plan(WriteResult(WriteOutcome.NOT_FOUND, doc.version))
                action = Action(
                    "index", self._names.disputes, str(doc.tid), dispute_doc(dispute, tid=doc.tid, born=doc.born)
                )
                return Plan(WriteResult(WriteOutcome.APPLIED, doc.version), [action])
        raise AssertionError(op)

    # ---- the deletion log ----

    def _log(self, doc: Doc, kind: str, version: int, reason: str, actor: str) -> Action:
        record = DeletionRecord(doc.key, TracingType(kind), version, reason, actor, self._now)
        source = deletion_doc(record, tid=doc.tid, seq=next(self._numbers) % _SEQ_MODULUS)
        return Action("create", self._names.deletions, deletion_id(doc.tid, version), source)

    def _numbered(self, tombs: list[Tomb]) -> list[Tomb]:
        """`tombs`, each with its deletion-log entry numbered now (in the order the group planned them)."""
        for tomb in tombs:
            if tomb.log is None:
                tomb.log = self._log(tomb.doc, tomb.kind, tomb.version, tomb.reason, tomb.actor)
        return tombs

    def _tracing_action(self, doc: Doc, source: dict[str, Any], version: int, version_type: str) -> Action:
        return Action("index", self._names.tracings, str(doc.tid), source, version, version_type, require_alias=True)

    def _stale_entry(self, doc: Doc, version: int) -> list[str]:
        """The entry an earlier, failed attempt may have logged for ending `doc` at `version`, when that can no
        longer land: the record is live at a newer version of a life born at or before it, and no live record
        names it as the one it completed (then the completion landed and its end stands, as readers judge it:
        opensearch_deletion_log.phantoms; a replay of the completion took back an end that had landed)."""
        if not (doc.live and doc.version > version and doc.born <= version):
            return []
        if any(self.view[key].live for key in self._naming.get(str(doc.tid), [])):
            return []
        return [deletion_id(doc.tid, version)]

    # ---- the operations ----

    def _upsert(self, tracing: Tracing, actor: str, replaces: tuple[str, int] | None = None,
                born: int | None = None) -> Plan:  # fmt: skip
        view = self.view
        doc = view[tracing.key]
        if doc.exists and doc.version >= tracing.source_version:
            plan = Plan(WriteResult(WriteOutcome.UNCHANGED, doc.version))
            plan.tombs += self._numbered(follow.finish(doc, view, actor))
            replayed = follow.resupersede(self._reads, doc, tracing.source_version, view, actor)
            plan.tombs += self._numbered(replayed)  # a replayed history: what its first write left undone
            return plan
        finishing = self._numbered(follow.finish(doc, view, actor)) if doc.live and replaces is None else []
        if finishing:
            replaces = doc.replaces  # the old record stays hidden behind this one until its tombstone lands
        version = tracing.source_version
        # Refiled to another person (indexer.subjects): a new life, whose readers no longer attach the old
        # life's dispute, which goes after the write as a deleted tracing's does.
        refiled = doc.live and doc.tracing is not None and not same_subject(doc.tracing.subject, tracing.subject)
        if born is None:
            born = doc.born if doc.live and not refiled else version
        source = tracing_doc(tracing, tid=doc.tid, born=born, indexed_at=self._now, replaces=replaces)
        plan = Plan(
            WriteResult(WriteOutcome.APPLIED, version), [self._tracing_action(doc, source, version, "external")]
        )
        kind = tracing.type
        assert kind is not None
        if doc.live and doc.type != kind.value:
            # A live tracing of another type ends here: logged as a completion's old record is (the embedded
            # store's rule), though the key goes on.
            reason = superseded_reason(kind, tracing.key)
            plan.logged.append(self._log(doc, doc.type, doc.version, reason, actor))
        doc.exists, doc.version, doc.live, doc.type, doc.born = True, version, True, kind.value, born
        doc.tracing, doc.indexed_at, doc.replaces = tracing, instant(self._now), replaces
        plan.tombs += finishing
        if refiled:
            plan.after.append(Action("delete", self._names.disputes, str(doc.tid)))
        if kind is TracingType.NAC_HISTORY:
            plan.tombs += self._numbered(follow.superseded(self._reads, doc, view, actor))
        return plan

    def _delete(self, doc: Doc, version: int, reason: str, actor: str) -> Plan:
        now = self._now
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
            plan.tombs += self._numbered(follow.finish(doc, self.view, actor))  # a replayed delete of a new record
            plan.stale += self._stale_entry(doc, effective)  # its first attempt's entry, if its tombstone failed
            return plan
        if not doc.live:
            # Deleted again at a newer version: only the version moves, as on the embedded store. The time it
            # was deleted stays (a completion onto the key compares it with its old record's indexing), and
            # so does the completion it names, if any.
            at = parse_instant(doc.indexed_at) if doc.indexed_at else now
            source = tombstone_doc(doc.key, tid=doc.tid, version=effective, kind=doc.type, at=at, replaces=doc.replaces)
            doc.version = effective
            return Plan(
                WriteResult(WriteOutcome.NOT_FOUND, effective),
                [self._tracing_action(doc, source, effective, "external")],
            )
        plan = Plan(WriteResult(WriteOutcome.APPLIED, effective))
        # A completion this record's was left half done ended its old record first (logged first).
        finishing = self._numbered(follow.finish(doc, self.view, actor))
        plan.logged.append(self._log(doc, doc.type, effective, reason, actor))
        replaces = doc.replaces if finishing else None
        source = tombstone_doc(doc.key, tid=doc.tid, version=effective, kind=doc.type, at=now, replaces=replaces)
        plan.primary.append(self._tracing_action(doc, source, effective, "external_gte"))
        plan.after.append(Action("delete", self._names.disputes, str(doc.tid)))
        plan.tombs += finishing
        doc.version, doc.live, doc.tracing, doc.replaces = effective, False, None, replaces
        doc.indexed_at = instant(now)  # as the tombstone holds: a later op of the group compares with it
        return plan

    def _replace(self, old: TracingKey, expected: TracingType, new: Tracing, actor: str) -> Plan:
        view = self.view
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
                plan.tombs += self._numbered([Tomb(prior, prior.type, ended, reason, actor)])
                prior.live, prior.version = False, ended
            elif old != new.key:
                plan.stale += self._stale_entry(prior, new.source_version)  # kept: a failed attempt's entry goes
            plan.tombs += self._numbered(follow.resupersede(self._reads, target, new.source_version, view, actor))
            return plan
        if not prior.live or prior.type != expected.value:
            return Plan(WriteResult(WriteOutcome.NOT_FOUND, 0))
        if old == new.key:
            # The same record number now holds the completed type: the old record is gone all the same,
            # and so is its dispute (a new life: born = the new version).
            plan = self._upsert(new, actor, born=new.source_version)  # logs the old record's end
            plan.after.append(Action("delete", self._names.disputes, str(prior.tid)))
            return plan
        old_version = prior.version
        # At the completion's version, as the embedded store ends it (its _replace): a late, older update of
        # the old record is refused, not brought back beside the new one. Logged first, as it ends first.
        ended = max(old_version, new.source_version)
        [ending] = self._numbered([Tomb(prior, prior.type, ended, reason, actor)])
        # An earlier attempt that failed before the old record was updated logged its end at the completion's
        # own version, which it no longer ends at.
        stale = self._stale_entry(prior, new.source_version)
        plan = self._upsert(new, actor, replaces=(str(prior.tid), old_version))
        plan.tombs.insert(0, ending)
        plan.stale += stale
        prior.live, prior.version = False, ended  # a later operation of this group sees it ended there
        return plan
