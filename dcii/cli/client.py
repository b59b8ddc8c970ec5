"""The client side of the CLI: a profile (the same JSON file a connector uses, connectors.client.Profile)
says where the server is and who is calling; `session` logs in for one command and out at the end."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TypeVar

import grpc

from connectors.client import Metadata, Profile
from dcii.v1 import admin_pb2, admin_pb2_grpc

__all__ = ["Link", "Metadata", "Profile", "find_profile", "lasting_session", "session"]

T = TypeVar("T")
# Worth waiting out: the server restarting or unreachable for a while, or slow to answer one poll.
_TRANSIENT = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def find_profile(explicit: str | None) -> Profile:
    chosen = explicit or os.environ.get("DCII_PROFILE")
    if not chosen:
        raise SystemExit("no profile: pass --profile FILE or set DCII_PROFILE (dcii serve --demo prints one)")
    # Profile.load ends a profile that cannot be used (unreadable, not JSON, a key missing, a certificate the
    # index would refuse) with one line naming the file and key, as a connector does; its warning (the
    # certificate lapses soon) is a plain line here, where a connector's is JSON.
    return Profile.load(Path(chosen), warn=lambda message: print(f"warning: {message}", file=sys.stderr))


@contextmanager
def session(profile: Profile) -> Iterator[tuple[grpc.Channel, Metadata]]:
    """A logged-in channel: yields it with the metadata to send; logs out at the end."""
    with profile.channel() as channel:
        sessions = admin_pb2_grpc.SessionServiceStub(channel)
        metadata = _first_login(channel, profile)
        try:
            yield channel, metadata
        finally:
            with suppress(grpc.RpcError):  # the session expires on its own
                sessions.Logout(admin_pb2.LogoutRequest(), metadata=metadata, timeout=10)


def _first_login(channel: grpc.Channel, profile: Profile) -> Metadata:
    """A command's login: refused (a wrong password, the activity suspended, the server down), one line."""
    try:
        return _login(channel, profile)
    except grpc.RpcError as error:
        code = error.code().name if error.code() is not None else "UNKNOWN"
        raise SystemExit(f"login refused: {code}: {error.details()}") from None


def _login(channel: grpc.Channel, profile: Profile) -> Metadata:
    login = admin_pb2_grpc.SessionServiceStub(channel).Login(
        admin_pb2.LoginRequest(account_code=profile.account_code, password=profile.password()), timeout=30
    )
    return (("authorization", f"Bearer {login.session_token}"),)


class Link:
    """A session that outlasts what a long wait meets: a server that restarts or cannot be reached for up to
    `retry_for` seconds is waited out (backing off to 10 s), and a session that ended (8 hours passed, or the
    activity was suspended and reinstated) is logged in again. Anything else, or the same trouble past
    `retry_for`, is raised as it came."""

    def __init__(self, channel: grpc.Channel, profile: Profile, metadata: Metadata, retry_for: float) -> None:
        self.channel = channel
        self._profile = profile
        self._metadata: Metadata | None = metadata
        self._retry_for = retry_for

    @property
    def metadata(self) -> Metadata:
        """The session's metadata, for a call that must not be repeated (made outside `call`)."""
        if self._metadata is None:
            raise RuntimeError("no session: the last login again failed")
        return self._metadata

    def logout(self) -> None:
        if self._metadata is not None:
            with suppress(grpc.RpcError):  # the session expires on its own
                admin_pb2_grpc.SessionServiceStub(self.channel).Logout(
                    admin_pb2.LogoutRequest(), metadata=self._metadata, timeout=10
                )

    def call(self, attempt: Callable[[Metadata], T]) -> T:
        """attempt(metadata), again while the trouble lasts (it must be safe to repeat)."""
        give_up, delay, said, relogged = time.monotonic() + self._retry_for, 0.5, False, False
        while True:
            try:
                if self._metadata is None:
                    self._metadata = _login(self.channel, self._profile)
                    print("logged in again", file=sys.stderr)
                return attempt(self._metadata)
            except grpc.RpcError as error:
                code = error.code()
                if code == grpc.StatusCode.UNAUTHENTICATED and self._metadata is not None and not relogged:
                    self._metadata, relogged = None, True  # ended since: log in again, once (a refused login is raised)
                    continue
                if code not in _TRANSIENT or time.monotonic() + delay > give_up:
                    raise
                if not said:
                    print(f"lost the server ({code.name}); trying again for {self._retry_for:g} s", file=sys.stderr)
                    said = True
                time.sleep(delay)
                delay = min(delay * 2, 10.0)


@contextmanager
def lasting_session(profile: Profile, retry_for: float) -> Iterator[Link]:
    """A logged-in Link (the first login is not retried: a wrong profile says so at once); logs out at the end."""
    with profile.channel() as channel:
        link = Link(channel, profile, _first_login(channel, profile), retry_for)
        try:
            yield link
        finally:
            link.logout()
