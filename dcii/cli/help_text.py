"""What `--help` says of a subcommand: a one-line summary in its parent's listing, and a description at the
top of its own. An administrator's UAT found `dcii accredit activity --help` describing three of its nine
subcommands and `dcii accredit operator --help` none (tests/test_cli_docs_complete.py keeps it so).

And an option taken both before a group's subcommand and after it (`after_subcommand`): `--data` went
before the subcommand for `dcii accredit` and after it for `dcii audit` and `dcii privacy`, and the other
place was refused.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:  # subscriptable for the type checker only
    Subcommands: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]


def subcommand(
    parent: Subcommands,
    name: str,
    summary: str,
    details: str = "",
    *,
    parents: list[argparse.ArgumentParser] | None = None,
) -> argparse.ArgumentParser:
    """The subcommand `name` of `parent`: `summary` (lower case, no full stop) is its line in the parent's
    listing; its own --help begins with the summary as a sentence, then `details`."""
    description = f"{summary[:1].upper()}{summary[1:]}." + (f" {details}" if details else "")
    return parent.add_parser(name, help=summary, description=description, parents=parents or [])


def after_subcommand(option: str, help_text: str) -> argparse.ArgumentParser:
    """A parent parser (argparse's `parents=`) giving each subcommand `option`, which its group takes before
    the subcommand too. Its default is SUPPRESS: argparse copies every attribute a subcommand's parser sets
    over its parent's, so a default here would replace the value given before the subcommand; unset, that
    value (or the group's default) stands unless the option is given after the subcommand too."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(option, default=argparse.SUPPRESS, metavar="DIR", help=help_text)
    return parent
