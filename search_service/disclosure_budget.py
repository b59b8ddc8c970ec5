"""How many records each accredited activity may receive a day from searches and batches, if the privacy office
sets a number (`dcii serve --disclosures-per-activity-per-day N`; none by default).

The limits on calls count calls, not what they disclose: one accredited terminal paging NONSTANDARD answers
through every surname took 19,890 of 20,000 tracings in 16 s, well within its rate (a review of a
misbehaving terminal). `dcii audit volume` finds such a harvest after the fact; this budget stops it. It is
a token bucket per activity, in records: N at once at most, refilled at N a day, so N over any day and a
day's worth in a burst. An answer that would take the activity past it is refused whole with
RESOURCE_EXHAUSTED before anything is recorded or sent (an answer with no hit costs nothing; one whose
accounting then fails is given back). The buckets are a table in the data directory
(`activity_disclosures.bin`, search_service.shared_rates: activity hashes, no PII) that every serving
process shares and a restart keeps.

A batch's answers count against the same budget, charged by the batch worker as it answers each query: a
query past it is answered with no hit and the budget's refusal as its violation (search_service.batch_worker;
an activity with both roles once spent its online budget and had 116 records more from an 8-query batch).
Privacy Act access answers are not counted: they disclose a person's records to that person.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from indexer.exc import ResourceExhausted
from search_service.shared_rates import SharedRateLimiter

if TYPE_CHECKING:
    from search_service.server import ServerConfig

FILE_NAME = "activity_disclosures.bin"
DAY = 86_400.0


class DisclosureBudget:
    """Records an activity may receive: `per_day`, refilled continuously; kept in a table in the data
    directory, which every serving process shares and a restart keeps (kept in memory, a restart gave every
    activity a new day's worth at once: a review of this budget)."""

    def __init__(self, per_day: int, data_dir: Path) -> None:
        if per_day < 1:
            raise ValueError("a disclosure budget must allow at least one record a day")
        self.per_day = per_day
        self._buckets = SharedRateLimiter(data_dir / FILE_NAME, per_day / DAY, per_day)

    def charge(self, activity_id: str, records: int) -> None:
        """Spend `records` of the activity's budget, or raise ResourceExhausted (nothing spent)."""
        try:
            self._buckets.take(activity_id, float(records))
        except ResourceExhausted:
            raise ResourceExhausted(
                f"disclosure budget: activity {activity_id} may receive {self.per_day} records a day, and this "
                f"answer would disclose {records}: ask the privacy office, or narrow the search"
            ) from None

    def refund(self, activity_id: str, records: int) -> None:
        """Give back a charge whose answer was not sent (its accounting failed: nothing was disclosed)."""
        self._buckets.give_back(activity_id, float(records))


def budget_for(config: ServerConfig) -> DisclosureBudget | None:
    """The server's budget (None when the config sets none)."""
    per_day = config.disclosures_per_activity_per_day
    return None if per_day is None else DisclosureBudget(per_day, config.data_dir)
