"""Group commit (search_service.group_commit) under many threads: every caller's items written exactly
once and whole, or the caller told of the failure of the write they were in; nobody left waiting."""

from __future__ import annotations

import threading
import time

import pytest

from indexer.exc import Unavailable
from search_service.group_commit import GroupCommit


class Disk:
    """A write function that keeps what it wrote, takes a little time, and fails every `fail_every`th write."""

    def __init__(self, fail_every: int = 0, pause: float = 0.0005) -> None:
        self.fail_every = fail_every
        self.pause = pause
        self.batches: list[list[tuple[int, int]]] = []
        self.calls = 0
        self.lock = threading.Lock()

    def write(self, items: list[tuple[int, int]]) -> None:
        with self.lock:
            self.calls += 1
            failing = self.fail_every and self.calls % self.fail_every == 0
        time.sleep(self.pause)
        if failing:
            raise Unavailable("disk said no")  # as AuditLog._write turns an OSError
        with self.lock:
            self.batches.append(list(items))


@pytest.mark.parametrize("fail_every", [0, 3])
def test_many_threads_each_caller_whole_or_told(fail_every: int) -> None:
    disk = Disk(fail_every)
    group = GroupCommit(disk.write, timeout=30, what="test")
    threads_n, calls = 24, 40
    outcomes: dict[tuple[int, int], bool] = {}
    start = threading.Barrier(threads_n)

    def caller(t: int) -> None:
        start.wait()
        for c in range(calls):
            try:
                group.commit([(t, c), (t, c), (t, c)])
                outcomes[(t, c)] = True
            except Unavailable:
                outcomes[(t, c)] = False

    threads = [threading.Thread(target=caller, args=(t,)) for t in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads), "a caller was never woken"
    assert len(outcomes) == threads_n * calls
    written = [item for batch in disk.batches for item in batch]
    for key, ok in outcomes.items():
        assert written.count(key) == (3 if ok else 0), key  # whole and once, or not at all
    for batch in disk.batches:  # a caller's items are never split between writes
        assert all(batch.count(item) == 3 for item in batch)
    assert group.writes == disk.calls < threads_n * calls  # writes were shared
    if fail_every:
        assert not all(outcomes.values())


def test_a_queued_caller_gives_up_after_its_timeout_and_its_items_are_never_written() -> None:
    gate = threading.Event()
    writing = threading.Event()
    written: list[str] = []

    def slow(items: list[str]) -> None:
        writing.set()
        gate.wait(10)
        written.extend(items)

    group = GroupCommit(slow, timeout=0.3, what="test")
    first = threading.Thread(target=group.commit, args=(["first"],))
    first.start()
    assert writing.wait(10)  # the first caller leads and is stuck in its write
    with pytest.raises(Unavailable, match="timed out waiting for the writer"):
        group.commit(["late"])
    gate.set()
    first.join(10)
    group.commit(["after"])  # the writer goes on
    assert written == ["first", "after"]
