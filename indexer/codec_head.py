"""A tracing's subject in a compact text form that is cheap to decode: what ranking reads of a candidate.

The ranked modes score hundreds to thousands of candidates per query on their subject alone (names and
identifiers, `search_service.matching_columns`), and only the page's few hits are returned. Decoding each
candidate's full JSON body (`indexer.codec.tracing_from_json`) cost about 50 µs, most of a query's time;
this form decodes with one `str.split` and a handful of constructors, the repeated dates and places of
birth taken from a cache.

The form: fields joined by US (0x1F):

    role, ssn, date of birth (PartialDate.iso() or ""), place of birth, then surname, given, middle,
    suffix of the primary name and of each alias in turn (four fields a name)

A place of birth is "" when absent, else its state, country and city joined by RS (0x1E), so that a
place with every part empty still reads back as a place. "" is a tracing without a subject (an
impersonal title). The edit criteria refuse control characters, but a record taken as another store held
it (migration) is not checked again: a subject holding US or RS in any field is written as GS (0x1D)
and a JSON list instead, decoded the slow way. Decoding gives back exactly the Subject encoded.
"""

from __future__ import annotations

import functools
import json

from indexer.model import Identifiers, PartialDate, PersonName, PlaceOfBirth, Subject, SubjectRole

_US, _RS, _GS = "\x1f", "\x1e", "\x1d"
_ROLES = {role.value: role for role in SubjectRole}
_NAME_FIELDS = 4
_FIRST_NAME = 4  # the fields before the primary name: role, ssn, dob, pob


def _pob_text(pob: PlaceOfBirth | None) -> str:
    return "" if pob is None else f"{pob.us_state}{_RS}{pob.country}{_RS}{pob.city}"


def _fields(subject: Subject) -> list[str]:
    ids = subject.identifiers
    dob = ids.date_of_birth
    fields = [subject.role.value, ids.ssn, "" if dob is None else dob.iso(), _pob_text(ids.place_of_birth)]
    for name in subject.all_names():
        fields += (name.surname, name.given_name, name.middle_name, name.suffix)
    return fields


def head_to_text(subject: Subject | None) -> str:
    """The compact form of `subject` ("" for none)."""
    if subject is None:
        return ""
    fields = _fields(subject)
    text = _US.join(fields)
    # Only a separator inside a value could make the plain form ambiguous (a field split in two, a
    # place's parts shifted): then there are more of them than the form puts in. Such a subject takes
    # the JSON form.
    places = 0 if subject.identifiers.place_of_birth is None else 2
    if text.count(_US) != len(fields) - 1 or text.count(_RS) != places:
        return _GS + json.dumps(_json_form(subject), ensure_ascii=False, separators=(",", ":"))
    return text


def _json_form(subject: Subject) -> list[object]:
    ids = subject.identifiers
    dob, pob = ids.date_of_birth, ids.place_of_birth
    return [
        subject.role.value,
        ids.ssn,
        None if dob is None else [dob.year, dob.month, dob.day],
        None if pob is None else [pob.us_state, pob.country, pob.city],
        [[n.surname, n.given_name, n.middle_name, n.suffix] for n in subject.all_names()],
    ]


# Dates and places of birth repeat a lot (a few tens of thousands of dates cover a century), and
# parsing one costs more than the rest of a head: keep the parsed values, bounded.
@functools.lru_cache(maxsize=65_536)
def _dob(text: str) -> PartialDate | None:
    return PartialDate.parse(text) if text else None


@functools.lru_cache(maxsize=16_384)
def _pob(text: str) -> PlaceOfBirth | None:
    if not text:
        return None
    state, country, city = text.split(_RS)
    return PlaceOfBirth(state, country, city)


def head_from_text(text: str) -> Subject | None:
    """The Subject that `head_to_text` encoded."""
    if not text:
        return None
    if text[0] == _GS:
        return _from_json(text[1:])
    f = text.split(_US)
    aliases: tuple[PersonName, ...] = ()
    if len(f) > _FIRST_NAME + _NAME_FIELDS:
        aliases = tuple(
            PersonName(f[i], f[i + 1], f[i + 2], f[i + 3]) for i in range(_FIRST_NAME + _NAME_FIELDS, len(f), 4)
        )
    return Subject(PersonName(f[4], f[5], f[6], f[7]), aliases, _ROLES[f[0]], Identifiers(f[1], _dob(f[2]), _pob(f[3])))


def head_fields(text: str) -> list[str] | None:
    """The plain form split before the names: [role, ssn, date of birth, place of birth, names], the names
    still joined (`names_from_text`); None for no subject or the JSON form (decode those with
    `head_from_text`). Ranking compiles thousands of candidates a query from these, most of them sharing
    a few names, without building a Subject for each."""
    if not text or text[0] == _GS:
        return None
    return text.split(_US, _FIRST_NAME)


def names_from_text(names: str) -> tuple[PersonName, ...]:
    """The primary name and the aliases of `head_fields`' last field."""
    f = names.split(_US)
    return tuple(PersonName(f[i], f[i + 1], f[i + 2], f[i + 3]) for i in range(0, len(f), _NAME_FIELDS))


def identifiers_from_fields(ssn: str, dob: str, pob: str) -> Identifiers:
    """The Identifiers of `head_fields`' second to fourth fields."""
    return Identifiers(ssn, _dob(dob), _pob(pob))


def head_ssn(text: str) -> str:
    """The SSN of the subject `head_to_text` encoded ("" for none), without decoding the rest."""
    if not text:
        return ""
    if text[0] == _GS:
        return str(json.loads(text[1:])[1])
    return text.split(_US, 2)[1]


def _from_json(text: str) -> Subject:
    role, ssn, dob, pob, names = json.loads(text)
    people = [PersonName(*name) for name in names]
    return Subject(
        people[0],
        tuple(people[1:]),
        SubjectRole(role),
        Identifiers(ssn, None if dob is None else PartialDate(*dob), None if pob is None else PlaceOfBirth(*pob)),
    )
