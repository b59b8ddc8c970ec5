"""A cap on guessing a person's SSN through the search (SECURITY.md, "SSN guessing").

Every hit shows the SSN's last four digits, the name and the date of birth; the first five are shown only
to a privacy officer answering a Privacy Act request. But whether a query's SSN finds a record told the
rest: EXACT answers a name and SSN only if the SSN is the record's, and PID_QUALIFIED holds a record whose
SSN is one digit off or has two digits swapped, saying so. An answer without a hit is no disclosure (not
accounted, not charged to the disclosure budget), so an adjudicator's terminal walked the unknown digits
with the last four fixed and had a full SSN back in 3,899 queries and 9 seconds, 9 of them accounted (a
security review).

So an activity may ask, within any 24 hours, at most `limit` different SSNs ending in the same four digits
that found no record holding that very SSN (a guess, or a typo; counted as the query starts, given back
when its answer holds that SSN); past it, such a query is refused
(PermissionDenied, recorded in the audit trail as every refusal is) until the oldest guess is a day old.
The attack needs the last four fixed (a guess must be within one digit of the SSN to be told anything, so
a wrong digit among the last four leaves the first five to chance), and thousands of guesses; an office
asking its thousands of people a day meets the same last four twice a day at most, and its typos find
their records anyway (one digit off, held by PID_QUALIFIED). A query whose SSN is a record's own is not a
guess and costs nothing.

Kept in memory, per process, keyed by a keyed hash (BLAKE2b with a random per-process key) of the activity
and the last four, and the guesses by a hash of the SSN: no SSN, nor its last four, is held in clear. With
`dcii serve --processes N` (and the batch worker's own process; a worker in the server's process is given
the server's count) an activity gets the cap in each: N times 10, against the thousands the attack needs.
A restart starts afresh, which only the server's operator can do.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from indexer.exc import PermissionDenied

DEFAULT_LIMIT = 10
WINDOW = 86_400.0  # seconds
# Buckets kept at most (activity, last four): past it the oldest is dropped; each holds `limit` guesses.
MAX_BUCKETS = 200_000


class SsnProbesRefused(PermissionDenied):
    """Refused for asking too many different SSNs with one ending: names the field for a batch's result."""

    field = "identifiers.ssn"


class SsnProbes:
    """The guesses each activity made, per SSN ending, over the last WINDOW seconds."""

    def __init__(self, limit: int = DEFAULT_LIMIT, clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 1:
            raise ValueError("the cap on SSN guesses must allow at least one")
        self.limit = limit
        self._clock = clock
        self._key = secrets.token_bytes(16)
        self._lock = threading.Lock()
        self._buckets: OrderedDict[bytes, dict[bytes, float]] = OrderedDict()

    def _names(self, activity_id: str, ssn: str) -> tuple[bytes, bytes]:
        bucket = hashlib.blake2b(f"{activity_id}|{ssn[-4:]}".encode(), key=self._key, digest_size=16).digest()
        return bucket, hashlib.blake2b(ssn.encode(), key=self._key, digest_size=16).digest()

    def _live(self, bucket: bytes, now: float) -> dict[bytes, float]:
        guesses = self._buckets.get(bucket)
        if guesses is None:
            return {}
        for name, at in list(guesses.items()):
            if now - at >= WINDOW:
                del guesses[name]
        return guesses

    def take(self, activity_id: str, ssn: str) -> bool:
        """Count a query of `ssn` as a guess before it is answered, or refuse it when the activity has made
        `limit` other guesses with its ending lately. Counted at once, not once answered: calls in flight
        together all passed a check made before any was counted (16 at once, 13 answered: a review). True
        when this call counted it (`give_back` then undoes it, should the answer hold that very SSN)."""
        bucket, name = self._names(activity_id, ssn)
        now = self._clock()
        with self._lock:
            guesses = self._live(bucket, now)
            if name in guesses:
                guesses[name] = now  # asked again: its day starts again
                return False
            if len(guesses) >= self.limit:
                raise SsnProbesRefused(
                    f"activity {activity_id} asked {len(guesses)} different SSNs ending in the same four digits"
                    " in the last 24 hours that found no record with that SSN: no more such queries until a day"
                    " has passed (SECURITY.md, SSN guessing); ask the privacy office"
                )
            guesses[name] = now
            self._buckets[bucket] = guesses
            self._buckets.move_to_end(bucket)
            while len(self._buckets) > MAX_BUCKETS:
                self._buckets.popitem(last=False)
            return True

    def give_back(self, activity_id: str, ssn: str) -> None:
        """Undo a `take` whose answer held a record with that very SSN (no guess), or that failed."""
        bucket, name = self._names(activity_id, ssn)
        with self._lock:
            guesses = self._buckets.get(bucket)
            if guesses is not None:
                guesses.pop(name, None)
