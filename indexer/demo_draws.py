"""The random draws the demo generator's parts share (`indexer.demo`).

Every part draws from one `random.Random(seed)`, so a seed's tracings depend on the order of the calls
alone. Weighted choices are a bisect over cumulative weights (`Weighted`): the generator's speed
rests on it.
"""

from __future__ import annotations

import datetime as dt
import random as random_module
from bisect import bisect_right
from collections.abc import Callable, Sequence
from itertools import accumulate
from typing import Generic, TypeVar

T = TypeVar("T")
Random = Callable[[], float]  # the shared Random's bound `random`, called directly for speed


class Weighted(Generic[T]):
    """A fixed weighted choice: one bisect over cumulative weights per draw."""

    __slots__ = ("_cumulative", "_items", "_last")

    def __init__(self, pairs: Sequence[tuple[T, float]]) -> None:
        self._items = tuple(item for item, _ in pairs)
        self._cumulative = tuple(accumulate(weight for _, weight in pairs))
        self._last = len(self._items) - 1

    def pick(self, random: Random) -> T:
        cumulative = self._cumulative
        return self._items[bisect_right(cumulative, random() * cumulative[-1], 0, self._last)]


class Draws:
    """Uniform draws on the shared `rng`, and the day the history runs up to (`today`)."""

    def __init__(self, rng: random_module.Random, today: dt.date) -> None:
        self.rng = rng
        self.random: Random = rng.random
        self.today = today
        self.today_ordinal = today.toordinal()

    def between(self, low: int, high: int) -> int:
        """Uniform integer in [low, high]."""
        return low + int(self.random() * (high - low + 1))

    def day_between(self, low: dt.date, high: dt.date) -> dt.date:
        return dt.date.fromordinal(self.between(low.toordinal(), high.toordinal()))

    def choice(self, items: Sequence[T]) -> T:
        return items[int(self.random() * len(items))]


def add_years(day: dt.date, years: int) -> dt.date:
    """The same day `years` later (earlier when negative); 29 February becomes the 28th."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)
