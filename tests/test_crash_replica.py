"""kill -9 a replica (`dcii serve --processes 2`) while it ingests and answers searches: nothing it
acknowledged is lost, every answer it sent is accounted, the audit trail stays one intact chain, the
primary answers throughout, and the replica comes back. The kill lands at a random moment, so in some
rounds the replica dies holding the store's write lock or the trail's (both are released by the kernel
with the process). The short run (in CI) kills it three times; `pytest -m slow` twenty times."""

from __future__ import annotations

import os
import random
import signal
import threading
from pathlib import Path

import grpc
import pytest

from dcii.v1 import ingest_pb2, search_pb2
from indexer.model import TracingKey
from search_service.accounting import verify_file
from search_service.accounting_entries import disclosures_for_tracing_file
from search_service.accreditation import Role
from tests import factories as f
from tests.server_proc import record, wait_until
from tests.serving_support import Terminal, terminal_on
from tests.support import Client, make_index

EXACT = search_pb2.SEARCH_MODE_EXACT
SOUGHT = {"name": {"surname": "Okonkwo", "given_name": "Adaeze"}, "identifiers": {"ssn": "287-65-4321"}}


def _ingest_until_cut(client: Client, start: int, version: int, acked: dict[str, int], enough: threading.Event) -> None:
    requests = (
        f.upsert(f.person(record=f"NCIS-{i:06d}", version=version, given="Harold")) for i in range(start, start + 5000)
    )
    try:
        for result in client.ingest.Ingest(requests, metadata=client.metadata, timeout=60):
            if result.outcome in (ingest_pb2.INGEST_OUTCOME_APPLIED, ingest_pb2.INGEST_OUTCOME_UNCHANGED):
                acked[result.request_id] = max(acked.get(result.request_id, 0), result.stored_version)
            if len(acked) >= 50:
                enough.set()
    except grpc.RpcError:
        pass  # the replica died under us mid-stream: the point of the test


def _search_until_cut(client: Client, answered: list[int]) -> None:
    try:
        while True:
            answer = client.search(mode=EXACT, **SOUGHT)
            assert len(answer.hits) == 1
            answered.append(1)
    except grpc.RpcError:
        pass


def _run(tmp_path: Path, kills: int) -> None:
    index = make_index(tmp_path)
    index.start(processes=2)
    try:
        replicas = index.running.replicas  # type: ignore[union-attr]
        assert replicas is not None and replicas.wait_ready(timeout=120)
        replicas._watch_interval = 0.1  # the test need not wait the default's two seconds for a restart
        submitter = index.client("NCIS-RA-00", "NCIS", [Role.SUBMITTER])
        submitter.upsert(f.person(record="NCIS-SOUGHT", surname="Okonkwo", given="Adaeze", ssn="287-65-4321"))
        sub_cert, sub_account, sub_password = index.accredit("NCIS-RA-01", "NCIS", [Role.SUBMITTER])
        q_cert, q_account, q_password = index.accredit("ADJ-1", "DCSA", [Role.QUERIER])
        rng = random.Random(11)
        acked: dict[str, int] = {}
        answered: list[int] = []
        for round_no in range(kills):
            (replica,) = replicas.pids
            writer = terminal_on(index, sub_cert, [replica])
            writer.client.login(sub_account, sub_password)
            reader = terminal_on(index, q_cert, [replica])
            reader.client.login(q_account, q_password)
            primary = terminal_on(index, q_cert, [os.getpid()])
            primary.client.login(q_account, q_password)
            enough = threading.Event()
            threads = [
                threading.Thread(
                    target=_ingest_until_cut, args=(writer.client, rng.randrange(400), round_no + 1, acked, enough)
                ),
                threading.Thread(target=_search_until_cut, args=(reader.client, answered)),
            ]
            for thread in threads:
                thread.start()
            assert enough.wait(timeout=60)
            threading.Event().wait(rng.uniform(0, 0.05))  # land the kill at a random point mid-stream
            os.kill(replica, signal.SIGKILL)
            for thread in threads:
                thread.join(timeout=60)
                assert not thread.is_alive()
            # The primary answered throughout and answers now, before the replica is back.
            assert len(primary.client.search(mode=EXACT, **SOUGHT).hits) == 1
            restarts = round_no + 1
            wait_until(lambda: replicas.restarts >= restarts, timeout=60, what="the replica started again")  # noqa: B023
            assert replicas.restarts == restarts
            assert replicas.wait_ready(timeout=120)
            for terminal in (writer, reader, primary):
                terminal.client.close()
        store = index.running.store  # type: ignore[union-attr]
        for number, version in acked.items():
            stored = store.get(TracingKey("NCIS", number))
            assert stored is not None and stored.tracing.source_version >= version, number
        trail = index.data_dir / "audit.db"
        assert verify_file(trail).ok
        accounted = disclosures_for_tracing_file(trail, TracingKey("NCIS", "NCIS-SOUGHT"))
        # Every answer a client received is accounted (+1: the primary's check each round); an answer
        # accounted whose response the kill cut off is the safe side, and allowed.
        assert answered and len(accounted) >= len(answered) + kills
        record("crash: replica", kills=kills, acknowledged=len(acked), answered=len(answered), accounted=len(accounted))
        last = Terminal(index, q_cert, ())
        last.client.login(q_account, q_password)
        assert len(last.client.search(mode=EXACT, **SOUGHT).hits) == 1
    finally:
        index.stop()


def test_kill_9_a_replica_loses_nothing_acknowledged_and_the_primary_serves_on(tmp_path: Path) -> None:
    _run(tmp_path, kills=3)


@pytest.mark.slow
def test_kill_9_a_replica_twenty_times(tmp_path: Path) -> None:
    _run(tmp_path, kills=20)
