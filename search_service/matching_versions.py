"""The matcher versions: each version's weights, side by side (issue 3: "a change of scoring is a new
version beside the old one").

A response names the version that ranked it (`SearchResponse.matcher_version`). `MATCHERS` holds every
version still served; `DEFAULT_MATCHER` is the one a server uses unless configured otherwise
(`search_service.matching.configured_matcher`: $DCII_MATCHER). A released version is never changed: a
change of weights, levels or thresholds is a new entry here, and the old one stays selectable and
tested. docs/MATCHERS.md records each version: what it changed and why, and its weight tables
(tests/test_matching.py runs its table-driven cases against every version and checks those tables against
the code). How the weights are used, and where they come from: `search_service.matching`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from search_service.matching_name_levels import NameLevel, NameWeights
from search_service.matching_pids import DobLevel, PidWeights, PobLevel, SsnLevel

_N = NameLevel
_S = SsnLevel
_D = DobLevel
_P = PobLevel
_UNUSED = -99.0


@dataclass(frozen=True, eq=False)
class Matcher:
    """One version of the scorer: its weights, prior and default thresholds."""

    version: str
    names: NameWeights
    pids: PidWeights
    prior: float  # bits: log2 of the prior odds that a candidate is the person sought
    thresholds: dict[str, float]  # the default threshold per mode (FUZZY, PID_QUALIFIED)
    # When set: a candidate whose full SSN conflicts with the query's scores at most this (policy: one
    # person has one SSN, so such a candidate is never a hit at the PID_QUALIFIED default), while its
    # evidence in bits still ranks it among the others.
    ssn_conflict_cap: float | None = None
    # When set (PID_QUALIFIED): a candidate none of whose names agrees on the given name (DISAGREE: another
    # name, not a nickname, initial, typo or sound-alike) and whose SSN differs from the query's (a digit
    # off, swapped, the last four only) scores at most this: surname, date of birth and an SSN one digit
    # off (twins' SSNs are issued together) made a twin a certain hit, level with the person sought.
    given_conflict_cap: float | None = None
    # When true (fuzzy-11, with given_conflict_cap): that cap holds every record each of whose names agrees
    # with the query's in one part only, the other another name, unless an SSN vouches for it, whether or
    # not either side gives one (search_service.matching_one_part): a date of birth shared by strangers is
    # common in an index of millions, and one name part beside it is no identification.
    one_part_cap: bool = False
    # When set (FUZZY): a query giving one name part has its own default threshold, this many bits under
    # the score of a record of exactly that name (search_service.matching_threshold).
    one_part_margin: float | None = None
    # When true (FUZZY, with one_part_margin): so has a query whose given name is an initial alone, which
    # is not much more than its surname alone (TRUMAN S found nothing where TRUMAN found the record).
    initial_as_one_part: bool = False
    # When true: every word of a given name of several (THI LAN, MARY ANN, JEAN PIERRE) is a form of it, as
    # its first word and its nicknames were: LAN is NICKNAME-level agreement with THI LAN (it was DISAGREE).
    given_words: bool = False
    # When nonzero: the version of the table of surname romanizations (indexer.surname_romanizations) whose
    # spellings of one surname agree at the ROMANIZED level (LEE / YI / RHEE), and whose other spellings a
    # FUZZY or PID_QUALIFIED query also retrieves by (indexer.match_keys_query.query_keys).
    romanized_surnames: int = 0
    # When nonzero: the version of the table of Spanish given names' short forms (indexer.given_hypocorisms) whose
    # short and full forms agree at the NICKNAME level (PEPE / JOSE), and whose other forms a FUZZY or
    # PID_QUALIFIED query also retrieves by (indexer.match_keys_query.query_keys).
    hypocorisms: int = 0
    # The earlier version whose scores and ranks this one keeps (only a default threshold moved): a page
    # token issued at that version's default resumes under this one, and this one's under it (a rollback).
    scores_of: str = ""


FUZZY_1 = Matcher(
    version="fuzzy-1",
    names=NameWeights(
        table={
            _N.MISSING: (-0.2, -0.4, 0.0),
            _N.EXACT: (8.5, 8.0, 6.0),
            _N.NICKNAME: (_UNUSED, 6.0, _UNUSED),
            _N.COMPOUND_PART: (7.0, _UNUSED, _UNUSED),
            _N.JW_94: (7.0, 6.5, 4.5),
            _N.JW_88_PHONETIC: (6.0, 5.5, 4.0),
            _N.JW_88: (5.0, 4.5, 3.0),
            _N.JW_80_PHONETIC: (3.0, 2.5, _UNUSED),
            _N.JW_80: (1.5, 0.5, _UNUSED),
            _N.PHONETIC: (0.5, 0.5, _UNUSED),
            _N.MIDDLE_AS_GIVEN: (_UNUSED, 4.0, _UNUSED),
            _N.INITIAL: (1.0, 3.0, 2.5),
            _N.DISAGREE: (-3.5, -3.0, -3.0),
        },
        suffix=(0.0, 1.0, -3.0),
        swap_penalty=-1.0,
        grade=4.0,
        tf_scale=0.3,
        tf_range=(-4.0, 3.0),
    ),
    pids=PidWeights(
        ssn={
            _S.MISSING: -1.0,
            _S.EXACT: 20.0,
            _S.TRANSPOSED: 14.0,
            _S.ONE_DIGIT: 12.0,
            _S.LAST_FOUR: 8.0,
            _S.LAST_FOUR_DIFFERENT: -4.0,
            _S.DISAGREE: -16.0,
        },
        dob={
            _D.MISSING: -0.4,
            _D.EXACT: 15.0,
            _D.DAY_MONTH_SWAPPED: 6.0,
            _D.TRANSPOSED: 6.0,
            _D.ONE_DIGIT: 3.0,
            _D.YEAR_OFF_BY_ONE: 6.0,
            _D.PARTIAL_YEAR_MONTH: 9.0,
            _D.PARTIAL_YEAR: 5.5,
            _D.DISAGREE: -5.5,
            _D.BOTH_MISSING: _UNUSED,
        },
        pob={_P.MISSING: 0.0, _P.EXACT: 3.0, _P.DISAGREE: -3.0},
    ),
    prior=math.log2(1 / 5000) - 1.5,
    thresholds={"FUZZY": 0.5, "PID_QUALIFIED": 0.9},
)

FUZZY_2 = Matcher(
    version="fuzzy-2",
    names=NameWeights(
        table={
            **FUZZY_1.names.table,
            _N.MISSING: (-1.2, -1.4, 0.0),
            _N.ONE_EDIT: (6.5, 6.0, _UNUSED),
            _N.TWO_EDITS: (3.0, _UNUSED, _UNUSED),
        },
        suffix=FUZZY_1.names.suffix,
        swap_penalty=FUZZY_1.names.swap_penalty,
        grade=FUZZY_1.names.grade,
        tf_scale=FUZZY_1.names.tf_scale,
        tf_range=FUZZY_1.names.tf_range,
        edit_min_length=5,
        two_edit_min_length=6,
    ),
    pids=PidWeights(ssn={**FUZZY_1.pids.ssn, _S.DISAGREE: -10.0}, dob=FUZZY_1.pids.dob, pob=FUZZY_1.pids.pob),
    prior=FUZZY_1.prior,
    thresholds=FUZZY_1.thresholds,
    ssn_conflict_cap=0.85,
)

FUZZY_3 = Matcher(
    version="fuzzy-3",
    names=NameWeights(
        table={**FUZZY_2.names.table, _N.BOTH_MISSING: (3.0, 3.0, _UNUSED)},
        suffix=FUZZY_2.names.suffix,
        swap_penalty=FUZZY_2.names.swap_penalty,
        grade=FUZZY_2.names.grade,
        tf_scale=FUZZY_2.names.tf_scale,
        tf_range=FUZZY_2.names.tf_range,
        edit_min_length=FUZZY_2.names.edit_min_length,
        two_edit_min_length=FUZZY_2.names.two_edit_min_length,
    ),
    pids=PidWeights(ssn=FUZZY_2.pids.ssn, dob={**FUZZY_2.pids.dob, _D.BOTH_MISSING: 1.0}, pob=FUZZY_2.pids.pob),
    prior=FUZZY_2.prior,
    thresholds=FUZZY_2.thresholds,
    ssn_conflict_cap=FUZZY_2.ssn_conflict_cap,
)

FUZZY_4 = replace(FUZZY_3, version="fuzzy-4", given_conflict_cap=FUZZY_3.ssn_conflict_cap)

FUZZY_5 = replace(FUZZY_4, version="fuzzy-5", one_part_margin=6.0)

FUZZY_6 = replace(FUZZY_5, version="fuzzy-6", initial_as_one_part=True)

FUZZY_7 = replace(FUZZY_6, version="fuzzy-7", given_words=True)

FUZZY_8 = replace(FUZZY_7, version="fuzzy-8", thresholds={**FUZZY_7.thresholds, "FUZZY": 0.25}, scores_of="fuzzy-7")

FUZZY_9 = replace(
    FUZZY_8,
    version="fuzzy-9",
    names=replace(FUZZY_8.names, table={**FUZZY_8.names.table, _N.ROMANIZED: (6.0, 6.0, _UNUSED)}),
    romanized_surnames=1,
    scores_of="",
)

FUZZY_10 = replace(
    FUZZY_9,
    version="fuzzy-10",
    names=replace(FUZZY_9.names, table={**FUZZY_9.names.table, _N.ANOTHER_NAME: (1.0, 1.0, _UNUSED)}),
)

FUZZY_11 = replace(FUZZY_10, version="fuzzy-11", one_part_cap=True)

FUZZY_12 = replace(FUZZY_11, version="fuzzy-12", hypocorisms=1)

FUZZY_13 = replace(
    FUZZY_12,
    version="fuzzy-13",
    names=replace(FUZZY_12.names, table={**FUZZY_12.names.table, _N.ANOTHER_NAME_FAINT: (-0.3, -0.3, _UNUSED)}),
)

_SERVED: tuple[Matcher, ...] = (FUZZY_1, FUZZY_2, FUZZY_3, FUZZY_4, FUZZY_5, FUZZY_6, FUZZY_7, FUZZY_8, FUZZY_9)
_SERVED += (FUZZY_10, FUZZY_11, FUZZY_12, FUZZY_13)
MATCHERS: dict[str, Matcher] = {m.version: m for m in _SERVED}


def same_scores(scorer: Matcher) -> list[Matcher]:
    """The other served versions that score and rank as `scorer` does: linked to it by `Matcher.scores_of`,
    either way and through others (a fuzzy-9 that scored as fuzzy-8 would score as fuzzy-7)."""
    alike = {scorer.version}
    while True:
        linked = {m.version for m in MATCHERS.values() if m.scores_of in alike} | {
            m.scores_of for m in MATCHERS.values() if m.version in alike and m.scores_of in MATCHERS
        }
        if linked <= alike:
            return [m for m in MATCHERS.values() if m.version in alike and m is not scorer]
        alike |= linked


DEFAULT_MATCHER = "fuzzy-13"
