"""`dcii index rebuild` in a process of its own, killed and resumed, while a connector goes on writing through a
running server on the same OpenSearch cluster (osmem-server): nothing a connector was told is applied goes
missing, no completion or deletion of a record it wrote is answered NOT_FOUND, and the check is clean.

Before the rebuild told the serving instances anything, a completion or deletion of a record written during
the copy that arrived between the swap and the catch-up was answered NOT_FOUND, and the runbook said to stop
every connector for the whole rebuild (docs/OPENSEARCH.md, Rebuild)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from dcii.v1 import ingest_pb2, tracing_pb2
from indexer.model import TracingKey
from search_service.accreditation import Role
from tests import factories as f
from tests.support import ROOT, Client, make_index

APPLIED = ingest_pb2.INGEST_OUTCOME_APPLIED


def _word(n: int) -> str:
    """A surname for number n (a name holds no digits)."""
    letters = ""
    while True:
        n, rest = divmod(n, 26)
        letters += "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[rest]
        if n == 0:
            return "Q" + letters.lower()


def _actions(n: int) -> list[ingest_pb2.IngestRequest]:
    """Round n: a new open case and file; the previous round's open case completed, its file deleted."""
    requests = [
        ingest_pb2.IngestRequest(request_id=f"oc-{n}", upsert=f.open_case("NCIS", f"OC-{n}", 1, surname=_word(n))),
        ingest_pb2.IngestRequest(request_id=f"f-{n}", upsert=f.person("NCIS", f"F-{n}", 1, surname=_word(n + 7))),
    ]
    if n > 0:
        done = ingest_pb2.IngestRequest(request_id=f"done-{n - 1}")
        done.complete_open_case.open_case.agency, done.complete_open_case.open_case.record_number = (
            "NCIS",
            f"OC-{n - 1}",
        )
        done.complete_open_case.file.CopyFrom(f.person("NCIS", f"FC-{n - 1}", 2, surname=_word(n - 1)))
        gone = ingest_pb2.IngestRequest(request_id=f"gone-{n - 1}")
        gone.delete.key.CopyFrom(tracing_pb2.TracingKey(agency="NCIS", record_number=f"F-{n - 1}"))
        gone.delete.source_version, gone.delete.reason = 1, "NO_LONGER_NEEDED"
        requests += [done, gone]
    return requests


class _Connector:
    """Pushes round after round until stopped; keeps every outcome that was not APPLIED."""

    def __init__(self, client: Client) -> None:
        self.client, self.rounds, self.wrong = client, 0, list[str]()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                results = self.client.push(_actions(self.rounds))
            except Exception as error:  # every failure counts, whatever it is
                self.wrong.append(f"round {self.rounds}: {type(error).__name__}")
                return
            self.wrong += [f"{r.request_id}: {ingest_pb2.IngestOutcome.Name(r.outcome)} {list(r.violations)}"
                           for r in results if r.outcome != APPLIED]  # fmt: skip
            self.rounds += 1

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.rounds


def _rebuild(url: str, *extra: str, kill_after: float | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "dcii.cli.index_cmd", "index", "rebuild", "--store", url, *extra]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if kill_after is not None:
        time.sleep(kill_after)
        process.send_signal(signal.SIGKILL)
    out, err = process.communicate(timeout=120)
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def test_a_rebuild_killed_and_resumed_beside_a_writing_connector_loses_nothing(osmem: Any, tmp_path: Path) -> None:
    clone = osmem.clone()
    index = make_index(tmp_path)
    index.store_url = (
        clone.url.replace("http://", "opensearch://") + "?prefix=rb&replicas=0&drain_seconds=0.2&rebuild_lease=2"
    )
    index.start()
    try:
        ncis = index.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER])
        ncis.upsert(*[f.person("NCIS", f"BASE-{i}", 1, surname=_word(i)) for i in range(50)])
        connector = _Connector(ncis)
        try:
            # Killed while it waits for the instances to see it (before its swap), then resumed: rebuilt afresh.
            killed = _rebuild(index.store_url, kill_after=1.2)
            assert killed.returncode == -signal.SIGKILL, killed.stderr
            # Its lease is watched for three heartbeats: none comes, so it is gone (cut short), not running.
            refused = _rebuild(index.store_url)
            assert refused.returncode != 0 and "--resume" in refused.stderr, refused.stderr
            resumed = _rebuild(index.store_url, "--resume")
            assert resumed.returncode == 0, resumed.stderr
            # Killed later (around its swap or its drain), resumed again; and one left to finish on its own.
            _rebuild(index.store_url, kill_after=3.0)
            assert _rebuild(index.store_url, "--resume").returncode == 0
            finished = _rebuild(index.store_url)
            assert finished.returncode == 0, finished.stderr
        finally:
            rounds = connector.stop()
        assert connector.wrong == []
        assert rounds > 20, rounds  # the connector wrote all along, not only before or after
        assert index.running is not None
        store = index.running.store
        live = {stored.tracing.key.record_number for stored in store.iter_all()}
        last = rounds - 1
        expected = {f"BASE-{i}" for i in range(50)} | {f"FC-{n}" for n in range(last)} | {f"OC-{last}", f"F-{last}"}
        assert live == expected
        ended = {record.key.record_number for record in store.deletions()}
        assert ended == {f"OC-{n}" for n in range(last)} | {f"F-{n}" for n in range(last)}
        assert store.get(TracingKey("NCIS", f"FC-{last - 1}")) is not None
        checked = subprocess.run(
            [sys.executable, "-m", "dcii.cli.index_cmd", "index", "check", "--store", index.store_url],
            cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert checked.returncode == 0, checked.stderr
    finally:
        index.stop()
        clone.close()
