"""Fixed-width transaction files: a legacy layout (docs/CONNECTORS.md, "Fixed-width layout").

One transaction per line, fields at fixed character columns. A line is turned into a tracing-format
row and then into an IngestRequest (connectors.rows); a line that does not fit the layout is a dead
letter (the line itself under `raw_line`), never a crash. Files (*.dat, *.txt) arrive in an inbox and
are processed like the file drop's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from connectors.filedrop import FileReader, lines
from connectors.machinery import SourceRecord, unreadable
from connectors.rows import Violation, to_request

Field = tuple[str, int, int]  # name, first column, last column (1-based, inclusive)
RECORD_LENGTH = 350

# fmt: off
COMMON: tuple[Field, ...] = (
    ("action", 1, 1), ("type", 2, 2), ("agency", 3, 10), ("record_number", 11, 40), ("source_version", 41, 59),
    ("surname", 60, 94), ("given_name", 95, 114), ("middle_name", 115, 134), ("suffix", 135, 138),
    ("ssn", 139, 147), ("date_of_birth", 148, 155), ("pob_kind", 156, 156), ("pob_code", 157, 158),
    ("pob_city", 159, 183), ("role", 184, 184),
)
TYPE_FIELDS: dict[str, tuple[Field, ...]] = {
    "F": (("year_indexed", 185, 188), ("custodian", 189, 198), ("file_number", 199, 228)),
    "O": (("year_indexed", 185, 188), ("location", 189, 248), ("investigative_number", 249, 278)),
    "P": (("case_number", 185, 214), ("requester_category", 215, 230), ("nac_type", 231, 238)),
    "H": (("completed_on", 185, 192), ("outcome", 193, 193), ("nac_type", 194, 201),
          *((f"agencies_checked.{i}", 202 + 8 * i, 209 + 8 * i) for i in range(6))),
    "C": (("granted_on", 185, 192), ("eligibility_level", 193, 193), ("access_level", 194, 194),
          ("access_granted_on", 195, 202), ("basis_investigation_type", 203, 210),
          ("basis_investigation_date", 211, 218), ("subject_category", 219, 219), ("separation_date", 220, 227),
          *((f"files_used.{i}", 228 + 30 * i, 257 + 30 * i) for i in range(3))),
}
DELETE_FIELDS: tuple[Field, ...] = (("delete_reason", 185, 224),)
REPLACES: Field = ("replaces_record_number", 321, 350)
# fmt: on
ACTIONS = {"A": "UPSERT", "C": "UPSERT", "D": "DELETE", "X": "COMPLETE"}
TYPES = {"F": "FILE", "O": "OPEN_CASE", "P": "NAC_PENDING", "H": "NAC_HISTORY", "C": "CLEARANCE"}
ROLES = {"S": "SUBJECT", "V": "VICTIM", "X": "CROSS_REFERENCE"}
LEVELS = {"0": "NONE", "1": "CONFIDENTIAL", "2": "SECRET", "3": "TOP_SECRET", "4": "TOP_SECRET_SCI"}
CATEGORIES = {"M": "MILITARY", "C": "CIVILIAN", "K": "CONTRACTOR", "F": "FOREIGN_NATIONAL", "O": "OTHER"}
OUTCOMES = {"F": "FAVORABLE", "I": "INCOMPLETE"}
_CODES = {
    "role": ROLES,
    "eligibility_level": LEVELS,
    "access_level": LEVELS,
    "subject_category": CATEGORIES,
    "outcome": OUTCOMES,
}
_DATES = (
    "date_of_birth",
    "completed_on",
    "granted_on",
    "access_granted_on",
    "basis_investigation_date",
    "separation_date",
)


def _cut(text: str, spans: tuple[Field, ...]) -> dict[str, str]:
    return {name: text[first - 1 : last].strip() for name, first, last in spans}


def _date(value: str) -> str | None:
    """YYYYMMDD with '-', ' ' or '0' for an unknown month or day -> YYYY[-MM[-DD]]; None if malformed."""
    value = value.ljust(8)
    year, month, day = value[:4], value[4:6], value[6:8]
    unknown = ("--", "  ", "00")
    if not (year.isascii() and year.isdigit()):
        return None
    if month in unknown:
        return year if day in unknown else None
    if not (month.isascii() and month.isdigit()):
        return None
    if day in unknown:
        return f"{year}-{month}"
    return f"{year}-{month}-{day}" if day.isascii() and day.isdigit() else None


def parse_line(text: str) -> tuple[dict[str, str], list[Violation]]:
    """The tracing-format row a transaction line stands for, and what does not fit the layout. A value that
    does not fit stays in its column as read (a date, a code, the place of birth's three parts): the reject
    entry is then refused again until someone fixes it, where a blank column resubmitted as it was stored a
    record without its date of birth, or with role 'W' quietly taken as SUBJECT."""
    if len(text) > RECORD_LENGTH and text[RECORD_LENGTH:].strip():
        return {}, [("row", f"longer than the {RECORD_LENGTH}-character record")]
    action, tcode = text[:1], text[1:2]
    if action not in ACTIONS:
        return {}, [("action", "not one of A, C, D, X (column 1)")]
    if action != "D" and tcode not in TYPES:
        return {}, [("type", "not one of " + ", ".join(TYPES) + " (column 2)")]
    fields = _cut(text, COMMON[2:5])
    if action == "D":
        fields.update(_cut(text, DELETE_FIELDS))
        return {"action": "DELETE", **{k: v for k, v in fields.items() if v}}, []
    fields.update(_cut(text, COMMON[5:]))
    fields.update(_cut(text, TYPE_FIELDS[tcode]))
    problems: list[Violation] = []
    kind, code, city = fields.pop("pob_kind"), fields.pop("pob_code"), fields.pop("pob_city")
    if kind in ("S", "C") and code:
        fields["place_of_birth"] = ("US-" if kind == "S" else "") + code + (f"/{city}" if city else "")
    elif kind or code or city:
        problems.append(("place_of_birth", "kind S (US state) or C (country) with a code (columns 156-158)"))
        fields["place_of_birth"] = f"{kind}|{code}|{city}"  # as read: never a place the index would take
    for name in _DATES:
        if fields.get(name):
            iso = _date(fields[name])
            if iso is None:
                problems.append((name, "not a date (YYYYMMDD, '-' for an unknown month or day)"))
            fields[name] = fields[name] if iso is None else iso
    for name, codes in _CODES.items():
        if fields.get(name):
            if fields[name] not in codes:
                problems.append((name, "not one of " + ", ".join(codes)))
            fields[name] = codes.get(fields[name], fields[name])
    for name in ("agencies_checked", "files_used"):
        items = [fields.pop(key) for key in list(fields) if key.startswith(name + ".")]
        if items:
            fields[name] = "; ".join(item for item in items if item)
    if action == "X":
        fields["replaces_record_number"] = _cut(text, (REPLACES,))["replaces_record_number"]
    row = {"action": ACTIONS[action], "type": TYPES[tcode], **fields}
    return {k: v for k, v in row.items() if v}, problems


def compose(values: dict[str, str]) -> str:
    """A transaction line from layout field values (codes as in the layout): the inverse of parse_line."""
    line = [" "] * RECORD_LENGTH
    spans = {name: (first, last) for name, first, last in (*COMMON, *DELETE_FIELDS, REPLACES)}
    spans.update({name: (first, last) for name, first, last in TYPE_FIELDS.get(values.get("type", ""), ())})
    for name, value in values.items():
        first, last = spans[name]
        if len(value) > last - first + 1:
            raise ValueError(f"{name} is wider than columns {first}-{last}")
        line[first - 1 : first - 1 + len(value)] = value
    return "".join(line).rstrip()


def read_fixed_width(path: Path, identity: str, skip: int) -> Iterator[SourceRecord]:
    for number, text in lines(path):
        if number <= skip or (text is not None and not text.strip()):
            continue
        position = f"{identity}#{number}"
        if text is None:
            yield unreadable(position, {}, [("row", f"line {number}: longer than 1 MiB")], line=number)
            continue
        row, problems = parse_line(text)
        request = to_request(row) if row else []
        raw = {**row, "raw_line": text}
        if problems or isinstance(request, list):
            named = {field for field, _ in problems}  # the layout's word on a column, not the format's too
            more = [v for v in request if v[0] not in named] if isinstance(request, list) else []
            yield unreadable(position, raw, problems + more, line=number)
        else:
            yield SourceRecord(position, request, raw, line=number)


FIXED_WIDTH_READERS: dict[str, FileReader] = {".dat": read_fixed_width, ".txt": read_fixed_width}
