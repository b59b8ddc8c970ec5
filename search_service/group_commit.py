"""Group commit: concurrent callers share one durable write.

Each caller hands its items to `GroupCommit.commit` and returns once they are durable (or raises). When
no write is in progress, the caller becomes the leader: it takes everything queued so far (its own
items first among them) and writes it in one go, with one transaction and one set of fsyncs; callers
that arrive meanwhile queue, and when the leader is done one of them leads the next write. Under load,
N concurrent searches cost one audit write instead of N; alone, a caller writes at once, as before.

Each caller's items are all or nothing: they go in one write with the items of others. Should that write
fail, every caller in it gets the error (an I/O failure would have failed them all anyway), so a failure
never leaves part of one caller's items behind. A caller that waits longer than `timeout` while its
items are still queued withdraws them and gets Unavailable; items already taken by a leader are waited
for (the leader's own write is bounded by the writer's timeouts).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from indexer.exc import DciiError, InvalidArgument, Unavailable

T = TypeVar("T")


@dataclass(eq=False)
class _Waiter(Generic[T]):
    items: Sequence[T]
    done: bool = False
    error: BaseException | None = None
    taken: bool = False  # a leader has it in its write: too late to withdraw


class GroupCommit(Generic[T]):
    def __init__(self, write: Callable[[list[T]], None], *, timeout: float, what: str) -> None:
        self._write = write
        self._timeout = timeout
        self._what = what
        self._cond = threading.Condition()
        self._queue: list[_Waiter[T]] = []
        self._leading = False
        self.writes = 0  # how many writes were made (a caller-visible figure for tests and metrics)

    def commit(self, items: Sequence[T]) -> None:
        me: _Waiter[T] = _Waiter(items)
        deadline = time.monotonic() + self._timeout
        with self._cond:
            self._queue.append(me)
            while self._leading and not me.done:
                remaining = deadline - time.monotonic()
                if remaining <= 0 and not me.taken:
                    self._queue.remove(me)
                    raise Unavailable(f"{self._what}: timed out waiting for the writer")
                self._cond.wait(max(remaining, 0.05))
            if not me.done:
                self._leading = True
                group, self._queue = self._queue, []
                for waiter in group:
                    waiter.taken = True
        if not me.done:
            self._lead(group, me)
        if me.error is not None:
            raise me.error

    def _lead(self, group: list[_Waiter[T]], leader: _Waiter[T]) -> None:
        error: BaseException | None = None
        try:
            self._write([item for waiter in group for item in waiter.items])
        except BaseException as caught:  # handed to every caller in the group, then raised
            error = caught
        with self._cond:
            self.writes += 1
            for waiter in group:
                waiter.done = True
                waiter.error = error if error is None or waiter is leader else _copy(error)
            self._leading = False
            self._cond.notify_all()


def _copy(error: BaseException) -> BaseException:
    """The error for another caller of the same write: a fresh exception of the project's own kind (one
    exception object raised in several threads would share, and tangle, one traceback)."""
    if isinstance(error, DciiError) and not isinstance(error, InvalidArgument):
        return type(error)(error.message)
    return Unavailable(f"the write failed: {error.__class__.__name__}")
