"""Fuzz the tracing JSONL reader: `python -m fuzz.tracing_jsonl [-runs=N] [fuzz/corpus/tracing_jsonl]`."""

from __future__ import annotations

import atheris  # type: ignore[import-untyped]

with atheris.instrument_imports(include=["indexer", "fuzz"]):
    from fuzz.tracing_file import check_file

from fuzz.common import run


def test_one_input(data: bytes) -> None:
    check_file(data, ".jsonl")


if __name__ == "__main__":
    run(test_one_input)
