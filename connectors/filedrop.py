"""File drop: tracing files (CSV or JSONL, docs/TRACING_FORMAT.md) appearing in an inbox folder.

Each file is processed once, in name order, and moved to `done/` when every row has been answered
(or to `failed/` if it cannot be read at all). The checkpoint names the file (name, size, mtime) and
the last answered line, so a restarted connector finishes the file it was in before any other.
The inbox loop is shared with the fixed-width connector, which reads other file names.
"""

from __future__ import annotations

import codecs
import csv
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

from connectors.checkpoint import utc_now
from connectors.machinery import Runner, SourceRecord, Stats, unreadable
from connectors.rows import COLUMNS, IGNORED_COLUMNS, raw_of, to_request

MAX_LINE_BYTES = 1 << 20
# (path, identity, lines to skip) -> the file's records after that line.
FileReader = Callable[[Path, str, int], Iterator[SourceRecord]]


class Unreadable(Exception):
    """The file as a whole cannot be read (I/O error, a CSV header naming unknown columns)."""


def lines(path: Path) -> Iterator[tuple[int, str | None]]:
    """(line number, text without its line break); None for a line longer than MAX_LINE_BYTES."""
    try:
        with path.open("rb") as stream:
            number = 0
            while chunk := stream.readline(MAX_LINE_BYTES + 1):
                number += 1
                if number == 1 and chunk.startswith(codecs.BOM_UTF8):
                    chunk = chunk[len(codecs.BOM_UTF8) :]
                if len(chunk) > MAX_LINE_BYTES:
                    while chunk and not chunk.endswith(b"\n"):
                        chunk = stream.readline(MAX_LINE_BYTES)
                    yield number, None
                    continue
                # Bytes that are not UTF-8 become lone surrogates, which the row's reading refuses naming the
                # column (a dead letter, its bytes kept in the reject file): "replace" stored a Latin-1
                # "München" as "M\ufffdnchen", where `dcii submit` refuses the row.
                yield number, chunk.decode("utf-8", "surrogateescape").rstrip("\r\n")
    except OSError as error:
        raise Unreadable(f"cannot read: {error.strerror}") from error


def _record(identity: str, number: int, row: dict[str, object]) -> SourceRecord:
    position = f"{identity}#{number}"
    request = to_request(row)
    if isinstance(request, list):
        return unreadable(position, raw_of(row), request, line=number)
    return SourceRecord(position, request, raw_of(row), line=number)


def _bad_line(identity: str, number: int, text: str | None, why: str) -> SourceRecord:
    raw = {"raw_line": text} if text is not None else {}
    return unreadable(f"{identity}#{number}", raw, [("row", f"line {number}: {why}")], line=number)


def read_csv(path: Path, identity: str, skip: int) -> Iterator[SourceRecord]:
    header: list[str] | None = None
    for number, text in lines(path):
        if text is not None and not text.strip():
            continue
        cells = None if text is None else _cells(text)
        if header is None:
            if cells is None:
                raise Unreadable("the CSV header line is not well-formed")
            header = _header(cells)
            continue
        if number <= skip:
            continue
        if cells is None:
            yield _bad_line(
                identity, number, text, "longer than 1 MiB" if text is None else "not a well-formed CSV line"
            )
        elif any(cell.strip() for cell in cells[len(header) :]) or len(cells) < len(header):
            yield _bad_line(identity, number, text, f"has {len(cells)} fields where the header has {len(header)}")
        elif any(cell.strip() for cell in cells):
            yield _record(identity, number, dict(zip(header, cells, strict=False)))


def _cells(text: str) -> list[str] | None:
    """One CSV line's cells; None when its quoting is malformed. A cell may be as long as its line: at the
    csv module's limit (128 KiB) a well-formed line with a longer cell was "not a well-formed CSV line",
    where the cell's own reason (a given name over 60 characters) is due. The limit is the process's: it is
    raised for this line only (other readers in the process, `dcii batch`'s, keep theirs)."""
    limit = csv.field_size_limit(MAX_LINE_BYTES)
    try:
        return next(csv.reader((text,), strict=True), [])
    except csv.Error:
        return None
    finally:
        csv.field_size_limit(limit)


def _header(cells: list[str]) -> list[str]:
    names = [cell.strip().lower() for cell in cells]
    while names and not names[-1]:
        names.pop()
    known = set(COLUMNS) | IGNORED_COLUMNS
    unknown = [name for name in names if name not in known]
    if unknown or len(set(names)) != len(names) or not names:
        # Name only what looks like a mistyped column: a file without its header has data there.
        shown = [name for name in unknown if name.replace("_", "").isalpha() and "_" in name]
        raise Unreadable(
            f"the CSV header has {len(unknown)} unknown and {len(names) - len(set(names))} duplicate column names"
            + (f" ({', '.join(shown)})" if shown else "")
        )
    return names


class _RepeatedKey(ValueError):
    """A JSON object names the same key twice (json.loads keeps the last value, quietly)."""


def _once_each(pairs: list[tuple[str, object]]) -> dict[str, object]:
    found = dict(pairs)
    if len(found) != len(pairs):
        raise _RepeatedKey
    return found


def read_jsonl(path: Path, identity: str, skip: int) -> Iterator[SourceRecord]:
    for number, text in lines(path):
        if number <= skip or (text is not None and not text.strip()):
            continue
        if text is None:
            yield _bad_line(identity, number, None, "longer than 1 MiB")
            continue
        try:
            value = json.loads(text, object_pairs_hook=_once_each)
        except _RepeatedKey:  # which of the two values is the record's? `dcii submit` refuses it too
            yield _bad_line(identity, number, text, "a JSON object names the same key twice")
            continue
        except (ValueError, RecursionError):  # RecursionError: nested deeper than the parser's stack
            yield _bad_line(identity, number, text, "not valid JSON")
            continue
        if isinstance(value, dict):
            yield _record(identity, number, value)
        else:
            yield _bad_line(identity, number, text, "not a JSON object")


TRACING_READERS: dict[str, FileReader] = {".csv": read_csv, ".jsonl": read_jsonl, ".ndjson": read_jsonl}


def _identity(path: Path) -> str:
    stat = path.stat()
    return f"{path.name}|{stat.st_size}|{stat.st_mtime_ns}"


def _waiting(inbox: Path, readers: dict[str, FileReader], position: str | None) -> list[Path]:
    files = sorted(
        p for p in inbox.iterdir() if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in readers
    )
    current = position.split("|", 1)[0] if position else None
    return sorted(files, key=lambda p: p.name != current)  # the file we were in, first


def _move(path: Path, folder: Path) -> Path:
    folder.mkdir(mode=0o700, exist_ok=True)  # done/ and failed/ hold the repository's records
    folder.chmod(0o700)  # one an earlier version made 0755 too
    target, n = folder / path.name, 0
    while target.exists():
        n += 1
        target = folder / f"{path.stem}.{n}{path.suffix}"
    os.replace(path, target)
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)
    return target


def _begin(path: Path, identity: str, runner: Runner) -> None:
    """Note where the reject file stood when this file was begun, saved with its first checkpoint. A file
    changed in place after a crash part-way through it (a row fixed and the connector restarted) is read
    again from its first line: the rejects of its earlier version are cut back first, or each record
    refused then and again now would be written twice."""
    data, position = runner.checkpoint.data, runner.checkpoint.position or ""
    mark = position.rpartition("#")[0]
    if mark == identity:
        return  # resumed where it stopped
    begun = data.get("file_begun")
    through = _finished_file(runner)
    # Not when the file named is one finished and moved aside, and this one another (a new inode); one
    # finished, not yet moved and then edited in place is the same file, read again (second diff review 7).
    moved_on = through is not None and through[0] == mark and through[2] != path.stat().st_ino
    if mark.split("|", 1)[0] == path.name and not moved_on:
        runner.progress.log("changed", file=path.name, reason="changed since it was partly pushed: read again")
        size = begun.get("rejects_size") if isinstance(begun, dict) else None
        if isinstance(size, int) and not isinstance(size, bool):  # else (damaged): nothing is cut on a guess
            runner.dead_letters.cut_back(size, begun.get("rejects_inode") if isinstance(begun, dict) else None)
            runner.dead_letters.flush(runner.checkpoint)  # the sizes as they now stand
    data["file_begun"] = {"rejects_size": data.get("rejects_size", 0), "rejects_inode": data.get("rejects_inode")}


def _finished(runner: Runner) -> None:
    """The file is moved aside: nothing is left to resume, and one of the same name later is another file."""
    runner.checkpoint.position = None
    runner.checkpoint.data.pop("file_begun", None)
    runner.checkpoint.data.pop("finished", None)
    runner.checkpoint.save()


def _set_aside(path: Path, identity: str, folder: str, runner: Runner) -> None:
    """Move a file that is through into `folder`, its identity saved as finished first: a crash between the
    move and the checkpoint's save left the checkpoint naming the file as if part-way through, and a later
    file of the same name had the finished one's rejects cut back as its own (`_begin`); one before the
    move finds the file still there, finished, and only moves it (`process_file`)."""
    runner.checkpoint.data["finished"] = {"file": identity, "into": folder, "inode": path.stat().st_ino}
    runner.checkpoint.save()
    _move(path, path.parent / folder)
    _finished(runner)


def _finished_file(runner: Runner) -> tuple[str, str, object] | None:
    """(identity, folder, inode) of the file `_set_aside` was moving when the connector stopped, if any."""
    found = runner.checkpoint.data.get("finished")
    if isinstance(found, dict) and isinstance(found.get("file"), str) and found.get("into") in ("done", "failed"):
        return found["file"], found["into"], found.get("inode")
    return None


def process_file(path: Path, runner: Runner, reader: FileReader) -> bool:
    """Push one file and move it aside; False if it was unreadable (moved to failed/)."""
    try:
        identity = _identity(path)
    except OSError:
        return False
    runner.source, before = path.name, replace(runner.stats)
    through = _finished_file(runner)
    if through is not None and through[0] == identity:  # through before a crash: only its move was left
        _set_aside(path, identity, through[1], runner)
        _report(path, through[1], runner, before)
        return through[1] == "done"
    _begin(path, identity, runner)

    def read(after: str | None) -> Iterator[SourceRecord]:
        mark, _, line = (after or "").rpartition("#")
        skip = int(line) if mark == identity and line.isdigit() else 0
        return _after(reader(path, identity, 0), skip, runner) if skip else reader(path, identity, 0)

    try:
        runner.run(read)
    except Unreadable as error:
        _set_aside(path, identity, "failed", runner)
        _report(path, "failed", runner, before, reason=str(error))
        return False
    _set_aside(path, identity, "done", runner)
    _report(path, "done", runner, before)
    return True


def _after(records: Iterator[SourceRecord], skip: int, runner: Runner) -> Iterator[SourceRecord]:
    """The records after line `skip`. Those up to it, answered before a restart, are only remembered: a
    collision with one of them is still seen (Runner._collides)."""
    for record in records:
        if record.line is not None and record.line <= skip:
            runner.remember(record)
        else:
            yield record


def _report(path: Path, outcome: str, runner: Runner, before: Stats, **why: str) -> None:
    """The `done` or `failed` line with the file's own counts, and last_run.json: in polling mode the
    summary never comes, and progress lines count since the start."""
    if outcome == "done":
        runner.stats.files_done += 1
    else:
        runner.stats.files_failed += 1
    counts = runner.stats.since(before)
    last = {"file": path.name, "outcome": outcome, "timestamp": utc_now(), "counts": counts, **why}
    runner.write_last_run(running=True, last_file=last)  # the state folder is the connector's user's only
    runner.progress.log(outcome, file=path.name, **why, **counts)  # the name masked: it may be a person's


def run_inbox(inbox: Path, runner: Runner, readers: dict[str, FileReader], *, once: bool, poll: float = 5.0) -> None:
    runner.stats.files = True
    while True:
        try:
            waiting = _waiting(inbox, readers, runner.checkpoint.position)
        except OSError as error:  # the inbox went away (an unmounted share): say which, not INTERNAL
            raise SystemExit(f"connector: --inbox {inbox}: {error.strerror or type(error).__name__}") from None
        for path in waiting:
            process_file(path, runner, readers[path.suffix.lower()])
        if once:
            return
        time.sleep(poll)
