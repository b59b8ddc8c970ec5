"""fuzzy-9's ROMANIZED level: which query and candidate names are romanizations of one surname, and how much
that says (`search_service.matching_names` lays the level where it weighs more than the level the pair had).

The spellings come from `indexer.surname_romanizations` (table `Matcher.romanized_surnames`). The weight is
the version's ROMANIZED weight (6.0 bits) plus log2 of the share of Asian bearers of the spelling that has the
fewest (`indexer.surname_asian_shares`, the 2010 census): m, the chance that one person's two records spell
the surname two ways, holds only for the bearers of East Asian origin. LEE is 42% Asian in the US, so LEE / YI
weighs 6.0 - 1.25 bits; MOON (19%) / MUN 3.6 bits; JUNG (68%) / CHUNG 5.4; ZHOU / CHOW, both over 90%, about
6.0. Unlike an exact agreement it takes no census term-frequency adjustment: the chance that a stranger's
surname is another spelling of one's own is that of the whole group, not of either spelling.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import numpy.typing as npt

from indexer.surname_asian_shares import ASIAN_SHARE
from indexer.surname_romanizations import romanizations
from search_service.matching_columns import NameColumns, _key

Bools = npt.NDArray[np.bool_]
Floats = npt.NDArray[np.float64]

# A spelling's Asian share is never taken under this (log2 of it bounds the bits a spelling can cost).
_LEAST_SHARE = 1 / 64


@functools.cache
def share_bits(spelling: str) -> float:
    """log2 of the share of the spelling's US bearers who are Asian (0 for a spelling the 2010 census does
    not list: fewer than 100 bearers, none of another origin to speak of)."""
    share = ASIAN_SHARE.get(spelling)
    return 0.0 if share is None else math.log2(max(share, _LEAST_SHARE))


@functools.cache
def _keys(spellings: frozenset[str]) -> npt.NDArray[np.int64]:
    return np.array([_key(spelling) for spelling in spellings], dtype=np.int64)


def romanized_pairs(
    q: NameColumns, c: NameColumns, version: int, q_field: str, c_field: str
) -> tuple[Bools, Floats] | None:
    """(Q, R) masks of the pairs whose query `q_field` ("surname" or "given", read as a surname) and candidate
    `c_field` are two romanizations of one surname in table `version`, and the bits each pair's shares take off
    (`share_bits` of the spelling with fewer Asian bearers); None when no query name is in the table (most).
    A query's given name is read as a surname only when the query gives a surname too (asked with the two
    swapped): a given name alone (LEE, KIM) is most often a given name."""
    if not version:
        return None
    found: tuple[Bools, Floats] | None = None
    c_ids = c.ids[:, 0 if c_field == "surname" else 1]
    for i, analysis in enumerate(q.analyses):
        value = getattr(analysis, q_field)
        if q_field == "given" and not analysis.surname:
            continue
        others = romanizations(value, version)
        if not others:
            continue
        if found is None:
            shape = (len(q.analyses), len(c.analyses))
            found = np.zeros(shape, dtype=np.bool_), np.zeros(shape, dtype=np.float64)
        related = np.isin(c_ids, _keys(others))
        found[0][i] = related
        own, texts = share_bits(value), c.column(c_field)
        for row in np.flatnonzero(related):
            found[1][i, row] = min(own, share_bits(texts[row]))
    return found
