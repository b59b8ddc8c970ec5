"""Field-level edit criteria: the building blocks of `indexer.edit_criteria` (DOMAIN.md "Edit criteria").

Every helper takes the raw value, the field's wire path and the list that collects violations; it
appends at most one violation per field (the reasons joined) and returns the cleaned value. A value
that failed is returned as best cleaned but is never stored: any violation refuses the whole request.

Descriptions say why in plain words and never repeat the value that was sent: they reach logs and
client screens, and the value may be a name, an SSN or a date of birth.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Collection
from enum import StrEnum
from typing import TypeVar

from stdnum.exceptions import ValidationError
from stdnum.us import ssn as stdnum_ssn

from indexer.model import Identifiers, PartialDate, PersonName, PlaceOfBirth, Violation
from indexer.normalize import SUFFIXES, canonical_suffix

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
_NAME_PUNCTUATION = frozenset(" -'\u2019.")
# Combining marks are part of letters in many scripts (Devanagari virama, Arabic harakat, a
# decomposed diaeresis that NFC could not compose), so they pass with the letters.
_MARK_CATEGORIES = frozenset({"Mn", "Mc", "Me"})


def _codes(text: str) -> frozenset[str]:
    return frozenset(text.split())


# USPS codes of the states, DC and the inhabited territories: where a US birth can happen.
US_BIRTH_PLACES: frozenset[str] = _codes(
    "AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY NC ND "
    "OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC PR GU VI AS MP"
)
# APO/FPO "states": mailing addresses of deployed units, never a place of birth.
_MILITARY_MAIL = frozenset({"AA", "AE", "AP"})
# ISO 3166-1 alpha-2, all 249 assigned codes (pycountry is not a dependency).
COUNTRIES: frozenset[str] = _codes(
    "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV "
    "BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES "
    "ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU ID IE "
    "IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY "
    "MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU "
    "NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM "
    "SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE "
    "VG VI VN VU WF WS YE YT ZA ZM ZW"
)
# A birth in the US or in a territory with a USPS code goes in us_state, so that the same birthplace
# always compares the same (PlaceOfBirth.code()).
# (Not the intersection of the two lists: DE, CA, GA, IN ... are states and unrelated countries.)
_US_AS_COUNTRY = frozenset({"US", "PR", "GU", "VI", "AS", "MP"})

E = TypeVar("E", bound=StrEnum)


def collapse(text: str) -> str:
    """Strip, collapse inner whitespace to single spaces, and compose to NFC (so that a decomposed
    "e" + diaeresis is stored, and checked, as one letter)."""
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    return " ".join(text.split())


def has_control(text: str) -> bool:
    """Control, format, private-use or unassigned characters (tab, LF and CR excepted)."""
    if text.isascii():
        return _ASCII_CONTROL_RE.search(text) is not None
    return any(c not in _COLLAPSIBLE and unicodedata.category(c) in _CONTROL_CATEGORIES for c in text)


def _emit(out: list[Violation], path: str, reasons: list[str]) -> None:
    if reasons:
        out.append(Violation(path, "; ".join(reasons)))


def name_part(raw: str, path: str, out: list[Violation], *, label: str, required: bool, max_len: int = NAME_MAX) -> str:
    """A surname, given name, middle name or city: letters of any script, spaces, hyphens,
    apostrophes and periods, with at least one letter."""
    value = collapse(raw)
    if not value:
        if required:
            out.append(Violation(path, f"{label} is required"))
        return value
    reasons: list[str] = []
    if len(value) > max_len:
        reasons.append(f"{label} is longer than {max_len} characters")
    control = has_control(raw)
    if control:
        reasons.append(f"{label} must not contain control characters")
    if value.isascii() and _ASCII_NAME_RE.fullmatch(value):
        letter, digit, other = any(c.isalpha() for c in value), False, False
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
    _emit(out, path, reasons)
    return value


def suffix(raw: str, path: str, out: list[Violation]) -> str:
    """A generational suffix, stored in its canonical form (JR, SR, II ... VI)."""
    if has_control(raw):
        out.append(Violation(path, "suffix must not contain control characters"))
        return ""
    value = collapse(raw)
    canonical = canonical_suffix(value)
    # canonical_suffix reads any punctuation as a break ("J@R" -> JR); only periods are a spelling.
    if canonical and (canonical not in SUFFIXES or not all(c.isalnum() or c in " ." for c in value)):
        out.append(Violation(path, "suffix must be one of JR, SR, II, III, IV, V, VI (or a spelling of one)"))
    return canonical


def clean_name(
    name: PersonName, prefix: str, *, surname_required: bool = True, given_required: bool = False
) -> tuple[PersonName, list[Violation]]:
    """The non-raising name check: the cleaned name and its violations (paths under `prefix`)."""
    out: list[Violation] = []
    cleaned = PersonName(
        surname=name_part(name.surname, f"{prefix}.surname", out, label="surname", required=surname_required),
        given_name=name_part(name.given_name, f"{prefix}.given_name", out, label="given name", required=given_required),
        middle_name=name_part(name.middle_name, f"{prefix}.middle_name", out, label="middle name", required=False),
        suffix=suffix(name.suffix, f"{prefix}.suffix", out),
    )
    return cleaned, out


def ssn(raw: str, path: str, out: list[Violation]) -> str:
    """An SSN compacted to its 9 digits, or "" when none was sent."""
    # stdnum's compact folds Unicode dashes to "-" and drops them, and full-width digits to ASCII;
    # spaces of any kind go first.
    digits = stdnum_ssn.compact("".join(raw.split()))
    if not digits:
        if raw.strip():  # only dashes were sent
            out.append(Violation(path, "SSN must be 9 digits"))
        return ""
    if len(digits) != 9 or not digits.isascii() or not digits.isdigit():
        out.append(Violation(path, "SSN must be 9 digits (dashes and spaces are allowed between them)"))
        return ""
    try:
        stdnum_ssn.validate(digits)
    except ValidationError:
        # stdnum says only "invalid component"; name the rule that was broken, never the number.
        area, group, serial = digits[:3], digits[3:5], digits[5:]
        reasons: list[str] = []
        if area in ("000", "666"):
            reasons.append(f"SSN area {area} is never issued")
        elif area.startswith("9"):
            reasons.append("SSN areas 900-999 are never issued")
        if group == "00":
            reasons.append("SSN group 00 is never issued")
        if serial == "0000":
            reasons.append("SSN serial 0000 is never issued")
        if not reasons:
            reasons.append("this SSN is a known advertising or void number, never a person's")
        _emit(out, path, reasons)
        return ""
    return digits


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
    if value is None:
        if required:
            out.append(Violation(path, f"{label} is required"))
        return None
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
        out.append(Violation(path, reason))
        return None
    return PartialDate(year, month, day)


def place_of_birth(value: PlaceOfBirth, prefix: str, out: list[Violation]) -> PlaceOfBirth:
    state = collapse(value.us_state).upper()
    country = collapse(value.country).upper()
    if state and country:
        out.append(Violation(prefix, "set either us_state or country, not both"))
    elif not state and not country:
        out.append(Violation(prefix, "set us_state (a US birth) or country (a foreign birth)"))
    if state in _MILITARY_MAIL:
        out.append(Violation(f"{prefix}.us_state", "an APO/FPO military mail code is not a place of birth"))
    elif state and state not in US_BIRTH_PLACES:
        out.append(Violation(f"{prefix}.us_state", "us_state must be a USPS state or territory code"))
    if country in _US_AS_COUNTRY:
        out.append(Violation(f"{prefix}.country", "a birth in the US or a US territory goes in us_state"))
    elif country and country not in COUNTRIES:
        out.append(Violation(f"{prefix}.country", "country must be an ISO 3166-1 alpha-2 code"))
    city = name_part(value.city, f"{prefix}.city", out, label="city", required=False, max_len=CITY_MAX)
    return PlaceOfBirth(us_state=state, country=country, city=city)


def clean_identifiers(ids: Identifiers, prefix: str, *, today: dt.date) -> tuple[Identifiers, list[Violation]]:
    """The non-raising identifiers check: the cleaned identifiers and their violations."""
    out: list[Violation] = []
    cleaned = Identifiers(
        ssn=ssn(ids.ssn, f"{prefix}.ssn", out),
        date_of_birth=date(
            ids.date_of_birth,
            f"{prefix}.date_of_birth",
            out,
            today=today,
            label="date of birth",
            required=False,
            min_year=EARLIEST_BIRTH_YEAR,
            partial=True,
        ),
        place_of_birth=None
        if ids.place_of_birth is None
        else place_of_birth(ids.place_of_birth, f"{prefix}.place_of_birth", out),
    )
    return cleaned, out


def code(
    raw: str, path: str, out: list[Violation], *, allowed: Collection[str], label: str, required: bool = True
) -> str:
    """An uppercase code from a closed list (agency, NAC type, requester category)."""
    value = collapse(raw).upper()
    if not value:
        if required:
            out.append(Violation(path, f"{label} is required"))
    elif value not in allowed:
        out.append(Violation(path, f"{label} is not a known code"))
    return value


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
