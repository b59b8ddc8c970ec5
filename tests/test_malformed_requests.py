"""A request message that does not parse is INVALID_ARGUMENT naming `request`, after authorization.

grpcio answered such a message INTERNAL ("Exception deserializing request!") before any interceptor ran:
the client was told the server had failed, and an unknown terminal was answered as if it were accredited.
The bytes are sent raw here, as a client with another protobuf library or a corrupting proxy would send them.
"""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from dcii.v1 import ingest_pb2, search_pb2, tracing_pb2
from indexer.model import TracingKey
from search_service import pki
from search_service.accreditation import Role
from search_service.errors import field_violations
from tests import factories as f
from tests.support import Client, Index, channel_for

SEARCH = "/dcii.v1.SearchService/Search"
INGEST = "/dcii.v1.IngestService/Ingest"


def _raw(data: bytes) -> bytes:
    return data


def _good_search() -> bytes:
    request = search_pb2.SearchRequest(
        mode=search_pb2.SEARCH_MODE_EXACT,
        name=tracing_pb2.PersonName(surname="SMITH", given_name="JOHN"),
        identifiers=tracing_pb2.PersonalIdentifiers(ssn="123456789"),
    )
    return request.SerializeToString()


def _call(channel: grpc.Channel, payload: bytes, metadata: tuple[tuple[str, str], ...] = ()) -> grpc.RpcError:
    search = channel.unary_unary(SEARCH, request_serializer=_raw, response_deserializer=_raw)
    with pytest.raises(grpc.RpcError) as refused:
        search(payload, metadata=metadata, timeout=10)
    return refused.value


@pytest.fixture
def querier(index: Index) -> Client:
    return index.client("CCF-TERM-01", "ARMY-CCF", [Role.QUERIER])


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(_good_search().replace(b"SMITH", b"M\xdcLLR"), id="latin-1 surname, not UTF-8"),
        pytest.param(_good_search()[:-3], id="truncated"),
        pytest.param(b"\x0a\xff\xff\xff\xff\x0f", id="a length past the end"),
    ],
)
def test_a_message_that_does_not_parse_is_invalid_argument_naming_the_request(querier: Client, payload: bytes) -> None:
    error = _call(querier.channel, payload, querier.metadata)
    assert error.code() is grpc.StatusCode.INVALID_ARGUMENT
    violations = field_violations(error)
    assert [field for field, _ in violations] == ["request"]
    assert "dcii.v1.SearchRequest" in violations[0][1] and "LLR" not in (error.details() or "")
    assert querier.search(mode=search_pb2.SEARCH_MODE_NAME_ONLY, name={"surname": "Smith", "given_name": "John"})


def test_an_unknown_terminal_is_refused_before_its_message_is_looked_at(index: Index) -> None:
    stranger = pki.issue_client_cert(index.ca, "STRANGER-01", "NAVY")
    channel = channel_for(index.port, index.ca.cert_pem, stranger)
    try:
        error = _call(channel, _good_search()[:-3])
    finally:
        channel.close()
    assert error.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED)


def test_an_ingest_stream_is_answered_up_to_the_message_that_does_not_parse(index: Index) -> None:
    ncis = index.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER])
    good = f.upsert(f.person(record="NCIS-0001")).SerializeToString()
    bad = f.upsert(f.person(record="NCIS-0002", surname="ZZZZZZ")).SerializeToString().replace(b"ZZZZZZ", b"\xff" * 6)
    after = f.upsert(f.person(record="NCIS-0003")).SerializeToString()

    def stream() -> Iterator[bytes]:
        yield from (good, bad, after)

    ingest = ncis.channel.stream_stream(INGEST, request_serializer=_raw, response_deserializer=_raw)
    answers: list[ingest_pb2.IngestResult] = []
    with pytest.raises(grpc.RpcError) as refused:
        for answer in ingest(stream(), metadata=ncis.metadata, timeout=30):
            answers.append(ingest_pb2.IngestResult.FromString(answer))
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in field_violations(refused.value)] == ["request"]
    assert [(a.request_id, a.outcome) for a in answers] == [("NCIS-0001", ingest_pb2.INGEST_OUTCOME_APPLIED)]
    assert index.running is not None
    store = index.running.store
    assert store.get(TracingKey("NCIS", "NCIS-0001")) is not None
    assert store.get(TracingKey("NCIS", "NCIS-0002")) is None and store.get(TracingKey("NCIS", "NCIS-0003")) is None
