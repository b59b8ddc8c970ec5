"""The ranked modes: FUZZY (name only) and PID_QUALIFIED (name plus whatever PIDs are known).

Retrieve, then score. Candidates come from the store by the blocking keys of indexer.match_keys in one
bounded call (an identifier given in the query is looked up first); search_service.matching scores them,
and hits at or above the threshold come back best first, each with the features that agreed or not.
Pages are offsets into that ranking: ranking is deterministic, so asking again gives the same order.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from indexer.exc import InvalidArgument
from indexer.match_keys import query_keys
from indexer.model import Identifiers, PersonName, StoredTracing, TracingType, Violation
from indexer.store.base import TracingStore
from search_service.matching import DEFAULT_THRESHOLD, Scored, rank

# Candidates scored for one query at most. The keys are composite, so this bounds only pathological
# queries; when it bites, the response says so (candidates_truncated) instead of dropping silently.
MAX_CANDIDATES = 5000


@dataclass(frozen=True, slots=True)
class RankedHit:
    stored: StoredTracing
    scored: Scored


@dataclass(frozen=True, slots=True)
class RankedPage:
    hits: list[RankedHit]
    next_token: str
    truncated: bool


def encode_offset(offset: int) -> str:
    return base64.urlsafe_b64encode(f"r|{offset}".encode()).decode()


def decode_offset(token: str) -> int:
    if not token:
        return 0
    try:
        kind, offset = base64.urlsafe_b64decode(token.encode()).decode().split("|")
        if kind != "r" or not 0 <= int(offset) < 2**31:
            raise ValueError(token)
        return int(offset)
    except (ValueError, binascii.Error, UnicodeDecodeError) as error:
        raise InvalidArgument([Violation("page_token", "not a token this index issued")]) from error


def run_ranked(
    store: TracingStore,
    *,
    mode: str,
    name: PersonName,
    identifiers: Identifiers,
    types: frozenset[TracingType],
    min_score: float,
    page_size: int,
    page_token: str,
) -> RankedPage:
    use_pids = mode == "PID_QUALIFIED"
    ids = identifiers if use_pids else Identifiers()
    offset = decode_offset(page_token)
    keys = query_keys(name, ids, index_size=max(store.size_hint(), 1))
    found, truncated = store.candidates(keys, limit=MAX_CANDIDATES)
    loaded = store.load(found)
    stored = [s for i in found if (s := loaded.get(i)) is not None and (not types or s.tracing.type in types)]
    threshold = min_score or DEFAULT_THRESHOLD[mode]
    ranked = [
        RankedHit(stored[index], scored)
        for index, scored in rank(name, ids, [s.tracing for s in stored], use_pids=use_pids)
        if scored.score >= threshold
    ]
    page = ranked[offset : offset + page_size]
    more = len(ranked) > offset + page_size
    return RankedPage(page, encode_offset(offset + page_size) if more else "", truncated)
