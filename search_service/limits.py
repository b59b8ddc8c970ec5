"""Per-activity rate limits: a token bucket per accredited activity.

One terminal (or a runaway connector) must not take the capacity that thousands of others share. A call
over the limit is refused at once with RESOURCE_EXHAUSTED, before any work, and the caller may retry
after a short backoff; nothing queues without bound.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from indexer.exc import ResourceExhausted


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self._rate, self._burst, self._clock = rate, burst, clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def take(self, key: str, cost: float = 1.0) -> None:
        """Spend `cost` tokens of `key`'s bucket, or raise ResourceExhausted."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(self._burst, now)
            bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.at) * self._rate)
            bucket.at = now
            if bucket.tokens < cost:
                raise ResourceExhausted(
                    f"rate limit: activity {key} may make {self._rate:g} calls a second (bursts of "
                    f"{self._burst:g}); retry after a short backoff"
                )
            bucket.tokens -= cost
