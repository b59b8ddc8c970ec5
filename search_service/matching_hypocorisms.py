"""fuzzy-12: a Spanish given name's short and full forms agree at the NICKNAME level (PEPE / JOSE, PACO /
FRANCISCO, LUPE / GUADALUPE: `indexer.given_hypocorisms`, table `Matcher.hypocorisms`), as an English nickname
and its full form do (BILL / WILLIAM, through `NameAnalysis.given_forms`).

Two names agree where the full forms of their given forms meet (`given_hypocorisms.forms_of`). A query whose
given forms are in no line of the table (most) costs nothing; one that is in a line is looked up in an index of
the candidates' forms, made once per compiled candidate set and kept with it (`NameColumns.hypocorism_index`).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from indexer.given_hypocorisms import forms_of, touches
from search_service.matching_columns import NameColumns

Bools = npt.NDArray[np.bool_]


def short_and_full(q: NameColumns, c: NameColumns, version: int) -> Bools:
    """(Q, R): the query's and the candidate's given names are short and full forms of one name in table
    `version` (or two short forms of it), neither a bare initial."""
    result: Bools = np.zeros((len(q.analyses), len(c.analyses)), dtype=np.bool_)
    for i, a in enumerate(q.analyses):
        if len(a.given) > 1 and touches(a.given_forms, version):
            result[i, _rows_with_forms(c, forms_of(a.given_forms, version), version)] = True
    return result


def _rows_with_forms(c: NameColumns, forms: frozenset[str], version: int) -> list[int]:
    index = c.hypocorism_index.get(version)
    if index is None:
        index = c.hypocorism_index[version] = {}
        for row, a in enumerate(c.analyses):
            if len(a.given) > 1 and touches(a.given_forms, version):
                for form in forms_of(a.given_forms, version):
                    index.setdefault(form, []).append(row)
    found: list[int] = []
    for form in forms:
        found.extend(index.get(form, ()))
    return found


def shared_full_form(q_forms: frozenset[str], c_forms: frozenset[str], version: int) -> str:
    """The full name two sets of given forms share through table `version` ("" if none): for the explanation."""
    shared = forms_of(q_forms, version) & forms_of(c_forms, version)
    return max(sorted(shared), key=len) if shared else ""
