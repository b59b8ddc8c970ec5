"""Fuzz the connectors' own reader of tracing files (connectors.filedrop read_csv / read_jsonl, which turn
rows into IngestRequests with connectors.rows): `python -m fuzz.filedrop [-runs=N] [corpus dirs]`.

Documented: a row that cannot be read is a dead letter (a SourceRecord with no request, an error and its
violations), never a crash; a file whose CSV header cannot be read raises filedrop.Unreadable (the file
goes to failed/). The first input byte picks CSV or JSONL. Checked beyond that: a record with a request
holds a complete, serializable IngestRequest.
"""

from __future__ import annotations

import atheris  # type: ignore[import-untyped]

with atheris.instrument_imports(include=["connectors", "fuzz"]):
    from connectors.filedrop import Unreadable, read_csv, read_jsonl
    from connectors.machinery import SourceRecord

from fuzz.common import run, scratch


def check_record(record: SourceRecord) -> None:
    if record.request is None:
        assert record.error and record.violations, record
    else:
        assert record.error is None and record.request.WhichOneof("action") is not None, record
        record.request.SerializeToString()
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in record.raw.items())


def test_one_input(data: bytes) -> None:
    jsonl = bool(data[:1]) and data[0] & 1 == 1
    path = scratch(".jsonl" if jsonl else ".csv")
    path.write_bytes(data[1:])
    try:
        for record in (read_jsonl if jsonl else read_csv)(path, "fuzz", 0):
            check_record(record)
    except Unreadable as refused:
        assert not jsonl and str(refused), refused  # only a CSV header stops a whole file


if __name__ == "__main__":
    run(test_one_input)
