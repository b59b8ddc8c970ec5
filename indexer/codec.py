"""Tracings to and from compact JSON, the form in which stores keep them.

Written by hand rather than with dataclasses.asdict: it runs for every stored and every returned
tracing, and asdict's deep copies cost several times more. Empty fields are left out to keep the
store small (10 million tracings must fit in 3 KB each, with room to spare).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import StrEnum
from json.encoder import encode_basestring as _q
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
    try:
        return _written(tracing, kind, tracing.details)
    except Exception:  # noqa: S110 - anything unusual is left to the reference encoding below
        pass
    return _encoded(tracing, kind, tracing.details)


def _encoded(tracing: Tracing, kind: TracingType, details: Details) -> str:
    """The reference encoding: the document as dicts and lists, through json."""
    data: _Json = {
        "k": [tracing.key.agency, tracing.key.record_number],
        "v": tracing.source_version,
        "t": kind.value,
        "d": _details(details),
    }
    if tracing.subject is not None:
        data["p"] = _subject(tracing.subject)
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


# ---- the same document written directly ----
# Building the dicts and walking them in json cost twice the rest of the encoding, for every tracing
# stored. A checked tracing holds only str, int, None and tuples of str, so the text is written here: the
# keys in `_encoded`'s order, its separators, empty fields left out as _drop_empty does (for these types,
# exactly the falsy ones), each string through the function json itself uses (`encode_basestring`, the C
# one, since ensure_ascii is off). The stored bytes must not change; the sameness check of issue 7
# compared the two over 60,000 tracings. Anything else (a bool or an int subclass where an int belongs, a
# subclassed detail type, a value that is not a str) raises here, and `tracing_to_json` falls back to
# `_encoded`.


class _Unusual(Exception):
    pass


def _int(value: object) -> int:
    if type(value) is not int:  # json writes a bool as true/false and an int subclass by int.__repr__
        raise _Unusual
    return value


def _written(tracing: Tracing, kind: TracingType, details: Details) -> str:
    key = tracing.key
    head = (
        f'{{"k":[{_q(key.agency)},{_q(key.record_number)}],"v":{_int(tracing.source_version)},'
        f'"t":{_q(kind.value)},"d":{_WRITE_DETAILS[type(details)](details)}'
    )
    subject = tracing.subject
    return head + "}" if subject is None else f'{head},"p":{_written_subject(subject)}}}'


def _written_name(name: PersonName) -> str:
    parts: list[str] = []
    if name.surname:
        parts.append(f'"s":{_q(name.surname)}')
    if name.given_name:
        parts.append(f'"g":{_q(name.given_name)}')
    if name.middle_name:
        parts.append(f'"m":{_q(name.middle_name)}')
    if name.suffix:
        parts.append(f'"x":{_q(name.suffix)}')
    return "{" + ",".join(parts) + "}"


def _written_subject(subject: Subject) -> str:
    parts = [f'{{"n":{_written_name(subject.name)}']
    if subject.aliases:
        parts.append(f',"a":[{",".join([_written_name(a) for a in subject.aliases])}]')
    if subject.role.value:
        parts.append(f',"r":{_q(subject.role.value)}')
    ids = subject.identifiers
    if ids.ssn:
        parts.append(f',"ssn":{_q(ids.ssn)}')
    if ids.date_of_birth is not None:
        parts.append(f',"dob":{_q(ids.date_of_birth.iso())}')
    pob = ids.place_of_birth
    if pob is not None:
        parts.append(f',"pob":[{_q(pob.us_state)},{_q(pob.country)},{_q(pob.city)}]')
    parts.append("}")
    return "".join(parts)


def _written_file(d: FileDetails) -> str:
    return f'{{"custodian":{_q(d.custodian)},"year":{_int(d.year_indexed)},"no":{_q(d.file_number)}}}'


def _written_open_case(d: OpenCaseDetails) -> str:
    return f'{{"location":{_q(d.location)},"year":{_int(d.year_indexed)},"no":{_q(d.investigative_number)}}}'


def _written_nac_pending(d: NacPendingDetails) -> str:
    return f'{{"no":{_q(d.case_number)},"req":{_q(d.requester_category)},"nac":{_q(d.nac_type)}}}'


def _written_nac_history(d: NacHistoryDetails) -> str:
    parts: list[str] = []
    if d.completed_on is not None:
        parts.append(f'"done":{_q(d.completed_on.iso())}')
    if d.agencies_checked:
        parts.append(f'"checked":[{",".join(map(_q, d.agencies_checked))}]')
    outcome = d.outcome and d.outcome.value
    if outcome:
        parts.append(f'"outcome":{_q(outcome)}')
    if d.nac_type:
        parts.append(f'"nac":{_q(d.nac_type)}')
    return "{" + ",".join(parts) + "}"


def _written_clearance(d: ClearanceDetails) -> str:
    parts: list[str] = []
    if d.granted_on is not None:
        parts.append(f'"granted":{_q(d.granted_on.iso())}')
    elig = d.eligibility_level and d.eligibility_level.value
    if elig:
        parts.append(f'"elig":{_q(elig)}')
    access = d.access_level and d.access_level.value
    if access:
        parts.append(f'"access":{_q(access)}')
    if d.access_granted_on is not None:
        parts.append(f'"access_on":{_q(d.access_granted_on.iso())}')
    if d.basis_investigation_type:
        parts.append(f'"basis":{_q(d.basis_investigation_type)}')
    if d.basis_investigation_date is not None:
        parts.append(f'"basis_on":{_q(d.basis_investigation_date.iso())}')
    category = d.subject_category and d.subject_category.value
    if category:
        parts.append(f'"cat":{_q(category)}')
    if d.separation_date is not None:
        parts.append(f'"sep":{_q(d.separation_date.iso())}')
    if d.files_used:
        parts.append(f'"files":[{",".join(map(_q, d.files_used))}]')
    return "{" + ",".join(parts) + "}"


def _written_impersonal_title(d: ImpersonalTitleDetails) -> str:
    kind = d.kind and d.kind.value
    return (
        f'{{"title":{_q(d.title)},"kind":{"null" if kind is None else _q(kind)},"custodian":{_q(d.custodian)},'
        f'"no":{_q(d.file_number)},"year":{_int(d.year_indexed)}}}'
    )


_WRITE_DETAILS: dict[type, Callable[[Any], str]] = {
    FileDetails: _written_file,
    OpenCaseDetails: _written_open_case,
    NacPendingDetails: _written_nac_pending,
    NacHistoryDetails: _written_nac_history,
    ClearanceDetails: _written_clearance,
    ImpersonalTitleDetails: _written_impersonal_title,
}


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
