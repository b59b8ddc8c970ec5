"""How common a name, or a misspelling of one, is: the 1990 census shares that decide which single-field
blocking keys a query looks up (`indexer.match_keys`), and the deletion neighbourhoods both share.

Kept apart from the keys themselves: these are tables built once per process (`warm_up`), the keys are
pure functions of one name.
"""

from __future__ import annotations

import functools

from rapidfuzz.distance import OSA

from indexer.census import given_name_table, surname_table

# A name part's deletion neighbourhood covers its first EDIT_PREFIX characters (see `deletions`).
EDIT_PREFIX = 8


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


# No surname deletion variant is held by more than this share of the population (SMTH: SMITH, SMYTH,
# ... about 1.01%; tests/test_match_keys.py checks it), so that a small index needs no estimate.
MAX_VARIANT_SHARE = 0.012
# No given name is held by more than this share of the population (JAMES, 1.66%, both sexes counted).
MAX_GIVEN_SHARE = 0.017
# Variant shares are kept in a table down to this (about 100,000 variants); a rarer variant's share is
# worked out when asked for (`_rare_variant_share`).
_VARIANT_FLOOR = 1e-5


@functools.cache
def variant_shares() -> dict[str, float]:
    """The population share (1990 census) of surnames whose deletion neighbourhood (`_deletions`)
    holds each variant, for the variants held by at least `_VARIANT_FLOOR`. Built once, when an index
    is large enough to need it (a second or two, a few MB kept)."""
    shares: dict[str, float] = {}
    for name, share in _census_shares()[0].items():
        for variant in deletions(name):
            shares[variant] = shares.get(variant, 0.0) + share
    return {variant: share for variant, share in shares.items() if share >= _VARIANT_FLOOR}


_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@functools.cache
def _rare_variant_shares() -> dict[str, float]:
    """The share of each variant the table above leaves out: the census surnames it is, or that are it
    with one letter inserted (names cut to the prefix length, whose longer tails the table would count,
    are rare enough here to leave out). Worked out for every string of at most EDIT_PREFIX letters that
    is a census surname or one letter short of one (a few hundred thousand, ~45 MB); any other variant
    holds none. Built once, with `variant_shares`: worked out per variant (about 200 candidate names
    looked up each) it was most of a ranked query's keys whenever its misspelling was new."""
    shares = _census_shares()[0]
    common = variant_shares()
    found: dict[str, float] = {}
    for name, share in shares.items():
        for variant in {name} | {name[:i] + name[i + 1 :] for i in range(len(name)) if name[i] in _LETTERS}:
            if len(variant) <= EDIT_PREFIX and variant not in common:
                found[variant] = found.get(variant, 0.0) + share
    return found


def deletion_share(variant: str) -> float:
    """The expected posting list of the key `od:variant` per tracing indexed: the share of the
    population whose surname's deletion neighbourhood holds `variant`. Names the census does not
    list count nothing: their postings are small by definition."""
    found = variant_shares().get(variant)
    return _rare_variant_shares().get(variant, 0.0) if found is None else found


@functools.cache
def _given_variants() -> dict[str, tuple[str, ...]]:
    """Census given names by each member of their deletion neighbourhood (whole names, no prefix)."""
    found: dict[str, list[str]] = {}
    for name in _census_shares()[2]:
        for variant in {name} | {name[:i] + name[i + 1 :] for i in range(len(name))}:
            found.setdefault(variant, []).append(name)
    return {variant: tuple(names) for variant, names in found.items()}


def near_given_names(given: str) -> list[str]:
    """Census given names one edit (substitution, insertion, deletion, adjacent swap) from `given`,
    `given` itself left out: what a misspelt given name may stand for. Two strings one edit apart
    share a member of their deletion neighbourhoods, so only those are looked up, then checked."""
    return list(_near_given_names(given))


# Asked for every name a query gives (and its swap); given names recur as census names do.
@functools.lru_cache(maxsize=16_384)
def _near_given_names(given: str) -> tuple[str, ...]:
    if len(given) < 3:
        return ()
    table = _given_variants()
    near: set[str] = set()
    for variant in {given} | {given[:i] + given[i + 1 :] for i in range(len(given))}:
        near.update(table.get(variant, ()))
    near.discard(given)
    return tuple(sorted(name for name in near if OSA.distance(name, given, score_cutoff=1) <= 1))


def warm_up() -> None:
    """Build the tables a large index's queries need (`deletion_share`, `near_given_names`; a second
    or two, once per process), so that the first query does not wait for them: for a server's start."""
    variant_shares()
    _rare_variant_shares()
    _given_variants()


def deletions(text: str) -> set[str]:
    """The deletion neighbourhood of a name part's first `EDIT_PREFIX` characters: its prefix, and
    the prefix of every string one character shorter (deleting one of the first `EDIT_PREFIX` + 1).

    Two spellings one edit apart share a member (substitution: delete it on both sides; insertion or
    deletion: the longer one's deletion is the shorter one; adjacent transposition: delete the same
    letter on both sides); an edit beyond the prefix leaves the prefixes equal. Truncating keeps the
    number of keys of a long name at `EDIT_PREFIX` + 2 at most."""
    # Deleting character i (i <= EDIT_PREFIX) and cutting to EDIT_PREFIX only ever reads the first
    # EDIT_PREFIX + 1 characters, so the deletions are taken from that head, already short enough.
    head = text[: EDIT_PREFIX + 1]
    variants = {head[:index] + head[index + 1 :] for index in range(len(head))}
    variants.add(text[:EDIT_PREFIX])
    return variants
