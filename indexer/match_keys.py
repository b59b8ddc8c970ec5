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

Which keys a query looks up, and how many, is `indexer.match_keys_query`'s part. Impersonal titles
(subject None) get no keys; a tracing without PIDs gets only name keys. Partial dates of birth and places
of birth get no keys: alone they are not selective, and the name keys already carry the name.

**Identifier first** (keys version 2). A tracing without a full SSN also stores every one of its keys
with `n` before the family (`nb:19710412`, `ne:SMITH|JOHN`, ...): its twins. A PID_QUALIFIED query that
gives a full SSN, scored at a threshold above the matcher's SSN-conflict cap, can never return a
tracing whose full SSN conflicts with the query's (one person has one SSN: the score is held under the
cap). Such a tracing shares no SSN key with the query (one wrong digit or one adjacent swap keeps a
masked pair's key, so a full SSN sharing none differs in more: `SsnLevel.DISAGREE`). So that query looks
up the SSN keys as they are and every other key as its twin (`indexer.match_keys_query.query_keys(...,
conflicting_ssn_out=True)`): the SSN's near neighbours, and among the tracings without a full SSN the
same name and date keys as before. It finds every tracing the full lookup finds that could pass the
threshold, from a far smaller set: at 10 million tracings JOHN SMITH's name keys hold thousands of
people, and about one in twenty of them lacks an SSN. The twins cost about 5% more keys (the share of
tracings without an SSN).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from jellyfish import nysiis

from indexer.analysis import NameAnalysis, analyze
from indexer.model import PartialDate, Subject, Tracing
from indexer.name_shares import EDIT_PREFIX, deletions

# What a store's keys hold: a store records the version it wrote them with, and a query asks only for
# what that version stores. 1: the families in the table above, but the SSN windows `s0 s2 s4 s6`.
# 2: the `n` twins of tracings without a full SSN (identifier first, above). 3: the SSN keys `w0`-`w7`.
# 4: `o` and `o0` for each part of a compound surname besides the whole; `a` for each word of a given name.
KEYS_VERSION = 4
# The family prefix of a key's twin, stored by tracings without a full SSN.
NO_SSN = "n"
_WINDOW_FAMILIES = ("s0:", "s2:", "s4:", "s6:")  # keys versions 1 and 2
_PAIR_FAMILIES = tuple(f"w{i}:" for i in range(8))  # keys version 3
SSN_FAMILIES = _WINDOW_FAMILIES + _PAIR_FAMILIES
_SHORT = 3
# A surname this long or longer gets the single-field deletion keys `od` (shorter ones would give
# variants of one or two letters, which select nothing).
SINGLE_EDIT_MIN = 4


# NYSIIS of a given-name form or a surname part, and the deletion neighbourhood of a name part: pure
# functions of a short string, and the given names (census names and their nickname full forms) and
# common surnames recur in nearly every name indexed (the 16,384 commonest census surnames are about 80%
# of people). Tuples rather than sets, a third of the size; full, the three take about 35 MB.
_nysiis = functools.lru_cache(maxsize=32_768)(nysiis)


@functools.lru_cache(maxsize=16_384)
def _surname_neighbourhood(surname: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A surname's deletion neighbourhood, and its `od` keys when the surname is long enough for them."""
    variants = tuple(deletions(surname))
    return variants, tuple([f"od:{variant}" for variant in variants]) if len(surname) >= SINGLE_EDIT_MIN else ()


@functools.lru_cache(maxsize=16_384)
def given_neighbourhood(given: str) -> tuple[str, ...]:
    return tuple(deletions(given))


def name_keys(analysis: NameAnalysis, out: list[str], *, single_field: bool = True, query: bool = False) -> None:
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
        if len(surname) >= SINGLE_EDIT_MIN:
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
    out.extend([f"e:{surname_prefix}|{variant}" for variant in given_neighbourhood(given)])
    append(f"p3:{surname[:_SHORT]}|{given[:_SHORT]}")
    append(f"m:{analysis.surname_metaphone}|{analysis.given_metaphone}")


def dob_keys(analysis: NameAnalysis, dates: Iterable[str], out: list[str]) -> None:
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


def ssn_keys(ssn: str, version: int = KEYS_VERSION) -> list[str]:
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


def full_date(dob: PartialDate | None) -> str:
    if dob is None:
        return ""
    month, day = dob.month, dob.day
    if month == 0 or day == 0:  # not dob.is_full
        return ""
    return f"{dob.year:04d}{month:02d}{day:02d}"


def swapped_date(dob: PartialDate | None) -> str:
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
    keys = ssn_keys(identifiers.ssn)
    has_ssn = bool(keys)
    date = full_date(identifiers.date_of_birth)
    for name in subject.all_names():
        analysis = analyze(name)
        name_keys(analysis, keys)
        if date:
            dob_keys(analysis, (date,), keys)
    if not has_ssn:
        keys += [NO_SSN + key for key in keys]
    return frozenset(keys)
