"""Storage faults against a real server subprocess: a full disk, and an audit trail that cannot be written.

Two real ways to make writes fail, each test run with both:
- `tmpfs`: the data directory on a small tmpfs (`mount -t tmpfs -o size=...`; needs root, as CI has),
  filled to the last page with a ballast file. Writes fail with ENOSPC, as on a full disk; deleting the
  ballast gives the space back.
- `fsize`: the server's RLIMIT_FSIZE lowered under its files' sizes (prlimit on the running process), so
  that every write past it fails with EFBIG; raising it gives the "space" back. Works without a mount.

What must hold: ingest answers with a clear status (RESOURCE_EXHAUSTED or UNAVAILABLE, a message saying
the storage is full or cannot be written, and no name, SSN or date of birth in it or in the server's log);
nothing half-written (every action is stored exactly when it was acknowledged); a search that would
disclose fails closed with UNAVAILABLE and discloses nothing (no hit sent, no accounting entry); and once
space returns, the same server ingests and answers again, its store passes the integrity check and its
audit chain verifies.
"""

from __future__ import annotations

import contextlib
import errno
import sqlite3
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2

from dcii.v1 import ingest_pb2, search_pb2
from indexer.model import TracingKey
from search_service import pki, readiness
from search_service.accreditation import Role
from tests import factories as f
from tests.server_proc import check_files, record, set_fsize, spawn_server, ssn
from tests.support import Client, Index, audit_entries, free_port, health, health_becomes, make_index

APPLIED, UNCHANGED = ingest_pb2.INGEST_OUTCOME_APPLIED, ingest_pb2.INGEST_OUTCOME_UNCHANGED
STORAGE_CODES = (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE)
PII = ("WHITFIELD", "Whitfield", "HAROLD", "Harold", "1971-04-12", "318524471", "318-52-4471")


@contextlib.contextmanager
def tmpfs(where: Path, size: str) -> Iterator[bool]:
    """Mount a tmpfs of `size` at `where`; yields whether the mount worked (root and CAP_SYS_ADMIN)."""
    where.mkdir(parents=True)
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(where)], check=True)
    except (OSError, subprocess.CalledProcessError):
        yield False
        return
    try:
        yield True
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(directory: Path) -> Path:
    """Write a ballast file until the filesystem has not one page left."""
    ballast = directory / "ballast"
    with ballast.open("wb", buffering=0) as out:
        for size in (1 << 20, 1 << 12, 1):
            try:
                while True:
                    out.write(b"\0" * size)
            except OSError as error:
                assert error.errno == errno.ENOSPC, error
    return ballast


class StorageFaults:
    """Storage a running server writes to, made to fail and repaired: its tmpfs filled to the last page
    (`how` "tmpfs"), or the server process's largest file set under any it writes ("fsize")."""

    index: Index
    how: str
    ballast: Path | None

    def server_pid(self) -> int:
        raise NotImplementedError

    def break_storage(self) -> None:
        if self.how == "tmpfs":
            self.ballast = fill(self.index.data_dir)
        else:
            set_fsize(self.server_pid(), 4096)  # smaller than every file the server writes

    def repair_storage(self) -> None:
        if self.ballast is not None:
            self.ballast.unlink()
            self.ballast = None
        else:
            set_fsize(self.server_pid(), -1)


@dataclass
class Faulty(StorageFaults):
    """A running server on storage that can be made to fail, and the clients of the test."""

    index: Index
    server: subprocess.Popen[bytes]
    how: str
    submitter: Client
    querier: Client
    log: Path
    ballast: Path | None = None

    def server_pid(self) -> int:
        return self.server.pid


@contextlib.contextmanager
def breakable_index(tmp_path: Path, how: str) -> Iterator[Index]:
    """An index (not started) whose data directory is on storage `StorageFaults` can break `how`: a 48 MB
    tmpfs ("tmpfs"; skipped where no mount is allowed) or the test's own directory ("fsize")."""
    pki_dir, data_dir = tmp_path / "pki", tmp_path / "data"
    with tmpfs(data_dir, "48m") if how == "tmpfs" else contextlib.nullcontext(True) as mounted:
        if not mounted:
            pytest.skip("cannot mount a tmpfs here (needs root); the fsize variant injects the same fault")
        data_dir.mkdir(exist_ok=True)
        pki.init_pki(pki_dir, activities=[])
        yield Index(pki_dir, data_dir, pki.load_issued(pki_dir, "ca"), port=free_port())


@pytest.fixture(params=["tmpfs", "fsize"])
def faulty(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Faulty]:
    how: str = request.param
    with breakable_index(tmp_path, how) as index:
        pki_dir, data_dir = index.pki_dir, index.data_dir
        submitter = index.accredit("NCIS-RA-01", "NCIS", [Role.SUBMITTER])
        querier = index.accredit("CCF-TERM", "ARMY-CCF", [Role.QUERIER])
        log = tmp_path / "server.log"
        with spawn_server(data_dir, pki_dir, index.port, stderr=log) as server:
            clients = []
            for cert, account, password in (submitter, querier):
                client = index.connect(cert)
                client.login(account, password)  # before the fault: a login writes the registry
                clients.append(client)
            try:
                yield Faulty(index, server, how, clients[0], clients[1], log)
            finally:
                for client in clients:
                    client.close()
        check_files(data_dir).close()  # after the server is gone: integrity and the audit chain


def _tracings(first: int, count: int) -> list[ingest_pb2.IngestRequest]:
    return [f.upsert(f.person(record=f"NCIS-{n:06d}", ssn=ssn(n))) for n in range(first, first + count)]


def _push(client: Client, requests: list[ingest_pb2.IngestRequest]) -> tuple[dict[str, int], grpc.RpcError | None]:
    """Stream `requests`; (request id -> outcome of each result received, the error that ended it)."""
    outcomes: dict[str, int] = {}
    try:
        for result in client.ingest.Ingest(iter(requests), metadata=client.metadata, timeout=120):
            outcomes[result.request_id] = result.outcome
    except grpc.RpcError as error:
        return outcomes, error
    return outcomes, None


def _assert_clear(error: grpc.RpcError, log: Path, *words: str) -> None:
    text = error.details() or ""
    assert error.code() in STORAGE_CODES, (error.code(), text)
    assert any(word in text for word in words), text
    trailers = str(error.trailing_metadata())
    for value in PII:
        assert value not in text and value not in trailers, f"PII in the status: {text}"
        assert value not in log.read_text(errors="replace"), "PII in the server's log"


def test_disk_full_ingest_fails_clearly_stores_nothing_half_and_recovers(faulty: Faulty) -> None:
    outcomes, error = _push(faulty.submitter, _tracings(0, 200))
    assert error is None and set(outcomes.values()) == {APPLIED}
    faulty.break_storage()
    sent = _tracings(200, 30_000)
    during, error = _push(faulty.submitter, sent)
    assert error is not None, "30,000 tracings fitted on a full disk"
    _assert_clear(error, faulty.log, "full", "cannot be written", "could not be written")
    error_code = error.code().name
    if faulty.how == "tmpfs":  # ENOSPC is a full disk, said so
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "full" in (error.details() or "")
    assert set(during.values()) <= {APPLIED}
    faulty.repair_storage()
    # The same actions again: what was acknowledged is there (UNCHANGED), what was not is not (APPLIED).
    again, error = _push(faulty.submitter, sent[: len(during) + 2000])
    assert error is None
    for request in sent[: len(during) + 2000]:
        expected = UNCHANGED if request.request_id in during else APPLIED
        assert again[request.request_id] == expected, (request.request_id, again[request.request_id])
    more, error = _push(faulty.submitter, _tracings(40_000, 200))
    assert error is None and set(more.values()) == {APPLIED}
    faulty.server.terminate()
    faulty.server.wait(timeout=60)
    store = check_files(faulty.index.data_dir)
    try:
        assert store.count() == 200 + len(during) + 2000 + 200  # nothing doubled, nothing half-written
        assert store.get(TracingKey("NCIS", "NCIS-040199")) is not None
    finally:
        store.close()
    record(
        f"disk full during ingest ({faulty.how})",
        trials=1,
        requests=200 + len(sent) + len(again) + 200,
        lost=0,
        failed=0,
        detail=f"{error_code} when full: nothing half-written; {200 + len(during)} acknowledged, all kept; recovered",
    )


SEARCH_SERVICE = "dcii.v1.SearchService"
SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING


def _exact(client: Client) -> search_pb2.SearchResponse:
    return client.search(
        mode=search_pb2.SEARCH_MODE_EXACT,
        name={"surname": "Whitfield", "given_name": "Harold"},
        identifiers={"ssn": ssn(7)},
    )


def test_an_unwritable_audit_trail_fails_searches_closed_and_recovers(faulty: Faulty) -> None:
    outcomes, error = _push(faulty.submitter, _tracings(0, 20))
    assert error is None and set(outcomes.values()) == {APPLIED}
    assert [h.tracing.key.record_number for h in _exact(faulty.querier).hits] == ["NCIS-000007"]
    before = audit_entries(faulty.index.data_dir)
    faulty.break_storage()
    for _ in range(3):
        with pytest.raises(grpc.RpcError) as refused:
            _exact(faulty.querier)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, refused.value.details()
        _assert_clear(refused.value, faulty.log, "audit trail cannot be written")
    nobody = faulty.querier.search(
        mode=search_pb2.SEARCH_MODE_NAME_ONLY, name={"surname": "Nobody", "given_name": "Atall"}
    )
    assert list(nobody.hits) == []  # a search that discloses nothing still works
    assert audit_entries(faulty.index.data_dir) == before  # nothing was accounted, nothing sent
    # A readiness probe takes the server out of rotation; a liveness probe still finds it alive.
    assert (health(faulty.querier, SEARCH_SERVICE), health(faulty.querier, "")) == (NOT_SERVING, SERVING)
    faulty.repair_storage()
    assert health_becomes(faulty.querier, SEARCH_SERVICE, SERVING, 4 * readiness.PROBE_SECONDS)
    assert audit_entries(faulty.index.data_dir) == before + 1  # the trail says when it could be written again
    assert [h.tracing.key.record_number for h in _exact(faulty.querier).hits] == ["NCIS-000007"]
    assert audit_entries(faulty.index.data_dir) == before + 2
    record(
        f"unwritable audit trail ({faulty.how})",
        trials=3,
        lost=0,
        failed=0,
        detail="searches that would disclose: UNAVAILABLE, nothing sent or accounted; recovered",
    )


def test_a_corrupt_stored_record_fails_its_own_write_and_never_the_writer(tmp_path: Path) -> None:
    """A record whose stored body cannot be read (on-disk damage) fails the write that touches it, with
    a bare INTERNAL; the store's single writer goes on, so every other write still lands."""
    index = make_index(tmp_path)
    login = index.accredit("NCIS-RA-01", "NCIS", [Role.SUBMITTER])
    index.port = free_port()
    with spawn_server(index.data_dir, index.pki_dir, index.port, stderr=tmp_path / "server.log"):
        client = index.connect(login[0])
        client.login(login[1], login[2])
        assert _push(client, _tracings(0, 3)) == ({f"NCIS-{n:06d}": APPLIED for n in range(3)}, None)
        conn = sqlite3.connect(index.data_dir / "index.db", timeout=30)
        with conn:
            conn.execute("UPDATE tracing SET body = '{' WHERE record_number = 'NCIS-000001'")
        conn.close()
        damaged = f.upsert(f.person(record="NCIS-000001", version=2, ssn=ssn(1)))
        _, error = _push(client, [damaged])
        assert error is not None and error.code() == grpc.StatusCode.INTERNAL, error
        assert error.details() == "internal error"  # nothing of the record in the status
        assert _push(client, _tracings(3, 50))[1] is None  # the writer lives on
        client.close()
    store = check_files(index.data_dir)
    try:
        assert store.count() == 53
    finally:
        store.close()
    record("a corrupt stored record", trials=1, requests=54, lost=0, failed=0, detail="INTERNAL for its write only")
