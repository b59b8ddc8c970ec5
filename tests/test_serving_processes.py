"""Several processes serving one port (`dcii serve --processes N`, search_service.serving_processes): every
process answers every service on the same files, each answer is accounted in the one trail, a replica that
dies is started again, and the replicas end with the server however it ends.

Which process answered is read from the kernel: the server side of each TCP connection to the port, and
the process that holds its socket (/proc, Linux-only like the server's deployment)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from dcii.v1 import batch_pb2, batch_pb2_grpc, search_pb2, tracing_pb2
from indexer.model import TracingKey
from search_service import pki
from search_service.accounting import verify_file
from search_service.accounting_entries import disclosures_for_tracing_file
from search_service.accreditation import Role
from search_service.server import ServerConfig
from search_service.serving_processes import ServingProcesses, config_from_json, config_to_json
from tests import factories as f
from tests.metrics_support import samples, scrape, value
from tests.server_proc import alive, children, kill_hard, wait_until
from tests.serving_support import Terminal, terminal_on, two_free_ports
from tests.support import ROOT, Index, free_port, make_index, wait_for_port

EXACT = search_pb2.SEARCH_MODE_EXACT


@pytest.fixture
def index(tmp_path: Path) -> Iterator[Index]:
    built = make_index(tmp_path)
    built.start(processes=2)
    assert built.running is not None and built.running.replicas is not None
    assert built.running.replicas.wait_ready(timeout=120)
    try:
        yield built
    finally:
        built.stop()


def _terminals(index: Index, cert: pki.Issued, metadata: tuple[tuple[str, str], ...], n: int) -> list[Terminal]:
    return [Terminal(index, cert, metadata) for _ in range(n)]


def test_every_process_answers_each_answer_is_accounted_and_a_session_holds_in_any(index: Index) -> None:
    submitter = index.client("NCIS-SUB", "NCIS", [Role.SUBMITTER])
    assert submitter.upsert(f.person(record="NCIS-7"))[0].outcome == 1  # APPLIED
    cert, account, password = index.accredit("ADJ-1", "DCSA", [Role.QUERIER])
    first = Terminal(index, cert, ())
    first.client.login(account, password)  # one session, used below from connections held by every process
    terminals = [first, *_terminals(index, cert, first.client.metadata, 15)]
    by_process = Counter(t.process for t in terminals)
    assert len(by_process) == 2, f"16 connections all went to one process: {by_process}"
    for terminal in terminals:
        answer = terminal.client.search(
            mode=EXACT, name={"surname": "Whitfield", "given_name": "Harold"}, identifiers={"ssn": "318-52-4471"}
        )
        assert [h.tracing.key.record_number for h in answer.hits] == ["NCIS-7"]
        terminal.client.close()
    trail = index.data_dir / "audit.db"
    accounted = disclosures_for_tracing_file(trail, TracingKey("NCIS", "NCIS-7"))
    assert len(accounted) == len(terminals)
    assert {d.recipient_activity for d in accounted} == {"ADJ-1"}
    assert verify_file(trail).ok  # one chain, written by two processes in turn


def test_a_tracing_written_through_a_replica_is_found_through_the_primary(index: Index) -> None:
    cert, account, password = index.accredit("NCIS-SUB", "NCIS", [Role.SUBMITTER])
    terminal = terminal_on(index, cert, index.running.replicas.pids)  # type: ignore[union-attr]
    terminal.client.login(account, password)
    results = terminal.client.upsert(f.person(record="NCIS-R1", surname="Okonkwo", given="Adaeze", ssn="287-65-4321"))
    assert results[0].outcome == 1, results
    terminal.client.close()
    adjudicator = index.client("ADJ-1", "DCSA", [Role.QUERIER])  # the test's own process: the primary
    answer = adjudicator.search(
        mode=EXACT, name={"surname": "Okonkwo", "given_name": "Adaeze"}, identifiers={"ssn": "287-65-4321"}
    )
    assert [h.tracing.key.record_number for h in answer.hits] == ["NCIS-R1"]


def test_a_batch_submitted_to_a_replica_is_answered_by_the_primarys_worker(index: Index) -> None:
    submitter = index.client("NCIS-SUB", "NCIS", [Role.SUBMITTER])
    submitter.upsert(f.person(record="NCIS-9"))
    cert, account, password = index.accredit("ADJ-B", "DCSA", [Role.QUERIER, Role.BATCH])
    terminal = terminal_on(index, cert, index.running.replicas.pids)  # type: ignore[union-attr]
    terminal.client.login(account, password)
    stub = batch_pb2_grpc.BatchServiceStub(terminal.client.channel)
    query = search_pb2.SearchRequest(
        mode=EXACT,
        purpose=search_pb2.PURPOSE_SECURITY_CLEARANCE,
        name=tracing_pb2.PersonName(surname="Whitfield", given_name="Harold"),
        identifiers=tracing_pb2.PersonalIdentifiers(ssn="318-52-4471"),
    )
    request = batch_pb2.SubmitBatchRequest(
        label="via replica", queries=[batch_pb2.BatchQuery(query_id="q1", query=query)]
    )
    submitted = stub.SubmitBatch(iter([request]), metadata=terminal.client.metadata, timeout=30)
    # No worker was running in the primary (none had been asked for): its watch starts one for the batch.
    assert index.running is not None and index.running.batch_worker is not None
    ask = batch_pb2.GetBatchRequest(batch_id=submitted.batch_id)

    def done() -> bool:
        state = stub.GetBatchStatus(ask, metadata=terminal.client.metadata, timeout=10).state
        return bool(state == batch_pb2.BATCH_STATE_DONE)

    wait_until(done, timeout=60, what="the batch answered")
    (result,) = stub.StreamBatchResults(ask, metadata=terminal.client.metadata, timeout=30)
    assert [h.tracing.key.record_number for h in result.hits] == ["NCIS-9"]


def test_a_killed_replica_is_started_again_and_serves(tmp_path: Path) -> None:
    built = make_index(tmp_path)
    built.start(processes=2)
    try:
        replicas = built.running.replicas  # type: ignore[union-attr]
        assert replicas is not None and replicas.wait_ready(timeout=120)
        # A short watch, so that the test need not wait the default's two seconds.
        replicas._watch_interval = 0.1
        (first,) = replicas.pids
        kill_hard(first)
        wait_until(lambda: replicas.restarts == 1, timeout=30, what="the replica started again")
        assert replicas.wait_ready(timeout=120)
        (second,) = replicas.pids
        assert second != first and alive(second)
        submitter = built.client("NCIS-SUB", "NCIS", [Role.SUBMITTER])
        submitter.upsert(f.person(record="NCIS-8"))
        cert, account, password = built.accredit("ADJ-1", "DCSA", [Role.QUERIER])
        served = set()
        for _ in range(40):
            terminal = Terminal(built, cert, ())
            terminal.client.login(account, password)
            answer = terminal.client.search(
                mode=EXACT, name={"surname": "Whitfield", "given_name": "Harold"}, identifiers={"ssn": "318-52-4471"}
            )
            assert len(answer.hits) == 1
            served.add(terminal.process)
            terminal.client.close()
            if second in served:
                break
        assert second in served
    finally:
        built.stop()


def _serve(data: Path, pki_dir: Path, port: int) -> subprocess.Popen[bytes]:
    argv = ["serve", "--data", str(data), "--pki", str(pki_dir), "--port", str(port), "--processes", "3"]
    return subprocess.Popen(
        [sys.executable, "-m", "dcii.cli.main", "--log-level", "INFO", *argv],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # a group of its own, as a terminal's: SIGHUP is sent to all of it
    )


@pytest.mark.parametrize("ending", ["SIGTERM", "SIGKILL", "SIGHUP to the group"])
def test_the_replicas_end_with_the_server(tmp_path: Path, ending: str) -> None:
    pki_dir = tmp_path / "pki"
    pki.init_pki(pki_dir, activities=[])
    port = free_port()
    server = _serve(tmp_path / "data", pki_dir, port)
    try:
        wait_for_port(port, server)
        marker = b"search_service.serving_processes"
        wait_until(lambda: len(children(server.pid, marker)) == 2, timeout=60, what="two replicas")
        replicas = children(server.pid, marker)
        assert server.stderr is not None
        os.set_blocking(server.stderr.fileno(), False)
        wait_until(lambda: _said(server, b"DCII serving"), timeout=120, what="every process serving")
        if ending == "SIGHUP to the group":  # the terminal closed: every process of it gets SIGHUP at once
            os.killpg(server.pid, signal.SIGHUP)
        else:
            server.send_signal(signal.SIGTERM if ending == "SIGTERM" else signal.SIGKILL)
        wait_until(lambda: not any(alive(pid) for pid in replicas), timeout=60, what="the replicas gone")
        code = server.wait(timeout=60)
        assert code == (0 if ending != "SIGKILL" else -signal.SIGKILL)
        if ending != "SIGKILL":  # each replica drained its calls and said why: SIGHUP killed them outright
            _said(server, b"")
            said = [json.loads(line) for line in _heard[server.pid].splitlines() if line.startswith(b"{")]
            stops = sorted(str(line.get("replica")) for line in said if str(line["message"]).startswith("stopping"))
            assert stops == ["1", "2", "None"], said
    finally:
        if server.poll() is None:
            server.kill()
        server.wait(timeout=30)
        if server.stderr is not None:
            server.stderr.close()


_heard: dict[int, bytes] = {}


def _said(process: subprocess.Popen[bytes], words: bytes) -> bool:
    assert process.stderr is not None
    try:
        chunk = os.read(process.stderr.fileno(), 65536)
    except BlockingIOError:
        chunk = b""
    _heard[process.pid] = _heard.get(process.pid, b"") + chunk
    return words in _heard[process.pid]


def test_a_replica_gets_the_primarys_config_with_its_own_port_and_metrics() -> None:
    config = ServerConfig(Path("/srv/dcii"), Path("/srv/pki"), port=0, processes=3, metrics_port=9100)
    config = ServerConfig(**{**config.__dict__, "hostnames": ("a", "b")})
    assert config_from_json(config_to_json(config)) == config
    replicas = ServingProcesses(config, 50555)
    made = replicas._configs
    assert [(c.replica_index, c.port, c.metrics_port) for c in made] == [(1, 50555, 9101), (2, 50555, 9102)]
    assert all(c.processes == 3 and c.data_dir == config.data_dir for c in made)
    free = ServingProcesses(ServerConfig(Path("/d"), Path("/p"), processes=2, metrics_port=0), 1)._configs
    off = ServingProcesses(ServerConfig(Path("/d"), Path("/p"), processes=2), 1)._configs
    assert [c.metrics_port for c in free + off] == [0, None]


def test_a_given_store_or_clock_is_refused_with_several_processes(tmp_path: Path) -> None:
    from indexer.store.sqlite import SqliteStore
    from search_service.server import start_server

    store = SqliteStore(tmp_path / "other.db")
    try:
        with pytest.raises(ValueError, match="several serving processes"):
            start_server(ServerConfig(tmp_path, tmp_path, processes=2), store=store)
    finally:
        store.close()


def test_each_process_serves_its_own_metrics_on_the_next_port(tmp_path: Path) -> None:
    built = make_index(tmp_path)
    metrics = two_free_ports()
    built.start(processes=2, metrics_port=metrics)
    try:
        replicas = built.running.replicas  # type: ignore[union-attr]
        assert replicas is not None and replicas.wait_ready(timeout=120)
        cert, account, password = built.accredit("ADJ-1", "DCSA", [Role.QUERIER])
        asked: Counter[int | None] = Counter()
        while len(asked) < 2:  # a search answered by each process, over connections until both are seen
            terminal = Terminal(built, cert, ())
            terminal.client.login(account, password)
            terminal.client.search(
                mode=EXACT, name={"surname": "Nobody", "given_name": "Here"}, identifiers={"ssn": "318-52-4471"}
            )
            asked[terminal.process] += 1
            terminal.client.close()
        by_port = {os.getpid(): metrics, replicas.pids[0]: metrics + 1}
        for pid, port in by_port.items():
            found = samples(scrape(port))
            counted = value(
                found,
                "dcii_rpc_requests_total",
                grpc_service="dcii.v1.SearchService",
                grpc_method="Search",
                mode="EXACT",
                grpc_code="OK",
            )
            assert counted == asked[pid], (pid, port)
    finally:
        built.stop()


def test_a_replica_that_cannot_start_is_started_again_later_each_time(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A replica that dies before it serves waits twice as long each time, up to the cap, before it is
    started again; before, a start that could never succeed made a new process every watch tick for as long
    as the primary ran."""
    monkeypatch.setattr("search_service.serving_processes.MAX_RESTART_DELAY", 0.8)
    not_a_directory = tmp_path / "data"
    not_a_directory.write_text("a file where the data directory should be")
    config = ServerConfig(not_a_directory, tmp_path / "pki", processes=2)
    replicas = ServingProcesses(config, free_port(), watch=0.1)
    caplog.set_level("WARNING", logger="search_service.serving_processes")
    replicas.start()
    try:
        assert not replicas.wait_ready(timeout=30)  # it never serves

        def failures() -> list[float]:
            failed = [r for r in caplog.records if r.getMessage() == "serving process failed to start"]
            return [r.__dict__["retry_in_seconds"] for r in failed]

        wait_until(lambda: len(failures()) >= 5, timeout=60, what="five failed starts")
        assert failures()[:5] == [0.2, 0.4, 0.8, 0.8, 0.8]  # the watch's tick doubled, then the cap
        assert replicas.restarts >= 4
    finally:
        replicas.stop(timeout=10)
