"""How a log line names a failure without personal data: `failure_fields(error)`.

Log lines gave the error's type alone ("store checkpoint failed", OperationalError), so the engineer at
3 a.m. could not tell a full disk from a locked file or an I/O error. The type is kept, and for the errors
of the disk and of SQLite what they say is added: those name a condition (ENOSPC "No space left on device",
SQLITE_FULL "database or disk is full", "attempt to write a readonly database"), never a value of a record
(every statement binds its values; SQLite's messages name tables and columns at most). Any other error's
text may carry what it was handed (a name, an SSN), so it stays out, as before.
"""

from __future__ import annotations

import errno
import sqlite3


def failure_fields(error: BaseException) -> dict[str, str]:
    """The `extra` fields of a log line about `error`: `error_type`, and `error` for OS and SQLite errors."""
    fields = {"error_type": type(error).__name__}
    if isinstance(error, sqlite3.Error):
        name = getattr(error, "sqlite_errorname", "")
        fields["error"] = f"{name}: {error}" if name else str(error)
    elif isinstance(error, OSError) and error.errno is not None:
        # The path is left out: a file a connector was handed may be named after a person.
        fields["error"] = f"{errno.errorcode.get(error.errno, error.errno)}: {error.strerror}"
    return fields


def failure_text(error: BaseException) -> str:
    """What `failure_fields` says of `error` in one phrase: what the disk or SQLite said, else its type."""
    fields = failure_fields(error)
    return fields.get("error", fields["error_type"])
