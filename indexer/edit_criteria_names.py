"""A generational suffix keyed into the surname or given-name field (review finding: search, 1).

Repository feeds often key "Whitfield Jr" (or "Whitfield, III") into the surname and "Harold Jr" into the
given name. The fuzzy analysis (`indexer.analysis`) peels such a word for the ranked modes, but the exact key
(`indexer.normalize.name_key`) kept it: "WHITFIELDJR" never met "WHITFIELD", so EXACT, NAME_ONLY and even
NONSTANDARD "Whitfield" missed the record. The edit criteria therefore move that word into the suffix field
before anything is keyed, for tracings (`indexer.edit_criteria`) and for queries (`search_service.search`)
alike, so both sides key the same name.

Rules:

- Only a separate trailing word (after a space, comma, hyphen or period) that the suffix field accepts as a
  spelling of JR, SR, II, III or IV is peeled, with an optional trailing period ("Jr."). Not V or VI,
  though the suffix field takes them: as a last word they are as often a middle initial keyed into the
  given name ("John V") or a name ("Vi"), and a name moved into the suffix would be the agency's data
  changed on a guess.
- Only when a name remains: a field that is only the suffix word ("II", "Junior") is a name and stays.
- A word that merely starts like a suffix ("Ives", "Vic") is no separate suffix word and stays.
- With an empty suffix field the word fills it; with the same suffix already there it is dropped as a
  repetition; with a different suffix the name is refused on the field that holds the word, since which of
  the two is right cannot be told.
- A part with control characters is left for the character rules to refuse (peeling first could hide them).
"""

from __future__ import annotations

from indexer import edit_rules as rules
from indexer.model import PersonName, Violation
from indexer.normalize import SUFFIXES, canonical_suffix, exact_key

# What may stand between a name and its suffix word. The comma is the conventional "Whitfield, III"; it is
# accepted only here, as the separator of a peeled suffix (a comma left inside a name is still refused).
_SEPARATORS = frozenset(" \t\n\r,-.\u2010\u2011\u2013")  # Unicode's hyphens and the en dash, as names may have
# The suffixes a trailing word is moved into the suffix field as (see the module's rules: not V, VI).
_PEELED = SUFFIXES - {"V", "VI"}
# JUNIOR and SENIOR are the longest spellings the suffix field accepts without digits (a name has none).
_LONGEST_WORD = 6
# The last letters of every such spelling (JR, SR, JNR, SNR, JUNIOR, SENIOR; II, III, VI; IV, V): a name ending
# in any other letter, nearly every name, is passed over at the cost of one comparison.
_LAST_LETTERS = frozenset("RrIiVv")


def trailing_suffix(raw: str) -> tuple[str, str] | None:
    """(what remains of the name, canonical suffix) when `raw` ends in a separate suffix word, else None.

    "Whitfield Jr" -> ("Whitfield", "JR"); "Whitfield, III" -> ("Whitfield", "III"); "II", "Ives" -> None.
    """
    tail = raw.rstrip(" \t\n\r.")
    if not tail or tail[-1] not in _LAST_LETTERS:
        return None
    end = start = len(tail)
    # Runs for every name part ingested: a short scan back over the last word, no regular expression.
    while start > 0 and tail[start - 1].isalpha():  # any script's letters: "da Silva J\u00fanior" peels JR
        start -= 1
        if end - start > _LONGEST_WORD:
            return None
    if start in (end, 0) or tail[start - 1] not in _SEPARATORS:  # no word, or no separator before it
        return None
    canonical = canonical_suffix(tail[start:end])
    if canonical not in _PEELED:
        return None
    rest = rules.collapse(tail[:start]).rstrip(" ,-\u2010\u2011\u2013")
    if not exact_key(rest):  # nothing of a name would remain ("- Jr")
        return None
    return rest, canonical


def peel_suffix(name: PersonName, prefix: str) -> tuple[PersonName, list[Violation]]:
    """The name with a trailing suffix word of the surname, then of the given name, moved into the suffix
    field (not yet cleaned: `clean_person_name` does both), and a violation per conflicting part."""
    out: list[Violation] = []
    found = {"surname": trailing_suffix(name.surname), "given_name": trailing_suffix(name.given_name)}
    if (found["surname"] is None and found["given_name"] is None) or rules.has_control(name.suffix):
        return name, out  # nothing to peel (nearly every name), or a suffix field refused on its own
    suffix = canonical_suffix(rules.collapse(name.suffix))
    parts = {"surname": name.surname, "given_name": name.given_name}
    changed = False
    for part, label in (("surname", "surname"), ("given_name", "given name")):
        peeled = found[part]
        # A control character is refused, never hidden (the joiners a name may hold are no control).
        if peeled is None or rules.has_control(parts[part], rules.NAME_JOINERS):
            continue
        rest, word = peeled
        if suffix and suffix != word:
            if suffix in SUFFIXES:  # an unknown suffix is refused on its own field by the character rules
                out.append(
                    Violation(f"{prefix}.{part}", f"{label} ends in a generational suffix other than the name's suffix")
                )
            continue
        parts[part], suffix, changed = rest, word, True
    if not changed:
        return name, out
    return PersonName(parts["surname"], parts["given_name"], name.middle_name, suffix), out


def clean_person_name(
    name: PersonName, prefix: str, *, surname_required: bool = True, given_required: bool = False
) -> tuple[PersonName, list[Violation]]:
    """`edit_rules.clean_name` after `peel_suffix`: the cleaned name and all its violations, one per field."""
    peeled, conflicts = peel_suffix(name, prefix)
    cleaned, violations = rules.clean_name(
        peeled, prefix, surname_required=surname_required, given_required=given_required
    )
    if not conflicts:
        return cleaned, violations
    # One violation per field (edit_rules' contract): a conflict joins the field's other reasons.
    merged: dict[str, str] = {v.field: v.description for v in conflicts}
    for violation in violations:
        before = merged.get(violation.field)
        merged[violation.field] = f"{before}; {violation.description}" if before else violation.description
    order = {"surname": 0, "given_name": 1, "middle_name": 2, "suffix": 3}
    ranked = sorted(merged.items(), key=lambda item: order.get(item[0].rsplit(".", 1)[-1], 4))
    return cleaned, [Violation(path, description) for path, description in ranked]
