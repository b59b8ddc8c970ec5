"""What the connectors' review found (connectors review 1, 3, 4, 5, 6), each on the real readers, the real
machinery against an in-process Ingest service over gRPC, or the real `python -m connectors`:
- bytes that are not UTF-8 make a dead letter naming the column, never a stored U+FFFD;
- a JSON line naming a key twice is a dead letter, as `dcii submit` makes it;
- a fixed-width value that does not fit stays in its column as read, so a reject entry resubmitted unfixed
  is refused again instead of storing a record without its date of birth or with another role;
- a file changed in place after a crash part-way through it has each refused record written once;
- a damaged checkpoint is one `error` line saying what to do, exit 2, no traceback.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest

from connectors.checkpoint import Checkpoint
from connectors.filedrop import process_file, read_csv, read_jsonl
from connectors.fixedwidth import read_fixed_width
from connectors.machinery import Backoff, Progress, Runner
from dcii.v1 import ingest_pb2_grpc
from tests.support import ROOT
from tests.test_connectors import person_row
from tests.test_connectors_machinery import Plain, Scripted
from tests.test_connectors_sources import fw

HEADER = list(person_row(0, 1))


def _csv(rows: list[dict[str, str]]) -> bytes:
    lines = [",".join(HEADER)] + [",".join(row.get(column, "") for column in HEADER) for row in rows]
    return ("\n".join(lines) + "\n").encode()


def test_a_cell_that_is_not_utf8_is_a_dead_letter_naming_its_column(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    body = _csv([person_row(1, 1), person_row(2, 1, surname="MUELLERX")])
    path.write_bytes(body.replace(b"MUELLERX", b"M\xfcller"))  # as a Latin-1 export writes it (0xFC)
    records = list(read_csv(path, "latin1.csv|1|1", 0))
    assert [r.request is not None for r in records] == [True, False]
    assert records[1].violations == (
        ("surname", "not valid Unicode text (a lone surrogate, or bytes that are not UTF-8)"),
    )
    fixed = tmp_path / "latin1.dat"
    line = fw("A", "O", "OC-LAT1", 1, year_indexed="2024", location="X field office", investigative_number="I-9")
    fixed.write_bytes(line.encode().replace(b"X field", b"M\xfcnchen field") + b"\n")
    [record] = list(read_fixed_width(fixed, "latin1.dat|1|1", 0))
    assert record.request is None and [field for field, _ in record.violations] == ["location"]
    assert "\ufffd" not in json.dumps(record.raw)


def test_bytes_that_are_not_utf8_inside_a_json_alias_list_are_a_dead_letter(tmp_path: Path) -> None:
    # Read with surrogateescape, they reached the alias's protobuf field and crashed the reader (the fuzzer).
    row = person_row(1, 1, aliases=[{"surname": "MUELLERX", "given_name": "DON"}])  # type: ignore[arg-type]
    path = tmp_path / "alias.jsonl"
    path.write_bytes(json.dumps(row).encode().replace(b"MUELLERX", b"M\xfcller") + b"\n")
    [record] = list(read_jsonl(path, "alias.jsonl|1|1", 0))
    assert record.request is None and [field for field, _ in record.violations] == ["aliases"]


def test_a_json_line_naming_a_key_twice_is_a_dead_letter(tmp_path: Path) -> None:
    path = tmp_path / "twice.jsonl"
    row = json.dumps(person_row(1, 1))
    path.write_text(row + "\n" + row[:-1] + ', "ssn": "212-09-4471"}\n')
    records = list(read_jsonl(path, "twice.jsonl|1|1", 0))
    assert records[0].request is not None and records[1].request is None
    assert records[1].violations == (("row", "line 2: a JSON object names the same key twice"),)


@pytest.mark.parametrize(
    ("field", "value", "column"),
    [
        ("date_of_birth", "1970AB12", "date_of_birth"),
        ("role", "W", "role"),
        ("pob_kind", "Z", "place_of_birth"),
    ],
)
def test_a_fixed_width_value_that_does_not_fit_stays_as_read_and_is_refused_again(
    tmp_path: Path, field: str, value: str, column: str
) -> None:
    file_fields = {"year_indexed": "2015", "custodian": "DSS", "file_number": "98-04417-PSI"}
    line = fw("A", "F", "FW-BAD", 1, **file_fields, **{field: value})
    path = tmp_path / "bad.dat"
    path.write_text(line + "\n")
    [record] = list(read_fixed_width(path, "bad.dat|1|1", 0))
    assert record.request is None and [f for f, _ in record.violations] == [column]  # named once
    assert value in record.raw[column]
    # Resubmitted as CONNECTORS.md says, without fixing it: the file drop refuses it again.
    entry = {k: v for k, v in record.raw.items() if k != "raw_line"}
    again = tmp_path / "again.jsonl"
    again.write_text(json.dumps(entry) + "\n")
    [resubmitted] = list(read_jsonl(again, "again.jsonl|1|1", 0))
    assert resubmitted.request is None and column in {f for f, _ in resubmitted.violations}


def _runner(tmp_path: Path, port: int) -> Runner:
    return Runner(
        lambda: Plain(grpc.insecure_channel(f"127.0.0.1:{port}")),
        Checkpoint(tmp_path / "state" / "checkpoint.json"),
        tmp_path / "state" / "rejects.jsonl",
        Progress("test", stream=open(os.devnull, "w")),
        chunk=4,
        backoff=Backoff(max_attempts=0, sleep=lambda _: None),
    )


def test_a_file_changed_after_a_crash_part_way_through_has_each_refusal_written_once(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    path = inbox / "a.jsonl"
    lines = [json.dumps(person_row(i, 1)) if i % 3 else "not json" for i in range(12)]  # 4 dead letters
    path.write_text("\n".join(lines) + "\n")
    # The index stops answering after the first stream (2 answers): the run ends part-way, as a crash would.
    servicer = Scripted([(grpc.StatusCode.INVALID_ARGUMENT, 2)])
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    ingest_pb2_grpc.add_IngestServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        first = _runner(tmp_path, port)
        with pytest.raises(grpc.RpcError):
            process_file(path, first, read_jsonl)
        written = (tmp_path / "state" / "rejects.jsonl").read_text().splitlines()
        assert 0 < len(written) < 4
        # The operator fixes nothing but touches the file (an edit of another row), then restarts.
        path.write_text(path.read_text() + "\n")
        second = _runner(tmp_path, port)
        assert process_file(path, second, read_jsonl)
    finally:
        server.stop(None)
    rejects = [json.loads(line)["raw_line"] for line in (tmp_path / "state" / "rejects.jsonl").read_text().splitlines()]
    assert rejects == ["not json"] * 4  # each of the 4 once, though the file was read again from its start
    assert Checkpoint(tmp_path / "state" / "checkpoint.json").position is None  # done: nothing to resume


@pytest.mark.parametrize("damaged", ['{"position": "a.csv|12', '{"rejects_size": null}', '{"rejects_size": "x"}'])
def test_a_damaged_checkpoint_is_one_error_line_and_exit_2(tmp_path: Path, damaged: str) -> None:
    state = tmp_path / "state"
    state.mkdir()
    (state / "checkpoint.json").write_text(damaged)
    profile = tmp_path / "profile.json"
    profile.write_text(json.dumps({"server": "localhost:1", "ca": "ca.pem", "cert": "c.pem", "key": "k.pem",
                                   "account_code": "x"}))  # fmt: skip
    (tmp_path / "inbox").mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "connectors", "filedrop", "--profile", str(profile), "--state", str(state),
         "--inbox", str(tmp_path / "inbox"), "--once"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    [line] = [json.loads(text) for text in done.stderr.splitlines() if text.startswith("{")]
    assert line["event"] == "error" and line["code"] == "CHECKPOINT" and "delete checkpoint.json" in line["details"]


class _Killed(BaseException):
    """The connector's process killed at this point (raised where the kill lands; nothing catches it)."""


@contextmanager
def _index_that_applies() -> Iterator[int]:
    """The port of an Ingest service that applies everything (`Scripted` with nothing scripted)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    ingest_pb2_grpc.add_IngestServiceServicer_to_server(Scripted([]), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield port
    finally:
        server.stop(None)


def _kill_at_the_move_to_done(monkeypatch: pytest.MonkeyPatch, *, after: bool) -> Callable[[], None]:
    """Make the connector die at its move of a file into done/ (before the rename, or just after it); the
    checkpoint's own atomic writes go on. Returns what puts the rename back."""
    real_replace = os.replace

    def replace_then_die(source: str | Path, target: str | Path) -> None:
        if Path(target).parent.name != "done":
            real_replace(source, target)
            return
        if after:
            real_replace(source, target)
        raise _Killed

    monkeypatch.setattr("connectors.filedrop.os.replace", replace_then_die)
    return lambda: monkeypatch.setattr("connectors.filedrop.os.replace", real_replace)


def _drop_file(inbox: Path, rows: int, bad: int, salt: str) -> Path:
    path = inbox / "a.jsonl"
    lines = [json.dumps(person_row(i, 1)) for i in range(rows)] + [f"not json {salt} {n}" for n in range(bad)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _rejects(tmp_path: Path) -> list[str]:
    lines = (tmp_path / "state" / "rejects.jsonl").read_text().splitlines()
    return [json.loads(line)["raw_line"] for line in lines]


@pytest.mark.parametrize("killed", ["before the move", "after the move"])
def test_a_kill_around_the_move_to_done_loses_no_reject_and_writes_none_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, killed: str
) -> None:
    """Killed after moving a finished file to done/ but before saving the checkpoint, the connector came back
    with the checkpoint naming that file as part-way through: the next file of the same name (a daily
    export) had the finished one's rejects cut back as its own. Killed before the move, it now finds the file
    finished and only moves it (its rejects not written again)."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with _index_that_applies() as port:
        first = _drop_file(inbox, rows=3, bad=2, salt="monday")
        revive = _kill_at_the_move_to_done(monkeypatch, after=killed == "after the move")
        with pytest.raises(_Killed):
            process_file(first, _runner(tmp_path, port), read_jsonl)
        revive()
        if killed == "before the move":
            assert process_file(first, _runner(tmp_path, port), read_jsonl)  # finished: moved, not read again
        second = _drop_file(inbox, rows=4, bad=1, salt="tuesday")  # the next export, under the same name
        assert process_file(second, _runner(tmp_path, port), read_jsonl)
    assert _rejects(tmp_path) == ["not json monday 0", "not json monday 1", "not json tuesday 0"]
    assert sorted(p.name for p in (inbox / "done").iterdir()) == ["a.1.jsonl", "a.jsonl"]
    assert Checkpoint(tmp_path / "state" / "checkpoint.json").position is None


def test_a_file_finished_but_not_moved_and_then_fixed_in_place_has_its_refusals_written_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Killed after its finish was noted but before its move, then fixed in place: the same file (inode),
    read again from its first line, its earlier rejects cut back first (second diff review 7: taken for a
    new file of the same name, they were kept and written again)."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with _index_that_applies() as port:
        path = inbox / "a.jsonl"
        path.write_text("\n".join([json.dumps(person_row(0, 1)), "not json 0", "not json 1"]) + "\n")
        revive = _kill_at_the_move_to_done(monkeypatch, after=False)
        with pytest.raises(_Killed):
            process_file(path, _runner(tmp_path, port), read_jsonl)
        revive()
        path.write_text("\n".join([json.dumps(person_row(0, 1)), json.dumps(person_row(1, 1)), "not json 1"]) + "\n")
        assert process_file(path, _runner(tmp_path, port), read_jsonl)
    assert _rejects(tmp_path) == ["not json 1"]
