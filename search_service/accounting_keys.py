"""The audit trail's HMAC key and how a subject is named in the trail without PII in clear.

A subject is stored only as HMAC-SHA256(key, canonical subject string) in hex, the canonical string
being the exact keys of surname and given name and the SSN's digits ("v1|SURNAME|GIVEN|123456789").
A disclosure also names the person by the SSN alone ("v1|ssn|123456789"): the access answer finds by it
the disclosures of records gone since (deleted, completed, superseded, retired) that were filed under
another spelling or a former name, which the name-and-SSN hash cannot find.
The key lives in a 0600 file beside the database; `load_or_create_key` reads it or makes it.
"""

from __future__ import annotations

import contextlib
import functools
import hmac
import os
import secrets
import sqlite3
from pathlib import Path

from indexer.exc import FailedPrecondition
from indexer.model import PersonName
from indexer.normalize import name_key
from search_service import audit_chain

KEY_BYTES = 32


def subject_ref(key: bytes, name: PersonName, ssn: str) -> str:
    """HMAC-SHA256(key, "v1|SURNAME|GIVEN|SSN digits") in hex: how a subject is named in the trail."""
    return _ref(key, _name_part(name) + _digits(ssn))


def subject_refs(key: bytes, name: PersonName, ssn: str) -> tuple[str, str]:
    """`subject_ref` of the name with the SSN and without one, for one analysis of the name (the costly
    part, 2-3 µs: a disclosure names both)."""
    base = _name_part(name)
    return _ref(key, base + _digits(ssn)), _ref(key, base)


def _name_part(name: PersonName) -> str:
    names = name_key(name)
    return f"v1|{names.surname}|{names.given}|"


def _digits(ssn: str) -> str:
    return "".join(c for c in ssn if c.isdigit())


def _ref(key: bytes, text: str) -> str:
    mac = _keyed(key).copy()  # a copy of the keyed state: a third cheaper than keying anew, per hit
    mac.update(text.encode("ascii"))
    return mac.hexdigest()


@functools.lru_cache(maxsize=8)
def _keyed(key: bytes) -> hmac.HMAC:
    return hmac.new(key, digestmod="sha256")


def typed_ref(key: bytes, text: str) -> str:
    """HMAC-SHA256(key, "v1|typed|" + text), its first 16 hex digits: what a client typed that the trail must
    not hold in clear (an unknown account code, perhaps a password typed in its field), named so that the
    same text tried again reads the same."""
    return _ref(key, "v1|typed|" + text.encode("utf-8", "surrogatepass").hex())[:16]


def person_ref(key: bytes, ssn: str) -> str:
    """HMAC-SHA256(key, "v1|ssn|SSN digits") in hex; "" without an SSN (nothing to name a person by)."""
    digits = _digits(ssn)
    return _ref(key, f"v1|ssn|{digits}") if digits else ""


def read_key(path: Path) -> bytes:
    """The key in `path` (hex, mode 0600): FileNotFoundError if there is none, FailedPrecondition if unusable."""
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        if os.fstat(fd).st_mode & 0o077:
            raise FailedPrecondition(f"the audit key {path} is open to other users: it must be mode 0600")
        text = os.read(fd, 4096).decode("ascii", "replace").strip()
    finally:
        os.close(fd)
    try:
        key = bytes.fromhex(text)
    except ValueError as error:
        raise FailedPrecondition(f"the audit key {path} is not a hex key") from error
    if len(key) < KEY_BYTES:
        raise FailedPrecondition(f"the audit key {path} is shorter than {KEY_BYTES} bytes")
    return key


def _made_with_a_key(trail: Path) -> bool:
    if not trail.exists():
        return False
    try:
        conn = sqlite3.connect(trail.resolve().as_uri() + "?mode=ro", uri=True)
        try:
            return conn.execute("SELECT 1 FROM meta WHERE name = 'key_check'").fetchone() is not None
        finally:
            conn.close()
    except sqlite3.OperationalError as error:
        # No meta table yet: a first start cut short before the trail was made. Anything else (locked,
        # busy): not known to be keyless, so no key is made on a guess.
        return "no such table" not in str(error)
    except sqlite3.Error:
        return True  # not a database: not ours to make a key for; AuditLog says what is wrong with it


def load_or_create_key(path: Path, *, trail: Path | None = None) -> bytes:
    """The HMAC key for subject identifiers: read from `path` (hex, mode 0600), or made (32 random bytes)
    and written there atomically if there is none. A key file readable by others is refused. A missing key
    is refused, and none made, when its trail (`trail`, by default audit.db beside the key) was made with a
    key already: a new one would never match it, and a start (or a CLI writing the trail) that made one,
    then refused it as "not the one audit.db was made with", left a key that never belonged there."""
    path = Path(path)
    with contextlib.suppress(FileNotFoundError):
        return _read_key(path)
    if _made_with_a_key(trail if trail is not None else path.with_name("audit.db")):
        raise FailedPrecondition(
            f"the audit key {path} is missing, but the audit trail {trail} was made with one:"
            " restore the key from a backup (nothing was created)"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(KEY_BYTES)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            os.write(fd, (key.hex() + "\n").encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(temporary, path)  # fails if another process made the key first: use that one
        except FileExistsError:
            return _read_key(path)
        audit_chain.fsync_directory(path.parent)
    finally:
        temporary.unlink(missing_ok=True)
    return key


class KeyedNames:
    """How the trail names what it must not hold in clear, under its key (the base of AuditLog)."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the audit key must be at least 16 bytes")
        self._key = key

    def subject_ref(self, name: PersonName, ssn: str) -> str:
        """How the trail names a subject (keyed hash of name and SSN); safe to put in an event's detail."""
        return subject_ref(self._key, name, ssn)

    def person_ref(self, ssn: str) -> str:
        """How the trail names a person by SSN alone ("" without one)."""
        return person_ref(self._key, ssn)

    def typed_ref(self, text: str) -> str:
        """How the trail names what a client typed without holding it (accounting_keys.typed_ref)."""
        return typed_ref(self._key, text)

    def key_for(self, purpose: str) -> bytes:
        """A 32-byte key of this instance's for `purpose` (page tokens), derived from the trail's: nothing
        keyed with it can be taken for the trail's own hashes."""
        return hmac.digest(self._key, f"dcii key for {purpose}".encode(), "sha256")
