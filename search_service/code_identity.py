"""Which program a process runs: a digest of the program's source files as this process first read them.

A server's helper processes (the batch worker, the serving replicas) are started by command line from the
files on disk, which hold the server's own code only while nobody changes them. Upgraded in place under a
running server (a `git pull` in its checkout, a `pip install -U` into its environment), the next helper
ran the new code beside the old server: a batch worker opened the store for writing and upgraded it under
the server, whose later writes kept the old match keys for good (a review of upgrades). The server passes
its digest on the helper's command line; a helper whose own differs exits with OTHER_CODE before opening
anything, and the server logs that once and does not start it again: restart the server to run the new
program.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)

PACKAGES = ("dcii", "indexer", "search_service")
# A helper's exit status when it is not the server's program (sysexits' EX_SOFTWARE is taken by crashes).
OTHER_CODE = 3


@functools.cache
def code_identity() -> str:
    """The digest of every Python file of the program's packages (their paths and contents), read once."""
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:32]


def exit_unless_server_code(expected: str, what: str) -> None:
    """Exit with OTHER_CODE, one line logged, unless this process runs the program digested `expected`."""
    if expected != code_identity():
        log.error(
            f"{what} not started: the program on disk is not the one the server runs (changed under it?);"
            " restart dcii serve to run it",
            extra={"expected": expected, "found": code_identity()},
        )
        sys.exit(OTHER_CODE)
