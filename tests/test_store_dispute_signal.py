"""The dispute mark every answer reads twice (TracingStore.dispute_mark, search_service.search): on each
backend, moved by every statement attached, a replacement included, and by nothing else; on the embedded
store a count in a file beside it (indexer.store.sqlite_signal), shared by every process on the file and
still answered by a store opened read-only."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from indexer.exc import Unavailable
from indexer.model import TracingKey
from indexer.store.base import Delete, Upsert
from indexer.store.opensearch import OpenSearchStore
from indexer.store.sqlite import SqliteStore
from indexer.store.sqlite_signal import DisputeSignal, signal_path
from tests import store_backends
from tests.store_backends import Opener, _dispute
from tests.test_store_lifecycle import NOW, file_tracing

ROOT = Path(__file__).resolve().parent.parent

open_store = store_backends.open_store  # the fixture, bound by name (tests/store_backends.py)


def test_every_attachment_moves_the_mark_a_replacement_too(open_store: Opener) -> None:
    """A count of statements held stood still when one replaced another on the same tracing, or was attached
    as another went with its tracing: an answer accounted meanwhile left without the new statement."""
    store = open_store()
    first, second = TracingKey("NCIS", "NCIS-1"), TracingKey("NCIS", "NCIS-2")
    store.write([Upsert(file_tracing("NCIS-1")), Upsert(file_tracing("NCIS-2", surname="Moore"))], actor="NCIS")
    marks = [store.dispute_mark()]
    assert store.set_dispute(first, _dispute(1))
    marks.append(store.dispute_mark())
    assert store.set_dispute(first, _dispute(2))  # replaces the first statement
    marks.append(store.dispute_mark())
    store.write([Delete(first, 2, "DELETED BY OWNING AGENCY")], actor="NCIS")  # its statement goes with it
    assert store.set_dispute(second, _dispute(3))  # as many statements held as before
    marks.append(store.dispute_mark())
    assert len(set(marks)) == 4, marks
    assert open_store().dispute_mark() == marks[-1]  # another instance on the same data reads the same
    assert not store.set_dispute(first, _dispute(4))  # no live tracing: nothing attached, nothing moves
    assert store.dispute_mark() == marks[-1]


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


def test_the_count_is_written_at_its_making_and_refuses_once_closed(tmp_path: Path) -> None:
    """Sized sparse, the file's block was taken at the first write through the map: on a full disk a bus
    error that killed the server after the statement was stored (a review of this change). And a closed
    count's descriptor may be another file's by then: it is never locked again."""
    path = tmp_path / "index.db.disputes"
    signal = DisputeSignal(path)
    assert path.stat().st_size == 8
    assert path.stat().st_blocks > 0  # written, not a hole
    signal.bump()
    signal.close()
    with pytest.raises(Unavailable, match="closed"):
        signal.bump()
    with pytest.raises(Unavailable, match="closed"):
        signal.read()
    assert DisputeSignal(path).read() == 1  # kept


def test_a_store_whose_count_cannot_be_opened_is_refused_and_leaves_no_writer_behind(tmp_path: Path) -> None:
    path = tmp_path / "index.db"
    signal_path(path).mkdir()  # stands in for a file this user may not open
    threads = threading.active_count()
    with pytest.raises(Unavailable, match=r"index\.db\.disputes"):
        SqliteStore(path)
    assert threading.active_count() == threads


def test_statements_restored_by_a_migration_move_the_mark(tmp_path: Path) -> None:
    source = _store_with_one(tmp_path / "a.db")
    try:
        assert source.set_dispute(TracingKey("NCIS", "NCIS-1"), _dispute(1))
        held = list(source.iter_all())
    finally:
        source.close()
    target = SqliteStore(tmp_path / "b.db", clock=lambda: NOW)
    try:
        before = target.dispute_mark()
        target.restore(held)
        assert target.dispute_mark() != before
    finally:
        target.close()


open_cluster = store_backends.open_cluster  # the fixture, bound by name (tests/store_backends.py)


def test_the_cluster_s_mark_is_read_quietly_and_never_comes_back(
    open_cluster: Opener, caplog: pytest.LogCaptureFixture
) -> None:
    """Before any filing the mark's document is not there: read as 0 without the client's WARNING a 404
    brings (two an answer). And a mark once read never comes back: the document's version, tried first,
    started again at 1 when its index was made again (a review of this change)."""
    store = open_cluster()
    with caplog.at_level(logging.WARNING):
        assert store.dispute_mark() == 0
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    store.write([Upsert(file_tracing("NCIS-1"))], actor="NCIS")
    assert store.set_dispute(TracingKey("NCIS", "NCIS-1"), _dispute(1))
    first = store.dispute_mark()
    assert isinstance(store, OpenSearchStore)
    store._client.indices.delete(index=store.names.dispute_filings)  # an operator's mistake, or a restore
    again = open_cluster()  # a start makes what is missing
    assert again.set_dispute(TracingKey("NCIS", "NCIS-1"), _dispute(2))
    assert again.dispute_mark() not in (0, first)
