"""An access request's answer in pages: the person's accounting of disclosures may outgrow one message.

Each disclosure is about 100 bytes on the wire, and gRPC sends at most 4 MiB a message: a person asked
about 41,000 times (35 s of one querier's EXACT queries) could no longer be answered at all, while the
register and the trail said the request was answered (a review of a misbehaving terminal). The first page
carries the records (the tracings, and those unverified) and the first `DISCLOSURES_PER_PAGE` disclosures;
`next_page_token` asks for the rest, the same request with the token, as of the first page's moment
(disclosures made since belong to a later request). Only the first page discloses records and is recorded.
The token is sealed for the privacy office's activity by the instance that answered (page_tokens.TokenEnvelope):
a later page is asked of that instance, and a token of no instance's making is refused.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from dcii.v1 import privacy_pb2
from indexer.exc import FailedPrecondition, InvalidArgument
from indexer.model import TracingKey, Violation
from search_service.accounting import Disclosure
from search_service.accreditation import Caller
from search_service.page_tokens import NOT_OURS, TokenEnvelope, seal, unseal

DISCLOSURES_PER_PAGE = 10_000  # about 1 MB
# A first page larger than this (its records, not its disclosures, make it so) is refused before anything
# is recorded: under gRPC's 4 MiB, with room for the message's framing.
FIRST_PAGE_BYTES = 4 * 2**20 - 64 * 1024
_KIND = "access"

# Where a page ends: the answer's moment, then the last disclosure's time, id and tracing.
After = tuple[dt.datetime, dt.datetime, str, TracingKey]


def _scope(request: privacy_pb2.AccessRequest) -> list[object]:
    name = request.name
    return [
        request.request_number,
        name.surname,
        name.given_name,
        name.middle_name,
        name.suffix,
        request.ssn,
        request.withhold_law_enforcement,
    ]


def continued(request: privacy_pb2.AccessRequest, tokens: TokenEnvelope, caller: Caller) -> After | None:
    """Where the page asked for starts (None: the first page)."""
    if not request.page_token:
        return None
    token = tokens.opened(request.page_token, caller.activity.activity_id, unsealed=False)
    if token is None:
        raise InvalidArgument([Violation("page_token", NOT_OURS)])
    position = unseal(token, _KIND, _scope(request))
    try:
        if position is None or len(position) != 6:
            raise ValueError
        as_of, at, disclosure_id, agency, record = (str(part) for part in position[:5])
        return (
            dt.datetime.fromisoformat(as_of),
            dt.datetime.fromisoformat(at),
            disclosure_id,
            TracingKey(agency, record),
        )
    except ValueError:
        raise InvalidArgument([Violation("page_token", "not a token this index issued")]) from None


def page(
    disclosures: Sequence[Disclosure],
    after: After | None,
    as_of: dt.datetime,
    request: privacy_pb2.AccessRequest,
    tokens: TokenEnvelope,
    caller: Caller,
) -> tuple[list[Disclosure], str]:
    """The disclosures of the page (of those made by `as_of`, in order, after `after`) and the token of the
    next ("" when this is the last), sealed for the caller's activity."""
    made = [d for d in disclosures if d.disclosed_at <= as_of]
    if after is not None:
        _, at, disclosure_id, key = after
        made = [d for d in made if (d.disclosed_at, d.disclosure_id, d.tracing) > (at, disclosure_id, key)]
    shown = made[:DISCLOSURES_PER_PAGE]
    if len(made) <= DISCLOSURES_PER_PAGE:
        return shown, ""
    last = shown[-1]
    position: list[str | int | float] = [
        as_of.isoformat(),
        last.disclosed_at.isoformat(),
        last.disclosure_id,
        last.tracing.agency,
        last.tracing.record_number,
        0,  # a format mark: six parts
    ]
    return shown, tokens.seal(seal(_KIND, _scope(request), position), caller.activity.activity_id)


def check_first_page(response: privacy_pb2.AccessResponse) -> None:
    """FailedPrecondition, before anything is recorded, for a first page gRPC could not send."""
    if response.ByteSize() > FIRST_PAGE_BYTES:
        raise FailedPrecondition(
            f"the person's records fill more than one answer ({len(response.tracings)} tracings,"
            f" {len(response.unverified)} unverified): nothing was recorded; read them with `dcii audit`"
            " and the index's own tools"
        )
