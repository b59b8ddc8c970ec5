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
        whole first) and every given form (own given plus nickname full forms)    nicknames, a compound
                                                                                  surname's part alone
e       S' | G and S | G', where S' ranges over S and S with one character        any one edit in S
        deleted (its deletion neighbourhood) and G' likewise over G; all taken    (its first letter
        to their first 8 characters                                               too) or in G
p3      first 3 of S | first 3 of G                                               edits after the 3rd
                                                                                  letter in both parts
m       Metaphone(S) | Metaphone(G)                                               phonetic spellings
                                                                                  NYSIIS keeps apart
i       NYSIIS(S) | initial, stored only when the given name is a bare initial    "J SMITH" records
        (a query with a full given name looks it up with its initial)
o       S alone                                                                   G missing or replaced
o0      S alone, only when the name has no given name                             given-less records
r       G alone                                                                   S missing or replaced
r0      G alone, only when the name has no surname                                surname-less records
b       full DOB (YYYYMMDD) alone                                                 both names damaged
bs      full DOB + first letter of S                                              heavy damage to G
bg      full DOB + first letter of G                                              heavy damage to S
s0 s2   the SSN with a window of 3 digits masked (windows start at digit 0, 2,   one digit wrong, two
s4 s6   4 and 6): the six other digits                                            adjacent digits swapped
======  ========================================================================  ====================

One edit (substitution, insertion, deletion or adjacent transposition) leaves a string and its
variant sharing a member of their deletion neighbourhoods, so `e` finds any single edit in one name
part while the other part is intact: the most common damage (and, as both neighbourhoods share one
namespace, some pairs with one deletion-like edit in each part). Every adjacent pair of SSN digits
lies inside one masked window, so one wrong digit or one adjacent transposition keeps a window
intact; a window matches at most 1,000 numbers (about ten other people at 10 million tracings).
Bare initials and one-letter names never make `e`, `o` or `r` keys.

**Single-field keys (`o`, `r`, `b`) are looked up by selectivity.** They are stored for every name,
but a query looks one up only when it is expected to match few tracings in an index of `index_size`
tracings: census share of the name x `index_size` (for `b`: `index_size` / `BIRTH_DATES`) <=
`SINGLE_FIELD_BUDGET` (500). At the design scale (10 million, the default) that is a surname held by
at most 0.005% of the population (SMITH, at 1%, is never looked up alone; KAYVAS always is) and a
date of birth alone (about 460 people); in a 5,000-record test index every one qualifies.
`o0`/`r0` (records that lack the other part) are always looked up. A name the 1990 census does not
list counts as the rarest listed name, so a surname common in the index but absent from the census
can give a set larger than the budget; re-ranking is unaffected, only the set's size.

Query time (`query_keys`) emits the same families for the query's name and, in addition, for the
name with given and surname swapped and for the middle name taken as the given name (people who go
by their middle name; no single-field keys for that variant), plus DOB keys for the date with day
and month swapped. Impersonal titles (subject None) get no keys; a tracing without PIDs gets only
name keys. Partial dates of birth and places of birth get no keys: alone they are not selective,
and the name keys already carry the name.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from jellyfish import nysiis

from indexer.analysis import NameAnalysis, analyze
from indexer.census import given_name_table, surname_table
from indexer.model import Identifiers, PartialDate, PersonName, Tracing

DESIGN_INDEX_SIZE = 10_000_000
# The largest expected posting list of a single-field key (o, r, b) that a query still looks up.
SINGLE_FIELD_BUDGET = 500
# Distinct full dates of birth an index spreads over: about 60 years of births.
BIRTH_DATES = 60 * 365
_SHORT = 3
_EDIT_PREFIX = 8
_SSN_WINDOWS = (0, 2, 4, 6)
_SSN_WINDOW = 3


@functools.cache
def _census_shares() -> tuple[dict[str, float], float, dict[str, float], float]:
    """Surname and given-name shares of the population (fractions, not percent), each with the share
    an unlisted name is taken to have (the smallest listed)."""
    surnames = surname_table()
    given = given_name_table()
    surname_shares = {name: share / 100 for name, share in zip(surnames.names, surnames.frequencies, strict=True)}
    given_shares = {name: share / 100 for name, share in zip(given.names, given.frequencies, strict=True)}
    return surname_shares, min(surname_shares.values()), given_shares, min(given_shares.values())


def surname_share(surname: str) -> float:
    """The share of the US population (1990 census) with this exact-key surname."""
    shares, unlisted, _, _ = _census_shares()
    return shares.get(surname, unlisted)


def given_share(given: str) -> float:
    """The share of the US population (1990 census, both sexes) with this exact-key given name."""
    _, _, shares, unlisted = _census_shares()
    return shares.get(given, unlisted)


def _deletions(text: str) -> set[str]:
    """The deletion neighbourhood of a name part's first `_EDIT_PREFIX` characters: its prefix, and
    the prefix of every string one character shorter (deleting one of the first `_EDIT_PREFIX` + 1).

    Two spellings one edit apart share a member (substitution: delete it on both sides; insertion or
    deletion: the longer one's deletion is the shorter one; adjacent transposition: delete the same
    letter on both sides); an edit beyond the prefix leaves the prefixes equal. Truncating keeps the
    number of keys of a long name at `_EDIT_PREFIX` + 2 at most."""
    limit = _EDIT_PREFIX
    variants = {text[:limit]}
    for index in range(min(len(text), limit + 1)):
        variants.add((text[:index] + text[index + 1 :])[:limit])
    return variants


def _name_keys(analysis: NameAnalysis, out: set[str], *, single_field: bool = True, query: bool = False) -> None:
    """Every name key of one name: what the index stores, and what a query looks up (a query filters
    the single-field keys `o` and `r` with `_selective`, and leaves them out for the middle-name
    variant)."""
    surname = analysis.surname
    given = analysis.given
    if single_field and len(surname) > 1:
        out.add(f"o:{surname}")
        if not given:
            out.add(f"o0:{surname}")
    if single_field and len(given) > 1:
        out.add(f"r:{given}")
        if not surname:
            out.add(f"r0:{given}")
    if not (surname and given):
        return
    given_codes = {nysiis(form) for form in analysis.given_forms}
    for index, part in enumerate(analysis.surname_parts):
        part_code = analysis.surname_nysiis if index == 0 else nysiis(part)
        for given_code in given_codes:
            out.add(f"a:{part_code}|{given_code}")
    if len(given) == 1 or query:  # a query looks for records that give only its initial
        out.add(f"i:{analysis.surname_nysiis}|{given[0]}")
    if len(given) == 1:
        return
    surname_prefix, given_prefix = surname[:_EDIT_PREFIX], given[:_EDIT_PREFIX]
    for variant in _deletions(surname):
        out.add(f"e:{variant}|{given_prefix}")
    for variant in _deletions(given):
        out.add(f"e:{surname_prefix}|{variant}")
    out.add(f"p3:{surname[:_SHORT]}|{given[:_SHORT]}")
    out.add(f"m:{analysis.surname_metaphone}|{analysis.given_metaphone}")


def _dob_keys(analysis: NameAnalysis, dates: Iterable[str], out: set[str]) -> None:
    for date in dates:
        out.add(f"b:{date}")
        if analysis.surname:
            out.add(f"bs:{date}{analysis.surname[0]}")
        if analysis.given:
            out.add(f"bg:{date}{analysis.given[0]}")


def _ssn_keys(ssn: str) -> list[str]:
    """The four masked windows of a 9-digit SSN (dashes and spaces tolerated); none for anything else."""
    if not (len(ssn) == 9 and ssn.isdigit()):
        ssn = "".join(ssn.replace("-", " ").split())
        if len(ssn) != 9 or not ssn.isdigit():
            return []
    return [f"s{start}:{ssn[:start]}{ssn[start + _SSN_WINDOW :]}" for start in _SSN_WINDOWS]


def _full_date(dob: PartialDate | None) -> str:
    if dob is None or not dob.is_full:
        return ""
    return f"{dob.year:04d}{dob.month:02d}{dob.day:02d}"


def _swapped_date(dob: PartialDate | None) -> str:
    """The date with day and month swapped, when that is a different possible date."""
    if dob is None or not dob.is_full or dob.day == dob.month or dob.day > 12:
        return ""
    return f"{dob.year:04d}{dob.day:02d}{dob.month:02d}"


def tracing_keys(tracing: Tracing) -> frozenset[str]:
    """The blocking keys stored with a tracing: over its primary name, every alias, and its PIDs."""
    subject = tracing.subject
    if subject is None:
        return frozenset()
    keys: set[str] = set(_ssn_keys(subject.identifiers.ssn))
    date = _full_date(subject.identifiers.date_of_birth)
    for name in subject.all_names():
        analysis = analyze(name)
        _name_keys(analysis, keys)
        if date:
            _dob_keys(analysis, (date,), keys)
    return frozenset(keys)


def _selective(key: str, index_size: int) -> bool:
    """Whether a query looks this key up: single-field keys only when expected to be small."""
    family, _, value = key.partition(":")
    if family == "o":
        return surname_share(value) * index_size <= SINGLE_FIELD_BUDGET
    if family == "r":
        return given_share(value) * index_size <= SINGLE_FIELD_BUDGET
    if family == "b":
        return index_size / BIRTH_DATES <= SINGLE_FIELD_BUDGET
    return True


def query_keys(name: PersonName | None, ids: Identifiers, *, index_size: int = DESIGN_INDEX_SIZE) -> list[str]:
    """Keys to look up for a query, most selective first: SSN windows, then DOB keys, then name keys
    (as given, then swapped given/surname, then the middle name as given). No duplicates.

    `index_size` (the number of tracings in the index, default the 10-million design scale) only
    decides which single-field keys (a surname or a given name alone) are selective enough to use."""
    ordered: list[str] = _ssn_keys(ids.ssn)
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
        dob_keys: set[str] = set()
        _dob_keys(analysis, dates, dob_keys)
        ordered.extend(sorted(key for key in dob_keys if _selective(key, index_size)))
    for index, variant in enumerate(variants):
        name_keys: set[str] = set()
        _name_keys(variant, name_keys, single_field=index < 2, query=True)
        ordered.extend(sorted(key for key in name_keys if _selective(key, index_size)))
    return list(dict.fromkeys(ordered))
