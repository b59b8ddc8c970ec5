"""Retention of NAC histories (indexer.retention, `dcii retention run`) on real SQLite files, with the
day injected: 15 years minus a day kept, exactly 15 years and 15 years plus a day removed."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from dcii.cli import retention as cli
from dcii.v1 import ingest_pb2, search_pb2, tracing_pb2
from indexer.edit_criteria import check_tracing
from indexer.exc import Unavailable
from indexer.model import (
    ImpersonalTitleDetails,
    ImpersonalTitleKind,
    PartialDate,
    StoredTracing,
    Tracing,
    TracingKey,
    TracingType,
)
from indexer.retention import (
    RETENTION_ACTOR,
    RETENTION_REASON,
    RetentionItem,
    RetentionSchedule,
    due_on,
    plan_retention,
    retention_today,
    run_retention,
)
from indexer.store.base import DeletionRecord, Upsert, WriteOp, WriteOutcome, WriteResult
from indexer.store.sqlite import SqliteStore
from search_service.accreditation import Role
from search_service.convert import tracing_in
from tests import factories as f
from tests.support import ROOT, Index

NOW = dt.datetime(2026, 1, 15, 9, 30, tzinfo=dt.UTC)


def nac(record: str, completed: tuple[int, int, int], *, version: int = 1, ssn: str = "318-52-4471") -> Tracing:
    wire = f.nac_history("DSS", record, version, ssn=ssn)
    done = wire.nac_history.completed_on
    done.year, done.month, done.day = completed
    # Checked as sent at the end of its completion year: one past its retention on NOW's day is refused by
    # the edit criteria, and these tests hold such histories as a store would, to remove them.
    return check_tracing(tracing_in(wire), today=dt.date(completed[0], 12, 31))


def others() -> list[Tracing]:
    """A tracing of every type that never expires by retention, all indexed long ago."""
    file = f.person("NCIS", "NCIS-F-1", year_indexed=1990)
    pending = f.nac_pending("DSS", "DSS-NP-1")
    clearance = f.person("ARMY-CCF", "CCF-CL-1")
    c = clearance.clearance
    c.granted_on.year, c.granted_on.month, c.granted_on.day = 1990, 3, 1
    c.eligibility_level = c.access_level = tracing_pb2.CLEARANCE_LEVEL_SECRET
    c.subject_category = tracing_pb2.SUBJECT_CATEGORY_MILITARY
    title = Tracing(
        TracingKey("NCIS", "NCIS-T-1"),
        1,
        None,
        ImpersonalTitleDetails("ACME ORDNANCE WORKS", ImpersonalTitleKind.ORGANIZATION, "NCIS", "T-1", 1995),
    )
    return [*(check_tracing(tracing_in(w), today=NOW.date()) for w in (file, pending, clearance)), title]


def _open(path: Path) -> SqliteStore:
    return SqliteStore(path, clock=lambda: NOW)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    opened = _open(tmp_path / "index.db")
    try:
        yield opened
    finally:
        opened.close()


def _live(store: SqliteStore) -> set[str]:
    return {stored.tracing.key.record_number for stored in store.iter_all()}


# ---- the rule ----


@pytest.mark.parametrize(
    ("completed", "due"),
    [
        (PartialDate(2010, 3, 1), dt.date(2025, 3, 1)),
        (PartialDate(2010, 12, 31), dt.date(2025, 12, 31)),
        (PartialDate(2008, 2, 29), dt.date(2023, 3, 1)),  # no 29 February in 2023: never early
        (PartialDate(2001, 2, 28), dt.date(2016, 2, 28)),  # a leap year 15 years on changes nothing
        (PartialDate(2010), dt.date(2025, 12, 31)),  # partial: its latest possible day
        (PartialDate(2010, 2), dt.date(2025, 2, 28)),
    ],
)
def test_due_day_is_the_same_calendar_day_15_years_later(completed: PartialDate, due: dt.date) -> None:
    assert due_on(completed) == due


@pytest.mark.parametrize(
    ("completed", "today", "removed"),
    [
        ((2010, 3, 1), dt.date(2025, 2, 28), False),  # 15 years minus a day: kept
        ((2010, 3, 1), dt.date(2025, 3, 1), True),  # exactly 15 years: removed
        ((2010, 3, 1), dt.date(2025, 3, 2), True),  # 15 years plus a day: removed
        ((2008, 2, 29), dt.date(2023, 2, 28), False),
        ((2008, 2, 29), dt.date(2023, 3, 1), True),
    ],
    ids=["15y-1d", "15y", "15y+1d", "leap-day-kept", "leap-day-removed"],
)
def test_retention_at_the_boundary(
    store: SqliteStore, completed: tuple[int, int, int], today: dt.date, removed: bool
) -> None:
    history = nac("DSS-NH-1", completed, version=3)
    store.write([Upsert(history), *(Upsert(t) for t in others())], actor="loader")
    everyone = _live(store)
    expected = (
        [RetentionItem(history.key, TracingType.NAC_HISTORY, PartialDate(*completed), due_on(PartialDate(*completed)))]
        if removed
        else []
    )

    # A dry run lists what would go and changes nothing.
    assert plan_retention(store, today) == expected
    assert run_retention(store, today, dry_run=True) == expected
    assert _live(store) == everyone
    assert store.deletions() == []

    assert run_retention(store, today, dry_run=False) == expected
    assert _live(store) == everyone - {i.key.record_number for i in expected}
    assert store.deletions() == [
        DeletionRecord(history.key, TracingType.NAC_HISTORY, 3, RETENTION_REASON, RETENTION_ACTOR, NOW)
        for _ in expected
    ]
    assert run_retention(store, today, dry_run=False) == []  # nothing left to do
    assert store.check_integrity() == []


def test_nothing_but_nac_histories_ever_expires(store: SqliteStore) -> None:
    store.write([Upsert(t) for t in others()], actor="loader")
    assert run_retention(store, dt.date(2200, 1, 1), dry_run=False, actor="admin") == []
    assert len(_live(store)) == 4
    assert store.deletions() == []


# ---- batches, interruption and races ----


def test_an_interrupted_run_leaves_a_consistent_store_and_the_next_one_finishes(tmp_path: Path) -> None:
    path = tmp_path / "index.db"
    first = _open(path)
    due = [nac(f"DSS-NH-{i}", (2005, 1, 1 + i), ssn=f"318-52-{4400 + i}") for i in range(7)]
    kept = [nac(f"DSS-NH-K{i}", (2015, 1, 1 + i), ssn=f"318-53-{4400 + i}") for i in range(2)]
    first.write([Upsert(t) for t in (*due, *kept)], actor="loader")
    today = dt.date(2021, 1, 1)

    stopped = run_retention(first, today, dry_run=False, batch_size=3, max_batches=1)
    assert [i.key.record_number for i in stopped] == ["DSS-NH-0", "DSS-NH-1", "DSS-NH-2"]  # earliest due first
    first.close()  # the process goes away after one batch

    second = _open(path)
    try:
        assert second.check_integrity() == []
        assert _live(second) == {t.key.record_number for t in (*due[3:], *kept)}
        assert len(plan_retention(second, today)) == 4
        rest = run_retention(second, today, dry_run=False, batch_size=3)
        assert [i.key.record_number for i in rest] == [f"DSS-NH-{i}" for i in range(3, 7)]
        assert run_retention(second, today, dry_run=False, batch_size=3) == []
        assert _live(second) == {t.key.record_number for t in kept}
        log = second.deletions()
        assert [r.key.record_number for r in log] == [f"DSS-NH-{i}" for i in range(7)]
        assert {(r.reason, r.actor, r.deleted_at) for r in log} == {(RETENTION_REASON, RETENTION_ACTOR, NOW)}
    finally:
        second.close()


class _AgencyWritesBetweenPlanAndDelete(SqliteStore):
    """The real store, with the owning agency's update landing just after retention has read a history."""

    update: Tracing | None = None

    def get(self, key: TracingKey) -> StoredTracing | None:
        found = super().get(key)
        if self.update is not None and key == self.update.key:
            update, self.update = self.update, None
            assert self.write([Upsert(update)], actor="DSS")[0].outcome is WriteOutcome.APPLIED
        return found


def test_a_history_updated_after_planning_is_not_removed_on_its_old_date(tmp_path: Path) -> None:
    store = _AgencyWritesBetweenPlanAndDelete(tmp_path / "index.db", clock=lambda: NOW)
    try:
        store.write(
            [Upsert(nac("DSS-NH-1", (2005, 1, 1))), Upsert(nac("DSS-NH-2", (2005, 2, 1), ssn="212-45-6789"))], actor="x"
        )
        store.update = nac("DSS-NH-1", (2019, 1, 1), version=2)  # a new completion: due in 2034
        removed = run_retention(store, dt.date(2021, 1, 1), dry_run=False)
        assert [i.key.record_number for i in removed] == ["DSS-NH-2"]
        kept = store.get(TracingKey("DSS", "DSS-NH-1"))
        assert kept is not None
        assert kept.tracing.source_version == 2
        assert [r.key.record_number for r in store.deletions()] == ["DSS-NH-2"]
    finally:
        store.close()


def _first_run(schedule: RetentionSchedule) -> float:
    """Start the schedule, wait (20 s at most) for its first completed run, stop it: how long stopping took."""
    schedule.start()
    try:
        deadline = time.monotonic() + 20
        while schedule.runs < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        started = time.monotonic()
        schedule.stop()
    return time.monotonic() - started


def test_the_schedule_runs_retention_inside_a_process_and_stops_promptly(store: SqliteStore) -> None:
    store.write(
        [Upsert(nac("DSS-NH-1", (2005, 1, 1))), Upsert(nac("DSS-NH-2", (2015, 1, 1), ssn="212-45-6789"))], actor="x"
    )
    schedule = RetentionSchedule(store, lambda: dt.date(2021, 1, 1), first_delay=0, interval=3600, batch_size=1)
    assert _first_run(schedule) < 5  # stopping does not wait out the hour
    assert schedule.runs == 1
    assert _live(store) == {"DSS-NH-2"}
    assert [(r.key.record_number, r.actor) for r in store.deletions()] == [("DSS-NH-1", RETENTION_ACTOR)]


class _FailsOnce(SqliteStore):
    """A store whose first write fails (a full disk, a lock held too long), then recovers."""

    failed = False

    def write(self, ops: Sequence[WriteOp], *, actor: str) -> list[WriteResult]:
        if not self.failed:
            self.failed = True
            raise Unavailable("the store cannot be written")
        return super().write(ops, actor=actor)


def test_a_failed_scheduled_run_is_tried_again_soon_not_a_day_later(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The retention review: a failed daily run waited a whole interval, leaving that day's due histories
    indexed another day, and counted as a completed run."""
    store = _FailsOnce(tmp_path / "index.db", clock=lambda: NOW)
    try:
        store.failed = True
        store.write([Upsert(nac("DSS-NH-1", (2005, 1, 1)))], actor="x")
        store.failed = False
        schedule = RetentionSchedule(store, lambda: dt.date(2021, 1, 1), first_delay=0, interval=3600, retry_after=0.1)
        _first_run(schedule)
        assert (schedule.failures, schedule.runs) == (1, 1)
        [failed] = [r for r in caplog.records if r.levelname == "ERROR"]
        assert failed.getMessage() == "retention run failed; trying again in 0.1 s" and failed.__dict__["removed"] == 0
        assert _live(store) == set()
    finally:
        store.close()


def test_the_server_runs_retention_as_of_the_day_begun_everywhere(index: Index) -> None:
    assert index.running is not None and index.running.retention is not None
    assert index.running.retention._today is retention_today  # not UTC's date, which the rest of the server keeps


def test_retention_acts_as_of_the_day_begun_everywhere() -> None:
    """At 19:30 in New York on 28 February, UTC's date is 1 March: a history due then went a day early."""
    assert retention_today(dt.datetime(2027, 3, 1, 0, 30, tzinfo=dt.UTC)) == dt.date(2027, 2, 28)
    assert retention_today(dt.datetime(2027, 3, 1, 11, 59, tzinfo=dt.UTC)) == dt.date(2027, 2, 28)
    assert retention_today(dt.datetime(2027, 3, 1, 12, 0, tzinfo=dt.UTC)) == dt.date(2027, 3, 1)


# ---- the command ----

MARK = cli.MARKING


def test_cli_dry_run_lists_and_removes_nothing_then_a_run_removes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    seeded = _open(data / "index.db")
    seeded.write(
        [Upsert(nac("DSS-NH-1", (2010, 3, 1))), Upsert(nac("DSS-NH-2", (2010, 3, 2), ssn="212-45-6789"))], actor="x"
    )
    seeded.close()

    cli.main(["retention", "run", "--data", str(data), "--dry-run", "--today", "2025-03-01"])
    lines = [line.strip() for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert lines[0] == MARK
    assert lines[-2:] == [MARK, "1 would be removed; dry run: nothing removed"]
    table = "\n".join(lines)
    assert "DSS/DSS-NH-1" in table
    assert "NAC_HISTORY" in table
    assert "2010-03-01" in table
    assert "2025-03-01" in table
    assert "DSS-NH-2" not in table  # due a day later

    cli.main(["retention", "run", "--data", str(data), "--today", "2025-03-02"])
    lines = [line.strip() for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert lines[0] == MARK
    assert lines[-2:] == [MARK, "2 removed"]
    after = SqliteStore(data / "index.db")
    try:
        assert after.count() == 0
        # Who ran it at the console (the retention review: the log said "retention" as for the server's runs).
        by = f"{RETENTION_ACTOR} cli:"
        assert [(r.key.record_number, r.reason, r.actor[: len(by)]) for r in after.deletions()] == [
            ("DSS-NH-1", RETENTION_REASON, by),
            ("DSS-NH-2", RETENTION_REASON, by),
        ]
    finally:
        after.close()


def test_cli_refuses_a_bad_day_and_a_missing_index(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as bad_day:
        cli.main(["retention", "run", "--data", str(tmp_path), "--today", "2025-02-30"])
    assert bad_day.value.code == 2
    assert "not a date" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="no index at"):
        cli.main(["retention", "run", "--data", str(tmp_path / "nowhere")])
    assert not (tmp_path / "nowhere").exists()  # a typo never creates an empty index


def test_cli_removes_nothing_as_of_a_day_to_come(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # `--today 2099-01-01` (a typo for 2029) removed every NAC history years early, each logged as due.
    data = tmp_path / "data"
    seeded = _open(data / "index.db")
    seeded.write([Upsert(nac("DSS-NH-1", (2020, 6, 1)))], actor="x")
    seeded.close()
    later = ["retention", "run", "--data", str(data), "--today", "2099-01-01"]
    with pytest.raises(SystemExit, match="only a --dry-run may look ahead"):
        cli.main(later)
    cli.main([*later, "--dry-run"])  # what will go then: listed, nothing removed
    assert capsys.readouterr().out.rstrip().endswith("1 would be removed; dry run: nothing removed")
    after = SqliteStore(data / "index.db")
    try:
        assert after.count() == 1 and after.deletions() == []
    finally:
        after.close()


def test_cli_runs_beside_a_live_server_that_keeps_ingesting(index: Index) -> None:
    """The command is its own process with its own writer; the server's writer shares the file through
    SQLite's lock. Ingest goes on throughout and loses nothing; the server sees the removals at once."""
    assert index.running is not None
    ncis = index.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER])
    querier = index.client("CCF-TERM-01", "ARMY-CCF", [Role.QUERIER])
    histories = []
    for i in range(40):
        wire = f.nac_history("DSS", f"DSS-NH-{i:03d}", 1, surname="Okafor", ssn=f"318-52-{4400 + i}")
        wire.nac_history.completed_on.year, wire.nac_history.completed_on.month = 2010, 3
        histories.append(check_tracing(tracing_in(wire), today=dt.date(2010, 12, 31)))
    # Held since 2010, as a store that predates their retention holds them: today the edit criteria refuse a
    # history past its retention, so they are written to the server's store directly, not ingested.
    written = index.running.store.write([Upsert(h) for h in histories], actor="DSS-HQ-01/-")
    assert {r.outcome for r in written} == {WriteOutcome.APPLIED}

    done = threading.Event()
    outcomes: list[int] = []
    rounds = [0]

    def ingest_until_done() -> None:
        n = 0
        while not done.is_set() or rounds[0] < 2:
            batch = [f.person("NCIS", f"NCIS-{n + i:06d}") for i in range(100)]
            outcomes.extend(r.outcome for r in ncis.upsert(*batch))
            n += 100
            rounds[0] += 1

    streamer = threading.Thread(target=ingest_until_done)
    streamer.start()
    try:
        command = subprocess.run(
            [
                sys.executable,
                "-m",
                "dcii.cli.retention",
                "retention",
                "run",
                "--data",
                str(index.data_dir),
                *(["--store", index.store_url] if index.store_url else []),
                "--today",
                "2025-06-01",
            ],
            cwd=ROOT,
            text=True,
            capture_output=True,
            timeout=120,
            check=False,
        )
    finally:
        done.set()
        streamer.join(timeout=120)
    assert command.returncode == 0, command.stderr
    assert command.stdout.rstrip().endswith("40 removed")
    assert rounds[0] >= 2
    assert set(outcomes) == {ingest_pb2.INGEST_OUTCOME_APPLIED}

    server_store = index.running.store
    assert server_store.count() == len(outcomes)  # the NCIS files, every one; no NAC history left
    response = querier.search(
        mode=search_pb2.SEARCH_MODE_NAME_ONLY, name={"surname": "Okafor", "given_name": "Harold"}, page_size=100
    )
    assert list(response.hits) == []
    log = server_store.deletions()
    assert len(log) == 40
    assert {(r.type, r.reason, r.actor.split(" ")[0]) for r in log} == {
        (TracingType.NAC_HISTORY, RETENTION_REASON, RETENTION_ACTOR)
    }
    assert all(r.actor.startswith(f"{RETENTION_ACTOR} cli:") for r in log)  # the command's, with who ran it
    assert server_store.check_integrity() == []
