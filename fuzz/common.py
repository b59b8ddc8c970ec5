"""What the atheris harnesses share: running one, and the scratch file a file parser reads.

A harness is a module with `test_one_input(data: bytes) -> None` that feeds the bytes to one parser and
checks the answer: valid objects, or the parser's documented error, never any other exception (atheris
reports an uncaught exception as a crash and saves the input). Run one:

    python -m fuzz.tracing_csv [libFuzzer flags] [corpus dirs]     # e.g. -runs=100000 fuzz/corpus/tracing_csv
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

CORPUS = Path(__file__).resolve().parent / "corpus"


_DIRECTORY: list[Path] = []


def scratch(suffix: str) -> Path:
    """A file in this process's own temporary directory, to write each input into."""
    if not _DIRECTORY:
        _DIRECTORY.append(Path(tempfile.mkdtemp(prefix="dcii-fuzz-")))
    return _DIRECTORY[0] / f"input{suffix}"


def run(test_one_input: Callable[[bytes], None], argv: list[str] | None = None) -> None:
    """Fuzz `test_one_input` with libFuzzer's command line (sys.argv by default); exits when done."""
    import atheris  # type: ignore[import-untyped]

    atheris.Setup(sys.argv if argv is None else argv, test_one_input)
    atheris.Fuzz()
