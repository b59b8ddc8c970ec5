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
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import unquote, urlsplit, urlunsplit

from connectors.machinery import Runner, SourceRecord, unreadable
from connectors.rows import COLUMNS, raw_of, to_request

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?")
_WHOLE = re.compile(r"\s*[+-]?[0-9]+\s*")
_INTEGERS = frozenset({"source_version", "year_indexed"})
_DELETE_KEEPS = ("agency", "record_number", "source_version", "delete_reason")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def quote(name: str) -> str:
    if not _IDENTIFIER.fullmatch(name):
        raise SystemExit(f"not a plain SQL identifier: {name!r}")
    return ".".join(f'"{part}"' for part in name.split("."))


def shown(dsn: str) -> str:
    """The DSN as a message may show it: a postgresql:// DSN's password (in it, or as ?password=) masked."""
    if not dsn.startswith(("postgresql://", "postgres://")):
        return dsn
    parts = urlsplit(dsn)
    user, at, host = parts.netloc.rpartition("@")
    if at and ":" in user:
        user = user.split(":", 1)[0] + ":***"
    query = "&".join(
        f"{name}=***" if unquote(name).strip().lower() == "password" else f"{name}{sep}{value}"
        for name, sep, value in (item.partition("=") for item in parts.query.split("&") if item)
    )
    return urlunsplit(parts._replace(netloc=f"{user}{at}{host}", query=query))


def _secrets(dsn: str) -> list[str]:
    """The password as written in the DSN and as decoded: a driver's message may quote either."""
    parts = urlsplit(dsn)
    found = [parts.netloc.rpartition("@")[0].partition(":")[2]]
    found += [v for n, _, v in (i.partition("=") for i in parts.query.split("&")) if unquote(n).lower() == "password"]
    return [text for secret in found for text in {secret, unquote(secret)} if text]


def connect(dsn: str) -> tuple[Any, str, type[Exception]]:
    """A DB-API connection (autocommit, so each poll sees new commits), its parameter marker, and the error
    its driver raises for a missing table or column. A DSN that cannot be opened ends the connector with
    one line naming it (its password masked)."""
    if dsn.startswith(("postgresql://", "postgres://")):
        try:
            psycopg = importlib.import_module("psycopg")  # optional: pip install 'psycopg[binary]'
        except ImportError:
            raise SystemExit(
                f"connector: --dsn {shown(dsn)}: PostgreSQL needs psycopg 3: pip install 'psycopg[binary]'"
            ) from None
        try:
            return psycopg.connect(dsn, autocommit=True), "%s", psycopg.Error
        except psycopg.Error as error:  # libpq's words about the connection: a server, a user, never a row
            said = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            for secret in _secrets(dsn):  # libpq quotes a malformed part of the DSN, the password too
                said = said.replace(secret, "***")
            raise SystemExit(f"connector: --dsn {shown(dsn)}: cannot connect: {said}") from None
    path = Path(dsn.removeprefix("sqlite:///") if dsn.startswith("sqlite:///") else dsn)
    # Read-only, as a URI: sqlite3.connect(path) creates a missing file, and a mistyped --dsn then ran against
    # an empty database, failing on "no such table" with a new file left behind (UAT M6).
    if not path.is_file():
        raise SystemExit(f"connector: --dsn {dsn}: no such SQLite file (the connector never creates one)")
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
    except sqlite3.OperationalError as error:  # sqlite's words about the file: "unable to open database file"
        raise SystemExit(f"connector: --dsn {dsn}: cannot open it: {error}") from None
    # A TEXT cell need not hold UTF-8 (a Latin-1 load, a cast blob). Decoded strictly, one such cell fails the
    # whole page, and sqlite3's error quotes the value (a name, an SSN). Its bad bytes become lone surrogates
    # instead, and the row is refused on its own like any other text no protobuf string can hold.
    connection.text_factory = lambda data: data.decode("utf-8", "surrogateescape")
    return connection, "?", sqlite3.OperationalError


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
        version_offset: int = 0,
    ) -> None:
        self.connection, self.marker, missing = connect(dsn)
        self.table, self.page, self.version_offset = quote(table), page, version_offset
        quote(change_column), quote(key_column), quote(deleted_column)
        cursor = self.connection.cursor()
        try:
            cursor.execute(f"SELECT * FROM {self.table} WHERE 1 = 0")  # noqa: S608 - identifiers checked above
        except missing as error:  # no row is read: the driver's words name the table, never a value
            said = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise SystemExit(f"connector: --table {table} in --dsn {shown(dsn)}: {said}") from None
        self.columns = [str(d[0]) for d in cursor.description]
        cursor.close()
        where = f"table {table} (its columns: {', '.join(self.columns)})"
        self.change = self._column(change_column) or _refuse(
            f"--change-column {change_column}: {where} has no such column"
        )
        self.key = self._column(key_column) or _refuse(f"--key-column {key_column}: {where} has no such column")
        self.deleted = self._column(deleted_column)
        asked: dict[str, str] = {}
        for given, db_column in (mapping or {}).items():  # the operator's words: a typo in either is refused
            column = given.strip().lower()  # matched as the file format's headers are
            if column not in COLUMNS:
                _refuse(f"--map {given}={db_column}: {given} is not a tracing column (docs/TRACING_FORMAT.md)")
            found = self._column(db_column)
            if found is None:
                _refuse(f"--map {given}={db_column}: {where} has no column {db_column}")
            asked[column] = found
        self.mapped: dict[str, str] = {}
        for column in COLUMNS:  # in the format's order; the rest by their own names
            found = asked[column] if column in asked else self._column(column)
            if found is not None:
                self.mapped[column] = found

    def _column(self, name: str) -> str | None:
        """The table's column of this name: as written, else the one that differs only in case (SQLite
        keeps a column's declared case; PostgreSQL folds an unquoted one to lower case)."""
        if name in self.columns:
            return name
        alike = [c for c in self.columns if c.lower() == name.lower()]
        return alike[0] if len(alike) == 1 else None

    def check_columns(self, log: Callable[..., None]) -> None:
        """Refuse a table no feed can run from, and log which tracing columns come from which database
        columns: a forgotten --map (surname=last_name) silently indexed every person under the given name
        alone, and a misspelt one every tracing without its SSN (UAT H1)."""
        absent = [c for c in COLUMNS if c not in self.mapped]
        for column in ("type", "agency", "record_number"):
            if column in absent:
                _refuse(f"the table has no {column} column: name it with --map {column}=DBCOLUMN")
        # No surname column at all: every person would be indexed by the given name alone. Only a table of
        # impersonal titles (a title, no person names) has none.
        if "surname" in absent and ("given_name" in self.mapped or "title" not in self.mapped):
            _refuse("the table has no surname column: name it with --map surname=DBCOLUMN")
        log(
            "columns",
            read=self.mapped,
            absent=absent,
            change_column=self.change,
            key_column=self.key,
            deleted_column=self.deleted,
            source_version="source_version" if "source_version" in self.mapped else f"change column {self.change}",
            version_offset=self.version_offset,
        )

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
        if self.version_offset:
            row["source_version"] = _offset(row["source_version"], self.version_offset)
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


def _offset(version: object, offset: int) -> object:
    """A source version raised by `offset`. Every version raised alike keeps their order; above what the index
    holds, a row read again after a corrected --map is stored again instead of answered UNCHANGED."""
    if isinstance(version, int):
        return version + offset
    if isinstance(version, str) and _WHOLE.fullmatch(version):
        return int(version) + offset
    return version  # not a number: the row is refused for it, as without an offset


def _refuse(message: str) -> NoReturn:
    raise SystemExit(f"connector: {message}")


def run_sql(source: SqlSource, runner: Runner, *, once: bool, poll: float = 5.0) -> None:
    source.check_columns(runner.progress.log)
    while True:
        runner.run(source.read)
        if once:
            return
        time.sleep(poll)
