"""The client side of the CLI: a profile says where the server is and who is calling.

A profile is a small JSON file (made by `dcii serve --demo` or by hand):

    {"server": "localhost:50051", "ca": "pki/ca.pem", "cert": "pki/ACT.pem", "key": "pki/ACT-key.pem",
     "account_code": "jdoe", "password_file": "secrets/jdoe.password"}

Relative paths are relative to the profile file. The password may also come from DCII_PASSWORD.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import grpc

from dcii.v1 import admin_pb2, admin_pb2_grpc

Metadata = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Profile:
    server: str
    ca: Path
    cert: Path
    key: Path
    account_code: str
    password_file: Path | None = None

    @classmethod
    def load(cls, path: Path) -> Profile:
        data = json.loads(path.read_text())
        base = path.resolve().parent

        def resolve(value: str) -> Path:
            return (base / value).resolve()

        password_file = data.get("password_file")
        return cls(
            server=data["server"],
            ca=resolve(data["ca"]),
            cert=resolve(data["cert"]),
            key=resolve(data["key"]),
            account_code=data["account_code"],
            password_file=resolve(password_file) if password_file else None,
        )

    def password(self) -> str:
        from_env = os.environ.get("DCII_PASSWORD")
        if from_env:
            return from_env
        if self.password_file is None:
            raise SystemExit("no password: set DCII_PASSWORD or give password_file in the profile")
        return self.password_file.read_text().strip()

    def channel(self) -> grpc.Channel:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=self.ca.read_bytes(),
            private_key=self.key.read_bytes(),
            certificate_chain=self.cert.read_bytes(),
        )
        return grpc.secure_channel(self.server, credentials)


def find_profile(explicit: str | None) -> Profile:
    chosen = explicit or os.environ.get("DCII_PROFILE")
    if not chosen:
        raise SystemExit("no profile: pass --profile FILE or set DCII_PROFILE (dcii serve --demo prints one)")
    return Profile.load(Path(chosen))


@contextmanager
def session(profile: Profile) -> Iterator[tuple[grpc.Channel, Metadata]]:
    """A logged-in channel: yields it with the metadata to send; logs out at the end."""
    with profile.channel() as channel:
        sessions = admin_pb2_grpc.SessionServiceStub(channel)
        login = sessions.Login(
            admin_pb2.LoginRequest(account_code=profile.account_code, password=profile.password()), timeout=30
        )
        metadata: Metadata = (("authorization", f"Bearer {login.session_token}"),)
        try:
            yield channel, metadata
        finally:
            with suppress(grpc.RpcError):  # the session expires on its own
                sessions.Logout(admin_pb2.LogoutRequest(), metadata=metadata, timeout=10)
