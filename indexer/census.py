"""US census 1990 name frequencies, loaded once and sampled fast.

The files ship with the `names` package (dist.all.last, dist.male.first, dist.female.first; columns
NAME, frequency %, cumulative %, rank). The census prints frequencies to three decimals, so about
70,000 rare surnames read 0.000 although together they hold about 11% of the population (the
cumulative column keeps growing through them). Those names get an equal share of that unlisted mass,
so rare surnames do occur, each far less often than any listed one.

Frequencies are in percent of the population (of each sex for given names), names in the census's
own spelling: uppercase ASCII, no spaces.
"""

from __future__ import annotations

import functools
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from itertools import accumulate
from pathlib import Path
from typing import Literal

import names

Sex = Literal["M", "F"]

_CENSUS_DIR = Path(names.__file__).resolve().parent
_FILES: dict[str, str] = {"last": "dist.all.last", "M": "dist.male.first", "F": "dist.female.first"}


@dataclass(frozen=True, slots=True)
class CensusTable:
    """One census list: names (uppercase, most frequent first) with their frequencies in percent."""

    names: tuple[str, ...]
    frequencies: tuple[float, ...]
    # Title-cased spellings ("Mcdonald"), as a repository sends a name; same order as `names`.
    title_names: tuple[str, ...]
    cumulative: tuple[float, ...]

    def sample(self, random: Callable[[], float]) -> str:
        """A title-cased name drawn with the census frequency; `random` is a seeded `Random.random`."""
        cumulative = self.cumulative
        return self.title_names[bisect_right(cumulative, random() * cumulative[-1], 0, len(cumulative) - 1)]

    def pairs(self) -> list[tuple[str, float]]:
        return list(zip(self.names, self.frequencies, strict=True))


def _read(filename: str) -> list[tuple[str, float]]:
    rows: list[tuple[str, float, float]] = []
    with (_CENSUS_DIR / filename).open(encoding="ascii") as lines:
        for line in lines:
            fields = line.split()
            if len(fields) == 4:
                rows.append((fields[0], float(fields[1]), float(fields[2])))
    if not rows:
        raise RuntimeError(f"census file {filename} is empty")
    listed = sum(frequency for _, frequency, _ in rows)
    unlisted = max(rows[-1][2] - listed, 0.0)
    zeros = sum(1 for _, frequency, _ in rows if frequency == 0.0)
    # Half the smallest printed frequency (0.001) is the most a name printed as 0.000 can hold.
    tail_share = min(unlisted / zeros, 0.0005) if zeros else 0.0
    return [(name, frequency if frequency > 0.0 else tail_share) for name, frequency, _ in rows]


def _table(pairs: list[tuple[str, float]]) -> CensusTable:
    pairs = [pair for pair in pairs if pair[1] > 0.0]
    return CensusTable(
        names=tuple(name for name, _ in pairs),
        frequencies=tuple(frequency for _, frequency in pairs),
        title_names=tuple(name.capitalize() for name, _ in pairs),
        cumulative=tuple(accumulate(frequency for _, frequency in pairs)),
    )


@functools.cache
def surname_table() -> CensusTable:
    """All 88,799 census surnames (SMITH first)."""
    return _table(_read(_FILES["last"]))


@functools.cache
def given_name_table(sex: Sex | None = None) -> CensusTable:
    """Given names of one sex, or of both (a name's share of the whole population: the mean of its
    shares among males and among females, most frequent first)."""
    if sex is not None:
        return _table(_read(_FILES[sex]))
    merged: dict[str, float] = {}
    for one_sex in ("M", "F"):
        for name, frequency in given_name_table(one_sex).pairs():
            merged[name] = merged.get(name, 0.0) + frequency / 2
    return _table(sorted(merged.items(), key=lambda pair: (-pair[1], pair[0])))


def iter_census_surnames() -> list[tuple[str, float]]:
    """(SURNAME, frequency %) for every census surname, most frequent first. A fresh list each call."""
    return surname_table().pairs()


def census_given_names(sex: Sex | None = None) -> list[tuple[str, float]]:
    """(GIVEN NAME, frequency %) for one sex ("M" or "F") or both, most frequent first. A fresh list."""
    return given_name_table(sex).pairs()
