"""Fuzz the fixed-width transaction reader (connectors.fixedwidth, docs/CONNECTORS.md):
`python -m fuzz.fixed_width [-runs=N] [fuzz/corpus/fixed_width]`.

Documented: a line that does not fit the layout is a dead letter (a SourceRecord with no request, an
error and its violations), never a crash. Checked here beyond that: a record with a request holds a
complete IngestRequest (one action set, serializable); `parse_line` on any text gives a row of text
cells whose columns the tracing format knows; and a row built by `compose` reads back as the values
it was made of.
"""

from __future__ import annotations

import atheris  # type: ignore[import-untyped]

with atheris.instrument_imports(include=["connectors", "fuzz"]):
    from connectors.fixedwidth import COMMON, RECORD_LENGTH, TYPE_FIELDS, compose, parse_line, read_fixed_width
    from connectors.machinery import SourceRecord
    from connectors.rows import COLUMNS

from fuzz.common import run, scratch

_KNOWN = set(COLUMNS)


def check_record(record: SourceRecord) -> None:
    if record.request is None:
        assert record.error and record.violations, record
        assert all(isinstance(f, str) and isinstance(d, str) and d for f, d in record.violations), record
    else:
        assert record.error is None and record.request.WhichOneof("action") is not None, record
        record.request.SerializeToString()
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in record.raw.items())


def check_compose(data: bytes) -> None:
    """Values cut from the input, written with `compose`, must parse back to the same cells."""
    provider = atheris.FuzzedDataProvider(data)
    code = provider.PickValueInList(sorted(TYPE_FIELDS))
    values = {"action": "A", "type": code}
    for name, first, last in (*COMMON[2:5], *TYPE_FIELDS[code][:2]):
        text = provider.ConsumeUnicodeNoSurrogates(last - first + 1).strip()
        if text and text.isprintable() and len(text) <= last - first + 1:
            values[name] = text
    line = compose(values)
    row, _problems = parse_line(line)
    for name in ("agency", "record_number", "source_version"):
        assert row.get(name, "") == values.get(name, ""), (name, values, row)


def test_one_input(data: bytes) -> None:
    path = scratch(".dat")
    path.write_bytes(data)
    for record in read_fixed_width(path, "fuzz", 0):
        check_record(record)
    text = data.decode("utf-8", "replace")
    row, problems = parse_line(text[: RECORD_LENGTH + 10])
    assert set(row) <= _KNOWN and all(isinstance(v, str) for v in row.values()), row
    assert all(isinstance(f, str) and d for f, d in problems)
    check_compose(data)


if __name__ == "__main__":
    run(test_one_input)
