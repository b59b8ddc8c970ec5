"""Forms of one given name, for `search_service.matching_names`: an English nickname and its full form (BILL /
WILLIAM, through `NameAnalysis.given_forms`, from the `nicknames` package), and from fuzzy-12 a Spanish short
form and its full form (PEPE / JOSE, PACO / FRANCISCO, LUPE / GUADALUPE: `indexer.given_hypocorisms`, table
`Matcher.hypocorisms`). Both agree at the NICKNAME level.

The Spanish table is read on the names a record or a query writes (its given name, and each word of a given
name of several: MARIA GUADALUPE is a GUADALUPE, as fuzzy-7 makes THI LAN a LAN), never on the nicknames
package's full forms of them: the two lists' ambiguities chained (SALLY is a SALVADOR to the package, CHAVO one
to the table: a woman and a man's names made one; a review of fuzzy-12's first draft). Two names agree where
the full forms of their written names meet (`given_hypocorisms.forms_of`); such an agreement is weighed by the
census rarity of the commonest full name it stands for (`table_pairs`): two short forms are as rare as any name
the census does not list, but what PEPE and CHEPE share is JOSE, one of the commonest names.

A query whose names are in no line of the table (most) costs nothing; one that is in a line is looked up in
an index of the candidates' written names' full forms, made once per compiled candidate set and kept with it
(`NameColumns.hypocorism_index`).
"""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt

from indexer.analysis import NameAnalysis, nickname_canonicals
from indexer.given_hypocorisms import forms_of, full_names, touches
from search_service.matching_columns import NameColumns, given_rarity

Bools = npt.NDArray[np.bool_]
Floats = npt.NDArray[np.float64]


def written(a: NameAnalysis) -> frozenset[str]:
    """The given names `a` writes: its given name and each word of it (no nickname package's forms)."""
    return frozenset({a.given, *a.given_words}) if len(a.given) > 1 else frozenset()


def table_pairs(q: NameColumns, c: NameColumns, version: int) -> tuple[Bools, Floats]:
    """(Q, R): the query's and the candidate's written given names are short and full forms of one name in
    table `version` (or two short forms of it), and the census rarity (bits, `matching_columns.given_rarity`)
    of the commonest full name the query's stands for (+inf where it stands for none): the most such an
    agreement is weighed as."""
    found: Bools = np.zeros((len(q.analyses), len(c.analyses)), dtype=np.bool_)
    rarity: Floats = np.full(found.shape, np.inf)
    for i, a in enumerate(q.analyses):
        names = written(a)
        if names and touches(names, version):
            forms = forms_of(names, version)
            found[i, _rows_with_forms(c, forms, version)] = True
            rarity[i] = min(given_rarity(name) for name in forms & full_names(version) or forms)
    return found, rarity


def _rows_with_forms(c: NameColumns, forms: frozenset[str], version: int) -> list[int]:
    index = c.hypocorism_index.get(version)
    if index is None:
        index = c.hypocorism_index[version] = {}
        for row, a in enumerate(c.analyses):
            names = written(a)
            if names and touches(names, version):
                for form in forms_of(names, version):
                    index.setdefault(form, []).append(row)
    found: list[int] = []
    for form in forms:
        found.extend(index.get(form, ()))
    return found


def shared_full_form(qa: NameAnalysis, ca: NameAnalysis, version: int) -> str:
    """The full name two written given names share through table `version` ("" if none): for the explanation."""
    shared = forms_of(written(qa), version) & forms_of(written(ca), version) & full_names(version)
    return max(sorted(shared), key=len) if shared else ""


@functools.lru_cache(maxsize=4096)
def nickname_forms(name: str) -> frozenset[str]:
    """A name read as a given name, with the full forms of it as a nickname (`indexer.analysis.given_forms`)."""
    return frozenset({name}) | nickname_canonicals(name)


def nicknames_crossed(q: NameColumns, c: NameColumns, among: Bools, fields: tuple[int, int], version: int) -> Bools:
    """The pairs of `among` whose names are a nickname and its full form (English, or from fuzzy-12 Spanish,
    table `version`), where the alignment compares one's given name with the other's surname field (no
    NICKNAME level there): a few pairs, in Python."""
    result: Bools = np.zeros(among.shape, dtype=np.bool_)
    for i, j in zip(*np.nonzero(among), strict=True):
        qa, ca = q.analyses[i], c.analyses[j]
        q_forms = qa.given_forms if fields[0] == 0 else nickname_forms(qa.surname)
        c_forms = ca.given_forms if fields[1] == 0 else nickname_forms(ca.surname)
        crossed = not q_forms.isdisjoint(c_forms)
        if not crossed and version:
            q_names = written(qa) if fields[0] == 0 else frozenset({qa.surname})
            c_names = written(ca) if fields[1] == 0 else frozenset({ca.surname})
            crossed = not forms_of(q_names, version).isdisjoint(forms_of(c_names, version))
        result[i, j] = crossed
    return result
