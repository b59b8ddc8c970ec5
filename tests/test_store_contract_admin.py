"""The storage contract's operations (tests/store_backends.py): migration both ways, a rebuild under a steady
search load, the operator's commands (dcii index migrate/rebuild/check) and store URLs. A completion or a
favorable NAC history cut short between its two bulk requests to OpenSearch: tests/test_store_contract_cut_short.py."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from indexer.exc import FailedPrecondition
from indexer.model import Identifiers, Tracing, TracingKey, TracingType
from indexer.store import factory
from indexer.store.base import Delete, Replace, TracingStore, Upsert, WriteOp, WriteOutcome, WriteResult
from indexer.store.migrate import migrate
from indexer.store.opensearch import OpenSearchStore
from indexer.store.opensearch_settings import OpenSearchSettings
from indexer.store.sqlite import SqliteStore
from tests import factories as f
from tests import store_backends
from tests.store_backends import NOW, Opener, _dispute, _live, _title
from tests.test_store_lifecycle import _checked, file_tracing, nac

# The fixtures these tests take, bound here by name so pytest finds them (importing them would do the same, but
# ruff reads each test's parameter of that name as a redefinition of an unused import, F811).
open_store, open_cluster = store_backends.open_store, store_backends.open_cluster


# ---- migration, both ways ----


def _contents(store: TracingStore) -> tuple[set[Any], set[Any], list[Any]]:
    live = {(s.tracing, s.indexed_at, s.dispute) for s in store.iter_all(batch=3)}
    tombs = {(t.key, t.source_version) for t in store.iter_tombstones(batch=3)}
    log = sorted((r.key, r.source_version, r.reason, r.actor, r.deleted_at) for r in store.deletions())
    return live, tombs, log


def test_migrate_copies_tracings_disputes_tombstones_and_the_log(open_store: Opener, tmp_path: Path) -> None:
    source = open_store()
    source.write([Upsert(nac("NH-2", (2018, 5, 1))), Upsert(file_tracing("NCIS-F-1"))], actor="loader")
    # An earlier favorable history that arrived after the later one: kept (a migration must not rerun rules).
    source.write([Upsert(nac("NH-1", (2012, 5, 1))), Upsert(file_tracing("NCIS-F-2", given="Harry"))], actor="l")
    source.write([Delete(TracingKey("NCIS", "NCIS-F-2"), 2, "DELETED BY OWNING AGENCY")], actor="NCIS")
    source.write([Delete(TracingKey("NCIS", "NCIS-F-7"), 3, "overtook its upsert")], actor="NCIS")
    source.set_dispute(TracingKey("NCIS", "NCIS-F-1"), _dispute(1))
    expected = _contents(source)
    assert len(expected[0]) == 3 and len(expected[1]) == 2 and len(expected[2]) == 1

    middle = SqliteStore(tmp_path / "middle.db", clock=lambda: NOW)
    back = SqliteStore(tmp_path / "back.db", clock=lambda: NOW)
    try:
        seen: list[tuple[str, int, int]] = []
        report = migrate(source, middle, batch=2, progress=lambda *p: seen.append(p))
        assert (report.tracings, report.tombstones, report.deletions, report.target_count) == (3, 2, 1, 3)
        assert seen[0] == ("tracings", 0, 3) and ("tracings", 3, 3) in seen
        assert _contents(middle) == expected
        migrate(middle, back)
        migrate(middle, back)  # run again: nothing doubles
        assert _contents(back) == expected
        late = _checked(f.person("NCIS", "NCIS-F-2", 1))
        assert back.write([Upsert(late)], actor="NCIS")[0].outcome is WriteOutcome.UNCHANGED
        assert back.check_integrity() == []
    finally:
        middle.close()
        back.close()


def test_migrate_an_embedded_store_into_opensearch_and_back(open_cluster: Opener, tmp_path: Path) -> None:
    source = SqliteStore(tmp_path / "source.db", clock=lambda: NOW)
    back = SqliteStore(tmp_path / "back.db", clock=lambda: NOW)
    try:
        source.write(
            [Upsert(nac("NH-2", (2018, 5, 1))), Upsert(nac("NH-1", (2012, 5, 1), ssn="212-45-6789"))], actor="l"
        )
        source.write([Upsert(file_tracing("NCIS-F-1")), Upsert(_title("T-1", "ACME DEFENSE WIDGETS INC"))], actor="l")
        source.write([Delete(TracingKey("DSS", "NH-1"), 4, "DELETED BY OWNING AGENCY")], actor="DSS")
        source.set_dispute(TracingKey("NCIS", "NCIS-F-1"), _dispute(1))
        expected = _contents(source)
        cluster = open_cluster()
        assert migrate(source, cluster, batch=2).target_count == 3
        assert _contents(cluster) == expected
        assert cluster.check_integrity() == []
        migrate(cluster, back)
        assert _contents(back) == expected
    finally:
        source.close()
        back.close()


# ---- a rebuild while searches go on ----


def test_rebuild_under_a_steady_search_load(open_cluster: Opener) -> None:
    from indexer.demo import generate_tracings
    from search_service.ranked import run_ranked

    store = open_cluster()
    assert isinstance(store, OpenSearchStore)
    people = [t for t in generate_tracings(300, seed=7, today=NOW.date()) if t.subject is not None]
    store.write([Upsert(t) for t in people], actor="loader")
    present = [s.tracing for s in store.iter_all()]
    done = threading.Event()
    failures: list[str] = []
    empty: list[str] = []
    searches = [0]

    def search(offset: int) -> None:
        i = offset
        while not done.is_set():
            tracing = present[i % len(present)]
            assert tracing.subject is not None
            i += 7
            try:
                with store.snapshot():
                    page = run_ranked(
                        store, mode="FUZZY", name=tracing.subject.name, identifiers=Identifiers(), types=frozenset(),
                        min_score=0.0, page_size=10, page_token="",
                    )  # fmt: skip
                    found = {hit.stored.tracing.key for hit in page.hits}
                if tracing.key not in found:
                    empty.append(str(tracing.key))
            except Exception as error:  # every failure counts, whatever it is
                failures.append(f"{type(error).__name__}: {error}")
            searches[0] += 1
            time.sleep(0.005)

    def slow_copy(done_count: int, total: int) -> None:
        time.sleep(0.3)  # keep the copy going long enough for searches and writes to overlap it

    threads = [threading.Thread(target=search, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    written: list[Tracing] = []
    try:
        time.sleep(0.3)
        before = searches[0]
        rebuilder = threading.Thread(target=lambda: written.append(_title("T-NEW", store.rebuild(progress=slow_copy))))
        rebuilder.start()
        for n in range(20):  # writes during the rebuild land in both versions
            late = file_tracing(f"LATE-{n}", surname="Zeller", given="Quentin")
            assert store.write([Upsert(late)], actor="NCIS")[0].outcome is WriteOutcome.APPLIED
            written.append(late)
            time.sleep(0.01)
        rebuilder.join()
        second = store.rebuild()
        time.sleep(0.3)
        during = searches[0] - before
    finally:
        done.set()
        for thread in threads:
            thread.join()
    assert failures == []
    assert empty == []
    assert during > 20
    assert second == store.names.version(3)
    assert store.count() == len(present) + 20
    assert {f"LATE-{n}" for n in range(20)} <= _live(store)
    client = store._client
    assert sorted(client.indices.get(index=store.names.pattern)) == [store.names.version(3)]
    assert sorted(client.indices.get_alias(name=store.names.tracings)) == [store.names.version(3)]
    assert store.check_integrity() == []


def test_a_rebuild_carries_the_deletions_another_instance_makes_meanwhile(open_cluster: Opener) -> None:
    """`dcii index rebuild` runs in a process of its own: a service instance's writes reach the new version
    only through the catch-up copy. A tombstone at the version of the live document it ends (a completion's
    old record, a superseded history, retention's delete) was refused there (`external`: strictly newer), and
    after the swap the deleted records were live again while the deletion log said they were gone."""

    def now() -> dt.datetime:
        return dt.datetime.now(dt.UTC)  # the catch-up copies by the time each document was written

    service, rebuilder = open_cluster(clock=now), open_cluster(clock=now)
    assert isinstance(rebuilder, OpenSearchStore)
    old, new = _checked(f.open_case("NCIS", "OC-1", 1)), _checked(f.person("NCIS", "F-1", 1))
    earlier, favorable = nac("H1", (2010, 1, 1)), nac("H2", (2020, 1, 1))
    expired = _checked(f.person("NCIS", "R-9", 4, surname="Quill"))
    service.write([Upsert(old), Upsert(earlier), Upsert(expired)], actor="NCIS")
    during: list[list[WriteResult]] = []

    def service_writes_once_the_copy_has_read_all(sent: int, total: int) -> None:
        if not during and sent == total:
            ops: list[WriteOp] = [
                Replace(old.key, TracingType.OPEN_CASE, new),
                Upsert(favorable),
                Delete(expired.key, 0, "RETENTION"),
            ]
            during.append(service.write(ops, actor="NCIS"))

    rebuilder.rebuild(progress=service_writes_once_the_copy_has_read_all)
    assert [r.outcome for r in during[0]] == [WriteOutcome.APPLIED] * 3
    assert _live(service) == {"F-1", "H2"} and service.count() == 2
    assert {r.key.record_number for r in service.deletions()} == {"OC-1", "H1", "R-9"}
    assert service.check_integrity() == []


# ---- the operator's commands ----


def _http(method: str, url: str) -> Any:
    with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=30) as answer:
        return json.loads(answer.read() or b"null")


def test_dcii_index_migrate_rebuild_and_check(osmem: Any, tmp_path: Path) -> None:
    import subprocess
    import sys

    embedded = SqliteStore(tmp_path / "index.db", clock=lambda: NOW)
    embedded.write(
        [Upsert(file_tracing(f"F-{i}", given=g)) for i, g in enumerate(("Harold", "Harry", "Hal"))], actor="l"
    )
    embedded.write([Delete(TracingKey("NCIS", "F-2"), 2, "DELETED BY OWNING AGENCY")], actor="NCIS")
    embedded.close()
    clone = osmem.clone()
    try:
        url = clone.url.replace("http://", "opensearch://") + "?prefix=cli&replicas=0&drain_seconds=0.1"

        def dcii(*args: str) -> subprocess.CompletedProcess[str]:
            command = [sys.executable, "-m", "dcii.cli.index_cmd", *args]
            return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)

        moved = dcii("index", "migrate", "--from", str(tmp_path / "index.db"), "--to", url)
        assert moved.returncode == 0, moved.stderr
        assert "copied 2 tracings, 1 tombstones, 1 deletion-log entries; the target holds 2" in moved.stderr
        rebuilt = dcii("index", "rebuild", "--store", url)
        assert rebuilt.returncode == 0, rebuilt.stderr
        assert "now on cli-tracings-v2" in rebuilt.stderr
        checked = dcii("index", "check", "--store", url)
        assert (checked.returncode, "2 live tracings" in checked.stderr) == (0, True), checked.stderr
        repaired = dcii("index", "repair", "--store", url)
        assert (repaired.returncode, repaired.stderr.splitlines()) == (0, ["nothing to repair"]), repaired.stderr
        back = dcii("index", "migrate", "--from", url, "--to", f"sqlite:///{tmp_path}/back.db")
        assert back.returncode == 0, back.stderr
        refused = dcii("index", "rebuild", "--store", f"sqlite:///{tmp_path}/back.db")
        assert refused.returncode != 0 and "OpenSearch store" in refused.stderr
        repaired = dcii("index", "repair", "--store", f"sqlite:///{tmp_path}/back.db")
        assert (repaired.returncode, repaired.stderr.splitlines()) == (0, ["nothing to repair"]), repaired.stderr
        # A mistyped prefix: made empty indices and said "0 live tracings", exit 0 (a review of the backend).
        elsewhere = url.replace("prefix=cli", "prefix=clj")
        nothing = dcii("index", "check", "--store", elsewhere)
        assert nothing.returncode == 1 and "no index under the prefix 'clj'" in nothing.stderr, nothing.stderr
        assert "Traceback" not in nothing.stderr
        wrong = dcii("index", "check", "--store", "ftp://nowhere")
        assert wrong.returncode != 0 and "no store backend" in wrong.stderr
        # A mistyped path made a new, empty index ("0 live tracings", exit 0); a damaged file, a traceback.
        mistyped = dcii("index", "check", "--store", str(tmp_path / "idnex.db"))
        assert mistyped.returncode == 1 and "no index file at" in mistyped.stderr, mistyped.stderr
        assert not (tmp_path / "idnex.db").exists()
        (tmp_path / "damaged.db").write_bytes(b"SQLite format 3\x00" + b"\xff" * 8000)
        damaged = dcii("index", "check", "--store", str(tmp_path / "damaged.db"))
        assert damaged.returncode == 1 and "cannot be read" in damaged.stderr, damaged.stderr
        assert "Traceback" not in damaged.stderr
        # A rebuild cut short after its swap leaves the older version, where writes made during its copy may be
        # alone: the check said nothing and another rebuild deleted it (a review of the backend).
        _http("PUT", clone.url + "/cli-tracings-v1")
        stranded = dcii("index", "check", "--store", url)
        assert stranded.returncode == 1 and "cli-tracings-v1 is not behind the alias" in stranded.stderr
        assert "`dcii index rebuild --resume` finishes it" in stranded.stderr
        refused_rebuild = dcii("index", "rebuild", "--store", url)
        assert refused_rebuild.returncode != 0, refused_rebuild.stderr
        assert "a rebuild was cut short: cli-tracings-v1 is not behind" in refused_rebuild.stderr
        assert "Traceback" not in refused_rebuild.stderr
        # --resume copies what only the version the alias left holds, deletes it and needs no new version.
        resumed = dcii("index", "rebuild", "--store", url, "--resume")
        assert resumed.returncode == 0 and "now on cli-tracings-v2" in resumed.stderr, resumed.stderr
        assert dcii("index", "check", "--store", url).returncode == 0
        assert sorted(_http("GET", clone.url + "/cli-tracings-v*/_alias")) == ["cli-tracings-v2"]
        listed = _http("GET", clone.url + "/_cat/indices?format=json")
        assert not any(row["index"].startswith("clj") for row in listed), listed
        # Lost: the tracings gone, the deletion log not. A check or a restart made them afresh, empty, and the
        # instances answered "no record" where they had failed closed.
        for index in [row["index"] for row in listed if row["index"].startswith("cli-tracings")]:
            _http("DELETE", clone.url + "/" + index)
        lost = dcii("index", "check", "--store", url)
        assert lost.returncode == 1 and "no index under the prefix 'cli'" in lost.stderr, lost.stderr
        with pytest.raises(FailedPrecondition, match="lost, not new"):
            factory.open_store(url)  # as `dcii serve` opens it
    finally:
        clone.close()
    again = SqliteStore(tmp_path / "back.db")
    try:
        assert sorted(s.tracing.key.record_number for s in again.iter_all()) == ["F-0", "F-1"]
        assert [r.key.record_number for r in again.deletions()] == ["F-2"]
    finally:
        again.close()


def test_store_urls() -> None:
    from indexer.store.factory import describe, sqlite_path

    assert sqlite_path("var/data/index.db") == Path("var/data/index.db")
    assert sqlite_path("sqlite:///var/data/index.db") == Path("var/data/index.db")
    assert sqlite_path("sqlite:////srv/dcii/index.db") == Path("/srv/dcii/index.db")
    assert sqlite_path("opensearch://localhost:9200") is None
    settings = OpenSearchSettings.from_url(
        "opensearch+https://dcii:s3cret@node1:9200,node2:9200?ca=/etc/ca.pem&timeout=5&retries=2&prefix=idx"
    )
    assert settings.hosts == ("https://node1:9200", "https://node2:9200")
    assert (settings.username, settings.password, settings.ca_file) == ("dcii", "s3cret", Path("/etc/ca.pem"))
    assert (settings.timeout, settings.retries, settings.prefix, settings.refresh) == (5.0, 2, "idx", "wait_for")
    assert "s3cret" not in repr(settings) and "s3cret" not in describe("opensearch+https://dcii:s3cret@node1:9200")
    certs = OpenSearchSettings.from_url("opensearch+https://node1:9200?cert=c.pem&key=k.pem")
    assert (certs.client_cert, certs.client_key, certs.username) == (Path("c.pem"), Path("k.pem"), "")
    for bad in ("opensearch://h:9200?colour=red", "opensearch://h:9200?cert=c.pem", "opensearch://h?refresh=never"):
        with pytest.raises(ValueError):
            OpenSearchSettings.from_url(bad)
