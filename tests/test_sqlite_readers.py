"""The embedded store's pool of read connections: bounded, shared, and a snapshot is still one state."""

from __future__ import annotations

import threading
from pathlib import Path

from indexer.store.base import Upsert
from indexer.store.sqlite import SqliteStore
from indexer.store.sqlite_readers import ReaderPool
from tests.test_store_lifecycle import file_tracing


def test_many_threads_share_a_few_connections_and_each_snapshot_sees_one_state(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "index.db")
    store.write([Upsert(file_tracing(f"R-{i}", ssn=f"123-45-{1000 + i}")) for i in range(10)], actor="t")
    pool: ReaderPool = store._readers  # the pool is what is under test
    seen: list[tuple[int, int]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(32)

    def reader(n: int) -> None:
        try:
            start.wait()
            with store.snapshot():
                first = store.count()
                if n == 0:  # a write lands in the middle of this thread's snapshot
                    store.write([Upsert(file_tracing("R-NEW", ssn="123-45-9999"))], actor="t")
                second = store.count()
                assert len(store.load(list(range(1, 12)))) == first
            seen.append((first, second))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=reader, args=(n,)) for n in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    assert len(seen) == 32 and all(first == second for first, second in seen)  # never a state change inside
    assert 1 <= pool.opened <= 8
    assert store.count() == 11
    store.close()
