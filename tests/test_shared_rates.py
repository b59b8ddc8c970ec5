"""The per-activity rate limit every serving process shares (search_service.shared_rates): its table in a
real file, taken from real processes at once, and a real `--processes 2` server whose connections the kernel
spread over both processes, holding one activity to its rate in all."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import grpc
import pytest

from dcii.v1 import search_pb2
from indexer.exc import ResourceExhausted
from search_service import shared_rates
from search_service.accreditation import Role
from search_service.shared_rates import SharedRateLimiter
from tests.serving_support import Terminal
from tests.support import ROOT, make_index


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _taken(limiter: SharedRateLimiter, key: str, times: int) -> int:
    allowed = 0
    for _ in range(times):
        try:
            limiter.take(key)
            allowed += 1
        except ResourceExhausted:
            pass
    return allowed


def test_limiters_on_one_table_share_each_activitys_bucket(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / shared_rates.FILE_NAME
    first, second = (SharedRateLimiter(path, 2.0, 5, clock) for _ in range(2))
    assert _taken(first, "A", 3) == 3
    assert _taken(second, "A", 5) == 2  # the burst of 5, spent through both
    with pytest.raises(ResourceExhausted, match="activity A may make 2 calls a second"):
        first.take("A")
    assert _taken(second, "B", 5) == 5  # another activity has a bucket of its own
    clock.now += 1.5  # 3 tokens back at 2 a second
    assert _taken(first, "A", 5) == 3
    clock.now += 100  # never more than the burst
    assert _taken(second, "A", 10) == 5
    first.close()
    second.close()


def test_a_table_from_before_a_restart_or_of_another_version_starts_full(tmp_path: Path) -> None:
    path = tmp_path / shared_rates.FILE_NAME
    clock = Clock()
    before = SharedRateLimiter(path, 1.0, 3, clock)
    assert _taken(before, "A", 3) == 3
    before.close()
    clock.now = 5.0  # the monotonic clock began again: the table's times are ahead of it
    after = SharedRateLimiter(path, 1.0, 3, clock)
    assert _taken(after, "A", 5) == 3
    after.close()
    path.write_bytes(b"DCIIRATE" + b"\x09" * 100)  # another version's header, another size
    again = SharedRateLimiter(path, 1.0, 3, clock)
    assert path.stat().st_size == shared_rates._SIZE
    assert _taken(again, "A", 5) == 3
    again.close()


def test_an_activity_with_no_slot_in_reach_is_still_limited(tmp_path: Path) -> None:
    """Every slot within PROBES of the activity's place taken by others: it is counted in this process."""
    path = tmp_path / shared_rates.FILE_NAME
    clock = Clock()
    limiter = SharedRateLimiter(path, 1.0, 2, clock)
    crowded = "ACTIVITY-X"
    start = shared_rates.activity_hash(crowded) % shared_rates.SLOTS
    for probe in range(shared_rates.PROBES):  # fill its reach with other hashes, as many activities would
        offset = shared_rates._HEADER.size + ((start + probe) % shared_rates.SLOTS) * shared_rates._SLOT.size
        shared_rates._SLOT.pack_into(limiter._map, offset, 12345 + probe, 0.0, clock.now)
    assert _taken(limiter, crowded, 5) == 2
    limiter.close()


_TAKER = """
import json, sys
from pathlib import Path
from indexer.exc import ResourceExhausted
from search_service.shared_rates import SharedRateLimiter
limiter = SharedRateLimiter(Path(sys.argv[1]), 0.001, 20_000)
print("ready", flush=True)
sys.stdin.readline()  # go
allowed = 0
for _ in range(10_000):
    try:
        limiter.take("ADJ-1")
        allowed += 1
    except ResourceExhausted:
        pass
print(json.dumps(allowed), flush=True)
"""


def test_processes_taking_at_once_never_spend_a_token_twice(tmp_path: Path) -> None:
    """Four processes, released together once all are ready, spend one bucket of 20,000 (it refills at one
    token in 1,000 s) as fast as they can, 10,000 tries each: exactly 20,000 calls are allowed in all."""
    path = tmp_path / shared_rates.FILE_NAME
    takers = [
        subprocess.Popen(
            [sys.executable, "-c", _TAKER, str(path)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    for taker in takers:
        assert taker.stdout is not None and taker.stdout.readline().strip() == "ready"
    for taker in takers:
        assert taker.stdin is not None
        taker.stdin.write("go\n")
        taker.stdin.flush()
    allowed = [json.loads(taker.communicate(timeout=120)[0]) for taker in takers]
    assert all(taker.returncode == 0 for taker in takers)
    assert sum(allowed) == 20_000, allowed
    assert sum(1 for n in allowed if n) >= 2, f"the processes did not take turns: {allowed}"


def test_a_server_of_two_processes_holds_an_activity_to_its_rate_in_all(tmp_path: Path) -> None:
    """Burst 30, a token a minute: 16 connections of one terminal, spread by the kernel over both processes,
    each asking until refused. Counted per process, the activity got up to 60; shared, exactly 30."""
    index = make_index(tmp_path)
    index.start(processes=2, rate_per_activity=1 / 60, burst_per_activity=30, max_calls_per_activity=64)
    try:
        assert index.running is not None and index.running.replicas is not None
        assert index.running.replicas.wait_ready(timeout=120)
        cert, account, password = index.accredit("ADJ-1", "DCSA", [Role.QUERIER])
        first = Terminal(index, cert, ())
        first.client.login(account, password)  # a call too: one token
        terminals = [first, *(Terminal(index, cert, first.client.metadata) for _ in range(15))]
        assert len(Counter(t.process for t in terminals)) == 2, "the connections all went to one process"
        answered: Counter[int | None] = Counter()
        for _ in range(5):
            for terminal in terminals:
                try:
                    terminal.client.search(
                        mode=search_pb2.SEARCH_MODE_NAME_ONLY, name={"surname": "Whitfield", "given_name": "Harold"}
                    )
                    answered[terminal.process] += 1
                except grpc.RpcError as error:
                    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error
                    assert "rate limit" in (error.details() or "")
        assert sum(answered.values()) == 30 - 1, answered  # the login spent the first token
        assert len(answered) == 2, f"one process answered every call: {answered}"
        assert (index.data_dir / shared_rates.FILE_NAME).stat().st_size == shared_rates._SIZE
        for terminal in terminals:
            terminal.client.close()
    finally:
        index.stop()
