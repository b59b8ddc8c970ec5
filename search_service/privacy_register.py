"""The deployment's register of Privacy Act requests: each request is registered on the instance that opened
it (search_service.privacy_requests, `privacy.db`); with peers (search_service.peers), a request opened on
one instance is found, and its answer recorded, from any other, and the list is every instance's. A number
is opened once in the deployment; one found on two instances (opened on each before they were peers) is
refused until the office settles which it is."""

from __future__ import annotations

import datetime as dt

from indexer.exc import FailedPrecondition
from search_service.peers import OPEN, Peers, Window
from search_service.privacy_requests import PrivacyRequest, PrivacyRequests, RequestKind

HERE = ""  # where a request of this instance's register is held


class Register:
    def __init__(self, local: PrivacyRequests, peers: Peers | None) -> None:
        self._local, self._peers = local, peers

    def find(self, number: str, window: Window = OPEN) -> tuple[PrivacyRequest | None, str]:
        """The request under `number` and the address of the instance holding it (HERE for this one)."""
        own = self._local.request(number)
        holders = [(HERE, own)] if own is not None else []
        if self._peers is not None:
            holders += self._peers.privacy_requests(number, window=window)
        if len(holders) > 1:
            where = ", ".join(address or "this instance" for address, _ in holders)
            raise FailedPrecondition(
                f"privacy request {number} is registered on {len(holders)} instances ({where}): the privacy "
                "office must settle which it is (RUNBOOK, Privacy Act duties with several instances)"
            )
        return (holders[0][1], holders[0][0]) if holders else (None, HERE)

    def open_request(
        self, number: str, kind: RequestKind, received_at: dt.datetime, window: Window = OPEN
    ) -> PrivacyRequest:
        if self._peers is not None:
            elsewhere = self._peers.privacy_requests(number, window=window)
            if elsewhere:
                raise FailedPrecondition(f"privacy request {number} is already registered (on {elsewhere[0][0]})")
            window.check()
        return self._local.open_request(number, kind, received_at)

    def respond(self, number: str, holder: str, window: Window = OPEN) -> None:
        """Record the answer where the request is registered."""
        if holder == HERE or self._peers is None:
            self._local.respond(number)
        else:
            self._peers.respond(holder, number, window)

    def list_requests(
        self, *, overdue_only: bool = False, late_only: bool = False, window: Window = OPEN
    ) -> list[PrivacyRequest]:
        """Every instance's requests, oldest received first (filtered as PrivacyRequests.list_requests)."""
        found = self._local.list_requests(overdue_only=overdue_only, late_only=late_only)
        if self._peers is not None:
            asked = self._peers.privacy_requests(overdue_only=overdue_only, late_only=late_only, window=window)
            found += (r for _, r in asked)
        return sorted(found, key=lambda r: (r.received_at, r.request_number))
