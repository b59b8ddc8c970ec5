"""The matcher versions: each version's weights, side by side (issue 3: "a change of scoring is a new
version beside the old one").

A response names the version that ranked it (`SearchResponse.matcher_version`). `MATCHERS` holds every
version still served; `DEFAULT_MATCHER` is the one a server uses unless configured otherwise
(`search_service.matching.configured_matcher`: $DCII_MATCHER). A released version is never changed: a
change of weights, levels or thresholds is a new entry here, and the old one stays selectable and
tested (tests/test_matching.py runs its table-driven cases against every version and checks these
tables against the code). How the weights are used, and where they come from: `search_service.matching`.

fuzzy-1
-------

The first calibrated scorer (Jaro-Winkler bands, phonetic codes, nicknames, census term frequency).

=================  =======  =====  ======
fuzzy-1 level      surname  given  middle
=================  =======  =====  ======
MISSING            -0.2     -0.4   0.0
EXACT              +8.5     +8.0   +6.0
NICKNAME           -        +6.0   -
COMPOUND_PART      +7.0     -      -
JW_94              +7.0     +6.5   +4.5
JW_88_PHONETIC     +6.0     +5.5   +4.0
JW_88              +5.0     +4.5   +3.0
JW_80_PHONETIC     +3.0     +2.5   -
JW_80              +1.5     +0.5   -
PHONETIC           +0.5     +0.5   -
MIDDLE_AS_GIVEN    -        +4.0   -
INITIAL            +1.0     +3.0   +2.5
ONE_EDIT           -        -      -
TWO_EDITS          -        -      -
DISAGREE           -3.5     -3.0   -3.0
BOTH_MISSING       -        -      -
ROMANIZED          -        -      -
ANOTHER_NAME       -        -      -
=================  =======  =====  ======

=====================  =====  =====  =====
fuzzy-1 level          SSN    DOB    POB
=====================  =====  =====  =====
MISSING                -1.0   -0.4   0.0
EXACT                  +20.0  +15.0  +3.0
TRANSPOSED             +14.0  +6.0   -
ONE_DIGIT              +12.0  +3.0   -
LAST_FOUR              +8.0   -      -
LAST_FOUR_DIFFERENT    -4.0   -      -
DAY_MONTH_SWAPPED      -      +6.0   -
YEAR_OFF_BY_ONE        -      +6.0   -
PARTIAL_YEAR_MONTH     -      +9.0   -
PARTIAL_YEAR           -      +5.5   -
DISAGREE               -16.0  -5.5   -3.0
BOTH_MISSING           -      -      -
=====================  =====  =====  =====

Every version: suffix same +1.0, different -3.0, absent on either side 0; swapped alignment -1.0;
Jaro-Winkler grade 4 bits per unit of similarity within a band (none within DISAGREE); term frequency
0.3 * log2(u_average / u_name) clipped to [-4, +3] bits; prior log2(1/5000) - 1.5 bits; default
thresholds FUZZY 0.5 and PID_QUALIFIED 0.9.

fuzzy-2
-------

fuzzy-1 plus edit-distance levels, a missing name part weighed more, and a different SSN held under
the PID_QUALIFIED threshold instead of outweighing everything else (see `search_service.matching`,
"What fuzzy-2 changed"). ONE_EDIT (optimal string alignment distance 1: one letter wrong, missing,
extra, or two adjacent letters swapped) for parts of at least 5 letters; TWO_EDITS for surnames of at
least 6. A candidate whose full SSN differs from the query's scores at most 0.85.

=================  =======  =====  ======
fuzzy-2 level      surname  given  middle
=================  =======  =====  ======
MISSING            -1.2     -1.4   0.0
EXACT              +8.5     +8.0   +6.0
NICKNAME           -        +6.0   -
COMPOUND_PART      +7.0     -      -
JW_94              +7.0     +6.5   +4.5
JW_88_PHONETIC     +6.0     +5.5   +4.0
JW_88              +5.0     +4.5   +3.0
JW_80_PHONETIC     +3.0     +2.5   -
JW_80              +1.5     +0.5   -
PHONETIC           +0.5     +0.5   -
MIDDLE_AS_GIVEN    -        +4.0   -
INITIAL            +1.0     +3.0   +2.5
ONE_EDIT           +6.5     +6.0   -
TWO_EDITS          +3.0     -      -
DISAGREE           -3.5     -3.0   -3.0
BOTH_MISSING       -        -      -
ROMANIZED          -        -      -
ANOTHER_NAME       -        -      -
=================  =======  =====  ======

=====================  =====  =====  =====
fuzzy-2 level          SSN    DOB    POB
=====================  =====  =====  =====
MISSING                -1.0   -0.4   0.0
EXACT                  +20.0  +15.0  +3.0
TRANSPOSED             +14.0  +6.0   -
ONE_DIGIT              +12.0  +3.0   -
LAST_FOUR              +8.0   -      -
LAST_FOUR_DIFFERENT    -4.0   -      -
DAY_MONTH_SWAPPED      -      +6.0   -
YEAR_OFF_BY_ONE        -      +6.0   -
PARTIAL_YEAR_MONTH     -      +9.0   -
PARTIAL_YEAR           -      +5.5   -
DISAGREE               -10.0  -5.5   -3.0
BOTH_MISSING           -      -      -
=====================  =====  =====  =====

fuzzy-3
-------

fuzzy-2 plus BOTH_MISSING: a part of the name, or the date of birth, that neither the query nor the
record gives now counts as a (weak) agreement instead of nothing (see `search_service.matching`, "What
fuzzy-3 changed"). Everything else is fuzzy-2's.

=================  =======  =====  ======
fuzzy-3 level      surname  given  middle
=================  =======  =====  ======
MISSING            -1.2     -1.4   0.0
EXACT              +8.5     +8.0   +6.0
NICKNAME           -        +6.0   -
COMPOUND_PART      +7.0     -      -
JW_94              +7.0     +6.5   +4.5
JW_88_PHONETIC     +6.0     +5.5   +4.0
JW_88              +5.0     +4.5   +3.0
JW_80_PHONETIC     +3.0     +2.5   -
JW_80              +1.5     +0.5   -
PHONETIC           +0.5     +0.5   -
MIDDLE_AS_GIVEN    -        +4.0   -
INITIAL            +1.0     +3.0   +2.5
ONE_EDIT           +6.5     +6.0   -
TWO_EDITS          +3.0     -      -
DISAGREE           -3.5     -3.0   -3.0
BOTH_MISSING       +3.0     +3.0   -
ROMANIZED          -        -      -
ANOTHER_NAME       -        -      -
=================  =======  =====  ======

=====================  =====  =====  =====
fuzzy-3 level          SSN    DOB    POB
=====================  =====  =====  =====
MISSING                -1.0   -0.4   0.0
EXACT                  +20.0  +15.0  +3.0
TRANSPOSED             +14.0  +6.0   -
ONE_DIGIT              +12.0  +3.0   -
LAST_FOUR              +8.0   -      -
LAST_FOUR_DIFFERENT    -4.0   -      -
DAY_MONTH_SWAPPED      -      +6.0   -
YEAR_OFF_BY_ONE        -      +6.0   -
PARTIAL_YEAR_MONTH     -      +9.0   -
PARTIAL_YEAR           -      +5.5   -
DISAGREE               -10.0  -5.5   -3.0
BOTH_MISSING           -      +1.0   -
=====================  =====  =====  =====

fuzzy-4
-------

fuzzy-3 plus a cap in PID_QUALIFIED (`Matcher.given_conflict_cap`, 0.85, under the 0.9 threshold): a
record none of whose names agrees on the given name in any way (DISAGREE) and whose SSN differs from the
query's (both give one; not equal) is held under it. A twin (surname, date of birth, an SSN one digit off)
scored 1.000000, level with the person sought; its evidence still ranks it. Name and date alone are scored
as before: held too, FEBRL's pairs at 0.84 were 95% the same person (docs/BENCHMARKS.md).

fuzzy-4 weights are fuzzy-3's (the tables above).

fuzzy-5
-------

fuzzy-4's scores, and a FUZZY query that gives one name part gets its own default threshold: the score a
record of exactly that name would get, less 6 bits (`Matcher.one_part_margin`;
search_service.matching_threshold). At 0.5 such a query found nothing for most names, a record of
exactly that name included. Every score and rank is fuzzy-4's.

fuzzy-5 weights are fuzzy-3's (the tables above).

fuzzy-6
-------

fuzzy-5, and a FUZZY query whose given name is an initial alone ("TRUMAN, S") is thresholded as a query of
one name part is, relative to the score of a record of exactly that name (`Matcher.initial_as_one_part`):
at 0.5 it found nothing, not even that record, where the surname alone found it (a review of name
handling). Every score and rank is fuzzy-5's.

fuzzy-6 weights are fuzzy-3's (the tables above).

fuzzy-7
-------

fuzzy-6, and a given name of one word that is one of the words of the other's given name agrees at the
NICKNAME level (`Matcher.given_words`; `indexer.analysis.NameAnalysis.given_words`): LAN and THI LAN, ANN
and MARY ANN, PIERRE and JEAN PIERRE. A Vietnamese name asked as it is used (NGUYEN, LAN) scored 0.0036
against NGUYEN, THI LAN, as a stranger does (a review of name handling). Two given names of several words
are not related by a word they share, first or later (JOSE LUIS / JUAN LUIS, JOSE LUIS / JOSE ANTONIO,
NGOC LAN / THI LAN are other people; fuzzy-6 related a shared first word, and the first fuzzy-7, never
released, any shared word, which let twins past the given-name cap). The word itself, not its nicknames.
And a given name that is the other side's given and middle name written as one, in either order (MARY ANN
/ MARY, ANN; THI LAN / LAN, THI), is EXACT: it scored lower than the first word alone (MARY / MARY, ANN).

fuzzy-7 weights are fuzzy-3's (the tables above).

fuzzy-8
-------

fuzzy-7's scores, and default thresholds FUZZY 0.25 (instead of 0.5) and PID_QUALIFIED 0.9; a FUZZY
query of one name part, or a surname with an initial, keeps its own, never above 0.25. A score is a
probability, and a common name's is low however well it agrees: a record of exactly SMITH, WILLIAM scores
0.654, and asked with one typo (SMTIH, WILLIAM) 0.405, with a nickname (SMITH, BILL) 0.321, so at 0.5 the
answer showed nothing and read as a clean check. The twelve commonest surnames with the twelve commonest
given names: a nickname scores 0.301 to 0.626, under 0.5 for 89% of them, and one typo under 0.5 for 59%,
under 0.25 for 5%. Among a million census names, the person sought by the scale bench's FUZZY queries was
at or above 0.5 for 91.0% of them, 19.4% of those misspelling one of the commonest names; at 0.25, 98.3%
and 97.2%. The price is paid in other people's records: an answer holds 15.6 hits on someone else where it
held 5.2 (5.7 against 3.8 on a first page of 20), most of them a common name's namesakes
(docs/BENCHMARKS.md). Between 0.3 and 0.5 a third of FEBRL's pairs are the same person.

fuzzy-8 weights are fuzzy-3's (the tables above).

fuzzy-9
-------

fuzzy-8, and a surname written in another romanization agrees at the ROMANIZED level: LEE / YI / RHEE / LI,
KIM / GIM, JUNG / CHUNG / JEONG, ZHOU / CHOW, XU / HSU, HUANG / WONG, GUO / KUO / KWOK
(`Matcher.romanized_surnames`: table 1 of `indexer.surname_romanizations`, Chinese surnames in Pinyin,
Wade-Giles and the Cantonese, Hokkien and Hakka spellings of English-language records, Korean surnames in the
Revised and McCune-Reischauer romanizations and the families' usual spellings). One person's records carry
them, written by other clerks in other decades, and fuzzy-8 scored them as strangers: LEE, MIN JUN against YI,
MIN JUN 0.013 (0.796 now), ZHOU, WEI against CHOW, WEI 0.009 (0.845). The level weighs +6.0 bits (set by hand:
FEBRL has no such names) plus log2 of the share of Asian bearers of the spelling that has fewer (the 2010
census: LEE 42%, so -1.25 bits; MOON 19%, -2.4; `search_service.matching_romanized`), with no census
term-frequency adjustment, so it stays under an exact surname; it is laid only where it weighs more than the
level the pair had (HAHN / HAN keeps its Jaro-Winkler band), so no score falls. Also in the swapped alignment
(a surname against the other's given-name field; the query's given name only when it gives a surname too), on
one side at most; never between two given names, many of which are spelt like another character's surname
(JIN, MIN, SONG), nor for a compound surname (LEE-PARK is not YI). In PID_QUALIFIED another spelling with
another given name is held under the given-name cap unless the SSNs are equal (LEE, JOHN / YI, ROBERT born the
same day, no SSN on either side, scored 0.93; the same surname still is not held, as before). A FUZZY or
PID_QUALIFIED query asks for the keys of its name read in each other spelling too
(`indexer.match_keys.romanized_keys`, exact readings only; a record is keyed by its own spelling, so the index
is unchanged). Thresholds are fuzzy-8's.

fuzzy-9 weights are fuzzy-3's with ROMANIZED +6.0 surname, +6.0 given (the tables above).

fuzzy-10
--------

fuzzy-9, and two given names of their own, a man's and a woman's, a few letters apart are another name, not a
misspelling: ANOTHER_NAME (+1.0 bit) instead of a partial level that weighs more (a Jaro-Winkler band, a band
and sound-alike, one edit: so it never raises a score, and names as different as JAMES and MARY stay DISAGREE)
for a pair of given names that are both common in the 1990 census (at least 0.01% of men or of women: about
700 men's and 900 women's names; `search_service.matching_columns.given_name_sex`), one held by men and the
other by women (nine in ten of their holders each: MICHAEL / MICHELLE, JON / JOAN, KARLA / KARL), neither ten
times commoner than the other (GAY is a misspelt GARY more often than another person), and no nickname of each
other; in the swapped alignment as in the straight one (the surname column's +1.0: a query's surname field
read as a given name); never where a better level holds (the record's middle name). Under fuzzy-9 a common
surname with such a given name was a FUZZY hit (SMITH, MICHAEL / SMITH, MICHELLE 0.268); now 0.022. On FEBRL
such pairs were one person in 0 of FEBRL3's 6,538 true pairs (at most -2.5 bits) and 5 of FEBRL4's 5,000 (+1.4
bits: ADA / ADAM, KARL / KARLA), where a typo is +5 bits (bench/given_names_fit.py); +1.0 leans to FEBRL4's.
Two names of one sex keep their level however they sound: short, long and other languages' forms of one name
(CHRISTIE / CHRISTINE, CAROL / CAROLYN, JOSE / JOSEPH) are one person's, which FEBRL's typos do not model and
no list holds whole (a review of this version's first draft, which also took those that do not sound alike).
In PID_QUALIFIED the given-name cap reads ANOTHER_NAME as it reads DISAGREE. Thresholds are fuzzy-8's.

fuzzy-10 weights are fuzzy-9's with ANOTHER_NAME +1.0 surname, +1.0 given.
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
    # FUZZY or PID_QUALIFIED query also retrieves by (indexer.match_keys.query_keys).
    romanized_surnames: int = 0
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

MATCHERS: dict[str, Matcher] = {
    m.version: m for m in (FUZZY_1, FUZZY_2, FUZZY_3, FUZZY_4, FUZZY_5, FUZZY_6, FUZZY_7, FUZZY_8, FUZZY_9, FUZZY_10)
}


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


DEFAULT_MATCHER = "fuzzy-10"
