"""A search request checked against the edit criteria (`check_query`): every bad field named at once, before
anything is read; the purpose one the activity is accredited for (seed 002); the page token opened
(search_service.page_tokens). What the modes of search_service.search work from."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from dcii.v1 import search_pb2
from indexer import edit_rules as rules
from indexer.edit_criteria_names import clean_person_name
from indexer.exc import InvalidArgument, PermissionDenied
from indexer.model import Identifiers, PersonName, TracingType, Violation
from indexer.normalize import NameKey, name_key
from search_service.accreditation import Caller, Purpose
from search_service.convert import identifiers_in, mode_name, name_in, output_only_violations, purpose_name, type_in
from search_service.exact import decode_cursor, decode_title_token
from search_service.page_tokens import NOT_OURS, TokenEnvelope
from search_service.ranked import check_ranked_token
from search_service.search_rules import mode_violations, title_violations

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
    page_token: str  # as opened (TokenEnvelope): the position this instance sealed in the client's token
    min_score: float


def check_query(
    request: search_pb2.SearchRequest, caller: Caller, today: dt.date, tokens: TokenEnvelope, prefix: str = ""
) -> Query:
    """Validate a request (all violations at once); refuse a purpose the activity is not accredited for.
    `tokens` opens the request's page token, sealed by this instance for the caller's activity."""
    out: list[Violation] = []
    at = (prefix + ".") if prefix else ""
    page_token = tokens.opened(request.page_token, caller.activity.activity_id)
    if page_token is None:
        out.append(Violation(f"{at}page_token", NOT_OURS))
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
    out += _paging_violations(request.min_score, page_token or "", at, ranked=ranked, title=title)
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
        page_token or "",
        request.min_score,
    )


def _paging_violations(min_score: float, page_token: str, at: str, *, ranked: bool, title: str) -> list[Violation]:
    out = []
    if not 0 <= min_score <= 1:
        out.append(Violation(f"{at}min_score", "a score threshold between 0 and 1 (0: the mode's default)"))
    if page_token:
        try:
            if ranked:
                check_ranked_token(page_token)
            elif title:
                decode_title_token(page_token)
            else:
                decode_cursor(page_token)
        except InvalidArgument:
            out.append(Violation(f"{at}page_token", "not a token this index issued"))
    return out
