"""Bad input (issue 8), beside the RPC fuzzer (tests/test_fuzz_rpc.py), on the same kind of server
(tests/fuzz_rpc_support.py): valid requests get correct answers, never a refusal for their content, and the bugs
the fuzzer found are kept as plain regression tests on their minimal examples (all fixed in the server)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from hypothesis import strategies as st

from dcii.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    ingest_pb2,
    ingest_pb2_grpc,
    privacy_pb2,
    privacy_pb2_grpc,
    search_pb2,
    search_pb2_grpc,
    tracing_pb2,
)
from tests import factories as f
from tests import fuzz_rpc_support
from tests import strategies as s
from tests.fuzz_rpc_support import (
    SENT,
    TIMEOUT,
    Code,
    Fuzz,
    check_ingest_result,
    check_search_answer,
    fuzz_run,
    names_a_field,
    violations_of,
)

# The fixture these tests take (one server for the module), bound here by name so pytest finds it (importing it
# would do the same, but ruff reads each test's parameter of that name as a redefinition of an unused import).
fuzz = fuzz_rpc_support.fuzz


# ---- valid requests get correct answers ----


def test_valid_requests_are_answered(fuzz: Fuzz) -> None:
    """Unspoiled requests are never refused for their content."""

    def body(requests: list[ingest_pb2.IngestRequest]) -> None:
        stub = ingest_pb2_grpc.IngestServiceStub(fuzz.submitter.channel)
        SENT["Ingest"] += len(requests)
        results = list(stub.Ingest(iter(requests), metadata=fuzz.submitter.metadata, timeout=TIMEOUT))
        for request, result in zip(requests, results, strict=True):
            check_ingest_result(request, result)
            assert result.outcome != ingest_pb2.INGEST_OUTCOME_REJECTED, f"valid action refused: {result}"

    fuzz_run(st.lists(s.valid_ingest_requests(), min_size=1, max_size=8), 30, body, ci=True)

    def query(request: search_pb2.SearchRequest) -> None:
        SENT["Search"] += 1
        stub = search_pb2_grpc.SearchServiceStub(fuzz.querier.channel)
        if request.purpose == search_pb2.PURPOSE_COUNTERINTELLIGENCE:  # not accredited for it
            with pytest.raises(grpc.RpcError) as refused:
                stub.Search(request, metadata=fuzz.querier.metadata, timeout=TIMEOUT)
            assert refused.value.code() == Code.PERMISSION_DENIED
            return
        check_search_answer(request, stub.Search(request, metadata=fuzz.querier.metadata, timeout=TIMEOUT))

    fuzz_run(s.valid_searches(), 40, query, ci=True)
    fuzz.healthy()


# ---- regressions: the minimal examples of the bugs this fuzzer found (all fixed in the server) ----


def test_forged_page_token_beyond_int64_is_invalid_argument(fuzz: Fuzz) -> None:
    stub = search_pb2_grpc.SearchServiceStub(fuzz.querier.channel)
    for token in ("WHITFIELD|9223372036854775808|0", "t|9223372036854775808"):
        request = search_pb2.SearchRequest(
            mode=search_pb2.SEARCH_MODE_NAME_ONLY,
            purpose=search_pb2.PURPOSE_SECURITY_CLEARANCE,
            page_token=base64.urlsafe_b64encode(token.encode()).decode(),
        )
        if token.startswith("t|"):
            request.title = "ACME"
        else:
            request.name.surname, request.name.given_name = "Whitfield", "Harold"
        with pytest.raises(grpc.RpcError) as refused:
            stub.Search(request, metadata=fuzz.querier.metadata, timeout=TIMEOUT)
        assert refused.value.code() == Code.INVALID_ARGUMENT, f"{token}: {refused.value.code()}"
        assert [path for path, _ in violations_of(refused.value)] == ["page_token"]


def test_unrepresentable_received_at_is_invalid_argument(fuzz: Fuzz) -> None:
    request = privacy_pb2.PrivacyRequest(request_number="PR-BUG-1", kind=privacy_pb2.PRIVACY_REQUEST_KIND_ACCESS)
    request.received_at.seconds = s.TIMESTAMP_MAX + 1
    stub = privacy_pb2_grpc.PrivacyServiceStub(fuzz.privacy.channel)
    with pytest.raises(grpc.RpcError) as refused:
        stub.OpenPrivacyRequest(request, metadata=fuzz.privacy.metadata, timeout=TIMEOUT)
    assert refused.value.code() == Code.INVALID_ARGUMENT
    assert [path for path, _ in violations_of(refused.value)] == ["received_at"]


def test_unary_ingest_violations_name_the_request_fields(fuzz: Fuzz) -> None:
    stub = ingest_pb2_grpc.IngestServiceStub(fuzz.submitter.channel)
    requests: list[tuple[Callable[..., Any], Message]] = [
        (stub.Delete, ingest_pb2.DeleteTracing()),
        (stub.CompleteOpenCaseTracing, ingest_pb2.CompleteOpenCase()),
        (stub.CompleteNacPendingTracing, ingest_pb2.CompleteNacPending()),
    ]
    for method, request in requests:
        with pytest.raises(grpc.RpcError) as refused:
            method(request, metadata=fuzz.submitter.metadata, timeout=TIMEOUT)
        paths = [path for path, _ in violations_of(refused.value)]
        assert paths and all(names_a_field(request.DESCRIPTOR, p) for p in paths), paths


def test_title_search_honours_types(fuzz: Fuzz) -> None:
    tracing = s.tracing_kinds(s.OWN_AGENCY, "FZ-TITLE-1", 1)["impersonal_title"]()
    fuzz.submitter.upsert(tracing)
    request = search_pb2.SearchRequest(
        mode=search_pb2.SEARCH_MODE_NAME_ONLY,
        purpose=search_pb2.PURPOSE_SECURITY_CLEARANCE,
        title="ACME DEFENSE WIDGETS INC",
        types=[tracing_pb2.TRACING_TYPE_FILE],
    )
    stub = search_pb2_grpc.SearchServiceStub(fuzz.querier.channel)
    response = stub.Search(request, metadata=fuzz.querier.metadata, timeout=TIMEOUT)
    assert [h.type for h in response.hits if h.type != tracing_pb2.TRACING_TYPE_FILE] == []
    del request.types[:]  # without the restriction the title is found
    response = stub.Search(request, metadata=fuzz.querier.metadata, timeout=TIMEOUT)
    assert "FZ-TITLE-1" in {h.tracing.key.record_number for h in response.hits}


def test_status_fits_the_client_metadata_limit(fuzz: Fuzz) -> None:
    admin = admin_pb2_grpc.AdminServiceStub(fuzz.admin.channel)
    with pytest.raises(grpc.RpcError) as refused:
        admin.SetActivityStatus(
            admin_pb2.SetActivityStatusRequest(activity_id="V" * 20_000, status=admin_pb2.ACTIVITY_STATUS_ACTIVE),
            metadata=fuzz.admin.metadata,
            timeout=TIMEOUT,
        )
    assert refused.value.code() == Code.NOT_FOUND, refused.value.details()

    request = ingest_pb2.CompleteOpenCase(file=f.person(s.OWN_AGENCY, "FZ-MANY"))
    request.open_case.agency, request.open_case.record_number = s.OWN_AGENCY, s.OPEN_CASES[0]
    for _ in range(300):
        request.file.subject.aliases.add(surname="1")
    stub = ingest_pb2_grpc.IngestServiceStub(fuzz.submitter.channel)
    with pytest.raises(grpc.RpcError) as refused:
        stub.CompleteOpenCaseTracing(request, metadata=fuzz.submitter.metadata, timeout=TIMEOUT)
    assert refused.value.code() == Code.INVALID_ARGUMENT, refused.value.details()
    assert violations_of(refused.value), "the violations arrive (the first ones, at least)"
