"""The client side of the CLI: a profile (the same JSON file a connector uses, connectors.client.Profile)
says where the server is and who is calling; `session` logs in for one command and out at the end."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import grpc

from connectors.client import Metadata, Profile
from dcii.v1 import admin_pb2, admin_pb2_grpc

__all__ = ["Metadata", "Profile", "find_profile", "session"]


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
