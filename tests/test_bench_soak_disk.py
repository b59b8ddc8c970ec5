"""The soak bench's reading of the data disk (bench/soak_disk.py): the time its writes took, second by second,
beside the refusals, on made-up counters; and the counters of the disk under a real directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench import soak_disk
from bench.soak_clients import Sample


def readings(ms_per_second: list[int]) -> list[soak_disk.Reading]:
    """One reading a second, the disk's requests completed in each second having taken the given time."""
    found: list[soak_disk.Reading] = [(0.0, 1000)]
    for second, ms in enumerate(ms_per_second, start=1):
        found.append((float(second), found[-1][1] + ms))
    return found


def test_a_stalled_second_is_found_and_named_beside_the_refusals() -> None:
    disk = readings([40, 40, 50, 819, 40, 30, 40])  # the fourth second: the disk stalled
    samples: list[Sample] = [(at / 10, 0.01, "OK") for at in range(70)]
    samples += [(3.6, 0.002, "RESOURCE_EXHAUSTED"), (7.0, 0.5, "LAG")]  # LAG: the client's own record
    assert soak_disk.report(disk, samples) == {
        "write_ms_median_second": 40,
        "write_ms_slowest_second": 819,
        "slowest_second_at_s": 3,
        "write_ms_near_refusals": 819,
    }


def test_refusals_far_from_a_slow_disk_are_not_blamed_on_it() -> None:
    disk = readings([40, 819, 40, 40, 40, 40, 60])
    report = soak_disk.report(disk, [(6.5, 0.002, "RESOURCE_EXHAUSTED")])
    assert report is not None and report["write_ms_near_refusals"] == 60
    assert soak_disk.report(disk, [(1.5, 0.01, "OK")]) == report | {"write_ms_near_refusals": None}


def test_no_readings_no_report() -> None:
    assert soak_disk.report([(0.0, 9)], []) is None
    assert soak_disk.report([], []) is None


def test_a_directory_on_no_block_device_has_no_counters() -> None:
    assert soak_disk.device_stat(Path("/proc")) is None  # the soak then reports no disk figures


def test_the_counters_of_a_real_directorys_disk_move_with_a_synced_write(tmp_path: Path) -> None:
    stat = soak_disk.device_stat(tmp_path)
    if stat is None:
        pytest.skip(f"{tmp_path} is on no block device (tmpfs or an overlay)")
    writes = int(stat.read_text().split()[4])  # write requests completed, so far
    with (tmp_path / "synced").open("wb") as handle:
        handle.write(b"x" * 65536)
        handle.flush()
        os.fsync(handle.fileno())
    assert int(stat.read_text().split()[4]) > writes, "the directory's writes reached another device"
    at, spent = soak_disk.read(stat, 2.5)
    assert at == 2.5 and spent >= 0
