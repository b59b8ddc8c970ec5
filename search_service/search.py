"""SearchService: whether and where records exist on a person.

Every request is checked as a whole before anything is read: a refused query names each bad field.
The purpose must be one the activity is accredited for (seed 002). Results show the SSN's last four
only, unless the full number is needed (seed 003: a privacy officer answering a Privacy Act request), and
carry the FOUO marking.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import grpc

from dcii.v1 import search_pb2, search_pb2_grpc
from indexer.model import Tracing, TracingType
from indexer.store.base import NameRow, TracingStore
from indexer.subjects import same_subject
from search_service.accounting import AuditLog, DisclosureEntry
from search_service.accreditation import Caller, Purpose, Role
from search_service.auth import caller_of
from search_service.convert import (
    dispute_out,
    tracing_out,
    type_out,
)
from search_service.disclosure_budget import DisclosureBudget
from search_service.exact import (
    EXACT_MATCHER,
    Page,
    name_agrees,
    pids_agreeing,
    scan_page,
    title_page,
)
from search_service.exact_hits import hit_out
from search_service.matching import Matcher, configured_matcher
from search_service.page_tokens import TokenEnvelope
from search_service.ranked import RankedHit, RankedPage, run_ranked
from search_service.search_query import Query, check_query
from search_service.ssn_probes import SsnProbes

MARKING = "FOR OFFICIAL USE ONLY - PRIVACY SENSITIVE"


def run_exact(store: TracingStore, query: Query) -> Page:
    """EXACT, NAME_ONLY or NONSTANDARD (persons or impersonal titles)."""
    if query.title:
        if query.types and TracingType.IMPERSONAL_TITLE not in query.types:
            return Page([], "")  # only impersonal titles have titles
        return title_page(
            store,
            query.title,
            prefix=query.mode == "NONSTANDARD",
            page_size=query.page_size,
            page_token=query.page_token,
        )
    key = query.key
    accept: Callable[[NameRow], tuple[str, ...] | None]
    if query.mode == "NONSTANDARD":

        def accept(row: NameRow) -> tuple[str, ...] | None:
            return ()

        return scan_page(
            store,
            key.surname,
            key.given or None,
            given_is_prefix=True,
            accept=accept,
            types=query.types,
            page_size=query.page_size,
            page_token=query.page_token,
        )
    ids = query.identifiers
    if query.mode == "EXACT":

        def accept(row: NameRow) -> tuple[str, ...] | None:
            agreed = pids_agreeing(ids, row) if name_agrees(key, row, lenient=True) else ()
            return agreed or None
    else:

        def accept(row: NameRow) -> tuple[str, ...] | None:
            return () if name_agrees(key, row) else None

    return scan_page(
        store,
        key.surname,
        key.given,
        given_is_prefix=False,
        accept=accept,
        types=query.types,
        page_size=query.page_size,
        page_token=query.page_token,
        pids=ids if query.mode == "EXACT" else None,
        narrowed_by=(query.mode, key.middle, key.suffix),
    )


def ranked_hit_out(hit: RankedHit, target: search_pb2.Hit, *, full_ssn: bool) -> None:
    tracing = hit.stored.tracing
    tracing_out(tracing, target.tracing, full_ssn=full_ssn, indexed_at=hit.stored.indexed_at)
    target.type = type_out(tracing.type)
    target.score = hit.scored.score
    explanation = target.explanation
    explanation.matched_name = "primary" if hit.scored.alias_no == 0 else f"alias {hit.scored.alias_no}"
    for feature in hit.scored.features:
        explanation.features.add(
            feature=feature.name,
            agreement=search_pb2.Agreement.Value(f"AGREEMENT_{feature.agreement.value}"),
            similarity=feature.similarity,
            detail=feature.detail,
        )
    dispute_out(hit.stored.dispute, target)


def needs_full_ssn(caller: Caller, purpose: Purpose) -> bool:
    """The full SSN only where it is needed: a privacy officer answering a Privacy Act request. The same
    office's clearance searches and batches get the last four, as any adjudicator's do (the role alone once
    sent full SSNs on every query of an activity that also ran its privacy office)."""
    return Role.PRIVACY_OFFICER in caller.activity.roles and purpose is Purpose.PRIVACY_ACT_REQUEST


# Disclosures for these purposes are law-enforcement disclosures, which an access request may withhold.
LAW_ENFORCEMENT_PURPOSES = frozenset({Purpose.CRIMINAL_INVESTIGATION, Purpose.COUNTERINTELLIGENCE})


def disclosure_entries(
    caller: Caller, query: Query, tracings: Sequence[Tracing], *, method: str = "ONLINE"
) -> list[DisclosureEntry]:
    """One accounting entry per tracing an answer discloses."""
    return [
        DisclosureEntry(
            tracing=t.key,
            subject_name=t.subject.name if t.subject else None,
            subject_ssn=t.subject.identifiers.ssn if t.subject else "",
            method=method,
            purpose=query.purpose.value,
            recipient_activity=caller.activity.activity_id,
            recipient_operator=caller.operator or "",
            law_enforcement=query.purpose in LAW_ENFORCEMENT_PURPOSES,
        )
        for t in tracings
    ]


@dataclass(frozen=True)
class Unaccounted:
    """An answer whose disclosures are not yet recorded: it must not leave before they are."""

    response: search_pb2.SearchResponse
    disclosures: list[DisclosureEntry]
    # The store's dispute mark, read before the answer's reads (TracingStore.dispute_mark).
    dispute_mark: int | None = None
    # Each hit's record as it was read (its full SSN, which the hit may show only the last four of).
    shown: tuple[Tracing, ...] = ()


class SearchServicer(search_pb2_grpc.SearchServiceServicer):
    def __init__(
        self,
        store: TracingStore,
        today: Callable[[], dt.date],
        audit: AuditLog,
        *,
        matcher_version: str = "",
        budget: DisclosureBudget | None = None,
        ssn_guesses: SsnProbes | None = None,
    ) -> None:
        self._store = store
        self._today = today
        self._audit = audit
        # Records each activity may receive a day online (None: no budget; search_service.disclosure_budget).
        self._budget = budget
        # The cap on SSNs an activity may try with one ending (search_service.ssn_probes).
        self._guesses = ssn_guesses or SsnProbes()
        # The scorer of the ranked modes (search_service.matching.configured_matcher); unknown: refused here.
        self._matcher: Matcher = configured_matcher(matcher_version)
        self._tokens = TokenEnvelope(audit.key_for("page tokens"))

    def answer(
        self, caller: Caller, request: search_pb2.SearchRequest, *, method: str = "ONLINE"
    ) -> search_pb2.SearchResponse:
        """The answer, its disclosures recorded in the audit trail first (fail closed)."""
        found = self.respond(caller, request, method=method)
        charged = len(found.disclosures) if self._budget is not None else 0
        if charged and self._budget is not None:
            self._budget.charge(caller.activity.activity_id, charged)  # before anything is recorded
        if found.disclosures:
            try:
                found.response.disclosure_id = self._audit.record_disclosures(found.disclosures)
            except BaseException:
                if charged and self._budget is not None:  # not accounted, so not sent: nothing disclosed
                    self._budget.refund(caller.activity.activity_id, charged)
                raise
            self._annotate_late_disputes(found)
        return found.response

    def _annotate_late_disputes(self, found: Unaccounted) -> None:
        """A statement of dispute attached after the answer was read but before its accounting was durable
        found no accounting entry to send notices by: the answer itself must then carry it (seed 004:
        anyone who later sees the record knows it is disputed). The mark tells, in one read, whether any
        dispute was attached meanwhile; a backend without one is not checked."""
        if found.dispute_mark is None or self._store.dispute_mark() == found.dispute_mark:
            return
        for hit, read in zip(found.response.hits, found.shown, strict=True):
            stored = self._store.get(read.key)
            if (
                stored is not None
                and stored.dispute is not None
                and hit.dispute.dispute_id != stored.dispute.dispute_id
                # Refiled meanwhile to another person: not this one's statement. Judged on the record as
                # read (a name corrected meanwhile is vouched for by the full SSN the hit may not show).
                and same_subject(read.subject, stored.tracing.subject)
            ):
                dispute_out(stored.dispute, hit)

    def respond(self, caller: Caller, request: search_pb2.SearchRequest, *, method: str = "ONLINE") -> Unaccounted:
        """The answer and what it would disclose, not yet accounted (the batch worker accounts a chunk at
        once). The caller must record `disclosures` before the response goes anywhere."""
        query = check_query(request, caller, self._today(), self._tokens)
        full_ssn = needs_full_ssn(caller, query.purpose)
        # Whether the answer tells of the SSN asked (EXACT and PID_QUALIFIED compare it): a guess is capped.
        asked = query.identifiers.ssn if query.mode in ("EXACT", "PID_QUALIFIED") and not full_ssn else ""
        counted = bool(asked) and self._guesses.take(caller.activity.activity_id, asked)
        response = search_pb2.SearchResponse()
        disclosed: list[Tracing] = []
        try:
            mark = self._store.dispute_mark()  # before the answer's reads: a dispute attached after it moves it
            with self._store.snapshot():  # one state of the index: a completion is seen whole or not at all
                self._fill(query, response, disclosed, full_ssn=full_ssn)
        except BaseException:
            if counted:  # nothing answered: no guess
                self._guesses.give_back(caller.activity.activity_id, asked)
            raise
        if counted and any(t.subject is not None and t.subject.identifiers.ssn == asked for t in disclosed):
            self._guesses.give_back(caller.activity.activity_id, asked)  # the record's own SSN: no guess
        if disclosed:
            response.marking = MARKING
        response.next_page_token = self._tokens.seal(response.next_page_token, caller.activity.activity_id)
        return Unaccounted(
            response, disclosure_entries(caller, query, disclosed, method=method), mark, tuple(disclosed)
        )

    def _fill(
        self, query: Query, response: search_pb2.SearchResponse, disclosed: list[Tracing], *, full_ssn: bool
    ) -> None:
        if query.mode in ("FUZZY", "PID_QUALIFIED"):
            ranked = self._ranked(query)
            response.matcher_version, response.candidates_truncated = self._matcher.version, ranked.truncated
            response.next_page_token, response.threshold = ranked.next_token, ranked.threshold
            response.best_below_threshold = ranked.best_below
            for hit in ranked.hits:
                ranked_hit_out(hit, response.hits.add(), full_ssn=full_ssn)
                disclosed.append(hit.stored.tracing)
        else:
            page = run_exact(self._store, query)
            response.matcher_version, response.next_page_token = EXACT_MATCHER, page.next_token
            for exact in page.hits:
                hit_out(exact, response.hits.add(), full_ssn=full_ssn, asked=query.identifiers)
                disclosed.append(exact.stored.tracing)

    def _ranked(self, query: Query) -> RankedPage:
        return run_ranked(
            self._store,
            mode=query.mode,
            name=query.name,
            identifiers=query.identifiers,
            types=query.types,
            min_score=query.min_score,
            page_size=query.page_size,
            page_token=query.page_token,
            matcher_version=self._matcher.version,
        )

    def Search(  # noqa: N802 (gRPC's method name)
        self, request: search_pb2.SearchRequest, context: grpc.ServicerContext
    ) -> search_pb2.SearchResponse:
        return self.answer(caller_of(context), request)
