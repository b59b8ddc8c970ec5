"""Field-level edit criteria: the building blocks of `indexer.edit_criteria` (DOMAIN.md "Edit criteria").
The SSN rule, which follows python-stdnum, is its own module: `indexer.edit_ssn`.

Every helper takes the raw value, the field's wire path and the list that collects violations; it
appends at most one violation per field (the reasons joined) and returns the cleaned value. A value
that failed is returned as best cleaned but is never stored: any violation refuses the whole request.

Descriptions say why in plain words and never repeat the value that was sent: they reach logs and
client screens, and the value may be a name, an SSN or a date of birth.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import unicodedata
from collections.abc import Collection
from enum import StrEnum
from typing import TypeVar

from indexer.edit_ssn import judge_ssn
from indexer.model import Identifiers, PartialDate, PersonName, PlaceOfBirth, Violation
from indexer.normalize import SUFFIXES, canonical_suffix, exact_key
from indexer.place_codes import COUNTRIES, MILITARY_MAIL, US_AS_COUNTRY, US_BIRTH_PLACES

NAME_MAX = 60
CITY_MAX = 60
RECORD_ID_MAX = 40
# No tracing, file or investigation predates this; a year before it is a keying error.
EARLIEST_RECORD_YEAR = 1900
EARLIEST_BIRTH_YEAR = 1880

# Record numbers, file numbers, case numbers: what repositories use, and nothing that could break a
# path, a log line or a CSV export.
_RECORD_ID_RE = re.compile(r"[A-Za-z0-9_/.:-]+")
# Fast path for the common all-ASCII name; anything else goes through the per-character check.
_ASCII_NAME_RE = re.compile(r"[A-Za-z .'-]*")
# ASCII control characters other than tab, LF and CR (those are whitespace and get collapsed). The
# separators 0x1C-0x1F count as whitespace for str.split, so they are looked for in the raw value.
_ASCII_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CONTROL_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Cn"})
_COLLAPSIBLE = frozenset("\t\n\r")
# Beside ASCII's: the typographic apostrophes (U+2019, and U+2018 as the Hawaiian okina is often typed),
# the Hebrew geresh, Unicode's hyphens and the en dash (Smith\u2010Jones), the Catalan middle dot (Col\u00b7lell)
# and the Katakana one between a foreign name's parts. Each folds as its ASCII kin (indexer.normalize).
_NAME_PUNCTUATION = frozenset(" -'.\u2019\u2018\u05f3\u2010\u2011\u2013\u00b7\u30fb")
# Joiners shape letters in Persian, Urdu and Indic spellings (a ZWNJ inside a Persian compound surname):
# part of a name, not a hidden control character.
NAME_JOINERS = frozenset("\u200c\u200d")
# Combining marks are part of letters in many scripts (Devanagari virama, Arabic harakat, a
# decomposed diaeresis that NFC could not compose), so they pass with the letters.
_MARK_CATEGORIES = frozenset({"Mn", "Mc", "Me"})
# The judgement of a name part, a suffix or a place of birth depends on the raw strings alone (and the
# field's label and limits), and names repeat across tracings (census frequencies), so it is cached. Only
# short values: a cache is bounded by entries, and an entry must stay small (a hostile 100 KB name is
# judged anew). Full, the three take about 25 MB.
_CACHED_LEN = 64


E = TypeVar("E", bound=StrEnum)


def collapse(text: str) -> str:
    """Strip, collapse inner whitespace to single spaces, and compose to NFC (so that a decomposed
    "e" + diaeresis is stored, and checked, as one letter)."""
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    return " ".join(text.split())


def has_control(text: str, allowed: frozenset[str] = frozenset()) -> bool:
    """Control, format, private-use or unassigned characters (tab, LF and CR excepted, and `allowed`)."""
    if text.isascii():
        # isprintable is one C pass; only a string that fails it can hold a control character.
        return not text.isprintable() and _ASCII_CONTROL_RE.search(text) is not None
    return any(
        c not in _COLLAPSIBLE and c not in allowed and unicodedata.category(c) in _CONTROL_CATEGORIES for c in text
    )


def _emit(out: list[Violation], path: str, reasons: list[str]) -> None:
    if reasons:
        out.append(Violation(path, "; ".join(reasons)))


def name_part(raw: str, path: str, out: list[Violation], *, label: str, required: bool, max_len: int = NAME_MAX) -> str:
    """A surname, given name, middle name or city: letters of any script, spaces, hyphens,
    apostrophes and periods, with at least one letter."""
    return _part(raw, path, "", out, label, required, max_len)


def _judge_name_part(raw: str, label: str, required: bool, max_len: int) -> tuple[str, str]:
    """`name_part` without the path: the cleaned value and the violation's description ("" if none)."""
    value = collapse(raw)
    if not value:
        return value, f"{label} is required" if required else ""
    reasons: list[str] = []
    if len(value) > max_len:
        reasons.append(f"{label} is longer than {max_len} characters")
    control = has_control(raw, NAME_JOINERS)
    if control:
        reasons.append(f"{label} must not contain control characters")
    if value.isascii() and _ASCII_NAME_RE.fullmatch(value):
        # Every character is a letter or one of " .'-": a letter is there unless stripping those empties it.
        letter, digit, other = bool(value.strip(" .'-")), False, False
    else:
        letter = digit = other = False
        for char in value:
            if char.isalpha():
                letter = True
            elif char in _NAME_PUNCTUATION:
                continue
            else:
                category = unicodedata.category(char)
                if category in _MARK_CATEGORIES or category in _CONTROL_CATEGORIES:
                    continue  # marks pass; control characters were reported above
                if category[0] == "N":
                    digit = True
                else:
                    other = True
    if digit:
        reasons.append(f"{label} must not contain digits")
    if other:
        reasons.append(f"{label} may contain only letters, spaces, hyphens, apostrophes and periods")
    if not letter:
        reasons.append(f"{label} must contain at least one letter")
    elif not value.isascii() and not exact_key(value):  # e.g. a lone okina: a letter that folds to nothing
        reasons.append(f"{label} must contain a letter that the index can spell in Latin letters")
    return value, "; ".join(reasons)


_cached_name_part = functools.lru_cache(maxsize=65_536)(_judge_name_part)


def suffix(raw: str, path: str, out: list[Violation]) -> str:
    """A generational suffix, stored in its canonical form (JR, SR, II ... VI)."""
    if raw == "":  # the common case: no suffix
        return ""
    if len(raw) <= _CACHED_LEN:
        canonical, reason = _cached_suffix(raw)
    else:
        canonical, reason = _judge_suffix(raw)
    if reason:
        out.append(Violation(path, reason))
    return canonical


def _judge_suffix(raw: str) -> tuple[str, str]:
    if has_control(raw):
        return "", "suffix must not contain control characters"
    value = collapse(raw)
    canonical = canonical_suffix(value)
    # canonical_suffix reads any punctuation as a break ("J@R" -> JR); only periods are a spelling.
    if canonical and (canonical not in SUFFIXES or not all(c.isalnum() or c in " ." for c in value)):
        return canonical, "suffix must be one of JR, SR, II, III, IV, V, VI (or a spelling of one)"
    return canonical, ""


_cached_suffix = functools.lru_cache(maxsize=1_024)(_judge_suffix)


def clean_name(
    name: PersonName, prefix: str, *, surname_required: bool = True, given_required: bool = False
) -> tuple[PersonName, list[Violation]]:
    """The non-raising name check: the cleaned name and its violations (paths under `prefix`)."""
    out: list[Violation] = []
    surname = _part(name.surname, prefix, ".surname", out, "surname", surname_required)
    given = _part(name.given_name, prefix, ".given_name", out, "given name", given_required)
    middle = _part(name.middle_name, prefix, ".middle_name", out, "middle name", False)
    canonical = "" if name.suffix == "" else suffix(name.suffix, f"{prefix}.suffix", out)
    if (
        surname == name.surname
        and given == name.given_name
        and middle == name.middle_name
        and canonical == name.suffix
        and type(name) is PersonName
    ):
        return name, out  # already clean (the common case): an equal copy would only cost time
    return PersonName(surname=surname, given_name=given, middle_name=middle, suffix=canonical), out


def _part(
    raw: str, prefix: str, field: str, out: list[Violation], label: str, required: bool, max_len: int = NAME_MAX
) -> str:
    """`name_part` of a name's part, its path built only when it is needed."""
    if len(raw) <= _CACHED_LEN:
        value, reason = _cached_name_part(raw, label, required, max_len)
    else:
        value, reason = _judge_name_part(raw, label, required, max_len)
    if reason:
        out.append(Violation(prefix + field, reason))
    return value


def date(
    value: PartialDate | None,
    path: str,
    out: list[Violation],
    *,
    today: dt.date,
    label: str,
    required: bool,
    min_year: int = EARLIEST_RECORD_YEAR,
    partial: bool = False,
) -> PartialDate | None:
    """A real date, not in the future, not before `min_year`; with `partial`, year or year and month
    alone are accepted (a partial date is in the future when its first day is). None if invalid."""
    checked, reason = _judge_date(value, today, label, required, min_year, partial)
    if reason:
        out.append(Violation(path, reason))
    return checked


def _judge_date(
    value: PartialDate | None, today: dt.date, label: str, required: bool, min_year: int, partial: bool
) -> tuple[PartialDate | None, str]:
    """`date` without the path: the date (None if absent or refused) and the violation's description."""
    if value is None:
        return None, f"{label} is required" if required else ""
    year, month, day = value.year, value.month, value.day
    reason = ""
    if not partial and (month == 0 or day == 0):
        reason = f"{label} must be a full date (year, month and day)"
    elif not 0 <= month <= 12:
        reason = f"{label} month must be between 1 and 12"
    elif month == 0 and day != 0:
        reason = f"{label} has a day but no month"
    elif year < min_year:
        reason = f"{label} must not be before {min_year}"
    elif year > today.year:
        reason = f"{label} must not be in the future"
    else:
        try:
            first_day = dt.date(year, month or 1, day or 1)
        except ValueError:
            reason = f"{label} is not a real date"
        else:
            if first_day > today:
                reason = f"{label} must not be in the future"
    if reason:
        return None, reason
    if type(value) is PartialDate:
        return value, ""  # the same date: no copy needed
    return PartialDate(year, month, day), ""


def place_of_birth(value: PlaceOfBirth, prefix: str, out: list[Violation]) -> PlaceOfBirth:
    raw_state, raw_country, raw_city = value.us_state, value.country, value.city
    if len(raw_state) + len(raw_country) + len(raw_city) <= _CACHED_LEN:
        state, country, city, problems = _cached_place(raw_state, raw_country, raw_city)
    else:
        state, country, city, problems = _judge_place(raw_state, raw_country, raw_city)
    for field, reason in problems:
        out.append(Violation(prefix + field, reason))
    if state == raw_state and country == raw_country and city == raw_city and type(value) is PlaceOfBirth:
        return value  # already clean: an equal copy would only cost time
    return PlaceOfBirth(us_state=state, country=country, city=city)


def _judge_place(raw_state: str, raw_country: str, raw_city: str) -> tuple[str, str, str, tuple[tuple[str, str], ...]]:
    """`place_of_birth` without the path: the cleaned parts and (field below the path, reason) pairs."""
    problems: list[tuple[str, str]] = []
    state = collapse(raw_state).upper()
    country = collapse(raw_country).upper()
    if state and country:
        problems.append(("", "set either us_state or country, not both"))
    elif not state and not country:
        problems.append(("", "set us_state (a US birth) or country (a foreign birth)"))
    if state in MILITARY_MAIL:
        problems.append((".us_state", "an APO/FPO military mail code is not a place of birth"))
    elif state and state not in US_BIRTH_PLACES:
        problems.append((".us_state", "us_state must be a USPS state or territory code"))
    if country in US_AS_COUNTRY:
        problems.append((".country", "a birth in the US or a US territory goes in us_state"))
    elif country and country not in COUNTRIES:
        problems.append((".country", "country must be an ISO 3166-1 alpha-2 code"))
    city, reason = _judge_name_part(raw_city, "city", False, CITY_MAX)
    if reason:
        problems.append((".city", reason))
    return state, country, city, tuple(problems)


_cached_place = functools.lru_cache(maxsize=16_384)(_judge_place)


def clean_identifiers(ids: Identifiers, prefix: str, *, today: dt.date) -> tuple[Identifiers, list[Violation]]:
    """The non-raising identifiers check: the cleaned identifiers and their violations."""
    out: list[Violation] = []
    # Paths are built only for a violation: this runs for every tracing, and nearly all are clean.
    digits, reason = judge_ssn(ids.ssn)
    if reason:
        out.append(Violation(f"{prefix}.ssn", reason))
    dob, reason = _judge_date(ids.date_of_birth, today, "date of birth", False, EARLIEST_BIRTH_YEAR, True)
    if reason:
        out.append(Violation(f"{prefix}.date_of_birth", reason))
    pob = ids.place_of_birth
    cleaned_pob = None if pob is None else place_of_birth(pob, f"{prefix}.place_of_birth", out)
    if digits == ids.ssn and dob is ids.date_of_birth and cleaned_pob is pob and type(ids) is Identifiers:
        return ids, out  # already clean: an equal copy would only cost time
    return Identifiers(ssn=digits, date_of_birth=dob, place_of_birth=cleaned_pob), out


def code(
    raw: str, path: str, out: list[Violation], *, allowed: Collection[str], label: str, required: bool = True
) -> str:
    """An uppercase code from a closed list (agency, NAC type, requester category)."""
    value = _cached_code(raw) if len(raw) <= _CACHED_LEN else collapse(raw).upper()
    if not value:
        if required:
            out.append(Violation(path, f"{label} is required"))
    elif value not in allowed:
        out.append(Violation(path, f"{label} is not a known code"))
    return value


def _upper_code(raw: str) -> str:
    return collapse(raw).upper()


# Codes are a few dozen distinct values (agencies, NAC types), sent on every tracing.
_cached_code = functools.lru_cache(maxsize=4_096)(_upper_code)


def record_id(raw: str, path: str, out: list[Violation], *, label: str) -> str:
    """A record, file, case or investigative number: 1 to 40 of A-Z a-z 0-9 - _ / . :"""
    value = raw.strip()
    if not value:
        out.append(Violation(path, f"{label} is required"))
    elif len(value) > RECORD_ID_MAX:
        out.append(Violation(path, f"{label} is longer than {RECORD_ID_MAX} characters"))
    elif not _RECORD_ID_RE.fullmatch(value):
        out.append(Violation(path, f"{label} may contain only letters A-Z, digits and - _ / . :"))
    return value


def text(raw: str, path: str, out: list[Violation], *, label: str, max_len: int) -> str:
    """Free text (a location, an impersonal title): 1 to max_len printable characters."""
    value = collapse(raw)
    if not value:
        out.append(Violation(path, f"{label} is required"))
        return value
    reasons: list[str] = []
    if len(value) > max_len:
        reasons.append(f"{label} is longer than {max_len} characters")
    if has_control(raw) or not value.isprintable():
        reasons.append(f"{label} must contain only printable characters")
    _emit(out, path, reasons)
    return value


def year(value: int, path: str, out: list[Violation], *, today: dt.date, label: str = "year indexed") -> int:
    if not EARLIEST_RECORD_YEAR <= value <= today.year:
        out.append(Violation(path, f"{label} must be between {EARLIEST_RECORD_YEAR} and the current year"))
    return value


def member(
    value: object, enum_type: type[E], path: str, out: list[Violation], *, label: str, required: bool = True
) -> E | None:
    """An enum member; the plain string of a member's value is accepted (the model does not check)."""
    if value is None or value == "":
        if required:
            out.append(Violation(path, f"{label} is required"))
        return None
    if isinstance(value, enum_type):
        return value
    if not isinstance(value, str):
        out.append(Violation(path, f"{label} is not a known value"))
        return None
    try:
        return enum_type(value)
    except ValueError:
        out.append(Violation(path, f"{label} is not a known value"))
        return None
