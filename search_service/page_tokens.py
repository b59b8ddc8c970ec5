"""Page tokens: where the next page starts, and which query they belong to.

A token names the last hit its page showed (never a record the page passed over: a tracing left out by a
type filter is neither shown nor accounted, so its name must not travel in a token either), and carries a
digest of the query it was issued for. A token sent with another query (a client that changed the name
and kept the token) is refused, where it used to give an empty or partial page that looked complete.

What a client holds is that token sealed (`TokenEnvelope`): encrypted and authenticated with AES-GCM under
a key of this instance's (derived from its audit key), bound to the activity it was issued to. A token in
clear named the page's last given name, and its digest of the query (its SSN and name among it) could be
reversed by trying SSNs; a token copied into a log or handed to another terminal now tells nothing and
continues nothing. A token is this instance's, as a session is: a client reconnecting to another instance
asks again from the first page.

Search tokens of the earlier, unsealed formats (plain offsets and cursors, and the p2 format below, kept in
batch results for up to 30 days) are still read; a client can forge such a token for its own query, which
shows it only what that query may show anyway.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from indexer.exc import InvalidArgument
from indexer.model import Violation

_FORMAT = "p2"
Position = list[str | int | float]
_SEALED = "s1."  # never part of an unsealed token: base64 has no "."
_NONCE_BYTES = 12
_LONGEST = 4096  # this instance's tokens are a few hundred characters
NOT_OURS = "not a token this instance issued to this activity (altered, or another instance's): ask from the first page"


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


class TokenEnvelope:
    """Seals the tokens this instance issues, and opens those its clients send back."""

    def __init__(self, key: bytes) -> None:
        """`key`: 32 bytes, this instance's (`AuditLog.key_for("page tokens")`: the same in each of its
        processes and across restarts, so a token is read by whichever process the client's call reaches)."""
        self._aead = AESGCM(key)

    def seal(self, token: str, activity_id: str) -> str:
        """`token` as the client gets it ("" stays "": no further page)."""
        if not token:
            return ""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, token.encode(), activity_id.encode())
        return _SEALED + base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")

    def opened(self, token: str, activity_id: str, *, unsealed: bool = True) -> str | None:
        """The token inside a sealed one issued to `activity_id`; None if it is not one. `unsealed`: whether a
        token of an earlier, unsealed format is taken as it is (search tokens kept in batch results)."""
        if not token.startswith(_SEALED):
            return token if unsealed or not token else None
        if len(token) > _LONGEST:
            return None
        text = token[len(_SEALED) :]
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            inner = self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], activity_id.encode())
            return inner.decode()
        except (ValueError, binascii.Error, InvalidTag, UnicodeDecodeError):
            return None
