"""Blocking keys: which tracings a query even looks at (issue 3, "Retrieve, then score").

`tracing_keys` runs at index time; the store keeps each key beside the tracing id and a query
retrieves its candidates with one bounded `WHERE key IN (query_keys(...))`. The OpenSearch backend
stores the same strings in a keyword field. The scorer re-ranks whatever comes back, so the keys are
about recall with bounded candidate sets: every key combines enough of a name or identifier that a
common name (JOHN SMITH, MARIA GARCIA) does not pull in a large share of the index, and the keys are
redundant enough that one edit in one name part, or a small edit in each, leaves some key intact.

Keys are short plain strings, "<family>:<value>" (family in lowercase, value in A-Z 0-9 and "|").
`S` is the surname's exact key, `G` the given name's (see `indexer.analysis`). Stored for the primary
name and for every alias:

======  ========================================================================  ====================
family  value                                                                     catches
======  ========================================================================  ====================
a       NYSIIS(surname part) | NYSIIS(given form), for every surname part (the    phonetic spellings,
        whole first) and every given form (own given plus nickname full forms;    nicknames, a compound
        from keys version 4 each word of a given name of several)                 surname's part alone,
                                                                                  one given name of two
e       S' | G and S | G', where S' ranges over S and S with one character        any one edit in S
        deleted (its deletion neighbourhood) and G' likewise over G; all taken    (its first letter
        to their first 8 characters                                               too) or in G
p3      first 3 of S | first 3 of G                                               edits after the 3rd
                                                                                  letter in both parts
m       Metaphone(S) | Metaphone(G)                                               phonetic spellings
                                                                                  NYSIIS keeps apart
i       NYSIIS(S) | initial, stored only when the given name is a bare initial    "J SMITH" records
        (a query with a full given name looks it up with its initial)
o       S alone, and each part of a compound S alone (as in `a`; keys version 4)  G missing or replaced;
                                                                                  one part of a compound
                                                                                  surname asked alone
o0      as `o`, only when the name has no given name                              given-less records
od      S' alone, S' over the deletion neighbourhood of S (as in `e`); only for   G replaced and one
        surnames of 4 letters or more                                             edit in S
r       G alone (a query also asks for the census given names one edit from its   S missing or replaced
        G: `near_given_names`)                                                    (and a typo in G)
r0      G alone, only when the name has no surname                                surname-less records
b       full DOB (YYYYMMDD) alone                                                 both names damaged
bs      full DOB + first letter of S                                              heavy damage to G
bg      full DOB + first letter of G                                              heavy damage to S
w0-w7   the SSN with two adjacent digits masked (w0: digits 0 and 1, ... w7:     one digit wrong, two
        digits 7 and 8): the seven other digits                                   adjacent digits swapped
======  ========================================================================  ====================

One edit (substitution, insertion, deletion or adjacent transposition) leaves a string and its
variant sharing a member of their deletion neighbourhoods, so `e` finds any single edit in one name
part while the other part is intact: the most common damage (and, as both neighbourhoods share one
namespace, some pairs with one deletion-like edit in each part). One wrong SSN digit or one adjacent
transposition lies inside a masked pair, so the query and the record share that pair's key; a key
matches at most 100 numbers, of which the 81 that differ in both masked digits (and are not a swap of
them) conflict: about one other person per key at 10 million tracings. (Keys version 2 masked windows
of 3 digits, `s0 s2 s4 s6`: four keys, but a thousand numbers each, nearly all of them conflicting, which
a query with a full SSN read and then dropped: at 10 million tracings a hundred rows a query.)
Bare initials and one-letter names never make `e`, `o` or `r` keys.

**Single-field keys (`o`, `od`, `r`, `b`) are looked up by selectivity.** They are stored for every
name, but a query looks one up only when it is expected to match few tracings in an index of
`index_size` tracings: census share of the name x `index_size` <= `SINGLE_FIELD_BUDGET` (200), and
for `b`: `index_size` / `BIRTH_DATES` <= `DOB_ALONE_BUDGET` (500). The readings of one misspelt part
(the `od` keys of the surname's deletion neighbourhood, by `deletion_share`: the share of all census
surnames whose neighbourhood holds the variant; the census given names one edit away) share one
`READINGS_BUDGET` (100), the rarest first. At the design scale (10 million, the default) that is a
surname held by at most 0.002% of the population (SMITH, at 1%, is never looked up alone, nor its
variants SMTH or SMIT; KAYVAS always is) and a date of birth alone (about 460 people); in a
5,000-record test index nearly every one qualifies. A query's `e:X|Y` keys are left out where it
looks up `od:X` (which finds a superset of them). `o0`/`r0` (records that lack the other part) are always
looked up. A name the 1990 census does not list counts as the rarest listed name (for `od`, as held
by nobody), so a surname common in the index but absent from the census can give a set larger than
the budget; re-ranking is unaffected, only the set's size.

Query time (`query_keys`) emits the same families for the query's name and, in addition, for the
name with given and surname swapped and for the middle name taken as the given name (people who go
by their middle name; no single-field keys for that variant), plus DOB keys for the date with day
and month swapped. Impersonal titles (subject None) get no keys; a tracing without PIDs gets only
name keys. Partial dates of birth and places of birth get no keys: alone they are not selective,
and the name keys already carry the name.

**Identifier first** (keys version 2). A tracing without a full SSN also stores every one of its keys
with `n` before the family (`nb:19710412`, `ne:SMITH|JOHN`, ...): its twins. A PID_QUALIFIED query that
gives a full SSN, scored at a threshold above the matcher's SSN-conflict cap, can never return a
tracing whose full SSN conflicts with the query's (one person has one SSN: the score is held under the
cap). Such a tracing shares no SSN key with the query (one wrong digit or one adjacent swap keeps a
masked pair's key, so a full SSN sharing none differs in more: `SsnLevel.DISAGREE`). So that query looks
up the SSN keys as they are and every other key as its twin (`query_keys(...,
conflicting_ssn_out=True)`): the SSN's near neighbours, and among the tracings without a full SSN the
same name and date keys as before. It finds every tracing the full lookup finds that could pass the
threshold, from a far smaller set: at 10 million tracings JOHN SMITH's name keys hold thousands of
people, and about one in twenty of them lacks an SSN. The twins cost about 5% more keys (the share of
tracings without an SSN).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable

from jellyfish import nysiis

from indexer.analysis import NameAnalysis, analyze
from indexer.model import Identifiers, PartialDate, PersonName, Subject, Tracing
from indexer.name_shares import (
    EDIT_PREFIX,
    MAX_GIVEN_SHARE,
    MAX_VARIANT_SHARE,
    deletion_share,
    deletions,
    given_share,
    near_given_names,
    surname_share,
)
from indexer.surname_romanizations import romanizations

# What a store's keys hold: a store records the version it wrote them with, and a query asks only for
# what that version stores. 1: the families in the table above, but the SSN windows `s0 s2 s4 s6`.
# 2: the `n` twins of tracings without a full SSN (identifier first, above). 3: the SSN keys `w0`-`w7`.
# 4: `o` and `o0` for each part of a compound surname besides the whole; `a` for each word of a given name.
KEYS_VERSION = 4
# The family prefix of a key's twin, stored by tracings without a full SSN.
NO_SSN = "n"
_WINDOW_FAMILIES = ("s0:", "s2:", "s4:", "s6:")  # keys versions 1 and 2
_PAIR_FAMILIES = tuple(f"w{i}:" for i in range(8))  # keys version 3
_SSN_FAMILIES = _WINDOW_FAMILIES + _PAIR_FAMILIES
DESIGN_INDEX_SIZE = 10_000_000
# The largest expected posting list of a name part alone (o, r) that a query still looks up. Such a key
# finds the person whose other name part was replaced, tied with every namesake in that part: past a
# few hundred the tie is rarely won (bench/BENCHMARKS.md: at 1 million tracings 200 keeps recall@10
# of 500, with a third fewer candidates at the 99th percentile).
SINGLE_FIELD_BUDGET = 200
# The same for a full date of birth alone (b): about 460 people share one at 10 million.
DOB_ALONE_BUDGET = 500
# The largest expected postings of all the readings of one misspelt name part together (the `od` keys of
# a surname's deletion neighbourhood; the census given names one edit from a given name).
READINGS_BUDGET = 100
# Distinct full dates of birth an index spreads over: about 60 years of births.
BIRTH_DATES = 60 * 365
_SHORT = 3
# A surname this long or longer gets the single-field deletion keys `od` (shorter ones would give
# variants of one or two letters, which select nothing).
_SINGLE_EDIT_MIN = 4


# NYSIIS of a given-name form or a surname part, and the deletion neighbourhood of a name part: pure
# functions of a short string, and the given names (census names and their nickname full forms) and
# common surnames recur in nearly every name indexed (the 16,384 commonest census surnames are about 80%
# of people). Tuples rather than sets, a third of the size; full, the three take about 35 MB.
_nysiis = functools.lru_cache(maxsize=32_768)(nysiis)


@functools.lru_cache(maxsize=16_384)
def _surname_neighbourhood(surname: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A surname's deletion neighbourhood, and its `od` keys when the surname is long enough for them."""
    variants = tuple(deletions(surname))
    return variants, tuple([f"od:{variant}" for variant in variants]) if len(surname) >= _SINGLE_EDIT_MIN else ()


@functools.lru_cache(maxsize=16_384)
def _given_neighbourhood(given: str) -> tuple[str, ...]:
    return tuple(deletions(given))


def _name_keys(analysis: NameAnalysis, out: list[str], *, single_field: bool = True, query: bool = False) -> None:
    """Every name key of one name: what the index stores, and what a query looks up (a query filters
    the single-field keys `o` and `r` with `_selective`, and leaves them out for the middle-name
    variant). Appended to `out`, which may repeat a key: callers make a set of it."""
    surname = analysis.surname
    given = analysis.given
    append = out.append
    if single_field:
        # The whole surname, then each part of a compound one (keys version 4): GARCIA asked alone finds
        # GARCIA MARQUEZ, and WHITFIELD finds WHITFIELD-MOORE, as the parts' `a` keys do with a given name.
        for part in analysis.surname_parts:
            if len(part) > 1:
                append(f"o:{part}")
                if not given:
                    append(f"o0:{part}")
        if len(surname) >= _SINGLE_EDIT_MIN:
            out.extend(_surname_neighbourhood(surname)[1])
        if len(given) > 1:
            append(f"r:{given}")
            if not surname:
                append(f"r0:{given}")
    if not (surname and given):
        return
    forms = analysis.given_word_forms  # keys version 4: every word of a given name of several
    # A name without nickname forms has only its own given name, whose code the analysis holds.
    given_codes = {_nysiis(form) for form in forms} if len(forms) > 1 else (analysis.given_nysiis,)
    for index, part in enumerate(analysis.surname_parts):
        part_code = analysis.surname_nysiis if index == 0 else _nysiis(part)
        out.extend([f"a:{part_code}|{given_code}" for given_code in given_codes])
    if len(given) == 1 or query:  # a query looks for records that give only its initial
        append(f"i:{analysis.surname_nysiis}|{given[0]}")
    if len(given) == 1:
        return
    given_prefix = given[:EDIT_PREFIX]
    out.extend([f"e:{variant}|{given_prefix}" for variant in _surname_neighbourhood(surname)[0]])
    surname_prefix = surname[:EDIT_PREFIX]
    out.extend([f"e:{surname_prefix}|{variant}" for variant in _given_neighbourhood(given)])
    append(f"p3:{surname[:_SHORT]}|{given[:_SHORT]}")
    append(f"m:{analysis.surname_metaphone}|{analysis.given_metaphone}")


def _dob_keys(analysis: NameAnalysis, dates: Iterable[str], out: list[str]) -> None:
    for date in dates:
        out.append(f"b:{date}")
        if analysis.surname:
            out.append(f"bs:{date}{analysis.surname[0]}")
        if analysis.given:
            out.append(f"bg:{date}{analysis.given[0]}")


def full_ssn(ssn: str) -> str:
    """The SSN's 9 digits when it has exactly 9 ("" otherwise): what the scorer compares digit by digit
    (search_service.matching_pids reads a full SSN with this function)."""
    if len(ssn) == 9 and ssn.isdigit():
        return ssn
    digits = "".join(c for c in ssn if c.isdigit())
    return digits if len(digits) == 9 else ""


def _ssn_keys(ssn: str, version: int = KEYS_VERSION) -> list[str]:
    """The SSN keys of a full SSN (`full_ssn`) in keys `version` (below 3: the windows, and the pairs as
    well); none for anything else. Stored: always the current version's."""
    ssn = full_ssn(ssn)
    if not ssn:
        return []
    # Two adjacent digits masked, at 0-1 ... 7-8 (written out: this runs per tracing).
    pairs = [
        f"w0:{ssn[2:]}",
        f"w1:{ssn[0]}{ssn[3:]}",
        f"w2:{ssn[:2]}{ssn[4:]}",
        f"w3:{ssn[:3]}{ssn[5:]}",
        f"w4:{ssn[:4]}{ssn[6:]}",
        f"w5:{ssn[:5]}{ssn[7:]}",
        f"w6:{ssn[:6]}{ssn[8]}",
        f"w7:{ssn[:7]}",
    ]
    if version >= 3:
        return pairs
    # Windows of 3 digits masked, starting at digits 0, 2, 4 and 6. A query of an older store asks for its
    # pairs too: an OpenSearch index is written in the current version by this program until it is rebuilt.
    return [f"s0:{ssn[3:]}", f"s2:{ssn[:2]}{ssn[5:]}", f"s4:{ssn[:4]}{ssn[7:]}", f"s6:{ssn[:6]}", *pairs]


def _full_date(dob: PartialDate | None) -> str:
    if dob is None:
        return ""
    month, day = dob.month, dob.day
    if month == 0 or day == 0:  # not dob.is_full
        return ""
    return f"{dob.year:04d}{month:02d}{day:02d}"


def _swapped_date(dob: PartialDate | None) -> str:
    """The date with day and month swapped, when that is a different possible date."""
    if dob is None or not dob.is_full or dob.day == dob.month or dob.day > 12:
        return ""
    return f"{dob.year:04d}{dob.day:02d}{dob.month:02d}"


def tracing_keys(tracing: Tracing) -> frozenset[str]:
    """The blocking keys stored with a tracing: over its primary name, every alias, and its PIDs."""
    return subject_keys(tracing.subject)


def subject_keys(subject: Subject | None) -> frozenset[str]:
    """The blocking keys of a tracing's subject (none for an impersonal title's None); with the `n`
    twins when it has no full SSN."""
    if subject is None:
        return frozenset()
    identifiers = subject.identifiers
    # One list, one frozenset at the end: cheaper than growing a set and copying it.
    keys = _ssn_keys(identifiers.ssn)
    has_ssn = bool(keys)
    date = _full_date(identifiers.date_of_birth)
    for name in subject.all_names():
        analysis = analyze(name)
        _name_keys(analysis, keys)
        if date:
            _dob_keys(analysis, (date,), keys)
    if not has_ssn:
        keys += [NO_SSN + key for key in keys]
    return frozenset(keys)


def _selective(key: str, index_size: int) -> bool:
    """Whether a query looks this key up: single-field keys only when expected to be small."""
    family, _, value = key.partition(":")
    if family == "o":
        return surname_share(value) * index_size <= SINGLE_FIELD_BUDGET
    if family == "r":
        return given_share(value) * index_size <= SINGLE_FIELD_BUDGET
    if family == "b":
        return index_size / BIRTH_DATES <= DOB_ALONE_BUDGET
    return True


def _within_budget(keys: list[str], share: Callable[[str], float], index_size: int, most: float) -> list[str]:
    """The rarest of a family of single-field keys (one value each: a surname variant, a given name)
    whose expected postings together stay within READINGS_BUDGET: a misspelling has many possible
    readings, and each alone within the budget would still add up. `most` bounds any one key's share,
    so that a small index skips the estimate."""
    if not keys or len(keys) * most * index_size <= READINGS_BUDGET:
        return keys
    chosen: list[str] = []
    total = 0.0
    for value_share, key in sorted((share(key.partition(":")[2]), key) for key in keys):
        total += value_share * index_size
        if total > READINGS_BUDGET:
            break
        chosen.append(key)
    return chosen


def query_keys(
    name: PersonName | None,
    ids: Identifiers,
    *,
    index_size: int = DESIGN_INDEX_SIZE,
    conflicting_ssn_out: bool = False,
    keys_version: int = KEYS_VERSION,
    romanized: int = 0,
) -> list[str]:
    """Keys to look up for a query, most selective first: SSN keys, then DOB keys, then name keys
    (as given, then swapped given/surname, then the middle name as given). No duplicates.

    `index_size` (the number of tracings in the index, default the 10-million design scale) only
    decides which single-field keys (a surname or a given name alone) are selective enough to use.
    `conflicting_ssn_out`: the caller drops every candidate whose full SSN conflicts with the query's,
    so a query with a full SSN looks up every key but the SSN keys as its `n` twin (identifier
    first, in the module's docstring; only for a store whose keys are of version 2 or later).
    `keys_version`: the version the store's keys were written with (its SSN keys differ by version).
    `romanized`: the version of the table of surname romanizations whose other spellings the query also
    asks for (`romanized_keys`; 0: none, as a matcher before fuzzy-9 does not relate them)."""
    keys = _query_keys(name, ids, index_size, keys_version)
    if romanized and name is not None:
        keys = list(dict.fromkeys(keys + romanized_keys(name, romanized, index_size)))
    if conflicting_ssn_out and full_ssn(ids.ssn):
        return [key if key.startswith(_SSN_FAMILIES) else NO_SSN + key for key in keys]
    return keys


def _query_keys(name: PersonName | None, ids: Identifiers, index_size: int, keys_version: int) -> list[str]:
    ordered: list[str] = _ssn_keys(ids.ssn, keys_version)
    dates = [date for date in (_full_date(ids.date_of_birth), _swapped_date(ids.date_of_birth)) if date]
    if name is None:
        ordered.extend(key for key in (f"b:{date}" for date in dates) if _selective(key, index_size))
        return ordered
    analysis = analyze(name)
    variants = [analysis]
    if analysis.given and analysis.surname:
        variants.append(analyze(PersonName(name.given_name, name.surname)))
    if len(analysis.middle) > 1 and analysis.surname:
        variants.append(analyze(PersonName(name.surname, name.middle_name)))

    if dates:
        dob_keys: list[str] = []
        _dob_keys(analysis, dates, dob_keys)
        ordered.extend(sorted(key for key in set(dob_keys) if _selective(key, index_size)))
    looked_up: set[str] = set()  # the surname variants X of the `od:X` keys chosen
    for index, variant in enumerate(variants):
        found: list[str] = []
        _name_keys(variant, found, single_field=index < 2, query=True)
        name_keys = set(found)
        edits = sorted(key for key in name_keys if key.startswith("od:"))
        # Of the single-field keys `_selective` filters, a variant's name gives one `o` key for its surname
        # and one for each part of a compound one, and one `r:G` (its `b` keys are the date keys above).
        chosen = name_keys.difference(edits)
        for single in [key for key in chosen if key.startswith(("o:", "r:"))]:  # a compound surname's parts too
            if not _selective(single, index_size):
                chosen.discard(single)
        # Every variant of the surname holds the surname itself: when `o:S` is looked up anyway, a
        # variant adds only the other names it holds.
        own = surname_share(variant.surname) if f"o:{variant.surname}" in chosen else 0.0

        def added(value: str, own: float = own) -> float:
            return max(deletion_share(value) - own, 0.0)

        chosen_edits = _within_budget(edits, added, index_size, MAX_VARIANT_SHARE)
        chosen.update(chosen_edits)
        looked_up.update(key[3:] for key in chosen_edits if len(key) - 3 >= _SINGLE_EDIT_MIN)
        if index < 2:  # a misspelt given name alone: the census names it may stand for
            near = [f"r:{name}" for name in near_given_names(variant.given)]
            chosen.update(_within_budget(near, given_share, index_size, MAX_GIVEN_SHARE))
        ordered.extend(sorted(chosen))
    # `e:X|Y` finds a subset of what `od:X` finds (the same surname variant, and a given name as well):
    # looking both up only costs a lookup. Only for X of `_SINGLE_EDIT_MIN` letters or more, which only
    # surnames long enough to hold `od` keys give.
    unique = dict.fromkeys(ordered)
    if not looked_up:
        return list(unique)
    return [key for key in unique if not (key.startswith("e:") and key[2 : key.find("|")] in looked_up)]


def romanized_keys(name: PersonName, version: int, index_size: int = DESIGN_INDEX_SIZE) -> list[str]:
    """The keys of the name read with each other romanization R of its surname (LEE, MIN as YI, MIN and RHEE,
    MIN; `indexer.surname_romanizations`, table `version`): none is stored, a record is keyed by its own
    spelling, so the query asks for the others'. Exact readings only: `e:R|G'` (R with the given name or one
    edit of it), `o:R` where selective and `o0:R` (R with no given name); a reading's phonetic and prefix keys
    would fetch other surnames (ROSS, RAY for R's NYSIIS). Also the reading with given and surname swapped
    (`e:G|R'`: a record written family name first), and the given name read as a surname for a query asked
    with the two swapped (MIN, LEE finds YI, MIN: `e:R|S'`). Commoner spellings first."""
    analysis = analyze(name)
    surname, given = analysis.surname, analysis.given
    if not surname:
        return []
    keys: list[str] = []
    for other in _by_share(romanizations(surname, version)):
        keys += [key for key in (f"o:{other}", f"o0:{other}") if _selective(key, index_size)]
        if len(given) > 1:
            keys += [f"e:{other[:EDIT_PREFIX]}|{variant}" for variant in _given_neighbourhood(given)]
            keys += [f"e:{given[:EDIT_PREFIX]}|{variant}" for variant in _given_neighbourhood(other)]
    if len(given) > 1:
        for other in _by_share(romanizations(given, version)):
            keys += [f"e:{other[:EDIT_PREFIX]}|{variant}" for variant in _given_neighbourhood(surname)]
    return list(dict.fromkeys(keys))


def _by_share(spellings: frozenset[str]) -> list[str]:
    return sorted(spellings, key=lambda spelling: (-surname_share(spelling), spelling))
