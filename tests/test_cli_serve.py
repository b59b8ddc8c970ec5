"""`dcii serve`'s capacity options (SECURITY.md's limits): parsed into the ServerConfig, documented with
ServerConfig's own defaults, and in force in a real `dcii serve` subprocess."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import grpc
import pytest

from dcii.cli.main import LIMITS, add_limit_options, parser, serve_config
from dcii.cli.serve_options import BATCH_OPTIONS, KEEPALIVE_OPTIONS, add_batch_and_keepalive_options
from dcii.v1 import ingest_pb2, search_pb2
from indexer.exc import FailedPrecondition
from search_service.accreditation import Role
from search_service.batch_worker import BatchSettings
from search_service.keepalive import Keepalive
from search_service.server import ServerConfig
from tests import factories as f
from tests.support import ROOT, free_port, held_ingest_streams, make_index, server_process

DEFAULTS: dict[str, object] = {field.name: field.default for field in dataclasses.fields(ServerConfig)}


def _serve_args(*options: str) -> ServerConfig:
    return serve_config(parser().parse_args(["serve", "--data", "d", "--pki", "p", *options]))


def test_the_limit_options_reach_the_server_config() -> None:
    config = _serve_args(
        "--max-workers=8",
        "--max-concurrent-rpcs=20",
        "--rate-per-activity=2.5",
        "--burst-per-activity=7",
        "--max-calls-per-activity=3",
        "--max-streams-per-connection=6",
    )
    assert (config.max_workers, config.max_concurrent_rpcs, config.max_calls_per_activity) == (8, 20, 3)
    assert config.max_streams_per_connection == 6
    assert _serve_args("--max-calls-per-activity=40").streams_per_connection == 80  # the cap's, doubled
    assert _serve_args("--disclosures-per-activity-per-day=50000").disclosures_per_activity_per_day == 50000
    assert (config.rate_per_activity, config.burst_per_activity) == (2.5, 7.0)
    assert _serve_args("--max-concurrent-rpcs=0").max_concurrent_rpcs is None  # 0: no cap
    assert _serve_args("--max-workers=10").calls_per_activity == 5  # the cap's default follows the pool


def test_the_peers_come_from_peer_options_or_dcii_peers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DCII_PEERS", raising=False)
    assert _serve_args().peers == ()
    assert _serve_args("--peer", "search-1:50051", "--peer=search-2:50051").peers == (
        "search-1:50051",
        "search-2:50051",
    )
    monkeypatch.setenv("DCII_PEERS", "search-1:50051, search-2:50051")
    assert _serve_args().peers == ("search-1:50051", "search-2:50051")
    assert _serve_args("--peer", "other:1").peers == ("other:1",)  # the option wins
    monkeypatch.setenv("DCII_PEERS", "search-1")
    with pytest.raises(SystemExit, match="DCII_PEERS: peer address 'search-1': HOST:PORT"):
        _serve_args()
    with pytest.raises(SystemExit):  # argparse's own refusal
        _serve_args("--peer", "search-2:70000")


def test_without_the_options_the_server_config_defaults_stand() -> None:
    config = _serve_args()
    assert {name: getattr(config, name) for name in LIMITS} == {name: DEFAULTS[name] for name in LIMITS}


@pytest.mark.parametrize(
    "option",
    [
        "--max-workers=0",
        "--max-concurrent-rpcs=-1",
        "--rate-per-activity=0",
        "--rate-per-activity=nan",
        "--burst-per-activity=0.5",
        "--max-calls-per-activity=0",
        "--max-streams-per-connection=0",
        "--disclosures-per-activity-per-day=0",
    ],
)
def test_an_impossible_limit_is_refused_by_the_parser(option: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _serve_args(option)
    assert option.partition("=")[0] in capsys.readouterr().err


def test_the_help_states_server_config_defaults() -> None:
    serve = argparse.ArgumentParser()
    add_limit_options(serve)
    helps = {action.dest: action.help or "" for action in serve._actions}
    assert set(LIMITS) <= set(helps)
    for name in LIMITS:
        default = DEFAULTS[name]
        if name == "max_calls_per_activity":  # derived from the pool
            assert "half of --max-workers" in helps[name]
        elif name == "max_streams_per_connection":  # derived from the cap
            assert "twice --max-calls-per-activity" in " ".join(helps[name].split())
        elif default is None:  # disclosures_per_activity_per_day: none unless set
            assert "(default: no budget)" in helps[name]
        else:
            assert isinstance(default, int | float)
            assert re.search(rf"\(default {default:g}\b", helps[name]), (name, helps[name])


def test_dcii_serve_enforces_the_limits_it_was_given(tmp_path: Path) -> None:
    index = make_index(tmp_path)
    index.data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    options = ("--rate-per-activity", "0.01", "--burst-per-activity", "4", "--max-calls-per-activity", "1")
    with server_process(index.data_dir, index.pki_dir, port, *options):
        index.port = port
        # The rate: a burst of 4 calls (the login and three searches), then nothing for 100 seconds.
        querier = index.client("CCF-TERM-01", "ARMY-CCF", [Role.QUERIER])
        request = {"mode": search_pb2.SEARCH_MODE_NAME_ONLY, "name": {"surname": "Whitfield", "given_name": "Harold"}}
        for _ in range(3):
            querier.search(**request)
        with pytest.raises(grpc.RpcError) as refused:
            querier.search(**request)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "0.01 calls a second (bursts of 4)" in (refused.value.details() or "")

        # The cap on calls in progress: a second stream of the same activity while the first is open.
        ncis = index.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER])

        def first(n: int) -> ingest_pb2.IngestRequest:
            return f.upsert(f.person(record=f"NCIS-{n:04d}"))

        with held_ingest_streams([ncis, ncis], first) as (accepted, streams_refused):
            assert accepted == 1
            assert [e.code() for e in streams_refused] == [grpc.StatusCode.RESOURCE_EXHAUSTED]
            assert "may have 1 calls in progress at once" in (streams_refused[0].details() or "")
        index.stop()


def test_processes_reach_the_server_config_and_at_least_one_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    assert _serve_args().processes == DEFAULTS["processes"] == 1
    assert _serve_args("--processes=3").processes == 3
    with pytest.raises(SystemExit):
        _serve_args("--processes=0")
    assert "--processes: must be at least 1" in capsys.readouterr().err


def test_a_start_that_cannot_serve_says_why_in_one_line_and_makes_no_data(tmp_path: Path) -> None:
    # A taken port was a 20-line RuntimeError traceback; a mistyped --pki a FileNotFoundError, after a whole
    # data directory (index, trail, key, registry) had been made at --data.
    index = make_index(tmp_path)
    port = free_port()

    def serve(data: Path, pki: Path) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "dcii.cli.main", "serve", "--data", str(data), "--pki", str(pki)]
        command += ["--port", str(port)]
        return subprocess.run(command, check=False, cwd=ROOT, capture_output=True, text=True, timeout=60)

    with server_process(index.data_dir, index.pki_dir, port):
        taken = serve(tmp_path / "second", index.pki_dir)
    assert taken.returncode == 1 and f"cannot listen on 127.0.0.1:{port}" in taken.stderr, taken.stderr
    mistyped = serve(tmp_path / "third", tmp_path / "pki-typo")
    assert mistyped.returncode == 1 and "certificate files" in mistyped.stderr, mistyped.stderr
    for result in (taken, mistyped):
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "second").exists() and not (tmp_path / "third").exists()


def test_the_batch_and_keepalive_options_reach_the_server_config() -> None:
    config = _serve_args(
        "--batch-threads=0",
        "--batch-duty=1",
        "--batch-max-active=3",
        "--batch-keep-days=7.5",
        "--keepalive-time=90",
        "--keepalive-timeout=5",
    )
    assert (config.batch.threads, config.batch.duty, config.batch.max_active_per_activity) == (0, 1.0, 3)
    assert config.batch.keep_results_days == 7.5
    assert (config.keepalive.time, config.keepalive.timeout) == (90.0, 5.0)
    untouched = _serve_args()
    assert (untouched.batch, untouched.keepalive) == (BatchSettings(), Keepalive())


@pytest.mark.parametrize(
    "option",
    [
        "--batch-threads=-1",
        "--batch-duty=0",
        "--batch-duty=1.5",
        "--batch-max-active=0",
        "--batch-keep-days=0",
        "--keepalive-time=0",
        "--keepalive-timeout=nan",
        "--batch-threads=x",
    ],
)
def test_an_impossible_batch_or_keepalive_setting_is_refused_by_the_parser(
    option: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        _serve_args(option)
    assert f"argument {option.partition('=')[0]}:" in capsys.readouterr().err


@pytest.mark.parametrize(("options", "settings"), [(BATCH_OPTIONS, BatchSettings), (KEEPALIVE_OPTIONS, Keepalive)])
def test_the_batch_and_keepalive_help_states_the_settings_defaults(options: dict[str, str], settings: type) -> None:
    serve = argparse.ArgumentParser()
    add_batch_and_keepalive_options(serve)
    helps = {action.dest: action.help or "" for action in serve._actions}
    defaults = {field.name: field.default for field in dataclasses.fields(settings)}
    for dest, name in options.items():
        assert re.search(rf"\(default {defaults[name]:g}\b", helps[dest]), (dest, helps[dest])


def test_every_serve_option_is_documented() -> None:
    # The engineer at 3 a.m. reads the runbook, not the argparse source: an option added without a word
    # there fails here (README.md and SECURITY.md count too).
    commands = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    docs = "".join((ROOT / name).read_text() for name in ("docs/RUNBOOK.md", "README.md", "SECURITY.md"))
    options = [o for a in commands.choices["serve"]._actions for o in a.option_strings if o.startswith("--")]
    assert "--keepalive-time" in options
    assert [o for o in options if o != "--help" and o not in docs] == []


def test_a_second_server_on_the_same_data_directory_is_refused(tmp_path: Path) -> None:
    # Two servers on one directory each ran the batch worker: both answered the same batch, and each answer's
    # disclosures were accounted twice (ops review 1). Its own replicas (--processes) share it.
    index = make_index(tmp_path)
    first, second = free_port(), free_port()
    command = [sys.executable, "-m", "dcii.cli.main", "serve", "--data", str(index.data_dir), "--pki"]
    command += [str(index.pki_dir), "--port", str(second)]
    with server_process(index.data_dir, index.pki_dir, first, "--processes", "2"):
        refused = subprocess.run(command, check=False, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1, refused.stderr
    assert "another dcii serve is running on the data directory" in refused.stderr
    assert "Traceback" not in refused.stderr
    with server_process(index.data_dir, index.pki_dir, second):  # the first gone (killed), its lock went with it
        pass


def test_start_up_mistakes_are_one_line_each(tmp_path: Path) -> None:
    # Each was a raw traceback (ops review 4): an operator at 3 a.m. gets the reason, and no data directory.
    index = make_index(tmp_path)
    a_file = tmp_path / "a-file"
    a_file.write_text("")

    def dcii(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "dcii.cli.main", *args]
        return subprocess.run(command, check=False, cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)

    serve = ["serve", "--pki", str(index.pki_dir), "--port", str(free_port())]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = str(taken.getsockname()[1])
        cases = {
            "metrics port taken": (dcii(*serve, "--data", str(tmp_path / "d1"), "--metrics-port", busy), 1),
            "a replica's metrics port taken": (
                dcii(*serve, "--data", str(tmp_path / "d2"), "--processes", "2", "--metrics-port", str(int(busy) - 1)),
                1,
            ),
        }
    cases |= {
        "port out of range": (dcii(*serve, "--data", str(tmp_path / "d3"), "--port", "99999"), 2),
        "replicas' metrics ports past 65535": (
            dcii(*serve, "--data", str(tmp_path / "d7"), "--processes", "2", "--metrics-port", "65535"),
            1,
        ),
        "no such backend": (dcii(*serve, "--data", str(tmp_path / "d4"), "--store", "bogus://x"), 1),
        "--data is a file": (dcii(*serve, "--data", str(a_file)), 1),
        "log format": (dcii(*serve, "--data", str(tmp_path / "d5"), env={**os.environ, "DCII_LOG_FORMAT": "xml"}), 1),
        "log level": (dcii("--log-level", "LOUD", *serve, "--data", str(tmp_path / "d6")), 2),
        "a CA there already": (dcii("certs", "init", "--dir", str(index.pki_dir)), 1),
        "a reserved activity": (dcii("certs", "issue", "admin", "--agency", "DSS", "--dir", str(index.pki_dir)), 1),
    }
    for case, (done, code) in cases.items():
        assert done.returncode == code, (case, done.stderr)
        last = done.stderr.strip().splitlines()[-1]  # argparse's usage comes before its one line
        assert "Traceback" not in done.stderr and last.startswith("dcii"), (case, done.stderr)
    assert "cannot serve metrics on" in cases["metrics port taken"][0].stderr
    assert "cannot serve metrics on" in cases["a replica's metrics port taken"][0].stderr
    assert "no store backend" in cases["no such backend"][0].stderr
    assert "cannot use the data directory" in cases["--data is a file"][0].stderr
    assert (
        "already exists" in cases["a CA there already"][0].stderr and "--force" in cases["a CA there already"][0].stderr
    )
    assert "pass 65535" in cases["replicas' metrics ports past 65535"][0].stderr
    assert not any((tmp_path / f"d{n}").exists() for n in (1, 2, 3, 5, 6, 7))


def test_a_start_refused_part_way_lets_go_of_the_data_directory(tmp_path: Path) -> None:
    # It kept primary.lock, and every later start in the process was "another dcii serve is running" (diff review 3).
    index = make_index(tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        index.port = taken.getsockname()[1]
        with pytest.raises(FailedPrecondition, match="cannot listen on"):
            index.start(processes=2, ingest_processes=0)
    index.port = 0
    index.start(ingest_processes=0)
    assert index.running is not None
    index.stop()


@pytest.mark.parametrize(
    ("name", "what"), [("index.db", "the index"), ("registry.db", "the registry"), ("batch.db", "the batch queue")]
)
def test_a_damaged_database_at_start_is_one_line_naming_it(tmp_path: Path, name: str, what: str) -> None:
    """Thirty lines of traceback ending "file is not a database" (durability review 4); the audit trail and
    the privacy register said so in one line already."""
    index = make_index(tmp_path)
    index.start(ingest_processes=0)
    index.stop()
    damaged = index.data_dir / name
    with damaged.open("r+b") as handle:
        handle.write(b"\x00" * 100)  # the header gone: not a database any more
    command = [sys.executable, "-m", "dcii.cli.main", "serve", "--data", str(index.data_dir), "--pki"]
    command += [str(index.pki_dir), "--port", str(free_port())]
    refused = subprocess.run(command, check=False, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1, refused.stderr
    assert "Traceback" not in refused.stderr
    last = refused.stderr.strip().splitlines()[-1]
    assert last.startswith(f"dcii: {what} ") and "cannot be used (DatabaseError" in last and "dcii restore" in last, (
        last
    )


def test_a_start_refused_part_way_closes_what_it_opened(tmp_path: Path) -> None:
    """A damaged batch.db is met after the store, registry, trail and privacy register are open: the start
    was refused, and the store's writer thread and their files stayed in the process (diff review 8)."""
    index = make_index(tmp_path)
    index.start(ingest_processes=0)
    index.stop()
    with (index.data_dir / "batch.db").open("r+b") as handle:
        handle.write(b"\x00" * 100)

    def held() -> tuple[set[str], set[str]]:
        fds = set()
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):
                fds.add(os.readlink(f"/proc/self/fd/{fd}"))
        return {t.name for t in threading.enumerate()}, {p for p in fds if str(index.data_dir) in p}

    threads, files = held()
    with pytest.raises(FailedPrecondition, match="the batch queue"):
        index.start(ingest_processes=0)
    gc.collect()
    threads_after, files_after = held()
    assert threads_after - threads == set()
    assert files_after - files == set()
    # Refused later, its port taken: the batch queue's purge thread, started by then, must not be left
    # running on a closed queue after the data directory was let go (second diff review 5).
    (index.data_dir / "batch.db").unlink()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        index.port = taken.getsockname()[1]
        with pytest.raises(FailedPrecondition, match="cannot listen"):
            index.start(ingest_processes=0)
    gc.collect()
    assert held()[0] - threads == set()
    index.port = 0
    index.start(ingest_processes=0)
    assert index.running is not None
    index.stop()
