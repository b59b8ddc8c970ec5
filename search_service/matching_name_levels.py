"""The name levels of the fuzzy matcher and a version's weights for them (`NameWeights`): what
`search_service.matching_names` compares with, and what `search_service.matching_versions` sets per version
(tabulated in docs/MATCHERS.md).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import IntEnum

import numpy as np
import numpy.typing as npt

from search_service.matching_levels import UNUSED_WEIGHT

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]


class NameLevel(IntEnum):
    MISSING = 0
    EXACT = 1
    NICKNAME = 2
    COMPOUND_PART = 3
    JW_94 = 4
    JW_88_PHONETIC = 5
    JW_88 = 6
    JW_80_PHONETIC = 7
    JW_80 = 8
    PHONETIC = 9
    MIDDLE_AS_GIVEN = 10
    INITIAL = 11
    ONE_EDIT = 12
    TWO_EDITS = 13
    DISAGREE = 14
    # From fuzzy-3: the part is absent on both sides (a query without a given name, a record without
    # one). Weighs only where a version uses it; elsewhere such a pair stays MISSING, weight 0.
    BOTH_MISSING = 15
    # From fuzzy-9: a surname and another romanization of it (LEE / YI / RHEE, ZHOU / CHOW: indexer.
    # surname_romanizations), as surnames or, in the swapped alignment, against the given-name field.
    ROMANIZED = 16
    # From fuzzy-10: two given names of their own a few letters apart, a man's and a woman's (MICHAEL /
    # MICHELLE): another name, not a misspelling of this one (the surname column: in the swapped alignment).
    ANOTHER_NAME = 17
    # From fuzzy-13: two such names alike only as far as the lightest levels go (JACK / JANICE: the lowest
    # Jaro-Winkler band, or sounding alike alone), where ANOTHER_NAME would weigh more: another name all the
    # same (search_service.matching_another_name), weighing no more than the light level can.
    ANOTHER_NAME_FAINT = 18


_N = NameLevel
# The Jaro-Winkler bands: each band's weight grows within it (see NameWeights.grade).
BANDS = ((_N.JW_94, 0.94), (_N.JW_88_PHONETIC, 0.88), (_N.JW_88, 0.88), (_N.JW_80_PHONETIC, 0.8), (_N.JW_80, 0.8))
# (band, its floor, the band's level when the names sound alike too; none above JW_94).
JW_LEVELS = (
    (_N.JW_94, 0.94, None),
    (_N.JW_88, 0.88, _N.JW_88_PHONETIC),
    (_N.JW_80, 0.80, _N.JW_80_PHONETIC),
)
# Levels whose agreement is on the name's value, so that the name's census frequency adjusts them.
VALUE_LEVELS = (_N.EXACT, _N.NICKNAME, _N.COMPOUND_PART, _N.ONE_EDIT, _N.TWO_EDITS, *(level for level, _ in BANDS))


@dataclass(frozen=True, eq=False)
class NameWeights:
    """The name half of one matcher version (`search_service.matching_versions.Matcher`): a weight in bits per
    level for surname, given and middle name (UNUSED_WEIGHT: the field never takes the level), the
    suffix weights, and how the weights are graded and adjusted."""

    table: dict[NameLevel, tuple[float, float, float]]  # level -> (surname, given, middle)
    suffix: tuple[float, float, float]  # missing, same, different
    swap_penalty: float  # the swapped alignment costs this much, so that as good a straight one wins
    # Within a Jaro-Winkler band the weight grows by `grade` bits per unit of similarity above the band's
    # floor, so that of two typos the closer ranks first; never past the next band's weight.
    grade: float
    # Term frequency: tf_scale * log2(u_average / u_name) bits on a value agreement, clipped to tf_range.
    tf_scale: float
    tf_range: tuple[float, float]
    # ONE_EDIT and TWO_EDITS (optimal string alignment distance) only for parts at least this long.
    edit_min_length: int = 99
    two_edit_min_length: int = 99

    def column(self, field: int) -> Floats:
        return np.array([self.table.get(level, (UNUSED_WEIGHT,) * 3)[field] for level in NameLevel])

    @property
    def surname(self) -> Floats:
        return self.column(0)

    @property
    def given(self) -> Floats:
        return self.column(1)

    @property
    def middle(self) -> Floats:
        return self.column(2)

    @functools.cached_property
    def arrays(self) -> NameArrays:
        floor = np.zeros(len(NameLevel), dtype=np.float32)
        slope = np.zeros(len(NameLevel), dtype=np.float32)
        for level, band_floor in BANDS:
            floor[level], slope[level] = band_floor, self.grade
        value = np.zeros(len(NameLevel), dtype=np.bool_)
        value[list(VALUE_LEVELS)] = True
        return NameArrays(self.surname, self.given, self.middle, np.array(self.suffix), floor, slope, value)

    def uses(self, level: NameLevel) -> bool:
        return any(w > UNUSED_WEIGHT for w in self.table.get(level, (UNUSED_WEIGHT,) * 3))


@dataclass(frozen=True, slots=True)
class NameArrays:
    surname: Floats
    given: Floats
    middle: Floats
    suffix: Floats
    floor: npt.NDArray[np.float32]
    slope: npt.NDArray[np.float32]
    value: Bools
