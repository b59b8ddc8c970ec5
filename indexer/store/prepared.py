"""A checked tracing encoded ahead of its write: what every backend needs of it (key, version, type and the
canonical JSON body of indexer.codec) and the columns the embedded store derives from it.

Why a form of its own: ingest prepares tracings in worker processes (search_service.ingest_pool), and what
crosses the process boundary must be cheap to take in on the other side, where the single writer is. A
Tracing model would have to be rebuilt there (pickle: ~18 µs a tracing); these plain strings and tuples,
sent with `marshal`, take ~1 µs. The embedded store writes the columns as they are; a backend that needs the
model (OpenSearch) decodes the body (`tracing()`), which gives the same tracing back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from indexer.codec import tracing_from_json, tracing_to_json
from indexer.codec_head import head_to_text
from indexer.match_keys import tracing_keys
from indexer.model import Tracing, TracingKey, TracingType
from indexer.normalize import name_key, title_key
from indexer.store.sqlite_keys import keys_text
from indexer.store.sqlite_lifecycle import NacFacts, nac_facts

# (surname, given, alias_no, middle, suffix, ssn, dob, pob): one row of the embedded store's name index.
NameRow = tuple[str, str, int, str, str, str, str, str]

_TYPES = {kind.value: kind for kind in TracingType}


def name_rows(tracing: Tracing) -> list[NameRow]:
    """The name index rows of a tracing, one for each of its names (aliases included)."""
    subject = tracing.subject
    if subject is None:
        return []
    ids = subject.identifiers
    dob = ids.date_of_birth.iso() if ids.date_of_birth else ""
    pob = ids.place_of_birth.code() if ids.place_of_birth else ""
    rows = []
    for alias_no, name in enumerate(subject.all_names()):
        k = name_key(name)
        rows.append((k.surname, k.given, alias_no, k.middle, k.suffix, ids.ssn, dob, pob))
    return rows


def title_of(tracing: Tracing) -> str | None:
    """The title index's key of an impersonal-title tracing (None for every other type)."""
    title = getattr(tracing.details, "title", None) if tracing.type is TracingType.IMPERSONAL_TITLE else None
    return None if title is None else title_key(title)


@dataclass(frozen=True, slots=True)
class PreparedTracing:
    key: TracingKey
    source_version: int
    type: TracingType
    body: str  # indexer.codec's JSON
    head: str  # indexer.codec_head's compact form, what ranked queries score
    names: list[NameRow]
    keys: str  # the match keys as the FTS5 index's text (sqlite_keys.keys_text)
    title: str | None
    nac: NacFacts | None  # a NAC history's (indexer.store.sqlite_lifecycle)
    # The model it was prepared from, when this process has it (saves decoding the body again).
    original: Tracing | None = field(default=None, compare=False, repr=False)

    @classmethod
    def of(cls, tracing: Tracing) -> PreparedTracing:
        kind = tracing.type
        if kind is None:
            raise ValueError("a tracing is prepared only once checked (it has no type)")
        return cls(
            tracing.key,
            tracing.source_version,
            kind,
            tracing_to_json(tracing),
            head_to_text(tracing.subject),
            name_rows(tracing),
            keys_text(tracing_keys(tracing)),
            title_of(tracing),
            nac_facts(tracing),
            tracing,
        )

    def tracing(self) -> Tracing:
        return self.original if self.original is not None else tracing_from_json(self.body)

    def row(self) -> tuple[Any, ...]:
        """Plain values only (marshal can send them); `from_row` takes them back."""
        key = self.key
        return (
            key.agency,
            key.record_number,
            self.source_version,
            self.type.value,
            self.body,
            self.head,
            self.names,
            self.keys,
            self.title,
            self.nac,
        )

    @classmethod
    def from_row(cls, row: tuple[Any, ...] | list[Any]) -> PreparedTracing:
        agency, record_number, version, kind, body, head, names, keys, title, nac = row
        return cls(TracingKey(agency, record_number), version, _TYPES[kind], body, head, names, keys, title, nac)


def as_model(tracing: Tracing | PreparedTracing) -> Tracing:
    """The model of a tracing an op carries, prepared or not (for a backend that works from the model)."""
    return tracing.tracing() if isinstance(tracing, PreparedTracing) else tracing


def as_prepared(tracing: Tracing | PreparedTracing) -> PreparedTracing:
    """The prepared form of a tracing an op carries, prepared here unless it came so."""
    return tracing if isinstance(tracing, PreparedTracing) else PreparedTracing.of(tracing)
