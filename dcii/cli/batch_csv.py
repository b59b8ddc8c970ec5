"""The CSV a `dcii batch submit` reads: one query a row, as a spreadsheet writes it (dcii.cli.batch's
docstring gives the columns); every cell this side can judge is judged before anything is sent."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from dcii.v1 import batch_pb2, search_pb2
from indexer.model import PartialDate

COLUMNS = (
    "query_id",
    "surname",
    "given_name",
    "middle_name",
    "suffix",
    "ssn",
    "date_of_birth",
    "place_of_birth",
    "mode",
    "purpose",
)
MODES = ("EXACT", "NAME_ONLY", "NONSTANDARD", "FUZZY", "PID_QUALIFIED")
SHOWN = 20  # problems listed before "... and N more"
MAX_FILE_BYTES = 64 * 1024 * 1024
_LINE_BREAK = re.compile(rb"\r\n|\r|\n")
PURPOSES = tuple(search_pb2.Purpose.keys()[1:])  # PURPOSE_UNSPECIFIED is none
_PURPOSES = frozenset(PURPOSES)


def asked_date(text: str) -> PartialDate:
    """A date of birth as a query gives it: YYYY, YYYY-MM or YYYY-MM-DD. A month or day written 00 is refused
    (ValueError): read as absent, it widened the query without a word (1952-04-00 met every day of April; an
    adjudicator's review); a partial date leaves the part out."""
    date = PartialDate.parse(text)
    parts = text.strip().split("-")
    if any(int(part) == 0 for part in parts[1:]):
        raise ValueError(f"a {'month' if int(parts[1]) == 0 else 'day'} of 00: leave it out for a partial date")
    return date


def parse_row(row: dict[str, str]) -> tuple[batch_pb2.BatchQuery, list[str]]:
    """One CSV row as a query, and what could not be read in it (column: why)."""
    cell = {k: (row.get(k) or "").strip() for k in COLUMNS}
    problems: list[str] = []
    query = batch_pb2.BatchQuery(query_id=cell["query_id"])
    if not cell["query_id"]:  # the server refused the whole batch for it, after this side let it through
        problems.append("query_id: blank (each query is named, 1 to 64 printable characters)")
    request = query.query
    request.name.surname, request.name.given_name = cell["surname"], cell["given_name"]
    request.name.middle_name, request.name.suffix = cell["middle_name"], cell["suffix"]
    mode = cell["mode"].upper().replace("-", "_")
    if mode in MODES:
        request.mode = search_pb2.SearchMode.Value(f"SEARCH_MODE_{mode}")
    elif mode:
        problems.append(f"mode: one of {', '.join(MODES)}")
    purpose = cell["purpose"].upper().replace("-", "_")
    if purpose and purpose != "UNSPECIFIED" and f"PURPOSE_{purpose}" in _PURPOSES:
        request.purpose = search_pb2.Purpose.Value(f"PURPOSE_{purpose}")
    elif purpose:
        problems.append(f"purpose: one of {', '.join(p.removeprefix('PURPOSE_') for p in PURPOSES)}")
    ids = request.identifiers
    ids.ssn = cell["ssn"]
    if cell["date_of_birth"]:
        try:
            dob = asked_date(cell["date_of_birth"])
            ids.date_of_birth.year, ids.date_of_birth.month, ids.date_of_birth.day = dob.year, dob.month, dob.day
        except ValueError as error:
            problems.append(f"date_of_birth: {error}")
    if cell["place_of_birth"]:
        place, _, city = cell["place_of_birth"].partition("/")
        if place.upper().startswith("US-"):
            ids.place_of_birth.us_state = place[3:]
        else:
            ids.place_of_birth.country = place
        ids.place_of_birth.city = city
    return query, problems


class _RowStarts:
    """The lines of a file, noting where the next CSV row starts: `reader.line_num` is where a row ends (a
    quoted cell may span lines), and blank lines before it are no part of it (diff review 7)."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self._number = 0
        self.start: int | None = None

    def __iter__(self) -> _RowStarts:
        return self

    def __next__(self) -> str:
        line = next(self._lines)
        self._number += 1
        if self.start is None and line.rstrip("\r\n"):
            self.start = self._number
        return line


def read_queries(path: Path) -> list[batch_pb2.BatchQuery]:
    """Every row of the CSV; exits (2) naming each unreadable cell by line, before anything is sent."""
    return read_queries_and_lines(path)[0]


def read_queries_and_lines(path: Path) -> tuple[list[batch_pb2.BatchQuery], list[int]]:
    """`read_queries`, and the file's line of each query (blank lines are skipped, and a quoted cell may
    span lines: query i is not on line i + 2), for naming the line of a refusal from the server.

    As a spreadsheet writes a CSV: the header's column names in any case, empty columns at its end, and
    rows whose every cell is empty are passed over; a column this command does not know is named and
    refused (a misspelt date_of_birth would otherwise be dropped without a word)."""
    queries: list[batch_pb2.BatchQuery] = []
    lines: list[int] = []
    problems: list[str] = []
    counted = _RowStarts(iter(io.StringIO(_utf8_text(path), newline="")))
    reader = csv.DictReader(counted)
    try:
        header = _header(path, reader.fieldnames)
        reader.fieldnames = header
        counted.start = None
        for row in reader:
            line = counted.start or reader.line_num
            counted.start = None
            beyond: list[str] = row.pop(None, None) or []  # type: ignore[assignment]  # cells past the header
            if not any((value or "").strip() for value in (*row.values(), *beyond)):
                continue  # a row of empty cells (a spreadsheet writes them for formatted empty rows)
            row_problems = ["a cell beyond the header's columns"] if any(v.strip() for v in beyond) else []
            query, cell_problems = parse_row(row)
            row_problems += cell_problems
            problems += [f"line {line}: {p}" for p in row_problems]
            queries.append(query)
            lines.append(line)
    except csv.Error as error:  # e.g. a cell over the csv module's field size limit, a stray NUL
        raise SystemExit(f"{path}: line {reader.line_num}: {error}; nothing was sent") from None
    if problems:
        shown = "\n  ".join(problems[:SHOWN])
        more = f"\n  ... and {len(problems) - SHOWN} more" if len(problems) > SHOWN else ""
        raise SystemExit(f"{path}: nothing was sent; fix these cells:\n  {shown}{more}")
    if not queries:
        raise SystemExit(f"{path}: no queries under the header; nothing was sent")
    return queries, lines


def _utf8_text(path: Path) -> str:
    """The file's text (a byte-order mark dropped), or an exit naming the first line that is not UTF-8: a
    decoder reading ahead of the CSV reader named a later line."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:  # read whole below: a file no batch can be is not read
            raise SystemExit(f"{path}: larger than a batch may be (100,000 queries, 64 MiB); nothing was sent")
        data = path.read_bytes()
    except OSError as error:
        raise SystemExit(f"{path}: {error.strerror or type(error).__name__}; nothing was sent") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = len(_LINE_BREAK.findall(data, 0, error.start)) + 1  # as the CSV reader counts: CR alone too
        raise SystemExit(f'{path}: line {line}: not UTF-8 text (save it as "CSV UTF-8"); nothing was sent') from None


def _header(path: Path, fieldnames: Sequence[str] | None) -> list[str]:
    """The column names, as COLUMNS spells them; an exit naming what is wrong with the header."""
    if not fieldnames:
        raise SystemExit(f"{path}: no header row (the columns: {', '.join(COLUMNS)}); nothing was sent")
    header = [name.strip().lower() for name in fieldnames]
    while header and not header[-1]:
        header.pop()  # empty columns at the end, as a spreadsheet may write them
    unknown = [name or "(an empty name)" for name in header if name not in COLUMNS]
    doubled = sorted({name for name in header if header.count(name) > 1 and name in COLUMNS})
    if "query_id" not in header or unknown or doubled:
        found = []
        if "query_id" not in header:
            found.append("no query_id column")
        if unknown:
            found.append(f"unknown columns {', '.join(unknown)}")
        if doubled:
            found.append(f"columns given twice: {', '.join(doubled)}")
        raise SystemExit(f"{path}: {'; '.join(found)} (the columns: {', '.join(COLUMNS)}); nothing was sent")
    return header
