"""The OpenSearch backend's key-ordered reads: the name scan of the exact modes, the fuzzy modes'
candidates, impersonal titles, and the NAC histories due for retention.

Each answers exactly as the embedded store does, in the same order, except that tracing ids differ
between backends (hashes here, insertion order there), so rows that tie on every other sort key come in
another order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from indexer.codec import tracing_from_json
from indexer.model import Identifiers, TracingKey, TracingType
from indexer.store.base import NameCursor, NameRow
from indexer.store.opensearch_io import PAGE, hits
from indexer.store.opensearch_schema import Names
from indexer.store.prepared import name_rows

_LIVE = {"term": {"live": True}}
# Most keys one candidates request names; a longer list is asked in parts (bool clause limits).
_KEYS_PER_REQUEST = 512


class Scans:
    """Mixed into OpenSearchStore, which provides the search (plain, or on the snapshot's PIT)."""

    names: Names

    def _search(self, body: dict[str, Any], *, index: str) -> dict[str, Any]:
        raise NotImplementedError

    def _paged(self, body: dict[str, Any], limit: int) -> list[dict[str, Any]]:
        """Up to `limit` hits of a search sorted on a unique tiebreaker, in pages of at most PAGE."""
        out: list[dict[str, Any]] = []
        after: list[Any] | None = None
        while len(out) < limit:
            size = min(PAGE, limit - len(out))
            page = hits(
                self._search(
                    body | {"size": size} | ({"search_after": after} if after else {}), index=self.names.tracings
                )
            )
            out += page
            if len(page) < size:
                break
            after = page[-1]["sort"]
        return out

    def scan_names(
        self,
        surname: str,
        given: str | None,
        *,
        given_is_prefix: bool,
        after: NameCursor | None,
        limit: int,
        pids: Identifiers | None = None,  # not filtered on here: every row is returned (the interface allows it)
    ) -> list[NameRow]:
        """Rows in (given, id, alias) order. Documents come sorted by their first qualifying row (a nested
        sort with the row filter); the first `limit` documents hold the first `limit` rows, since each
        holds at least one and any row's document sorts no later than the row itself."""
        row_filter: list[dict[str, Any]] = [{"term": {"names.surname": surname}}]
        if given is not None and not given_is_prefix:
            row_filter.append({"term": {"names.given": given}})
        elif given:
            row_filter.append({"prefix": {"names.given": given}})
        if after is not None:
            same = {"term": {"names.given": after.given}}
            row_filter.append({"bool": {"minimum_should_match": 1, "should": [
                {"range": {"names.given": {"gt": after.given}}},
                {"bool": {"filter": [same, {"range": {"names.tid": {"gt": after.tracing_id}}}]}},
                {"bool": {"filter": [same, {"term": {"names.tid": after.tracing_id}},
                                     {"range": {"names.alias_no": {"gt": after.alias_no}}}]}},
            ]}})  # fmt: skip
        rows_query = {"bool": {"filter": row_filter}}
        body = {
            "query": {"bool": {"filter": [_LIVE, {"nested": {"path": "names", "query": rows_query}}]}},
            "sort": [
                {"names.given": {"order": "asc", "mode": "min", "nested": {"path": "names", "filter": rows_query}}},
                {"tid": "asc"},
            ],
            "_source": ["tid", "body"],
        }
        rows: list[NameRow] = []
        for hit in self._paged(body, limit):
            tid = hit["_source"]["tid"]
            tracing = tracing_from_json(hit["_source"]["body"])
            for s, g, alias_no, m, x, ssn, dob, pob in name_rows(tracing):
                if s != surname or (given is not None and not given_is_prefix and g != given):
                    continue
                if given and given_is_prefix and not g.startswith(given):
                    continue
                if after is not None and (g, tid, alias_no) <= (after.given, after.tracing_id, after.alias_no):
                    continue
                rows.append(NameRow(tid, alias_no, s, g, m, x, ssn, dob, pob))
        rows.sort(key=lambda r: (r.given, r.tracing_id, r.alias_no))
        return rows[:limit]

    def candidates(self, keys: Sequence[str], *, limit: int) -> tuple[list[int], bool]:
        """One request: a bool/should of one named term per key, `limit + 1` hits at most. When no more
        than `limit` tracings match, each is ordered by the first key (in the order given) it holds, then
        by id (any order would do). When more match, the set is cut as the embedded store cuts
        it (every id of the earlier keys first), asking key by key (`_by_key`)."""
        ordered = list(dict.fromkeys(keys))
        if not ordered:
            return [], False
        if len(ordered) > _KEYS_PER_REQUEST or limit + 1 > PAGE:
            return self._by_key(ordered, limit)
        should = [{"term": {"match_keys": {"value": key, "_name": str(i)}}} for i, key in enumerate(ordered)]
        body = {
            "query": {"bool": {"filter": [_LIVE], "should": should, "minimum_should_match": 1}},
            "size": limit + 1,
            "_source": False,
            "sort": ["_doc"],
            "track_total_hits": False,
        }
        found = hits(self._search(body, index=self.names.tracings))
        if len(found) > limit:
            return self._by_key(ordered, limit)
        ranked = sorted((min(int(q) for q in hit["matched_queries"]), int(hit["_id"])) for hit in found)
        return [tid for _, tid in ranked], False

    def _by_key(self, keys: list[str], limit: int) -> tuple[list[int], bool]:
        """The embedded store's walk: key by key, ids in order, until more than `limit` are found."""
        found: dict[int, None] = {}
        for key in keys:
            room = limit - len(found)
            body = {"query": {"bool": {"filter": [_LIVE, {"term": {"match_keys": key}}]}},
                    "sort": [{"tid": "asc"}], "_source": False}  # fmt: skip
            for hit in self._paged(body, room + 1 + len(found)):
                found.setdefault(int(hit["_id"]))
                if len(found) > limit:
                    return list(found)[:limit], True
        return list(found), False

    def scan_titles(self, title: str, *, prefix: bool, after: int | None, limit: int) -> list[int]:
        match = {"prefix": {"title": title}} if prefix else {"term": {"title": title}}
        filters: list[dict[str, Any]] = [_LIVE, match]
        if after is not None:
            filters.append({"range": {"tid": {"gt": after}}})
        body = {"query": {"bool": {"filter": filters}}, "sort": [{"tid": "asc"}], "_source": False}
        return [int(hit["_id"]) for hit in self._paged(body, limit)]

    def due_for_retention(self, before: dt.date, limit: int) -> list[TracingKey]:
        filters = [_LIVE, {"term": {"type": TracingType.NAC_HISTORY.value}},
                   {"range": {"nac_due_on": {"lt": before.isoformat()}}}]  # fmt: skip
        body = {"query": {"bool": {"filter": filters}}, "sort": [{"nac_due_on": "asc"}, {"tid": "asc"}],
                "_source": ["agency", "record_number"]}  # fmt: skip
        return [TracingKey(h["_source"]["agency"], h["_source"]["record_number"]) for h in self._paged(body, limit)]
