"""A connector stopped (SIGTERM) between a record's dead letter and its checkpoint: the record is read again
after the restart, and its dead letter must be written once (docs/CONNECTORS.md, "Dead letters"). A review
found a COLLISION entry written twice when the stop came while its log line was written. Real server over
TLS, real files; the stop raised where the signal handler raises it, inside that log line."""

from __future__ import annotations

import io
from pathlib import Path

from connectors.__main__ import _Stopped
from connectors.filedrop import process_file, read_csv
from connectors.machinery import Progress
from tests import test_connectors_operator
from tests.test_connectors import Site, person_row
from tests.test_connectors_operator import _csv, _rejects, _runner

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
