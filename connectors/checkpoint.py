"""A connector's durable state: small JSON files, replaced atomically (write, fsync, rename, fsync dir), and
the reject file.

`checkpoint.json` holds the source position of the last record the index answered, and how far the reject
file had been written at that moment (so records re-read after a crash are not dead-lettered twice). It
names the connector kind that wrote it: a state folder given to another kind of connector (a file drop's
to `sql`) is refused, where its position once ended the run as an INTERNAL JSONDecodeError.
`last_run.json` says when the connector last finished a run or a file, and with what counts.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# A file position: "name|size|mtime_ns#line" (connectors.filedrop); an SQL one is a JSON [change, key].
_FILE_POSITION = re.compile(r".*\|\d+\|\d+#\d+", re.DOTALL)
_INBOX_KINDS = frozenset({"filedrop", "fixedwidth"})


class CheckpointError(ValueError):
    """The state folder cannot be used as it is. The message names no value of a record: it is logged."""


def utc_now() -> str:
    """The time stamp of log lines, reject entries and last_run.json: UTC, as the server's logs write it."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


class Checkpoint:
    def __init__(self, path: Path, kind: str | None = None) -> None:
        self.path = path
        self.data: dict[str, Any] = {}
        if path.exists():
            loaded = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(loaded, dict):
                # `[]` or `null` (a damaged file that still parses) once meant "start from the beginning":
                # for an SQL source the whole table again, silently.
                raise CheckpointError(f"{path.name} holds JSON that is not an object")
            self.data = loaded
        if kind is not None:
            self._belongs_to(kind)
            self.data["connector"] = kind

    def _belongs_to(self, kind: str) -> None:
        written_by = self.data.get("connector")
        if written_by is not None and written_by != kind:
            raise CheckpointError(f"{self.path.name} was written by a {written_by} connector, not {kind}")
        position = self.data.get("position")
        if written_by is None and isinstance(position, str) and not _position_fits(position, kind):
            # A state folder from before the kind was noted: its position tells.
            raise CheckpointError(f"{self.path.name} holds a position no {kind} connector writes")

    @property
    def position(self) -> str | None:
        value = self.data.get("position")
        return value if isinstance(value, str) else None

    @position.setter
    def position(self, value: str | None) -> None:
        self.data["position"] = value

    def save(self) -> None:
        save_json_atomically(self.path, self.data)


def _position_fits(position: str, kind: str) -> bool:
    if kind in _INBOX_KINDS:
        return _FILE_POSITION.fullmatch(position) is not None
    try:
        parsed = json.loads(position)
    except ValueError:
        return False
    return isinstance(parsed, list) and len(parsed) == 2


def save_json_atomically(path: Path, data: dict[str, Any]) -> None:
    """Written for the connector's own user only (0600): a position may be a row's key, and a repository's
    table may be keyed by SSN."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # a temporary left by an earlier version may have been readable by all
    with open(descriptor, "w", encoding="utf-8") as out:
        json.dump(data, out, sort_keys=True)
        out.flush()
        os.fsync(out.fileno())
    temporary.replace(path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


class DeadLetters:
    """The reject file: one JSON object per record the index did not take, the raw row plus where it came
    from (`source`, `line` or `position`), when (`timestamp`), why in a word (`dead_letter`: REJECTED,
    PERMISSION_DENIED, NOT_FOUND, UNREADABLE, COLLISION) and in full, "errors": [{field,
    description}]. The file is the connector's user's only (0600), so a file's real name may stand in it."""

    def __init__(self, path: Path, checkpoint: Checkpoint) -> None:
        self.path = path
        self._pending: list[str] = []
        if "rejects_size" not in checkpoint.data:
            # A first run: record where the file stands before anything is written, so that a crash before
            # the first checkpoint cuts back to here too instead of writing the same rejects again.
            self.flush(checkpoint)
            checkpoint.save()
        else:  # cut off what was written after the last checkpoint: those records will be read again
            self.cut_back(int(checkpoint.data.get("rejects_size", 0)), checkpoint.data.get("rejects_inode"))

    def cut_back(self, size: int, inode: object) -> None:
        """Cut the reject file back to `size` bytes, if it is still the file (`inode`) it had when that
        size was taken (another: the operator took the old one away, and the new one holds only later)."""
        if not self.path.exists():
            return
        stat = self.path.stat()
        if inode is not None and inode != stat.st_ino:
            size = 0
        if stat.st_size > size:
            with self.path.open("r+b") as handle:
                handle.truncate(size)
                os.fsync(handle.fileno())

    def add(
        self,
        raw: dict[str, str],
        errors: Iterable[tuple[str, str]],
        *,
        outcome: str = "REJECTED",
        source: str = "",
        line: int | None = None,
        position: str | None = None,
    ) -> None:
        # Two refusals of one record number from Monday's and Tuesday's files were once indistinguishable.
        where: dict[str, object] = {"source": source} if source else {}
        where.update({"line": line} if line is not None else {"position": position} if position else {})
        entry = {**raw, **where, "timestamp": utc_now(), "dead_letter": outcome}
        entry["errors"] = [{"field": f, "description": d} for f, d in errors]
        self._pending.append(json.dumps(entry, ensure_ascii=False) + "\n")

    def discard_last(self, count: int) -> None:
        """Forget the last `count` entries not yet written: their record's position was not checkpointed,
        so it is read again, and dead-lettered again, after a restart."""
        if count:
            del self._pending[-count:]

    def flush(self, checkpoint: Checkpoint) -> None:
        if self._pending:
            # Refused records hold names, SSNs and dates of birth: for the connector's own user only.
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            os.fchmod(descriptor, 0o600)  # a file made before this rule was readable by all
            with open(descriptor, "a", encoding="utf-8", errors="backslashreplace") as out:  # a lone surrogate too
                out.writelines(self._pending)
                out.flush()
                os.fsync(out.fileno())
            self._pending.clear()
        stat = self.path.stat() if self.path.exists() else None
        checkpoint.data["rejects_size"] = stat.st_size if stat else 0
        checkpoint.data["rejects_inode"] = stat.st_ino if stat else None
