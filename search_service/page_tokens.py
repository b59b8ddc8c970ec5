"""Page tokens: where the next page starts, and which query they belong to.

A token names the last hit its page showed (never a record the page passed over: a tracing left out by a
type filter is neither shown nor accounted, so its name must not travel in a token either), and carries a
digest of the query it was issued for. A token sent with another query (a client that changed the name
and kept the token) is refused, where it used to give an empty or partial page that looked complete.

The digest is not a signature: a client can still forge a token for its own query, which shows it only
what that query may show anyway. Tokens of the earlier formats (plain offsets and cursors, kept in batch
results for up to 30 days) are still read, without the query check.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence

from indexer.exc import InvalidArgument
from indexer.model import Violation

_FORMAT = "p2"
Position = list[str | int | float]


def not_issued() -> InvalidArgument:
    return InvalidArgument([Violation("page_token", "not a token this index issued")])


def other_query() -> InvalidArgument:
    return InvalidArgument([Violation("page_token", "issued for another query: ask this one from its first page")])


def _digest(scope: Sequence[object]) -> str:
    text = json.dumps(list(scope), separators=(",", ":"), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def seal(kind: str, scope: Sequence[object], position: Position) -> str:
    body = json.dumps([_FORMAT, kind, _digest(scope), *position], separators=(",", ":"))
    return base64.urlsafe_b64encode(body.encode()).decode()


def _opened(token: str, kind: str) -> tuple[str, Position] | None:
    """(digest, position) of a token of this format and kind; None for a token of an earlier format."""
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError) as error:
        raise not_issued() from error
    if not text.startswith("["):
        return None
    try:
        body = json.loads(text)
    except (ValueError, RecursionError) as error:  # RecursionError: a forged token of brackets nested deep
        raise not_issued() from error
    if not isinstance(body, list) or len(body) < 3 or body[:2] != [_FORMAT, kind] or not isinstance(body[2], str):
        raise not_issued()
    position = body[3:]
    if not all(isinstance(part, str | int | float) and not isinstance(part, bool) for part in position):
        raise not_issued()
    return body[2], position


def position_of(token: str, kind: str) -> Position | None:
    """The position a token of `kind` names, its query unchecked (the request's own check); None for an
    earlier format's token, which the caller reads itself."""
    opened = _opened(token, kind)
    return None if opened is None else opened[1]


def unseal(token: str, kind: str, scope: Sequence[object], earlier: Sequence[Sequence[object]] = ()) -> Position | None:
    """The position, if the token was issued for this query; None for an earlier format's token.
    `earlier`: the scopes an earlier version gave the same query (its tokens, kept in batch results, are
    read as before)."""
    opened = _opened(token, kind)
    if opened is None:
        return None
    digest, position = opened
    if digest != _digest(scope) and all(digest != _digest(each) for each in earlier):
        raise other_query()
    return position
