"""Ingest's worker processes: the checking and preparing of each action, outside the server's GIL.

Ingest has one serial stage, the store's single writer, and it shares the server's process (and GIL) with
everything else. Before this pool, the handler threads' per-tracing work (parse, convert, edit criteria,
match keys, the stored forms: ~60 µs a tracing) ran under the same GIL, and the writer waited for it.
Now a group of actions is split among worker processes (`plan_encoded`), which send back plans the server
takes in cheaply (search_service.ingest_plan), and the server's process is left with the writer.

- Small groups (fewer than `min_actions`: a unary Delete, a trickle from one connector) are planned in the
  handler's thread: the round trip to a worker would cost them more than it saves, and a server that never
  sees a bulk load never starts a worker.
- Workers are started at the first bulk group (spawned, not forked: the server has gRPC's threads).
- A worker that dies (killed, out of memory) breaks the pool: the groups it held are planned in their
  handler threads instead, nothing is lost or refused for it, and the next group starts a fresh pool.
- The workers follow the server: when its end of their pipe closes, they stop.
"""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Sequence
from concurrent.futures import CancelledError, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import wait

from dcii.v1 import ingest_pb2
from search_service.gc_tuning import tune_garbage_collector
from search_service.ingest_plan import OtherCode, Plan, decode_plans, plan_action, plan_encoded

log = logging.getLogger(__name__)

# A worker's share of a group that has not come back after this long is planned in the handler's thread,
# and the pool replaced (it takes well under a second; a hung worker must not hold a stream for ever).
TASK_TIMEOUT = 60.0
# Below this many actions a group is planned in the handler's thread; a worker's share of a group is never
# smaller either (one task's round trip costs about what planning a few actions does).
MIN_POOL_ACTIONS = 64


def _start_worker() -> None:
    # Ctrl-C in the server's terminal, or the terminal closed (SIGHUP), reaches the whole process group:
    # the server drains its calls, then stops its pool itself (a worker gone first cut a stream's group).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    tune_garbage_collector()
    threading.Thread(target=_exit_with_the_server, name="server-watch", daemon=True).start()


def _exit_with_the_server() -> None:
    """A server killed outright (SIGKILL, OOM) cannot stop its workers, and they would wait for work for
    ever: each holds both ends of its task pipe, so it never sees the end of it. The parent's sentinel
    becomes readable when the parent dies, whatever the way."""
    parent = multiprocessing.parent_process()
    if parent is not None:
        wait([parent.sentinel])
    os._exit(0)


class IngestPool:
    def __init__(self, processes: int, *, min_actions: int = MIN_POOL_ACTIONS) -> None:
        self.processes = processes
        self._min_actions = min_actions
        self._lock = threading.Lock()
        self._executor: ProcessPoolExecutor | None = None
        self._closed = False

    def plan(self, agency: str, today: dt.date, requests: Sequence[ingest_pb2.IngestRequest]) -> list[Plan]:
        """Each action's plan, in order (as `plan_action` would give it)."""
        parts = min(self.processes, len(requests) // self._min_actions)
        executor = self._running() if parts >= 1 else None
        if executor is None:
            return [plan_action(agency, today, request) for request in requests]
        size = -(-len(requests) // parts)
        chunks = [requests[i : i + size] for i in range(0, len(requests), size)]
        day = today.isoformat()
        try:
            futures: list[Future[bytes]] = [
                executor.submit(plan_encoded, agency, day, [request.SerializeToString() for request in chunk])
                for chunk in chunks
            ]
        except (BrokenProcessPool, RuntimeError, OSError):  # broken, shut down meanwhile, or no process to start
            self._discard(executor)
            return [plan_action(agency, today, request) for request in requests]
        plans: list[Plan] = []
        other_code = False
        for chunk, future in zip(chunks, futures, strict=True):
            try:
                plans += decode_plans(future.result(timeout=TASK_TIMEOUT))
                continue
            except (BrokenProcessPool, TimeoutError):  # a worker died, or hangs: a new pool takes over
                self._discard(executor)
            except CancelledError:  # the server is stopping (`close`): this group is finished here
                pass
            except OtherCode:
                other_code = True  # given up once every chunk is back (its workers are busy until then)
            plans += [plan_action(agency, today, request) for request in chunk]
        if other_code:
            self._give_up(executor)
        return plans

    def _running(self) -> ProcessPoolExecutor | None:
        with self._lock:
            if self._closed or self.processes < 1:
                return None
            if self._executor is None:
                self._executor = self._started_pool()
            return self._executor

    def _started_pool(self) -> ProcessPoolExecutor | None:
        """A new pool with every worker started, or None when one could not be (plan in the handler's
        thread; the next group tries again).

        The standard pool spawns a worker whenever a submit finds none idle. Should another worker die
        meanwhile, the pool's manager thread tears the pool down while that submit adds to the process
        table the teardown is iterating: the manager thread fails ("dictionary changed size during
        iteration") and leaves the new worker and the pool's queues behind. Started whole here (one
        task a worker, submitted together and awaited), no later submit spawns anything."""
        executor = ProcessPoolExecutor(
            max_workers=self.processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
        )
        try:
            started = [executor.submit(os.getpid) for _ in range(self.processes)]
            for future in started:
                future.result(timeout=TASK_TIMEOUT)
        except (BrokenProcessPool, TimeoutError, RuntimeError, OSError):
            self._stop(executor)
            return None
        return executor

    def _discard(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._executor is broken:
                log.warning("an ingest worker process died; its groups were planned in the server, a new pool starts")
                self._executor = None
        self._stop(broken)

    @staticmethod
    def _stop(broken: ProcessPoolExecutor) -> None:
        # The broken pool's other workers are killed too: one may be blocked handing back a result nobody
        # reads any more, and the pool's own clean-up would wait for it for ever (at the latest when the
        # server exits). They hold nothing: whatever they were planning is planned again in the server.
        survivors = list((getattr(broken, "_processes", None) or {}).values())
        broken.shutdown(wait=False, cancel_futures=True)
        for process in survivors:
            if process.is_alive():
                process.kill()

    def _give_up(self, executor: ProcessPoolExecutor) -> None:
        """The workers run other code than this server (see ingest_plan.ROWS_FORMAT): plan in the
        server's threads from now on, until it is restarted."""
        with self._lock:
            if not self._closed:
                log.error(
                    "the ingest workers run other code than this server (upgraded in place?): bulk ingest is"
                    " checked in the server's threads until it is restarted"
                )
            self._closed = True
            if self._executor is executor:
                self._executor = None
        self._discard(executor)

    def worker_pids(self) -> list[int]:
        """The live worker processes' ids (for the operator's tools and the tests)."""
        with self._lock:
            executor = self._executor
        processes = getattr(executor, "_processes", None) or {}
        return sorted(pid for pid, process in processes.items() if process.is_alive())

    def close(self) -> None:
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)
