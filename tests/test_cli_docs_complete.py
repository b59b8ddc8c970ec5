"""Every `dcii` subcommand says what it does in its parent's `--help`; the administrator's and the privacy
office's (certs, accredit, audit, privacy) also describe themselves in their own `--help`, and give each of
their arguments a help text. An administrator's UAT found `dcii accredit activity --help` describing three of
its nine subcommands and `dcii accredit operator --help` none, and `certs issue --dir`, `--force` and
`activity add --agency` without a word. The RUNBOOK's accreditation examples check their certificates
against the CA (`--pki`): without it a certificate another CA issued is accredited in silence."""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
from collections.abc import Iterator
from pathlib import Path

from dcii.cli.main import parser
from search_service.registry import Registry
from tests.support import ROOT
from tests.test_cli_admin_checks import dcii

DESCRIBED = ("certs", "accredit", "audit", "privacy")


def _subcommands(
    command: argparse.ArgumentParser, path: tuple[str, ...] = ("dcii",)
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser, str | None]]:
    """(path, parser, its line in the parent's listing) of every subcommand under `command`, depth first."""
    for action in command._actions:
        if isinstance(action, argparse._SubParsersAction):
            listed = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                yield (*path, name), sub, listed.get(name)
                yield from _subcommands(sub, (*path, name))


def test_every_subcommand_has_a_line_in_its_parents_help() -> None:
    commands = list(_subcommands(parser()))
    assert len(commands) > 50  # the walk reached the nested ones (accredit activity add, privacy requests list)
    missing = [" ".join(path) for path, _sub, summary in commands if not (summary or "").strip()]
    assert missing == []


def test_the_administrators_and_privacy_offices_subcommands_describe_themselves_and_their_arguments() -> None:
    undescribed, bare = [], []
    for path, sub, _summary in _subcommands(parser()):
        if path[1] not in DESCRIBED:
            continue
        if not (sub.description or "").strip():
            undescribed.append(" ".join(path))
        for action in sub._actions:
            if not isinstance(action, argparse._SubParsersAction) and not (action.help or "").strip():
                bare.append(f"{' '.join(path)} {'/'.join(action.option_strings) or action.dest}")
    assert undescribed == []
    assert bare == []


def _commands(markdown: str) -> list[str]:
    """The `dcii accredit` command lines in the document's shell blocks, each with its continuation lines."""
    lines: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", markdown, flags=re.DOTALL):
        joined = re.sub(r"\\\n\s*", " ", block)
        lines += [line for line in joined.splitlines() if "dcii accredit" in line]
    return lines


def test_the_runbooks_accreditation_examples_check_the_certificate_against_the_ca() -> None:
    commands = _commands((ROOT / "docs" / "RUNBOOK.md").read_text())
    with_a_certificate = [c for c in commands if "--cert " in c or " add-cert " in c]
    assert len(with_a_certificate) >= 3  # the activity, the connector, the peer certificate
    assert [c for c in with_a_certificate if "--pki " not in c] == []


def _accrediting_an_activity(markdown: str) -> list[str]:
    """The command lines of the first shell block of "Accrediting an activity", continuation lines joined."""
    section = markdown.split("\n## Accrediting an activity\n", 1)[1].split("\n## ", 1)[0]
    block = re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)[0]
    return [line for line in re.sub(r"\\\n\s*", " ", block).splitlines() if line.startswith("dcii ")]


def test_the_runbooks_accreditation_example_runs_clean_as_written(tmp_path: Path) -> None:
    """Run as written (in a directory holding its CA, DATA's registry, pw.txt and lost.pem), the RUNBOOK's
    commands for an activity printed a warning: its `--agency NAVY` is no agency the index knows. Each one
    that names a single command (not `suspend|revoke|reinstate`) runs here, in order: exit 0, stderr empty."""
    commands = _accrediting_an_activity((ROOT / "docs" / "RUNBOOK.md").read_text())
    assert dcii("certs", "init", "--dir", "deploy/pki/ca", cwd=tmp_path).returncode == 0
    Registry(tmp_path / "DATA" / "registry.db").close()  # as `dcii serve` leaves it at its first start
    (tmp_path / "pw.txt").write_text("correct horse battery staple\n")
    ran = 0
    for line in commands:
        words = shlex.split(line, comments=True)
        if any("|" in word for word in words):
            continue
        if "lost.pem" in words:  # a terminal's certificate, as the administrator would have copied it
            shutil.copy(tmp_path / "deploy/pki/ca/terminal-2/ADJ-NAVY-CAF.pem", tmp_path / "lost.pem")
        done = dcii(*words[1:], cwd=tmp_path)
        assert (done.returncode, done.stderr) == (0, ""), line
        ran += 1
    assert ran >= 10
