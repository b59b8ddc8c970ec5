"""The tracing file reader (indexer.fileformat, docs/TRACING_FORMAT.md) on arbitrary bytes.

Documented: no input makes `read_actions` raise; each row is a FileAction or a RowError. Checked here
beyond that:
- a FileAction is well formed (a tracing exactly when it is not a DELETE, `replaces` exactly for a
  COMPLETE) and survives the writer: `parse_row(action_to_row(a)) == a`;
- a RowError names at least one violation, and its row can be written to a reject file in both formats
  (`dcii submit --rejects` writes CSV) which reads back as one row per rejected row.
Used by fuzz.tracing_csv and fuzz.tracing_jsonl (instrumented there).
"""

from __future__ import annotations

from pathlib import Path

from fuzz.common import scratch
from indexer.fileformat import (
    REJECT_COLUMNS,
    ActionKind,
    FileAction,
    RowError,
    action_to_row,
    parse_row,
    read_actions,
    reject_row,
    write_csv,
    write_jsonl,
)


def check_action(item: FileAction) -> None:
    assert item.line >= 1 and isinstance(item.kind, ActionKind)
    assert (item.tracing is None) == (item.kind is ActionKind.DELETE), item
    assert (item.replaces is not None) == (item.kind is ActionKind.COMPLETE), item
    again = parse_row(action_to_row(item), item.line)
    assert again == item, (item, again)


def check_rejects(errors: list[RowError], suffix: str) -> None:
    rows = [reject_row(error) for error in errors]
    for error in errors:
        assert error.violations and all(v.field and v.description for v in error.violations), error
    columns = list(dict.fromkeys(column for row in rows for column in row))
    for form in (".csv", ".jsonl"):
        path = scratch(f".rejects{suffix}{form}")
        written = write_csv(rows, path, columns=columns) if form == ".csv" else write_jsonl(rows, path)
        assert written == len(rows)
        if form == ".jsonl" or set(columns) <= set(REJECT_COLUMNS):  # else the header's unknown column stops it
            assert sum(1 for _ in read_actions(path)) == len(rows), "a reject file does not read back row for row"
        path.unlink()


def check_file(data: bytes, suffix: str) -> None:
    path: Path = scratch(suffix)
    path.write_bytes(data)
    errors: list[RowError] = []
    for item in read_actions(path):
        if isinstance(item, RowError):
            errors.append(item)
        else:
            assert isinstance(item, FileAction), item
            check_action(item)
    check_rejects(errors, suffix)
