"""SQL repository: polls a table by a change column (a sequence or an updated timestamp).

Rows are read in (change column, key column) order, a page at a time, after the high-water mark
(change value, key): rows sharing one timestamp are neither skipped nor read twice. Columns are named
as the tracing format's (docs/TRACING_FORMAT.md) unless mapped; a true `deleted` column makes the
row a DELETE. SQLite through sqlite3, PostgreSQL (postgresql:// DSNs) through psycopg 3.
"""

from __future__ import annotations

import datetime as dt
import decimal
import importlib
import json
import math
import re
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from connectors.machinery import Runner, SourceRecord, unreadable
from connectors.rows import COLUMNS, raw_of, to_request

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")
_INTEGERS = frozenset({"source_version", "year_indexed"})
_DELETE_KEEPS = ("agency", "record_number", "source_version", "delete_reason")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def quote(name: str) -> str:
    if not _IDENTIFIER.fullmatch(name):
        raise SystemExit(f"not a plain SQL identifier: {name!r}")
    return ".".join(f'"{part}"' for part in name.split("."))


def connect(dsn: str) -> tuple[Any, str]:
    """A DB-API connection (autocommit, so each poll sees new commits) and its parameter marker."""
    if dsn.startswith(("postgresql://", "postgres://")):
        psycopg = importlib.import_module("psycopg")  # optional: pip install 'psycopg[binary]'
        return psycopg.connect(dsn, autocommit=True), "%s"
    path = dsn.removeprefix("sqlite:///") if dsn.startswith("sqlite:///") else dsn
    connection = sqlite3.connect(path, isolation_level=None)
    # A TEXT cell need not hold UTF-8 (a Latin-1 load, a cast blob). Decoded strictly, one such cell fails the
    # whole page, and sqlite3's error quotes the value (a name, an SSN). Its bad bytes become lone surrogates
    # instead, and the row is refused on its own like any other text no protobuf string can hold.
    connection.text_factory = lambda data: data.decode("utf-8", "surrogateescape")
    return connection, "?"


# A position is JSON: change and key values of other types are tagged, and given back to the driver as such.
_TAGGED: tuple[tuple[type, str, Callable[[str], object]], ...] = (
    (dt.datetime, "datetime", dt.datetime.fromisoformat),  # before date: a datetime is a date too
    (dt.date, "date", dt.date.fromisoformat),
    (dt.time, "time", dt.time.fromisoformat),
    (decimal.Decimal, "decimal", decimal.Decimal),
    (uuid.UUID, "uuid", uuid.UUID),  # PostgreSQL's uuid keys
    (bytes, "hex", bytes.fromhex),
)
_UNTAG = {tag: parse for _, tag, parse in _TAGGED}


def _encode(value: object) -> object:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, bytearray | memoryview):
        value = bytes(value)
    for kind, tag, _ in _TAGGED:
        if isinstance(value, kind):
            text = value.hex() if isinstance(value, bytes) else str(value)
            return {tag: value.isoformat() if isinstance(value, dt.date | dt.time) else text}
    # Refused at the first row rather than guessed: a wrong position would skip rows or read them again.
    raise SystemExit(f"the change or key column holds {type(value).__name__} values, which no position can keep")


def _decode(value: object) -> object:
    if isinstance(value, dict):
        [(tag, text)] = value.items()
        return _UNTAG[tag](text)
    return value


def _cell(column: str, value: object) -> object:
    """A database value as the tracing format's cell (None: absent)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, decimal.Decimal) and value.is_finite() and value == value.to_integral_value():
        value = int(value)
    if isinstance(value, bytes | bytearray | memoryview):
        value = bytes(value).decode("utf-8", "surrogateescape")  # bad bytes refused by the row, as in text
    if isinstance(value, int):
        return value if column in _INTEGERS else str(value)
    return str(value)


def _version_of(change: object) -> int | None:
    """A source version from the change value: a sequence as is, a timestamp in microseconds."""
    if isinstance(change, int) and not isinstance(change, bool):
        return change
    if isinstance(change, str):
        try:
            change = dt.datetime.fromisoformat(change)
        except ValueError:
            return None
    if isinstance(change, dt.datetime):
        aware = change if change.tzinfo else change.replace(tzinfo=dt.UTC)
        return (aware - _EPOCH) // dt.timedelta(microseconds=1)
    return None


class SqlSource:
    def __init__(
        self,
        dsn: str,
        table: str,
        change_column: str,
        *,
        key_column: str = "id",
        deleted_column: str = "deleted",
        mapping: Mapping[str, str] | None = None,
        page: int = 1000,
    ) -> None:
        self.connection, self.marker = connect(dsn)
        self.table, self.change, self.key, self.page = quote(table), change_column, key_column, page
        quote(change_column), quote(key_column), quote(deleted_column)
        cursor = self.connection.cursor()
        cursor.execute(f"SELECT * FROM {self.table} WHERE 1 = 0")  # noqa: S608 - identifiers checked above
        self.columns = [str(d[0]) for d in cursor.description]
        for needed in (change_column, key_column):
            if needed not in self.columns:
                raise SystemExit(f"the table has no column {needed}")
        self.deleted = deleted_column if deleted_column in self.columns else None
        mapping = dict(mapping or {})
        self.mapped = {c: mapping.get(c, c) for c in COLUMNS if mapping.get(c, c) in self.columns}

    def close(self) -> None:
        self.connection.close()

    def read(self, after: str | None) -> Iterator[SourceRecord]:
        mark = tuple(_decode(v) for v in json.loads(after)) if after else None
        change, key, m = quote(self.change), quote(self.key), self.marker
        while True:
            where, params = f"{change} IS NOT NULL", []
            if mark is not None:
                where += f" AND ({change} > {m} OR ({change} = {m} AND {key} > {m}))"
                params = [mark[0], mark[0], mark[1]]
            cursor = self.connection.cursor()
            cursor.execute(
                f"SELECT * FROM {self.table} WHERE {where} ORDER BY {change}, {key} LIMIT {int(self.page)}",  # noqa: S608
                params,
            )
            rows = cursor.fetchall()
            cursor.close()
            for values in rows:
                record = dict(zip(self.columns, values, strict=True))
                mark = (record[self.change], record[self.key])
                yield self._record(json.dumps([_encode(mark[0]), _encode(mark[1])]), record)
            if len(rows) < self.page:
                return

    def _record(self, position: str, record: dict[str, object]) -> SourceRecord:
        row = {c: _cell(c, record[db]) for c, db in self.mapped.items()}
        if row.get("source_version") is None:
            row["source_version"] = _version_of(record[self.change])
        if self.deleted is not None:
            deletion = _deletion(record[self.deleted])
            if deletion is None:  # a guess either way could delete a live record from the index: refused
                return unreadable(position, raw_of(row), [("deleted", _NEITHER)])
            if deletion:
                row = {"action": "DELETE", **{c: row.get(c) for c in _DELETE_KEEPS}}
        row = {c: v for c, v in row.items() if v is not None}
        request = to_request(row)
        if isinstance(request, list):
            return unreadable(position, raw_of(row), request)
        return SourceRecord(position, request, raw_of(row))


_DELETED, _NOT_DELETED = frozenset({"1", "t", "true", "y", "yes"}), frozenset({"", "0", "f", "false", "n", "no"})
_NEITHER = "neither true nor false (1/0, true/false, t/f, yes/no, y/n, or empty)"


def _deletion(flag: object) -> bool | None:
    """Whether a `deleted` column's value marks the row deleted; None when it says neither."""
    if flag is None:
        return False
    if isinstance(flag, bool | int | float | decimal.Decimal):
        return bool(flag)
    if isinstance(flag, str):
        text = flag.strip().lower()
        return True if text in _DELETED else False if text in _NOT_DELETED else None
    return None


def run_sql(source: SqlSource, runner: Runner, *, once: bool, poll: float = 5.0) -> None:
    while True:
        runner.run(source.read)
        if once:
            return
        time.sleep(poll)
