"""Whether an update of a record under the same key is still about the same person.

What belongs to the person rather than to the record — a statement of dispute, which describes them —
must not pass to someone else when an agency refiles a record number to another subject (privacy review
1: the first person's statement was shown on the second person's record and in their access answer).

The rule: the same person while the update keeps the SSN (a name corrected, an alias added) or keeps one
of the names, surname and given name as EXACT compares them (an SSN corrected, added or removed). Both
changed at once is another person. A namesake given the number with another SSN counts as the same
person: nothing in the record tells that apart from a corrected SSN, and the agency that made the change
is the one to ask.
"""

from __future__ import annotations

from indexer.model import PersonName, Subject
from indexer.normalize import canonical_suffix, fold, name_key


def name_pair(name: PersonName) -> tuple[str, str]:
    """Surname and given name in EXACT's form: what identifies a name across records."""
    key = name_key(name)
    return key.surname, key.given


def same_subject(old: Subject | None, new: Subject | None) -> bool:
    """Whether `new` (an update under the same key) is about the person `old` was (None: no subject, an
    impersonal title; such a record is about the same nobody)."""
    if old is None or new is None:
        return old is None and new is None
    if old.identifiers.ssn and old.identifiers.ssn == new.identifiers.ssn:
        return True
    before = {name_pair(n) for n in old.all_names()}
    return any(name_pair(n) in before for n in new.all_names())


# A subject's middle names (folded words: "J. R." is J, R), suffix (canonical) and place of birth
# (PlaceOfBirth.code): what tells namesakes with the same name and date of birth apart.
Details = tuple[tuple[str, ...], str, str]


def details_of(subject: Subject) -> Details:
    place = subject.identifiers.place_of_birth
    middle = tuple(fold(subject.name.middle_name).split())
    return middle, canonical_suffix(subject.name.suffix), place.code() if place is not None else ""


def details_agree(one: Details, other: Details) -> bool:
    """Whether two namesakes' details allow one person: middle names that both give agree (`_middles_agree`),
    a suffix both give is the same, and so is a place of birth (the state, or the country). A detail that
    one of them lacks says nothing either way."""
    (middle, suffix, place), (their_middle, their_suffix, their_place) = one, other
    if not _middles_agree(middle, their_middle):
        return False
    return (not suffix or not their_suffix or suffix == their_suffix) and (
        not place or not their_place or place == their_place
    )


def _middles_agree(middle: tuple[str, ...], theirs: tuple[str, ...]) -> bool:
    """The same letters (JOHNROBERT, JOHN ROBERT), or word by word each the same or an initial of the
    other's (J R and JOHN ROBERT; one may give fewer words). A word that merely begins the other's is
    another name: DE LA CRUZ is not DEAN, JO ANN not JOSEPH (a review of this session's diff)."""
    if not middle or not theirs or "".join(middle) == "".join(theirs):
        return True
    pairs = zip(middle, theirs, strict=False)
    return all(a == b or (len(a) == 1 and b.startswith(a)) or (len(b) == 1 and a.startswith(b)) for a, b in pairs)
