"""Serving processes limit glibc's allocator arenas (search_service.malloc_tuning): checked in fresh
interpreters, as the setting is process-wide, by glibc's own count (malloc_stats), and in a real server
subprocess after a burst of calls on many threads, by the arenas its heaps in /proc/PID/maps belong to."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from dcii.v1 import search_pb2
from search_service import pki
from search_service.accreditation import Role
from search_service.malloc_tuning import ENV, SERVING_ARENAS
from tests.server_proc import spawn_server
from tests.support import ROOT, Index, free_port, make_index

glibc = pytest.mark.skipif(os.confstr("CS_GNU_LIBC_VERSION") is None, reason="arenas are glibc's")

# Threads that each allocate at once, then glibc's statistics: one "Arena N:" paragraph per arena.
_PROBE = """
import ctypes, sys, threading
from search_service.malloc_tuning import limit_malloc_arenas
applied = limit_malloc_arenas() if sys.argv[1] == "limit" else None
start = threading.Barrier(12)
def allocate():
    start.wait()
    kept = [bytearray(4096) for _ in range(2000)]
threads = [threading.Thread(target=allocate) for _ in range(12)]
for t in threads: t.start()
for t in threads: t.join()
print(applied, flush=True)
ctypes.CDLL(None).malloc_stats()
"""


def _probe(mode: str, env: dict[str, str] | None = None) -> tuple[str, int]:
    environ = {k: v for k, v in os.environ.items() if k != ENV} | (env or {})
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, mode], cwd=ROOT, capture_output=True, text=True, check=True, env=environ
    )
    return done.stdout.strip(), len(re.findall(r"^Arena \d+:", done.stderr, re.MULTILINE))


@glibc
def test_a_serving_process_allocates_in_at_most_two_arenas() -> None:
    applied, arenas = _probe("limit")
    assert applied == "True"
    assert 1 <= arenas <= SERVING_ARENAS
    _, unlimited = _probe("none")  # the same threads without the limit: the probe can tell
    assert unlimited > SERVING_ARENAS


@glibc
def test_an_operators_malloc_arena_max_is_kept() -> None:
    applied, arenas = _probe("limit", {ENV: "6"})
    assert applied == "False"
    assert SERVING_ARENAS < arenas <= 6


# ---- a real server ----

_HEAP = 64 * 2**20  # a non-main arena lives in heaps of 64 MiB, each aligned on its size (glibc's HEAP_MAX_SIZE)


def arenas(pid: int) -> int:
    """The non-main arenas of process `pid` (a child of this one, whose memory it may read). Their heaps
    are anonymous mappings starting on a 64 MiB boundary whose run of adjacent anonymous mappings (the used
    part, then the reserved rest) spans exactly 64 MiB; an arena that outgrows its heap adds another, and
    each heap begins with glibc's heap_info, whose first field points to the arena it belongs to."""
    spans: list[tuple[int, int]] = []
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        fields = line.split()
        if len(fields) > 5:  # a file, a stack or [heap]: not anonymous
            continue
        low, high = (int(x, 16) for x in fields[0].split("-"))
        if spans and spans[-1][1] == low and low % _HEAP:
            spans[-1] = (spans[-1][0], high)
        else:
            spans.append((low, high))
    heaps = [low for low, high in spans if low % _HEAP == 0 and high - low == _HEAP]
    with open(f"/proc/{pid}/mem", "rb") as memory:
        owners = set()
        for low in heaps:
            memory.seek(low)
            owners.add(int.from_bytes(memory.read(8), sys.byteorder))
    # A heap mapped a moment ago whose heap_info glibc has not written yet reads as owner 0: no arena.
    owners.discard(0)
    return len(owners)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> tuple[Index, tuple[pki.Issued, str, str]]:
    index = make_index(tmp_path_factory.mktemp("arenas"))
    return index, index.accredit("CCF-TERM", "ARMY-CCF", [Role.QUERIER])


def _burst(index: Index, login: tuple[pki.Issued, str, str], port: int) -> None:
    """Sixteen clients asking at once, so that gRPC grows its pool and its threads allocate."""
    index.port = port
    cert, account, password = login

    def ask(_: int) -> None:
        client = index.connect(cert)
        client.login(account, password)
        for _ in range(20):
            client.search(mode=search_pb2.SEARCH_MODE_NAME_ONLY, name={"surname": "Whitfield", "given_name": "Harold"})
        client.close()

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(ask, range(16)))


@glibc
@pytest.mark.parametrize(("env", "most"), [({}, SERVING_ARENAS), ({ENV: "16"}, None)], ids=["serving", "unlimited"])
def test_a_server_under_many_calls_keeps_its_arenas(
    served: tuple[Index, tuple[pki.Issued, str, str]], env: dict[str, str], most: int | None
) -> None:
    index, login = served
    port = free_port()
    with spawn_server(index.data_dir, index.pki_dir, port, env=env) as server:
        _burst(index, login, port)
        found = arenas(server.pid) + 1  # the main arena grows by brk, not in heaps
    print({"env": env, "arenas": found})
    if most is not None:
        assert found <= most
    else:
        assert found > SERVING_ARENAS, "the probe cannot see a server's arenas"
