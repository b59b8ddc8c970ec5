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
from indexer import edit_rules as rules
from indexer.edit_criteria_names import clean_person_name
from indexer.exc import InvalidArgument, PermissionDenied
from indexer.model import Identifiers, PersonName, Tracing, TracingType, Violation
from indexer.normalize import NameKey, name_key
from indexer.store.base import NameRow, TracingStore
from indexer.subjects import same_subject
from search_service.accounting import AuditLog, DisclosureEntry
from search_service.accreditation import Caller, Purpose, Role
from search_service.auth import caller_of
from search_service.convert import (
    dispute_out,
    identifiers_in,
    mode_name,
    name_in,
    output_only_violations,
    purpose_name,
    tracing_out,
    type_in,
    type_out,
)
from search_service.disclosure_budget import DisclosureBudget
from search_service.exact import (
    EXACT_MATCHER,
    Page,
    decode_cursor,
    decode_title_token,
    name_agrees,
    pids_agreeing,
    scan_page,
    title_page,
)
from search_service.exact_hits import hit_out
from search_service.matching import Matcher, configured_matcher
from search_service.ranked import RankedHit, RankedPage, check_ranked_token, run_ranked
from search_service.search_rules import mode_violations, title_violations
from search_service.ssn_probes import SsnProbes

MARKING = "FOR OFFICIAL USE ONLY - PRIVACY SENSITIVE"
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


@dataclass(frozen=True, slots=True)
class Query:
    """A search request after the edit criteria: what the modes work from."""

    mode: str
    purpose: Purpose
    name: PersonName
    key: NameKey
    identifiers: Identifiers
    title: str
    types: frozenset[TracingType]
    page_size: int
    page_token: str
    min_score: float


def check_query(request: search_pb2.SearchRequest, caller: Caller, today: dt.date, prefix: str = "") -> Query:
    """Validate a request (all violations at once); refuse a purpose the activity is not accredited for."""
    out: list[Violation] = []
    at = (prefix + ".") if prefix else ""
    mode = mode_name(request.mode)
    if mode in ("", "UNSPECIFIED"):
        out.append(
            Violation(f"{at}mode", "a search mode is required: EXACT, NAME_ONLY, NONSTANDARD, FUZZY or PID_QUALIFIED")
        )
    purpose = Purpose.__members__.get(purpose_name(request.purpose))
    if purpose is None:
        out.append(Violation(f"{at}purpose", "every query states its purpose"))
    page_size = request.page_size or DEFAULT_PAGE_SIZE
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        out.append(Violation(f"{at}page_size", f"between 1 and {MAX_PAGE_SIZE}"))
    # Each type once at most: two million entries were accepted and cost 237 ms of the server's CPU each.
    types = [type_in(t) for t in request.types] if len(request.types) <= len(TracingType) else []
    if len(request.types) > len(TracingType):
        out.append(Violation(f"{at}types", f"at most {len(TracingType)} tracing types, each once"))
    elif None in types:
        out.append(Violation(f"{at}types", "unknown tracing type"))
    title = " ".join(request.title.split())
    has_name = any((request.name.surname, request.name.given_name, request.name.middle_name, request.name.suffix))
    ranked = mode in ("FUZZY", "PID_QUALIFIED")
    # A suffix typed into the surname or given name ("Whitfield Jr") is moved to the suffix field as the
    # edit criteria do for tracings, so that the query's exact key is the one its records are stored under.
    # A person known by one name (the edit criteria let either part stand alone) is asked by that part in
    # EXACT and NAME_ONLY, and matched on rows whose other part is empty too; NONSTANDARD scans a surname.
    one_part = ranked or mode in ("EXACT", "NAME_ONLY")
    name, name_violations = clean_person_name(
        name_in(request.name),
        f"{at}name",
        surname_required=not title and not one_part,
        given_required=False,
    )
    out += name_violations
    identifiers, id_violations = rules.clean_identifiers(
        identifiers_in(request.identifiers), f"{at}identifiers", today=today
    )
    out += id_violations + output_only_violations(request.identifiers, f"{at}identifiers")
    # A PID that was sent but refused above is still a PID: say what is wrong with it, not that it is missing.
    pid_sent = not identifiers.is_empty or bool(id_violations) or bool(request.identifiers.ssn_last_four)
    if one_part and not title and not name_violations and not name.surname and not name.given_name:
        out.append(Violation(f"{at}name.surname", "a surname or a given name is required"))
    out += _paging_violations(request, at, ranked=ranked, title=title)
    if title:
        out += title_violations(title, at, mode=mode, has_name=has_name)
    out += mode_violations(mode, at, pid_sent=pid_sent)
    if mode == "NONSTANDARD":  # surname, or surname and a given-name prefix: nothing else narrows it
        out += [
            Violation(f"{at}name.{part}", "NONSTANDARD searches by surname and given name only; ask NAME_ONLY or EXACT")
            for part, value in (("middle_name", request.name.middle_name), ("suffix", request.name.suffix))
            if value.strip()
        ]
    if out:
        raise InvalidArgument(out)
    assert purpose is not None
    if purpose not in caller.activity.purposes:
        raise PermissionDenied(f"activity {caller.activity.activity_id} is not accredited for purpose {purpose.value}")
    return Query(
        mode,
        purpose,
        name,
        name_key(name),
        identifiers,
        title,
        frozenset(t for t in types if t is not None),
        page_size,
        request.page_token,
        request.min_score,
    )


def _paging_violations(request: search_pb2.SearchRequest, at: str, *, ranked: bool, title: str) -> list[Violation]:
    out = []
    if not 0 <= request.min_score <= 1:
        out.append(Violation(f"{at}min_score", "a score threshold between 0 and 1 (0: the mode's default)"))
    if request.page_token:
        try:
            if ranked:
                check_ranked_token(request.page_token)
            elif title:
                decode_title_token(request.page_token)
            else:
                decode_cursor(request.page_token)
        except InvalidArgument:
            out.append(Violation(f"{at}page_token", "not a token this index issued"))
    return out


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
        query = check_query(request, caller, self._today())
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
