"""Tamper evidence of the audit trail, on real SQLite files (tests/test_accounting.py has the recording): an
untouched trail verifies, each row chains the hash of the one before, and `verify` (of the file, and of an open
log) names the first bad entry for each kind of tampering, done with sqlite3 and file writes as an attacker
would; writing on after a cut keeps the evidence; a cut tail with both heads rewritten is the known limit."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from search_service.accounting import AuditLog, VerifyResult, verify_file
from tests import test_accounting
from tests.test_accounting import ENTRIES, entry, head_file, tamper

# The fixtures these tests take, bound here by name so pytest finds them (importing them would do the same, but
# ruff reads each test's parameter of that name as a redefinition of an unused import, F811).
key, db, trail = test_accounting.key, test_accounting.db, test_accounting.trail


def rehash_from(db: Path, seq: int) -> None:
    """Recompute entry `seq`'s hash from its (altered) content, as a careful attacker would."""
    conn = sqlite3.connect(db)
    try:
        prev, text = conn.execute("SELECT prev_hash, canonical FROM entry WHERE seq = ?", (seq,)).fetchone()
        digest = hashlib.sha256(bytes.fromhex(prev) + text.encode()).hexdigest()
        conn.execute("DROP TRIGGER IF EXISTS entry_never_changed")
        conn.execute("UPDATE entry SET hash = ? WHERE seq = ?", (digest, seq))
        conn.commit()
    finally:
        conn.close()


def assert_broken(db: Path, key: bytes, first_bad: int | None, words: str) -> None:
    for result in (verify_file(db), _verify_online(db, key)):
        assert not result.ok, result
        assert result.first_bad == first_bad, result
        assert words in result.reason, result


def _verify_online(db: Path, key: bytes) -> VerifyResult:
    with AuditLog(db, key=key) as log:
        return log.verify()


# ---- tamper evidence ----


def test_an_untouched_trail_verifies(trail: Path, key: bytes) -> None:
    for result in (verify_file(trail), _verify_online(trail, key)):
        assert result.ok and result.entries == ENTRIES and result.first_bad is None, result
    record = json.loads(head_file(trail).read_text())
    assert record["seq"] == ENTRIES and len(record["hash"]) == 64


def test_each_row_is_seq_canonical_json_prev_hash_and_hash(trail: Path) -> None:
    conn = sqlite3.connect(trail)
    try:
        table = conn.execute("SELECT seq, canonical, prev_hash, hash FROM entry ORDER BY seq").fetchall()
    finally:
        conn.close()
    prev = "0" * 64
    for seq, text, prev_hash, digest in table:
        document = json.loads(text)
        assert text == json.dumps(document, sort_keys=True, separators=(",", ":"))
        assert document["seq"] == seq and document["record_number"] == f"R-{seq:04d}"
        assert prev_hash == prev
        assert digest == hashlib.sha256(bytes.fromhex(prev_hash) + text.encode()).hexdigest()
        prev = digest
    assert json.loads(head_file(trail).read_text()) == {"seq": ENTRIES, "hash": prev}


@pytest.mark.parametrize(
    ("statements", "rehash", "first_bad", "words"),
    [
        (["UPDATE entry SET canonical = replace(canonical, 'ONLINE', 'BATCH') WHERE seq = 4"], None, 4, "altered"),
        (["UPDATE entry SET canonical = replace(canonical, 'adj-0007', 'adj-0008') WHERE seq = 4"], 4, 4, "altered"),
        (["UPDATE entry SET canonical = replace(canonical, 'R-0001', 'R-9999') WHERE seq = 1"], None, 1, "altered"),
        (["UPDATE entry SET canonical = replace(canonical, '\"v\":1', '\"v\": 1') WHERE seq = 6"], None, 6, "altered"),
        (["UPDATE entry SET canonical = replace(canonical, 'R-0010', 'R-9999') WHERE seq = 10"], 10, 10, "head"),
        (["DELETE FROM entry WHERE seq = 5"], None, 5, "entry 5 is missing"),
        (["DELETE FROM entry WHERE seq = 1"], None, 1, "entry 1 is missing"),
        (
            [
                "UPDATE entry SET seq = -1 WHERE seq = 3",
                "UPDATE entry SET seq = 3 WHERE seq = 7",
                "UPDATE entry SET seq = 7 WHERE seq = -1",
            ],
            None,
            3,
            "reordered",
        ),
        (["DELETE FROM entry WHERE seq >= 8"], None, 8, "tail was cut (database head)"),
        (
            [
                "DELETE FROM entry WHERE seq >= 8",
                "UPDATE head SET seq = 7, hash = (SELECT hash FROM entry WHERE seq = 7)",
            ],
            None,
            8,
            "tail was cut (head file)",
        ),
        (["DELETE FROM head"], None, None, "database is missing"),
    ],
    ids=[
        "alter",
        "alter-and-rehash",
        "alter-first",
        "alter-spacing",
        "alter-last-and-rehash",
        "remove-middle",
        "remove-first",
        "reorder",
        "cut-tail",
        "cut-tail-and-database-head",
        "remove-database-head",
    ],
)
def test_verify_names_the_first_bad_entry(
    trail: Path, key: bytes, statements: list[str], rehash: int | None, first_bad: int | None, words: str
) -> None:
    tamper(trail, *statements)
    if rehash is not None:
        rehash_from(trail, rehash)
    assert_broken(trail, key, first_bad, words)


@pytest.mark.parametrize("keep", [0, 12, -1], ids=["emptied", "cut-short", "removed"])
def test_verify_catches_a_truncated_or_missing_head_file(trail: Path, key: bytes, keep: int) -> None:
    path = head_file(trail)
    if keep < 0:
        path.unlink()
    else:
        path.write_bytes(path.read_bytes()[:keep])
    # The chain itself is whole; what is lost is the anchor that proves its tail is the real one.
    assert_broken(trail, key, None, "head file")


def test_a_cut_tail_is_caught_until_both_heads_are_rewritten_the_known_limit(trail: Path, key: bytes) -> None:
    old = head_file(trail).read_bytes()
    with AuditLog(trail, key=key) as log:
        log.record_disclosures([entry("R-0011")])
    tamper(
        trail,
        "DELETE FROM entry WHERE seq = 11",
        "UPDATE head SET seq = 10, hash = (SELECT hash FROM entry WHERE seq = 10)",
    )
    assert_broken(trail, key, 11, "tail was cut")
    head_file(trail).write_bytes(old)  # ...and the head file too: the one thing verify cannot see
    assert verify_file(trail).ok


def test_writing_on_after_a_cut_keeps_the_evidence(trail: Path, key: bytes) -> None:
    tamper(
        trail,
        "DELETE FROM entry WHERE seq >= 8",
        "UPDATE head SET seq = 7, hash = (SELECT hash FROM entry WHERE seq = 7)",
    )
    with AuditLog(trail, key=key) as log:
        log.record_disclosures([entry("R-NEW")])  # the server goes on: the head file is rewritten
        [anchor] = [e for e in log.events() if e.kind == "AUDIT_ANCHOR_MISMATCH"]
        assert anchor.seq == 8 and anchor.detail == {"state": "ahead", "file_seq": "10", "db_seq": "7"}
    assert_broken(trail, key, 8, "entries 8 to 10 were cut from the tail")


def test_writing_on_after_the_head_file_was_emptied_keeps_the_evidence(trail: Path, key: bytes) -> None:
    head_file(trail).write_bytes(b"")
    with AuditLog(trail, key=key) as log:
        log.record_disclosures([entry("R-NEW")])
    assert_broken(trail, key, 11, "head file was unreadable")


def test_a_head_file_one_commit_behind_is_an_interrupted_write_not_a_break(trail: Path, key: bytes) -> None:
    # A crash after the commit and before the rename leaves the previous head file in place.
    conn = sqlite3.connect(trail)
    try:
        (previous,) = conn.execute("SELECT hash FROM entry WHERE seq = 9").fetchone()
    finally:
        conn.close()
    head_file(trail).write_text(json.dumps({"hash": previous, "seq": 9}, separators=(",", ":")) + "\n")
    result = verify_file(trail)
    assert result.ok and result.entries == ENTRIES and "lags at entry 9" in result.reason
    with AuditLog(trail, key=key) as log:
        log.record_disclosures([entry("R-0011")])
        assert log.events() == []  # no mismatch recorded
        assert log.verify() == verify_file(trail)
    assert verify_file(trail).reason == "intact"
    assert json.loads(head_file(trail).read_text())["seq"] == 11
