"""The OpenSearch backend's indices: names, strict mappings, and the documents that go in them.

Three kinds of index, all named from one prefix (default `dcii`):
- `dcii-tracings`: an alias over one physical, versioned index `dcii-tracings-v<N>` (rebuild makes N+1
  and swaps the alias). One document per key the index has seen, live or a tombstone, with its source
  version as the document's external version. Every derived field (normalized names, match keys, the
  folded title, the NAC-history dates) is computed here, in Python, with the same functions the embedded
  store uses, so both backends find the same tracings for the same query.
- `dcii-disputes`: one statement of dispute per tracing, under the tracing's document id.
- `dcii-deletions`: the deletion log, one document per deletion, id "<tracing id>-<version>".

Internal ids: the interface speaks of integer tracing ids. A tracing's id is a 53-bit hash of its key
(blake2b of agency and record number), so every stateless service instance computes the same id with no
coordination, and the document id is its decimal form (a realtime GET by key). 53 bits: an id must
survive every JSON reader exactly (doubles hold 53 bits; osmem-server compares longs as doubles). Two
keys hashing alike (expected about 3 pairs at 10^8 keys, 1 in 200 chances of any at 10^7) are told
apart by probing: the writer reads the document at the first id; if it holds another key it tries the id
of (key, 1), then (key, 2) ... until it finds the key or a free id. Documents are never removed (deletes
leave tombstones), so a probe chain never breaks.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any

from indexer.codec import tracing_from_json, tracing_to_json
from indexer.match_keys import tracing_keys
from indexer.model import (
    Dispute,
    ImpersonalTitleDetails,
    NacHistoryDetails,
    NacOutcome,
    PartialDate,
    StoredTracing,
    Tracing,
    TracingKey,
    TracingType,
)
from indexer.normalize import name_key, title_key
from indexer.retention import due_on, earliest_day, latest_day
from indexer.store.base import DeletionRecord

# Written into each index's mapping _meta; a store opening an index of another version asks for a rebuild.
# 2: the match keys of version 2 (indexer.match_keys: the `n` twins of tracings without a full SSN).
# 3: the match keys of version 3 (the SSN keys `w0`-`w7`).
# 4: the match keys of version 4 (`o` and `o0` for each part of a compound surname).
SCHEMA_VERSION = 4


def keys_version_of(schema: int) -> int:
    """The match-keys version an index of this schema holds (at least: this program's writers add
    documents of the current version to an older index until it is rebuilt)."""
    return min(max(schema, 1), 4)


_TID_MASK = (1 << 53) - 1

_KEYWORD = {"type": "keyword"}
_STORED = {"type": "keyword", "index": False, "doc_values": False}  # kept in _source, never searched
_LONG = {"type": "long"}
_DAY = {"type": "date", "format": "strict_date"}
_INSTANT = {"type": "date", "format": "strict_date_optional_time"}

TRACING_MAPPING: dict[str, Any] = {
    "_meta": {"schema": SCHEMA_VERSION},
    "dynamic": "strict",
    "properties": {
        "tid": _LONG,
        "agency": _KEYWORD,
        "record_number": _KEYWORD,
        "source_version": _LONG,
        "type": _KEYWORD,
        "live": {"type": "boolean"},
        # The source version at which this key last became live: a dispute belongs to one such life.
        "born": _LONG,
        "indexed_at": _INSTANT,
        "body": _STORED,  # the tracing (indexer.codec JSON): what reads return
        # The primary name's exact keys (supersession without an SSN uses them).
        "surname": _KEYWORD,
        "given": _KEYWORD,
        # Every name (primary = alias_no 0, then aliases), for the exact modes' ordered name scan.
        "names": {
            "type": "nested",
            "properties": {"surname": _KEYWORD, "given": _KEYWORD, "alias_no": {"type": "integer"}, "tid": _LONG},
        },
        "ssn": _KEYWORD,
        "dob": {"type": "date", "format": "strict_date||strict_year_month||strict_year"},
        "pob": _KEYWORD,
        "match_keys": _KEYWORD,
        "title": _KEYWORD,
        "nac_completed_on": _DAY,  # the latest day a (possibly partial) completion date can mean
        "nac_earliest_on": _DAY,
        "nac_favorable": {"type": "boolean"},
        "nac_due_on": _DAY,  # the first day retention removes it (indexer.retention.due_on)
        # Set by a completion (Replace) under a new key: the document id and version it replaces. A reader
        # that sees this document drops the old one, so the two are never both seen (docs/OPENSEARCH.md).
        "replaces": _KEYWORD,
        "replaces_version": _LONG,
    },
}

DISPUTE_MAPPING: dict[str, Any] = {
    "_meta": {"schema": SCHEMA_VERSION},
    "dynamic": "strict",
    "properties": {
        "tid": _LONG,
        "born": _LONG,  # the life of the tracing it was filed against
        "dispute_id": _KEYWORD,
        "statement_location": _STORED,
        "summary": _STORED,
        "filed_at": _INSTANT,
    },
}

# indexer.store.opensearch_filings: one document whose `n`, drawn anew by every filing, is the dispute mark.
DISPUTE_FILINGS_MAPPING: dict[str, Any] = {
    "_meta": {"schema": SCHEMA_VERSION},
    "dynamic": "strict",
    "properties": {"n": {"type": "long"}},
}

DELETION_MAPPING: dict[str, Any] = {
    "_meta": {"schema": SCHEMA_VERSION},
    "dynamic": "strict",
    "properties": {
        "tid": _LONG,
        "agency": _KEYWORD,
        "record_number": _KEYWORD,
        "type": _KEYWORD,
        "source_version": _LONG,
        "reason": _KEYWORD,
        "actor": _KEYWORD,
        "deleted_at": _INSTANT,
        "seq": {"type": "integer"},  # order within one write
        "log_id": _KEYWORD,
    },
}


@dataclass(frozen=True, slots=True)
class Names:
    """Index and alias names under one prefix."""

    prefix: str

    @property
    def tracings(self) -> str:
        return f"{self.prefix}-tracings"

    @property
    def pattern(self) -> str:
        return f"{self.prefix}-tracings-v*"

    def version(self, number: int) -> str:
        return f"{self.prefix}-tracings-v{number}"

    @property
    def building(self) -> str:
        """The alias on the version a rebuild is copying into (until its swap): every writer mirrors there."""
        return f"{self.prefix}-tracings-building"

    @property
    def rebuild_lease(self) -> str:
        """The index of the running rebuild's lease (indexer.store.opensearch_lease)."""
        return f"{self.prefix}-rebuild"

    @property
    def instances(self) -> str:
        """The roster of the instances serving the store (indexer.store.opensearch_roster)."""
        return f"{self.prefix}-instances"

    @property
    def leaving(self) -> str:
        """The alias on the version a rebuild swaps away from (until its last catch-up): every writer reads it
        beside the tracings alias."""
        return f"{self.prefix}-tracings-leaving"

    @property
    def disputes(self) -> str:
        return f"{self.prefix}-disputes"

    @property
    def dispute_filings(self) -> str:
        """The index of the one document whose `n` is the dispute mark (indexer.store.opensearch_filings)."""
        return f"{self.prefix}-dispute-filings"

    @property
    def deletions(self) -> str:
        return f"{self.prefix}-deletions"

    @property
    def template(self) -> str:
        return f"{self.prefix}-tracings"


def tid_for(key: TracingKey, probe: int = 0) -> int:
    """The id of `key` at probe step `probe` (0 first): 53 bits of blake2b, never 0."""
    text = f"{key.agency}\x1f{key.record_number}" + (f"\x1f{probe}" if probe else "")
    value = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big") & _TID_MASK
    return value or 1


def instant(moment: dt.datetime) -> str:
    """An aware datetime as ISO text with microseconds (read back exactly from _source)."""
    return moment.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def parse_instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _valid_date(value: PartialDate | None) -> str | None:
    if value is None:
        return None
    try:
        latest_day(value)  # a real (possibly partial) date
    except ValueError:
        return None
    return value.iso()


def _nac_fields(tracing: Tracing) -> dict[str, Any]:
    details = tracing.details
    if not isinstance(details, NacHistoryDetails) or details.completed_on is None:
        return {}
    try:
        latest, earliest = latest_day(details.completed_on), earliest_day(details.completed_on)
        due_day = due_on(details.completed_on)
    except ValueError:
        return {}  # no usable completion date: never due, supersedes nothing (as the embedded store)
    return {
        "nac_completed_on": latest.isoformat(),
        "nac_earliest_on": earliest.isoformat(),
        "nac_favorable": details.outcome is NacOutcome.FAVORABLE,
        "nac_due_on": due_day.isoformat(),
    }


def tracing_doc(
    tracing: Tracing, *, tid: int, born: int, indexed_at: dt.datetime, replaces: tuple[str, int] | None = None
) -> dict[str, Any]:
    """The document of a live tracing."""
    kind = tracing.type
    assert kind is not None  # checked tracings always have a type
    doc: dict[str, Any] = {
        "tid": tid,
        "agency": tracing.key.agency,
        "record_number": tracing.key.record_number,
        "source_version": tracing.source_version,
        "type": kind.value,
        "live": True,
        "born": born,
        "indexed_at": instant(indexed_at),
        "body": tracing_to_json(tracing),
        "match_keys": sorted(tracing_keys(tracing)),
    }
    subject = tracing.subject
    if subject is not None:
        primary = name_key(subject.name)
        doc["surname"], doc["given"] = primary.surname, primary.given
        doc["names"] = [
            {"surname": k.surname, "given": k.given, "alias_no": n, "tid": tid}
            for n, k in enumerate(name_key(name) for name in subject.all_names())
        ]
        ids = subject.identifiers
        if ids.ssn:
            doc["ssn"] = ids.ssn
        if (dob := _valid_date(ids.date_of_birth)) is not None:
            doc["dob"] = dob
        if ids.place_of_birth is not None:
            doc["pob"] = ids.place_of_birth.code()
    if isinstance(tracing.details, ImpersonalTitleDetails) and kind is TracingType.IMPERSONAL_TITLE:
        doc["title"] = title_key(tracing.details.title)
    doc |= _nac_fields(tracing)
    if replaces is not None:
        doc["replaces"], doc["replaces_version"] = replaces
    return doc


def tombstone_doc(
    key: TracingKey, *, tid: int, version: int, kind: str, at: dt.datetime, replaces: tuple[str, int] | None = None
) -> dict[str, Any]:
    """The document of a deleted key: only what keeps a late older upsert out (and, for the new record of a
    completion whose old record is still live, which record that is: the replay finishes it)."""
    doc: dict[str, Any] = {
        "tid": tid,
        "agency": key.agency,
        "record_number": key.record_number,
        "source_version": version,
        "type": kind,
        "live": False,
        "born": 0,
        "indexed_at": instant(at),
    }
    if replaces is not None:
        doc["replaces"], doc["replaces_version"] = replaces
    return doc


def stored_from_source(source: dict[str, Any], dispute: Dispute | None) -> StoredTracing:
    return StoredTracing(tracing_from_json(source["body"]), parse_instant(source["indexed_at"]), dispute)


def dispute_doc(dispute: Dispute, *, tid: int, born: int) -> dict[str, Any]:
    return {
        "tid": tid,
        "born": born,
        "dispute_id": dispute.dispute_id,
        "statement_location": dispute.statement_location,
        "summary": dispute.summary,
        "filed_at": instant(dispute.filed_at),
    }


def dispute_from_source(source: dict[str, Any]) -> Dispute:
    return Dispute(
        source["dispute_id"], source["statement_location"], source["summary"], parse_instant(source["filed_at"])
    )


def deletion_id(tid: int, version: int) -> str:
    """One log entry per (tracing, version): a retried write cannot log a deletion twice."""
    return f"{tid}-{version}"


def deletion_doc(record: DeletionRecord, *, tid: int, seq: int) -> dict[str, Any]:
    return {
        "tid": tid,
        "agency": record.key.agency,
        "record_number": record.key.record_number,
        "type": record.type.value,
        "source_version": record.source_version,
        "reason": record.reason,
        "actor": record.actor,
        "deleted_at": instant(record.deleted_at),
        "seq": seq,
        "log_id": deletion_id(tid, record.source_version),
    }


def deletion_from_source(source: dict[str, Any]) -> DeletionRecord:
    return DeletionRecord(
        TracingKey(source["agency"], source["record_number"]),
        TracingType(source["type"]),
        source["source_version"],
        source["reason"],
        source["actor"],
        parse_instant(source["deleted_at"]),
    )


def index_settings(shards: int, replicas: int) -> dict[str, Any]:
    # An explicit refresh interval: a shard left without searches for 30 s would otherwise go "search
    # idle" and stop refreshing on its own, and every write waits for a refresh (refresh=wait_for).
    return {"index": {"number_of_shards": shards, "number_of_replicas": replicas, "refresh_interval": "1s"}}
