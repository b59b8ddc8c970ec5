"""The tracing file format's files as a whole (indexer.fileformat, docs/TRACING_FORMAT.md;
tests/test_fileformat.py has the round trips): the CSV header, BOM and CRLF, invalid UTF-8, bad lines that do
not stop the good ones, overlong lines, empty files, a reject file fixed and resubmitted, writers that refuse
what would not read back, and hostile bytes (a property) giving row errors, never exceptions."""

from __future__ import annotations

import csv
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indexer import fileformat
from indexer.fileformat import (
    ERRORS_COLUMN,
    RAW_LINE_KEY,
    REJECT_COLUMNS,
    FileAction,
    RowError,
    action_to_row,
    read_actions,
    reject_row,
    write_csv,
    write_jsonl,
    write_rejects,
)
from indexer.model import FileDetails, TracingKey

# --- files: header, BOM, CRLF, invalid bytes, bad lines -------------------------------------------

HEADER = "action,type,agency,record_number,source_version,surname,given_name,date_of_birth,custodian"


def _csv_row(record: str, surname: str = "HARTWELL", dob: str = "1968-03-14") -> str:
    return f"UPSERT,FILE,DSS,{record},7,{surname},DONALD,{dob},DSS"


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _lines_and_kinds(results: list[FileAction | RowError]) -> list[tuple[int, str]]:
    return [(r.line, "ok" if isinstance(r, FileAction) else "error") for r in results]


def test_unknown_header_column_is_reported_once(tmp_path: Path) -> None:
    data = HEADER.replace("surname", "surnmae") + ",colour\n" + _csv_row("R-1") + ",red\n" + _csv_row("R-2") + ",b\n"
    results = list(read_actions(_write(tmp_path, "t.csv", data.encode())))
    assert len(results) == 1
    error = results[0]
    assert isinstance(error, RowError) and error.line == 1
    assert [(v.field, v.description) for v in error.violations] == [
        ("surnmae", "unknown column (did you mean surname?)"),
        ("header", "column 10 has an unknown name (not repeated here: it may be data)"),
    ]
    assert error.raw == {RAW_LINE_KEY: data.splitlines()[0]}


def test_headerless_csv_does_not_echo_its_first_row(tmp_path: Path) -> None:
    data = f"{_csv_row('R-1')},123-45-6789\n{_csv_row('R-2')},123-45-6789\n".encode()
    results = list(read_actions(_write(tmp_path, "t.csv", data)))
    assert len(results) == 1 and isinstance(results[0], RowError)
    said = " ".join(f"{v.field} {v.description}" for v in results[0].violations).lower()
    for value in ("hartwell", "donald", "1968", "123-45-6789", "r-1"):
        assert value not in said


def test_header_problems(tmp_path: Path) -> None:
    for header in ("action,type,type", "action,,type", "ac\xfftion,type"):
        data = (header + "\nUPSERT,FILE,FILE\n").encode("latin-1")
        results = list(read_actions(_write(tmp_path, "h.csv", data)))
        assert len(results) == 1 and isinstance(results[0], RowError), header
    # Trailing unnamed columns (a spreadsheet's habit) are dropped, and blank cells under them allowed.
    data = f"{HEADER},,\n{_csv_row('R-1')},,\n".encode()
    assert _lines_and_kinds(list(read_actions(_write(tmp_path, "t.csv", data)))) == [(2, "ok")]


def test_bom_and_crlf(tmp_path: Path) -> None:
    csv_data = ("\ufeff" + HEADER + "\r\n" + _csv_row("R-1") + "\r\n\r\n" + _csv_row("R-2") + "\r\n").encode()
    results = list(read_actions(_write(tmp_path, "t.csv", csv_data)))
    assert _lines_and_kinds(results) == [(2, "ok"), (4, "ok")]
    first = results[0]
    assert isinstance(first, FileAction) and first.tracing is not None
    assert first.tracing.details == FileDetails("DSS", 0, "")
    assert first.key == TracingKey("DSS", "R-1")
    jsonl = ("\ufeff" + '{"type": "FILE", "record_number": "R-1"}\r\n' + '{"type": "FILE"}\r\n').encode()
    results = list(read_actions(_write(tmp_path, "t.ndjson", jsonl)))
    assert _lines_and_kinds(results) == [(1, "ok"), (2, "ok")]


def test_invalid_utf8_line_is_a_row_error(tmp_path: Path) -> None:
    data = (
        (HEADER + "\n" + _csv_row("R-1") + "\n").encode()
        + _csv_row("R-2", surname="HART\xffWELL").encode("latin-1")
        + b"\n"
        + (_csv_row("R-3") + "\n").encode()
    )
    results = list(read_actions(_write(tmp_path, "t.csv", data)))
    assert _lines_and_kinds(results) == [(2, "ok"), (3, "error"), (4, "ok")]
    error = results[1]
    assert isinstance(error, RowError)
    assert [v.field for v in error.violations] == ["surname"]
    assert error.raw["surname"] == "HART\ufffdWELL"
    assert error.raw["record_number"] == "R-2"

    jsonl = b'{"type": "FILE"}\n{"type": "FILE", "surname": "HART\xc3WELL"}\n\xff\xfe{\n{"type": "FILE"}\n'
    results = list(read_actions(_write(tmp_path, "t.jsonl", jsonl)))
    assert _lines_and_kinds(results) == [(1, "ok"), (2, "error"), (3, "error"), (4, "ok")]
    assert isinstance(results[1], RowError) and results[1].violations[0].field == "surname"
    # A lone surrogate escaped in JSON is not text either.
    results = list(read_actions(_write(tmp_path, "u.jsonl", b'{"type": "FILE", "given_name": "A\\ud800"}\n')))
    assert isinstance(results[0], RowError) and results[0].violations[0].field == "given_name"
    json.dumps(results[0].raw, ensure_ascii=False).encode("utf-8")


def test_bad_rows_do_not_stop_the_good_ones(tmp_path: Path) -> None:
    csv_lines = [
        HEADER,
        _csv_row("R-1"),
        'UPSERT,FILE,DSS,"R-2,7,HARTWELL',  # unterminated quote: that line only
        _csv_row("R-3", dob="03/14/1968"),
        "UPSERT,FILE,DSS",  # too few fields
        _csv_row("R-5") + ",EXTRA",  # too many
        'UPSERT,FILE,DSS,"R-6"x,7,A,B,1968,DSS',  # text after a closing quote
        ",,,,,,,,",  # an empty row is skipped
        _csv_row("R-8"),
    ]
    results = list(read_actions(_write(tmp_path, "t.csv", "\n".join(csv_lines).encode())))
    assert _lines_and_kinds(results) == [(2, "ok"), (3, "error"), (4, "error"), (5, "error"), (6, "error"),
                                         (7, "error"), (9, "ok")]  # fmt: skip
    assert isinstance(results[1], RowError) and results[1].raw == {RAW_LINE_KEY: csv_lines[2]}
    jsonl_lines = [
        '{"type": "FILE", "record_number": "R-1"}',
        '{"type": "FILE", "record_number": ',
        '["not", "an", "object"]',
        "[" * 100_000 + "]" * 100_000,
        '{"type": "FILE", "type": "CLEARANCE"}',
        '{"type": "FILE", "Type": "CLEARANCE"}',
        "NaN",
        '{"type": "FILE", "record_number": "R-8"}',
    ]
    results = list(read_actions(_write(tmp_path, "t.jsonl", "\n".join(jsonl_lines).encode())))
    assert _lines_and_kinds(results) == [(1, "ok"), *((n, "error") for n in range(2, 8)), (8, "ok")]


def test_overlong_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fileformat, "MAX_LINE_BYTES", 200)
    data = f"{HEADER}\n{_csv_row('R-1')}\n{_csv_row('R-2', surname='X' * 5000)}\n{_csv_row('R-3')}\n".encode()
    results = list(read_actions(_write(tmp_path, "t.csv", data)))
    assert _lines_and_kinds(results) == [(2, "ok"), (3, "error"), (4, "ok")]
    jsonl = b'{"type": "FILE"}\n{"surname": "' + b"X" * 5000 + b'"}\n{"type": "FILE"}'
    results = list(read_actions(_write(tmp_path, "t.jsonl", jsonl)))
    assert _lines_and_kinds(results) == [(1, "ok"), (2, "error"), (3, "ok")]


def test_empty_files_and_unknown_extension(tmp_path: Path) -> None:
    assert list(read_actions(_write(tmp_path, "e.csv", b""))) == []
    assert list(read_actions(_write(tmp_path, "h.csv", (HEADER + "\n\n").encode()))) == []
    assert list(read_actions(_write(tmp_path, "e.jsonl", b"\n  \n"))) == []
    with pytest.raises(ValueError, match="must end in"):
        read_actions(tmp_path / "tracings.xlsx")


def test_reject_file_can_be_fixed_and_resubmitted(tmp_path: Path) -> None:
    lines = [HEADER, _csv_row("R-1"), _csv_row("R-2", dob="14/03/1968"), 'UPSERT,FILE,"DSS', _csv_row("R-4")]
    results = list(read_actions(_write(tmp_path, "in.csv", "\n".join(lines).encode())))
    errors = [r for r in results if isinstance(r, RowError)]
    assert reject_row(errors[0])[ERRORS_COLUMN] == "line 3: date_of_birth: not a date (YYYY, YYYY-MM or YYYY-MM-DD)"
    assert write_rejects(errors, tmp_path / "rejects.csv") == 2
    text = (tmp_path / "rejects.csv").read_text(encoding="utf-8")
    assert text.splitlines()[0] == ",".join(REJECT_COLUMNS)
    # The operator fixes the date, rewrites the unsplittable line into its columns, and resubmits.
    with (tmp_path / "rejects.csv").open(encoding="utf-8", newline="") as stream:
        rejected = list(csv.DictReader(stream))
    assert rejected[1][RAW_LINE_KEY] == 'UPSERT,FILE,"DSS'
    rejected[0]["date_of_birth"] = "1968-03-14"
    rejected[1].update(action="UPSERT", type="FILE", agency="DSS", record_number="R-3")
    write_csv(rejected, tmp_path / "fixed.csv", REJECT_COLUMNS)
    again = list(read_actions(tmp_path / "fixed.csv"))
    assert [(r.line, r.key.record_number) for r in again if isinstance(r, FileAction)] == [(2, "R-2"), (3, "R-3")]

    jsonl = b'{"type": "FILE", "date_of_birth": "1968/03/14"}\n{"type": \n'
    errors = [r for r in read_actions(_write(tmp_path, "in.jsonl", jsonl)) if isinstance(r, RowError)]
    assert write_rejects(errors, tmp_path / "rejects.jsonl") == 2
    written = [json.loads(line) for line in (tmp_path / "rejects.jsonl").read_text(encoding="utf-8").splitlines()]
    assert written[0] == {"type": "FILE", "date_of_birth": "1968/03/14", ERRORS_COLUMN: written[0][ERRORS_COLUMN]}
    assert written[1][RAW_LINE_KEY] == '{"type": '
    with pytest.raises(ValueError, match="must end in"):
        write_rejects(errors, tmp_path / "rejects.txt")


def test_writers_refuse_what_would_not_read_back(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not in the header"):
        write_csv([{"colour": "red"}], tmp_path / "x.csv")
    with pytest.raises(ValueError, match="line break"):
        write_csv([{"surname": "A\nB"}], tmp_path / "x.csv")
    assert write_jsonl([{"surname": "A\nB", "given_name": ""}], tmp_path / "x.jsonl") == 1
    assert (tmp_path / "x.jsonl").read_text(encoding="utf-8") == '{"surname":"A\\nB"}\n'


# --- hostile bytes (a property) --------------------------------------------------------------------


_GOOD_LINES = [
    HEADER.encode(),
    _csv_row("R-1").encode(),
    b'{"type": "FILE", "aliases": [{"surname": "A"}], "place_of_birth": {"country": "DE"}}',
    b'UPSERT,NAC_HISTORY,DSS,R,1,"A, B",C,1970,"[""FBI""]"',
]
_fragments = st.one_of(
    st.binary(max_size=60),
    st.sampled_from(_GOOD_LINES),
    st.sampled_from(_GOOD_LINES).flatmap(
        lambda line: st.binary(max_size=8).map(lambda junk: line[:20] + junk + line[20:])
    ),
    st.sampled_from([b'"', b",", b"\xef\xbb\xbf", b"\r", b"\x00", b"[{", b"\\ud800", b"\xed\xa0\x80", b'"\\u0000"']),
)


def _results(data: bytes, suffix: str) -> Iterator[FileAction | RowError]:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / f"fuzz{suffix}"
        path.write_bytes(data)
        yield from read_actions(path)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(_fragments, max_size=12),
    st.sampled_from([b"\n", b"\r\n", b""]),
    st.sampled_from([".csv", ".jsonl"]),
)
def test_hostile_bytes_give_row_errors_never_exceptions(fragments: list[bytes], sep: bytes, suffix: str) -> None:
    data = (_GOOD_LINES[0] + b"\n" if suffix == ".csv" else b"") + sep.join(fragments)
    for result in _results(data, suffix):
        assert isinstance(result, FileAction | RowError)
        if isinstance(result, RowError):
            assert result.violations
            json.dumps(result.raw, ensure_ascii=False).encode("utf-8")
        else:
            json.dumps(action_to_row(result), ensure_ascii=False).encode("utf-8")
