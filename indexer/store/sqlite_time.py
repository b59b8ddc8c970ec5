"""Instants as the embedded store keeps them: whole microseconds since the epoch, UTC."""

from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def micros(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def from_micros(value: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(value / 1_000_000, dt.UTC)
