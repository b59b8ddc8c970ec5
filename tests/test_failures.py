"""indexer.failures: a log line or a refusal names what the disk or SQLite said (a full disk told from a
read-only file or a lock at 3 a.m.), and nothing of any other error's text, which may carry what it was
handed. Real errors from real files."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from indexer.failures import failure_fields, failure_text


def _raised(action: object) -> BaseException:
    try:
        action()  # type: ignore[operator]
    except BaseException as error:
        return error
    raise AssertionError("nothing raised")


def test_what_the_disk_and_sqlite_say_is_named_and_no_other_text(tmp_path: Path) -> None:
    missing = _raised((tmp_path / "123-45-6789.csv").read_text)
    # The errno and what it means; not the path, which a connector's file may take from a person.
    assert failure_fields(missing) == {"error_type": "FileNotFoundError", "error": "ENOENT: No such file or directory"}
    path = tmp_path / "x.db"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE t (v TEXT)")
        conn.commit()
    with contextlib.closing(sqlite3.connect(path.as_uri() + "?mode=ro", uri=True)) as conn:
        readonly = _raised(lambda: conn.execute("INSERT INTO t VALUES ('WHITFIELD')"))
    assert failure_text(readonly) == "SQLITE_READONLY: attempt to write a readonly database"
    assert "WHITFIELD" not in str(failure_fields(readonly))
    other = ValueError("not an SSN: 123-45-6789")
    assert failure_fields(other) == {"error_type": "ValueError"} and failure_text(other) == "ValueError"
