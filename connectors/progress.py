"""What a connector tells its operator: the counts (Stats), the log lines and the progress bar (Progress).

Log lines are JSON on stderr, each with a `timestamp` (UTC), and never hold a name, an SSN or a date of
birth: counts, codes, record keys, and file names with SSN- and date-shaped text masked (`mask`). On a
terminal a rich progress bar shows the counts, and the events (retry, outage, changed, collision, done,
failed) are printed above it as they happen.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, TextIO

from connectors.checkpoint import utc_now

if TYPE_CHECKING:
    from rich.progress import Progress as Bar


@dataclass
class Stats:
    applied: int = 0
    unchanged: int = 0
    rejected: int = 0
    not_found: int = 0
    denied: int = 0
    collisions: int = 0  # answered UNCHANGED, and counted so, but dead-lettered: see Runner._collides
    retries: int = 0
    files_done: int = 0
    files_failed: int = 0
    files: bool = False  # an inbox's connector: its counts name files too

    @property
    def records(self) -> int:
        return self.applied + self.unchanged + self.rejected + self.not_found + self.denied

    @property
    def dead_letters(self) -> int:
        """Records written to the reject file: what an operator must look at."""
        return self.rejected + self.not_found + self.denied + self.collisions

    def as_dict(self) -> dict[str, int]:
        counts = {"records": self.records, **{k: v for k, v in asdict(self).items() if not k.startswith("files")}}
        return counts | ({"files_done": self.files_done, "files_failed": self.files_failed} if self.files else {})

    def since(self, before: Stats) -> dict[str, int]:
        """The record counts added since `before` (one file's, on its `done` or `failed` line)."""
        now, then = self.as_dict(), before.as_dict()
        return {k: v - then[k] for k, v in now.items() if not k.startswith("files")}


# The safety net the server's log lines have (dcii.cli.logs), wider: nine digits, an SSN as a person or a
# file name writes it (dashes, dots, spaces or underscores between, letters around: DOE123456789.csv),
# never goes into a log line. A file's name is logged, and a repository exporting one file per person may
# name it for them.
_SSN_SHAPED = re.compile(r"(?<!\d)(\d{3})[-. _]?(\d{2})[-. _]?(\d{4})(?!\d)")
# ... and for the same files, their date of birth: YYYY-MM-DD, YYYYMMDD, MM-DD-YYYY, DD.MM.YYYY, MMDDYYYY
# (any of - . _ or a space between), with the time of day that may follow it (an export's time stamp): six
# digits, or with colons. Four bare digits are not taken for a time (DOE_1968-03-14_1234.csv is masked).
_DATE_SHAPED = re.compile(
    r"(?<!\d)(?:(?P<y1>(?:19|20)\d\d)(?P<s1>[-._ ]?)(?P<m1>\d\d)(?P=s1)(?P<d1>\d\d)"
    r"|(?P<a2>\d\d)(?P<b2>\d\d)(?P<y2>(?:19|20)\d\d)"
    r"|(?P<a3>\d\d?)(?P<s3>[-._ ])(?P<b3>\d\d?)(?P=s3)(?P<y3>(?:19|20)\d\d))"
    r"(?P<time>[-_ T]?(?:[01]\d|2[0-3])[0-5]\d[0-5]\d|[-_ T]?(?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d)?)?(?!\d)"
)


def _unless_never_an_ssn(found: re.Match[str]) -> str:
    """[redacted], but for nine digits no SSN can be (area 000, 666 or 900-999, group 00, serial 0000): a
    sequence number such as NCIS_RA_000123456 is what the operator needs to read (a review of the diff)."""
    area, group, serial = found.groups()
    if area in ("000", "666") or area >= "900" or group == "00" or serial == "0000":
        return found.group(0)
    return "[redacted]"


def _unless_never_a_birth_date(found: re.Match[str]) -> str:
    """[redacted], but for a time stamp (no date of birth has a time of day), a date of last year or later
    (an export's date, export-2026-11-23.csv, which the operator needs to read) and digits no calendar
    holds."""
    if found.group("time"):
        return found.group(0)
    if found.group("y1"):
        readings = [found.group("y1", "m1", "d1")]
    else:
        n = 2 if found.group("y2") else 3
        year, a, b = found.group(f"y{n}", f"a{n}", f"b{n}")
        readings = [(year, a, b), (year, b, a)]  # month first (US) or day first
    if int(readings[0][0]) >= dt.datetime.now(dt.UTC).year - 1:
        return found.group(0)
    for year, month, day in readings:
        try:
            dt.date(int(year), int(month), int(day))
        except ValueError:
            continue
        return "[redacted]"
    return found.group(0)


def mask(text: str) -> str:
    """Text as a log line may carry it: without an SSN or a date of birth shape."""
    return _DATE_SHAPED.sub(_unless_never_a_birth_date, _SSN_SHAPED.sub(_unless_never_an_ssn, text))


class Progress:
    """Counts while running: a rich bar on a terminal, else a JSON log line every `every` records. Every
    line has a `timestamp` (UTC): at 3 a.m. the operator asks when last night's file went in."""

    def __init__(self, name: str, *, every: int = 1000, stream: TextIO | None = None) -> None:
        self.name, self.every = name, every
        self.stream = stream or sys.stderr
        self._bar: Bar | None = None
        self._last = 0
        if self.stream.isatty():
            from rich.console import Console
            from rich.progress import Progress as Bar
            from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

            self._bar = Bar(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=Console(file=self.stream),
            )
            self._bar.start()
            self._task = self._bar.add_task(name, total=None)

    def log(self, event: str, **fields: object) -> None:
        safe = {k: mask(v) if isinstance(v, str) else v for k, v in fields.items()}
        line = json.dumps({"event": event, "connector": self.name, **safe, "timestamp": utc_now()}, sort_keys=True)
        if self._bar is None:
            print(line, file=self.stream, flush=True)
        elif event != "progress":  # the bar shows the counts
            # Above the bar: a file moved to failed/, or the index down, was once shown only when the run ended.
            self._bar.console.print(line, markup=False, emoji=False, highlight=False, soft_wrap=True)

    def update(self, stats: Stats) -> None:
        if self._bar is not None:
            counts = ", ".join(f"{k} {v}" for k, v in stats.as_dict().items() if v)
            self._bar.update(self._task, description=f"{self.name}: {counts}")
        elif stats.records - self._last >= self.every:
            self._last = stats.records
            self.log("progress", **stats.as_dict())

    def close(self, stats: Stats, **extra: object) -> None:
        if self._bar is not None:
            self.update(stats)
            self._bar.stop()
        line = {"event": "summary", "connector": self.name, **stats.as_dict(), **extra, "timestamp": utc_now()}
        print(json.dumps(line), file=self.stream, flush=True)
