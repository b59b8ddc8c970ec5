"""The ranked modes: FUZZY (name only) and PID_QUALIFIED (name plus whatever PIDs are known).

Retrieve, then score. Candidates come from the store by the blocking keys of indexer.match_keys in one
bounded call (an identifier given in the query is looked up first); search_service.matching scores them,
and hits at or above the threshold come back best first, each with the features that agreed or not.
A page's token names its last hit (its evidence and tracing key, search_service.page_tokens): the next
page ranks again and starts after it. An offset, as tokens were, skipped a hit whenever one already
shown was deleted between pages (everything after it moved up a place, the first of the next page onto
the page already read) and showed one twice after an insertion.

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
import bisect
import operator
from dataclasses import dataclass

from indexer.codec_head import head_ssn
from indexer.match_keys import full_ssn
from indexer.match_keys_query import query_keys
from indexer.model import Identifiers, PersonName, StoredTracing, TracingType
from indexer.store.base import TracingStore
from search_service.matching import Matcher, Scored, matcher, ranking
from search_service.matching_columns import HeadCandidate
from search_service.matching_pids import ssn_conflicts
from search_service.matching_threshold import default_threshold
from search_service.matching_versions import same_scores
from search_service.page_tokens import Position, not_issued, other_query, position_of, seal, unseal

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
    threshold: float = 0.0  # the score the hits are at or above
    best_below: float = 0.0  # the best score of a candidate under it (0.0: none); no record is shown for it


_KIND = "ranked"


def _legacy_offset(token: str) -> int:
    """The offset of a token of the earlier format ("r|N": kept in batch results for 30 days)."""
    try:
        kind, offset = base64.urlsafe_b64decode(token.encode()).decode().split("|")
        if kind != "r" or not 0 <= int(offset) < 2**31:
            raise ValueError(token)
        return int(offset)
    except (ValueError, binascii.Error, UnicodeDecodeError) as error:
        raise not_issued() from error


# The versions whose tokens named no version (before fuzzy-8).
_UNNAMED = frozenset(f"fuzzy-{n}" for n in range(1, 8))


def _scores_as_unnamed(scorer: Matcher) -> bool:
    return scorer.version in _UNNAMED or any(m.version in _UNNAMED for m in same_scores(scorer))


def _after(position: Position) -> tuple[float, str, str]:
    """(bits, agency, record number) of the hit a ranked token names."""
    try:
        bits, agency, record = position
        if not (isinstance(bits, str) and isinstance(agency, str) and isinstance(record, str)):
            raise ValueError(position)
        return float.fromhex(bits), agency, record
    except (ValueError, OverflowError) as error:
        raise not_issued() from error


def check_ranked_token(token: str) -> int:
    """Checks a ranked page token's form (the request's check: the query is compared when it is used);
    the offset of an earlier format's token, else 0."""
    if not token:
        return 0
    position = position_of(token, _KIND)
    if position is None:
        return _legacy_offset(token)
    _after(position)
    return 0


def _scope(
    mode: str, name: PersonName, ids: Identifiers, types: frozenset[TracingType], threshold: float, version: str = ""
) -> list[object]:
    """What a token was issued for. The matcher version is in it from fuzzy-8's release (a token's position is
    in its version's scores); a token issued before names none (`version` "", read as before)."""
    query: list[object] = [mode, name, ids, sorted(t.value for t in types), threshold]
    return [*query, version] if version else query


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
    scorer = matcher(matcher_version)
    default = default_threshold(scorer, mode, name)
    threshold = min_score or default
    scope = _scope(mode, name, ids, types, threshold, scorer.version)
    position = None
    if page_token:
        # A token another version issued resumes here when that version scores alike: at the default
        # threshold, at its own default (fuzzy-7's at 0.5 under fuzzy-8 at 0.25; and back, should a server
        # roll back). A token issued before versions were named resumes at the same threshold only, as it
        # did: at another it may be another version's (fuzzy-6 issued them at 0.5 too), whose position in
        # other scores would skip records silently, where a refusal only asks for the first page again; and
        # only under a version that scores as one of those did (not fuzzy-9: a review of it).
        alike = [(m.version, threshold if min_score else default_threshold(m, mode, name)) for m in same_scores(scorer)]
        earlier = [_scope(mode, name, ids, types, at, version) for version, at in alike]
        if _scores_as_unnamed(scorer):
            earlier.append(_scope(mode, name, ids, types, threshold))
        position = unseal(page_token, _KIND, scope, earlier)
        if position is None and not _scores_as_unnamed(scorer):  # an earlier format's offset, likewise
            raise other_query()
    offset = _legacy_offset(page_token) if page_token and position is None else 0
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
        romanized=scorer.romanized_surnames,
        hypocorisms=scorer.hypocorisms,
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
        after = None
        if position is not None:
            bits, agency, record = _after(position)
            # Candidates up to the last hit's key in key order: among equal evidence, those it came after.
            seen = bisect.bisect_right([_BY_KEY(row) for row in listed], (agency, record))
            after = (bits, seen - 1)
        ranked = ranking(
            name,
            ids,
            [HeadCandidate(row[4]) for row in listed],
            use_pids=use_pids,
            min_score=threshold,
            offset=offset,
            after=after,
            limit=page_size + 1,
            matcher=matcher_version,
            below=default,
        )
        hits = ranked.hits
        shown = [(listed[index][0], scored) for index, scored in hits[:page_size]]
        loaded = store.load([i for i, _ in shown])
    # Within the snapshot every head's tracing is there; a backend whose snapshot is weaker may miss one
    # deleted in between, and a deleted tracing is not shown.
    page = [RankedHit(stored, scored) for i, scored in shown if (stored := loaded.get(i)) is not None]
    token = ""
    if len(hits) > page_size:
        last, key = shown[-1][1], listed[hits[page_size - 1][0]]
        token = seal(_KIND, scope, [last.bits.hex(), key[1], key[2]])
    return RankedPage(page, token, truncated, threshold, ranked.best_below)
