"""Privacy Act deadlines in the privacy office's time zone (privacy review, F8): the day of receipt and the end of
the last working day are the office's (setting `privacy_time_zone`, default America/New_York), the instants stay
aware UTC. Tables of receipts and their deadlines, the register's overdue list with an injected clock, the real
server over mutual TLS, and the setting's wiring (CLI, ServerConfig, RUNBOOK)."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from dcii.cli import privacy as privacy_cli
from dcii.cli.main import parser, serve_config
from dcii.v1 import privacy_pb2, privacy_pb2_grpc
from search_service.accreditation import Purpose, Role
from search_service.privacy_days import DEFAULT_TIME_ZONE, deadline, office_zone
from search_service.privacy_requests import PrivacyRequests, RequestKind
from search_service.server import ServerConfig
from tests.support import ROOT, make_index

UTC = dt.UTC
EASTERN, HAWAII = ZoneInfo("America/New_York"), ZoneInfo("Pacific/Honolulu")


def at(zone: dt.tzinfo, year: int, month: int, day: int, hour: int, minute: int) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=zone)


def end_of(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    """23:59:59 of `day` in `zone`, as UTC: what a deadline on that day must be."""
    return dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=zone).astimezone(UTC)


# (received, zone, last day to acknowledge, last day to answer), in the office's calendar.
DEADLINES = [
    # Monday 20:30 Eastern is Tuesday 01:30 UTC: counted from the Monday (UTC gave a working day more).
    (at(EASTERN, 2026, 3, 2, 20, 30), "America/New_York", dt.date(2026, 3, 16), dt.date(2026, 4, 13)),
    (at(EASTERN, 2026, 3, 2, 9, 0), "America/New_York", dt.date(2026, 3, 16), dt.date(2026, 4, 13)),
    # Thanksgiving evening Eastern is Friday in UTC: Friday is the first working day counted, not the day of receipt.
    (at(EASTERN, 2026, 11, 26, 21, 0), "America/New_York", dt.date(2026, 12, 10), dt.date(2027, 1, 11)),
    # Friday morning Eastern, deadlines in EST (UTC-5): they end 04:59:59 UTC the next day.
    (at(UTC, 2026, 11, 20, 15, 0), "America/New_York", dt.date(2026, 12, 7), dt.date(2027, 1, 6)),
    # Friday 14:00 in Honolulu is Saturday in UTC; Columbus Day (12 October) is not counted.
    (at(HAWAII, 2026, 10, 9, 14, 0), "Pacific/Honolulu", dt.date(2026, 10, 26), dt.date(2026, 11, 24)),
    # An office on UTC counts as before.
    (at(EASTERN, 2026, 3, 2, 20, 30), "UTC", dt.date(2026, 3, 17), dt.date(2026, 4, 14)),
]


@pytest.mark.parametrize(("received", "zone", "acknowledge_day", "respond_day"), DEADLINES)
def test_deadlines_count_the_office_s_working_days(
    received: dt.datetime, zone: str, acknowledge_day: dt.date, respond_day: dt.date
) -> None:
    local = office_zone(zone)
    acknowledge_by, respond_by = deadline(received, 10, zone), deadline(received, 30, local)
    assert (acknowledge_by, respond_by) == (end_of(acknowledge_day, local), end_of(respond_day, local))
    for moment in (acknowledge_by, respond_by):
        assert moment.tzinfo is UTC  # stored and returned as aware UTC
        assert moment.astimezone(local).time() == dt.time(23, 59, 59)


def test_the_default_zone_is_eastern() -> None:
    received = at(EASTERN, 2026, 3, 2, 20, 30)
    assert DEFAULT_TIME_ZONE == "America/New_York" == ServerConfig(Path("d"), Path("p")).privacy_time_zone
    assert deadline(received, 10) == dt.datetime(2026, 3, 17, 3, 59, 59, tzinfo=UTC)  # Monday 16th, EDT
    assert deadline(received.replace(tzinfo=None) + dt.timedelta(hours=5), 10) == deadline(received, 10)  # naive: UTC


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "", "America", "../etc/passwd", "America/New_York "])
def test_an_unknown_zone_is_refused(zone: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="time zone"):
        office_zone(zone)
    with pytest.raises(ValueError, match="time zone"):
        ServerConfig(tmp_path / "data", tmp_path / "pki", privacy_time_zone=zone)
    with pytest.raises(ValueError, match="time zone"):
        PrivacyRequests(tmp_path / "privacy.db", time_zone=zone)
    assert not (tmp_path / "privacy.db").exists()


def test_a_request_is_overdue_after_the_office_s_last_working_day(tmp_path: Path) -> None:
    now = [dt.datetime(2026, 3, 3, 1, 30, tzinfo=UTC)]  # Monday 2 March, 20:30 Eastern
    register = PrivacyRequests(tmp_path / "privacy.db", clock=lambda: now[0], time_zone="America/New_York")
    try:
        opened = register.open_request("PA-EVE", RequestKind.ACCESS, now[0])
        assert opened.acknowledge_by == dt.datetime(2026, 3, 17, 3, 59, 59, tzinfo=UTC)
        stored = register.request("PA-EVE")
        assert stored is not None and stored.acknowledge_by == opened.acknowledge_by
        assert stored.acknowledge_by.utcoffset() == dt.timedelta(0)

        def overdue() -> list[str]:
            return [r.request_number for r in register.list_requests(overdue_only=True)]

        now[0] = dt.datetime(2026, 3, 16, 23, 59, 59, tzinfo=EASTERN)  # the last moment of the tenth working day
        assert overdue() == []
        now[0] += dt.timedelta(seconds=1)  # Tuesday 00:00 Eastern, 04:00 UTC
        assert overdue() == ["PA-EVE"]
    finally:
        register.close()


@pytest.mark.parametrize(
    ("setting", "received", "acknowledge_by"),
    [
        ({}, at(EASTERN, 2026, 3, 2, 20, 30), dt.datetime(2026, 3, 17, 3, 59, 59, tzinfo=UTC)),
        (
            {"privacy_time_zone": "Pacific/Honolulu"},
            at(HAWAII, 2026, 10, 9, 14, 0),
            dt.datetime(2026, 10, 27, 9, 59, 59, tzinfo=UTC),
        ),
    ],
)
def test_the_server_sets_deadlines_in_its_configured_zone(
    tmp_path: Path, setting: dict[str, str], received: dt.datetime, acknowledge_by: dt.datetime
) -> None:
    index = make_index(tmp_path)
    index.start(**setting)
    try:
        officer = index.client("DSS-PRIVACY", "DSS", [Role.PRIVACY_OFFICER], purposes=[Purpose.PRIVACY_ACT_REQUEST])
        stub = privacy_pb2_grpc.PrivacyServiceStub(officer.channel)
        request = privacy_pb2.PrivacyRequest(request_number="PA-26-001", kind=privacy_pb2.PRIVACY_REQUEST_KIND_ACCESS)
        request.received_at.FromDatetime(received.astimezone(UTC))
        opened = stub.OpenPrivacyRequest(request, metadata=officer.metadata, timeout=10)
        assert opened.acknowledge_by.ToDatetime(UTC) == acknowledge_by
    finally:
        index.stop()


# ---- the setting's wiring ----


def _serve(*options: str) -> ServerConfig:
    return serve_config(parser().parse_args(["serve", "--data", "d", "--pki", "p", *options]))


def test_the_setting_reaches_the_server_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DCII_PRIVACY_TIME_ZONE", raising=False)
    default = {f.name: f.default for f in dataclasses.fields(ServerConfig)}["privacy_time_zone"]
    assert _serve().privacy_time_zone == default == DEFAULT_TIME_ZONE
    assert _serve("--privacy-time-zone", "America/Chicago").privacy_time_zone == "America/Chicago"
    monkeypatch.setenv("DCII_PRIVACY_TIME_ZONE", "Pacific/Honolulu")
    assert _serve().privacy_time_zone == "Pacific/Honolulu"
    assert _serve("--privacy-time-zone=UTC").privacy_time_zone == "UTC"


def test_an_unknown_zone_is_refused_by_the_parser(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _serve("--privacy-time-zone=Eastern")
    assert "--privacy-time-zone" in capsys.readouterr().err


def test_the_setting_is_documented_with_its_default() -> None:
    serve = argparse.ArgumentParser()
    privacy_cli.add_time_zone_option(serve)
    (option,) = [a for a in serve._actions if a.dest == "privacy_time_zone"]
    assert f"(default {DEFAULT_TIME_ZONE};" in (option.help or "")
    runbook = (ROOT / "docs" / "RUNBOOK.md").read_text()
    for name in ("`privacy_time_zone`", "--privacy-time-zone", "DCII_PRIVACY_TIME_ZONE", f"`{DEFAULT_TIME_ZONE}`"):
        assert name in runbook, f"{name} is not in the runbook"


def test_dcii_privacy_lists_the_office_s_days(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DCII_PRIVACY_TIME_ZONE", raising=False)
    register = PrivacyRequests(tmp_path / "privacy.db")
    try:
        register.open_request("PA-EVE", RequestKind.ACCESS, at(EASTERN, 2026, 3, 2, 20, 30))
    finally:
        register.close()
    monkeypatch.setattr(privacy_cli.console, "width", 240)  # one line a row
    privacy_cli.main(["requests", "list", "--data", str(tmp_path)])
    (row,) = [line for line in capsys.readouterr().out.splitlines() if "PA-EVE" in line]
    # received Monday 2 March, acknowledge by Monday 16 March, respond by Monday 13 April (in UTC: 3, 17 and 14)
    assert "2026-03-02" in row and "2026-03-16" in row and "2026-04-13" in row
    assert "2026-03-03" not in row and "2026-03-17" not in row
