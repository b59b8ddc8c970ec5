"""Paging the exact modes: each tracing once across pages, tokens that name only what was shown, and
tokens bound to their query (the ranked modes' paging: tests/test_search_ranked.py)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import grpc
import pytest

from dcii.v1 import search_pb2, tracing_pb2
from search_service.accounting import AuditLog, load_or_create_key
from search_service.accreditation import Role
from search_service.errors import field_violations
from search_service.page_tokens import TokenEnvelope
from tests import factories as f
from tests.support import Client, Index, make_index

NONSTANDARD, NAME_ONLY = search_pb2.SEARCH_MODE_NONSTANDARD, search_pb2.SEARCH_MODE_NAME_ONLY
FILE = tracing_pb2.TRACING_TYPE_FILE


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Index]:
    index: Index = make_index(tmp_path_factory.mktemp("paging"))
    index.start()
    try:
        ncis = index.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER])
        people = [
            # Two names under the surname asked: ANNA sorts first, ZOE pages later.
            f.person(record=f"TWO-{n}", surname="Whitfield", given="Anna", aliases=(("Whitfield", "Zoe"),))
            for n in range(4)
        ]
        people += [
            f.person(record=f"ONE-{n}", surname="Whitfield", given=g)
            for n, g in enumerate(["Bob", "Carl", "Dan", "Eve"])
        ]
        people.append(f.nac_pending("NCIS", "PENDING-1", surname="Whitfield", given="Harold"))
        people += [f.person(record=f"LATER-{n}", surname="Whitfield", given="Ivan") for n in range(3)]
        assert {r.outcome for r in ncis.upsert(*people)} == {1}
        yield index
    finally:
        index.stop()


@pytest.fixture(scope="module")
def querier(index: Index) -> Client:
    return index.client("CCF-TERM-01", "ARMY-CCF", [Role.QUERIER])


def _inside(index: Index, client: Client, token: str) -> bytes:
    """What a token this instance sealed for `client` holds (tests/test_page_token_sealing.py: nothing a
    client can read)."""
    audit = AuditLog(index.data_dir / "audit.db", key=load_or_create_key(index.data_dir / "audit.key"))
    try:
        inner = TokenEnvelope(audit.key_for("page tokens")).opened(token, client.activity_id, unsealed=False)
    finally:
        audit.close()
    assert inner is not None
    return base64.urlsafe_b64decode(inner)


def _all_pages(client: Client, **ask: object) -> tuple[list[str], list[str]]:
    """The records of every page, in order, and the tokens that led to them."""
    shown: list[str] = []
    tokens: list[str] = []
    token = ""
    while True:
        page = client.search(**ask, page_token=token)
        shown += [h.tracing.key.record_number for h in page.hits]
        token = page.next_page_token
        if not token:
            return shown, tokens
        tokens.append(token)


def test_a_tracing_with_two_names_under_the_surname_is_shown_once(querier: Client) -> None:
    """It came back on a later page by its alias: two disclosures accounted of one record."""
    shown, _ = _all_pages(querier, mode=NONSTANDARD, name={"surname": "Whitfield"}, page_size=3)
    assert len(shown) == len(set(shown)) == 12
    assert set(shown[:4]) == {"TWO-0", "TWO-1", "TWO-2", "TWO-3"}  # at their first name, ANNA (in id order)


def test_a_token_names_the_pages_last_hit_not_a_record_it_passed_over(index: Index, querier: Client) -> None:
    """Files only: the NAC pending of HAROLD is passed over, unshown and unaccounted, and its name must not
    travel in the token either (it did: the cursor named the last row the page passed)."""
    shown, tokens = _all_pages(querier, mode=NONSTANDARD, name={"surname": "Whitfield"}, types=[FILE], page_size=8)
    assert "PENDING-1" not in shown and len(shown) == len(set(shown)) == 11
    assert all(b"HAROLD" not in _inside(index, querier, token) for token in tokens)
    assert b"EVE" in _inside(index, querier, tokens[0])  # the 8th hit: TWO-0..3, BOB, CARL, DAN, EVE


def test_a_token_is_refused_with_another_query_and_an_earlier_format_is_still_read(querier: Client) -> None:
    first = querier.search(mode=NONSTANDARD, name={"surname": "Whitfield"}, page_size=3)
    with pytest.raises(grpc.RpcError) as refused:
        querier.search(mode=NONSTANDARD, name={"surname": "Whitfeld"}, page_size=3, page_token=first.next_page_token)
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in field_violations(refused.value)] == ["page_token"]
    # A token of the earlier format ("given|id|alias", kept in batch results): read as before.
    legacy = base64.urlsafe_b64encode(b"CARL|0|0").decode()
    later = querier.search(mode=NONSTANDARD, name={"surname": "Whitfield"}, page_size=20, page_token=legacy)
    assert [h.tracing.key.record_number for h in later.hits][:2] == ["ONE-1", "ONE-2"]


@pytest.mark.parametrize("narrowed", [{"middle_name": "B"}, {"suffix": "JR"}])
def test_a_token_is_refused_for_the_same_name_with_a_middle_name_or_suffix_added(
    querier: Client, narrowed: dict[str, str]
) -> None:
    """The token's query covered surname and given name only: sent with a middle name (or suffix) added,
    it was taken as the same query and gave an empty last page, though the first page of that query held
    records."""
    name = {"surname": "Whitfield", "given_name": "Anna"}
    first = querier.search(mode=NAME_ONLY, name=name, page_size=2)
    assert first.next_page_token
    with pytest.raises(grpc.RpcError) as refused:
        querier.search(mode=NAME_ONLY, name={**name, **narrowed}, page_size=2, page_token=first.next_page_token)
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in field_violations(refused.value)] == ["page_token"]


@pytest.mark.parametrize(
    "ask",
    [
        {"mode": NAME_ONLY, "name": {"surname": "Whitfield", "given_name": "Anna"}},
        {"mode": search_pb2.SEARCH_MODE_FUZZY, "name": {"surname": "Whitfield", "given_name": "Anna"}},
        {"mode": NONSTANDARD, "title": "ACME"},
    ],
)
def test_a_forged_token_of_deeply_nested_brackets_is_refused_not_an_internal_error(
    querier: Client, ask: dict[str, object]
) -> None:
    forged = base64.urlsafe_b64encode(b"[" * 5000).decode()
    with pytest.raises(grpc.RpcError) as refused:
        querier.search(**ask, page_token=forged)
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in field_violations(refused.value)] == ["page_token"]


def test_a_token_issued_before_the_middle_name_and_suffix_were_in_its_scope_is_still_read(
    index: Index, querier: Client
) -> None:
    """Batch results keep tokens for 30 days: one issued by the earlier version (a digest of surname, given
    name, prefix flag, types and PIDs only) continues a query without middle name or suffix as before
    (diff review 4), and is refused for one with them, which it did not cover."""
    from search_service.page_tokens import seal

    name = {"surname": "Whitfield", "given_name": "Anna"}
    now = querier.search(mode=NAME_ONLY, name=name, page_size=2)
    [given, tracing_id, alias_no] = json.loads(_inside(index, querier, now.next_page_token))[3:]
    earlier = seal("names", ["WHITFIELD", "ANNA", False, [], None], [given, tracing_id, alias_no])
    rest = querier.search(mode=NAME_ONLY, name=name, page_size=10, page_token=earlier)
    same = querier.search(mode=NAME_ONLY, name=name, page_size=10, page_token=now.next_page_token)
    assert [h.tracing.key.record_number for h in rest.hits] == [h.tracing.key.record_number for h in same.hits]
    assert len(rest.hits) == 2  # TWO-0..3 are Anna: the two the first page did not show
    with pytest.raises(grpc.RpcError) as refused:
        querier.search(mode=NAME_ONLY, name={**name, "middle_name": "B"}, page_size=10, page_token=earlier)
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
