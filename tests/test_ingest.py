"""Ingest over real mutual TLS: edit criteria per record, idempotence, versions, lifecycle, ownership."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from dcii.v1 import ingest_pb2, search_pb2, tracing_pb2
from indexer.model import TracingKey, TracingType
from search_service.accreditation import Role
from search_service.errors import field_violations
from tests import factories as f
from tests.support import Client, Index

APPLIED = ingest_pb2.INGEST_OUTCOME_APPLIED
UNCHANGED = ingest_pb2.INGEST_OUTCOME_UNCHANGED
REJECTED = ingest_pb2.INGEST_OUTCOME_REJECTED
NOT_FOUND = ingest_pb2.INGEST_OUTCOME_NOT_FOUND
DENIED = ingest_pb2.INGEST_OUTCOME_PERMISSION_DENIED


def _names(client: Client, surname: str, given: str) -> list[tuple[str, str, int]]:
    response = client.search(
        mode=search_pb2.SEARCH_MODE_NAME_ONLY, name={"surname": surname, "given_name": given}, page_size=100
    )
    return sorted((h.tracing.key.agency, h.tracing.key.record_number, h.tracing.source_version) for h in response.hits)


@pytest.fixture
def ncis(index: Index) -> Client:
    return index.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER])


@pytest.fixture
def querier(index: Index) -> Client:
    return index.client("CCF-TERM-01", "ARMY-CCF", [Role.QUERIER])


def test_malformed_record_is_refused_alone_and_the_rest_is_stored(index: Index, ncis: Client, querier: Client) -> None:
    # The name is the good records' own, so the search below would find the refused one had it been stored:
    # only its identifiers (an SSN with a 00 group, 30 February) break the edit criteria.
    bad = f.person(record="NCIS-0002", ssn="123-00-4567", dob=(1971, 2, 30))
    results = ncis.push([f.upsert(f.person(record="NCIS-0001")), f.upsert(bad), f.upsert(f.person(record="NCIS-0003"))])

    assert [r.request_id for r in results] == ["NCIS-0001", "NCIS-0002", "NCIS-0003"]
    assert [r.outcome for r in results] == [APPLIED, REJECTED, APPLIED]
    fields = {v.field for v in results[1].violations}
    assert fields == {"upsert.subject.identifiers.ssn", "upsert.subject.identifiers.date_of_birth"}
    assert all(
        "4567" not in v.description and "1971" not in v.description for v in results[1].violations
    )  # no PII echoed
    assert _names(querier, "Whitfield", "Harold") == [("NCIS", "NCIS-0001", 1), ("NCIS", "NCIS-0003", 1)]
    assert index.running is not None
    assert index.running.store.get(TracingKey("NCIS", "NCIS-0002")) is None


def test_the_last_four_of_an_ssn_is_refused_as_output_only(index: Index, ncis: Client) -> None:
    """Sent in, it was dropped without a word: the tracing was stored as if it had no SSN at all."""
    only_last_four = f.person(record="NCIS-0004", ssn="")
    only_last_four.subject.identifiers.ssn_last_four = "4471"
    (result,) = ncis.push([f.upsert(only_last_four)])
    assert result.outcome == REJECTED
    assert [v.field for v in result.violations] == ["upsert.subject.identifiers.ssn_last_four"]
    assert "4471" not in result.violations[0].description
    assert index.running is not None and index.running.store.get(TracingKey("NCIS", "NCIS-0004")) is None


def test_an_action_with_countless_violations_is_answered_in_a_bounded_result_and_the_stream_goes_on(
    index: Index, querier: Client
) -> None:
    # Every alias and agency checked was judged and listed: 150,000 bad aliases made a 17 MB result, over the
    # message limit, and the stream died with the results of the actions stored around it unsent.
    dss = index.client("DSS-HQ-01", "DSS", [Role.SUBMITTER])
    countless = f.person("DSS", "DSS-0002")
    countless.subject.aliases.extend(tracing_pb2.PersonName(surname="1") for _ in range(150_000))
    many = f.nac_history(record="DSS-NH-9")
    many.nac_history.agencies_checked[:] = [f"X{i}!" for i in range(20)]  # each a violation, listed
    many.subject.aliases.extend(tracing_pb2.PersonName(surname=f"{i}", given_name="?") for i in range(20))
    many.subject.name.surname = "!"
    stream = [f.person("DSS", "DSS-0001"), countless, many, f.person("DSS", "DSS-0003")]
    results = dss.push([f.upsert(t) for t in stream])
    assert [r.outcome for r in results] == [APPLIED, REJECTED, REJECTED, APPLIED]
    assert [v.field for v in results[1].violations] == ["upsert.subject.aliases"]
    assert len(results[2].violations) == 51 and "more violations" in results[2].violations[-1].description


def test_a_role_the_contract_does_not_define_is_refused(ncis: Client) -> None:
    # It was stored as SUBJECT: a victim or a cross-reference under a newer client's number became the subject.
    tracing = f.person(record="NCIS-0007")
    tracing.subject.role = 7  # type: ignore[assignment]  # proto3 lets any number through
    [result] = ncis.push([f.upsert(tracing)])
    assert result.outcome == REJECTED
    assert [v.field for v in result.violations] == ["upsert.subject.role"]


def test_a_persons_file_is_not_turned_into_an_impersonal_title(ncis: Client, querier: Client) -> None:
    # The edit criteria pass a title indexed in 1997; only the store knows the key held a person's file.
    ncis.upsert(f.person(record="NCIS-0008", version=1))
    title = tracing_pb2.Tracing(source_version=2)
    title.key.agency, title.key.record_number = "NCIS", "NCIS-0008"
    title.impersonal_title.title, title.impersonal_title.year_indexed = "ACME WIDGETS", 1997
    title.impersonal_title.custodian, title.impersonal_title.file_number = "NCIS", "T-1"
    title.impersonal_title.kind = tracing_pb2.IMPERSONAL_TITLE_KIND_ORGANIZATION
    [result] = ncis.push([f.upsert(title)])
    assert result.outcome == REJECTED and result.stored_version == 1
    assert [v.field for v in result.violations] == ["upsert.impersonal_title"]
    assert _names(querier, "Whitfield", "Harold") == [("NCIS", "NCIS-0008", 1)]


def test_resubmitting_the_same_stream_changes_nothing(ncis: Client, querier: Client) -> None:
    stream = [f.upsert(f.person(record=f"NCIS-{i:04d}", version=3)) for i in range(20)]
    first = ncis.push(stream)
    before = _names(querier, "Whitfield", "Harold")
    again = ncis.push(stream)

    assert {r.outcome for r in first} == {APPLIED}
    assert {r.outcome for r in again} == {UNCHANGED}
    assert {r.stored_version for r in again} == {3}
    assert _names(querier, "Whitfield", "Harold") == before
    assert len(before) == 20


def test_out_of_order_versions_keep_the_newest(ncis: Client, querier: Client) -> None:
    newer = f.person(version=5, given="Harold")
    older = f.person(version=4, given="Harry")
    assert [r.outcome for r in ncis.upsert(newer, older)] == [APPLIED, UNCHANGED]
    assert _names(querier, "Whitfield", "Harold") == [("NCIS", "NCIS-0001", 5)]
    assert _names(querier, "Whitfield", "Harry") == []


def test_delete_leaves_a_tombstone_that_a_late_upsert_cannot_pass(ncis: Client, querier: Client) -> None:
    ncis.upsert(f.person(version=1))
    assert ncis.push([f.delete("NCIS", "NCIS-0001", 2)])[0].outcome == APPLIED
    assert ncis.upsert(f.person(version=2))[0].outcome == UNCHANGED
    assert _names(querier, "Whitfield", "Harold") == []
    assert ncis.upsert(f.person(version=3))[0].outcome == APPLIED
    assert _names(querier, "Whitfield", "Harold") == [("NCIS", "NCIS-0001", 3)]


def test_delete_of_an_unknown_tracing_says_not_found(ncis: Client) -> None:
    assert ncis.push([f.delete("NCIS", "NCIS-9999", 1)])[0].outcome == NOT_FOUND


def test_agency_cannot_write_or_delete_another_agencys_tracing(index: Index, ncis: Client, querier: Client) -> None:
    afosi = index.client("AFOSI-DET-01", "AFOSI", [Role.SUBMITTER])
    ncis.upsert(f.person(record="NCIS-0001"))
    results = afosi.push(
        [
            f.upsert(f.person(agency="NCIS", record="NCIS-0001", version=9, given="Forged")),
            f.delete("NCIS", "NCIS-0001", 9),
        ]
    )
    assert [r.outcome for r in results] == [DENIED, DENIED]
    assert results[0].violations[0].field == "upsert.key.agency"
    with pytest.raises(grpc.RpcError) as refused:
        afosi.ingest.Delete(f.delete("NCIS", "NCIS-0001", 9).delete, metadata=afosi.metadata)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert _names(querier, "Whitfield", "Harold") == [("NCIS", "NCIS-0001", 1)]


def _complete(old: TracingKey, new: tracing_pb2.Tracing) -> ingest_pb2.IngestRequest:
    """A completion of the open case or NAC pending `old` (which one is told by `new`'s type)."""
    request = ingest_pb2.IngestRequest(request_id=new.key.record_number)
    if new.HasField("nac_history"):
        request.complete_nac_pending.nac_history.CopyFrom(new)
        old_key = request.complete_nac_pending.nac_pending
    else:
        request.complete_open_case.file.CopyFrom(new)
        old_key = request.complete_open_case.open_case
    old_key.agency, old_key.record_number = old.agency, old.record_number
    return request


def test_agency_cannot_complete_another_agencys_open_case_or_nac_pending(index: Index, ncis: Client) -> None:
    afosi = index.client("AFOSI-DET-01", "AFOSI", [Role.SUBMITTER])
    case, pending = TracingKey("NCIS", "NCIS-OC-1"), TracingKey("NCIS", "NCIS-NP-1")
    ncis.upsert(f.open_case(record=case.record_number), f.nac_pending("NCIS", pending.record_number))
    assert index.running is not None
    store = index.running.store
    before = {case: store.get(case), pending: store.get(pending)}

    # Another agency closing NCIS's open case / NAC pending into tracings of its own: the old key is foreign.
    taken = afosi.push(
        [
            _complete(case, f.person("AFOSI", "AFOSI-F-1", 2)),
            _complete(pending, f.nac_history("AFOSI", "AFOSI-NH-1", 2)),
        ]
    )
    assert [r.outcome for r in taken] == [DENIED, DENIED]
    assert [r.violations[0].field for r in taken] == [
        "complete_open_case.open_case.agency",
        "complete_nac_pending.nac_pending.agency",
    ]
    # NCIS closing its own into tracings filed under AFOSI's name: the new tracing is foreign.
    planted = ncis.push(
        [
            _complete(case, f.person("AFOSI", "AFOSI-F-2", 2)),
            _complete(pending, f.nac_history("AFOSI", "AFOSI-NH-2", 2)),
        ]
    )
    assert [r.outcome for r in planted] == [DENIED, DENIED]
    assert [r.violations[0].field for r in planted] == [
        "complete_open_case.file.key.agency",
        "complete_nac_pending.nac_history.key.agency",
    ]
    # The unary calls answer the same refusal with a status (here both sides are NCIS's).
    forged = _complete(case, f.person("NCIS", "NCIS-F-9", 2)), _complete(pending, f.nac_history("NCIS", "NCIS-NH-9", 2))
    with pytest.raises(grpc.RpcError) as refused:
        afosi.ingest.CompleteOpenCaseTracing(forged[0].complete_open_case, metadata=afosi.metadata, timeout=10)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as refused:
        afosi.ingest.CompleteNacPendingTracing(forged[1].complete_nac_pending, metadata=afosi.metadata, timeout=10)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED

    # Both are still live, unchanged, and nothing was written in their place.
    after = {case: store.get(case), pending: store.get(pending)}
    assert after == before
    assert [t.tracing.type for t in after.values() if t] == [TracingType.OPEN_CASE, TracingType.NAC_PENDING]
    for record in ("AFOSI-F-1", "AFOSI-NH-1", "AFOSI-F-2", "AFOSI-NH-2"):
        assert store.get(TracingKey("AFOSI", record)) is None
    for record in ("NCIS-F-9", "NCIS-NH-9"):
        assert store.get(TracingKey("NCIS", record)) is None


def test_unary_delete_with_bad_fields_names_them(ncis: Client) -> None:
    request = ingest_pb2.DeleteTracing()
    with pytest.raises(grpc.RpcError) as refused:
        ncis.ingest.Delete(request, metadata=ncis.metadata)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {field for field, _ in field_violations(refused.value)} == {
        "key.agency",
        "key.record_number",
        "source_version",
    }


def test_a_delete_names_its_record_as_the_upsert_did_and_a_malformed_key_is_refused(
    ncis: Client, querier: Client
) -> None:
    # The key of a delete was taken as sent: spelt as its upsert was (" NCIS-WS-1 ", "ncis") it found
    # nothing or was refused as another agency's, and a malformed one was stored as a tombstone.
    tracing = f.person(record="NCIS-WS-1")
    tracing.key.agency, tracing.key.record_number = "ncis", " NCIS-WS-1 "
    ncis.upsert(tracing)
    assert _names(querier, "Whitfield", "Harold") == [("NCIS", "NCIS-WS-1", 1)]
    request = ingest_pb2.IngestRequest(request_id="d1")
    request.delete.key.CopyFrom(tracing.key)
    request.delete.source_version = 2
    assert ncis.push([request])[0].outcome == APPLIED
    assert _names(querier, "Whitfield", "Harold") == []
    request.delete.key.record_number = "bad key\x07" + "Z" * 5000
    [refused] = ncis.push([request])
    assert refused.outcome == REJECTED
    assert [v.field for v in refused.violations] == ["delete.key.record_number"]


def test_a_completion_without_its_old_record_names_the_missing_field(ncis: Client) -> None:
    # It was refused as another agency's (PERMISSION_DENIED, "only the owning agency..."): the wrong reason.
    request = ingest_pb2.CompleteOpenCase()
    request.file.CopyFrom(f.person(record="NCIS-F-1", version=2))
    with pytest.raises(grpc.RpcError) as refused:
        ncis.ingest.CompleteOpenCaseTracing(request, metadata=ncis.metadata)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = {field for field, _ in field_violations(refused.value)}
    assert fields == {"open_case.agency", "open_case.record_number"}


def test_completing_an_open_case_replaces_it_with_a_file(ncis: Client, querier: Client) -> None:
    ncis.upsert(f.open_case(record="NCIS-OC-1"))
    request = ingest_pb2.IngestRequest(request_id="c1")
    request.complete_open_case.open_case.agency = "NCIS"
    request.complete_open_case.open_case.record_number = "NCIS-OC-1"
    request.complete_open_case.file.CopyFrom(f.person(record="NCIS-F-1", version=2))

    assert ncis.push([request])[0].outcome == APPLIED
    assert _names(querier, "Whitfield", "Harold") == [("NCIS", "NCIS-F-1", 2)]
    assert ncis.push([request])[0].outcome == UNCHANGED  # a replayed completion is harmless


def test_completion_must_produce_the_right_type(ncis: Client) -> None:
    ncis.upsert(f.open_case(record="NCIS-OC-1"))
    request = ingest_pb2.IngestRequest(request_id="c1")
    request.complete_open_case.open_case.agency = "NCIS"
    request.complete_open_case.open_case.record_number = "NCIS-OC-1"
    request.complete_open_case.file.CopyFrom(f.open_case(record="NCIS-OC-2", version=2))
    result = ncis.push([request])[0]
    assert result.outcome == REJECTED
    assert result.violations[0].field == "complete_open_case.file"


def test_an_empty_action_is_rejected_without_stopping_the_stream(ncis: Client) -> None:
    results = ncis.push([ingest_pb2.IngestRequest(request_id="empty"), f.upsert(f.person())])
    assert [r.outcome for r in results] == [REJECTED, APPLIED]
    assert results[0].violations[0].field == "action"


def test_a_long_stream_is_acknowledged_in_order(ncis: Client) -> None:
    stream = [f.upsert(f.person(record=f"NCIS-{i:05d}")) for i in range(3000)]
    results = ncis.push(stream)
    assert [r.request_id for r in results] == [r.request_id for r in stream]
    assert {r.outcome for r in results} == {APPLIED}


def test_a_stream_read_ahead_is_bounded_in_bytes() -> None:
    # 2,048 messages of up to 4 MiB each were read ahead of the writer: a client that sent and never read its
    # answers pinned gigabytes of the server. Now about READ_AHEAD_BYTES, however large the messages.
    import itertools
    import time

    from search_service.ingest import READ_AHEAD_BYTES, _read_ahead

    sent = [0]

    def messages() -> Iterator[ingest_pb2.IngestRequest]:
        for n in itertools.count():
            sent[0] = n + 1
            yield ingest_pb2.IngestRequest(request_id=f"{n:08d}" + "x" * 2**20)

    groups = _read_ahead(messages(), size=lambda _message: 1)
    first = next(groups)  # the writer takes one group, then stops taking
    time.sleep(1.0)
    held = sent[0] - len(first)
    assert held <= READ_AHEAD_BYTES // 2**20 + 2, held
    groups.close()


def test_a_delete_reason_in_the_index_own_words_is_refused(index: Index, ncis: Client) -> None:
    """`SUPERSEDED by FILE NCIS/NCIS-0009`, the index's entry for a record sent again as another type, which
    ends no life: from an agency it would hide a deletion (third diff review 2)."""
    ncis.upsert(f.person(record="NCIS-0009"))
    request = f.delete("NCIS", "NCIS-0009", 2)
    request.delete.reason = "superseded by FILE NCIS/NCIS-0009"
    (result,) = ncis.push([request])
    assert result.outcome == REJECTED
    assert [v.field for v in result.violations] == ["delete.reason"]
    assert index.running is not None and index.running.store.get(TracingKey("NCIS", "NCIS-0009")) is not None
