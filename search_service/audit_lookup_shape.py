"""Whether an audit lookup file (search_service.audit_lookup) is the one this version makes.

The lookup decides which entries a reading reads. A view put in place of `entry_ref` (showing every row to
`dcii audit verify`, which attaches the file, and hiding one from readers, who open it alone) or a column
dropped from it (which verify took for an earlier version's file and skipped) hid a disclosure from every
reading while verify said intact (a review). Readers use a lookup only when `shaped`, else they read the
trail; verify checks a shaped one against the trail (search_service.audit_lookup_check); the writer takes
away an entry_ref of any other shape and copies afresh.
"""

from __future__ import annotations

import logging
import sqlite3

log = logging.getLogger(__name__)

# entry_ref's columns, in order, as SCHEMA and `_add_person` make them.
COLUMNS = ("seq", "tag", "kind", "agency", "record_number", "subject", "person")


def shaped(conn: sqlite3.Connection, schema: str = "main") -> bool:
    """Whether the lookup's entry_ref is the table this version makes: a view in its place (one that showed
    every row to `verify`, which attaches the file, and hid one from readers, who open it alone) or a column
    dropped (which `verify` took for an earlier version's file) made the lookup hide a disclosure from every
    reading, and `verify` say intact (a review). Readers ignore a lookup of another shape and read the trail."""
    found = conn.execute(f"SELECT type, sql FROM {schema}.sqlite_master WHERE name = 'entry_ref'").fetchone()  # noqa: S608
    if found is None or found[0] != "table" or str(found[1]).upper().startswith("CREATE VIRTUAL"):
        return False
    columns = tuple(row[0] for row in conn.execute("SELECT name FROM pragma_table_info('entry_ref', ?)", (schema,)))
    return columns == COLUMNS


def unless_shaped(conn: sqlite3.Connection) -> None:
    """Take away an entry_ref this version did not make (a view, a virtual table, a table of other columns
    but an earlier version's without `person`, which `_add_person` completes), so that SCHEMA makes it anew
    and the copy starts again: written into a view, the copy failed for ever, the lookup frozen."""
    columns = tuple(row[0] for row in conn.execute("SELECT name FROM pragma_table_info('entry_ref')"))
    if shaped(conn) or columns in ((), COLUMNS[:-1]):
        found = conn.execute("SELECT type FROM sqlite_master WHERE name = 'entry_ref'").fetchone()
        if found is None or found[0] == "table":
            return
    kind = conn.execute("SELECT type FROM sqlite_master WHERE name = 'entry_ref'").fetchone()[0]
    log.warning("the audit lookup file was not as this version makes it (altered?): made afresh")
    conn.execute(f"DROP {'VIEW' if kind == 'view' else 'TABLE'} entry_ref")
