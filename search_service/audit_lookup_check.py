"""`dcii audit verify`'s check of the lookup file (search_service.audit_lookup) against the trail.

The lookup decides which entries a reading reads: `dcii audit disclosures`, the Privacy Act access answer
and the recipients a statement of dispute is owed to all take the seqs it names for their question, and
read the trail only past its end. It is derived data, outside the hash chain, and was trusted: one row
deleted from it (or its tracing edited) hid that disclosure from all three, while `verify` said intact (a
security review). Each row is what the lookup's copy makes of one entry, so the check is the copy done
again, in one SQL statement over both files (C speed: 0.65 s for 200,000 entries beside verify's 2.4 s):
every entry up to the lookup's last has its row, and each row says what its entry says. A reading does
not make it (it would read the whole lookup each time); the daily `verify` does.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from search_service.audit_lookup import lookup_path
from search_service.audit_lookup_shape import shaped

# The lookup's copy (audit_lookup._COPY), compared column by column; `IS NOT` so that NULLs compare too.
_FIRST_DISAGREEING = """
SELECT e.seq, r.seq IS NULL FROM entry e LEFT JOIN lookup.entry_ref r ON r.seq = e.seq
WHERE e.seq <= ? AND (
    r.seq IS NULL
    OR r.tag IS NOT substr(e.hash, 1, 16)
    OR r.kind IS NOT json_extract(e.canonical, '$.kind')
    OR r.agency IS NOT json_extract(e.canonical, '$.agency')
    OR r.record_number IS NOT json_extract(e.canonical, '$.record_number')
    OR r.subject IS NOT substr(nullif(json_extract(e.canonical, '$.subject'), ''), 1, 16)
    OR r.person IS NOT substr(nullif(json_extract(e.canonical, '$.person'), ''), 1, 16)
)
ORDER BY e.seq LIMIT 1
"""


def lookup_disagreement(conn: sqlite3.Connection, trail: Path) -> tuple[int | None, str] | None:
    """(seq, why) of the first entry the lookup file misrepresents, or None (no lookup file is no
    disagreement: readers then scan the trail). `conn`: the trail's, opened with URIs allowed."""
    path = lookup_path(Path(trail))
    if not path.exists():
        return None
    conn.execute("ATTACH DATABASE ? AS lookup", (path.resolve().as_uri() + "?mode=ro",))
    try:
        if not shaped(conn, "lookup"):
            return None  # not as this version makes it: readers ignore it (they read the trail), it hides nothing
        damaged = conn.execute("PRAGMA lookup.integrity_check(1)").fetchone()[0]
        if damaged != "ok":  # an index that no longer matches its table would serve readers other rows
            return (
                1,
                f"the audit lookup file {path.name} is damaged ({damaged}): delete it (the server builds it again)",
            )
        last = conn.execute("SELECT coalesce(max(seq), 0) FROM lookup.entry_ref").fetchone()[0]
        found = conn.execute(_FIRST_DISAGREEING, (last,)).fetchone()
    finally:
        conn.execute("DETACH DATABASE lookup")
    if found is None:
        return None
    seq, missing = int(found[0]), bool(found[1])
    what = "has no row for it" if missing else "misstates it"
    return seq, (
        f"the audit lookup file {what}: readings of the accounting would not show entry {seq}"
        f" (delete {path.name}: the server builds it again from the trail)"
    )
