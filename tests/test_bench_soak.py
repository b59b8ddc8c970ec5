"""The soak bench's judgement of a maximum-rate step (bench/soak.py `_steady`), on made-up samples: a step
counts as sustained only when the server kept up without a queue. A real soak takes minutes (run by
bench/reliability.py for docs/RELIABILITY.md), so only the rule is checked here."""

from __future__ import annotations

import random

from bench.soak import _steady
from bench.soak_clients import Sample

SECONDS, RATE = 10.0, 100.0


def step(latency_ms: float, *, late_ms: float | None = None, code: str = "OK", answered: float = 1.0) -> list[Sample]:
    """RATE calls a second for SECONDS, each taking about `latency_ms` (`late_ms` in the second half)."""
    rng = random.Random(7)
    calls = int(SECONDS * RATE * answered)
    samples = []
    for n in range(calls):
        at = n / RATE / answered
        base = late_ms if late_ms is not None and at >= SECONDS / 2 else latency_ms
        samples.append((at, rng.uniform(0.8, 1.2) * base / 1000, code if n == calls // 2 else "OK"))
    return samples


def test_a_step_answered_promptly_is_sustained() -> None:
    assert _steady(step(6), SECONDS, RATE, None)
    assert _steady(step(8), SECONDS, RATE, 6.0)  # a little slower than the first step: still no queue


def test_a_step_whose_every_call_waits_in_a_queue_is_not() -> None:
    # Everything answered, both halves alike (the queue kept its length): the median gives it away.
    assert _steady(step(114), SECONDS, RATE, None)  # nothing to compare with on the first step
    assert not _steady(step(114), SECONDS, RATE, 6.0)


def test_a_queue_that_builds_up_an_error_or_unanswered_calls_is_not() -> None:
    assert not _steady(step(6, late_ms=60), SECONDS, RATE, 6.0)
    assert not _steady(step(6, code="RESOURCE_EXHAUSTED"), SECONDS, RATE, 6.0)
    assert not _steady(step(6, answered=0.9), SECONDS, RATE, 6.0)
    assert not _steady(step(600), SECONDS, RATE, None)  # p99 over 500 ms
