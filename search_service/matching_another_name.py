"""Another given name, not a misspelling: two given names of their own, a man's and a woman's.

fuzzy-10 (ANOTHER_NAME): where such names are a few letters apart (MICHAEL / MICHELLE, JON / JOAN), the level
the likeness would have had, weighing more, is replaced. fuzzy-13 (ANOTHER_NAME_FAINT): where they are alike
only as far as the lightest levels go (JACK / JANICE, Jaro-Winkler 0.80 and not sounding alike), fuzzy-10 left
the likeness standing, as ANOTHER_NAME would have raised the score; so in PID_QUALIFIED a stranger of the other
sex with the query's surname and date of birth (a twin: CLARK, JACK / CLARK, JANICE) scored 0.999, the given
name counted as a second part agreeing. From fuzzy-13 such a pair is another name too, weighing -0.3 bit (no
more than the light level weighs for any two given names of their own: +0.5, less the census adjustment of
the commonest, JAMES, -0.77), and the one-part hold (`search_service.matching_one_part`) reads it so. And from
fuzzy-13 one name ten times commoner than the other excuses a one-letter slip only (JOHN / JOAN, GARY / GAY),
no longer names further apart (JAMES / JANE, WILLIAM / WILMA, GEORGE / GEORGIA scored 1.000 by name and date of
birth under fuzzy-12: a review of fuzzy-13's first draft).

Not for two names of one sex, however different they sound: short, long and other languages' forms of one
name (CHRISTIE / CHRISTINE, CAROL / CAROLYN, JOSE / JOSEPH) are one person's, and no list knows them all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from rapidfuzz.distance import OSA
from rapidfuzz.process import cdist

from search_service.matching_columns import FEMALE, MALE, NameColumns
from search_service.matching_given_forms import nicknames_crossed
from search_service.matching_levels import UNUSED_WEIGHT
from search_service.matching_name_levels import JW_LEVELS, NameLevel, NameWeights

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
Sims = npt.NDArray[np.float32]

_N = NameLevel

# Ten times commoner, in bits: of two given names this far apart in the census, the rarer is more likely a
# typo of the commoner than another person's name (GARY / GAY, LINDA / LINA: a review of fuzzy-10).
_TEN_TIMES = float(np.log2(10))


@dataclass(frozen=True, slots=True)
class Another:
    """(Q, R) masks: ANOTHER_NAME pairs, and (fuzzy-13, else None) ANOTHER_NAME_FAINT pairs."""

    names: Bools
    faint: Bools | None

    @property
    def either(self) -> Bools:
        return self.names if self.faint is None else self.names | self.faint


def another_names(
    q: NameColumns,
    c: NameColumns,
    w: NameWeights,
    hypocorisms: int,
    fields: tuple[int, int],
    table: Floats,
    sim: Sims,
    phonetic: Bools,
    edits: list[tuple[NameLevel, Bools]],
    nickname: Bools | None,
) -> Another | None:
    """The pairs whose names (the query's field `fields[0]` and the candidate's `fields[1]`, 0 the given name,
    1 the surname field: the swapped alignment compares a given name with the other's surname field) are
    another name: both given names of their own (`matching_columns.given_name_sex`), one a man's and the other
    a woman's, no nickname of each other (`nickname`, or found here where None), and not excused as a typo:
    before fuzzy-13 one ten times commoner than the other excused any pair (GARY / GAY, LINDA / LINA: a review
    of fuzzy-10), from fuzzy-13 only a one-letter slip (`_slips`: JOHN / JOAN, DANE / JANE; not JAMES / JANE,
    WILLIAM / WILMA, GEORGE / GEORGIA, a review of fuzzy-13). ANOTHER_NAME where a level weighing more than it
    in `table` would hold (a Jaro-Winkler band, sound-alike and a band, one edit): it never raises a score, nor
    lays itself between names as different as JAMES and MARY. On FEBRL such pairs were one person about as
    often as two strangers' names (docs/BENCHMARKS.md), where a typo's were about thirty times more often. From
    fuzzy-13, ANOTHER_NAME_FAINT where only a lighter level would (the lightest band, sounding alike alone).
    None for a version without the level, or where no pair is of names of the other sex."""
    if not w.uses(_N.ANOTHER_NAME):
        return None
    q_field, c_field = fields
    q_sex, c_sex = q.sexes[:, None, q_field], c.sexes[None, :, c_field]
    other_sex = ((q_sex == MALE) & (c_sex == FEMALE)) | ((q_sex == FEMALE) & (c_sex == MALE))
    if not other_sex.any():
        return None
    ten_times = np.abs(q.rarity[:, None, 1 + q_field] - c.rarity[None, :, 1 + c_field]) >= _TEN_TIMES
    faint_too = w.uses(_N.ANOTHER_NAME_FAINT)
    excused = ten_times & _slips(q, c, fields, other_sex & ten_times) if faint_too else ten_times
    heavier = table > table[_N.ANOTHER_NAME]
    partial: Bools = np.zeros(other_sex.shape, dtype=np.bool_)
    light: Bools = np.zeros(other_sex.shape, dtype=np.bool_)
    for level, floor, sounding in JW_LEVELS:
        band = sim >= floor
        if heavier[level]:
            partial |= band
            continue
        if sounding is not None and heavier[sounding]:
            partial |= band & phonetic
        if table[level] > UNUSED_WEIGHT:
            light |= band
    for level, mask in edits:
        if heavier[level]:
            partial |= mask
        elif table[level] > UNUSED_WEIGHT:
            light |= mask
    if not heavier[_N.PHONETIC]:
        light |= phonetic
    found: Bools = other_sex & ~excused & partial
    faint: Bools | None = other_sex & ~excused & light & ~partial if faint_too else None
    if faint is not None:
        found = found | faint
    crossed = nickname if nickname is not None else nicknames_crossed(q, c, found, fields, hypocorisms)
    if faint is None:
        return Another(found & ~crossed, None)
    return Another(found & ~faint & ~crossed, faint & ~crossed)


def _slips(q: NameColumns, c: NameColumns, fields: tuple[int, int], among: Bools) -> Bools:
    """Where, among `among`, the two names are a letter's slip apart (one wrong, missing, extra, or two swapped:
    optimal string alignment distance 1), however short (the ONE_EDIT level asks five letters)."""
    slips: Bools = np.zeros(among.shape, dtype=np.bool_)
    if among.any():
        columns = ("given", "surname")
        distance = cdist(
            q.column(columns[fields[0]]), c.column(columns[fields[1]]), scorer=OSA.distance, dtype=np.int32,
            score_cutoff=2,
        )  # fmt: skip
        slips = among & (distance <= 1)
    return slips


def unless(levels: list[tuple[NameLevel, Bools]], another: Another | None) -> list[tuple[NameLevel, Bools]]:
    """`levels` where `another` does not hold, and ANOTHER_NAME (fuzzy-10) or ANOTHER_NAME_FAINT (fuzzy-13)
    where it does."""
    if another is None:
        return levels
    either = another.either
    kept = [*((level, mask & ~either) for level, mask in levels), (_N.ANOTHER_NAME, another.names)]
    if another.faint is not None:
        kept.append((_N.ANOTHER_NAME_FAINT, another.faint))
    return kept
