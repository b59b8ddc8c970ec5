"""`dcii backup` / `dcii restore`: an online copy taken while a real server ingests and answers searches
restores to a store that passes its integrity check, whose audit chain verifies, and that holds every
tracing acknowledged before the backup began; restore refuses a live, non-empty or altered target."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest

from dcii.cli.backup import BackupError, backup, restore
from dcii.v1 import ingest_pb2, search_pb2, tracing_pb2
from indexer.exc import FailedPrecondition
from indexer.model import TracingKey
from indexer.store.sqlite import SqliteStore
from indexer.store.sqlite_backup import DataDirBusy, DataDirLock
from search_service.accounting import verify_file
from search_service.accreditation import Role
from tests import factories
from tests.support import ROOT, Client, free_port, make_index, server_process

SURNAMES = ["Abernathy", "Castellano", "Drummond", "Fairbanks", "Gallagher", "Holloway", "Kingsley", "Lindqvist"]
GIVEN = ["Agnes", "Bernard", "Cecilia", "Desmond", "Eleanor", "Franklin", "Gwendolyn", "Horace"]


def tracing(i: int) -> tracing_pb2.Tracing:
    return factories.person(
        record=f"NCIS-B{i:06d}",
        surname=SURNAMES[i % len(SURNAMES)],
        given=GIVEN[(i // len(SURNAMES)) % len(GIVEN)],
        middle="",
        ssn=f"{101 + i % 500:03d}-{11 + i % 80:02d}-{1001 + i % 8000:04d}",
    )


def dcii(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dcii.cli.main", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


class Load:
    """Ingest (20 tracings a call) and EXACT searches on threads, recording every acknowledged record."""

    def __init__(self, submitter: Client, querier: Client) -> None:
        self.acked: list[str] = []
        self.searches = 0
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._guard, args=(self._ingest, submitter), daemon=True),
            threading.Thread(target=self._guard, args=(self._search, querier), daemon=True),
        ]

    def _guard(self, run: object, client: Client) -> None:
        try:
            assert callable(run)
            run(client)
        except BaseException as error:
            self.errors.append(error)

    def _ingest(self, client: Client) -> None:
        i = 0
        while not self._stop.is_set():
            group = [tracing(i + j) for j in range(20)]
            results = client.upsert(*group)
            applied = ingest_pb2.INGEST_OUTCOME_APPLIED
            self.acked += [t.key.record_number for t, r in zip(group, results, strict=True) if r.outcome == applied]
            i += len(group)

    def _search(self, client: Client) -> None:
        i = 0
        while not self._stop.is_set():
            t = tracing(i)
            name = {"surname": t.subject.name.surname, "given_name": t.subject.name.given_name}
            client.search(mode=search_pb2.SEARCH_MODE_EXACT, name=name, identifiers={"ssn": t.subject.identifiers.ssn})
            self.searches += 1
            i += 7

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)
        assert not self.errors, self.errors


def test_a_backup_taken_during_ingest_restores_everything_acknowledged(tmp_path: Path) -> None:
    index = make_index(tmp_path / "live")
    submitter_cert, submitter_account, submitter_password = index.accredit("NCIS-HQ", "NCIS", [Role.SUBMITTER])
    querier_cert, querier_account, querier_password = index.accredit("ADJ-1", "DSS", [Role.QUERIER])
    backup_dir, restored = tmp_path / "backup", tmp_path / "restored" / "data"
    port = free_port()
    with server_process(index.data_dir, index.pki_dir, port):
        index.port = port
        submitter, querier = index.connect(submitter_cert), index.connect(querier_cert)
        submitter.login(submitter_account, submitter_password)
        querier.login(querier_account, querier_password)
        load = Load(submitter, querier)
        load.start()
        deadline = time.monotonic() + 60
        while (len(load.acked) < 400 or load.searches < 20) and time.monotonic() < deadline:
            time.sleep(0.05)
        acknowledged_before = list(load.acked)  # every acknowledgement received before the backup starts
        searches_before = load.searches
        done = dcii("backup", "--data", str(index.data_dir), "--out", str(backup_dir))
        assert done.returncode == 0, done.stderr
        acked_during = len(load.acked) - len(acknowledged_before)
        searches_during = load.searches - searches_before
        refused = dcii("restore", str(backup_dir), "--data", str(index.data_dir), "--force")
        load.stop()
        index.stop()
    assert refused.returncode != 0 and "busy" in refused.stderr, refused.stderr  # a running server's directory
    assert acked_during > 0 and searches_during > 0, "the load must overlap the backup"

    manifest = json.loads((backup_dir / "manifest.json").read_text())
    names = [f["name"] for f in manifest["files"]]
    assert names[:2] == ["audit.key", "instance.id"] and names[-2:] == ["audit.db.head", "audit.db"]
    assert {"registry.db", "index.db", "batch.db"} <= set(names)
    assert manifest["index_tracings"] >= len(acknowledged_before) and manifest["audit"]["ok"]
    assert (backup_dir.stat().st_mode & 0o077) == 0 and ((backup_dir / "index.db").stat().st_mode & 0o077) == 0

    done = dcii("restore", str(backup_dir), "--data", str(restored))
    assert done.returncode == 0, done.stderr
    assert "integrity ok" in done.stdout
    store = SqliteStore(restored / "index.db")
    try:
        assert store.check_integrity() == []
        missing = [r for r in acknowledged_before if store.get(TracingKey("NCIS", r)) is None]
        assert not missing, f"{len(missing)} acknowledged tracings missing, e.g. {missing[:3]}"
        assert store.count() == manifest["index_tracings"]
    finally:
        store.close()
    # The instance is the same one to its peers (search_service.peers): its id comes back with its trail.
    assert (restored / "instance.id").read_bytes() == (index.data_dir / "instance.id").read_bytes()
    verified = dcii("audit", "verify", "--data", str(restored))
    assert verified.returncode == 0 and "audit trail intact" in verified.stdout, verified.stdout

    # A server runs on the restored directory: the same accreditations, the same tracings, a working trail.
    port = free_port()
    with server_process(restored, index.pki_dir, port):
        index.port, index.data_dir = port, restored
        querier = index.connect(querier_cert)
        querier.login(querier_account, querier_password)
        first = tracing(0)
        name = {"surname": first.subject.name.surname, "given_name": first.subject.name.given_name}
        found = querier.search(
            mode=search_pb2.SEARCH_MODE_EXACT, name=name, identifiers={"ssn": first.subject.identifiers.ssn}
        )
        assert "NCIS-B000000" in {hit.tracing.key.record_number for hit in found.hits}
        index.stop()
    assert verify_file(restored / "audit.db").ok  # the server's disclosures chained onto the restored trail


def test_restore_refuses_an_altered_backup_a_non_empty_directory_and_a_held_lock(tmp_path: Path) -> None:
    index = make_index(tmp_path / "live")
    index.start()
    client = index.client("NCIS-HQ", "NCIS", [Role.SUBMITTER])
    client.upsert(*(tracing(i) for i in range(10)))
    out = tmp_path / "backup"
    out.mkdir(mode=0o755)  # made beforehand, open to all: the backup closes it
    out.chmod(0o755)
    manifest = backup(index.data_dir, out)
    assert manifest["index_tracings"] == 10 and out.stat().st_mode & 0o777 == 0o700
    with pytest.raises(BackupError, match="not empty"):
        backup(index.data_dir, out)
    with pytest.raises(DataDirBusy, match="a server or a backup is using it"):
        restore(out, index.data_dir, force=True)  # the server holds its directory
    index.stop()

    target = tmp_path / "target"
    target.mkdir()
    (target / ".incarnation").write_text("0123456789abcdef")  # a server's start drew it; `rm -rf target/*` keeps it
    assert restore(out, target)["index_tracings"] == 10
    with pytest.raises(BackupError, match="already holds data"):
        restore(out, target)
    (target / "index.db-wal").write_bytes(b"stale")  # left by another store: it must not meet the new file
    (target / "audit.lookup.db").write_bytes(b"stale")  # derived from the trail the restore replaces
    report = restore(out, target, force=True)
    replaced = Path(report["replaced"])
    assert replaced.parent == target and (replaced / "index.db").exists() and (replaced / "index.db-wal").exists()
    assert not (target / "index.db-wal").exists() and report["index_problems"] == []
    assert (replaced / "audit.lookup.db").exists() and not (target / "audit.lookup.db").exists()

    with DataDirLock(target).acquire(exclusive=True), pytest.raises(FailedPrecondition, match="restore"):
        backup(target, tmp_path / "during-restore")  # and a server would not start either (same lock)

    altered = bytearray((out / "registry.db").read_bytes())
    altered[-1] ^= 0xFF
    (out / "registry.db").write_bytes(bytes(altered))
    with pytest.raises(BackupError, match=r"registry\.db does not match the manifest"):
        restore(out, tmp_path / "other")
    manifest_text = (out / "manifest.json").read_text()
    (out / "manifest.json").write_text(manifest_text.replace('"sha256"', '"sha-256"'))  # a KeyError traceback once
    with pytest.raises(BackupError, match="without its name, kind, bytes or sha256"):
        restore(out, tmp_path / "other")
    (out / "manifest.json").unlink()
    with pytest.raises(BackupError, match=r"no manifest\.json"):
        restore(out, tmp_path / "other")


def test_a_restore_that_cannot_copy_everything_leaves_the_data_directory_as_it_was(tmp_path: Path) -> None:
    # A full disk halfway through the copy once left the old files moved aside and half a directory, on
    # which the server then started with an empty index.
    index = make_index(tmp_path / "live")
    index.start()
    index.client("NCIS-HQ", "NCIS", [Role.SUBMITTER]).upsert(*(tracing(i) for i in range(10)))
    out = tmp_path / "backup"
    backup(index.data_dir, out)
    index.stop()
    target = tmp_path / "target"
    restore(out, target)
    before = sorted(p.name for p in target.iterdir())
    largest = max((out / name).stat().st_size for name in ("registry.db", "index.db")) // 1024
    command = f"ulimit -f {largest - 1}; exec {sys.executable} -m dcii.cli.main restore {out} --data {target} --force"
    failed = subprocess.run(["bash", "-c", command], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert failed.returncode == 1 and "unchanged" in failed.stderr, failed.stderr
    assert sorted(p.name for p in target.iterdir()) == before  # no copies left behind, nothing moved aside
    store = SqliteStore(target / "index.db")
    try:
        assert store.count() == 10
    finally:
        store.close()


def test_a_server_does_not_start_on_a_directory_being_restored(tmp_path: Path) -> None:
    index = make_index(tmp_path)
    with DataDirLock(index.data_dir).acquire(exclusive=True), pytest.raises(DataDirBusy, match="a restore"):
        index.start()
    index.start()  # the lock released: it starts
    try:
        client = index.client("ADJ-1", "DSS", [Role.QUERIER])
        with pytest.raises(grpc.RpcError) as refused:
            client.search(mode=search_pb2.SEARCH_MODE_EXACT, name={"surname": "A", "given_name": "B"})
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # served: no PID, refused by the criteria
    finally:
        index.stop()


def test_the_databases_are_copied_as_of_one_moment(tmp_path: Path) -> None:
    # Copied one after the other, each database was its own moment, minutes apart at 10M tracings: a dispute
    # filed meanwhile came back as its notices and event without the record's annotation. Every snapshot is
    # now pinned first, then copied: writes after the pins are in none of the copies, whatever the order.
    import sqlite3

    from indexer.store.sqlite_backup import copy_database, pin_snapshot

    paths = [tmp_path / f"{name}.db" for name in ("index", "privacy")]
    for path in paths:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (x)")
        conn.execute("INSERT INTO t VALUES ('before')")
        conn.close()
    pins = [pin_snapshot(path) for path in paths]
    for path in paths:  # a dispute's writes, after the moment: the record's annotation, then its notices
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("INSERT INTO t VALUES ('after')")
        conn.close()
    for path, pin in zip(paths, pins, strict=True):
        copy_database(path, tmp_path / f"copy-{path.name}", snapshot=pin)
        pin.close()
        copied = sqlite3.connect(tmp_path / f"copy-{path.name}")
        assert [row[0] for row in copied.execute("SELECT x FROM t")] == ["before"]
        copied.close()


def test_a_backup_without_an_index_does_not_replace_one(tmp_path: Path) -> None:
    """A backup of a server on OpenSearch holds no index.db: restored with --force over an embedded
    server's directory, its index.db went aside and the next start served an empty index (exit 0)."""
    index = make_index(tmp_path / "live")
    index.start()
    index.client("NCIS-HQ", "NCIS", [Role.SUBMITTER]).upsert(*(tracing(i) for i in range(10)))
    index.stop()
    out = tmp_path / "backup"
    backup(index.data_dir, out)
    manifest = json.loads((out / "manifest.json").read_text())
    (out / "index.db").unlink()  # as `dcii backup` of an OpenSearch server's directory makes it
    manifest["files"] = [entry for entry in manifest["files"] if entry["name"] != "index.db"]
    del manifest["index_tracings"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    refused = dcii("restore", str(out), "--data", str(index.data_dir), "--force")
    assert refused.returncode == 1 and "the backup holds no index.db" in refused.stderr, refused.stderr
    store = SqliteStore(index.data_dir / "index.db")
    try:
        assert store.count() == 10
    finally:
        store.close()
    assert not any(p.name.startswith("replaced-") for p in index.data_dir.iterdir())
    assert restore(out, tmp_path / "empty")["audit"]["ok"]  # into a directory without an index: as before


def test_a_backup_that_fails_says_so_in_one_line_and_leaves_no_copy(tmp_path: Path) -> None:
    """A full disk, or a damaged source: a traceback, and a directory of copies (every SSN) without a manifest."""
    index = make_index(tmp_path / "live")
    index.start()
    index.client("NCIS-HQ", "NCIS", [Role.SUBMITTER]).upsert(*(tracing(i) for i in range(200)))
    index.stop()
    size = (index.data_dir / "index.db").stat().st_size // 1024
    out = tmp_path / "full"
    command = (
        f"ulimit -f {size // 2}; exec {sys.executable} -m dcii.cli.main backup --data {index.data_dir} --out {out}"
    )
    full = subprocess.run(["bash", "-c", command], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert full.returncode == 1 and "Traceback" not in full.stderr, full.stderr
    assert full.stderr.strip().splitlines()[-1].startswith("backup failed:"), full.stderr
    assert "the unfinished copy was removed" in full.stderr and not out.exists()
    with (index.data_dir / "index.db").open("r+b") as handle:  # damage past the header: pages scribbled over
        handle.seek(8192)
        handle.write(b"\xa5" * 65536)
    out.mkdir()
    damaged = dcii("backup", "--data", str(index.data_dir), "--out", str(out))
    assert damaged.returncode == 1 and "Traceback" not in damaged.stderr, damaged.stderr
    last = damaged.stderr.strip().splitlines()[-1]
    assert last.startswith("backup failed:") and "index.db" in last, last
    assert out.is_dir() and list(out.iterdir()) == []  # made beforehand: kept, emptied
