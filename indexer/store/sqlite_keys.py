"""The embedded store's blocking-key index: one FTS5 row per live tracing, its match keys as tokens.

Why FTS5 and not a (key, tracing_id) table: a tracing has about 38 match keys (indexer.match_keys), so a
B-tree of key rows takes 38 inserts at random places per tracing — at 10 million tracings that is 380
million rows, and the inserts, not the rest of ingest, set the pace. FTS5 is an inverted index built like
Lucene's: a transaction's keys are gathered in memory and written as one sorted segment, and segments are
merged in the background of later writes. A key's tracings come back in tracing-id order, as before.

- The table keeps its text (the keys as written), so a tracing's keys are removed exactly as they were
  indexed, even after the key algorithm changes (`DELETE ... WHERE rowid = ?`).
- detail=none: only "which tracings have this key" is stored, no positions.
- Tokens: the `ascii` tokenizer with ':' and '|' as token characters, so a key such as "a:PARNAL|IVAN"
  is one token. It folds case, and a key with any other character is written as hex; two keys that fold
  to one token would only return extra candidates (they are scored), never fewer.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Sequence

KEYS_SCHEMA = """
CREATE VIRTUAL TABLE IF NOT EXISTS match_keys USING fts5(
    keys, columnsize=0, detail=none, tokenize="ascii tokenchars ':|'"
);
"""

_PLAIN = re.compile(r"[A-Za-z0-9:|]+")
_PLAIN_TEXT = re.compile(r"[A-Za-z0-9:| ]+")


def token(key: str) -> str:
    """One FTS5 token per key: the key itself when the tokenizer keeps it whole, else its hex form.
    Every match key has a "family:" prefix, so a hex form (no ':') never equals a plain one."""
    if ":" in key and _PLAIN.fullmatch(key):
        return key
    return "x" + key.encode().hex()


def keys_text(keys: Iterable[str]) -> str:
    """A tracing's keys as the index's text: one token per key, space separated."""
    listed = list(keys)
    plain = " ".join(listed)
    # The usual case in one pass: every key plain (no space inside one: as many spaces as separators).
    if _PLAIN_TEXT.fullmatch(plain) and plain.count(" ") == len(listed) - 1 and all(":" in k for k in listed):
        return plain
    return " ".join(token(key) for key in listed)


def index_keys(conn: sqlite3.Connection, rows: Sequence[tuple[int, str]]) -> None:
    """Add each (tracing id, keys_text) row; the tracing must not be indexed already (unindex it first)."""
    conn.executemany("INSERT INTO match_keys (rowid, keys) VALUES (?, ?)", rows)


class KeyChanges:
    """A write group's key changes, applied together just before its commit.

    Why not at once: FTS5 keeps a transaction's new keys in memory and writes them as one segment, but any
    statement that opens a statement savepoint (an INSERT OR REPLACE elsewhere, for one) makes it flush
    what it holds as a small segment first; interleaved with the rest of ingest, that was a tiny segment per
    tracing, and a fifth of the writer's time. Nothing reads the key index inside the writer's transaction,
    so deferring the changes to the end of it changes no result.
    """

    def __init__(self) -> None:
        self._removed: set[int] = set()  # indexed before this group: its old keys go
        self._final: dict[int, str | None] = {}  # the keys_text each touched tracing ends with

    def add(self, tracing_id: int, text: str) -> None:
        self._final[tracing_id] = text

    def remove(self, tracing_id: int) -> None:
        if self._final.get(tracing_id) is None:  # not added in this group: it may hold keys from before
            self._removed.add(tracing_id)
        self._final[tracing_id] = None

    def apply(self, conn: sqlite3.Connection) -> None:
        conn.executemany("DELETE FROM match_keys WHERE rowid = ?", ((i,) for i in sorted(self._removed)))
        index_keys(conn, [(i, text) for i, text in self._final.items() if text is not None])
        self._removed.clear()
        self._final.clear()


# A key lookup reads every segment of the index (a b-tree descent each): at 1 million tracings after a bulk
# load, 13 segments cost 25 µs a key, one segment 7.5 µs (docs/BENCHMARKS.md). FTS5's own
# automerge keeps the count logarithmic, not one.
# The writer merges the index into one segment when it is idle and at least this share of it was written
# since the last full merge: a trickle of writes does not make it rewrite the whole index each time.
MERGE_AFTER_SHARE = 0.05
# One merge step's work, in pages: a write that arrives meanwhile waits for one step at most.
MERGE_STEP_PAGES = 256
# The writer counts as idle after this long with nothing to write.
MERGE_IDLE_SECONDS = 2.0


class KeyIndexUpkeep:
    """Keeps the key index merged into one segment, in small steps the writer takes while idle.

    FTS5's incremental merge ('merge', -N starts merging every segment into one, 'merge', N goes on,
    N pages a step; a step that changes fewer than two rows found nothing left to do). Each step is
    its own short transaction, so readers and a write arriving meanwhile wait for one step at most."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        # At open the state of the index is not known: one pass finds out (a no-op step if merged).
        self._written = self._size(conn)
        self._started = False
        self.steps = 0
        # Whether a merge is called for, as the writer last found (read by other threads: a bool).
        self.pending = self._written > 0

    @staticmethod
    def _size(conn: sqlite3.Connection) -> int:
        found = conn.execute("SELECT max(id) FROM tracing").fetchone()[0]
        return int(found or 0)

    def wrote(self, rows: int) -> None:
        self._written += rows
        self._started = False  # a new segment joined: the next pass starts over

    def postpone(self) -> None:
        """Leave the index as it is until the next share of it is written (after a failed step)."""
        self._written, self._started = 0, False

    def due(self, conn: sqlite3.Connection) -> bool:
        self.pending = self._written > 0 and self._written >= MERGE_AFTER_SHARE * self._size(conn)
        return self.pending

    def step(self, conn: sqlite3.Connection) -> None:
        """One merge step (call only when `due`); the pass ends when a step finds nothing to merge."""
        before = conn.total_changes
        conn.execute("BEGIN IMMEDIATE")
        try:
            pages = MERGE_STEP_PAGES if self._started else -MERGE_STEP_PAGES
            conn.execute("INSERT INTO match_keys (match_keys, rank) VALUES ('merge', ?)", (pages,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self.steps += 1
        self._started = True
        if conn.total_changes - before < 2:
            self._written, self._started = 0, False


def candidates(conn: sqlite3.Connection, keys: Sequence[str], *, limit: int) -> tuple[list[int], bool]:
    """Tracing ids under the keys, at most `limit` (and whether more were left out). A set that fits
    comes in id order; a cut one keeps the ids of the first keys (the most selective) first.

    One statement asks for every key at once (an FTS5 OR of the tokens, which reads each key's list just
    as a lookup of its own would): a query has 30-40 keys (from fuzzy-9 a Chinese or Korean surname's other
    spellings add 30 to 200: bench/romanized.py), and a statement per key cost more than the
    index reads themselves (FEBRL4 name + DOB + SSN: 233 against 78 µs; 10M PID_QUALIFIED 370 against
    186 µs). Only when that union is over the limit are the keys taken one by one, to choose what stays."""
    unique = list(dict.fromkeys(keys))
    if not unique:
        return [], False
    # A phrase in double quotes is one token to FTS5's query parser (no operators inside it).
    expression = " OR ".join(f'"{token(key)}"' for key in unique)
    rows = conn.execute(
        "SELECT rowid FROM match_keys WHERE match_keys MATCH ? LIMIT ?", (expression, limit + 1)
    ).fetchall()
    if len(rows) <= limit:
        return [tracing_id for (tracing_id,) in rows], False
    return _candidates_by_key(conn, unique, limit=limit)


def _candidates_by_key(conn: sqlite3.Connection, keys: Sequence[str], *, limit: int) -> tuple[list[int], bool]:
    found: dict[int, None] = {}  # insertion-ordered set: ids of the most selective keys first
    for key in keys:
        room = limit - len(found)
        rows = conn.execute(
            "SELECT rowid FROM match_keys WHERE match_keys MATCH ? LIMIT ?", (f'"{token(key)}"', room + 1 + len(found))
        ).fetchall()
        for (tracing_id,) in rows:
            found.setdefault(tracing_id)
            if len(found) > limit:
                return list(found)[:limit], True
    return list(found), False


def key_problems(conn: sqlite3.Connection) -> list[str]:
    """What an integrity check finds wrong with the key index."""
    problems = []
    try:
        conn.execute("INSERT INTO match_keys (match_keys) VALUES ('integrity-check')")
    except sqlite3.DatabaseError as error:
        problems.append(f"the match-key index is damaged ({error})")
    orphans = conn.execute(
        "SELECT count(*) FROM match_keys_content WHERE id NOT IN (SELECT id FROM tracing WHERE live = 1)"
    ).fetchone()[0]
    if orphans:
        problems.append(f"{orphans} match-key rows point at no live tracing")
    return problems
