"""A connector stopped, cut off or watched (their operator's UAT, M3, M5, L3, and a review): SIGTERM ends a
polling connector with its summary; a polling connector outlasts an outage longer than --max-retries; on a
terminal the events show above the progress bar; a second connector on a state folder is refused; a stop
between a record's dead letter and its checkpoint writes the entry once (a review found a COLLISION entry
written twice after the restart). Real server subprocesses over TLS, real files, real signals and a pty."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import select
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from connectors.__main__ import _Stopped
from connectors.filedrop import process_file, read_csv
from connectors.machinery import Progress
from tests import test_connectors_operator
from tests.support import ROOT
from tests.test_connectors import Site, person_row
from tests.test_connectors_machinery import offline_profile
from tests.test_connectors_operator import _command, _csv, _event, _json_lines, _rejects, _run, _runner

site = test_connectors_operator.site  # that module's server, as a fixture here (bound by name, as pytest wants)


class _StoppedDuringTheCollisionLine(Progress):
    def log(self, event: str, **fields: object) -> None:
        if event == "collision":
            raise _Stopped  # as the SIGTERM handler does, wherever the connector is
        super().log(event, **fields)


def test_a_stop_between_a_dead_letter_and_its_checkpoint_writes_it_once(site: Site, tmp_path: Path) -> None:
    inbox, state = tmp_path / "inbox", tmp_path / "state"
    first = person_row(7, 500, record_number="STOP-DUP-1", given_name="GARY")
    second = person_row(7, 500, record_number="STOP-DUP-1", given_name="GARRY")  # same key and version
    path = _csv(inbox, "a.csv", [first, second])
    stopped = _runner(site, state)
    stopped.progress = _StoppedDuringTheCollisionLine("filedrop", stream=io.StringIO())
    try:
        process_file(path, stopped, read_csv)
        raise AssertionError("the stop did not come")
    except _Stopped:
        pass
    finally:
        stopped.close()
    assert _rejects(state) == []  # its record not passed: nothing of it written yet
    again = _runner(site, state)
    try:
        process_file(path, again, read_csv)
    finally:
        again.close()
    assert [(entry["dead_letter"], entry["line"]) for entry in _rejects(state)] == [("COLLISION", 3)]


def test_sigterm_ends_a_polling_connector_with_its_summary(site: Site, tmp_path: Path) -> None:
    inbox, state, log = tmp_path / "inbox", tmp_path / "state", tmp_path / "log"
    inbox.mkdir()
    with log.open("w") as err:
        connector = subprocess.Popen(
            _command(site.profile, state, "filedrop", "--inbox", str(inbox), "--poll", "0.2"), cwd=ROOT, stderr=err
        )
        try:
            _csv(tmp_path, "b_tuesday.csv", [person_row(10, 1, record_number="M3-T1", ssn="000-12-3456")])
            os.replace(tmp_path / "b_tuesday.csv", inbox / "b_tuesday.csv")
            _wait_for(lambda: '"done"' in log.read_text())
            last = json.loads((state / "last_run.json").read_text())  # after each file, in polling mode
            assert (last["running"], last["last_file"]["counts"]["rejected"]) == (True, 1)
            connector.send_signal(signal.SIGTERM)
            assert connector.wait(timeout=30) == 0
        finally:
            if connector.poll() is None:
                connector.kill()
    lines = _json_lines(log.read_text())
    [summary] = _event(lines, "summary")
    assert (summary["stopped"], summary["rejected"], summary["exit_status"]) == ("SIGTERM", 1, 0)
    assert json.loads((state / "last_run.json").read_text())["running"] is False
    assert "Traceback" not in log.read_text()


def _wait_for(condition: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# ---- L3: polling mode outlasts an outage ----


def test_polling_mode_outlasts_an_outage_longer_than_max_retries(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    down = Site(tmp_path / "site")
    inbox, log = tmp_path / "inbox", tmp_path / "log"
    _csv(inbox, "a.csv", [person_row(11, 1, record_number="L3-1")])
    command = _command(down.profile, tmp_path / "state", "filedrop", "--inbox", str(inbox), "--poll", "0.2")
    with log.open("w") as err:
        connector = subprocess.Popen([*command, "--max-retries", "1"], cwd=ROOT, stderr=err)
        try:
            _wait_for(lambda: log.read_text().count('"retry"') >= 3)  # past --max-retries 1, still trying
            assert connector.poll() is None and '"outage"' in log.read_text()
            with down.server():
                _wait_for((inbox / "done" / "a.csv").exists)
            connector.send_signal(signal.SIGTERM)
            assert connector.wait(timeout=30) == 0
        finally:
            if connector.poll() is None:
                connector.kill()
    # --once still gives up after --max-retries
    _csv(tmp_path / "later", "b.csv", [person_row(12, 1, record_number="L3-2")])
    status, lines, _ = _run(down.profile, tmp_path / "once", "filedrop", "--inbox", str(tmp_path / "later"),
                            "--once", "--max-retries", "1")  # fmt: skip
    assert status == 2 and _event(lines, "error")[0]["code"] == "UNAVAILABLE"
    assert len(_event(lines, "retry")) == 1


# ---- M5: a terminal ----


def _on_a_terminal(command: list[str]) -> tuple[int, str]:
    """Run with stdout and stderr on a pseudo-terminal (as an operator runs it by hand): status, text."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(command, cwd=ROOT, stdout=follower, stderr=follower, stdin=subprocess.DEVNULL)
    os.close(follower)
    out = b""
    while True:
        ready, _, _ = select.select([leader], [], [], 120)
        try:
            chunk = os.read(leader, 65536) if ready else b""
        except OSError:  # the follower side closed: the process ended
            chunk = b""
        if not chunk:
            break
        out += chunk
    os.close(leader)
    return process.wait(timeout=60), re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.decode(errors="replace"))


def test_on_a_terminal_the_events_show_above_the_bar(site: Site, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    _csv(inbox, "a.csv", [person_row(12, 1, record_number="M5-1")])
    (inbox / "b.csv").write_text("surname,givne_name\nX,Y\n")
    status, text = _on_a_terminal(
        _command(site.profile, tmp_path / "state", "filedrop", "--inbox", str(inbox), "--once")
    )
    assert status == 4
    assert '"event": "done"' in text and '"event": "failed"' in text and "givne_name" in text, text
    assert '"event": "progress"' not in text  # the bar shows the counts
    offline = offline_profile(tmp_path / "offline")  # nothing listening: the retries show as they happen
    _csv(tmp_path / "inbox2", "c.csv", [person_row(13, 1, record_number="M5-2")])
    command = _command(offline, tmp_path / "state2", "filedrop", "--inbox", str(tmp_path / "inbox2"), "--once")
    command += ["--max-retries", "2"]
    status, text = _on_a_terminal(command)
    assert status == 2 and text.count('"event": "retry"') == 2, text


# ---- M6, L4: configuration and state mistakes ----


def test_a_second_connector_on_a_state_folder_is_refused(tmp_path: Path) -> None:
    profile, state, inbox = offline_profile(tmp_path / "profile"), tmp_path / "state", tmp_path / "inbox"
    inbox.mkdir()
    first = subprocess.Popen(_command(profile, state, "filedrop", "--inbox", str(inbox), "--poll", "0.2"), cwd=ROOT,
                             stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        _wait_for((state / "checkpoint.json").exists)  # the lock is taken before the checkpoint is written
        status, _, stderr = _run(profile, state, "filedrop", "--inbox", str(inbox), "--once")
        assert status == 1 and f"another connector is running on {state}" in stderr, stderr
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=30) == 0
    finally:
        if first.poll() is None:
            first.kill()


# ---- L1: a long field ----
