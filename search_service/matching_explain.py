"""Explanations for the fuzzy matcher: one `Feature` per compared field, in words for the adjudicator.

Scoring a batch keeps only level codes (`search_service.matching_names.NameComparison` and the
identifier levels of `search_service.matching_pids`); explaining is the costly part, so `rank` asks
for it only for the hits it returns.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from indexer.analysis import NameAnalysis
from indexer.model import Identifiers
from search_service.matching_columns import Candidates
from search_service.matching_given_forms import shared_full_form
from search_service.matching_name_levels import NameLevel
from search_service.matching_names import NameComparison
from search_service.matching_pids import Agreement, Feature, dob_feature, pob_feature, ssn_feature
from search_service.matching_romanized import share_bits

Codes = npt.NDArray[np.int8]

_N = NameLevel

_NOMINAL = {
    _N.EXACT: 1.0, _N.NICKNAME: 0.9, _N.COMPOUND_PART: 0.95, _N.ROMANIZED: 0.9, _N.MIDDLE_AS_GIVEN: 0.9, _N.INITIAL: 0.5
}  # fmt: skip


def _name_feature(
    field_name: str, level: int, sim: float, q: str, c: str, phonetic: tuple[str, ...], note: str
) -> Feature:
    lvl = NameLevel(level)
    if lvl == _N.BOTH_MISSING:
        return Feature(field_name, Agreement.MISSING, 0.0, f"{note}absent in both the query and the record")
    if lvl == _N.MISSING:
        side = "query" if not q else "record"
        return Feature(field_name, Agreement.MISSING, 0.0, f"{note}absent in the {side}")
    if lvl == _N.EXACT:
        return Feature(field_name, Agreement.EXACT, 1.0, f"{note}exact ({c})")
    if lvl in (_N.ANOTHER_NAME, _N.ANOTHER_NAME_FAINT):  # fuzzy-10, fuzzy-13
        said = f"another given name ({q} / {c}): names of their own, a man's and a woman's, Jaro-Winkler {sim:.2f}"
        if phonetic and lvl == _N.ANOTHER_NAME_FAINT:  # alike only as they sound, it may be
            said += ", same " + " and ".join(phonetic)
        return Feature(field_name, Agreement.DISAGREE, round(sim, 3), note + said)
    if lvl == _N.DISAGREE:
        return Feature(
            field_name, Agreement.DISAGREE, round(sim, 3), f"{note}different ({q} / {c}), Jaro-Winkler {sim:.2f}"
        )
    similarity = _NOMINAL.get(lvl, round(sim, 3))
    said = {
        _N.COMPOUND_PART: f"part of a compound surname ({q} / {c})",
        _N.ROMANIZED: f"another romanization of one surname ({q} / {c}){_asian_share(q, c)}",
        _N.MIDDLE_AS_GIVEN: f"given name is the other's middle name ({q} / {c})",
        _N.INITIAL: f"initial ({q} / {c})",
        _N.PHONETIC: f"sounds alike ({q} / {c}), Jaro-Winkler {sim:.2f}",
        _N.ONE_EDIT: f"one letter off ({q} / {c}: one wrong, missing, extra, or two swapped), Jaro-Winkler {sim:.2f}",
        _N.TWO_EDITS: f"two letters off ({q} / {c}), Jaro-Winkler {sim:.2f}",
    }.get(lvl, f"Jaro-Winkler {sim:.2f} ({q} / {c})")
    if phonetic and lvl not in _NOMINAL:
        said += ", same " + " and ".join(phonetic)
    return Feature(field_name, Agreement.PARTIAL, similarity, note + said)


def _asian_share(q: str, c: str) -> str:
    """fuzzy-9: a spelling held in the US mostly by people of other origins counts for less (matching_romanized)."""
    fewest = min((q, c), key=share_bits)
    share = 2 ** share_bits(fewest)
    return f", weighed by the {share:.0%} of {fewest}'s US bearers who are Asian" if share < 0.9 else ""


def one_word_of_the_other(qa: NameAnalysis, ca: NameAnalysis) -> bool:
    """fuzzy-7: one given name is a single word, and one of the words of the other (LAN / THI LAN)."""
    if qa.given_words:
        return not ca.given_words and ca.given in qa.given_words
    return len(qa.given) > 1 and qa.given in ca.given_words


def _nickname(qa: NameAnalysis, ca: NameAnalysis, given_words: bool, hypocorisms: int) -> Feature:
    """A NICKNAME-level given name: from fuzzy-7 one word of the other's (`one_word_of_the_other`), else a
    nickname and its full form (or, in the versions before fuzzy-7, a first word in common), else (fuzzy-12) a
    Spanish short form and its full form."""
    if given_words and one_word_of_the_other(qa, ca):
        said = f"a word of the given name: {min(qa.given, ca.given, key=len)} ({qa.given} / {ca.given})"
        return Feature("given_name", Agreement.PARTIAL, 0.9, said)
    shared = qa.given_forms & ca.given_forms
    if not shared and hypocorisms and (full := shared_full_form(qa, ca, hypocorisms)):
        said = f"a Spanish short form of {full} ({qa.given} / {ca.given})"
        return Feature("given_name", Agreement.PARTIAL, 0.9, said)
    full = max(sorted(shared), key=len)
    return Feature("given_name", Agreement.PARTIAL, 0.9, f"nickname of {full} ({qa.given} / {ca.given})")


def _phonetic(q: NameAnalysis, c: NameAnalysis, q_field: str, c_field: str) -> tuple[str, ...]:
    found = []
    for code in ("nysiis", "metaphone"):
        value = getattr(q, f"{q_field}_{code}")
        if value and value == getattr(c, f"{c_field}_{code}"):
            found.append("NYSIIS" if code == "nysiis" else "Metaphone")
    return tuple(found)


def explain(
    index: int,
    names: NameComparison,
    pids: tuple[Codes, Codes, Codes] | None,
    qa: NameAnalysis,
    ids: Identifiers,
    cands: Candidates,
    *,
    given_words: bool = False,
    hypocorisms: int = 0,
) -> tuple[int, tuple[Feature, ...]]:
    """Why candidate `index` scored as it did against the one query (row 0 of `names` and `pids`): which
    of its names matched best (0 the primary, k its k-th alias) and one feature per compared field."""
    n = names  # short: every line below reads it
    starts, group = cands.names.starts, cands.group(index)
    first = int(starts[group])
    last = int(starts[group + 1]) if group + 1 < len(starts) else len(cands.names.analyses)
    row = first + int(np.argmax(n.weight[0, first:last]))
    ca = cands.names.analyses[row]
    features: list[Feature] = []
    if n.swapped[0, row]:
        note = "given and surname swapped: "
        features.append(_name_feature("surname", n.surname[0, row], float(n.surname_sim[0, row]), qa.surname,
                                      ca.given, _phonetic(qa, ca, "surname", "given"), note))  # fmt: skip
        features.append(_name_feature("given_name", n.given[0, row], float(n.given_sim[0, row]), qa.given,
                                      ca.surname, _phonetic(qa, ca, "given", "surname"), note))  # fmt: skip
    else:
        features.append(_name_feature("surname", n.surname[0, row], float(n.surname_sim[0, row]), qa.surname,
                                      ca.surname, _phonetic(qa, ca, "surname", "surname"), ""))  # fmt: skip
        given = _name_feature("given_name", n.given[0, row], float(n.given_sim[0, row]), qa.given, ca.given,
                              _phonetic(qa, ca, "given", "given"), "")  # fmt: skip
        if n.given[0, row] == _N.NICKNAME:
            given = _nickname(qa, ca, given_words, hypocorisms)
        elif n.given[0, row] == _N.EXACT and qa.given != ca.given:  # fuzzy-7: given and middle as one
            both = " ".join(f"{qa.given} {qa.middle} / {ca.given} {ca.middle}".split())
            said = f"the same name, given and middle name written as one ({both})"
            given = Feature("given_name", Agreement.EXACT, 1.0, said)
        features.append(given)
    features.append(_name_feature("middle_name", n.middle[0, row], float(n.middle_sim[0, row]), qa.middle, ca.middle,
                                  (), ""))  # fmt: skip
    suffix_level = int(n.suffix[0, row])
    if suffix_level == 0:
        side = "query" if not qa.suffix else "record"
        features.append(Feature("suffix", Agreement.MISSING, 0.0, f"absent in the {side}"))
    elif suffix_level == 1:
        features.append(Feature("suffix", Agreement.EXACT, 1.0, f"same suffix ({ca.suffix})"))
    else:
        features.append(Feature("suffix", Agreement.DISAGREE, 0.0, f"different suffix ({qa.suffix} / {ca.suffix})"))
    if pids is not None:
        subject = cands.tracings[index].subject
        record = None if subject is None else subject.identifiers
        features.append(ssn_feature(int(pids[0][0, index]), ids, record))
        features.append(dob_feature(int(pids[1][0, index]), ids, record))
        features.append(pob_feature(int(pids[2][0, index]), ids, record))
    return row - first, tuple(features)
