"""A connector's durable state: a small JSON file, replaced atomically (write, fsync, rename, fsync dir).

It holds the source position of the last record the index answered, and how far the reject file had
been written at that moment (so records re-read after a crash are not dead-lettered twice).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


class Checkpoint:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = {}
        if path.exists():
            loaded = json.loads(path.read_text(encoding="utf-8"))
            if isinstance(loaded, dict):
                self.data = loaded

    @property
    def position(self) -> str | None:
        value = self.data.get("position")
        return value if isinstance(value, str) else None

    @position.setter
    def position(self, value: str | None) -> None:
        self.data["position"] = value

    def save(self) -> None:
        save_json_atomically(self.path, self.data)


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
