"""Privacy Act request deadlines (issue 4): 10 and 30 working days, federal holidays observed, in the
office's time zone; over the wire and the CLI. Access requests: tests/test_privacy.py."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import grpc
import pytest

from dcii.cli import privacy as privacy_cli
from dcii.v1 import privacy_pb2
from search_service.errors import field_violations
from search_service.privacy_days import add_working_days, deadline, federal_holidays
from search_service.privacy_requests import PrivacyRequests, RequestKind
from tests.support import Index
from tests.test_privacy import (
    _ask,
    _audit,
    _load_person,
    _officer,
)


def test_federal_holidays_with_observed_dates() -> None:
    assert len(federal_holidays(2026)) == 11
    assert dt.date(2026, 11, 26) in federal_holidays(2026)  # Thanksgiving
    assert dt.date(2026, 7, 3) in federal_holidays(2026)  # 4 July 2026 is a Saturday
    assert dt.date(2027, 6, 18) in federal_holidays(2027)  # Juneteenth 2027 is a Saturday
    assert dt.date(2027, 12, 31) in federal_holidays(2027)  # New Year's Day 2028 is a Saturday
    assert dt.date(2027, 12, 24) in federal_holidays(2027)  # Christmas 2027 is a Saturday
    assert len(federal_holidays(2028)) == 10  # its New Year's Day was observed in 2027
    assert dt.date(2023, 1, 2) in federal_holidays(2023)  # 1 January 2023 is a Sunday
    assert dt.date(2020, 6, 19) not in federal_holidays(2020)  # Juneteenth from 2021


def test_working_days_skip_weekends_and_holidays() -> None:
    friday = dt.date(2026, 11, 20)
    assert add_working_days(friday, 1) == dt.date(2026, 11, 23)  # over the weekend
    assert add_working_days(friday, 4) == dt.date(2026, 11, 27)  # over Thanksgiving
    assert add_working_days(friday, 10) == dt.date(2026, 12, 7)
    assert add_working_days(friday, 30) == dt.date(2027, 1, 6)  # over Christmas and New Year's Day
    assert add_working_days(dt.date(2026, 11, 21), 10) == dt.date(2026, 12, 7)  # received on a Saturday


def test_open_request_sets_deadlines_and_refuses_a_duplicate(index: Index) -> None:
    officer, privacy = _officer(index)
    request = privacy_pb2.PrivacyRequest(request_number="PA-26-010", kind=privacy_pb2.PRIVACY_REQUEST_KIND_AMENDMENT)
    request.received_at.FromDatetime(dt.datetime(2026, 11, 20, 15, 0, tzinfo=dt.UTC))
    opened = privacy.OpenPrivacyRequest(request, metadata=officer.metadata, timeout=10)
    # The end of the 10th and 30th working days in the privacy office's zone (New York: UTC-5 in winter).
    assert opened.acknowledge_by.ToDatetime(dt.UTC) == dt.datetime(2026, 12, 8, 4, 59, 59, tzinfo=dt.UTC)
    assert opened.respond_by.ToDatetime(dt.UTC) == dt.datetime(2027, 1, 7, 4, 59, 59, tzinfo=dt.UTC)
    assert not opened.HasField("acknowledged_at") and not opened.HasField("responded_at")
    with pytest.raises(grpc.RpcError) as duplicate:
        privacy.OpenPrivacyRequest(request, metadata=officer.metadata, timeout=10)
    assert duplicate.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.RpcError) as bad:
        privacy.OpenPrivacyRequest(privacy_pb2.PrivacyRequest(request_number="PA 1"), metadata=officer.metadata)
    assert {field for field, _ in field_violations(bad.value)} == {"request_number", "kind", "received_at"}
    # Received before the Privacy Act took effect (deadlines overdue for ever), and fields only the index sets.
    wrong = privacy_pb2.PrivacyRequest(request_number="PA-26-011", kind=privacy_pb2.PRIVACY_REQUEST_KIND_ACCESS)
    wrong.received_at.FromDatetime(dt.datetime(1975, 9, 26, tzinfo=dt.UTC))
    wrong.acknowledged_at.FromDatetime(dt.datetime(2026, 11, 20, tzinfo=dt.UTC))
    wrong.respond_by.FromDatetime(dt.datetime(2027, 1, 1, tzinfo=dt.UTC))
    with pytest.raises(grpc.RpcError) as bad:
        privacy.OpenPrivacyRequest(wrong, metadata=officer.metadata)
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {field for field, _ in field_violations(bad.value)} == {"received_at", "acknowledged_at", "respond_by"}
    wrong.ClearField("acknowledged_at")
    wrong.ClearField("respond_by")
    wrong.received_at.FromDatetime(dt.datetime(1975, 9, 27, tzinfo=dt.UTC))
    assert privacy.OpenPrivacyRequest(wrong, metadata=officer.metadata).request_number == "PA-26-011"


def test_overdue_with_an_injected_clock(tmp_path: Path) -> None:
    now = [dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)]
    register = PrivacyRequests(tmp_path / "privacy.db", clock=lambda: now[0])
    try:
        register.open_request("PA-1", RequestKind.ACCESS, now[0])
        register.open_request("PA-2", RequestKind.AMENDMENT, now[0] + dt.timedelta(days=10))

        def overdue() -> list[str]:
            return [r.request_number for r in register.list_requests(overdue_only=True)]

        now[0] = deadline(now[0], 10)  # the last moment of the tenth working day
        assert overdue() == []
        now[0] += dt.timedelta(seconds=1)
        assert overdue() == ["PA-1"]  # not acknowledged in time
        register.acknowledge("PA-1")
        assert overdue() == []
        now[0] = dt.datetime(2027, 1, 7, 5, 0, tzinfo=dt.UTC)  # past midnight of 6 January in New York
        # PA-1 acknowledged but not answered within 30 working days; PA-2 (received 30 Nov) not acknowledged
        assert overdue() == ["PA-1", "PA-2"]
        register.respond("PA-1")
        assert overdue() == ["PA-2"]
        register.respond("PA-2")  # an answer acknowledges too
        assert overdue() == []
        assert [r.request_number for r in register.list_requests()] == ["PA-1", "PA-2"]
        # Done late, so not overdue, but the deadlines were missed: the office reports them (it had no mark).
        late = {r.request_number: r.late(now[0]) for r in register.list_requests(late_only=True)}
        assert late == {"PA-1": ("acknowledgement", "response"), "PA-2": ("acknowledgement",)}
        register.open_request("PA-3", RequestKind.ACCESS, now[0])
        register.respond("PA-3")  # answered the day it came
        assert [r.request_number for r in register.list_requests(late_only=True)] == ["PA-1", "PA-2"]
        assert register.list_requests(overdue_only=True, late_only=True) == []
    finally:
        register.close()


def test_a_duty_done_within_the_deadline_s_last_second_is_on_time(tmp_path: Path) -> None:
    """The deadline is 23:59:59: an answer at 23:59:59.5 was listed as late for ever (a review of this
    session's commits)."""
    received = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)
    now = [received]
    register = PrivacyRequests(tmp_path / "privacy.db", clock=lambda: now[0])
    try:
        register.open_request("PA-1", RequestKind.ACCESS, received)
        now[0] = deadline(received, 10) + dt.timedelta(milliseconds=500)
        assert register.list_requests(overdue_only=True) == []
        register.acknowledge("PA-1")
        now[0] = deadline(received, 30) + dt.timedelta(microseconds=999_999)
        register.respond("PA-1")
        assert register.list_requests(late_only=True) == []
        now[0] += dt.timedelta(microseconds=1)
        register.open_request("PA-2", RequestKind.ACCESS, received)
        register.respond("PA-2")  # a second later: late on both counts
        assert [r.request_number for r in register.list_requests(late_only=True)] == ["PA-2"]
    finally:
        register.close()


def test_overdue_requests_over_the_wire_and_the_cli(
    index: Index, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(privacy_cli.console, "width", 240)
    _load_person(index)
    officer, privacy = _officer(index)
    received = {"PA-20-001": dt.datetime(2020, 3, 2, tzinfo=dt.UTC), "PA-26-020": dt.datetime.now(dt.UTC)}
    for number, at in received.items():
        request = privacy_pb2.PrivacyRequest(request_number=number, kind=privacy_pb2.PRIVACY_REQUEST_KIND_ACCESS)
        request.received_at.FromDatetime(at)
        privacy.OpenPrivacyRequest(request, metadata=officer.metadata, timeout=10)
    listing = privacy.ListPrivacyRequests(
        privacy_pb2.ListPrivacyRequestsRequest(overdue_only=True), metadata=officer.metadata
    )
    assert [r.request_number for r in listing.requests] == ["PA-20-001"]
    every = privacy.ListPrivacyRequests(privacy_pb2.ListPrivacyRequestsRequest(), metadata=officer.metadata)
    assert [r.request_number for r in every.requests] == ["PA-20-001", "PA-26-020"]
    data = str(index.data_dir)
    with pytest.raises(SystemExit, match=r"no privacy register at .*is --data right"):  # a mistyped directory
        privacy_cli.main(["requests", "list", "--overdue", "--data", data + "x"])
    assert not Path(data + "x").exists()
    privacy_cli.main(["requests", "list", "--overdue", "--data", data])
    out = capsys.readouterr().out
    assert "PA-20-001" in out and "OVERDUE" in out and "PA-26-020" not in out
    _ask(privacy, officer, "PA-20-001")  # answered (late): no duty outstanding
    listing = privacy.ListPrivacyRequests(
        privacy_pb2.ListPrivacyRequestsRequest(overdue_only=True), metadata=officer.metadata
    )
    assert list(listing.requests) == []
    listing = privacy.ListPrivacyRequests(
        privacy_pb2.ListPrivacyRequestsRequest(late_only=True), metadata=officer.metadata
    )
    assert [r.request_number for r in listing.requests] == ["PA-20-001"]  # answered, but late
    privacy_cli.main(["requests", "list", "--late", "--data", data])
    out = capsys.readouterr().out
    assert "answered (late: acknowledgement, response)" in out and "PA-26-020" not in out
    assert "1 late requests" in out
    privacy_cli.main(["requests", "acknowledge", "PA-26-020", "--data", data])
    assert "PA-26-020 acknowledged" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="no privacy request"):
        privacy_cli.main(["requests", "acknowledge", "PA-99-999", "--data", data])
    # Done already (acknowledged just now; PA-20-001 answered over the wire): the first stands, and a second
    # is no event saying someone did it again at a time the register never held (privacy review 7).
    privacy_cli.main(["requests", "acknowledge", "PA-26-020", "--data", data])
    privacy_cli.main(["requests", "respond", "PA-20-001", "--data", data])
    again = capsys.readouterr().out
    assert "PA-26-020 was already acknowledged" in again and "PA-20-001 was already answered" in again
    audit = _audit(index)
    try:
        assert [e.detail for e in audit.events("PRIVACY_REQUEST_ACKNOWLEDGED")] == [{"request_number": "PA-26-020"}]
        assert audit.events("PRIVACY_REQUEST_ANSWERED") == []
    finally:
        audit.close()
