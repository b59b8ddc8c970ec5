"""A connector's identity: a profile (where the index is, which certificate, which account) and a session.

The profile is the same small JSON file the `dcii` CLI uses:

    {"server": "index.example:50051", "ca": "pki/ca.pem", "cert": "pki/REPO.pem", "key": "pki/REPO-key.pem",
     "account_code": "repo-op", "password_file": "secrets/repo-op.password"}

Relative paths are relative to the profile file. The password may also come from DCII_PASSWORD. A terminal's
profile may name the purpose its operator's queries are asked for ("purpose": "security_clearance"), which
`dcii search` uses when --purpose is not given; a connector's needs none.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import grpc

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


@dataclass(frozen=True)
class Profile:
    server: str
    ca: Path
    cert: Path
    key: Path
    account_code: str
    password_file: Path | None = None
    purpose: str = ""  # a terminal's: why its operator asks (dcii search --purpose), "" when not set

    @classmethod
    def load(cls, path: Path) -> Profile:
        data = json.loads(path.read_text(encoding="utf-8"))
        base = path.resolve().parent
        password_file = data.get("password_file")
        return cls(
            server=str(data["server"]),
            ca=(base / data["ca"]).resolve(),
            cert=(base / data["cert"]).resolve(),
            key=(base / data["key"]).resolve(),
            account_code=str(data["account_code"]),
            password_file=(base / password_file).resolve() if password_file else None,
            purpose=str(data.get("purpose", "")),
        )

    def password(self) -> str:
        from_env = os.environ.get("DCII_PASSWORD")
        if from_env:
            return from_env
        if self.password_file is None:
            raise SystemExit("no password: set DCII_PASSWORD or give password_file in the profile")
        return _read(self.password_file, "password_file").decode("utf-8").strip()

    def channel(self) -> grpc.Channel:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=_read(self.ca, "ca"),
            private_key=_read(self.key, "key"),
            certificate_chain=_read(self.cert, "cert"),
        )
        return grpc.secure_channel(self.server, credentials, options=list(CLIENT_KEEPALIVE.items()))


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
