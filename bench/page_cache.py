"""How much of a file the kernel holds in its page cache, by mincore(2) over a read-only map of it.

The scale bench records this for the store at the start of each latency pass. The figures at 10 million
tracings depend on it more than on any change of code: a candidate whose page is cached costs
microseconds, one read from disk a fraction of a millisecond. The machines these benchmarks run on
reclaim page cache on their own (a DAMON `pageout` scheme: file pages not touched for ~30 s are dropped,
docs/BENCHMARKS.md, fifteenth session), so a pass that follows another on different pages starts cold.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import os
from pathlib import Path

import numpy

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_ubyte)]
_MAP_FAILED = ctypes.c_void_p(-1).value
_CHUNK = 1 << 30  # map a gigabyte at a time: an 11 GB store needs no 11 GB of address space at once


def resident_fraction(path: Path) -> float:
    """The share of `path`'s pages in the page cache now (1.0 for an empty file). Reads no page: mincore
    only reports, and the map is never touched."""
    size = path.stat().st_size
    if size == 0:
        return 1.0
    page = mmap.PAGESIZE
    resident = 0
    fd = os.open(path, os.O_RDONLY)
    try:
        for offset in range(0, size, _CHUNK):
            length = min(_CHUNK, size - offset)
            address = _libc.mmap(None, length, mmap.PROT_READ, mmap.MAP_SHARED, fd, offset)
            if address in (None, _MAP_FAILED):
                raise OSError(ctypes.get_errno(), "mmap failed")
            try:
                pages = (length + page - 1) // page
                vector = (ctypes.c_ubyte * pages)()
                if _libc.mincore(address, length, vector) != 0:
                    raise OSError(ctypes.get_errno(), "mincore failed")
                resident += int((numpy.frombuffer(bytes(vector), dtype=numpy.uint8) & 1).sum())
            finally:
                _libc.munmap(address, length)
    finally:
        os.close(fd)
    return resident / ((size + page - 1) // page)
