"""Page tokens are sealed (search_service.page_tokens.TokenEnvelope): a token in clear named the last hit's given
name, and its digest of the query (the SSN asked among it) could be reversed by trying SSNs; one copied into a
log or handed to another terminal was good there too. Now a client's token is encrypted and authenticated under
the instance's key, for the activity it was issued to. Over the real gRPC service (mutual TLS), a real server
restarted on its files."""

from __future__ import annotations

import base64
import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from dcii.v1 import batch_pb2, batch_pb2_grpc, privacy_pb2, search_pb2, tracing_pb2
from search_service import page_tokens, pki, privacy_pages
from search_service.accreditation import Purpose, Role
from search_service.errors import field_violations
from tests import factories as f
from tests.support import Client, Index, make_index
from tests.test_privacy import EXACT as PRIVACY_EXACT
from tests.test_privacy import HAROLD, SSN, _load_person, _officer, _querier

NONSTANDARD, FUZZY = search_pb2.SEARCH_MODE_NONSTANDARD, search_pb2.SEARCH_MODE_FUZZY
WHITFIELD = {"surname": "Whitfield"}


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Index]:
    index = make_index(tmp_path_factory.mktemp("sealing"))
    index.start()
    try:
        ncis = index.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER])
        givens = ["Anna", "Bob", "Carl", "Dan", "Eve", "Frida"]
        people = [f.person(record=f"W-{n}", surname="Whitfield", given=g) for n, g in enumerate(givens)]
        assert {r.outcome for r in ncis.upsert(*people)} == {1}
        yield index
    finally:
        index.stop()


@pytest.fixture(scope="module")
def querier(index: Index) -> Client:
    return index.client("CCF-TERM-01", "ARMY-CCF", [Role.QUERIER, Role.BATCH])


def _refused_field(call: object, **ask: object) -> list[str]:
    with pytest.raises(grpc.RpcError) as refused:
        call(**ask)  # type: ignore[operator]
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    return [field for field, _ in field_violations(refused.value)]


@pytest.mark.parametrize(
    "ask",
    [
        {"mode": NONSTANDARD, "name": WHITFIELD},  # a name scan: its cursor is the last hit's given name
        {"mode": FUZZY, "name": WHITFIELD, "min_score": 0.01},  # ranked: its position is the last hit's evidence
    ],
)
def test_a_token_shows_nothing_of_the_page_and_differs_each_time(querier: Client, ask: dict[str, object]) -> None:
    first, again = (querier.search(**ask, page_size=2) for _ in range(2))
    assert first.next_page_token and again.next_page_token
    assert first.next_page_token.startswith("s1.") and first.next_page_token != again.next_page_token
    shown = {h.tracing.subject.name.given_name.upper() for h in first.hits}
    raw = base64.urlsafe_b64decode(first.next_page_token[3:] + "==")
    assert shown and not any(
        given.encode() in raw or given.encode() in first.next_page_token.encode() for given in shown
    )
    # Both continue the query where its first page ended.
    rest, rest_again = (
        querier.search(**ask, page_size=10, page_token=t) for t in (first.next_page_token, again.next_page_token)
    )
    assert [h.tracing.key for h in rest.hits] == [h.tracing.key for h in rest_again.hits]
    assert not {h.tracing.key.record_number for h in rest.hits} & {h.tracing.key.record_number for h in first.hits}


def test_a_token_is_good_for_its_own_activity_only(index: Index, querier: Client) -> None:
    first = querier.search(mode=NONSTANDARD, name=WHITFIELD, page_size=2)
    other = index.client("NAVY-CAF-01", "NAVY-CAF", [Role.QUERIER])
    fields = _refused_field(
        other.search, mode=NONSTANDARD, name=WHITFIELD, page_size=2, page_token=first.next_page_token
    )
    assert fields == ["page_token"]
    assert querier.search(mode=NONSTANDARD, name=WHITFIELD, page_size=2, page_token=first.next_page_token).hits


def test_an_altered_token_is_refused(querier: Client) -> None:
    token = querier.search(mode=NONSTANDARD, name=WHITFIELD, page_size=2).next_page_token
    middle = len(token) // 2
    altered = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]
    for bad in (altered, token[:-4], "s1.", "s1." + "A" * 5000):
        assert _refused_field(querier.search, mode=NONSTANDARD, name=WHITFIELD, page_token=bad) == ["page_token"]


def test_a_token_outlives_a_restart_of_its_instance(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Its key is derived from the instance's audit key, which the restart keeps."""
    index = make_index(tmp_path_factory.mktemp("restart"))
    index.start()
    try:
        ncis = index.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER])
        ncis.upsert(*[f.person(record=f"R-{n}", surname="Whitfield", given=g) for n, g in enumerate("ABCD")])
        querier = index.client("CCF-TERM-01", "ARMY-CCF", [Role.QUERIER])
        first = querier.search(mode=NONSTANDARD, name=WHITFIELD, page_size=2)
        index.stop()
        index.start()
        again = index.client("CCF-TERM-02", "ARMY-CCF", [Role.QUERIER])
        assert _refused_field(again.search, mode=NONSTANDARD, name=WHITFIELD, page_token=first.next_page_token) == [
            "page_token"
        ]  # another activity's, still
        same = _relogin(index, "CCF-TERM-01")
        rest = same.search(mode=NONSTANDARD, name=WHITFIELD, page_size=10, page_token=first.next_page_token)
        assert len(rest.hits) == 2
    finally:
        index.stop()


def _relogin(index: Index, activity_id: str) -> Client:
    """A new terminal of an activity already accredited (another certificate, another operator): the
    restart closed the first one's connection."""
    cert = pki.issue_client_cert(index.ca, activity_id, "ARMY-CCF")
    registry = index.registry
    try:
        registry.add_certificate(activity_id, cert.fingerprint)
        registry.add_operator(f"{activity_id.lower()}-op2", activity_id, "a long enough password 1")
    finally:
        registry.close()
    client = index.connect(cert)
    client.activity_id = activity_id
    client.login(f"{activity_id.lower()}-op2", "a long enough password 1")
    return client


def test_a_batch_query_with_a_token_not_its_own_is_refused_at_submission(index: Index, querier: Client) -> None:
    other = index.client("NAVY-CAF-02", "NAVY-CAF", [Role.QUERIER, Role.BATCH])
    theirs = other.search(mode=NONSTANDARD, name=WHITFIELD, page_size=2).next_page_token
    ours = querier.search(mode=NONSTANDARD, name=WHITFIELD, page_size=2).next_page_token
    queries = [
        batch_pb2.BatchQuery(
            query_id=query_id,
            query=search_pb2.SearchRequest(
                mode=NONSTANDARD,
                purpose=search_pb2.PURPOSE_SECURITY_CLEARANCE,
                name=tracing_pb2.PersonName(surname="Whitfield"),
                page_size=2,
                page_token=token,
            ),
        )
        for query_id, token in (("theirs", theirs), ("ours", ours))
    ]
    stub = batch_pb2_grpc.BatchServiceStub(querier.channel)
    status = stub.SubmitBatch(
        iter([batch_pb2.SubmitBatchRequest(label="t", queries=queries)]), metadata=querier.metadata
    )
    assert (status.total, status.rejected) == (2, 1)
    deadline = time.monotonic() + 60
    while stub.GetBatchStatus(batch_pb2.GetBatchRequest(batch_id=status.batch_id), metadata=querier.metadata).done < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    results = {
        r.query_id: r
        for r in stub.StreamBatchResults(batch_pb2.GetBatchRequest(batch_id=status.batch_id), metadata=querier.metadata)
    }
    assert [v.field for v in results["theirs"].violations] == ["queries[0].query.page_token"]
    assert len(results["ours"].hits) == 2 and results["ours"].next_page_token.startswith("s1.")
    # The batch's token continues online, for the same activity.
    online = querier.search(mode=NONSTANDARD, name=WHITFIELD, page_size=10, page_token=results["ours"].next_page_token)
    assert len(online.hits) == 2  # six Whitfields: two on the online first page, two in the batch, two left


def test_an_access_answers_later_page_takes_only_a_sealed_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A privacy page token of the unsealed format (no version issued one to a client) is refused."""
    index = make_index(tmp_path)
    index.start()
    try:
        _answer_in_pages(index, monkeypatch)
    finally:
        index.stop()


def _answer_in_pages(index: Index, monkeypatch: pytest.MonkeyPatch) -> None:
    _load_person(index)
    adjudicator = _querier(index, "CCF-TERM-05", "ARMY-CCF", Purpose.SECURITY_CLEARANCE)
    for _ in range(2):
        adjudicator.search(mode=PRIVACY_EXACT, name=HAROLD, identifiers={"ssn": SSN})
    officer, privacy = _officer(index)
    opened = privacy_pb2.PrivacyRequest(request_number="PA-26-901", kind=privacy_pb2.PRIVACY_REQUEST_KIND_ACCESS)
    opened.received_at.FromDatetime(dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
    privacy.OpenPrivacyRequest(opened, metadata=officer.metadata, timeout=10)
    monkeypatch.setattr(privacy_pages, "DISCLOSURES_PER_PAGE", 1)
    request = privacy_pb2.AccessRequest(request_number="PA-26-901", ssn=SSN)
    request.name.surname, request.name.given_name = HAROLD["surname"], HAROLD["given_name"]
    first = privacy.AnswerAccessRequest(request, metadata=officer.metadata, timeout=30)
    assert first.next_page_token.startswith("s1.")
    request.page_token = first.next_page_token
    assert privacy.AnswerAccessRequest(request, metadata=officer.metadata, timeout=30).disclosures
    position: page_tokens.Position = [
        dt.datetime.now(dt.UTC).isoformat(),
        dt.datetime.now(dt.UTC).isoformat(),
        "x",
        "NCIS",
        "N-1",
        0,
    ]
    scope: list[object] = ["PA-26-901", *(request.name.surname, request.name.given_name, "", ""), SSN, False]
    request.page_token = page_tokens.seal("access", scope, position)  # in clear, as a client could make it
    with pytest.raises(grpc.RpcError) as refused:
        privacy.AnswerAccessRequest(request, metadata=officer.metadata, timeout=30)
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in field_violations(refused.value)] == ["page_token"]
