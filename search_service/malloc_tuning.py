"""glibc's allocator settings for the threaded serving processes (the server, its replicas, its batch worker).

glibc gives each thread that allocates while another holds the allocator's lock an arena of its own, up to
eight per core, and an arena keeps what was freed in it for reuse by that arena only. gRPC grows its worker
pool to `ServerConfig.max_workers` threads, so a server's anonymous memory grew with every burst of calls
landing on threads that had not allocated before: +130 to +180 MiB over 12 to 40 rounds of one client fault
(`tests/test_client_faults.py`, 40 rounds of short-deadline searches: +183 MiB and still rising), where two
arenas held it flat (-15 to +16 MiB: the same rounds under `MALLOC_ARENA_MAX=2`). Python code allocates under
the GIL anyway, so more arenas buy little concurrency; docs/BENCHMARKS.md has the throughput side by side.
"""

from __future__ import annotations

import ctypes
import os

# mallopt's parameter number for the arena limit (glibc's malloc.h: M_ARENA_MAX).
_M_ARENA_MAX = -8
SERVING_ARENAS = 2
ENV = "MALLOC_ARENA_MAX"  # glibc reads it at start-up; an operator who set it keeps their choice


def limit_malloc_arenas(arenas: int = SERVING_ARENAS) -> bool:
    """Allow at most `arenas` allocator arenas in this process from now on (threads that already have one
    keep it, so call this before serving starts threads). False where the C library has no such setting
    (not glibc) or `MALLOC_ARENA_MAX` is set in the environment, which glibc has applied already."""
    if ENV in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_ARENA_MAX, arenas))
