"""Tracing-format rows (docs/TRACING_FORMAT.md) to dcii.v1 IngestRequests.

Syntactic only: a value of the wrong shape (not a number, not a date, an unknown code, a column that
does not belong to the row's type or action) is a violation naming its column, and the row is not
sent. Whether the tracing may be stored is the index's decision: it answers with field violations.
A description never repeats the value (it may be a name or an SSN, and reaches logs).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from google.type import date_pb2

from dcii.v1 import ingest_pb2, tracing_pb2

Violation = tuple[str, str]  # (field, description)

# fmt: off
KEY_COLUMNS = ("action", "type", "agency", "record_number", "source_version")
SUBJECT_COLUMNS = ("surname", "given_name", "middle_name", "suffix", "aliases", "ssn", "date_of_birth",
                   "place_of_birth", "role")
TYPE_COLUMNS: dict[str, tuple[str, ...]] = {
    "FILE": ("year_indexed", "custodian", "file_number"),
    "OPEN_CASE": ("year_indexed", "location", "investigative_number"),
    "NAC_PENDING": ("case_number", "requester_category", "nac_type"),
    "NAC_HISTORY": ("nac_type", "completed_on", "agencies_checked", "outcome"),
    "CLEARANCE": ("granted_on", "eligibility_level", "access_level", "access_granted_on", "basis_investigation_type",
                  "basis_investigation_date", "subject_category", "separation_date", "files_used"),
    "IMPERSONAL_TITLE": ("year_indexed", "custodian", "file_number", "title", "kind"),
}
COLUMNS: tuple[str, ...] = (
    *KEY_COLUMNS, *SUBJECT_COLUMNS, "year_indexed", "custodian", "file_number", "location", "investigative_number",
    "case_number", "requester_category", "nac_type", "completed_on", "agencies_checked", "outcome",
    *TYPE_COLUMNS["CLEARANCE"], "title", "kind", "delete_reason", "replaces_record_number",
)
# fmt: on
# The reject file's own keys (connectors.checkpoint.DeadLetters): an entry dropped into an inbox as it is reads
# as the row it holds.
IGNORED_COLUMNS = frozenset({"errors", "raw_line", "source", "line", "position", "timestamp", "dead_letter"})
ACTIONS = ("UPSERT", "DELETE", "COMPLETE")
ROLES = ("SUBJECT", "VICTIM", "CROSS_REFERENCE")
LEVELS = ("NONE", "CONFIDENTIAL", "SECRET", "TOP_SECRET", "TOP_SECRET_SCI")
CATEGORIES = ("MILITARY", "CIVILIAN", "CONTRACTOR", "FOREIGN_NATIONAL", "OTHER")
OUTCOMES = ("FAVORABLE", "INCOMPLETE")
KINDS = ("ORGANIZATION", "CONTRACTOR_LOCATION", "INCIDENT")
_KNOWN = frozenset(COLUMNS)
_DELETE_COLUMNS = frozenset({*KEY_COLUMNS, "delete_reason"})
_NAME_KEYS = ("surname", "given_name", "middle_name", "suffix")
_PLACE_KEYS = ("us_state", "country", "city")


def raw_of(row: Mapping[str, object]) -> dict[str, str]:
    """A row as text (for a reject file): JSON structures stay JSON text, a form the reader accepts."""
    out: dict[str, str] = {}
    for key, value in row.items():
        if value is None or value == "":
            continue
        out[str(key)] = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return out


def _blank(value: object) -> bool:
    return value is None or value in ([], {}) or (isinstance(value, str) and not value.strip())


def _encodable(value: object) -> bool:
    """Valid JSON can still carry a lone surrogate ("\\ud800"), and bytes that are not UTF-8 read as such,
    which no protobuf string can hold: in a cell, or anywhere inside one (a JSON alias list's names)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return True
    if isinstance(value, list):
        return all(_encodable(item) for item in value)
    if isinstance(value, dict):
        return all(_encodable(k) and _encodable(v) for k, v in value.items())
    return True


class _Cells:
    def __init__(self, row: Mapping[str, object]) -> None:
        self.values: dict[str, object] = {}
        self.errors: list[Violation] = []
        for key, value in row.items():
            name = str(key).strip().lower()
            if name in IGNORED_COLUMNS:
                continue
            if name not in _KNOWN:
                self.bad(name if name.replace("_", "").isalnum() and len(name) <= 40 else "row", "unknown column")
            elif name in self.values:
                self.bad(name, "duplicate column")
            elif not _encodable(value):
                self.bad(name, "not valid Unicode text (a lone surrogate, or bytes that are not UTF-8)")
            elif not _blank(value):
                self.values[name] = value

    def bad(self, column: str, description: str) -> None:
        self.errors.append((column, description))

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
            if not digits.isascii() or not digits.isdigit() or len(digits) > 20:
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

    def date(self, column: str, target: date_pb2.Date) -> None:
        text = self.text(column)
        if not text:
            return
        parts = text.split("-")
        if (
            len(parts) > 3
            or len(parts[0]) != 4
            or not all(1 <= len(part) <= 2 for part in parts[1:])
            or not all(part.isascii() and part.isdigit() for part in parts)
            # A day under month 00 (an unknown month) is no date: the same rule as indexer.fileformat_rows.
            or (len(parts) == 3 and int(parts[1]) == 0 and int(parts[2]) != 0)
        ):
            self.bad(column, "not a date (YYYY, YYYY-MM or YYYY-MM-DD)")
            return
        numbers = [int(part) for part in parts] + [0, 0]
        target.year, target.month, target.day = numbers[0], numbers[1], numbers[2]

    def choice(self, column: str, choices: tuple[str, ...]) -> str:
        text = self.text(column).upper()
        if text and text not in choices:
            self.bad(column, "not one of " + ", ".join(choices))
            return ""
        return text

    def _list(self, column: str) -> list[object]:
        value = self.values.get(column)
        if isinstance(value, str):
            text = value.strip()
            if not text.startswith("["):
                return [item for item in text.split(";") if item.strip()]
            try:
                value = json.loads(text)
            except ValueError:
                self.bad(column, "not valid JSON")
                return []
        if value is None:
            return []
        if not isinstance(value, list):
            self.bad(column, "must be a list")
            return []
        return value

    def strings(self, column: str) -> list[str]:
        items = self._list(column)
        if not all(isinstance(item, str) for item in items):
            self.bad(column, "list items must be strings")
            return []
        return [item.strip() for item in items if isinstance(item, str) and item.strip()]

    def aliases(self, subject: tracing_pb2.Subject) -> None:
        for item in self._list("aliases"):
            parts = _alias_parts(item)
            if parts is None:
                self.bad("aliases", "an alias must be 'SURNAME, GIVEN MIDDLE[, SUFFIX]' or an object with name keys")
                del subject.aliases[:]
                return
            subject.aliases.add(surname=parts[0], given_name=parts[1], middle_name=parts[2], suffix=parts[3])

    def place(self, target: tracing_pb2.PersonalIdentifiers) -> None:
        value = self.values.get("place_of_birth")
        if isinstance(value, str) and value.strip().startswith("{"):
            try:
                value = json.loads(value)
            except ValueError:
                self.bad("place_of_birth", "not valid JSON")
                return
        if value is None:
            return
        if isinstance(value, str):
            code, _, city = value.strip().partition("/")
            code = code.strip()
            state = code[3:] if code[:3].upper() == "US-" else ""
            if state and _is_code(state):
                target.place_of_birth.us_state, target.place_of_birth.city = state, city.strip()
            elif _is_code(code):
                target.place_of_birth.country, target.place_of_birth.city = code, city.strip()
            else:
                self.bad("place_of_birth", "not a place of birth (US-ST, US-ST/City, CC or CC/City)")
            return
        parts = _object_parts(value, _PLACE_KEYS)
        if parts is None:
            self.bad("place_of_birth", "must be an object with us_state, country, city")
        elif any(parts):
            place = target.place_of_birth
            place.us_state, place.country, place.city = parts


def _is_code(text: str) -> bool:
    return 2 <= len(text) <= 3 and text.isascii() and text.isalpha()


def _object_parts(value: object, keys: tuple[str, ...]) -> list[str] | None:
    if not isinstance(value, dict) or not set(value) <= set(keys):
        return None
    parts = [value.get(key) for key in keys]
    if not all(part is None or isinstance(part, str) for part in parts):
        return None
    return [part.strip() if isinstance(part, str) else "" for part in parts]


def _alias_parts(item: object) -> list[str] | None:
    if not isinstance(item, str):
        return _object_parts(item, _NAME_KEYS)
    parts = item.split(",")
    if len(parts) > 3:
        return None
    rest = parts[1].split(None, 1) if len(parts) > 1 else []
    return [
        parts[0].strip(),
        rest[0] if rest else "",
        rest[1].strip() if len(rest) > 1 else "",
        parts[2].strip() if len(parts) > 2 else "",
    ]


def _misplaced(column: str, action: str, ttype: str) -> str:
    if action == "DELETE":
        return "" if column in _DELETE_COLUMNS else "not used by a DELETE"
    if column == "delete_reason":
        return "used only by a DELETE"
    if column == "replaces_record_number":
        return "" if action == "COMPLETE" else "used only by a COMPLETE"
    if column in KEY_COLUMNS:
        return ""
    if column in SUBJECT_COLUMNS:
        return "not used by type IMPERSONAL_TITLE" if ttype == "IMPERSONAL_TITLE" else ""
    if not ttype:
        return "needs a type"
    return "" if column in TYPE_COLUMNS[ttype] else f"not used by type {ttype}"


def to_request(row: Mapping[str, object], request_id: str = "") -> ingest_pb2.IngestRequest | list[Violation]:
    """The IngestRequest for one row, or the reasons the row cannot become one."""
    cells = _Cells(row)
    if not cells.values and not cells.errors:
        return [("row", "no values (a line that could not be read: write its values into the columns)")]
    action = cells.choice("action", ACTIONS) or "UPSERT"
    ttype = cells.choice("type", tuple(TYPE_COLUMNS))
    if not any(column in ("action", "type") for column, _ in cells.errors):
        for column in [c for c in COLUMNS if c in cells.values]:
            why = _misplaced(column, action, ttype)
            if why:
                cells.bad(column, why)
    request = ingest_pb2.IngestRequest(request_id=request_id)
    if action == "DELETE":
        delete = request.delete
        delete.key.agency, delete.key.record_number = cells.text("agency"), cells.text("record_number")
        delete.source_version = cells.integer("source_version", 64)
        delete.reason = cells.text("delete_reason")
    elif action == "COMPLETE":
        replaces = cells.text("replaces_record_number")
        if not replaces:
            cells.bad("replaces_record_number", "required by a COMPLETE")
        if ttype == "FILE":
            request.complete_open_case.open_case.agency = cells.text("agency")
            request.complete_open_case.open_case.record_number = replaces
            _tracing(cells, ttype, request.complete_open_case.file)
        elif ttype == "NAC_HISTORY":
            request.complete_nac_pending.nac_pending.agency = cells.text("agency")
            request.complete_nac_pending.nac_pending.record_number = replaces
            _tracing(cells, ttype, request.complete_nac_pending.nac_history)
        elif not any(column == "type" for column, _ in cells.errors):
            cells.bad("type", "a COMPLETE must be of type FILE or NAC_HISTORY")
    else:
        _tracing(cells, ttype, request.upsert)
    return cells.errors or request


def _tracing(cells: _Cells, ttype: str, tracing: tracing_pb2.Tracing) -> None:
    tracing.key.agency, tracing.key.record_number = cells.text("agency"), cells.text("record_number")
    tracing.source_version = cells.integer("source_version", 64)
    if ttype != "IMPERSONAL_TITLE":
        subject = tracing.subject
        name = subject.name
        name.surname, name.given_name = cells.text("surname"), cells.text("given_name")
        name.middle_name, name.suffix = cells.text("middle_name"), cells.text("suffix")
        cells.aliases(subject)
        subject.role = tracing_pb2.SubjectRole.Value("SUBJECT_ROLE_" + (cells.choice("role", ROLES) or "SUBJECT"))
        subject.identifiers.ssn = cells.text("ssn")
        if "date_of_birth" in cells.values:
            cells.date("date_of_birth", subject.identifiers.date_of_birth)
        cells.place(subject.identifiers)
    if ttype:
        _details(cells, ttype, tracing)


def _details(cells: _Cells, ttype: str, tracing: tracing_pb2.Tracing) -> None:
    text, date = cells.text, cells.date
    if ttype == "FILE":
        tracing.file.SetInParent()
        tracing.file.custodian, tracing.file.file_number = text("custodian"), text("file_number")
        tracing.file.year_indexed = cells.integer("year_indexed", 32)
    elif ttype == "OPEN_CASE":
        o = tracing.open_case
        o.SetInParent()
        o.location, o.investigative_number = text("location"), text("investigative_number")
        o.year_indexed = cells.integer("year_indexed", 32)
    elif ttype == "NAC_PENDING":
        p = tracing.nac_pending
        p.SetInParent()
        p.case_number, p.requester_category, p.nac_type = (
            text("case_number"),
            text("requester_category"),
            text("nac_type"),
        )
    elif ttype == "NAC_HISTORY":
        h = tracing.nac_history
        h.SetInParent()
        if "completed_on" in cells.values:
            date("completed_on", h.completed_on)
        h.agencies_checked.extend(cells.strings("agencies_checked"))
        outcome = cells.choice("outcome", OUTCOMES)
        h.outcome = tracing_pb2.NacOutcome.Value(f"NAC_OUTCOME_{outcome}") if outcome else 0  # type: ignore[assignment]
        h.nac_type = text("nac_type")
    elif ttype == "CLEARANCE":
        c = tracing.clearance
        c.SetInParent()
        for column in ("granted_on", "access_granted_on", "basis_investigation_date", "separation_date"):
            if column in cells.values:
                date(column, getattr(c, column))
        for column in ("eligibility_level", "access_level"):
            level = cells.choice(column, LEVELS)
            setattr(c, column, tracing_pb2.ClearanceLevel.Value(f"CLEARANCE_LEVEL_{level}") if level else 0)
        c.basis_investigation_type = text("basis_investigation_type")
        category = cells.choice("subject_category", CATEGORIES)
        c.subject_category = tracing_pb2.SubjectCategory.Value(f"SUBJECT_CATEGORY_{category}") if category else 0  # type: ignore[assignment]
        c.files_used.extend(cells.strings("files_used"))
    elif ttype == "IMPERSONAL_TITLE":
        i = tracing.impersonal_title
        i.SetInParent()
        i.title, i.custodian, i.file_number = text("title"), text("custodian"), text("file_number")
        kind = cells.choice("kind", KINDS)
        i.kind = tracing_pb2.ImpersonalTitleKind.Value(f"IMPERSONAL_TITLE_KIND_{kind}") if kind else 0  # type: ignore[assignment]
        i.year_indexed = cells.integer("year_indexed", 32)
