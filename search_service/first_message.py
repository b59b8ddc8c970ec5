"""A unary call's request message, read only once the call is authorized, and not waited for forever.

gRPC's synchronous server gives a unary call a worker thread as soon as its headers arrive, and that thread
waits for the request message with no limit. A client that sends the headers and never the message held a
worker for good, before any check of its certificate, rate or cap: forty such calls from a certificate
accredited to nothing, or a revoked one, left every other terminal unanswered (a review of a misbehaving
terminal). So the AuthInterceptor registers each unary-request method as a request-streaming one (the
wire is the same: a unary client is answered unchanged), authorizes and admits the call on its headers,
and only then reads its one message here: a call refused is answered at once, an admitted one waits under
its activity's cap, and at most `FIRST_MESSAGE_SECONDS` (one watchdog thread cancels the calls waiting
longer; a unary client sends its message with its headers).
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc

from indexer.exc import InvalidArgument
from indexer.model import Violation

FIRST_MESSAGE_SECONDS = 10.0


class _Watchdog:
    """Cancels the calls still waiting for their message at their deadline: one thread for all of them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._due: list[tuple[float, int]] = []  # (deadline, ticket), a heap
        self._waiting: dict[int, grpc.ServicerContext] = {}
        self._tickets = itertools.count()
        self._thread: threading.Thread | None = None

    def watch(self, context: grpc.ServicerContext, seconds: float) -> int:
        with self._lock:
            ticket = next(self._tickets)
            self._waiting[ticket] = context
            heapq.heappush(self._due, (time.monotonic() + seconds, ticket))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="first-message-watchdog", daemon=True)
                self._thread.start()
        return ticket

    def unwatch(self, ticket: int) -> None:
        with self._lock:
            self._waiting.pop(ticket, None)  # its heap entry is dropped when it comes due

    def _run(self) -> None:
        while True:
            overdue: list[grpc.ServicerContext] = []
            with self._lock:
                now = time.monotonic()
                while self._due and self._due[0][0] <= now:
                    _, ticket = heapq.heappop(self._due)
                    context = self._waiting.pop(ticket, None)
                    if context is not None:
                        overdue.append(context)
                wait = self._due[0][0] - now if self._due else 1.0
            for context in overdue:
                context.cancel()  # the waiting read raises, and the worker is free
            # At most a second asleep: a call watched meanwhile is due 10 s on, so it is cancelled in time.
            time.sleep(min(max(wait, 0.05), 1.0))


_WATCHDOG = _Watchdog()


def first_message(requests: Iterator[Any], context: grpc.ServicerContext, seconds: float | None = None) -> Any:
    """The call's one request message, waited for at most `seconds` (FIRST_MESSAGE_SECONDS unless given;
    then the call is cancelled: the read raises gRPC's RpcError, which ends the call quietly);
    InvalidArgument when the client sent none."""
    ticket = _WATCHDOG.watch(context, FIRST_MESSAGE_SECONDS if seconds is None else seconds)
    try:
        return next(requests)
    except StopIteration:
        raise InvalidArgument([Violation("request", "the call carried no request message")]) from None
    finally:
        _WATCHDOG.unwatch(ticket)
