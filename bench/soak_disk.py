"""The disk under the server's data during a soak, second by second: how long its writes waited.

Every answered query waits for its disclosures to be durable (the audit trail's fsync), so a disk that
stalls stops every answer while it does, and the calls that arrive meanwhile fill the server's cap on
calls in progress: the refusals then say nothing about the server. These figures tell the two apart.
From /sys/dev/block/M:m/stat of the block device holding the data directory, each second: the time the
write and flush requests completed in it had taken, summed (a quiet second of a soak: tens of ms; a
second in which the device stalled: most of a second or more, as overlapping requests add up).
"""

from __future__ import annotations

import itertools
import os
import statistics
from pathlib import Path
from typing import Any

from bench.soak_clients import Sample

# A reading: (seconds since the phase began, ms spent on completed writes and flushes so far)
Reading = tuple[float, int]


def device_stat(directory: Path) -> Path | None:
    """The kernel's I/O counters of the block device holding `directory` (None on tmpfs, overlays)."""
    device = os.stat(directory).st_dev
    stat = Path(f"/sys/dev/block/{os.major(device)}:{os.minor(device)}/stat")
    return stat if stat.exists() else None


def read(stat: Path, at: float) -> Reading:
    """Fields 8 (ms writing) and 17 (ms flushing, kernels from 5.5) of Documentation/block/stat.rst."""
    fields = [int(field) for field in stat.read_text().split()]
    return at, fields[7] + (fields[16] if len(fields) > 16 else 0)


def report(readings: list[Reading], samples: list[Sample]) -> dict[str, Any] | None:
    """The disk's write time per second: the median second's, the slowest second's (and when), and the
    slowest within a second of any call not answered OK (None when nothing was refused)."""
    seconds = [(start, ms - before) for (start, before), (_, ms) in itertools.pairwise(readings)]
    if not seconds:
        return None
    refused = [at for at, _, code in samples if code not in ("OK", "LAG")]
    # A request stuck for most of a second is counted in the second it completes in: look one either side.
    near = [ms for start, ms in seconds if any(start - 1.0 <= at < start + 2.0 for at in refused)]
    slowest_at, slowest = max(seconds, key=lambda second: second[1])
    return {
        "write_ms_median_second": statistics.median(ms for _, ms in seconds),
        "write_ms_slowest_second": slowest,
        "slowest_second_at_s": round(slowest_at),
        "write_ms_near_refusals": max(near) if near else None,
    }
