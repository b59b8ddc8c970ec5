"""How the name an access request gives compares with each record of the answer (search_service.privacy).

The answer finds the person's records by their SSN under whatever name each is filed (a name changed since,
an alias), so a record may come back under names that are not the one asked; a wrong name then got the SSN
holder's whole file, each record explained by `ssn: equal` alone (a privacy officer's acceptance test, F7).
Each record's explanation now says how the name asked compares with its names, as the feature `name`:

- EXACT, "normalized name equal": one of its names is the name asked (`matched_name`: primary or alias N);
- PARTIAL: one agrees in part: the same surname and another given name (a married name), or the same given
  name, or surname and given name with another middle name or suffix; the detail says which name and how;
- DISAGREE: no part of the name asked agrees with any of its names. The office must check the requester's
  identity before releasing anything (`dcii privacy access` says so before the records).

By exact keys (indexer.normalize.name_key), as EXACT and NAME_ONLY compare names and as the accounting names
a subject (privacy_person.pair), a middle name and suffix as EXACT reads them; not by the fuzzy scorer. The
question is whether the requester gave the record's name, before a release: a sound-alike or a name a letter
off is for the office to look at, and the scorer would count it as agreeing in part, by weights that change
with its version (a typo of the person's own name reads here as agreeing with none: the safe side). Details
name no value: the hit carries the record's names, and the name asked is the office's own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dcii.v1 import search_pb2
from indexer.model import PersonName
from indexer.normalize import NameKey, name_key
from indexer.store.base import NameRow
from search_service.exact import name_agrees


@dataclass(frozen=True, slots=True)
class _Compared:
    """The name asked against one of a record's names: the parts that agree and those that do not."""

    alias_no: int
    same: tuple[str, ...]
    other: tuple[str, ...]

    @property
    def whole(self) -> bool:
        return not self.other


def _other(part: str, asked: str, record: str) -> str:
    if not asked:
        return f"no {part} asked"
    return f"another {part}" if record else f"no {part} on the record"


def _compare(asked: NameKey, alias_no: int, name: PersonName) -> _Compared:
    key = name_key(name)
    same: list[str] = []
    other: list[str] = []
    for part, mine, theirs in (("surname", asked.surname, key.surname), ("given name", asked.given, key.given)):
        if mine and mine == theirs:
            same.append(part)
        elif mine or theirs:  # a name of one part (privacy review 6) leaves the other empty on both sides
            other.append(_other(part, mine, theirs))
    if not other:
        # As EXACT reads them: a middle name or suffix asked must agree with the record's, if it has one.
        row = NameRow(0, alias_no, key.surname, key.given, key.middle, key.suffix, "", "", "")
        if not name_agrees(NameKey(asked.surname, asked.given, asked.middle, ""), row, lenient=True):
            other.append("another middle name")
        if not name_agrees(NameKey(asked.surname, asked.given, "", asked.suffix), row, lenient=True):
            other.append("another suffix")
    return _Compared(alias_no, tuple(same), tuple(other))


def _which(alias_no: int) -> str:
    return "the primary name" if alias_no == 0 else f"alias {alias_no}"


def _names(count: int) -> str:
    if count <= 1:
        return "its one name" if count else "it names no one"
    return f"the primary name and {count - 1} alias" + ("es" if count > 2 else "")


def name_out(asked: PersonName, names: Sequence[PersonName], explanation: search_pb2.MatchExplanation) -> None:
    """The feature `name` of one record of the answer (and `matched_name` when one of its names is the name
    asked): the first name that agrees wholly, else the first that agrees in the most parts, else none."""
    key = name_key(asked)
    compared = [_compare(key, alias_no, name) for alias_no, name in enumerate(names)]
    best = max(compared, key=lambda c: (c.whole, len(c.same), -c.alias_no), default=None)
    if best is not None and best.whole:
        explanation.matched_name = "primary" if best.alias_no == 0 else f"alias {best.alias_no}"
        explanation.features.add(
            feature="name", agreement=search_pb2.AGREEMENT_EXACT, similarity=1.0, detail="normalized name equal"
        )
    elif best is not None and best.same:
        detail = f"the name asked agrees in part with {_which(best.alias_no)}: the same {' and '.join(best.same)}"
        explanation.features.add(
            feature="name",
            agreement=search_pb2.AGREEMENT_PARTIAL,
            similarity=round(len(best.same) / (len(best.same) + len(best.other)), 3),
            detail=f"{detail}, {', '.join(best.other)}",
        )
    else:
        detail = f"the name asked agrees with none of the record's names ({_names(len(names))})"
        explanation.features.add(feature="name", agreement=search_pb2.AGREEMENT_DISAGREE, similarity=0.0, detail=detail)
