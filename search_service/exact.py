"""The exact retrieval modes of the legacy index (seed 002, "Retrieval"), over any TracingStore.

- EXACT (standard): normalized name equal AND at least one PID equal.
- NAME_ONLY: normalized name equal.
- NONSTANDARD: surname alone, or surname with a given-name prefix or initial; references to all
  individuals by that name.

"Name equal" means equal surname and given-name keys (indexer.normalize.exact_key: transliterated,
case, punctuation and spacing folded). A middle name in the query must agree with the record's (an
initial agrees with any name it begins); a suffix in the query must be the record's. The same rules for
an alias: a tracing is found by any of its subject's names.

Results are paged by a cursor in the store's name order, so paging is stable while records change.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass

from indexer.exc import InvalidArgument
from indexer.model import Identifiers, StoredTracing, TracingType, Violation
from indexer.normalize import NameKey, fold
from indexer.store.base import NameCursor, NameRow, TracingStore

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


def encode_cursor(cursor: NameCursor) -> str:
    raw = f"{cursor.given}|{cursor.tracing_id}|{cursor.alias_no}".encode()
    return base64.urlsafe_b64encode(raw).decode()


# Internal ids are SQLite integers: a token naming anything outside them was not issued here.
_MAX_ID = 2**63 - 1


def _id(text: str) -> int:
    value = int(text)
    if not 0 <= value <= _MAX_ID:
        raise ValueError("id out of range")
    return value


def decode_cursor(token: str) -> NameCursor | None:
    if not token:
        return None
    try:
        given, tracing_id, alias_no = base64.urlsafe_b64decode(token.encode()).decode().rsplit("|", 2)
        return NameCursor(given, _id(tracing_id), _id(alias_no))
    except (ValueError, binascii.Error, UnicodeDecodeError) as error:
        raise InvalidArgument([Violation("page_token", "not a token this index issued")]) from error


def _middle_agrees(query: str, record: str) -> bool:
    if not query:
        return True
    if not record:
        return False
    if len(query) == 1 or len(record) == 1:
        return query[0] == record[0]
    return query == record


def name_agrees(query: NameKey, row: NameRow) -> bool:
    return _middle_agrees(query.middle, row.middle) and (not query.suffix or query.suffix == row.suffix)


def pids_agreeing(ids: Identifiers, row: NameRow) -> tuple[str, ...]:
    agreed = []
    if ids.ssn and ids.ssn == row.ssn:
        agreed.append("ssn")
    dob = ids.date_of_birth
    # A partial date in the query agrees with a record that has at least its precision and the same parts.
    if dob is not None and row.dob and (row.dob == dob.iso() or row.dob.startswith(dob.iso() + "-")):
        agreed.append("date_of_birth")
    pob = ids.place_of_birth
    if pob is not None and row.pob and row.pob == pob.code():
        agreed.append("place_of_birth")
    return tuple(agreed)


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
) -> Page:
    """One page of distinct tracings whose names pass `accept` (which returns the agreeing PIDs, or None).
    `pids`: `accept` requires one of them to agree, so the store may leave out rows that agree on none."""
    after = decode_cursor(page_token)
    hits: list[ExactHit] = []
    seen: set[int] = set()
    last_row: NameRow | None = None
    chunk = max(64, page_size * 4)
    while True:
        rows = store.scan_names(surname, given, given_is_prefix=given_is_prefix, after=after, limit=chunk, pids=pids)
        accepted = [(row, agreed) for row in rows if (agreed := accept(row)) is not None]
        loaded = store.load(sorted({row.tracing_id for row, _ in accepted if row.tracing_id not in seen}))
        for row, agreed in accepted:
            stored = loaded.get(row.tracing_id)
            if stored is None or row.tracing_id in seen or (types and stored.tracing.type not in types):
                # Passed over for good (gone, filtered out, or its tracing is already on this page): the
                # next page must not start before it, or a second name of a tracing here comes back there.
                last_row = row
                continue
            if last_row is not None and len(hits) == page_size:
                # One more hit exists: the next page starts after the last row this one passed.
                return Page(hits, encode_cursor(NameCursor(last_row.given, last_row.tracing_id, last_row.alias_no)))
            seen.add(row.tracing_id)
            hits.append(ExactHit(stored, row.alias_no, agreed))
            last_row = row
        if len(rows) < chunk:
            return Page(hits, "")
        after = NameCursor(rows[-1].given, rows[-1].tracing_id, rows[-1].alias_no)


def decode_title_token(token: str) -> int | None:
    if not token:
        return None
    try:
        return _id(base64.urlsafe_b64decode(token.encode()).decode().removeprefix("t|"))
    except (ValueError, binascii.Error, UnicodeDecodeError) as error:
        raise InvalidArgument([Violation("page_token", "not a token this index issued")]) from error


def title_page(store: TracingStore, title: str, *, prefix: bool, page_size: int, page_token: str) -> Page:
    """Impersonal titles by folded title (equal, or starting with it), paged by id."""
    after = decode_title_token(page_token)
    ids = store.scan_titles(fold(title), prefix=prefix, after=after, limit=page_size + 1)
    loaded = store.load(ids[:page_size])
    hits = [ExactHit(loaded[i], 0) for i in ids[:page_size] if i in loaded]
    more = len(ids) > page_size
    token = base64.urlsafe_b64encode(f"t|{ids[page_size - 1]}".encode()).decode() if more else ""
    return Page(hits, token)
