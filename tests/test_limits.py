"""Limits answer with RESOURCE_EXHAUSTED at once instead of queueing: per-activity rate, message size."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from dcii.v1 import search_pb2
from search_service.accreditation import Role
from search_service.errors import field_violations
from search_service.limits import RateLimiter
from tests.support import Client, Index, make_index

NAME = {"surname": "Whitfield", "given_name": "Harold"}


@pytest.fixture
def index(tmp_path: Path) -> Iterator[Index]:
    built = make_index(tmp_path)
    built.start(rate_per_activity=1.0, burst_per_activity=3.0)
    try:
        yield built
    finally:
        built.stop()


def _search(client: Client) -> grpc.StatusCode:
    try:
        client.search(mode=search_pb2.SEARCH_MODE_NAME_ONLY, name=NAME)
    except grpc.RpcError as error:
        code: grpc.StatusCode = error.code()
        return code
    return grpc.StatusCode.OK


def test_an_activity_over_its_rate_is_refused_and_others_are_not(index: Index) -> None:
    busy = index.client("CCF-TERM-01", "ARMY-CCF", [Role.QUERIER])  # login spent one token
    quiet = index.client("CCF-TERM-02", "ARMY-CCF", [Role.QUERIER])
    codes = [_search(busy) for _ in range(6)]
    assert codes[:2] == [grpc.StatusCode.OK, grpc.StatusCode.OK]
    assert grpc.StatusCode.RESOURCE_EXHAUSTED in codes
    assert _search(quiet) == grpc.StatusCode.OK
    time.sleep(1.2)  # the bucket refills at 1 a second
    assert _search(busy) == grpc.StatusCode.OK


def test_an_oversized_message_is_refused(index: Index) -> None:
    client = index.client("CCF-TERM-01", "ARMY-CCF", [Role.QUERIER])
    request = search_pb2.SearchRequest(
        mode=search_pb2.SEARCH_MODE_NAME_ONLY, purpose=search_pb2.PURPOSE_SECURITY_CLEARANCE, title="x" * 5_000_000
    )
    with pytest.raises(grpc.RpcError) as refused:
        client.searcher.Search(request, metadata=client.metadata, timeout=10)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_a_search_larger_than_any_search_is_refused_unread(index: Index) -> None:
    """Under gRPC's 4 MiB, a search of a 4 MiB name was refused by the edit criteria only after reading it."""
    client = index.client("CCF-TERM-01", "ARMY-CCF", [Role.QUERIER])
    request = search_pb2.SearchRequest(
        mode=search_pb2.SEARCH_MODE_NAME_ONLY, purpose=search_pb2.PURPOSE_SECURITY_CLEARANCE, title="x" * 100_000
    )
    with pytest.raises(grpc.RpcError) as refused:
        client.searcher.Search(request, metadata=client.metadata, timeout=10)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(refused.value) == [("title", "too large: a dcii.v1.SearchRequest is at most 64 KiB")]


def test_the_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=2.0, burst=2.0, clock=lambda: now[0])
    limiter.take("A")
    limiter.take("A")
    with pytest.raises(Exception, match="rate limit"):
        limiter.take("A")
    now[0] = 0.5
    limiter.take("A")  # one token back after half a second
    with pytest.raises(Exception, match="rate limit"):
        limiter.take("A")
