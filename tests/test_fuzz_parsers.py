"""Coverage-guided fuzzing (atheris) of every parser that takes outside bytes, and the bugs it found.

Each harness in fuzz/ runs in its own process (libFuzzer exits when done) from its seed corpus, for a
bounded number of inputs: a short run here, a long one with `pytest -m slow`. A crash fails the test and
leaves the input that caused it (`python -m fuzz.NAME INPUT` replays it). Skipped only where atheris
cannot be imported (it is in the dev extra).

Below the runs, each bug the fuzzing found is kept as a plain regression test.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from connectors.filedrop import read_jsonl
from connectors.rows import to_request
from indexer.fileformat import RowError, read_actions, reject_row, write_csv
from tests.server_proc import record
from tests.support import ROOT

HARNESSES = ("tracing_csv", "tracing_jsonl", "fixed_width", "filedrop", "batch_csv")
SHORT_RUNS = 1500
LONG_RUNS = 100_000

needs_atheris = pytest.mark.skipif(importlib.util.find_spec("atheris") is None, reason="atheris is not installed")


def fuzz(harness: str, runs: int, work: Path) -> None:
    corpus = work / "corpus"  # new inputs go here, the checked-in seeds stay as they are
    corpus.mkdir(parents=True)
    command = [
        sys.executable,
        "-m",
        f"fuzz.{harness}",
        f"-runs={runs}",
        "-max_len=4096",
        "-seed=1",
        f"-artifact_prefix={work}/",
        str(corpus),
        str(ROOT / "fuzz" / "corpus" / harness),
    ]
    started = time.monotonic()
    # The harness's scratch directory (fuzz.common.scratch) goes under `work`, removed with it: libFuzzer ends
    # the process without running Python's exit handlers, so the harness cannot remove it itself.
    scratch_env = os.environ | {"TMPDIR": str(work)}
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=runs / 20 + 600, check=False, env=scratch_env
    )
    crashes = sorted(work.glob("crash-*")) + sorted(work.glob("timeout-*")) + sorted(work.glob("oom-*"))
    if done.returncode != 0 or crashes:
        # Keep the inputs where pytest's temporary directories do not get cleaned away, and show them.
        kept = Path(tempfile.gettempdir()) / "dcii-fuzz-crashes"
        kept.mkdir(exist_ok=True)
        shown = []
        for crash in crashes:
            shutil.copy(crash, kept / f"{harness}-{crash.name}")
            shown.append(f"{kept / f'{harness}-{crash.name}'}: {base64.b64encode(crash.read_bytes()).decode()}")
        raise AssertionError(
            f"{harness} crashed; replay: python -m fuzz.{harness} FILE\n" + "\n".join(shown) + done.stderr[-3000:]
        )
    assert f"Done {runs} runs" in done.stderr, done.stderr[-2000:]
    record(f"atheris: {harness}", trials=runs, lost=0, failed=0, seconds=round(time.monotonic() - started, 1))


@needs_atheris
@pytest.mark.parametrize("harness", HARNESSES)
def test_fuzz_briefly(harness: str, tmp_path: Path) -> None:
    fuzz(harness, SHORT_RUNS, tmp_path)


@needs_atheris
@pytest.mark.slow
@pytest.mark.parametrize("harness", HARNESSES)
def test_fuzz_long(harness: str, tmp_path: Path) -> None:
    fuzz(harness, int(os.environ.get("DCII_FUZZ_RUNS", LONG_RUNS)), tmp_path)


# ---- what the fuzzing found ----


def test_a_rejected_row_holding_a_line_break_can_be_written_to_a_csv_reject_file(tmp_path: Path) -> None:
    """fuzz/tracing_csv: a quoted cell holding a carriage return was kept in the RowError's raw row, and
    write_csv (what `dcii submit --rejects` uses) refused it with ValueError. Fixed in
    indexer/fileformat_rows.py (`clean` replaces line breaks with U+FFFD, as it does undecodable bytes)."""
    source = tmp_path / "in.csv"
    source.write_bytes(b'action,type,surname,given_name\nUPSERT,BOGUS,"HA\rDON",X\n')
    errors = [item for item in read_actions(source) if isinstance(item, RowError)]
    assert errors
    rows = [reject_row(error) for error in errors]
    assert write_csv(rows, tmp_path / "rejects.csv", columns=list(dict.fromkeys(c for r in rows for c in r))) == 1
    assert len(list(read_actions(tmp_path / "rejects.csv"))) == 1


@pytest.mark.parametrize("value", ["1968-00-14", "1968-0-1"])
def test_a_day_under_an_unknown_month_is_not_a_date(value: str, tmp_path: Path) -> None:
    """fuzz/tracing_jsonl (the long run): "1968-00-14" was read as a year with a day and no month, a value
    the writer cannot express (it wrote "1968"), so `parse_row(action_to_row(a)) != a`. Both readers now
    refuse it as they refuse any other malformed date (indexer/fileformat_rows.py, connectors/rows.py)."""
    path = tmp_path / "in.jsonl"
    row = {"type": "FILE", "agency": "NCIS", "record_number": "N-1", "source_version": 1, "surname": "DOE"}
    row |= {"given_name": "JOHN", "date_of_birth": value, "custodian": "NCIS", "file_number": "F-1"}
    path.write_text(json.dumps(row) + "\n")
    (error,) = list(read_actions(path))
    assert isinstance(error, RowError) and [v.field for v in error.violations] == ["date_of_birth"]
    assert to_request(row) == [("date_of_birth", "not a date (YYYY, YYYY-MM or YYYY-MM-DD)")]


def test_the_connector_survives_a_jsonl_line_nested_too_deeply(tmp_path: Path) -> None:
    """A hostile line of 5,000 nested brackets escaped read_jsonl as RecursionError, so the connector died on
    it at every restart. Fix: catch RecursionError beside ValueError (as indexer.fileformat_rows.load_json
    does) and make the line a dead letter."""
    path = tmp_path / "deep.jsonl"
    path.write_text("[" * 5000 + "\n" + '{"action": "DELETE"}\n')
    records = list(read_jsonl(path, "deep", 0))
    assert records[0].request is None and records[0].error


@pytest.mark.parametrize(
    "content",
    [b"query_id,surname\nq1,\xff\xfe\n", b'query_id,surname\nq1,"' + b"a" * 140_000 + b'"\n'],
    ids=["undecodable-bytes", "cell-over-csv-field-limit"],
)
def test_the_batch_csv_reader_refuses_bad_files_with_its_message(content: bytes, tmp_path: Path) -> None:
    """fuzz/batch_csv: undecodable bytes raised UnicodeDecodeError and a cell over 128 KiB csv.Error, both as
    tracebacks, where `dcii batch submit` promises a message naming the problem (SystemExit). Fix: in
    read_queries, catch UnicodeDecodeError and csv.Error around the reading loop and raise SystemExit with
    the line number (reader.line_num) and what was wrong."""
    from dcii.cli.batch_csv import read_queries

    path = tmp_path / "queries.csv"
    path.write_bytes(content)
    with pytest.raises(SystemExit) as refused:
        read_queries(path)
    assert isinstance(refused.value.code, str)


def test_the_seed_corpora_are_checked_in() -> None:
    for harness in HARNESSES:
        assert any((ROOT / "fuzz" / "corpus" / harness).iterdir()), harness
    assert shutil.which(sys.executable)
