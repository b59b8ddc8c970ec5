"""The scale bench's reading of how much of the store is in the page cache (bench/page_cache.py), on real
files: pages never read are not counted, pages read are, and measuring reads nothing itself."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench import page_cache
from bench.page_cache import resident_fraction

_SIZE = 64 * 1024 * 1024


def _sparse(path: Path) -> Path:
    with path.open("wb") as handle:
        handle.truncate(_SIZE)  # a hole: no page of it is in the page cache until read
    return path


def _read(path: Path, length: int) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)  # no read-ahead past what is asked
        offset = 0
        while offset < length:
            offset += len(os.pread(fd, min(1 << 20, length - offset), offset))
    finally:
        os.close(fd)


def test_a_file_never_read_is_not_in_the_page_cache_and_measuring_it_reads_nothing(tmp_path: Path) -> None:
    path = _sparse(tmp_path / "store.db")
    assert resident_fraction(path) == 0.0
    assert resident_fraction(path) == 0.0  # the first measurement brought nothing in


def test_the_pages_read_are_counted(tmp_path: Path) -> None:
    path = _sparse(tmp_path / "store.db")
    _read(path, _SIZE // 4)
    assert 0.24 <= resident_fraction(path) <= 0.26
    _read(path, _SIZE)
    assert resident_fraction(path) == 1.0


def test_a_file_larger_than_one_map_is_measured_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(page_cache, "_CHUNK", 8 * 1024 * 1024)  # eight maps for the 64 MB file
    path = _sparse(tmp_path / "store.db")
    _read(path, _SIZE // 2)
    assert 0.49 <= resident_fraction(path) <= 0.51


def test_an_empty_file_counts_as_cached(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    assert resident_fraction(path) == 1.0
