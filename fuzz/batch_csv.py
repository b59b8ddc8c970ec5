"""Fuzz the batch request CSV reader of `dcii batch submit` (dcii.cli.batch.read_queries):
`python -m fuzz.batch_csv [-runs=N] [fuzz/corpus/batch_csv]`.

Documented: every row becomes a BatchQuery, or the command stops before sending anything with a message
naming the bad cells (SystemExit carrying text). Checked: nothing else escapes, every query serializes,
and the message of a refusal is text.
"""

from __future__ import annotations

import csv

import atheris  # type: ignore[import-untyped]

with atheris.instrument_imports(include=["dcii.cli.batch", "fuzz"]):
    from dcii.cli.batch import read_queries

from fuzz.common import known_bugs, run, scratch

# Reported, not yet fixed (dcii/cli/batch.py): undecodable bytes, and a cell over the csv module's size
# limit, escape as UnicodeDecodeError / csv.Error instead of the documented SystemExit. Pinned by strict
# xfails in tests/test_fuzz_parsers.py; DCII_FUZZ_STRICT=1 fuzzes without this allowance.
KNOWN = known_bugs(UnicodeDecodeError, csv.Error)


def test_one_input(data: bytes) -> None:
    path = scratch(".csv")
    path.write_bytes(data)
    try:
        queries = read_queries(path)
    except KNOWN:
        return
    except SystemExit as refused:
        assert isinstance(refused.code, str) and refused.code, refused.code
        return
    for query in queries:
        query.SerializeToString()


if __name__ == "__main__":
    run(test_one_input)
