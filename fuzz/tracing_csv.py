"""Fuzz the tracing CSV reader: `python -m fuzz.tracing_csv [-runs=N] [fuzz/corpus/tracing_csv]`."""

from __future__ import annotations

import atheris  # type: ignore[import-untyped]

with atheris.instrument_imports(include=["indexer", "fuzz"]):
    from fuzz.tracing_file import check_file

from fuzz.common import run


def test_one_input(data: bytes) -> None:
    check_file(data, ".csv")


if __name__ == "__main__":
    run(test_one_input)
