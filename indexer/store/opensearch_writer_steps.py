"""Sending one planned write group (indexer.store.opensearch_writer_rules) to the cluster, in at most four bulk
requests, each waiting for a refresh (docs/OPENSEARCH.md, "Writes"):

0. the deletion-log entry of every deletion the group plans, step 2's included;
1. the operations themselves (tracing documents by external version, statements of dispute);
2. what follows from an operation that landed: the tombstones of a completion's old record and of the NAC
   histories a favorable one supersedes, and the removal of the disputes of the deletes that landed;
3. the disputes of the tombstones that landed removed; the entries of those a newer write overtook taken
   back, unless that write began a new life after the deletion (then it stands, and the new life is told
   so: its `born`); entries an earlier, failed attempt left for a deletion that can no longer land taken back.

A bulk request is not atomic, and OpenSearch runs the remaining actions when one fails (a shard unavailable),
so a failure is judged per plan. A plan fails when one of its own actions fails, or one that follows from it
(its log entries, tombstones, disputes' removal); so does every later plan of the group that touches a
document it touches, planned on what it would have written. The others stand: a caller whose statement of
dispute landed is told it was attached, though another caller's completion in its group failed (a review
found FileDispute told UNAVAILABLE for a statement shown to every later recipient, neither accounted nor
sent to anyone).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from opensearchpy import OpenSearch
from opensearchpy.exceptions import TransportError

from indexer.exc import Unavailable
from indexer.store import opensearch_follow as follow
from indexer.store.opensearch_deletion_log import changes_type_only
from indexer.store.opensearch_io import Action, ItemResult, bulk, unavailable
from indexer.store.opensearch_phase import PhaseWatch
from indexer.store.opensearch_plan import Plan, Tomb, filed_after
from indexer.store.opensearch_resolve import read
from indexer.store.opensearch_schema import Names, tombstone_doc

Pairs = list[tuple[Plan, Action]]

_REBIRTH_ROUNDS = 3  # another newer write between the read and the rewrite: read again, this many times


def _refused(result: ItemResult) -> Unavailable:
    return Unavailable(f"the index cluster refused a write ({result.status} {result.error})")


def _fail(plan: Plan, error: Unavailable) -> None:
    if plan.failure is None:
        plan.failure = error


def spread(plans: Sequence[Plan]) -> None:
    """Fail every plan that touches a document an earlier failed plan of the group touches (a statement of
    dispute changes no document a later plan read: its failure stays its own)."""
    failed: dict[int, Unavailable] = {}
    for plan in plans:
        if plan.failure is None:
            plan.failure = next((failed[tid] for tid in sorted(plan.touches) if tid in failed), None)
        if plan.failure is not None and not plan.filing:
            for tid in plan.touches:
                failed.setdefault(tid, plan.failure)


def _going(plans: Sequence[Plan]) -> list[Plan]:
    return [plan for plan in plans if plan.failure is None]


def _entry(tomb: Tomb) -> Action:
    assert tomb.log is not None, "every planned tombstone is logged (opensearch_writer_rules._numbered)"
    return tomb.log


class Steps:
    """One write group's requests, as its writer sends them (mirrored while a rebuild copies)."""

    def __init__(
        self, client: OpenSearch, names: Names, refresh: str, phase: PhaseWatch, leaving: tuple[str, ...],
        now: dt.datetime,
    ) -> None:  # fmt: skip
        self._client, self._names, self._refresh, self._phase = client, names, refresh, phase
        self._leaving, self._now = leaving, now
        self._written: dict[str, tuple[int | None, int | None]] = {}  # step 0's entries: their seq_no, term
        # A bulk item refused for load is resent as often as the store's `retries` allows a request.
        self._attempts = int(getattr(client.transport, "retry_attempts", 5))

    def run(self, plans: list[Plan]) -> None:
        """Send the group; each plan that failed carries its failure (`Plan.failure`)."""
        logs, created = self._log(plans)
        self._operate(plans, logs, created)
        outcomes = self._follow(plans)
        self._settle(plans, outcomes, created)

    def _bulk(self, actions: list[Action]) -> list[ItemResult]:
        """One bulk request; during a rebuild's copy each tracing document also goes to the new version."""
        mirrored = self._phase.mirrors(actions)
        results = bulk(self._client, actions + mirrored, refresh=self._refresh, attempts=self._attempts)
        self._phase.mirrored(results[len(actions) :])
        return results[: len(actions)]

    def _send(self, pairs: Pairs) -> list[ItemResult] | None:
        """Each action's result; None when the request failed as a whole (every plan in it failed: what of
        it landed is unknown, and the callers' retries are planned on what the cluster then holds)."""
        if not pairs:
            return []
        try:
            return self._bulk([action for _, action in pairs])
        except (Unavailable, TransportError, OSError) as error:
            failure = error if isinstance(error, Unavailable) else unavailable("write", error)
            for plan, _ in pairs:
                _fail(plan, failure)
            return None

    def _log(self, plans: list[Plan]) -> tuple[Pairs, set[str]]:
        """Step 0: every deletion logged before any tombstone is sent, so none can go unlogged. A plan whose
        entry failed sends nothing more."""
        pairs = [(plan, action) for plan in plans for action in [*plan.logged, *map(_entry, plan.tombs)]]
        created: set[str] = set()
        results = self._send(pairs)
        for (plan, action), result in zip(pairs, results or [], strict=False):
            if result.ok:
                created.add(action.doc_id)
                self._written[action.doc_id] = (result.seq_no, result.primary_term)
            elif not result.conflict:  # 409 on `create`: logged by an earlier attempt
                _fail(plan, _refused(result))
        spread(plans)
        return pairs, created

    def _operate(self, plans: list[Plan], logs: Pairs, created: set[str]) -> None:
        """Step 1: the operations. A version conflict means another writer stored a newer version: the
        operation reports what the cluster holds, nothing follows, and its entries are taken back."""
        pairs = [(plan, action) for plan in _going(plans) for action in plan.primary]
        results = self._send(pairs)
        lost: set[int] = set()
        landed: set[int] = set()  # plans an operation of which may have landed (or, refused by a newer write, stands)
        for (plan, action), result in zip(pairs, results or [], strict=False):
            if result.conflict and action.index == self._names.tracings:
                lost.add(id(plan))
            elif not result.ok and not (result.status == 404 and action.op == "delete"):
                _fail(plan, _refused(result))
            if result.ok or result.conflict or (result.status == 404 and action.op == "delete"):
                landed.add(id(plan))
        if results is not None:  # else what landed is unknown: the entries stay
            self._take_back_refused(logs, created, {id(p) for p in plans if p.failure is not None} - landed)
        lost = {id(plan) for plan in plans if id(plan) in lost and plan.failure is None}
        if lost:
            try:
                follow.take_back_lost(self._client, self._names, self._refresh, plans, lost, logs, created)
            except (Unavailable, TransportError, OSError) as error:
                failure = error if isinstance(error, Unavailable) else unavailable("write", error)
                for plan in plans:
                    if id(plan) in lost:
                        _fail(plan, failure)
        spread(plans)

    def _take_back_refused(self, logs: Pairs, created: set[str], dead: set[int]) -> None:
        """The step-0 entries of the failed plans none of whose operations landed in this attempt (`dead`: each
        refused outright, or never sent): nothing they describe can follow from it, and a reader, the check and a
        replay would take them for deletions or supersessions made (a review found a corrected history
        deleted, phantom deletions after a refile, a type change that never happened listed for good). When
        the request failed as a whole the outcome is unknown, and they stay. Conditional on the entry being as
        written; an entry another plan of the group that may have landed also logs stays."""
        kept = {action.doc_id for plan, action in logs if id(plan) not in dead}
        undo = {
            action.doc_id: self._written.get(action.doc_id, (None, None))
            for plan, action in logs
            if id(plan) in dead and action.doc_id in created and action.doc_id not in kept
        }
        if not undo:
            return
        actions = [
            Action("delete", self._names.deletions, log_id, seq_no=seq, primary_term=term)
            for log_id, (seq, term) in sorted(undo.items())
        ]
        try:
            results = self._bulk(actions)
        except (Unavailable, TransportError, OSError):
            return  # they stay, as after a request failed as a whole; the plans failed already
        created.difference_update(a.doc_id for a, r in zip(actions, results, strict=True) if r.ok)

    def _follow(self, plans: list[Plan]) -> list[tuple[Plan, Tomb, ItemResult]]:
        """Step 2: the tombstones that follow from operations that landed, each `external_gte` at the version
        that ends it (a newer write wins), and the disputes of the deletes that landed removed."""
        going = _going(plans)
        tombs = [(plan, tomb) for plan in going for tomb in plan.tombs]
        pairs = [(plan, self._tombstone(tomb)) for plan, tomb in tombs]
        pairs += [(plan, action) for plan in going for action in plan.after]
        results = self._send(pairs)
        if results is None:
            spread(plans)
            return []
        for (plan, _), result in zip(pairs, results, strict=True):
            if not result.ok and result.status not in (404, 409):
                _fail(plan, _refused(result))
        spread(plans)
        return [(plan, tomb, result) for (plan, tomb), result in zip(tombs, results, strict=False)]

    def _tombstone(self, tomb: Tomb) -> Action:
        doc = tomb.doc
        source = tombstone_doc(doc.key, tid=doc.tid, version=tomb.version, kind=tomb.kind, at=self._now)
        return Action(
            "index", self._names.tracings, str(doc.tid), source, tomb.version, "external_gte", require_alias=True
        )

    def _settle(self, plans: list[Plan], outcomes: list[tuple[Plan, Tomb, ItemResult]], created: set[str]) -> None:
        """Step 3 (see the module's docstring). Also for a plan failed meanwhile: a tombstone of it landed."""
        refiled = filed_after(plans, self._names.disputes)
        overtaken = [(plan, tomb) for plan, tomb, result in outcomes if result.conflict and not _own(tomb)]
        refused = {id(tomb) for _, tomb in overtaken}
        held = self._held([tomb for _, tomb in overtaken], [plan for plan, _ in overtaken])
        last: Pairs = []
        reborn: list[tuple[Plan, Tomb]] = []
        overtaking: list[tuple[Plan, Tomb]] = []
        for plan, tomb, result in outcomes:
            if held is None and id(tomb) in refused:
                continue  # what overtook it is unknown (the plan failed): its entry is left to the check
            source = held.get(str(tomb.doc.tid)) if held is not None and id(tomb) in refused else None
            # Serially the deletion came first and the newer write began a new life: as the embedded store
            # orders them, the end stays logged and the old life's statement of dispute goes with it.
            later_life = source is not None and source["live"] and source["source_version"] > tomb.version
            if later_life and source is not None and source.get("born", 0) <= tomb.version:
                reborn.append((plan, tomb))
            ended = result.ok or _own(tomb) or later_life
            if ended and id(tomb) in refiled:
                continue  # its end stays logged; the statement filed on its new life stays too
            if ended and not (result.ok or _own(tomb)):
                overtaking.append((plan, tomb))  # its statement goes only if the old life's (`_old_statements`)
            elif ended:
                last.append((plan, Action("delete", self._names.disputes, str(tomb.doc.tid))))
            elif result.status in (404, 409) and _entry(tomb).doc_id in created:
                # Overtaken: no serial order logs it. An entry an earlier attempt made stays (its tombstone may
                # have landed then), and so does one whose tombstone failed: the replay's mark of what to finish.
                last.append((plan, Action("delete", self._names.deletions, _entry(tomb).doc_id)))
        last += self._old_statements(overtaking)
        last += self._stale(_going(plans))
        results = self._send(last)
        for (plan, _), result in zip(last, results or [], strict=False):
            if not result.ok and result.status not in (404, 409):
                _fail(plan, _refused(result))
        self._rebirth(reborn)
        spread(plans)

    def _held(self, tombs: list[Tomb], plans: list[Plan]) -> dict[str, dict[str, Any]] | None:
        """What the cluster holds of the documents whose tombstones a newer write refused (None: not read,
        and the plans failed)."""
        if not tombs:
            return {}
        try:
            return read(self._client, self._names, [str(t.doc.tid) for t in tombs], self._leaving)
        except (Unavailable, TransportError, OSError) as error:
            for plan in plans:
                _fail(plan, error if isinstance(error, Unavailable) else unavailable("read", error))
            return None

    def _stale(self, plans: list[Plan]) -> Pairs:
        """The deletions of the entries an earlier attempt left for a deletion that can no longer land, those
        found (an entry of a type change under its own key is no deletion, and stays), each conditional on
        the entry being as read."""
        wanted = [(plan, log_id) for plan in plans for log_id in plan.stale]
        if not wanted:
            return []
        try:
            found = self._client.mget(index=self._names.deletions, body={"ids": [log_id for _, log_id in wanted]})
        except TransportError as error:
            for plan, _ in wanted:
                _fail(plan, unavailable("read", error))
            return []
        pairs: Pairs = []
        for (plan, log_id), doc in zip(wanted, found["docs"], strict=True):
            if doc.get("found") and not changes_type_only(doc["_source"]):
                seq_no, term = doc.get("_seq_no"), doc.get("_primary_term")
                pairs.append((plan, Action("delete", self._names.deletions, log_id, seq_no=seq_no, primary_term=term)))
        return pairs

    def _old_statements(self, overtaking: list[tuple[Plan, Tomb]]) -> Pairs:
        """The removals of the statements of dispute of the lives a newer write overtook the end of, each only if
        filed on that life (its `born` at or below the end) and as read: one filed on the new life, after the
        new write, stays, as serially (a review found FileDispute's "attached" statement removed)."""
        if not overtaking:
            return []
        ids = [str(tomb.doc.tid) for _, tomb in overtaking]
        try:
            found = self._client.mget(index=self._names.disputes, body={"ids": ids})
        except TransportError as error:
            for plan, _ in overtaking:
                _fail(plan, unavailable("read", error))
            return []
        pairs: Pairs = []
        for (plan, tomb), doc in zip(overtaking, found["docs"], strict=True):
            if doc.get("found") and int(doc["_source"].get("born", 0)) <= tomb.version:
                seq_no, term = doc.get("_seq_no"), doc.get("_primary_term")
                action = Action("delete", self._names.disputes, str(tomb.doc.tid), seq_no=seq_no, primary_term=term)
                pairs.append((plan, action))
        return pairs

    def _rebirth(self, reborn: list[tuple[Plan, Tomb]]) -> None:
        """Tell a life begun after a deletion that overtook it so (`born` = its version): it was written on the
        old life's `born`, under which no reader would count the deletion (opensearch_deletion_log) and the
        old life's statement of dispute would still attach. Conditional on the version read (`external_gte`
        at it): a newer write meanwhile is read again."""
        for _ in range(_REBIRTH_ROUNDS):
            if not reborn:
                return
            held = self._held([tomb for _, tomb in reborn], [plan for plan, _ in reborn])
            if held is None:
                return
            pairs: Pairs = []
            for plan, tomb in reborn:
                source = held.get(str(tomb.doc.tid))
                if source is None or not source["live"] or source.get("born", 0) > tomb.version:
                    continue
                version = int(source["source_version"])
                action = Action(
                    "index", self._names.tracings, str(tomb.doc.tid), source | {"born": version}, version,
                    "external_gte", require_alias=True,
                )  # fmt: skip
                pairs.append((plan, action))
            results = self._send(pairs)
            again = []
            for (plan, action), result in zip(pairs, results or [], strict=False):
                if result.conflict:
                    again += [(p, t) for p, t in reborn if p is plan and str(t.doc.tid) == action.doc_id]
                elif not result.ok:
                    _fail(plan, _refused(result))
            reborn = again


def _own(tomb: Tomb) -> bool:
    """Refused only because a later operation of this same group wrote the key anew: as the embedded store
    applies a group in order, the record was deleted (logged) and then written again."""
    return tomb.doc.version > tomb.version
