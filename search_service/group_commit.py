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

Each waiter sleeps on a lock of its own, and a finished write wakes only the callers it made durable and
the one caller that leads next. (A condition's notify_all woke every queued caller after every write,
to find most of them still queued: under load, a dozen needless wake-ups per write, each fighting for
the GIL with the threads doing real work.)
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from indexer.exc import DciiError, InvalidArgument, Unavailable
from indexer.failures import failure_text

T = TypeVar("T")


def _locked() -> threading.Lock:
    lock = threading.Lock()
    lock.acquire()
    return lock


@dataclass(eq=False)
class _Waiter(Generic[T]):
    items: Sequence[T]
    wake: threading.Lock = field(default_factory=_locked)  # released once: done, or told to lead
    done: bool = False
    error: BaseException | None = None
    taken: bool = False  # a leader has it in its write: too late to withdraw
    lead: bool = False  # told to lead the next write


class GroupCommit(Generic[T]):
    def __init__(self, write: Callable[[list[T]], None], *, timeout: float, what: str) -> None:
        self._write = write
        self._timeout = timeout
        self._what = what
        self._mutex = threading.Lock()
        self._queue: list[_Waiter[T]] = []
        self._leading = False  # a write is in progress, or its next leader is on its way
        self.writes = 0  # how many writes were made (a caller-visible figure for tests and metrics)

    def commit(self, items: Sequence[T]) -> None:
        me: _Waiter[T] = _Waiter(items)
        with self._mutex:
            if self._leading:
                self._queue.append(me)
            else:
                self._leading = me.lead = me.taken = True
        if not me.lead:
            self._wait(me)
        if not me.done:
            with self._mutex:  # lead: this caller's items first, then everything queued until now
                group, self._queue = [me, *self._queue], []
                for waiter in group:
                    waiter.taken = True
            self._lead(group, me)
        if me.error is not None:
            raise me.error

    def _wait(self, me: _Waiter[T]) -> None:
        if me.wake.acquire(timeout=self._timeout):
            return
        with self._mutex:
            if not me.taken and not me.lead:
                self._queue.remove(me)
                raise Unavailable(f"{self._what}: timed out waiting for the writer")
        me.wake.acquire()  # taken by a leader (bounded by the writer's timeouts), or told to lead

    def _lead(self, group: list[_Waiter[T]], leader: _Waiter[T]) -> None:
        error: BaseException | None = None
        try:
            self._write([item for waiter in group for item in waiter.items])
        except BaseException as caught:  # handed to every caller in the group, then raised
            error = caught
        with self._mutex:
            self.writes += 1
            for waiter in group:
                waiter.done = True
                waiter.error = error if error is None or waiter is leader else _copy(error)
            following = self._queue.pop(0) if self._queue else None
            if following is None:
                self._leading = False
            else:
                following.lead = following.taken = True
        for waiter in group:
            if waiter is not leader:
                waiter.wake.release()
        if following is not None:
            following.wake.release()


def _copy(error: BaseException) -> BaseException:
    """The error for another caller of the same write: a fresh exception of the project's own kind (one
    exception object raised in several threads would share, and tangle, one traceback)."""
    if isinstance(error, DciiError) and not isinstance(error, InvalidArgument):
        return type(error)(error.message)
    return Unavailable(f"the write failed: {failure_text(error)}")
