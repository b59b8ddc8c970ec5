"""The embedded store's count of attached statements of dispute (indexer.store.sqlite_signal), which every
answer reads twice (search_service.search): shared by every process on the file, moved by an attachment
before set_dispute returns, and still answered by a store opened read-only."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from indexer.model import TracingKey
from indexer.store.base import Upsert
from indexer.store.sqlite import SqliteStore
from indexer.store.sqlite_signal import DisputeSignal, signal_path
from tests.store_backends import _dispute
from tests.test_store_lifecycle import NOW, file_tracing

ROOT = Path(__file__).resolve().parent.parent


def _store_with_one(path: Path) -> SqliteStore:
    store = SqliteStore(path, clock=lambda: NOW)
    store.write([Upsert(file_tracing("NCIS-1"))], actor="test")
    return store


def test_an_attachment_moves_the_mark_and_a_refused_one_does_not(tmp_path: Path) -> None:
    store = _store_with_one(tmp_path / "index.db")
    try:
        before = store.dispute_mark()
        assert store.set_dispute(TracingKey("NCIS", "NCIS-1"), _dispute(1))
        after = store.dispute_mark()
        assert after != before
        assert not store.set_dispute(TracingKey("NCIS", "NO-SUCH"), _dispute(2))  # nothing attached
        assert store.dispute_mark() == after
    finally:
        store.close()


def test_an_attachment_by_another_process_moves_this_ones_mark(tmp_path: Path) -> None:
    """A server of several processes (`dcii serve --processes N`): the dispute filed through one, the answer
    read and accounted in another. The mark is read from the shared file, never asked of SQLite."""
    path = tmp_path / "index.db"
    store = _store_with_one(path)
    try:
        before = store.dispute_mark()
        filer = textwrap.dedent(
            f"""
            from pathlib import Path
            from indexer.model import TracingKey
            from indexer.store.sqlite import SqliteStore
            from tests.store_backends import _dispute
            store = SqliteStore(Path({str(path)!r}))
            assert store.set_dispute(TracingKey("NCIS", "NCIS-1"), _dispute(7))
            store.close()
            """
        )
        subprocess.run([sys.executable, "-c", filer], cwd=ROOT, check=True, timeout=120)
        assert store.dispute_mark() != before
        assert signal_path(path).stat().st_mode & 0o777 == 0o600
    finally:
        store.close()


def test_two_processes_bumping_at_once_both_count(tmp_path: Path) -> None:
    path = tmp_path / "index.db.disputes"
    bumper = textwrap.dedent(
        f"""
        from pathlib import Path
        from indexer.store.sqlite_signal import DisputeSignal
        signal = DisputeSignal(Path({str(path)!r}))
        for _ in range(2000):
            signal.bump()
        signal.close()
        """
    )
    runs = [subprocess.Popen([sys.executable, "-c", bumper], cwd=ROOT) for _ in range(2)]
    assert [run.wait(timeout=120) for run in runs] == [0, 0]
    signal = DisputeSignal(path)
    try:
        assert signal.read() == 4000
    finally:
        signal.close()


def test_a_read_only_store_reads_the_count_from_the_file_itself(tmp_path: Path) -> None:
    path = tmp_path / "index.db"
    store = _store_with_one(path)
    try:
        assert store.set_dispute(TracingKey("NCIS", "NCIS-1"), _dispute(1))
    finally:
        store.close()
    signal_path(path).unlink()  # a tool that only looks never makes or needs the file
    looking = SqliteStore(path, read_only=True)
    try:
        assert looking.dispute_mark() == 1
        assert not signal_path(path).exists()
    finally:
        looking.close()
