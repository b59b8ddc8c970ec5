"""The embedded store's blocking-key index (indexer.store.sqlite_keys): tokens, updates, the upgrade of a
schema-2 file whose keys were a (key, tracing_id) table, of a schema-3 file whose keys are of version 1
(no `n` twins, the SSN windows), of a schema-4 file whose keys are of version 2 (the SSN windows), and of
files of schema 5 and 6, whose keys are of version 3 (no keys of a compound surname's parts)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from jellyfish import nysiis

from indexer.analysis import analyze
from indexer.codec_head import head_from_text, head_ssn
from indexer.demo import generate_tracings
from indexer.match_keys import KEYS_VERSION, NO_SSN, full_ssn, tracing_keys
from indexer.model import Tracing
from indexer.normalize import exact_key
from indexer.store.base import Delete, TracingHead, Upsert
from indexer.store.sqlite import SqliteStore
from indexer.store.sqlite_keys import keys_text, token
from indexer.store.sqlite_schema import SCHEMA_VERSION, require_index_file
from tests.support import ROOT

TODAY = dt.date(2026, 11, 21)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("a:PARNAL|IVAN", "a:PARNAL|IVAN"),
        ("b:19970816", "b:19970816"),
        ("o:DE LA CRUZ", "x" + b"o:DE LA CRUZ".hex()),  # a space would split the token
        ("o:O'BRIEN", "x" + b"o:O'BRIEN".hex()),
        ("o:MÜLLER", "x" + "o:MÜLLER".encode().hex()),
        ("ABC", "x" + b"ABC".hex()),  # no family prefix: never equal to a plain key
    ],
)
def test_a_key_is_one_token(key: str, expected: str) -> None:
    assert token(key) == expected


def test_every_key_of_a_tracing_finds_it_and_only_its_current_keys(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    try:
        pool = list(generate_tracings(50, seed=11, today=TODAY))
        first = pool[0]
        second = next(t for t in pool if not tracing_keys(t) & tracing_keys(first))  # someone else entirely
        store.write([Upsert(first), Upsert(second)], actor="t")
        for key in tracing_keys(first):
            found = store.load(store.candidates([key], limit=10)[0])
            assert [s.tracing.key for s in found.values()] == [first.key]
        (first_id,) = store.candidates([min(tracing_keys(first))], limit=10)[0]

        # A new version under other names: the old keys no longer find it, the new ones do.
        moved = dataclasses.replace(second, key=first.key, source_version=first.source_version + 1)
        store.write([Upsert(moved)], actor="t")
        gone = tracing_keys(first) - tracing_keys(moved)
        assert gone, "the two demo tracings share every key"
        assert all(first_id not in store.candidates([key], limit=10)[0] for key in gone)
        assert all(first_id in store.candidates([key], limit=10)[0] for key in tracing_keys(moved))

        store.write([Delete(first.key, first.source_version + 2, "test")], actor="t")
        assert all(first_id not in store.candidates([key], limit=10)[0] for key in tracing_keys(moved))
        assert store.check_integrity() == []
    finally:
        store.close()


def test_candidates_are_bounded_and_say_when_more_were_left(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    try:
        tracings = list(generate_tracings(300, seed=5, today=TODAY))
        store.write([Upsert(t) for t in tracings], actor="t")
        commonest = max(
            {k for t in tracings for k in tracing_keys(t)},
            key=lambda k: sum(k in tracing_keys(t) for t in tracings),
        )
        holding = sum(commonest in tracing_keys(t) for t in tracings)
        assert holding > 3
        found, more = store.candidates([commonest], limit=holding - 1)
        assert (len(found), more) == (holding - 1, True)
        found, more = store.candidates([commonest], limit=holding)
        assert (len(found), more) == (holding, False)
        assert found == sorted(found)  # a key's tracings in id order
    finally:
        store.close()


def _as_schema_2(path: Path) -> None:
    """Rewrite a current file's key index the way schema 2 held it: a (key, tracing_id) table."""
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE match_key (key TEXT NOT NULL, tracing_id INTEGER NOT NULL,"
            " PRIMARY KEY (key, tracing_id)) WITHOUT ROWID"
        )
        rows = conn.execute("SELECT id, body FROM tracing WHERE live = 1").fetchall()
        conn.execute("DROP TABLE match_keys")
        conn.execute("INSERT INTO match_key VALUES ('o:STALE', 1)")
        conn.execute("ALTER TABLE tracing DROP COLUMN head")  # nor had it the heads (indexer.codec_head)
        conn.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    conn.close()
    assert rows


def test_a_schema_2_file_gets_its_keys_indexed_once_on_open(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    tracings = list(generate_tracings(50, seed=3, today=TODAY))
    store = SqliteStore(path)
    store.write([Upsert(t) for t in tracings], actor="t")
    store.write([Delete(tracings[0].key, tracings[0].source_version + 1, "test")], actor="t")
    store.close()
    _as_schema_2(path)

    store = SqliteStore(path)
    try:
        for tracing in tracings:
            for key in tracing_keys(tracing):
                found = store.load(store.candidates([key], limit=1000)[0])
                held = {stored.tracing.key for stored in found.values()}
                assert (tracing.key in held) is (tracing is not tracings[0]), "live tracings only, by every key"
        ids = list(range(1, len(tracings) + 1))
        heads, loaded = store.load_heads(ids), store.load(ids)
        assert len(heads) == len(tracings) - 1 and heads == {i: TracingHead.of(s.tracing) for i, s in loaded.items()}
        assert store.check_integrity() == []
    finally:
        store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (SCHEMA_VERSION,)
        assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'match_key'").fetchone() is None
    conn.close()


def _with_ssn_windows(keys: str, ssn: str) -> str:
    """A tracing's keys text with its SSN keys as keys versions 1 and 2 wrote them (windows of 3 digits)."""
    d = full_ssn(ssn)
    windows = [f"s0:{d[3:]}", f"s2:{d[:2]}{d[5:]}", f"s4:{d[:4]}{d[7:]}", f"s6:{d[:6]}"] if d else []
    return " ".join([*(key for key in keys.split() if not key.startswith("w")), *windows])


def _without_part_keys(keys: str, head: str) -> str:
    """A tracing's keys text as keys versions 1 to 3 wrote it: without the `o`/`o0` keys of its surnames'
    parts, nor the `a` keys of the later words of its given names (keys version 4)."""
    subject = head_from_text(head) if head else None
    analyses = [analyze(name) for name in subject.all_names()] if subject is not None else []
    parts = {part for a in analyses for part in a.surname_parts[1:]} - {a.surname for a in analyses}
    gone = {f"{family}:{part}" for part in parts for family in ("o", "o0")}
    for a in analyses:
        kept = {nysiis(form) for form in a.given_forms}
        for code in {nysiis(form) for form in a.given_word_forms - a.given_forms} - kept:
            gone |= {f"a:{nysiis(part) if i else a.surname_nysiis}|{code}" for i, part in enumerate(a.surname_parts)}
    gone |= {NO_SSN + key for key in gone}
    return " ".join(key for key in keys.split() if key not in gone)


def _as_older_schema(path: Path, schema: str, *, after: int = 0) -> None:
    """Rewrite a current file's keys the way an older schema held them: 6 and 5 (keys version 3) without
    the keys of a compound surname's parts; 4 (keys version 2) with the SSN windows too; 3 (keys version 1)
    without the `n` twins too. Only the tracings with an id over `after`."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT m.rowid, m.keys, t.head FROM match_keys m JOIN tracing t ON t.id = m.rowid WHERE t.id > ?",
            (after,),
        ).fetchall()
        old = [(_without_part_keys(keys, head), i, head) for i, keys, head in rows]
        if schema in ("3", "4"):
            old = [(_with_ssn_windows(keys, head_ssn(head) if head else ""), i, head) for keys, i, head in old]
        if schema == "3":
            old = [(" ".join(k for k in keys.split() if not k.startswith(NO_SSN)), i, h) for keys, i, h in old]
        conn.executemany("UPDATE match_keys SET keys = ? WHERE rowid = ?", [(keys, i) for keys, i, _ in old])
        if schema == "3":
            conn.execute("DELETE FROM meta WHERE key = 'keys_version'")
        else:
            conn.execute("UPDATE meta SET value = ? WHERE key = 'keys_version'", ("2" if schema == "4" else "3",))
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (schema,))
    conn.close()


def _stored_keys(path: Path) -> dict[int, set[str]]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT rowid, keys FROM match_keys").fetchall()
    conn.close()
    return {i: set(keys.split()) for i, keys in rows}


# Compound surnames, which the demo's census surnames never are: one in ten of `_written`'s tracings.
_COMPOUND = ("Garcia Marquez", "de la Cruz", "Whitfield-Moore", "van der Berg", "Ruiz y Lopez", "Nguyen")
_GIVEN = {"Ruiz y Lopez": "", "Nguyen": "Thi Lan"}  # a given-less record, a given name of two words


def _with_compound_surnames(tracings: list[Tracing]) -> list[Tracing]:
    out = []
    for index, original in enumerate(tracings):
        subject, written = original.subject, original
        if index % 10 == 3 and subject is not None:
            surname = _COMPOUND[index // 10 % len(_COMPOUND)]
            given = _GIVEN.get(surname, subject.name.given_name)
            name = dataclasses.replace(subject.name, surname=surname, given_name=given)
            written = dataclasses.replace(original, subject=dataclasses.replace(subject, name=name))
        out.append(written)
    return out


def _written(path: Path, seed: int, count: int = 200) -> dict[int, set[str]]:
    """A store of `count` demo tracings at `path` (some with compound surnames), closed; the keys it stored
    (the current version's)."""
    store = SqliteStore(path)
    tracings = _with_compound_surnames(list(generate_tracings(count, seed=seed, today=TODAY)))
    store.write([Upsert(t) for t in tracings], actor="t")
    store.close()
    return _stored_keys(path)


def test_a_schema_4_file_gets_the_ssn_keys_of_version_3_on_open(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    current = _written(path, seed=5)
    _as_older_schema(path, "4")
    older = _stored_keys(path)
    assert older != current and not any(key.startswith("w") for keys in older.values() for key in keys)

    store = SqliteStore(path)
    try:
        assert store.keys_version() == KEYS_VERSION == 4
        assert store.check_integrity() == []
    finally:
        store.close()
    assert _stored_keys(path) == current, "every tracing's keys as the current version writes them"
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'rekey'").fetchone() is None, "the rewrite is done"
    conn.close()


@pytest.mark.parametrize("schema", ["5", "6"])
def test_a_file_of_keys_version_3_gets_the_keys_of_names_of_several_words_on_open(tmp_path: Path, schema: str) -> None:
    """GARCIA asked alone found no GARCIA MARQUEZ, nor NGUYEN LAN NGUYEN THI LAN: keys version 4 stores each
    surname part's `o` key and each given word's `a` keys. An older file has only the tracings with a name of
    several words rewritten; the rest keep their keys as they are."""
    path = tmp_path / "old.db"
    current = _written(path, seed=8)
    _as_older_schema(path, schema)
    # `dcii index check / repair / migrate --from` called a schema-6 file newer than this program's.
    assert require_index_file(path, older_ok=True) is False
    older = _stored_keys(path)
    changed = {i for i in current if older[i] != current[i]}
    assert len(changed) == 20  # one in ten of 200
    missing = {key.removeprefix(NO_SSN).partition(":")[0] for i in changed for key in current[i] - older[i]}
    assert missing == {"o", "o0", "a"} and all(older[i] < current[i] for i in changed)
    with sqlite3.connect(path) as conn:  # a tracing whose keys the upgrade must leave alone: a stale key
        unchanged = min(set(current) - changed)
        conn.execute("UPDATE match_keys SET keys = keys || ' o:STALE' WHERE rowid = ?", (unchanged,))
    conn.close()

    store = SqliteStore(path)
    try:
        assert store.keys_version() == KEYS_VERSION == 4
        assert store.check_integrity() == []
        for part in ("GARCIA", "MARQUEZ", "CRUZ", "WHITFIELD", "MOORE", "BERG", "RUIZ", "LOPEZ"):
            found = store.load(store.candidates([f"o:{part}"], limit=1000)[0])
            assert any(part in exact_key(s.tracing.subject.name.surname) for s in found.values() if s.tracing.subject)
        found = store.load(store.candidates([f"a:{nysiis('NGUYEN')}|{nysiis('LAN')}"], limit=1000)[0])
        assert {s.tracing.subject.name.given_name for s in found.values() if s.tracing.subject} == {"Thi Lan"}
    finally:
        store.close()
    after = _stored_keys(path)
    assert after[unchanged] == current[unchanged] | {"o:STALE"}, "only the compound surnames' tracings rewritten"
    del after[unchanged], current[unchanged]
    assert after == current


def test_a_rewrite_of_the_keys_cut_short_is_finished_on_the_next_open(tmp_path: Path) -> None:
    """The keys are rewritten one batch a transaction, each moving a mark on: a process stopped halfway
    leaves the tracings up to the mark rewritten and the file marked schema 5 (which an older program
    refuses); the next open rewrites the rest, and only the rest."""
    path = tmp_path / "half.db"
    current = _written(path, seed=6)
    middle = sorted(current)[len(current) // 2]
    _as_older_schema(path, "4", after=middle)  # the tracings past the mark still hold the windows
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (SCHEMA_VERSION,))
        conn.execute("UPDATE meta SET value = ? WHERE key = 'keys_version'", (str(KEYS_VERSION),))
        conn.execute("INSERT INTO meta VALUES ('rekey', ?)", (f"all:{middle}",))
        # A tracing before the mark whose keys the rest of the rewrite must leave alone: a stale key.
        conn.execute("UPDATE match_keys SET keys = keys || ' o:STALE' WHERE rowid = ?", (middle,))
    conn.close()

    SqliteStore(path).close()
    after = _stored_keys(path)
    assert after[middle] == current[middle] | {"o:STALE"}, "what the mark covers is not rewritten again"
    del after[middle], current[middle]
    assert after == current


def test_a_rewrite_an_older_program_left_unfinished_is_finished_with_this_one_s(tmp_path: Path) -> None:
    """A schema-5 file whose rewrite of the SSN keys (keys version 3) was cut short: this program's upgrade
    marked only the compound surnames' tracings to rewrite, and the SSN keys past the mark stayed windows."""
    path = tmp_path / "half5.db"
    current = _written(path, seed=9)
    middle = sorted(current)[len(current) // 2]
    _as_older_schema(path, "4", after=middle)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = '5' WHERE key = 'schema_version'")  # as the older program left it
        conn.execute("UPDATE meta SET value = '3' WHERE key = 'keys_version'")
        conn.execute("INSERT INTO meta VALUES ('rekey', ?)", (f"ssn:{middle}",))
    conn.close()

    SqliteStore(path).close()
    assert _stored_keys(path) == current
    assert _mark(path) is None


def test_a_schema_3_file_gets_the_twins_of_tracings_without_an_ssn_on_open(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    tracings = list(generate_tracings(200, seed=4, today=TODAY))
    without = [t for t in tracings if t.subject is not None and not full_ssn(t.subject.identifiers.ssn)]
    assert 0 < len(without) < len(tracings) // 2
    store = SqliteStore(path)
    store.write([Upsert(t) for t in tracings], actor="t")
    store.close()
    _as_older_schema(path, "3")
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM match_keys WHERE keys LIKE 'n%' OR keys LIKE '% n%'").fetchone() == (
            0,
        )
    conn.close()

    store = SqliteStore(path)
    try:
        assert store.keys_version() == KEYS_VERSION == 4
        for tracing in tracings:
            twins = {key for key in tracing_keys(tracing) if key.startswith(NO_SSN)}
            assert bool(twins) is (tracing in without), "twins for a tracing without a full SSN only"
            for key in twins:
                found = store.load(store.candidates([key], limit=1000)[0])
                assert tracing.key in {stored.tracing.key for stored in found.values()}
                assert all(not full_ssn(s.tracing.subject.identifiers.ssn) for s in found.values() if s.tracing.subject)
        assert store.check_integrity() == []
    finally:
        store.close()


@pytest.mark.parametrize(
    "keys",
    [
        ["a:PARNAL|IVAN", "b:19970816"],
        ["a:PARNAL|IVAN", "o:DE LA CRUZ"],
        ["o:DE LA", "CRUZ"],
        ["o:MÜLLER", "r:JOHN"],
        ["r:JOHN", "JOHN"],
    ],
)
def test_a_tracing_s_text_holds_each_key_as_its_own_token(keys: list[str]) -> None:
    assert keys_text(keys) == " ".join(token(key) for key in keys)


def _segments(path: Path) -> int:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        found = conn.execute("SELECT count(DISTINCT segid) FROM match_keys_idx").fetchone()[0]
    conn.close()
    return int(found)


def test_the_writer_merges_the_key_index_into_one_segment_once_idle(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SqliteStore(path)
    try:
        tracings = list(generate_tracings(400, seed=8, today=TODAY))
        for start in range(0, len(tracings), 20):  # one segment a transaction, as connectors send them
            store.write([Upsert(t) for t in tracings[start : start + 20]], actor="t")
        assert _segments(path) > 1
        assert store.wait_key_index_merged(timeout=30)
        assert _segments(path) == 1
        for tracing in tracings[::7]:
            for key in tracing_keys(tracing):
                found = store.load(store.candidates([key], limit=1000)[0])
                assert tracing.key in {stored.tracing.key for stored in found.values()}
        assert store.check_integrity() == []
        # A few more writes (under the share that calls for a merge) are not merged again at once.
        store.write(
            [Upsert(dataclasses.replace(tracings[0], source_version=tracings[0].source_version + 1))], actor="t"
        )
        time.sleep(3)
        assert _segments(path) == 2
    finally:
        store.close()


def _mark(path: Path) -> str | None:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as conn:
        found = conn.execute("SELECT value FROM meta WHERE key = 'rekey'").fetchone()
    conn.close()
    return None if found is None else str(found[0])


def test_a_process_killed_while_rewriting_the_keys_leaves_a_file_the_next_open_finishes(tmp_path: Path) -> None:
    """A real process upgrading a schema-4 file (20 tracings a transaction, so that there are many) is
    killed outright once the rewrite has passed a tracing chosen at random in the first half; the next open
    finishes it: every tracing's keys as the current version writes them, the index sound."""
    path = tmp_path / "killed.db"
    current = _written(path, seed=7, count=3000)
    _as_older_schema(path, "4")
    ids = sorted(current)
    kill_after = random.choice(ids[len(ids) // 10 : len(ids) // 2])
    upgrade = "import sys; from pathlib import Path; from indexer.store.sqlite_schema import connect, prepare; "
    upgrade += "prepare(connect(Path(sys.argv[1])), rekey_batch=20)"
    child = subprocess.Popen([sys.executable, "-c", upgrade, str(path)], cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while child.poll() is None and time.monotonic() < deadline:
            mark = _mark(path)
            if mark is not None and int(mark.partition(":")[2]) >= kill_after:
                break
            time.sleep(0.001)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL, f"the upgrade ended before the kill (exit {child.returncode})"
    assert _mark(path) is not None, "the kill left the rewrite under way"
    assert _stored_keys(path) != current

    store = SqliteStore(path)
    try:
        assert store.check_integrity() == []
    finally:
        store.close()
    assert _stored_keys(path) == current
    assert _mark(path) is None
