"""The embedded store's file: its tables, its connection settings, and the upgrade of older files."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from indexer.analysis import NameAnalysis, analyze
from indexer.codec import tracing_from_json
from indexer.codec_head import head_from_text, head_ssn, head_to_text
from indexer.exc import FailedPrecondition
from indexer.match_keys import KEYS_VERSION, full_ssn, subject_keys, tracing_keys
from indexer.store.sqlite_keys import KEYS_SCHEMA, index_keys, keys_text
from indexer.store.sqlite_lifecycle import LIFECYCLE_SCHEMA, fill_nac_history

log = logging.getLogger(__name__)

# Which tracings' keys an unfinished upgrade still rewrites (meta 'rekey', `finish_rekey`).
_REKEY_WITH_SSN = "ssn"
_REKEY_COMPOUND = "compound"  # the tracings with a surname or given name of several words (keys version 4)
_REKEY_ALL = "all"
_HEAD_FIELD, _HEAD_JSON = "\x1f", "\x1d"  # indexer.codec_head's separator, and the mark of its JSON form
_REKEY_LOG_EVERY = 1_000_000  # tracings between two progress lines of the log
REKEY_BATCH = 20_000  # tracings a transaction of the rewrite (the WAL holds one batch at a time)

# 2: the nac_history and dispute tables (sqlite_lifecycle).
# 3: the blocking keys in an FTS5 index (sqlite_keys) instead of a (key, tracing_id) table, and each
#    tracing's head (indexer.codec_head: its subject in a form cheap to decode, for ranking).
# 4: the match keys of version 2 (indexer.match_keys: the `n` twins of tracings without a full SSN),
#    recorded as meta 'keys_version'.
# 5: the match keys of version 3 (the SSN keys `w0`-`w7` instead of the windows `s0 s2 s4 s6`).
# 6: the number of live tracings kept by triggers (live_count below).
# 7: the match keys of version 4 (`o` and `o0` for each part of a compound surname).
# An older file is upgraded when opened (upgrade below).
SCHEMA_VERSION = "7"

# How many tracings are live, kept exact by triggers in the transaction of every change, whichever code
# makes it. Counting them walks the whole table (the bodies with it): 9 s at 10 million tracings, with the
# file in the page cache, and blocking asks the index's size for every ranked query (once a minute, that
# query paid the walk). Created, and counted once, by the upgrade's transaction, so no write slips between.
_LIVE_COUNT = (
    "CREATE TABLE IF NOT EXISTS live_count (n INTEGER NOT NULL)",
    "DELETE FROM live_count",
    "INSERT INTO live_count SELECT count(*) FROM tracing WHERE live = 1",
    "CREATE TRIGGER IF NOT EXISTS live_count_insert AFTER INSERT ON tracing WHEN NEW.live = 1"
    " BEGIN UPDATE live_count SET n = n + 1; END",
    "CREATE TRIGGER IF NOT EXISTS live_count_update AFTER UPDATE OF live ON tracing WHEN NEW.live != OLD.live"
    " BEGIN UPDATE live_count SET n = n + NEW.live - OLD.live; END",
    "CREATE TRIGGER IF NOT EXISTS live_count_delete AFTER DELETE ON tracing WHEN OLD.live = 1"
    " BEGIN UPDATE live_count SET n = n - 1; END",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- Every key the index has seen. live = 0 is a tombstone: the delete's version stays so that an older
-- upsert arriving late cannot bring the tracing back. head: the subject as indexer.codec_head writes it
-- ("" none), what the ranked modes score candidates on without decoding the body; NULL in a tombstone.
CREATE TABLE IF NOT EXISTS tracing (
    id INTEGER PRIMARY KEY,
    agency TEXT NOT NULL,
    record_number TEXT NOT NULL,
    source_version INTEGER NOT NULL,
    type TEXT NOT NULL,
    live INTEGER NOT NULL,
    body TEXT,
    indexed_at INTEGER NOT NULL,
    head TEXT,
    UNIQUE (agency, record_number)
);
-- One row per name of a live tracing (primary and aliases), clustered by name for the exact modes,
-- with the PIDs beside it so EXACT filters without touching the tracing.
CREATE TABLE IF NOT EXISTS name (
    surname TEXT NOT NULL,
    given TEXT NOT NULL,
    tracing_id INTEGER NOT NULL,
    alias_no INTEGER NOT NULL,
    middle TEXT NOT NULL,
    suffix TEXT NOT NULL,
    ssn TEXT NOT NULL,
    dob TEXT NOT NULL,
    pob TEXT NOT NULL,
    PRIMARY KEY (surname, given, tracing_id, alias_no)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS title (
    title TEXT NOT NULL,
    tracing_id INTEGER NOT NULL,
    PRIMARY KEY (title, tracing_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS deletion_log (
    id INTEGER PRIMARY KEY,
    agency TEXT NOT NULL,
    record_number TEXT NOT NULL,
    type TEXT NOT NULL,
    source_version INTEGER NOT NULL,
    reason TEXT NOT NULL,
    actor TEXT NOT NULL,
    deleted_at INTEGER NOT NULL
);
-- A key's deletions: when its present life began (TracingStore.last_deleted), and the writer's check that
-- a deletion was logged already.
CREATE INDEX IF NOT EXISTS deletion_log_key ON deletion_log (agency, record_number, deleted_at);
"""


def bare_connection(path: Path) -> sqlite3.Connection:
    """A connection that changes nothing by opening: the file's journal mode as it is, no schema made."""
    return sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)


def connect(path: Path, *, readonly: bool = False) -> sqlite3.Connection:
    """A connection with the store's settings (shared with backup and integrity tools). A `readonly` one
    leaves the journal mode to the writer (WAL is kept in the file): set here, it rewrote the header of a
    file opened only to be read, a backup's copy."""
    conn = bare_connection(path)
    if not readonly:
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA cache_size=-65536")
    conn.execute("PRAGMA mmap_size=268435456")
    conn.execute("PRAGMA busy_timeout=30000")
    if readonly:
        conn.execute("PRAGMA query_only=1")
    return conn


def prepare(conn: sqlite3.Connection, *, rekey_batch: int = REKEY_BATCH) -> None:
    """Create what is missing and bring an older file to SCHEMA_VERSION (once), then finish rewriting its
    blocking keys if that is still under way (`finish_rekey`, `rekey_batch` tracings a transaction)."""
    conn.executescript(_SCHEMA + LIFECYCLE_SCHEMA + KEYS_SCHEMA)
    if _version(conn) != SCHEMA_VERSION:
        _upgrade(conn)
    finish_rekey(conn, batch=rekey_batch)


def _upgrade(conn: sqlite3.Connection) -> None:
    """Bring the file to SCHEMA_VERSION in one transaction; a file of schema 3 to 6 is only marked for (some
    of) its keys to be rewritten, which `finish_rekey` does in transactions of its own."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = _version(conn)  # again, under the write lock: another process may have upgraded it
        if found not in (*OLDER_VERSIONS, SCHEMA_VERSION):
            raise RuntimeError(f"the store file has schema version {found}; this program knows {SCHEMA_VERSION}")
        if found == "1":
            fill_nac_history(conn)
        if found in ("1", "2"):
            log.info("upgrading the store file's blocking keys to schema %s (once; takes a while)", SCHEMA_VERSION)
            if "head" not in {row[1] for row in conn.execute("PRAGMA table_info(tracing)")}:
                conn.execute("ALTER TABLE tracing ADD COLUMN head TEXT")
            indexed = build_from_bodies(conn)
            conn.execute("DROP TABLE IF EXISTS match_key")
            log.info("blocking keys and heads of %d tracings indexed", indexed)
        elif found in ("3", "4", "5", "6"):
            # 3 -> 4 gave tracings without a full SSN their twins, 4 -> 5 those with one their new SSN keys,
            # 6 -> 7 those with a compound surname the keys of its parts: from 4, both of the last two.
            which = _REKEY_ALL if found in ("3", "4") else _REKEY_COMPOUND
            if conn.execute("SELECT 1 FROM meta WHERE key = 'rekey'").fetchone() is not None:
                which = _REKEY_ALL  # an older program's rewrite left unfinished: it and this one, from the start
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('rekey', ?)", (f"{which}:0",))
        if found != "6":  # a file of schema 6 keeps the count by its triggers already
            if found is not None:
                log.info("counting the store file's live tracings (once; seconds a million)")
            for statement in _LIVE_COUNT:
                conn.execute(statement)
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('keys_version', ?)", (str(KEYS_VERSION),))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _live_after(conn: sqlite3.Connection, column: str, after: int, batch: int) -> list[tuple[int, str]]:
    """(id, `column`) of the next `batch` live tracings after id `after`, in id order."""
    rows: list[tuple[int, str]] = conn.execute(
        f"SELECT id, {column} FROM tracing WHERE live = 1 AND id > ? ORDER BY id LIMIT ?",  # noqa: S608
        (after, batch),
    ).fetchall()
    return rows


def _live_batches(conn: sqlite3.Connection, column: str, batch: int) -> Iterator[list[tuple[int, str]]]:
    """(id, `column`) of every live tracing, in id order, `batch` rows at a time (each batch read afresh,
    so the caller may write between them)."""
    last = 0
    while rows := _live_after(conn, column, last, batch):
        yield rows
        last = rows[-1][0]


def build_from_bodies(conn: sqlite3.Connection, *, batch: int = 5_000) -> int:
    """Index the blocking keys and write the head of every live tracing from its stored body (the
    upgrade of a schema-1 or 2 file; each body decoded once for both); returns how many."""
    done = 0
    for rows in _live_batches(conn, "body", batch):
        tracings = [(i, tracing_from_json(body)) for i, body in rows]
        index_keys(conn, [(i, keys_text(tracing_keys(tracing))) for i, tracing in tracings])
        conn.executemany(
            "UPDATE tracing SET head = ? WHERE id = ?", ((head_to_text(t.subject), i) for i, t in tracings)
        )
        done += len(rows)
    return done


def finish_rekey(conn: sqlite3.Connection, *, batch: int = REKEY_BATCH) -> None:
    """Rewrite, from their heads, the blocking keys of the live tracings an upgrade left to rewrite (meta
    'rekey' = "<which>:<last id done>"): of those with a name of several words (a schema-5 or 6 file: keys
    version 4 keys their parts and words), or of every one (a schema-3 or 4 file, or one whose rewrite an
    older program left unfinished). ("ssn", the tracings with a full SSN, is an older program's mark.)

    One transaction a batch, each moving the mark on, rather than one for the lot: at 10 million tracings
    the lot would hold gigabytes of WAL until its end and start again from nothing if interrupted. The
    file says the new schema from the start, so an older program, which would read the half-rewritten keys
    wrongly, refuses it; this program (any process opening the file) finishes the rewrite before it
    serves. Then the key index, left in many small segments full of deletion markers at two to three
    times its size, is merged into one (seconds a million tracings)."""
    if conn.execute("SELECT 1 FROM meta WHERE key = 'rekey'").fetchone() is None:
        return  # the usual open: nothing to rewrite, and no write lock taken to find that out
    started = time.monotonic()
    done, announced = 0, False
    while True:
        conn.execute("BEGIN IMMEDIATE")  # the mark is read under the write lock: processes take turns
        try:
            mark = conn.execute("SELECT value FROM meta WHERE key = 'rekey'").fetchone()
            if mark is None:
                conn.execute("COMMIT")
                return
            which, _, after = str(mark[0]).partition(":")
            if not announced:
                log.info("rewriting the store file's blocking keys to version %d (once; takes a while)", KEYS_VERSION)
                announced = True
            rows = _live_after(conn, "head", int(after), batch)
            if rows:
                changed = [
                    (keys_text(subject_keys(head_from_text(head))), tracing_id)
                    for tracing_id, head in rows
                    if head and _to_rewrite(which, head)
                ]
                conn.executemany("UPDATE match_keys SET keys = ? WHERE rowid = ?", changed)
                conn.execute("UPDATE meta SET value = ? WHERE key = 'rekey'", (f"{which}:{rows[-1][0]}",))
                if (done + len(changed)) // _REKEY_LOG_EVERY > done // _REKEY_LOG_EVERY:
                    log.info("blocking keys of %d tracings rewritten so far", done + len(changed))
                done += len(changed)
            else:
                if done:  # else nothing changed: no merge of the whole index (a minute at 10 million)
                    conn.execute("INSERT INTO match_keys (match_keys) VALUES ('optimize')")
                conn.execute("DELETE FROM meta WHERE key = 'rekey'")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        if not rows:
            log.info("blocking keys of %d tracings rewritten in %.0f s", done, time.monotonic() - started)
            return


def _to_rewrite(which: str, head: str) -> bool:
    """Whether a live tracing with this head holds keys the upgrade under way (`which`) changes."""
    if which == _REKEY_ALL:
        return True
    if which == _REKEY_WITH_SSN:
        return bool(full_ssn(head_ssn(head)))
    if not head.startswith(_HEAD_JSON):
        fields = head.split(_HEAD_FIELD)  # indexer.codec_head: role, ssn, dob, pob, then four a name
        if all(name.isascii() and name.isalpha() for name in (*fields[4::4], *fields[5::4])):
            return False  # surnames and given names of one word (most): not decoded and analysed, a fifth of the time
    subject = head_from_text(head)
    return subject is not None and any(_several_words(analyze(name)) for name in subject.all_names())


def _several_words(analysis: NameAnalysis) -> bool:
    """Whether keys version 4 keys this name differently from version 3: a compound surname or a given name
    of several words."""
    return len(analysis.surname_parts) > 1 or analysis.given_word_forms != analysis.given_forms


def stored_keys_version(conn: sqlite3.Connection) -> int:
    """The match-keys version the file's keys were written with (indexer.match_keys.KEYS_VERSION)."""
    found = conn.execute("SELECT value FROM meta WHERE key = 'keys_version'").fetchone()
    return 1 if found is None else int(found[0])


def live_count(conn: sqlite3.Connection) -> int:
    """The live tracings, as the triggers keep them (`_LIVE_COUNT`)."""
    return int(conn.execute("SELECT n FROM live_count").fetchone()[0])


def live_count_problems(conn: sqlite3.Connection) -> list[str]:
    """The kept count against a walk of the table (for the integrity check: a difference is a bug, or an
    edit of the file by hand; `recount` mends it)."""
    kept, walked = live_count(conn), conn.execute("SELECT count(*) FROM tracing WHERE live = 1").fetchone()[0]
    return [] if kept == walked else [f"the live count is {kept} but {walked} tracings are live"]


def recount(conn: sqlite3.Connection) -> bool:
    """Set the kept count to a walk of the table, in one write transaction; whether it was wrong."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        wrong = bool(live_count_problems(conn))
        if wrong:
            conn.execute(_LIVE_COUNT[1])
            conn.execute(_LIVE_COUNT[2])
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return wrong


OLDER_VERSIONS = (None, "1", "2", "3", "4", "5", "6")  # what `prepare` upgrades (None: schema 1, without meta)


def require_index_file(path: Path, *, older_ok: bool = False) -> bool:
    """FailedPrecondition unless `path` is an index store of this schema version, or with `older_ok` of an
    earlier one (False returned: opened for writing, the store upgrades it), read without a change."""
    if not path.is_file():
        raise FailedPrecondition(f"no index file at {path}")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
        try:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            found = _version(conn) if "meta" in tables else None  # None: schema 1, before the meta table
        finally:
            conn.close()
    except sqlite3.DatabaseError as error:
        # The type only: SQLite's text may quote a stored value.
        why = f"{path} cannot be read as an index store ({type(error).__name__}: damaged, or not an SQLite file)"
        raise FailedPrecondition(why) from None
    if "tracing" not in tables:
        raise FailedPrecondition(f"{path} is not an index store (no tracing table)")
    if found == SCHEMA_VERSION:
        return True
    if found in OLDER_VERSIONS:
        if older_ok:
            return False
        raise FailedPrecondition(
            f"{path} is of an earlier schema version ({found or '1'}); this program reads {SCHEMA_VERSION}:"
            " `dcii index migrate --from` it into a new file, which it can"
        )
    raise _newer(path, found)


def _newer(path: Path, found: str | None) -> FailedPrecondition:
    return FailedPrecondition(
        f"{path} is of schema version {found}, newer than this program's {SCHEMA_VERSION}: use the dcii that wrote it"
    )


def refuse_newer(path: Path) -> None:
    """FailedPrecondition, in one line, if `path` is a store file of a schema newer than this program's.
    Found only by `_upgrade`, the refusal was a traceback, after the writer's set-up had made its tables
    and switched its journal (a review of upgrades). Anything else (no file, an older or damaged one) is
    left to the writer's set-up."""
    if not path.is_file():
        return
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
        try:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            found = _version(conn) if "meta" in tables else None
        finally:
            conn.close()
    except sqlite3.Error:
        return
    if found is not None and found not in (*OLDER_VERSIONS, SCHEMA_VERSION):
        raise _newer(path, found)


def _version(conn: sqlite3.Connection) -> str | None:
    found = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return None if found is None else str(found[0])
