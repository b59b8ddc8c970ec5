"""The ranked modes: FUZZY (name only) and PID_QUALIFIED (name plus whatever PIDs are known).

Retrieve, then score. Candidates come from the store by the blocking keys of indexer.match_keys in one
bounded call (an identifier given in the query is looked up first); search_service.matching scores them,
and hits at or above the threshold come back best first, each with the features that agreed or not.
Pages are offsets into that ranking: ranking is deterministic, so asking again gives the same order.

Identifier first: a PID_QUALIFIED query with a full SSN, at a threshold above the matcher's SSN-conflict
cap, retrieves the SSN's near neighbours and, among tracings without a full SSN only, the rest
(indexer.match_keys); a candidate whose full SSN conflicts is dropped before it is scored. The page is
what the full lookup would give (tests/test_identifier_first.py), from a far smaller candidate set.

Two stages: the candidates are scored on their heads (key, type and subject as indexer.codec_head's
text: `TracingStore.load_head_rows`, compiled without decoding), and only the page's hits are loaded in
full. Decoding every candidate whole was most of a query's time, for the few it returns; then building a
Subject for each head was most of a common name's.
"""

from __future__ import annotations

import base64
import binascii
import operator
from dataclasses import dataclass

from indexer.codec_head import head_ssn
from indexer.exc import InvalidArgument
from indexer.match_keys import full_ssn, query_keys
from indexer.model import Identifiers, PersonName, StoredTracing, TracingType, Violation
from indexer.store.base import TracingStore
from search_service.matching import Scored, matcher, rank
from search_service.matching_columns import HeadCandidate
from search_service.matching_pids import ssn_conflicts

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


_BY_KEY = operator.itemgetter(1, 2)  # a head row's agency and record number (TracingStore.load_head_rows)


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
    matcher_version: str = "",
    identifier_first: bool = True,
) -> RankedPage:
    """One page of hits at or above `min_score` (0: the matcher version's default threshold for the
    mode), best first. Only the page's hits (and one more, to know whether another page follows) are
    explained. `identifier_first=False` retrieves by every key even where a conflicting SSN could not
    be shown (the same page from a larger candidate set: for comparison)."""
    use_pids = mode == "PID_QUALIFIED"
    ids = identifiers if use_pids else Identifiers()
    offset = decode_offset(page_token)
    scorer = matcher(matcher_version)
    threshold = min_score or scorer.thresholds[mode]
    # Identifier first (indexer.match_keys): above the cap, a candidate whose full SSN conflicts with the
    # query's can never be shown, so it is neither retrieved (by name or date) nor scored.
    conflicts_out = (
        use_pids
        and identifier_first
        and bool(full_ssn(ids.ssn))
        and scorer.ssn_conflict_cap is not None
        and threshold > scorer.ssn_conflict_cap
        and store.keys_version() >= 2
    )
    keys = query_keys(
        name,
        ids,
        index_size=max(store.size_hint(), 1),
        conflicting_ssn_out=conflicts_out,
        keys_version=store.keys_version(),
    )
    # One state of the index for both reads (nested in the caller's snapshot, if any), so that the page
    # loads exactly the tracings that were scored.
    with store.snapshot():
        found, truncated = store.candidates(keys, limit=MAX_CANDIDATES)
        allowed = {kind.value for kind in types}
        listed = store.load_head_rows(found)
        if allowed or conflicts_out:  # else nothing to drop: a common name's thousands of rows go as read
            listed = [
                row
                for row in listed
                if (not allowed or row[3] in allowed)
                and not (conflicts_out and ssn_conflicts(ids.ssn, head_ssn(row[4])))
            ]
        # Equal scores keep this order (the sort is stable): by tracing key, not by the store's internal
        # ids, so that every backend (and a rebuilt index) ranks ties alike and a page never depends on it.
        listed.sort(key=_BY_KEY)
        hits = rank(
            name,
            ids,
            [HeadCandidate(row[4]) for row in listed],
            use_pids=use_pids,
            min_score=threshold,
            offset=offset,
            limit=page_size + 1,
            matcher=matcher_version,
        )
        shown = [(listed[index][0], scored) for index, scored in hits[:page_size]]
        loaded = store.load([i for i, _ in shown])
    # Within the snapshot every head's tracing is there; a backend whose snapshot is weaker may miss one
    # deleted in between, and a deleted tracing is not shown.
    page = [RankedHit(stored, scored) for i, scored in shown if (stored := loaded.get(i)) is not None]
    more = len(hits) > page_size
    return RankedPage(page, encode_offset(offset + page_size) if more else "", truncated)
