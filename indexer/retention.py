"""Retention of NAC histories (seed 002, DOMAIN.md "Lifecycle and retention").

A NAC history is deleted automatically 15 years after the NAC's completion date. Nothing else expires
here: clearance and file tracings are deleted by their owning agency, impersonal titles never.

The rule, exactly:
- A history completed on day D falls due on the same calendar day 15 years later and is removed by any
  run on or after that day: completed 2010-03-01, still held on 2025-02-28, removed on 2025-03-01.
- A completion on 29 February falls due on 1 March (the anniversary does not exist in most years; 1
  March is the first day on which 15 full years have certainly passed, so a record is never removed
  early).
- A partial completion date (the edit criteria refuse one, but a store may hold old data) counts as its
  latest possible day: a year alone as 31 December, a year and month as the month's last day.
- "On or after that day" where the index is used: the server and `dcii retention run` act as of the day
  that has begun everywhere (`retention_today`, the date at UTC-12), not UTC's. At 19:30 in New York on
  28 February, UTC's date is 1 March already, and a history due on 1 March went a day early (a review of
  the time duties). A history is removed up to a day after its due day in UTC, never before it anywhere.

`run_retention` deletes through the store's normal write path, in batches, each batch one durable write.
A run stopped at any point (crash, kill, `max_batches`) leaves a consistent store; running again
finishes the work, since what was removed is no longer due. `RetentionSchedule` runs it inside the
server.
"""

from __future__ import annotations

import calendar
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from indexer.model import NacHistoryDetails, PartialDate, StoredTracing, TracingKey, TracingType
from indexer.store.base import Delete, TracingStore, WriteOutcome

log = logging.getLogger(__name__)

RETENTION_YEARS = 15
# A failed scheduled run is tried again this soon, not a whole interval later (the due histories of that
# day would otherwise stay indexed another day).
RETRY_AFTER_FAILURE = 900.0
RETENTION_REASON = "RETENTION: 15 years after NAC completion"
RETENTION_ACTOR = "retention"
DEFAULT_BATCH = 500
SCHEDULED_BATCH = 100  # the server's runs: a smaller hold of the writer between ingest writes

# How many keys a plan may list at once (a dry run lists every due history).
_PLAN_ALL = 10_000_000


def retention_today(now: dt.datetime | None = None) -> dt.date:
    """The day retention acts as of: the date at UTC-12, the last place on Earth a day begins, so that a
    history is removed only once its due day has begun for every office (the module's docstring)."""
    moment = now if now is not None else dt.datetime.now(dt.UTC)
    return (moment.astimezone(dt.UTC) - dt.timedelta(hours=12)).date()


@dataclass(frozen=True, slots=True)
class RetentionItem:
    """A NAC history that retention removes (or, in a dry run, would remove)."""

    key: TracingKey
    type: TracingType
    completed_on: PartialDate
    due_on: dt.date


def latest_day(value: PartialDate) -> dt.date:
    """The last day a (possibly partial) date can mean. Raises ValueError when it is not a real date."""
    if value.month == 0:
        return dt.date(value.year, 12, 31)
    if value.day == 0:
        return dt.date(value.year, value.month, calendar.monthrange(value.year, value.month)[1])
    return dt.date(value.year, value.month, value.day)


def earliest_day(value: PartialDate) -> dt.date:
    """The first day a (possibly partial) date can mean. Raises ValueError when it is not a real date."""
    return dt.date(value.year, value.month or 1, value.day or 1)


def add_years(day: dt.date, years: int) -> dt.date:
    """The same calendar day `years` later; 29 February becomes 1 March when that year has none."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a common year
        return dt.date(day.year + years, 3, 1)


def due_on(completed_on: PartialDate) -> dt.date:
    """The first day on which a NAC history completed on `completed_on` is removed."""
    return add_years(latest_day(completed_on), RETENTION_YEARS)


def _item(stored: StoredTracing | None, today: dt.date) -> tuple[RetentionItem, int] | None:
    """The retention item for a stored tracing, with the version seen, if it is a NAC history due today."""
    if stored is None:
        return None
    tracing = stored.tracing
    details = tracing.details
    if not isinstance(details, NacHistoryDetails) or details.completed_on is None:
        return None  # only NAC histories expire; the store should never have offered anything else
    try:
        due = due_on(details.completed_on)
    except ValueError:
        return None
    if due > today:
        return None
    return RetentionItem(tracing.key, TracingType.NAC_HISTORY, details.completed_on, due), tracing.source_version


def _plan(store: TracingStore, today: dt.date, limit: int) -> list[tuple[RetentionItem, int]]:
    keys = store.due_for_retention(today + dt.timedelta(days=1), limit)
    return [found for found in (_item(store.get(key), today) for key in keys) if found is not None]


def plan_retention(store: TracingStore, today: dt.date) -> list[RetentionItem]:
    """Every NAC history that a retention run on `today` would remove, in due order. Changes nothing."""
    return [item for item, _ in _plan(store, today, _PLAN_ALL)]


def run_retention(
    store: TracingStore,
    today: dt.date,
    *,
    dry_run: bool,
    actor: str = RETENTION_ACTOR,
    batch_size: int = DEFAULT_BATCH,
    max_batches: int | None = None,
    log_run: bool = True,
) -> list[RetentionItem]:
    """Remove the NAC histories due on `today` (a dry run only lists them); returns what was removed.

    Each batch is one write of `Delete` operations through the store's ordinary write path, so each
    removal is atomic, durable when the write returns, and in the deletion log (reason RETENTION_REASON,
    by `actor`). A delete names the source version read when it was planned (a compare-and-delete: the
    log records the same version a version-0 "index's own" delete would), so that a history its agency
    updates between planning and deleting is never removed on the strength of its old completion date.
    `max_batches` stops early; the next run carries on where this one stopped.
    """
    if dry_run:
        return plan_retention(store, today)
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    removed: list[RetentionItem] = []
    batches = 0
    while max_batches is None or batches < max_batches:
        planned = _plan(store, today, batch_size)
        if not planned:
            break
        results = store.write([Delete(item.key, version, RETENTION_REASON) for item, version in planned], actor=actor)
        applied = [item for (item, _), r in zip(planned, results, strict=True) if r.outcome is WriteOutcome.APPLIED]
        removed += applied
        batches += 1
        if not applied:
            # Every one changed under us (updated or deleted by its agency): leave them to the next run.
            log.warning("retention made no progress in a batch; stopping", extra={"planned": len(planned)})
            break
    if log_run:
        log.info("retention run", extra={"removed": len(removed), "batches": batches, "today": today.isoformat()})
    return removed


class RetentionSchedule:
    """Retention inside the server: a daemon thread that runs retention `first_delay` seconds after
    `start()` and then every `interval` seconds, one batch at a time so that `stop()` is prompt.
    A failed run is logged and tried again `retry_after` seconds later (a whole interval would leave that
    day's due histories indexed another day); it never takes the server down."""

    def __init__(
        self,
        store: TracingStore,
        today: Callable[[], dt.date],
        *,
        interval: float = 24 * 3600.0,
        first_delay: float = 60.0,
        batch_size: int = SCHEDULED_BATCH,
        actor: str = RETENTION_ACTOR,
        retry_after: float = RETRY_AFTER_FAILURE,
    ) -> None:
        self._store, self._today = store, today
        self._interval, self._first_delay = interval, first_delay
        self._retry_after = min(retry_after, interval)
        self._batch_size, self._actor = batch_size, actor
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.runs = 0  # completed runs (for health checks and tests)
        self.failures = 0  # runs that failed (each tried again after RETRY_AFTER_FAILURE)
        self._removed: list[RetentionItem] = []  # by the current (or last) run

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("retention schedule already started")
        self._thread = threading.Thread(target=self._loop, name="retention", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop and wait for a run in progress to finish its current batch. Call before closing the store."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def run_once(self) -> list[RetentionItem]:
        """One full run, batch by batch until nothing is due or stop() is called, resting after each batch
        as long as it took: each batch holds the store's single writer, and a backlog (41,848 histories of
        a 200,000-tracing store, all due at once) took a concurrent ingest write from 1.7 to 52 ms p50 for
        the run's 23 s (the retention review). Logged once, when done."""
        removed = self._removed = []  # kept on self: a run that fails part way still says what it removed
        today, batches = self._today(), 0
        while not self._stop.is_set():
            started = time.monotonic()
            batch = run_retention(
                self._store, today, dry_run=False, actor=self._actor, batch_size=self._batch_size, max_batches=1,
                log_run=False,
            )  # fmt: skip
            removed += batch
            if not batch:
                break
            batches += 1
            self._stop.wait(time.monotonic() - started)
        log.info("retention run", extra={"removed": len(removed), "batches": batches, "today": today.isoformat()})
        return removed

    def _loop(self) -> None:
        delay = self._first_delay
        while not self._stop.wait(delay):
            try:
                self.run_once()
            except Exception:
                self.failures += 1
                done = {"removed": len(self._removed)}  # before the failure: each is in the deletion log
                log.exception("retention run failed; trying again in %.1f s", self._retry_after, extra=done)
                delay = self._retry_after
                continue
            self.runs += 1
            delay = self._interval
