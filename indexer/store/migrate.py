"""Copy an index from one store to another (`dcii index migrate`): the embedded store into OpenSearch
when one machine is no longer enough, or back.

Everything that makes the index what it is goes across, through TracingStore.restore, so no lifecycle
rule runs again (a favorable NAC history copied before an earlier one would otherwise delete it):
- every live tracing with its source version, the time it was indexed and its statement of dispute;
- every tombstone, so that a connector replaying an old upsert cannot bring a deleted record back, with the
  time it was written (a completion onto the key compares it with its old record's: `Replace`);
- the deletion log, entry for entry.

The copy reads the source while it may still be written: run it with ingest stopped (or run it again:
a target already holding a version keeps it, with the statement of dispute it holds, and a log entry is not
added twice). A target that cannot hold a value refuses its batch before writing any of it (OpenSearch: a
keyword over 32,766 bytes), and the copy stops there. Progress is reported after each batch as (phase, done,
total).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import TypeVar

from indexer.store.base import TracingStore

Progress = Callable[[str, int, int], None]
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class MigrationReport:
    tracings: int
    tombstones: int
    deletions: int
    target_count: int


def _batches(items: Iterable[_T], size: int) -> Iterator[list[_T]]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


def migrate(
    source: TracingStore, target: TracingStore, *, batch: int = 1000, progress: Progress | None = None
) -> MigrationReport:
    """Copy `source` into `target` (see the module's docstring) and report what was copied."""
    if batch < 1:
        raise ValueError("batch must be at least 1")
    report = progress or (lambda phase, done, total: None)
    total = source.count()
    copied = 0
    report("tracings", 0, total)
    for part in _batches(source.iter_all(batch=batch), batch):
        target.restore(part)
        copied += len(part)
        report("tracings", copied, max(total, copied))
    tombstones = 0
    for tombs in _batches(source.iter_tombstones(batch=batch), batch):
        target.restore((), tombs)
        tombstones += len(tombs)
        report("tombstones", tombstones, tombstones)
    logged = source.deletions()
    done = 0
    for records in _batches(logged, batch):
        target.restore((), (), records)
        done += len(records)
        report("deletion log", done, len(logged))
    return MigrationReport(copied, tombstones, len(logged), target.count())
