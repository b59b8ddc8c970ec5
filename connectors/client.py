"""A connector's identity: a profile (where the index is, which certificate, which account) and a session.

The profile is the same small JSON file the `dcii` CLI uses:

    {"server": "index.example:50051", "ca": "pki/ca.pem", "cert": "pki/REPO.pem", "key": "pki/REPO-key.pem",
     "account_code": "repo-op", "password_file": "secrets/repo-op.password"}

Relative paths are relative to the profile file. The password may also come from DCII_PASSWORD. A terminal's
profile may name the purpose its operator's queries are asked for ("purpose": "security_clearance"), which
`dcii search` uses when --purpose is not given; a connector's needs none.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from dcii.v1 import admin_pb2, admin_pb2_grpc, ingest_pb2, ingest_pb2_grpc

Metadata = tuple[tuple[str, str], ...]

# Actions a batch message carries (the index takes up to 1,000): big enough that gRPC's per-message cost
# vanishes. And at most BATCH_BYTES of them: the server takes messages of up to 4 MiB, and a bigger one is
# refused (RESOURCE_EXHAUSTED) however often it is sent again.
BATCH_ACTIONS = 500
BATCH_BYTES = 2 * 2**20

# HTTP/2 pings on the channel, with or without calls: a firewall's idle timer does not drop a connection
# that waits on a long answer (a bulk load's, a batch's), and a server that vanished is found within
# 30 + 20 s instead of when the call's deadline passes. The index accepts a client's ping every 10 s
# (search_service.keepalive; a test keeps the two in step).
CLIENT_KEEPALIVE = {
    "grpc.keepalive_time_ms": 30_000,
    "grpc.keepalive_timeout_ms": 20_000,
    "grpc.keepalive_permit_without_calls": 1,
    "grpc.http2.max_pings_without_data": 0,
}


def _in_batches(requests: Iterator[ingest_pb2.IngestRequest]) -> Iterator[ingest_pb2.IngestBatchRequest]:
    batch, size = ingest_pb2.IngestBatchRequest(), 0
    for request in requests:
        grows = request.ByteSize() + 8  # the field's tag and length
        if batch.requests and size + grows > BATCH_BYTES:
            yield batch
            batch, size = ingest_pb2.IngestBatchRequest(), 0
        batch.requests.append(request)
        size += grows
        if len(batch.requests) >= BATCH_ACTIONS:
            yield batch
            batch, size = ingest_pb2.IngestBatchRequest(), 0
    if batch.requests:
        yield batch


# Profile keys that must hold a non-empty string: without any of them no connection can be made.
_REQUIRED = {
    "server": "the index's host:port",
    "ca": "the CA certificate's PEM file",
    "cert": "this terminal's or repository's certificate PEM file",
    "key": "that certificate's private key PEM file",
    "account_code": "the operator's account",
}
# A certificate that lapses within this is announced at every start: a new one takes time to issue and
# accredit, and a connector whose certificate lapsed stops feeding the index.
EXPIRY_WARNING = dt.timedelta(days=30)


def _json_warning(message: str) -> None:
    """A connector's log is JSON lines (CONNECTORS.md); the CLI passes a plain printer instead."""
    print(json.dumps({"event": "warning", "code": "CERTIFICATE", "details": message}), file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Profile:
    server: str
    ca: Path
    cert: Path
    key: Path
    account_code: str
    password_file: Path | None = None
    purpose: str = ""  # a terminal's: why its operator asks (dcii search --purpose), "" when not set
    path: Path | None = None  # the profile file itself, for messages

    @classmethod
    def load(cls, path: Path, *, warn: Callable[[str], None] = _json_warning) -> Profile:
        """The profile at `path`, its certificate checked (check_certificate); a profile that cannot be
        used ends the program with one line naming the file and the key at fault, never a traceback."""
        data = _profile_json(path)
        base = path.resolve().parent
        for key, what in _REQUIRED.items():
            if not isinstance(data.get(key), str) or not data[key].strip():
                found = "missing" if key not in data else "not a non-empty string"
                raise SystemExit(f"profile: {key} in {path}: {found} ({what})")
        for key in ("password_file", "purpose"):
            if data.get(key) is not None and not isinstance(data[key], str):
                raise SystemExit(f"profile: {key} in {path}: not a string")
        password_file = data.get("password_file")
        profile = cls(
            server=data["server"],
            ca=(base / data["ca"]).resolve(),
            cert=(base / data["cert"]).resolve(),
            key=(base / data["key"]).resolve(),
            account_code=data["account_code"],
            password_file=(base / password_file).resolve() if password_file else None,
            purpose=data.get("purpose") or "",
            path=path,
        )
        profile.check_certificate(warn)
        return profile

    def password(self) -> str:
        from_env = os.environ.get("DCII_PASSWORD")
        if from_env:
            return from_env
        if self.password_file is None:
            raise SystemExit("no password: set DCII_PASSWORD or give password_file in the profile")
        return _read(self.password_file, "password_file").decode("utf-8").strip()

    def check_certificate(self, warn: Callable[[str], None] | None = None) -> None:
        """Refuse, in one line, a certificate the index would refuse during the TLS handshake: gRPC reports
        that as UNAVAILABLE "Socket closed", which a connector retried for six minutes as a network outage,
        never naming the certificate (UAT M4). `warn` hears of one lapsing within EXPIRY_WARNING."""
        problem, notice = certificate_problem(
            _read(self.ca, "ca"), _read(self.cert, "cert"), _read(self.key, "key"), self, dt.datetime.now(dt.UTC)
        )
        if problem:
            raise SystemExit(problem)
        if notice and warn is not None:
            warn(notice)

    def channel(self) -> grpc.Channel:
        # Checked again for each channel: a connector polling for months outlives its certificate, and
        # reconnects after an outage with one that lapsed meanwhile.
        self.check_certificate()
        credentials = grpc.ssl_channel_credentials(
            root_certificates=_read(self.ca, "ca"),
            private_key=_read(self.key, "key"),
            certificate_chain=_read(self.cert, "cert"),
        )
        return grpc.secure_channel(self.server, credentials, options=list(CLIENT_KEEPALIVE.items()))


def _profile_json(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        why = error.strerror if isinstance(error, OSError) and error.strerror else "not UTF-8 text"
        raise SystemExit(f"profile: {path}: {why} (pass --profile FILE or set DCII_PROFILE)") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:  # its msg names the JSON's shape only, never a value
        where = f"line {error.lineno} column {error.colno}"
        raise SystemExit(f"profile: {path}: not JSON ({error.msg} at {where})") from None
    if not isinstance(data, dict):
        raise SystemExit(f"profile: {path}: not a JSON object")
    return data


def _read(path: Path, field: str) -> bytes:
    """A file a profile names, or one line saying which and why (a copied profile's relative password_file
    ended `dcii search` in a traceback: an adjudicator's review)."""
    try:
        return path.read_bytes()
    except OSError as error:
        raise SystemExit(
            f"profile: {field} {path}: {error.strerror or type(error).__name__}"
            " (a relative path in a profile is relative to the profile's own directory)"
        ) from None


def _day(moment: dt.datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def certificate_problem(
    ca_pem: bytes, cert_pem: bytes, key_pem: bytes, profile: Profile, now: dt.datetime
) -> tuple[str | None, str | None]:
    """(why the index would refuse this certificate, or None; a warning that it lapses soon, or None)."""
    where = f" (profile {profile.path})" if profile.path else ""
    try:
        chain = x509.load_pem_x509_certificates(cert_pem)
    except ValueError:
        return f"profile: cert {profile.cert}: not a PEM certificate{where}", None
    try:
        anchors = x509.load_pem_x509_certificates(ca_pem)
    except ValueError:
        return f"profile: ca {profile.ca}: not a PEM certificate{where}", None
    leaf = chain[0]
    if now >= leaf.not_valid_after_utc:
        return f"certificate {profile.cert} expired on {_day(leaf.not_valid_after_utc)}: ask for a new one", None
    if now < leaf.not_valid_before_utc:
        return (
            f"certificate {profile.cert} is not valid until {_day(leaf.not_valid_before_utc)}: check this"
            " computer's clock and time zone, or ask for a certificate valid now",
            None,
        )
    if not _chains_to(leaf, chain[1:], anchors):
        return (
            f"certificate {profile.cert} is not signed by the profile's CA {profile.ca}: the index would refuse"
            f' it; ask for one issued by the index\'s CA, or correct "cert" or "ca"{where}',
            None,
        )
    mismatch = _key_mismatch(key_pem, leaf)
    if mismatch:
        return f'profile: key {profile.key}: {mismatch} {profile.cert}; correct "key" or "cert"{where}', None
    left = leaf.not_valid_after_utc - now
    if left <= EXPIRY_WARNING:
        return None, (
            f"certificate {profile.cert} expires on {_day(leaf.not_valid_after_utc)} (in {left.days} days):"
            " ask for a new one now"
        )
    return None, None


def _chains_to(leaf: x509.Certificate, intermediates: list[x509.Certificate], anchors: list[x509.Certificate]) -> bool:
    """Whether signatures lead from `leaf`, through the certificate file's own intermediates, to a
    certificate of the CA file. Signatures and names only: the index's TLS stack judges the rest."""
    current, unused = leaf, list(intermediates)
    for _ in range(len(intermediates) + 1):
        if any(_issued_by(current, anchor) for anchor in anchors):
            return True
        nxt = next((c for c in unused if _issued_by(current, c)), None)
        if nxt is None:
            return False
        unused.remove(nxt)
        current = nxt
    return False


def _issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        certificate.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):  # another issuer's name, key type or signature
        return False
    return True


def _key_mismatch(key_pem: bytes, leaf: x509.Certificate) -> str | None:
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):  # gRPC takes no pass phrase: an encrypted key too
        return "not an unencrypted PEM private key for"
    der, spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(der, spki) != leaf.public_key().public_bytes(der, spki):
        return "not the private key of"
    return None


class Session:
    """A logged-in mutual-TLS channel to the index. Raises grpc.RpcError if the login fails."""

    def __init__(self, profile: Profile, *, timeout: float = 30.0) -> None:
        self._channel = profile.channel()
        try:
            login = admin_pb2_grpc.SessionServiceStub(self._channel).Login(
                admin_pb2.LoginRequest(account_code=profile.account_code, password=profile.password()),
                timeout=timeout,
            )
        except BaseException:
            self._channel.close()
            raise
        self._metadata: Metadata = (("authorization", f"Bearer {login.session_token}"),)

    def ingest(self, requests: Iterator[ingest_pb2.IngestRequest], timeout: float) -> Iterable[ingest_pb2.IngestResult]:
        """The requests' results, one each, in order; sent in batch messages (IngestBatches), which cost the
        index a fraction of one message per action."""
        stub = ingest_pb2_grpc.IngestServiceStub(self._channel)
        answers = stub.IngestBatches(_in_batches(requests), metadata=self._metadata, timeout=timeout)
        return (result for answer in answers for result in answer.results)

    def close(self) -> None:
        with suppress(grpc.RpcError):  # the session expires on its own
            admin_pb2_grpc.SessionServiceStub(self._channel).Logout(
                admin_pb2.LogoutRequest(), metadata=self._metadata, timeout=5
            )
        self._channel.close()
