"""Batch results fetched after the index changed (a batch review): what each hit says of its record as it
stands, and what `dcii batch results` writes of a hit. Over the real gRPC service (mutual TLS) on real
SQLite files; statements of dispute filed since: tests/test_privacy_disputes.py."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path

from dcii.cli import batch as batch_cli
from search_service.accreditation import Role
from search_service.batch_worker import BatchSettings
from tests import factories as f
from tests.support import ROOT, Index
from tests.test_batch import _people, _results, _submit, batch_profile, start
from tests.test_privacy import _answered_batch


def test_a_record_written_again_since_the_batch_answered_is_marked_changed_since(index: Index) -> None:
    """A corrected record came back as it was answered, with nothing to say it had changed."""
    submitter = index.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER])
    submitter.upsert(
        f.person(record="NCIS-1"), f.person(record="NCIS-5", surname="Okafor", given="Ngozi", ssn="212-44-8765")
    )
    batcher, batch_id = _answered_batch(index)
    [before, _] = _results(batcher, batch_id)
    assert [h.changed_since for h in before.hits] == [False]
    submitter.upsert(f.person(record="NCIS-1", version=2, middle="Jerome"))  # a correction of the same person

    harold, ngozi = _results(batcher, batch_id)
    [hit] = harold.hits
    assert hit.changed_since and hit.tracing.subject.name.middle_name == "James"  # as answered, and says so
    assert [h.changed_since for h in ngozi.hits] == [False]
    line = batch_cli.result_line(harold)
    [written] = line["hits"]
    assert written["changed_since"] is True
    # The record disclosed, as `dcii search --json` shows it (the file held its key, type and score only).
    assert written["tracing"]["subject"]["name"]["surname"] == "Whitfield"
    assert "changed_since" not in batch_cli.result_line(ngozi)["hits"][0]


def test_a_refused_login_or_a_missing_profile_is_one_line(index: Index, tmp_path: Path) -> None:
    """A suspended activity's `dcii batch status` ended in a traceback of the login's RpcError."""
    batch_profile(index, tmp_path)
    (tmp_path / "pw").write_text("not the password")
    command = [sys.executable, "-m", "dcii.cli.main", "batch", "status", "b-1"]
    for profile, said in (
        (tmp_path / "profile.json", "login refused: UNAUTHENTICATED"),
        (tmp_path / "none", "profile"),
    ):
        env = dict(os.environ, DCII_PROFILE=str(profile))
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode != 0 and done.stderr.startswith(said), done.stderr
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_the_results_of_a_batch_that_did_not_finish_say_so_and_exit_1(index: Index, tmp_path: Path) -> None:
    """A batch cancelled (or failed) part way: `dcii batch results` wrote what was answered and exited 0, as
    for a whole batch, and the status had no word for why it stopped."""
    index.stop()
    start(index, BatchSettings(threads=0))  # no worker: the batch stays queued until cancelled
    cert, account, password = batch_profile(index, tmp_path)
    client = index.connect(cert)
    client.login(account, password)
    batch_id = _submit(client, _people(index, 3)).batch_id
    out = tmp_path / "out.jsonl"
    command = [sys.executable, "-m", "dcii.cli.main", "batch"]
    env = dict(os.environ, DCII_PROFILE=str(tmp_path / "profile.json"))
    for action in (["cancel", batch_id], ["results", batch_id, "--out", str(out)], ["status", batch_id]):
        done = subprocess.run(
            [*command, *action], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
        )
        if action[0] == "results":
            assert done.returncode == 1 and out.read_text() == "", done.stderr
            assert "is CANCELLED (cancelled by the submitter): the results hold the 0 of 3" in done.stderr
        else:
            assert done.returncode == 0 and "CANCELLED (cancelled by the submitter)" in done.stdout, done.stderr
    # Until when the results can be fetched: the server's default keeping time, 30 days from the cancel.
    kept = re.search(r"results kept until (\d{4}-\d\d-\d\d \d\d:\d\d) UTC", done.stdout)
    assert kept is not None, done.stdout
    until = dt.datetime.strptime(kept.group(1), "%Y-%m-%d %H:%M").replace(tzinfo=dt.UTC)
    assert abs(until - (dt.datetime.now(dt.UTC) + dt.timedelta(days=30))) < dt.timedelta(minutes=5)
