"""What `dcii serve` says when it starts on files it cannot use, and when it is stopped (an operator's
acceptance test): a server certificate rotation half done, or a damaged certificate, is named as such, not
"another dcii serve?"; a data directory that cannot be written is one line, not a traceback; a stop is
logged, and SIGHUP (a closed terminal) drains and stops as SIGTERM does instead of killing the server.
Real `dcii serve` processes."""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from search_service import pki
from tests.support import ROOT, free_port, make_index, server_process
from tests.test_faults import tmpfs

KEEPS = "the server keeps its files there"


def _serve(data: Path, pki_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "dcii.cli.main", "serve", "--data", str(data), "--pki", str(pki_dir)]
    command += ["--port", str(free_port()), *extra]
    return subprocess.run(command, check=False, cwd=ROOT, capture_output=True, text=True, timeout=60)


def _one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The last line of a refused start, checked to be one line of ours and no traceback."""
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("dcii: "), result.stderr
    return last


def test_a_server_certificate_that_does_not_match_its_key_is_named_not_another_serve(tmp_path: Path) -> None:
    old, new, mixed = tmp_path / "old", tmp_path / "new", tmp_path / "mixed"
    pki.init_pki(old, activities=[])
    pki.init_pki(new, activities=[])
    mixed.mkdir()
    for name, source in (("ca.pem", new), ("server.pem", new), ("server-key.pem", old)):  # the key not replaced
        shutil.copy(source / name, mixed / name)
    line = _one_line(_serve(tmp_path / "data", mixed))
    assert "server.pem and server-key.pem in" in line and "do not match" in line, line
    assert "another dcii serve" not in line
    assert not (tmp_path / "data").exists()  # refused before any file is made
    # A certificate cut short (a copy that failed half-way) is named too.
    (mixed / "server-key.pem").write_bytes((new / "server-key.pem").read_bytes())
    (mixed / "server.pem").write_bytes((new / "server.pem").read_bytes()[:300])
    line = _one_line(_serve(tmp_path / "data", mixed))
    assert f"{mixed / 'server.pem'} is not a PEM certificate" in line, line


@contextlib.contextmanager
def _read_only_copy(data: Path, where: Path) -> Iterator[Path | None]:
    """`data` copied onto a tmpfs mounted read-only at `where`; None where a mount is not allowed."""
    with tmpfs(where, "16m") as mounted:
        if not mounted:
            yield None
            return
        shutil.copytree(data, where / "data")
        subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)
        yield where / "data"


def test_a_data_directory_that_cannot_be_written_is_one_line(tmp_path: Path) -> None:
    index = make_index(tmp_path)
    index.start(ingest_processes=0)  # a data directory with its files
    index.stop()
    with _read_only_copy(index.data_dir, tmp_path / "ro") as read_only:
        if read_only is None:
            pytest.skip("cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN)")
        line = _one_line(_serve(read_only, index.pki_dir))
    assert line == f"dcii: the data directory {read_only} cannot be written (Read-only file system): {KEEPS}"


def test_primary_lock_that_cannot_be_opened_is_one_line(tmp_path: Path) -> None:
    # Without a mount: the lock's path taken by a directory fails the same open (EISDIR for EROFS).
    index = make_index(tmp_path)
    (index.data_dir / "primary.lock").mkdir(parents=True)
    line = _one_line(_serve(index.data_dir, index.pki_dir))
    assert line == f"dcii: the data directory {index.data_dir} cannot be written (Is a directory): {KEEPS}"


def _lines(stderr: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_stop_is_logged_and_sighup_drains_as_sigterm_does(tmp_path: Path, signum: signal.Signals) -> None:
    index = make_index(tmp_path)
    port = free_port()
    with server_process(index.data_dir, index.pki_dir, port, "--log-level", "INFO") as process:
        process.send_signal(signum)
        assert process.wait(timeout=60) == 0  # a clean exit: SIGHUP killed it outright (-1)
        assert process.stderr is not None
        lines = _lines(process.stderr.read().decode())
    stopping = [line for line in lines if str(line["message"]).startswith("stopping")]
    assert [line["signal"] for line in stopping] == [signum.name], lines
    assert lines[-1]["message"] == "stopped", lines
    # Drained and closed: the store's and the trail's WAL files are checkpointed away, as after SIGTERM.
    assert not (index.data_dir / "index.db-wal").exists()
