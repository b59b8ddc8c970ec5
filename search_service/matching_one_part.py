"""fuzzy-11's hold in PID_QUALIFIED: a name that agrees with the one asked in one part only is no identification.

Standard retrieval is a name plus an identifier (seed 002), and in an index of millions a date of birth is
shared by a few dozen strangers: one of them with the query's surname, or its given name, scored 0.92-0.99
under fuzzy-10 (docs/MATCHERS.md, docs/BENCHMARKS.md). So a record each of whose names agrees with the query's
in fewer than two of its parts (surname, given name, and the same middle name), the other being another
name (`another_name`), is held under the matcher's given-name cap unless an SSN vouches for it: the query's
full SSN, or, where only the surname is another name (a married name), an SSN one digit off, two digits
swapped or with the same last four. A part the record lacks is not another name: a record without a given
name is no stranger's more than the person's; but a part an alias lacks is the part its person's primary
name has. A query that gives one part of a name is not held: every record it matches agrees in that part
alone, the person's too (bench/pid_strangers.py measures what it shows).

`search_service.matching` applies it (`Matcher.one_part_cap`); the older versions' narrower cap (another
given name, an SSN given on both sides and different) is there too.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from search_service.matching_columns import Candidates
from search_service.matching_name_levels import NameLevel
from search_service.matching_names import NameComparison
from search_service.matching_pids import SsnLevel

Bools = npt.NDArray[np.bool_]
Codes = npt.NDArray[np.int8]

_N = NameLevel


def _marking(size: int, levels: tuple[int, ...]) -> Bools:
    """A lookup table over level codes: True at `levels`. Indexing it with a code array is one numpy step;
    `np.isin` sorts, and with it the hold cost ~100 us of a 1.3 ms PID_QUALIFIED ranking (now ~30)."""
    table = np.zeros(size, dtype=np.bool_)
    table[list(levels)] = True
    return table


# Another name than the query's: no agreement in any way, or from fuzzy-10 another given name of the other sex
# (from fuzzy-13 however faintly alike: search_service.matching_another_name).
_OTHER_NAMES = (_N.DISAGREE, _N.ANOTHER_NAME, _N.ANOTHER_NAME_FAINT)
_ANOTHER = _marking(len(_N), _OTHER_NAMES)
# A surname or given name that agrees with the query's in some way (a typo, a form, an initial).
_AGREES = ~_marking(len(_N), (_N.MISSING, _N.BOTH_MISSING, *_OTHER_NAMES))
# What vouches for a record whose surname alone is another name: an SSN that agrees but for a slip.
_SSN_NEAR = _marking(len(SsnLevel), (SsnLevel.TRANSPOSED, SsnLevel.ONE_DIGIT, SsnLevel.LAST_FOUR))


def another_name(levels: Codes) -> Bools:
    """Where a name part is another name than the query's: no agreement in any way (DISAGREE), or from
    fuzzy-10 another given name of the other sex (ANOTHER_NAME, from fuzzy-13 ANOTHER_NAME_FAINT too)."""
    another: Bools = _ANOTHER[levels]
    return another


def per_candidate(per_name: Bools, cands: Candidates, *, every: bool) -> Bools:
    """(Q, N) from (Q, names): whether every one (else any) of the candidate's names holds it."""
    reduce = np.logical_and if every else np.logical_or
    if per_name.shape[1] > len(cands.names.starts):
        per_name = reduce.reduceat(per_name, cands.names.starts, axis=1)
    if cands.groups is not None:
        per_name = per_name[:, cands.groups]
    return per_name


def _as_the_person(levels: Codes, swapped: Bools, starts: npt.NDArray[np.intp], asked: Bools) -> Codes:
    """`levels` (Q, names) with a part an alias lacks read as its person's primary name has it: an alias
    that records a maiden surname alone, or a given name alone, is that person's other name, not a name
    without the other part (HALL, JOANNE also known as BUNCH is no BUNCH, BRYAN). Where the primary name
    scored in the other alignment its level compares other fields (SMITH, THOMAS against THOMAS, MARY: the
    query's given name with her surname), so the part counts as another name (a review of fuzzy-11).
    `asked`: (Q,) whether the query gives the part (else MISSING is the query's lack, and stays)."""
    rows = levels.shape[1]
    if rows == len(starts):  # no candidate has an alias
        return levels
    primary = np.repeat(starts, np.diff(np.append(starts, rows)))
    lacking = (levels == int(_N.MISSING)) & (np.arange(rows) != primary)[None, :] & asked[:, None]
    if not lacking.any():
        return levels
    same_order = swapped == swapped[:, primary]
    read: Codes = np.where(lacking, np.where(same_order, levels[:, primary], int(_N.DISAGREE)), levels)
    return read.astype(levels.dtype)


def _one_part_rows(compared: NameComparison, starts: npt.NDArray[np.intp], asked: Bools) -> tuple[Bools, Bools]:
    """(Q, names) twice: the names that agree in one part only, the given name being the other; and those
    whose other part is the surname alone."""
    surname = _as_the_person(compared.surname, compared.swapped, starts, asked[:, 0])
    given = _as_the_person(compared.given, compared.swapped, starts, asked[:, 1])
    # A middle name counts when it is the same: an initial alone says too little to make a second part, and
    # a likeness takes a man's form for a woman's (MICHAEL / MICHELLE: a review of fuzzy-11).
    agreeing = _AGREES[surname].astype(np.int8) + _AGREES[given] + (compared.middle == int(_N.EXACT))
    few = agreeing < 2
    by_given = few & another_name(given)
    by_surname = few & another_name(surname) & ~by_given
    return by_given, by_surname


def one_part_held(compared: NameComparison, ssn: Codes, cands: Candidates, asked: Bools) -> Bools:
    """(Q, N): the candidates every name of which agrees in one part only and for which no SSN vouches
    (`ssn`: (Q, N) SsnLevel; `asked`: (Q, 2) whether each query gives a surname, a given name)."""
    by_given, by_surname = _one_part_rows(compared, cands.names.starts, asked)
    vouched = (ssn == int(SsnLevel.EXACT)) | (_SSN_NEAR[ssn] & per_candidate(by_surname, cands, every=False))
    held: Bools = per_candidate(by_given | by_surname, cands, every=True) & ~vouched
    return held


def held_part(compared: NameComparison, row: int, first: int, given_asked: bool) -> str:
    """The feature that says why the name at `row` (of query 0; `first` its person's primary row) is held: the
    part that is another name, the given name when both are."""
    given = int(compared.given[0, row])
    if given == int(_N.MISSING) and row != first and given_asked:  # an alias without one (`_as_the_person`)
        same_order = compared.swapped[0, row] == compared.swapped[0, first]
        given = int(compared.given[0, first]) if same_order else int(_N.DISAGREE)
    if given in _OTHER_NAMES:
        return "given_name"
    return "surname"
