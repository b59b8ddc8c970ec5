"""The connectors' readers on any input (hypothesis): no row can stop a connector.

A row a reader cannot turn into a request is a dead letter, and the rows after it flow (docs/CONNECTORS.md).
One row that raised out of a reader instead (a JSON string holding a lone surrogate did) left its chunk
unsent, the checkpoint where it was and every later file of the inbox waiting, on every restart. So for any
file content: each reader yields one record per non-blank line (a CSV header aside), each record either
a request that serializes or a dead letter with a reason, and the reject file takes every dead letter.
"""

from __future__ import annotations

import json
import os
import sqlite3
import string
import tempfile
from collections.abc import Iterator
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from connectors.checkpoint import Checkpoint
from connectors.filedrop import FileReader, Unreadable, read_csv, read_jsonl
from connectors.fixedwidth import RECORD_LENGTH, read_fixed_width
from connectors.machinery import DeadLetters, SourceRecord
from connectors.rows import COLUMNS
from connectors.sql import SqlSource

# Derandomized in CI (a failure there reproduces); random when run by hand.
SETTINGS = settings(
    max_examples=300,
    deadline=None,
    derandomize=bool(os.environ.get("CI")),
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Text as sources hold it: mostly plausible characters, now and then anything (a lone surrogate included).
_TEXT = st.one_of(
    st.text(string.ascii_letters + string.digits + " -,'./", max_size=20),
    st.text(max_size=12),
    st.sampled_from(["\ud800", "a\udfffb", "1981-02-03", "123-45-6789", "FILE", "DSS", "UPSERT", "DELETE", "X"]),
)


def _utf8(text: str) -> bool:
    return not any("\ud800" <= c <= "\udfff" for c in text)


_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True), _TEXT)
_VALUES = st.recursive(
    _SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3), max_leaves=6
)
_ROWS = st.dictionaries(st.one_of(st.sampled_from(COLUMNS), _TEXT), _VALUES, max_size=8)


def _read(reader: FileReader, path: Path, content: bytes) -> list[SourceRecord]:
    path.write_bytes(content)
    return list(reader(path, "f", 0))


def _check(records: list[SourceRecord], under: Path) -> None:
    tmp = Path(tempfile.mkdtemp(dir=under))  # a state folder of its own for each example
    letters = DeadLetters(tmp / "rejects.jsonl", Checkpoint(tmp / "checkpoint.json"))
    for record in records:
        assert record.position.startswith("f#")
        if record.request is not None:
            assert record.error is None
            record.request.SerializeToString()  # a string no protobuf field can hold would raise here
        else:
            assert record.error  # a dead letter says why
            letters.add(record.raw, record.violations or (("row", record.error),))
    letters.flush(Checkpoint(tmp / "checkpoint.json"))
    text = (tmp / "rejects.jsonl").read_text(encoding="utf-8") if letters.path.exists() else ""
    written = text.split("\n")[:-1]  # JSON lines: only "\n" ends one (a name may hold U+0085 or U+2028)
    assert len(written) == sum(r.request is None for r in records)
    assert all("errors" in json.loads(line) for line in written)


def _lines(rows: list[str]) -> Iterator[str]:
    for row in rows:
        yield row.replace("\r", " ").replace("\n", " ") + "\n"


@SETTINGS
@given(rows=st.lists(_ROWS, min_size=1, max_size=6))
def test_jsonl_reader_takes_any_object_row(tmp_path: Path, rows: list[dict[str, object]]) -> None:
    content = "".join(json.dumps(row) + "\n" for row in rows).encode()
    records = _read(read_jsonl, tmp_path / "in.jsonl", content)
    assert len(records) == len(rows)
    _check(records, tmp_path)


@SETTINGS
@given(content=st.binary(max_size=400))
@example(content=b"\x0b\x0b\x00")
def test_jsonl_and_fixed_width_readers_take_any_bytes(tmp_path: Path, content: bytes) -> None:
    # Lines as the readers take them, at b"\n" only: str.splitlines also breaks at \x0b, \x1c or \x85, and
    # so counted b"\x0b\x0b\x00", one line to a reader, as two blank lines and one more (a random run found it).
    filled = sum(bool(line.decode("utf-8", "replace").strip()) for line in content.split(b"\n"))
    for reader, name in ((read_jsonl, "in.jsonl"), (read_fixed_width, "in.dat")):
        records = _read(reader, tmp_path / name, content)
        assert len(records) <= filled + 1
        _check(records, tmp_path)


@SETTINGS
@given(
    header=st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=8, unique=True),
    cells=st.lists(st.lists(_TEXT, max_size=9), min_size=1, max_size=6),
)
def test_csv_reader_takes_any_cells(tmp_path: Path, header: list[str], cells: list[list[str]]) -> None:
    def quoted(cell: str) -> str:
        return '"' + cell.replace('"', '""') + '"' if any(c in cell for c in ',"\r\n') else cell

    rows = [",".join(quoted(c.replace("\r", " ").replace("\n", " ")) for c in row) for row in cells]
    content = "".join(_lines([",".join(header), *rows])).encode("utf-8", "surrogatepass")
    try:
        records = _read(read_csv, tmp_path / "in.csv", content)
    except Unreadable:  # only a header naming unknown columns: none here
        raise AssertionError("a header of known columns was refused") from None
    assert len(records) <= len(rows)
    _check(records, tmp_path)


@SETTINGS
@given(
    line=st.text(string.ascii_uppercase + string.digits + " -/", min_size=1, max_size=RECORD_LENGTH + 5),
    head=st.sampled_from(["AF", "AO", "AP", "AH", "AC", "CF", "DF", "XO", "XP", "Q"]),
)
def test_fixed_width_reader_takes_any_line(tmp_path: Path, line: str, head: str) -> None:
    records = _read(read_fixed_width, tmp_path / "in.dat", (head + line + "\n").encode())
    assert len(records) == 1
    _check(records, tmp_path)


_CELLS = st.one_of(
    st.none(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False), _TEXT.filter(_utf8), st.binary(max_size=8)
)


@SETTINGS
@given(
    columns=st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=8, unique=True),
    rows=st.lists(st.lists(_CELLS, min_size=9, max_size=9), min_size=1, max_size=5),
)
def test_sql_reader_takes_any_cells(tmp_path: Path, columns: list[str], rows: list[list[object]]) -> None:
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    path = folder / "repository.db"
    connection = sqlite3.connect(path, isolation_level=None)
    names = ", ".join(f'"{c}"' for c in columns)
    connection.execute(f"CREATE TABLE t (id INTEGER PRIMARY KEY, updated_at INTEGER, {names})")
    for n, cells in enumerate(rows):
        marks = ", ".join("?" * len(columns))
        connection.execute(f"INSERT INTO t VALUES (?, ?, {marks})", [n, n, *cells[: len(columns)]])
    connection.close()
    source = SqlSource(str(path), "t", "updated_at", page=2)
    try:
        records = [SourceRecord(f"f#{r.position}", r.request, r.raw, r.error, r.violations) for r in source.read(None)]
    finally:
        source.close()
    assert len(records) == len(rows)
    _check(records, folder)
