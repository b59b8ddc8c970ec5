"""Which blocking keys a query looks up (issue 3, "Retrieve, then score"): the query side of
`indexer.match_keys`, whose docstring says what each key family holds and catches.

Query time (`query_keys`) emits the same families for the query's name and, in addition, for the
name with given and surname swapped and for the middle name taken as the given name (people who go
by their middle name; no single-field keys for that variant), plus DOB keys for the date with day
and month swapped.

**Single-field keys (`o`, `od`, `r`, `b`) are looked up by selectivity.** They are stored for every
name, but a query looks one up only when it is expected to match few tracings in an index of
`index_size` tracings: census share of the name x `index_size` <= `SINGLE_FIELD_BUDGET` (200), and
for `b`: `index_size` / `BIRTH_DATES` <= `DOB_ALONE_BUDGET` (500). The readings of one misspelt part
(the `od` keys of the surname's deletion neighbourhood, by `deletion_share`: the share of all census
surnames whose neighbourhood holds the variant; the census given names one edit away) share one
`READINGS_BUDGET` (100), the rarest first. At the design scale (10 million, the default) that is a
surname held by at most 0.002% of the population (SMITH, at 1%, is not looked up alone beside a given
name, nor its variants SMTH or SMIT; KAYVAS always is) and a date of birth alone (about 460 people); in a
5,000-record test index nearly every one qualifies. The exception is a query of one name part (a surname
alone, with an initial, a given name alone): its part's own key is the query, looked up however common
(`_own_key`), and past the candidates' cap the answer says a record may be missing. A query's `e:X|Y`
keys are left out where it looks up `od:X` (which finds a superset of them). `o0`/`r0` (records that
lack the other part) are always looked up. A name the 1990 census does not list counts as the rarest
listed name (for `od`, as held by nobody), so a surname common in the index but absent from the census
can give a set larger than the budget; re-ranking is unaffected, only the set's size.

A query whose surname is a Chinese or Korean one in a table of romanizations also asks for the keys of
its other spellings (`romanized_keys`), one whose given name is a Spanish short or full form for the keys
of its other forms (`hypocorism_keys`), and a PID_QUALIFIED query with a full SSN asks for its name and
date keys as their `n` twins only (identifier first, in `indexer.match_keys`).
"""

from __future__ import annotations

from collections.abc import Callable

from jellyfish import nysiis

from indexer.analysis import NameAnalysis, analyze
from indexer.given_hypocorisms import related
from indexer.match_keys import (
    KEYS_VERSION,
    NO_SSN,
    SINGLE_EDIT_MIN,
    SSN_FAMILIES,
    dob_keys,
    full_date,
    full_ssn,
    given_neighbourhood,
    name_keys,
    ssn_keys,
    swapped_date,
)
from indexer.model import Identifiers, PersonName
from indexer.name_shares import (
    EDIT_PREFIX,
    MAX_GIVEN_SHARE,
    MAX_VARIANT_SHARE,
    deletion_share,
    given_share,
    near_given_names,
    surname_share,
)
from indexer.surname_romanizations import romanizations

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
    hypocorisms: int = 0,
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
    asks for (`romanized_keys`; 0: none, as a matcher before fuzzy-9 does not relate them).
    `hypocorisms`: likewise the version of the table of Spanish given names' short forms (`hypocorism_keys`;
    0: none, before fuzzy-12)."""
    keys = _query_keys(name, ids, index_size, keys_version)
    if romanized and name is not None:
        keys = list(dict.fromkeys(keys + romanized_keys(name, romanized, index_size)))
    if hypocorisms and name is not None:
        keys = list(dict.fromkeys(keys + hypocorism_keys(name, hypocorisms)))
    if conflicting_ssn_out and full_ssn(ids.ssn):
        return [key if key.startswith(SSN_FAMILIES) else NO_SSN + key for key in keys]
    return keys


def _query_keys(name: PersonName | None, ids: Identifiers, index_size: int, keys_version: int) -> list[str]:
    ordered: list[str] = ssn_keys(ids.ssn, keys_version)
    dates = [date for date in (full_date(ids.date_of_birth), swapped_date(ids.date_of_birth)) if date]
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
        date_keys: list[str] = []
        dob_keys(analysis, dates, date_keys)
        ordered.extend(sorted(key for key in set(date_keys) if _selective(key, index_size)))
    looked_up: set[str] = set()  # the surname variants X of the `od:X` keys chosen
    # A query with an identifier finds the name's bearers by it (`b`, `bs`, `w`): the part alone would only
    # add the name's strangers, and at scale fill the candidates' cap.
    own_key = "" if ordered else _own_key(analysis)
    for index, variant in enumerate(variants):
        found: list[str] = []
        name_keys(variant, found, single_field=index < 2, query=True)
        variant_keys = set(found)
        edits = sorted(key for key in variant_keys if key.startswith("od:"))
        # Of the single-field keys `_selective` filters, a variant's name gives one `o` key for its surname
        # and one for each part of a compound one, and one `r:G` (its `b` keys are the date keys above).
        chosen = variant_keys.difference(edits)
        for single in [key for key in chosen if key.startswith(("o:", "r:"))]:  # a compound surname's parts too
            if not _selective(single, index_size) and single != own_key:
                chosen.discard(single)
        # Every variant of the surname holds the surname itself: when `o:S` is looked up anyway, a
        # variant adds only the other names it holds.
        own = surname_share(variant.surname) if f"o:{variant.surname}" in chosen else 0.0

        def added(value: str, own: float = own) -> float:
            return max(deletion_share(value) - own, 0.0)

        chosen_edits = _within_budget(edits, added, index_size, MAX_VARIANT_SHARE)
        chosen.update(chosen_edits)
        looked_up.update(key[3:] for key in chosen_edits if len(key) - 3 >= SINGLE_EDIT_MIN)
        if index < 2:  # a misspelt given name alone: the census names it may stand for
            near = [f"r:{name}" for name in near_given_names(variant.given)]
            chosen.update(_within_budget(near, given_share, index_size, MAX_GIVEN_SHARE))
        ordered.extend(sorted(chosen))
    # `e:X|Y` finds a subset of what `od:X` finds (the same surname variant, and a given name as well):
    # looking both up only costs a lookup. Only for X of `SINGLE_EDIT_MIN` letters or more, which only
    # surnames long enough to hold `od` keys give.
    unique = dict.fromkeys(ordered)
    if not looked_up:
        return list(unique)
    return [key for key in unique if not (key.startswith("e:") and key[2 : key.find("|")] in looked_up)]


def _own_key(analysis: NameAnalysis) -> str:
    """The single-field key that is the whole of a query of one name part (a surname alone, a surname with an
    initial, a given name alone) and no identifier, looked up however common the name: it is the query, not a
    fallback for a replaced part. Past the candidates' cap the answer says a record may be missing
    (`candidates_truncated`) instead of answering nothing as if the name were not in the index (an
    adjudicator's review: SMITH alone, 222 of them among 20,000 tracings, answered "no records"). "" for a
    query of a name in two parts."""
    if analysis.surname and len(analysis.given) > 1:
        return ""
    if analysis.surname:
        return f"o:{analysis.surname}"
    return f"r:{analysis.given}" if len(analysis.given) > 1 else ""


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
            keys += [f"e:{other[:EDIT_PREFIX]}|{variant}" for variant in given_neighbourhood(given)]
            keys += [f"e:{given[:EDIT_PREFIX]}|{variant}" for variant in given_neighbourhood(other)]
    if len(given) > 1:
        for other in _by_share(romanizations(given, version)):
            keys += [f"e:{other[:EDIT_PREFIX]}|{variant}" for variant in given_neighbourhood(surname)]
    return list(dict.fromkeys(keys))


def hypocorism_keys(name: PersonName, version: int) -> list[str]:
    """The keys of the name read with each other form of its given name in the table of Spanish short forms
    (`indexer.given_hypocorisms`, table `version`): JOSE GARCIA asks for PEPE GARCIA's and CHEPE GARCIA's, PEPE
    GARCIA for JOSE GARCIA's, LUPE RUIZ for MARIA GUADALUPE RUIZ's (the words of a given name of several are
    read too, as the matcher reads them). A record is keyed by its own given name (and its English nicknames'
    full forms), so the query asks for the others'. Two keys a form: `e:S|F` (the surname as written) and `a:`
    (the sound of each surname part and of the form, as `indexer.match_keys` stores them: a spelling of
    either, and a surname written in more or fewer parts); a typo besides the short form is left to the
    name's own keys. None for a bare initial."""
    analysis = analyze(name)
    surname, given = analysis.surname, analysis.given
    if not surname or len(given) < 2:
        return []
    written = {given, *analysis.given_words}  # never the nicknames package's forms (they chain: SALLY, SALVADOR)
    others = sorted(frozenset().union(*(related(name, version) for name in written)) - written)
    keys = [f"e:{surname[:EDIT_PREFIX]}|{form[:EDIT_PREFIX]}" for form in others]
    codes = sorted({nysiis(form) for form in others})
    for index, part in enumerate(analysis.surname_parts):
        part_code = analysis.surname_nysiis if index == 0 else nysiis(part)
        keys += [f"a:{part_code}|{code}" for code in codes]
    return list(dict.fromkeys(keys))


def _by_share(spellings: frozenset[str]) -> list[str]:
    return sorted(spellings, key=lambda spelling: (-surname_share(spelling), spelling))
