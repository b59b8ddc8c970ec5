"""The exact retrieval modes of the legacy index (seed 002, "Retrieval"), over any TracingStore.

- EXACT (standard): normalized name equal AND at least one PID equal.
- NAME_ONLY: normalized name equal.
- NONSTANDARD: surname alone, or surname with a given-name prefix or initial; references to all
  individuals by that name.

"Name equal" means equal surname and given-name keys (indexer.normalize.exact_key: transliterated,
case, punctuation and spacing folded). A middle name in the query must agree with the record's (an
initial agrees with any name it begins) and a suffix must be the record's; in EXACT, where a PID must
agree besides, a part the record lacks does not disagree (a full name asked with the SSN missed the
SSN's own record, filed without the middle name). NAME_ONLY keeps to the name submitted. The same rules for
an alias: a tracing is found by any of its subject's names.

Results are paged by a cursor in the store's name order, so paging is stable while records change. A
tracing is shown once, at its first qualifying name in that order: one with two names under the surname
asked (a primary name and an alias) came back on a later page by its second name, a second disclosure
accounted of one record. The cursor names the page's last hit (search_service.page_tokens), never a name
the page passed over: a tracing left out by a type filter is neither shown nor accounted, and its name
travelled in the token.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass

from indexer.model import Identifiers, StoredTracing, TracingType
from indexer.normalize import NameKey, fold
from indexer.store.base import NameCursor, NameRow, TracingStore
from indexer.store.prepared import name_rows
from search_service.page_tokens import Position, not_issued, position_of, seal, unseal

EXACT_MATCHER = "exact-1"


@dataclass(frozen=True, slots=True)
class ExactHit:
    stored: StoredTracing
    alias_no: int
    # PIDs that agreed (EXACT mode), for the explanation.
    agreed: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Page:
    hits: list[ExactHit]
    next_token: str


# Internal ids are SQLite integers: a token naming anything outside them was not issued here.
_MAX_ID = 2**63 - 1


def _id(text: str) -> int:
    value = int(text)
    if not 0 <= value <= _MAX_ID:
        raise ValueError("id out of range")
    return value


_NAMES, _TITLES = "names", "titles"


def _cursor(position: Position) -> NameCursor:
    try:
        given, tracing_id, alias_no = position
        if not (isinstance(given, str) and isinstance(tracing_id, int) and isinstance(alias_no, int)):
            raise ValueError(position)
        return NameCursor(given, _id(str(tracing_id)), _id(str(alias_no)))
    except ValueError as error:
        raise not_issued() from error


def _legacy_cursor(token: str) -> NameCursor:
    """A cursor of the earlier format ("given|id|alias", kept in batch results for 30 days)."""
    try:
        given, tracing_id, alias_no = base64.urlsafe_b64decode(token.encode()).decode().rsplit("|", 2)
        return NameCursor(given, _id(tracing_id), _id(alias_no))
    except (ValueError, binascii.Error, UnicodeDecodeError) as error:
        raise not_issued() from error


def decode_cursor(token: str) -> NameCursor | None:
    """The cursor a name-scan token names, its query unchecked (the request's own check of its form)."""
    if not token:
        return None
    position = position_of(token, _NAMES)
    return _legacy_cursor(token) if position is None else _cursor(position)


def _resume(token: str, scope: list[object], earlier: list[list[object]]) -> NameCursor | None:
    if not token:
        return None
    position = unseal(token, _NAMES, scope, earlier)
    return _legacy_cursor(token) if position is None else _cursor(position)


def _middle_agrees(query: str, record: str, *, lenient: bool) -> bool:
    if not query:
        return True
    if not record:  # in EXACT a part the record lacks does not disagree (a PID agrees besides)
        return lenient
    if len(query) == 1 or len(record) == 1:
        return query[0] == record[0]
    return query == record


def name_agrees(query: NameKey, row: NameRow, *, lenient: bool = False) -> bool:
    """The middle name and suffix asked agree with the row's; `lenient` (EXACT): or the row lacks them."""
    suffix_agrees = not query.suffix or query.suffix == row.suffix or (lenient and not row.suffix)
    return _middle_agrees(query.middle, row.middle, lenient=lenient) and suffix_agrees


def pids_agreeing(ids: Identifiers, row: NameRow) -> tuple[str, ...]:
    agreed = []
    if ids.ssn and ids.ssn == row.ssn:
        agreed.append("ssn")
    if ids.date_of_birth is not None and dates_agree(ids.date_of_birth.iso(), row.dob):
        agreed.append("date_of_birth")
    pob = ids.place_of_birth
    if pob is not None and row.pob and row.pob == pob.code():
        agreed.append("place_of_birth")
    return tuple(agreed)


def dates_agree(query: str, record: str) -> bool:
    """Dates of birth (ISO, partial or full) agree when they are equal as far as the less precise goes: a
    year in the query meets any date of that year, and a full date in the query meets a record that holds
    only its year, or its year and month (older files often do; such a record was missed by the full
    date an adjudicator nearly always has)."""
    if not query or not record:
        return False
    return query == record or record.startswith(query + "-") or query.startswith(record + "-")


RowFilter = Callable[[NameRow], tuple[str, ...] | None]


def scan_page(
    store: TracingStore,
    surname: str,
    given: str | None,
    *,
    given_is_prefix: bool,
    accept: RowFilter,
    types: frozenset[TracingType],
    page_size: int,
    page_token: str,
    pids: Identifiers | None = None,
    narrowed_by: tuple[str, ...] = (),
) -> Page:
    """One page of distinct tracings whose names pass `accept` (which returns the agreeing PIDs, or None).
    `pids`: `accept` requires one of them to agree, so the store may leave out rows that agree on none.
    `narrowed_by`: whatever else `accept` looks at (mode, middle name, suffix), so that a page token is
    refused for a query that `accept` would answer otherwise, not continued as if it were the same. A
    token issued before it was in the scope (kept in batch results for 30 days) is still read for a query
    without a middle name or suffix, which it was then issued for as it is now."""
    before: list[object] = [surname, given, given_is_prefix, sorted(t.value for t in types), pids]
    scope = [*before, *narrowed_by]
    after = _resume(page_token, scope, [before] if narrowed_by and not any(narrowed_by[1:]) else [])

    def qualifies(row: NameRow) -> bool:
        if row.surname != surname or (given is not None and not given_is_prefix and row.given != given):
            return False
        return not (given and given_is_prefix and not row.given.startswith(given)) and accept(row) is not None

    hits: list[ExactHit] = []
    last = NameCursor("", 0, 0)  # where the page's last hit was found: the next page starts after it
    chunk = max(64, page_size * 4)
    while True:
        rows = store.scan_names(surname, given, given_is_prefix=given_is_prefix, after=after, limit=chunk, pids=pids)
        accepted = [(row, agreed) for row in rows if (agreed := accept(row)) is not None]
        loaded = store.load(sorted({row.tracing_id for row, _ in accepted}))
        for row, agreed in accepted:
            stored = loaded.get(row.tracing_id)
            if stored is None or (types and stored.tracing.type not in types) or _named_earlier(stored, row, qualifies):
                continue
            if len(hits) == page_size:  # one more hit exists: the next page starts after this page's last
                return Page(hits, seal(_NAMES, scope, [last.given, last.tracing_id, last.alias_no]))
            hits.append(ExactHit(stored, row.alias_no, agreed))
            last = NameCursor(row.given, row.tracing_id, row.alias_no)
        if len(rows) < chunk:
            return Page(hits, "")
        after = NameCursor(rows[-1].given, rows[-1].tracing_id, rows[-1].alias_no)


def _named_earlier(stored: StoredTracing, row: NameRow, qualifies: Callable[[NameRow], bool]) -> bool:
    """Whether another of the tracing's names qualifies and comes before `row` in the scan's order: the
    tracing is shown there (on this page or an earlier one), not again here."""
    subject = stored.tracing.subject
    if subject is None or not subject.aliases:  # one name, one row (the common case: nothing to read)
        return False
    for s, g, alias_no, m, x, ssn, dob, pob in name_rows(stored.tracing):
        if (g, alias_no) < (row.given, row.alias_no) and qualifies(
            NameRow(row.tracing_id, alias_no, s, g, m, x, ssn, dob, pob)
        ):
            return True
    return False


def _title_id(position: Position) -> int:
    if len(position) != 1 or not isinstance(position[0], int):
        raise not_issued()
    return _id(str(position[0]))


def _legacy_title_id(token: str) -> int:
    try:
        return _id(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("t|"))
    except (ValueError, binascii.Error, UnicodeDecodeError) as error:
        raise not_issued() from error


def decode_title_token(token: str) -> int | None:
    """The id a title token names, its query unchecked (the request's own check of its form)."""
    if not token:
        return None
    position = position_of(token, _TITLES)
    return _legacy_title_id(token) if position is None else _title_id(position)


def title_page(store: TracingStore, title: str, *, prefix: bool, page_size: int, page_token: str) -> Page:
    """Impersonal titles by folded title (equal, or starting with it), paged by id."""
    scope: list[object] = [fold(title), prefix]
    position = unseal(page_token, _TITLES, scope) if page_token else None
    after = None if not page_token else _legacy_title_id(page_token) if position is None else _title_id(position)
    ids = store.scan_titles(fold(title), prefix=prefix, after=after, limit=page_size + 1)
    loaded = store.load(ids[:page_size])
    hits = [ExactHit(loaded[i], 0) for i in ids[:page_size] if i in loaded]
    more = len(ids) > page_size
    return Page(hits, seal(_TITLES, scope, [ids[page_size - 1]]) if more else "")
