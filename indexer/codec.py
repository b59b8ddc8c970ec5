"""Tracings to and from compact JSON, the form in which stores keep them.

Written by hand rather than with dataclasses.asdict: it runs for every stored and every returned
tracing, and asdict's deep copies cost several times more. Empty fields are left out to keep the
store small (10 million tracings must fit in 3 KB each, with room to spare).
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any, TypeVar

from indexer.model import (
    ClearanceDetails,
    ClearanceLevel,
    Details,
    FileDetails,
    Identifiers,
    ImpersonalTitleDetails,
    ImpersonalTitleKind,
    NacHistoryDetails,
    NacOutcome,
    NacPendingDetails,
    OpenCaseDetails,
    PartialDate,
    PersonName,
    PlaceOfBirth,
    Subject,
    SubjectCategory,
    SubjectRole,
    Tracing,
    TracingKey,
    TracingType,
)

_Json = dict[str, Any]
_E = TypeVar("_E", bound=StrEnum)


def _date(value: PartialDate | None) -> str | None:
    return None if value is None else value.iso()


def _parse_date(value: str | None) -> PartialDate | None:
    return None if value is None else PartialDate.parse(value)


def _drop_empty(data: _Json) -> _Json:
    return {k: v for k, v in data.items() if v not in (None, "", (), [], 0)}


def _name(name: PersonName) -> _Json:
    return _drop_empty({"s": name.surname, "g": name.given_name, "m": name.middle_name, "x": name.suffix})


def _parse_name(data: _Json) -> PersonName:
    return PersonName(data.get("s", ""), data.get("g", ""), data.get("m", ""), data.get("x", ""))


def _subject(subject: Subject) -> _Json:
    ids = subject.identifiers
    pob = ids.place_of_birth
    return _drop_empty(
        {
            "n": _name(subject.name),
            "a": [_name(a) for a in subject.aliases],
            "r": subject.role.value,
            "ssn": ids.ssn,
            "dob": _date(ids.date_of_birth),
            "pob": None if pob is None else [pob.us_state, pob.country, pob.city],
        }
    )


def _parse_subject(data: _Json) -> Subject:
    pob = data.get("pob")
    return Subject(
        name=_parse_name(data["n"]),
        aliases=tuple(_parse_name(a) for a in data.get("a", ())),
        role=SubjectRole(data["r"]),
        identifiers=Identifiers(
            ssn=data.get("ssn", ""),
            date_of_birth=_parse_date(data.get("dob")),
            place_of_birth=None if pob is None else PlaceOfBirth(*pob),
        ),
    )


def _details(details: Details) -> _Json:
    match details:
        case FileDetails():
            return {"custodian": details.custodian, "year": details.year_indexed, "no": details.file_number}
        case OpenCaseDetails():
            return {"location": details.location, "year": details.year_indexed, "no": details.investigative_number}
        case NacPendingDetails():
            return {"no": details.case_number, "req": details.requester_category, "nac": details.nac_type}
        case NacHistoryDetails():
            return _drop_empty(
                {
                    "done": _date(details.completed_on),
                    "checked": list(details.agencies_checked),
                    "outcome": details.outcome and details.outcome.value,
                    "nac": details.nac_type,
                }
            )
        case ClearanceDetails():
            return _drop_empty(
                {
                    "granted": _date(details.granted_on),
                    "elig": details.eligibility_level and details.eligibility_level.value,
                    "access": details.access_level and details.access_level.value,
                    "access_on": _date(details.access_granted_on),
                    "basis": details.basis_investigation_type,
                    "basis_on": _date(details.basis_investigation_date),
                    "cat": details.subject_category and details.subject_category.value,
                    "sep": _date(details.separation_date),
                    "files": list(details.files_used),
                }
            )
        case ImpersonalTitleDetails():
            return {
                "title": details.title,
                "kind": details.kind and details.kind.value,
                "custodian": details.custodian,
                "no": details.file_number,
                "year": details.year_indexed,
            }


def _opt_enum(enum: type[_E], value: str | None) -> _E | None:
    return None if value is None else enum(value)


def _parse_details(kind: TracingType, d: _Json) -> Details:
    match kind:
        case TracingType.FILE:
            return FileDetails(d["custodian"], d["year"], d["no"])
        case TracingType.OPEN_CASE:
            return OpenCaseDetails(d["location"], d["year"], d["no"])
        case TracingType.NAC_PENDING:
            return NacPendingDetails(d["no"], d["req"], d["nac"])
        case TracingType.NAC_HISTORY:
            return NacHistoryDetails(
                completed_on=_parse_date(d.get("done")),
                agencies_checked=tuple(d.get("checked", ())),
                outcome=_opt_enum(NacOutcome, d.get("outcome")),
                nac_type=d.get("nac", ""),
            )
        case TracingType.CLEARANCE:
            return ClearanceDetails(
                granted_on=_parse_date(d.get("granted")),
                eligibility_level=_opt_enum(ClearanceLevel, d.get("elig")),
                access_level=_opt_enum(ClearanceLevel, d.get("access")),
                access_granted_on=_parse_date(d.get("access_on")),
                basis_investigation_type=d.get("basis", ""),
                basis_investigation_date=_parse_date(d.get("basis_on")),
                subject_category=_opt_enum(SubjectCategory, d.get("cat")),
                separation_date=_parse_date(d.get("sep")),
                files_used=tuple(d.get("files", ())),
            )
        case TracingType.IMPERSONAL_TITLE:
            return ImpersonalTitleDetails(
                d["title"], _opt_enum(ImpersonalTitleKind, d.get("kind")), d["custodian"], d["no"], d["year"]
            )


def tracing_to_json(tracing: Tracing) -> str:
    """Encode a checked tracing (it must have a type)."""
    kind = tracing.type
    if kind is None or tracing.details is None:
        raise ValueError("a stored tracing must have a type")
    data: _Json = {
        "k": [tracing.key.agency, tracing.key.record_number],
        "v": tracing.source_version,
        "t": kind.value,
        "d": _details(tracing.details),
    }
    if tracing.subject is not None:
        data["p"] = _subject(tracing.subject)
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def tracing_from_json(text: str | bytes) -> Tracing:
    data = json.loads(text)
    kind = TracingType(data["t"])
    subject = data.get("p")
    return Tracing(
        key=TracingKey(*data["k"]),
        source_version=data["v"],
        subject=None if subject is None else _parse_subject(subject),
        details=_parse_details(kind, data["d"]),
    )
