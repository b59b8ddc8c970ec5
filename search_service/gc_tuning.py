"""The garbage collector's settings for the long-running processes that answer ranked queries (the server
and its batch worker)."""

from __future__ import annotations

import gc

# The collector's thresholds for a serving process (CPython's default: 700, 10, 10). A ranked query on a
# large index makes tens of thousands of short-lived objects (candidate heads), so young collections ran
# mid-query and promoted them, and full collections over the ~1 million long-lived objects of the match
# caches followed every few seconds, ~0.5 s each: the p99 of FUZZY at 10 million tracings. Measured in
# process on the 10M bench store, the 600 bench FUZZY queries (`/tmp/gcprobe.py`, throwaway): default p99
# 550 ms, 6 full collections (3.4 s in all); these thresholds p99 60 ms, none.
GC_THRESHOLDS = (50_000, 20, 100)


def tune_garbage_collector() -> None:
    """For a long-running process: what start-up built (tables, caches) is frozen out of the collector's
    passes, and young collections are rarer (GC_THRESHOLDS). Process-wide, so only the entry points
    call it (`search_service.server.serve`, `search_service.batch_process.main`), not in-process tests."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
