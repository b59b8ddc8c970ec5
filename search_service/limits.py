"""Per-activity limits: a token bucket (calls a second) and a cap on calls in progress at once.

One terminal (or a runaway connector) must not take the capacity that thousands of others share. A call
over a limit is refused at once with RESOURCE_EXHAUSTED, before any work, and the caller may retry
after a short backoff; nothing queues without bound.

The rate alone does not protect the worker threads: a few calls a second of client streams that are then
left idle hold a thread each for as long as their deadline allows, so one activity could take the whole
pool while everyone else's calls queue (tests/test_client_faults.py). The cap on calls in progress bounds
what one activity can hold, whatever its calls do once admitted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

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
                raise rate_refusal(key, self._rate, self._burst)
            bucket.tokens -= cost

    def give_back(self, key: str, cost: float = 1.0) -> None:
        """Return `cost` tokens taken for a call that turned out not to need them (never above the burst)."""
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is not None:
                bucket.tokens = min(self._burst, bucket.tokens + cost)

    def spent(self, key: str) -> bool:
        """Whether `key`'s bucket holds less than one token now (nothing spent by asking)."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            return bucket is not None and bucket.tokens + (now - bucket.at) * self._rate < 1


class RateLimit(Protocol):
    """A per-activity rate limit: this process's (RateLimiter) or every serving process's together
    (search_service.shared_rates.SharedRateLimiter)."""

    def take(self, key: str, cost: float = 1.0) -> None: ...


def rate_refusal(key: str, rate: float, burst: float) -> ResourceExhausted:
    return ResourceExhausted(
        f"rate limit: activity {key} may make {rate:g} calls a second (bursts of {burst:g}); retry after a "
        "short backoff"
    )


class CallSlot:
    """One admitted call's place under its activity's cap; `release` is idempotent and thread-safe, so a
    call may release on every path by which it ends (its handler's finally and gRPC's end-of-call callback)."""

    __slots__ = ("_key", "_limiter", "_released")

    def __init__(self, limiter: CallLimiter | None, key: str) -> None:
        self._limiter, self._key = limiter, key
        self._released = limiter is None

    def release(self) -> None:
        if self._limiter is not None:
            self._limiter._release(self)

    def __enter__(self) -> CallSlot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


# The slot of a call no cap applies to (health checks, a server built without a limiter).
UNCAPPED = CallSlot(None, "")


class CallLimiter:
    """At most `limit` calls in progress per activity; the call over it is refused at once."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("the calls an activity may have in progress must be at least 1")
        self.limit = limit
        # Only activities with a call in progress have an entry: memory follows the calls, not the registry.
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str) -> CallSlot:
        """A slot for one call of `key`, or ResourceExhausted when it already has `limit` in progress."""
        with self._lock:
            held = self._held.get(key, 0)
            if held >= self.limit:
                raise ResourceExhausted(
                    f"concurrency limit: activity {key} may have {self.limit} calls in progress at once; "
                    "retry when one of them ends"
                )
            self._held[key] = held + 1
        return CallSlot(self, key)

    def in_progress(self, key: str) -> int:
        with self._lock:
            return self._held.get(key, 0)

    def _release(self, slot: CallSlot) -> None:
        with self._lock:
            if slot._released:
                return
            slot._released = True
            left = self._held[slot._key] - 1
            if left:
                self._held[slot._key] = left
            else:
                del self._held[slot._key]
