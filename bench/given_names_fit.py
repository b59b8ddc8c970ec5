"""How often two given names a letter or two apart are one person's, on FEBRL: the fit behind fuzzy-10's
ANOTHER_NAME level (search_service.matching_versions).

    .venv/bin/python bench/given_names_fit.py            # FEBRL3, then FEBRL4

Like `bench/scoring.py --fit` (m: each true pair; u: every other pair of 500 queries), but only for the given
name's partial levels (a Jaro-Winkler band, sound-alike, one or two edits) as fuzzy-9 lays them, each split by
what the two given names are: a typo (one of them is no name of its own: rarer than 0.01% of men and of
women in the 1990 census, `given_name_sex`); two names of their own of the other sex, within ten times each
other's census share (fuzzy-10's ANOTHER_NAME, where the level weighs more than it) or further apart; two of
one sex (or of either) that sound alike (NYSIIS or Metaphone) or do not. Straight alignment only. Prints m, u
and log2(m/u) per split.
"""

from __future__ import annotations

import functools
import math
import random
import sys
from collections import Counter
from pathlib import Path

import jellyfish
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scoring_data import Task, febrl3, febrl4, tracing

from indexer.analysis import analyze
from indexer.census import given_name_table
from search_service import matching
from search_service.matching_columns import FEMALE, MALE, compile_candidates, given_name_sex
from search_service.matching_name_levels import NameLevel

_PARTIAL = {"JW_94", "JW_88_PHONETIC", "JW_88", "JW_80_PHONETIC", "JW_80", "PHONETIC", "ONE_EDIT", "TWO_EDITS"}
_BATCH = 200


def split(level: str, one: str, other: str) -> str | None:
    if level not in _PARTIAL:
        return None
    sexes = {given_name_sex(one), given_name_sex(other)}
    if 0 in sexes:
        return "a typo (one is no name of its own)"
    if sexes == {MALE, FEMALE}:
        apart = abs(_rarity(one) - _rarity(other)) >= math.log2(10)
        return "of the other sex, one ten times commoner" if apart else "of the other sex, within ten times"
    alike = jellyfish.nysiis(one) == jellyfish.nysiis(other) or jellyfish.metaphone(one) == jellyfish.metaphone(other)
    return "of one sex (or either), sounding alike" if alike else "of one sex (or either), sounding different"


@functools.cache
def _shares() -> dict[str, float]:
    table = given_name_table()
    return dict(zip(table.names, table.frequencies, strict=True))


def _rarity(given: str) -> float:
    """log2 of the name's census share (both sexes): as `search_service.matching_columns` reads it."""
    return -math.log2(_shares()[given])


def fit(task: Task) -> list[str]:
    m_counts: Counter[str] = Counter()
    u_counts: Counter[str] = Counter()
    n_true = n_other = 0
    for start in range(0, len(task.queries), _BATCH):
        chunk = list(range(start, min(start + _BATCH, len(task.queries))))
        compiled = compile_candidates([tracing(str(i), task.candidates[task.targets[i]]) for i in chunk])
        names = [task.queries[i][0] for i in chunk]
        cmp = matching._compare(names, [task.queries[i][1] for i in chunk], compiled, False, 1, matcher="fuzzy-9")
        for k, i in enumerate(chunk):
            n_true += 1
            if not cmp.names.swapped[k, k]:
                level = NameLevel(cmp.names.given[k, k]).name
                kind = split(level, analyze(names[k]).given, analyze(task.candidates[task.targets[i]][0]).given)
                if kind is not None:
                    m_counts[kind] += 1
    compiled = compile_candidates([tracing(str(i), record) for i, record in enumerate(task.candidates)])
    given = [analyze(record[0]).given for record in task.candidates]
    sample = random.Random(3).sample(range(len(task.queries)), 500)
    for start in range(0, len(sample), 50):
        chunk = sample[start : start + 50]
        names = [task.queries[i][0] for i in chunk]
        cmp = matching._compare(names, [task.queries[i][1] for i in chunk], compiled, False, 1, matcher="fuzzy-9")
        for row, i in enumerate(chunk):
            excluded = {task.targets[i], *task.excluded[i]}
            asked = analyze(names[row]).given
            for j in np.flatnonzero(~cmp.names.swapped[row]):
                if j in excluded:
                    continue
                n_other += 1
                kind = split(NameLevel(cmp.names.given[row, j]).name, asked, given[j])
                if kind is not None:
                    u_counts[kind] += 1
    out = [f"{task.name}: m over {n_true:,} true pairs, u over {n_other:,} other pairs", ""]
    out += ["| given names | m | u | log2(m/u) |", "|---|---|---|---|"]
    for kind in sorted(set(m_counts) | set(u_counts)):
        m, u = (m_counts[kind] + 0.5) / (n_true + 1), (u_counts[kind] + 0.5) / (n_other + 1)
        out.append(f"| {kind} | {m_counts[kind]} | {u_counts[kind]:,} | {math.log2(m / u):+.1f} |")
    return [*out, ""]


def main() -> None:
    for task in (febrl3(), febrl4()):
        print("\n".join(fit(task)))


if __name__ == "__main__":
    main()
