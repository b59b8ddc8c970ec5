"""Fuzz the batch request CSV reader of `dcii batch submit` (dcii.cli.batch_csv.read_queries):
`python -m fuzz.batch_csv [-runs=N] [fuzz/corpus/batch_csv]`.

Documented: every row becomes a BatchQuery, or the command stops before sending anything with a message
naming the bad cells (SystemExit carrying text). Checked: nothing else escapes, every query serializes,
and the message of a refusal is text.
"""

from __future__ import annotations

import atheris  # type: ignore[import-untyped]

with atheris.instrument_imports(include=["dcii.cli.batch_csv", "fuzz"]):
    from dcii.cli.batch_csv import read_queries

from fuzz.common import run, scratch


def test_one_input(data: bytes) -> None:
    path = scratch(".csv")
    path.write_bytes(data)
    try:
        queries = read_queries(path)
    except SystemExit as refused:
        assert isinstance(refused.code, str) and refused.code, refused.code
        return
    for query in queries:
        query.SerializeToString()


if __name__ == "__main__":
    run(test_one_input)
