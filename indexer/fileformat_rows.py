"""The text layer of the tracing file format (docs/TRACING_FORMAT.md): columns, cells and headers.

`indexer.fileformat` turns rows into actions and back; this module knows one cell and one header
at a time (the short text forms of aliases, place of birth and lists are `indexer.fileformat_compound`).
Parsing is syntactic only: a cell of the wrong shape becomes a Violation naming its column, and a
description never carries the value (it may be a name or an SSN, and reaches logs).
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import TypeVar

from indexer.fileformat_compound import (
    ALIAS_FORMS,
    PLACE_KEYS,
    alias_from_object,
    alias_from_text,
    is_code,
    object_parts,
)
from indexer.model import PartialDate, PersonName, PlaceOfBirth, TracingType, Violation

E = TypeVar("E", bound=StrEnum)

# fmt: off
KEY_COLUMNS: tuple[str, ...] = ("action", "type", "agency", "record_number", "source_version")
SUBJECT_COLUMNS: tuple[str, ...] = ("surname", "given_name", "middle_name", "suffix", "aliases", "ssn",
                                    "date_of_birth", "place_of_birth", "role")
# The columns each tracing type carries beyond the key and (except impersonal titles) the subject.
TYPE_COLUMNS: dict[TracingType, tuple[str, ...]] = {
    TracingType.FILE: ("year_indexed", "custodian", "file_number"),
    TracingType.OPEN_CASE: ("year_indexed", "location", "investigative_number"),
    TracingType.NAC_PENDING: ("case_number", "requester_category", "nac_type"),
    TracingType.NAC_HISTORY: ("nac_type", "completed_on", "agencies_checked", "outcome"),
    TracingType.CLEARANCE: ("granted_on", "eligibility_level", "access_level", "access_granted_on",
                            "basis_investigation_type", "basis_investigation_date", "subject_category",
                            "separation_date", "files_used"),
    TracingType.IMPERSONAL_TITLE: ("year_indexed", "custodian", "file_number", "title", "kind"),
}
# The canonical column order (a CSV header; the keys of a JSONL object).
COLUMNS: tuple[str, ...] = (
    *KEY_COLUMNS, *SUBJECT_COLUMNS, "year_indexed", "custodian", "file_number", "location",
    "investigative_number", "case_number", "requester_category", "nac_type", "completed_on",
    "agencies_checked", "outcome", *TYPE_COLUMNS[TracingType.CLEARANCE], "title", "kind",
    "delete_reason", "replaces_record_number",
)
# fmt: on
COLUMN_SET: frozenset[str] = frozenset(COLUMNS)
_ORDER = {column: position for position, column in enumerate(COLUMNS)}
# A reject file's extra columns: why the row was refused, and (RowError.raw) a line that could not be
# split into columns at all. Readers ignore both, so a fixed reject file can be resubmitted as it is.
ERRORS_COLUMN = "errors"
RAW_LINE_KEY = "raw_line"
# And a connector's reject entry's other keys (docs/CONNECTORS.md, "Dead letters"), so that `dcii submit`
# takes such an entry back as it is, as the connectors' own reader does (connectors.rows, which may not
# import this: connectors use only the generated API).
DEAD_LETTER_KEYS = frozenset({"source", "line", "position", "timestamp", "dead_letter"})
IGNORED_COLUMNS = frozenset({ERRORS_COLUMN, RAW_LINE_KEY}) | DEAD_LETTER_KEYS
MAX_VIOLATIONS = 50

_DIGITS = frozenset("0123456789")
_SURROGATE = re.compile("[\ud800-\udfff]")
_UNWRITABLE = re.compile("[\ud800-\udfff\r\n]")
_IDENTIFIER = re.compile("[a-z][a-z0-9_]{0,39}")


class DuplicateKey(ValueError):
    """A JSON object names the same key twice."""


def unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """json object_pairs_hook: refuse duplicate keys instead of silently keeping the last."""
    result = dict(pairs)
    if len(result) != len(pairs):
        raise DuplicateKey("duplicate key")
    return result


def load_json(text: str) -> object:
    """json.loads that refuses duplicate keys; ValueError (DuplicateKey included) on any bad input."""
    try:
        return json.loads(text, object_pairs_hook=unique_keys)
    except RecursionError as exc:
        raise ValueError("nested too deeply") from exc


def clean(text: str) -> str:
    """The text with undecodable bytes, lone surrogates and line breaks replaced by U+FFFD: safe to write
    anywhere. A line break too: a quoted CSV cell or a JSONL string may hold one, and a reject file in
    CSV (one row per line) could not take the row back (found by fuzz/tracing_csv.py)."""
    if "\r" not in text and "\n" not in text and text.isascii():
        return text
    return _UNWRITABLE.sub("\ufffd", text)


def _valid_text(text: str) -> bool:
    return text.isascii() or _SURROGATE.search(text) is None


def valid_tree(value: object) -> bool:
    """No string anywhere in a JSON value (keys included) holds an undecodable byte or a lone surrogate."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str) and not _valid_text(item):
            return False
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
    return True


def unknown_column(name: str, position: int, where: str) -> Violation:
    """An unknown column, named only when the name looks like a mistyped column and not like data (a CSV
    without its header line has a name, an SSN... where the header should be: never repeat those)."""
    if _IDENTIFIER.fullmatch(name):
        close = difflib.get_close_matches(name, COLUMNS, n=1, cutoff=0.75)
        if close:
            return Violation(name, f"unknown column (did you mean {close[0]}?)")
        if "_" in name:
            return Violation(name, "unknown column")
    return Violation(where, f"column {position} has an unknown name (not repeated here: it may be data)")


def _flat(value: object) -> str:
    if value is None or isinstance(value, str):
        return clean(value or "")
    try:
        return clean(json.dumps(value, ensure_ascii=False))
    except (ValueError, TypeError, RecursionError):
        return "(unprintable value)"


def raw_of(row: Mapping[str, object]) -> dict[str, str]:
    """A row as text, for RowError.raw: a JSON structure stays JSON text, a form the reader accepts."""
    return {clean(str(key)): _flat(value) for key, value in row.items()}


def _blank(value: object) -> bool:
    if isinstance(value, str):
        return not value or value.isspace()
    return value is None or value in ([], {})


class Cells:
    """One row's values by column, and the violations found reading them."""

    def __init__(self, row: Mapping[str, object]) -> None:
        self.values: dict[str, object] = {}
        self.failed: set[str] = set()
        self._violations: list[Violation] = []
        self._overflow = 0
        seen: set[str] = set()
        for position, (key, value) in enumerate(row.items(), 1):
            name = key if key in COLUMN_SET else clean(str(key).strip().lower())
            if name in IGNORED_COLUMNS:
                continue
            if name not in COLUMN_SET:
                if len(self._violations) < MAX_VIOLATIONS:
                    unknown = unknown_column(name, position, "row")
                    self.bad(unknown.field, unknown.description)
                else:
                    self._overflow += 1
            elif name in seen:
                self.bad(name, "duplicate column")
            elif not (_valid_text(value) if isinstance(value, str) else valid_tree(value)):
                self.bad(name, "not valid UTF-8 text")
            elif not _blank(value):  # blank = absent
                self.values[name] = value
            seen.add(name)

    def bad(self, column: str, description: str) -> None:
        self.failed.add(column)
        if len(self._violations) < MAX_VIOLATIONS:
            self._violations.append(Violation(column, description))
        else:
            self._overflow += 1

    @property
    def violations(self) -> tuple[Violation, ...]:
        """In column order (unknown columns first)."""
        found = sorted(self._violations, key=lambda violation: _ORDER.get(violation.field, -1))
        if self._overflow:
            found.append(Violation("row", f"{self._overflow} more problems not listed"))
        return tuple(found)

    def filled(self) -> list[str]:
        return [column for column in COLUMNS if column in self.values]

    def text(self, column: str) -> str:
        value = self.values.get(column)
        if value is None:
            return ""
        if isinstance(value, str):
            return value.strip()
        self.bad(column, "must be a string")
        return ""

    def integer(self, column: str, bits: int) -> int:
        value = self.values.get(column)
        if isinstance(value, str):
            text = value.strip()
            digits = text[1:] if text[:1] in ("+", "-") else text
            if not digits or len(digits) > 20 or not set(digits) <= _DIGITS:
                self.bad(column, "not an integer")
                return 0
            value = int(text)
        if value is None:
            return 0
        if not isinstance(value, int) or isinstance(value, bool):
            self.bad(column, "not an integer")
            return 0
        if not -(2 ** (bits - 1)) <= value < 2 ** (bits - 1):
            self.bad(column, f"out of range for a {bits}-bit integer")
            return 0
        return value

    def date(self, column: str) -> PartialDate | None:
        text = self.text(column)
        if not text:
            return None
        parts = text.split("-")
        if (
            len(parts) > 3
            or len(parts[0]) != 4
            or not all(1 <= len(part) <= 2 for part in parts[1:])
            or not all(set(part) <= _DIGITS for part in parts)
            # A day under month 00 (an unknown month) is no date the format can write back (found by
            # fuzz/tracing_jsonl.py: "1968-00-14" read as a year and a day, written as "1968").
            or (len(parts) == 3 and int(parts[1]) == 0 and int(parts[2]) != 0)
        ):
            self.bad(column, "not a date (YYYY, YYYY-MM or YYYY-MM-DD)")
            return None
        numbers = [int(part) for part in parts] + [0] * (3 - len(parts))
        return PartialDate(numbers[0], numbers[1], numbers[2])

    def enum(self, column: str, kind: type[E]) -> E | None:
        text = self.text(column).upper()
        if not text:
            return None
        try:
            return kind(text)
        except ValueError:
            self.bad(column, "not one of " + ", ".join(member.value for member in kind))
            return None

    def _json(self, column: str, text: str) -> object:
        try:
            value = load_json(text)
        except ValueError:
            self.bad(column, "not valid JSON")
            return None
        if not valid_tree(value):
            self.bad(column, "not valid UTF-8 text")
            return None
        return value

    def _list(self, column: str) -> list[object]:
        """A list column: a JSON list, or (in a string) a JSON list text or items separated by ';'."""
        value = self.values.get(column)
        if isinstance(value, str):
            text = value.strip()
            if not text.startswith("["):
                return [item for item in text.split(";") if item.strip()]
            value = self._json(column, text)
            if column in self.failed:
                return []
        if not isinstance(value, list):
            if value is not None:
                self.bad(column, "must be a list")
            return []
        return value

    def strings(self, column: str) -> tuple[str, ...]:
        items = self._list(column)
        if not all(isinstance(item, str) for item in items):
            self.bad(column, "list items must be strings")
            return ()
        return tuple(item.strip() for item in items if isinstance(item, str) and item.strip())

    def aliases(self) -> tuple[PersonName, ...]:
        names: list[PersonName] = []
        for item in self._list("aliases"):
            if isinstance(item, str) and not item.strip():
                continue
            name = alias_from_text(item) if isinstance(item, str) else alias_from_object(item)
            if name is None:
                self.bad("aliases", ALIAS_FORMS)
                return ()
            names.append(name)
        return tuple(names)

    def place(self) -> PlaceOfBirth | None:
        value = self.values.get("place_of_birth")
        if isinstance(value, str):
            text = value.strip()
            if not text.startswith("{"):
                return self._place_text(text)
            value = self._json("place_of_birth", text)
            if "place_of_birth" in self.failed:
                return None
        parts = object_parts(value, PLACE_KEYS)
        if parts is None:
            if value is not None:
                self.bad("place_of_birth", "must be an object with " + ", ".join(PLACE_KEYS))
            return None
        return PlaceOfBirth(*parts) if any(parts) else None

    def _place_text(self, text: str) -> PlaceOfBirth | None:
        code, _, city = text.partition("/")
        code = code.strip()
        if code[:3].upper() == "US-" and is_code(code[3:]):
            return PlaceOfBirth(us_state=code[3:], city=city.strip())
        if is_code(code):
            return PlaceOfBirth(country=code, city=city.strip())
        self.bad("place_of_birth", "not a place of birth (US-ST, US-ST/City, CC or CC/City)")
        return None


# --- headers -----------------------------------------------------------------------------------


def read_header(cells: list[str]) -> tuple[list[str], list[Violation]]:
    """A CSV header's column names (trailing unnamed columns dropped), and what is wrong with it."""
    names = [clean(cell.strip().lower()) for cell in cells]
    while names and not names[-1]:
        names.pop()
    violations: list[Violation] = []
    seen: set[str] = set()
    problems = 0
    for position, name in enumerate(names):
        if not name:
            violation = Violation("header", f"column {position + 1} has no name")
        elif name not in COLUMN_SET and name not in IGNORED_COLUMNS:
            if problems >= MAX_VIOLATIONS:
                problems += 1
                continue
            violation = unknown_column(name, position + 1, "header")
        elif name in seen:
            violation = Violation(name, "duplicate column")
        else:
            seen.add(name)
            continue
        problems += 1
        if problems <= MAX_VIOLATIONS:
            violations.append(violation)
    if problems > MAX_VIOLATIONS:
        violations.append(Violation("header", f"{problems - MAX_VIOLATIONS} more problems not listed"))
    if not names:
        violations.append(Violation("header", "the header names no columns"))
    return names, violations
