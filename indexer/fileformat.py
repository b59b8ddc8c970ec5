"""The tracing file format: CSV or JSONL, one tracing action per row (docs/TRACING_FORMAT.md).

Read by `dcii submit FILE` and the file-drop connector; written by `dcii demo --out` and for reject
files. `read_actions` streams a file into FileAction (a row that parsed) or RowError (a row that did
not, with its violations and the row as read, so that a reject file can be fixed and resubmitted).

Parsing is syntactic only: a value of the wrong shape is a violation naming its column; whether the
tracing may be stored is `indexer.edit_criteria.check_tracing`'s decision. No input makes the reader
raise: a malformed line (bad quoting, invalid UTF-8, bad JSON, overlong) is a RowError for that line,
and the rows after it are read as usual. Only a bad CSV header stops a file, since no row of it can be
trusted; it is reported once.
"""

from __future__ import annotations

import codecs
import csv
import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from enum import StrEnum
from pathlib import Path
from typing import BinaryIO

from indexer import fileformat_compound as _compound
from indexer import fileformat_rows as _rows
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
    Subject,
    SubjectCategory,
    SubjectRole,
    Tracing,
    TracingKey,
    TracingType,
    Violation,
)

# Re-exported from indexer.fileformat_rows.
COLUMNS = _rows.COLUMNS
ERRORS_COLUMN = _rows.ERRORS_COLUMN
RAW_LINE_KEY = _rows.RAW_LINE_KEY
# The columns of a CSV reject file.
REJECT_COLUMNS: tuple[str, ...] = (*COLUMNS, RAW_LINE_KEY, ERRORS_COLUMN)
# A physical line longer than this (bytes, line break included) is refused without being held in memory.
MAX_LINE_BYTES = 1 << 20
SUFFIXES: dict[str, str] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


class ActionKind(StrEnum):
    UPSERT = "UPSERT"
    DELETE = "DELETE"
    # The row's tracing (FILE or NAC_HISTORY) replaces the open case or NAC pending named by
    # replaces_record_number (same agency), in one step.
    COMPLETE = "COMPLETE"


@dataclass(frozen=True, slots=True)
class FileAction:
    """One row that parsed. `tracing` is set for UPSERT and COMPLETE; `replaces` for COMPLETE."""

    line: int
    kind: ActionKind
    tracing: Tracing | None
    key: TracingKey
    source_version: int
    delete_reason: str = ""
    replaces: TracingKey | None = None


@dataclass(frozen=True, slots=True)
class RowError:
    """One row refused: why, and the row as read (undecodable bytes shown as U+FFFD)."""

    line: int
    violations: tuple[Violation, ...]
    raw: dict[str, str]


_DELETE_COLUMNS = frozenset({*_rows.KEY_COLUMNS, "delete_reason"})


def _misplaced(column: str, kind: ActionKind, ttype: TracingType | None) -> str:
    """Why a filled column does not belong in this row, or "" when it does."""
    if kind is ActionKind.DELETE:
        return "" if column in _DELETE_COLUMNS else "not used by a DELETE"
    if column == "delete_reason":
        return "used only by a DELETE"
    if column == "replaces_record_number":
        return "" if kind is ActionKind.COMPLETE else "used only by a COMPLETE"
    if column in _rows.KEY_COLUMNS:
        return ""
    if column in _rows.SUBJECT_COLUMNS:
        return "not used by type IMPERSONAL_TITLE" if ttype is TracingType.IMPERSONAL_TITLE else ""
    if ttype is None:
        return "needs a type"
    return "" if column in _rows.TYPE_COLUMNS[ttype] else f"not used by type {ttype.value}"


def parse_row(row: Mapping[str, object], line: int) -> FileAction | RowError:
    """One row (CSV cells or a JSONL object) as an action, or the reasons it cannot be one."""
    cells = _rows.Cells(row)
    kind = cells.enum("action", ActionKind) or ActionKind.UPSERT
    ttype = cells.enum("type", TracingType)
    if "action" not in cells.failed and "type" not in cells.failed:
        for column in cells.filled():
            why = _misplaced(column, kind, ttype)
            if why:
                cells.bad(column, why)
    key = TracingKey(cells.text("agency"), cells.text("record_number"))
    version = cells.integer("source_version", 64)
    action: FileAction
    if kind is ActionKind.DELETE:
        action = FileAction(line, kind, None, key, version, delete_reason=cells.text("delete_reason"))
    else:
        replaces = None
        if kind is ActionKind.COMPLETE:
            replaces = TracingKey(key.agency, cells.text("replaces_record_number"))
            if not replaces.record_number:
                cells.bad("replaces_record_number", "required by a COMPLETE")
            if ttype not in (TracingType.FILE, TracingType.NAC_HISTORY) and "type" not in cells.failed:
                cells.bad("type", "a COMPLETE must be of type FILE or NAC_HISTORY")
        subject = None if ttype is TracingType.IMPERSONAL_TITLE else _subject(cells)
        tracing = Tracing(key, version, subject, _details(cells, ttype))
        action = FileAction(line, kind, tracing, key, version, replaces=replaces)
    violations = cells.violations
    return RowError(line, violations, _rows.raw_of(row)) if violations else action


def _subject(cells: _rows.Cells) -> Subject:
    return Subject(
        name=PersonName(
            cells.text("surname"), cells.text("given_name"), cells.text("middle_name"), cells.text("suffix")
        ),
        aliases=cells.aliases(),
        role=cells.enum("role", SubjectRole) or SubjectRole.SUBJECT,
        identifiers=Identifiers(cells.text("ssn"), cells.date("date_of_birth"), cells.place()),
    )


def _details(cells: _rows.Cells, ttype: TracingType | None) -> Details | None:
    text, date = cells.text, cells.date
    match ttype:
        case TracingType.FILE:
            return FileDetails(text("custodian"), cells.integer("year_indexed", 32), text("file_number"))
        case TracingType.OPEN_CASE:
            return OpenCaseDetails(text("location"), cells.integer("year_indexed", 32), text("investigative_number"))
        case TracingType.NAC_PENDING:
            return NacPendingDetails(text("case_number"), text("requester_category"), text("nac_type"))
        case TracingType.NAC_HISTORY:
            return NacHistoryDetails(
                completed_on=date("completed_on"),
                agencies_checked=cells.strings("agencies_checked"),
                outcome=cells.enum("outcome", NacOutcome),
                nac_type=text("nac_type"),
            )
        case TracingType.CLEARANCE:
            return ClearanceDetails(
                granted_on=date("granted_on"),
                eligibility_level=cells.enum("eligibility_level", ClearanceLevel),
                access_level=cells.enum("access_level", ClearanceLevel),
                access_granted_on=date("access_granted_on"),
                basis_investigation_type=text("basis_investigation_type"),
                basis_investigation_date=date("basis_investigation_date"),
                subject_category=cells.enum("subject_category", SubjectCategory),
                separation_date=date("separation_date"),
                files_used=cells.strings("files_used"),
            )
        case TracingType.IMPERSONAL_TITLE:
            return ImpersonalTitleDetails(
                title=text("title"),
                kind=cells.enum("kind", ImpersonalTitleKind),
                custodian=text("custodian"),
                file_number=text("file_number"),
                year_indexed=cells.integer("year_indexed", 32),
            )
    return None


def tracing_to_row(tracing: Tracing) -> dict[str, str]:
    """The row (every column of COLUMNS, blank when absent) that parse_row reads back as `tracing`."""
    row = dict.fromkeys(COLUMNS, "")
    row.update(
        action=ActionKind.UPSERT.value,
        type=_cell(tracing.type),
        agency=tracing.key.agency,
        record_number=tracing.key.record_number,
        source_version=str(tracing.source_version),
    )
    subject = tracing.subject
    if subject is not None:
        ids = subject.identifiers
        row.update(
            surname=subject.name.surname,
            given_name=subject.name.given_name,
            middle_name=subject.name.middle_name,
            suffix=subject.name.suffix,
            aliases=_compound.format_aliases(subject.aliases),
            ssn=ids.ssn,
            date_of_birth=_cell(ids.date_of_birth),
            place_of_birth=_compound.format_place(ids.place_of_birth),
            role=subject.role.value,
        )
    if tracing.details is not None:  # each details field is named as its column
        for field in fields(tracing.details):
            row[field.name] = _cell(getattr(tracing.details, field.name))
    return row


def _cell(value: object) -> str:
    if value is None or value == 0:  # 0: a year_indexed not given
        return ""
    if isinstance(value, PartialDate):
        return value.iso()
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, tuple):
        return _compound.format_strings(value)
    return str(value)


def action_to_row(action: FileAction) -> dict[str, str]:
    """The row that parse_row reads back as `action` (line aside)."""
    if action.kind is ActionKind.DELETE or action.tracing is None:
        row = dict.fromkeys(COLUMNS, "")
        row.update(
            action=action.kind.value,
            agency=action.key.agency,
            record_number=action.key.record_number,
            source_version=str(action.source_version),
            delete_reason=action.delete_reason,
        )
        return row
    row = tracing_to_row(action.tracing)
    row["action"] = action.kind.value
    if action.replaces is not None:
        row["replaces_record_number"] = action.replaces.record_number
    return row


def reject_row(error: RowError) -> dict[str, str]:
    """A reject file's row: the row as read, plus ERRORS_COLUMN saying why ("line N: column: reason; ...")."""
    reasons = "; ".join(f"{v.field}: {v.description}" for v in error.violations)
    return {**error.raw, ERRORS_COLUMN: f"line {error.line}: {reasons}"}


def write_rejects(errors: Iterable[RowError], path: str | os.PathLike[str]) -> int:
    """Write a reject file (format by extension, as read_actions); the number of rows written."""
    path = Path(path)
    form = SUFFIXES.get(path.suffix.lower())
    rejects = (reject_row(error) for error in errors)
    if form == "csv":
        return write_csv(rejects, path, REJECT_COLUMNS)
    if form == "jsonl":
        return write_jsonl(rejects, path)
    raise ValueError("a reject file must end in " + ", ".join(SUFFIXES))


# --- reading ---------------------------------------------------------------------------------------


def read_actions(path: str | os.PathLike[str]) -> Iterator[FileAction | RowError]:
    """Stream a tracing file's rows, in order. Format by extension (SUFFIXES); ValueError for any other."""
    path = Path(path)
    form = SUFFIXES.get(path.suffix.lower())
    if form is None:
        raise ValueError("a tracing file must end in " + ", ".join(SUFFIXES))
    return _read_csv(path) if form == "csv" else _read_jsonl(path)


def _physical_lines(stream: BinaryIO) -> Iterator[tuple[int, str | None]]:
    """(line number, text without its line break) per line of a binary stream; None for an overlong one.

    A UTF-8 BOM is dropped. Undecodable bytes are kept as lone surrogates (surrogateescape), so that
    the row's reader can name the column that holds them."""
    number = 0
    while chunk := stream.readline(MAX_LINE_BYTES + 1):
        number += 1
        if number == 1 and chunk.startswith(codecs.BOM_UTF8):
            chunk = chunk[len(codecs.BOM_UTF8) :]
        if len(chunk) > MAX_LINE_BYTES:
            while chunk and not chunk.endswith(b"\n"):
                chunk = stream.readline(MAX_LINE_BYTES)
            yield number, None
            continue
        yield number, chunk.decode("utf-8", "surrogateescape").rstrip("\r\n")


def _split_csv(text: str) -> list[str] | None:
    """One CSV line's cells; None when its quoting is malformed (a value may not span lines). A value may be
    as long as its line: the csv module's limit (128 KiB, the process's) is raised for this line only."""
    limit = csv.field_size_limit(MAX_LINE_BYTES)
    try:
        return next(csv.reader((text,), strict=True), [])
    except csv.Error:
        return None
    finally:
        csv.field_size_limit(limit)


def _line_error(number: int, description: str, text: str | None) -> RowError:
    return RowError(number, (Violation("row", description),), {} if text is None else {RAW_LINE_KEY: _rows.clean(text)})


_OVERLONG = "line longer than 1 MiB"


def _read_csv(path: Path) -> Iterator[FileAction | RowError]:
    with path.open("rb") as stream:
        header: list[str] | None = None
        for number, text in _physical_lines(stream):
            if text is not None and not text.strip():
                continue
            cells = None if text is None else _split_csv(text)
            if text is None or cells is None:
                yield _line_error(number, _OVERLONG if text is None else "not a well-formed CSV line", text)
                if header is None:
                    return
                continue
            if header is None:
                header, problems = _rows.read_header(cells)
                if problems:
                    yield RowError(number, tuple(problems), {RAW_LINE_KEY: _rows.clean(text)})
                    return
                continue
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) < len(header) or any(cell.strip() for cell in cells[len(header) :]):
                yield _line_error(number, f"has {len(cells)} fields where the header has {len(header)}", text)
            else:
                yield parse_row(dict(zip(header, cells, strict=False)), number)


def _read_jsonl(path: Path) -> Iterator[FileAction | RowError]:
    with path.open("rb") as stream:
        for number, text in _physical_lines(stream):
            if text is None:
                yield _line_error(number, _OVERLONG, None)
                continue
            if not text.strip():
                continue
            try:
                value = _rows.load_json(text)
            except _rows.DuplicateKey:
                yield _line_error(number, "a JSON object names the same key twice", text)
                continue
            except ValueError:
                yield _line_error(number, "not valid JSON", text)
                continue
            if isinstance(value, dict):
                yield parse_row(value, number)
            else:
                yield _line_error(number, "not a JSON object", text)


# --- writing ---------------------------------------------------------------------------------------


def write_csv(rows: Iterable[Mapping[str, str]], path: str | os.PathLike[str], columns: Sequence[str] = COLUMNS) -> int:
    """Write rows under a header of `columns` (absent keys blank); the number of rows written.

    ValueError for a key not in `columns` (nothing is dropped silently) or a value holding a line break
    (the reader takes one row per line; JSONL can carry one)."""
    known = set(columns)
    count = 0
    with Path(path).open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            if not known.issuperset(row):
                raise ValueError("row has a column that is not in the header")
            values = [row.get(column, "") for column in columns]
            if any("\n" in value or "\r" in value for value in values):
                raise ValueError("a CSV value cannot hold a line break")
            writer.writerow(values)
            count += 1
    return count


def write_jsonl(rows: Iterable[Mapping[str, str]], path: str | os.PathLike[str]) -> int:
    """Write one JSON object per row, blank values left out; the number of rows written."""
    count = 0
    with Path(path).open("w", encoding="utf-8", newline="\n") as out:
        for row in rows:
            obj = {key: value for key, value in row.items() if value}
            out.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")
            count += 1
    return count
