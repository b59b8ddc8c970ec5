"""A hit of EXACT, NAME_ONLY or NONSTANDARD on the wire, and its explanation.

The explanation names every identifier the query gave, not only those that agreed: EXACT needs one to
agree, and a record whose SSN differs while its date of birth agrees was shown as a plain 1.0 "equal" on
the date, the conflicting SSN unmentioned (search review 3: seed 002 notes that often only the SSN tells
two people apart). A place of birth is compared as EXACT compares it, by state or country; when both give a
city and the cities differ, the agreement is partial and says so. Details name no value: the hit carries
the record's own, and the query's are the adjudicator's.
"""

from __future__ import annotations

from dcii.v1 import search_pb2
from indexer.model import Identifiers, PlaceOfBirth, Tracing
from indexer.normalize import fold
from search_service.convert import dispute_out, tracing_out, type_out
from search_service.exact import ExactHit

EXACT, PARTIAL = search_pb2.AGREEMENT_EXACT, search_pb2.AGREEMENT_PARTIAL
DISAGREE, MISSING = search_pb2.AGREEMENT_DISAGREE, search_pb2.AGREEMENT_MISSING
_DIFFERENT = {
    "ssn": "a different SSN",
    "date_of_birth": "a different date of birth",
    "place_of_birth": "born elsewhere",
}


def hit_out(hit: ExactHit, target: search_pb2.Hit, *, full_ssn: bool, asked: Identifiers | None = None) -> None:
    tracing = hit.stored.tracing
    tracing_out(tracing, target.tracing, full_ssn=full_ssn, indexed_at=hit.stored.indexed_at)
    target.type = type_out(tracing.type)
    target.score = 1.0
    explanation = target.explanation
    explanation.matched_name = "primary" if hit.alias_no == 0 else f"alias {hit.alias_no}"
    if tracing.subject is not None:
        explanation.features.add(feature="name", agreement=EXACT, similarity=1.0, detail="normalized name equal")
    for pid, agreement, detail in _pid_features(hit.agreed, asked, tracing):
        similarity = 1.0 if agreement in (EXACT, PARTIAL) else 0.0
        explanation.features.add(feature=pid, agreement=agreement, similarity=similarity, detail=detail)
    dispute_out(hit.stored.dispute, target)


def _pid_features(
    agreed: tuple[str, ...], asked: Identifiers | None, tracing: Tracing
) -> list[tuple[str, search_pb2.Agreement.ValueType, str]]:
    record = tracing.subject.identifiers if tracing.subject is not None else Identifiers()
    given = {
        "ssn": bool(asked and asked.ssn),
        "date_of_birth": bool(asked and asked.date_of_birth is not None),
        "place_of_birth": bool(asked and asked.place_of_birth is not None),
    }
    held = {
        "ssn": bool(record.ssn),
        "date_of_birth": record.date_of_birth is not None,
        "place_of_birth": record.place_of_birth is not None,
    }
    out: list[tuple[str, search_pb2.Agreement.ValueType, str]] = []
    for pid in ("ssn", "date_of_birth", "place_of_birth"):
        if pid in agreed:
            out.append(_agreeing(pid, asked, record))
        elif given[pid]:
            out.append((pid, DISAGREE, _DIFFERENT[pid]) if held[pid] else (pid, MISSING, "the record has none"))
    return out


def _agreeing(
    pid: str, asked: Identifiers | None, record: Identifiers
) -> tuple[str, search_pb2.Agreement.ValueType, str]:
    wanted, held = (asked.date_of_birth if asked else None), record.date_of_birth
    if pid == "date_of_birth" and wanted and held and wanted.iso() != held.iso():
        return pid, PARTIAL, "agrees as far as the less precise date goes (a year, or a year and month)"
    if pid == "place_of_birth" and asked is not None and _cities_differ(asked.place_of_birth, record.place_of_birth):
        return pid, PARTIAL, "the same state or country; the cities differ"
    return pid, EXACT, "equal"


def _cities_differ(asked: PlaceOfBirth | None, record: PlaceOfBirth | None) -> bool:
    if asked is None or record is None or not asked.city or not record.city:
        return False
    return fold(asked.city) != fold(record.city)
