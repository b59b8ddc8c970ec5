"""The person's rights (issue 4): access requests with their accounting, and what a record's earlier life
may vouch for. Over the real gRPC service (mutual TLS) on real SQLite files. Statements of dispute:
tests/test_privacy_disputes.py; request deadlines: tests/test_privacy_deadlines.py and, in the office's time
zone, tests/test_privacy_zone.py."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest

from dcii.v1 import privacy_pb2, privacy_pb2_grpc, search_pb2
from search_service.accounting import AuditLog, load_or_create_key
from search_service.accreditation import Purpose, Role
from search_service.errors import field_violations
from search_service.privacy_requests import PrivacyRequests
from search_service.search import MARKING
from tests import factories as f
from tests.support import Client, Index
from tests.test_batch import DONE, _query, _results, _submit, _wait

EXACT = search_pb2.SEARCH_MODE_EXACT
HAROLD = {"surname": "Whitfield", "given_name": "Harold"}
SSN, OTHER_SSN = "318-52-4471", "529-61-3380"


def _officer(index: Index) -> tuple[Client, privacy_pb2_grpc.PrivacyServiceStub]:
    client = index.client("DSS-PRIVACY", "DSS", [Role.PRIVACY_OFFICER], purposes=[Purpose.PRIVACY_ACT_REQUEST])
    return client, privacy_pb2_grpc.PrivacyServiceStub(client.channel)


def _querier(index: Index, activity: str, agency: str, purpose: Purpose) -> Client:
    return index.client(activity, agency, [Role.QUERIER], purposes=[purpose])


def _audit(index: Index) -> AuditLog:
    return AuditLog(index.data_dir / "audit.db", key=load_or_create_key(index.data_dir / "audit.key"))


def _register(index: Index) -> PrivacyRequests:
    return PrivacyRequests(index.data_dir / "privacy.db")


def _keys(hits: object) -> list[str]:
    return sorted(h.tracing.key.record_number for h in hits)  # type: ignore[attr-defined]


def _ask(
    privacy: privacy_pb2_grpc.PrivacyServiceStub, officer: Client, number: str, *, withhold: bool = False
) -> privacy_pb2.AccessResponse:
    request = privacy_pb2.AccessRequest(request_number=number, ssn=SSN, withhold_law_enforcement=withhold)
    request.name.surname, request.name.given_name = HAROLD["surname"], HAROLD["given_name"]
    return privacy.AnswerAccessRequest(request, metadata=officer.metadata, timeout=10)


def _dispute(
    privacy: privacy_pb2_grpc.PrivacyServiceStub,
    officer: Client,
    record: str,
    location: str = "PRIVACY OFFICE FILE 26-17",
) -> privacy_pb2.FileDisputeResponse:
    request = privacy_pb2.FileDisputeRequest(statement_location=location, summary="Subject disputes the outcome")
    request.tracing.agency, request.tracing.record_number = "NCIS", record
    return privacy.FileDispute(request, metadata=officer.metadata, timeout=10)


def _answered_batch(index: Index) -> tuple[Client, str]:
    """A batch activity's answered batch of two EXACT queries: Harold Whitfield's and Ngozi Okafor's."""
    batcher = index.client("CCF-BATCH", "ARMY-CCF", [Role.QUERIER, Role.BATCH], purposes=[Purpose.SECURITY_CLEARANCE])
    queries = [
        _query("harold", EXACT, name=HAROLD, identifiers={"ssn": SSN}),
        _query("ngozi", EXACT, name={"surname": "Okafor", "given_name": "Ngozi"}, identifiers={"ssn": "212-44-8765"}),
    ]
    batch_id = _submit(batcher, queries).batch_id
    assert _wait(batcher, batch_id).state == DONE
    return batcher, batch_id


def _load_person(index: Index) -> None:
    submitter = index.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER])
    submitter.upsert(
        f.person(record="NCIS-1"),
        # A namesake: same name, another person (another SSN, born elsewhere, another day).
        f.person(record="NCIS-2", ssn=OTHER_SSN, dob=(1980, 1, 2), state="TX"),
        # Filed under another name, with the person's name as an alias.
        f.person(record="NCIS-3", surname="Smith", given="John", aliases=(("Whitfield", "Harold"),)),
        # Filed under a misspelling, no alias: only the SSN ties it to the person.
        f.person(record="NCIS-4", surname="Whitfeld", given="Harald"),
        f.person(record="NCIS-5", surname="Okafor", given="Ngozi", ssn="212-44-8765"),
    )


def test_access_request_returns_all_and_only_the_persons_tracings_and_their_accounting(index: Index) -> None:
    _load_person(index)
    adjudicator = _querier(index, "CCF-TERM-01", "ARMY-CCF", Purpose.SECURITY_CLEARANCE)
    investigator = _querier(index, "AFOSI-TERM-01", "AFOSI", Purpose.CRIMINAL_INVESTIGATION)
    adjudicator.search(mode=EXACT, name=HAROLD, identifiers={"ssn": SSN})
    investigator.search(
        mode=EXACT, name=HAROLD, identifiers={"ssn": SSN}, purpose=search_pb2.PURPOSE_CRIMINAL_INVESTIGATION
    )
    spelled = adjudicator.search(
        mode=EXACT, name={"surname": "Whitfeld", "given_name": "Harald"}, identifiers={"ssn": SSN}
    )
    assert _keys(spelled.hits) == ["NCIS-4"]
    officer, privacy = _officer(index)
    opened = privacy_pb2.PrivacyRequest(request_number="PA-26-001", kind=privacy_pb2.PRIVACY_REQUEST_KIND_ACCESS)
    opened.received_at.FromDatetime(dt.datetime.now(dt.UTC) - dt.timedelta(days=2))
    privacy.OpenPrivacyRequest(opened, metadata=officer.metadata, timeout=10)

    answer = _ask(privacy, officer, "PA-26-001")
    assert _keys(answer.tracings) == ["NCIS-1", "NCIS-3", "NCIS-4"]  # not the namesake NCIS-2, not NCIS-5
    assert answer.marking == MARKING
    assert {h.tracing.subject.identifiers.ssn for h in answer.tracings} == {"318524471"}  # the full number
    matched = {h.tracing.key.record_number: h.explanation.matched_name for h in answer.tracings}
    assert matched == {"NCIS-1": "primary", "NCIS-3": "alias 1", "NCIS-4": ""}
    told = {(d.tracing.record_number, d.recipient_activity, d.purpose) for d in answer.disclosures}
    assert told == {
        ("NCIS-1", "CCF-TERM-01", search_pb2.PURPOSE_SECURITY_CLEARANCE),
        ("NCIS-3", "CCF-TERM-01", search_pb2.PURPOSE_SECURITY_CLEARANCE),
        ("NCIS-4", "CCF-TERM-01", search_pb2.PURPOSE_SECURITY_CLEARANCE),
        ("NCIS-1", "AFOSI-TERM-01", search_pb2.PURPOSE_CRIMINAL_INVESTIGATION),
        ("NCIS-3", "AFOSI-TERM-01", search_pb2.PURPOSE_CRIMINAL_INVESTIGATION),
    }
    assert len(answer.disclosures) == 5
    assert all(d.law_enforcement == (d.recipient_activity == "AFOSI-TERM-01") for d in answer.disclosures)
    assert all(d.method == "ONLINE" and d.recipient_operator and d.disclosure_id for d in answer.disclosures)

    withheld = _ask(privacy, officer, "PA-26-001", withhold=True)
    assert _keys(withheld.tracings) == ["NCIS-1", "NCIS-3", "NCIS-4"]
    recipients = {(d.recipient_activity, d.purpose) for d in withheld.disclosures}
    assert recipients == {  # the first answer was itself a disclosure to the privacy office
        ("CCF-TERM-01", search_pb2.PURPOSE_SECURITY_CLEARANCE),
        ("DSS-PRIVACY", search_pb2.PURPOSE_PRIVACY_ACT_REQUEST),
    }
    assert not any(d.law_enforcement for d in withheld.disclosures)

    audit = _audit(index)
    try:
        answered = [e for e in audit.events("ACCESS_REQUEST_ANSWERED")]
        assert [e.detail["request_number"] for e in answered] == ["PA-26-001", "PA-26-001"]
        assert all("318" not in v and "WHITFIELD" not in v.upper() for e in answered for v in e.detail.values())
        to_office = [
            d for d in audit.disclosures_for_tracing("NCIS", "NCIS-3") if d.recipient_activity == "DSS-PRIVACY"
        ]
        assert [(d.purpose, d.method, d.law_enforcement) for d in to_office] == [
            ("PRIVACY_ACT_REQUEST", "ONLINE", False)
        ] * 2
        assert audit.verify().ok
    finally:
        audit.close()
    register = _register(index)
    try:
        tracked = register.request("PA-26-001")
        assert tracked is not None and tracked.responded_at is not None and tracked.acknowledged_at is not None
    finally:
        register.close()


def _open(privacy: privacy_pb2_grpc.PrivacyServiceStub, officer: Client, number: str) -> None:
    opened = privacy_pb2.PrivacyRequest(request_number=number, kind=privacy_pb2.PRIVACY_REQUEST_KIND_ACCESS)
    opened.received_at.FromDatetime(dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
    privacy.OpenPrivacyRequest(opened, metadata=officer.metadata, timeout=10)


def test_the_accounting_keeps_disclosures_of_a_record_gone_since_under_another_spelling(index: Index) -> None:
    """NCIS-4 is filed under a misspelling with the person's SSN; once its agency deleted it, its disclosure
    fell out of the person's accounting (found by their names with the SSN, or by live records only),
    though the trail held it: the Privacy Act keeps the accounting five years, whatever became of the record."""
    _load_person(index)
    adjudicator = _querier(index, "CCF-TERM-01", "ARMY-CCF", Purpose.SECURITY_CLEARANCE)
    spelled = adjudicator.search(
        mode=EXACT, name={"surname": "Whitfeld", "given_name": "Harald"}, identifiers={"ssn": SSN}
    )
    assert _keys(spelled.hits) == ["NCIS-4"]
    submitter = index.client("NCIS-RA-02", "NCIS", [Role.SUBMITTER])
    assert submitter.push([f.delete("NCIS", "NCIS-4", 2)])[0].outcome == 1
    officer, privacy = _officer(index)
    _open(privacy, officer, "PA-26-010")
    answer = _ask(privacy, officer, "PA-26-010")
    assert "NCIS-4" not in _keys(answer.tracings)
    told = {(d.tracing.record_number, d.recipient_activity) for d in answer.disclosures}
    assert told == {("NCIS-4", "CCF-TERM-01")}


def test_a_record_number_used_again_for_another_person_keeps_the_accountings_apart(index: Index) -> None:
    """NCIS-9 was Okafor's, disclosed to AFOSI for a criminal investigation, then deleted and used again
    for Whitfield: Whitfield's accounting listed Okafor's disclosure, and Whitfield's statement of dispute
    was queued to AFOSI, which never received anything about him (a disclosure the dispute made itself)."""
    submitter = index.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER])
    submitter.upsert(f.person(record="NCIS-9", surname="Okafor", given="Ngozi", ssn=OTHER_SSN, dob=(1980, 1, 2)))
    investigator = _querier(index, "AFOSI-TERM-01", "AFOSI", Purpose.CRIMINAL_INVESTIGATION)
    found = investigator.search(
        mode=EXACT,
        name={"surname": "Okafor", "given_name": "Ngozi"},
        identifiers={"ssn": OTHER_SSN},
        purpose=search_pb2.PURPOSE_CRIMINAL_INVESTIGATION,
    )
    assert _keys(found.hits) == ["NCIS-9"]
    assert submitter.push([f.delete("NCIS", "NCIS-9", 2)])[0].outcome == 1
    assert submitter.upsert(f.person(record="NCIS-9", version=3))[0].outcome == 1  # Whitfield's now
    adjudicator = _querier(index, "CCF-TERM-01", "ARMY-CCF", Purpose.SECURITY_CLEARANCE)
    assert _keys(adjudicator.search(mode=EXACT, name=HAROLD, identifiers={"ssn": SSN}).hits) == ["NCIS-9"]
    officer, privacy = _officer(index)
    _open(privacy, officer, "PA-26-011")
    answer = _ask(privacy, officer, "PA-26-011")
    assert _keys(answer.tracings) == ["NCIS-9"]
    assert {(d.tracing.record_number, d.recipient_activity) for d in answer.disclosures} == {("NCIS-9", "CCF-TERM-01")}
    filed = _dispute(privacy, officer, "NCIS-9")
    register = _register(index)
    try:  # to the adjudicator who saw Whitfield's record; not AFOSI, nor the privacy office's own answer
        assert [n.recipient_activity for n in register.notices(dispute_id=filed.dispute.dispute_id)] == ["CCF-TERM-01"]
    finally:
        register.close()


def test_only_a_registered_access_request_is_answered(index: Index) -> None:
    # Answering closes the request's deadlines: a number never opened (a typo) or an amendment's is refused,
    # and nothing is disclosed or marked answered.
    _load_person(index)
    officer, privacy = _officer(index)
    amendment = privacy_pb2.PrivacyRequest(request_number="PA-26-030", kind=privacy_pb2.PRIVACY_REQUEST_KIND_AMENDMENT)
    amendment.received_at.FromDatetime(dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
    privacy.OpenPrivacyRequest(amendment, metadata=officer.metadata, timeout=10)
    for number in ("PA-26-999", "PA-26-030"):
        with pytest.raises(grpc.RpcError) as refused:
            _ask(privacy, officer, number)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert [field for field, _ in field_violations(refused.value)] == ["request_number"]
    register = _register(index)
    try:
        assert [(r.request_number, r.responded_at) for r in register.list_requests()] == [("PA-26-030", None)]
    finally:
        register.close()


def test_records_under_the_persons_name_without_any_ssn_are_listed_apart_as_unverified(index: Index) -> None:
    """A cross-reference or an older file often holds a name and no SSN: found by neither of the answer's
    ways (the SSN), it was left out, though it may well be the person's. Listed apart, for the privacy
    office to judge, each disclosed to the office and accounted; one with another SSN is someone else's."""
    _load_person(index)
    submitter = index.client("NCIS-RA-02", "NCIS", [Role.SUBMITTER])
    submitter.upsert(
        f.person(record="NCIS-X1", ssn=""),  # Harold Whitfield, no SSN
        f.person(record="NCIS-X2", surname="Smith", given="John", ssn="", aliases=(("Whitfield", "Harold"),)),
        f.person(record="NCIS-X3", given="Harriet", ssn=""),  # another name, no SSN
    )
    officer, privacy = _officer(index)
    _open(privacy, officer, "PA-26-060")
    answer = _ask(privacy, officer, "PA-26-060")
    assert _keys(answer.tracings) == ["NCIS-1", "NCIS-3", "NCIS-4"]  # as before: the namesake NCIS-2 not
    assert _keys(answer.unverified) == ["NCIS-X1", "NCIS-X2"]
    matched = {h.tracing.key.record_number: h.explanation.matched_name for h in answer.unverified}
    assert matched == {"NCIS-X1": "primary", "NCIS-X2": "alias 1"}
    assert all(
        [(x.feature, x.agreement) for x in h.explanation.features][-1] == ("ssn", search_pb2.AGREEMENT_MISSING)
        for h in answer.unverified
    )
    audit = _audit(index)
    try:
        accounted = {d.recipient_activity for d in audit.disclosures_for_tracing("NCIS", "NCIS-X1")}
        [event] = [e.detail for e in audit.events("ACCESS_REQUEST_ANSWERED")]
    finally:
        audit.close()
    assert accounted == {"DSS-PRIVACY"} and event["unverified"] == "2"


def test_access_request_edit_criteria(index: Index) -> None:
    officer, privacy = _officer(index)
    request = privacy_pb2.AccessRequest(request_number="", ssn="666-12-3456")
    with pytest.raises(grpc.RpcError) as refused:
        privacy.AnswerAccessRequest(request, metadata=officer.metadata, timeout=10)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {field for field, _ in field_violations(refused.value)} == {"request_number", "name.surname", "ssn"}
    assert "666" not in (refused.value.details() or "")


@pytest.mark.parametrize("part", ["surname", "given_name"])
def test_a_person_known_by_one_name_asks_by_it(index: Index, part: str) -> None:
    """Indexed and searchable by one name, such a person could not ask for their records as themselves:
    the access request required a given name (privacy review 6)."""
    submitter = index.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER])
    one_name = f.person(record="NCIS-MONO", surname="", given="", ssn=OTHER_SSN)
    setattr(one_name.subject.name, part, "Madonna")
    assert [r.outcome for r in submitter.upsert(one_name)] == [1]
    officer, privacy = _officer(index)
    _open(privacy, officer, "PA-26-077")
    request = privacy_pb2.AccessRequest(request_number="PA-26-077", ssn=OTHER_SSN)
    setattr(request.name, part, "Madonna")
    answer = privacy.AnswerAccessRequest(request, metadata=officer.metadata, timeout=10)
    assert _keys(answer.tracings) == ["NCIS-MONO"]
    assert answer.tracings[0].explanation.matched_name == "primary"


def test_privacy_service_needs_the_privacy_officer_role(index: Index) -> None:
    _load_person(index)
    querier = _querier(index, "CCF-TERM-01", "ARMY-CCF", Purpose.PRIVACY_ACT_REQUEST)
    privacy = privacy_pb2_grpc.PrivacyServiceStub(querier.channel)
    with pytest.raises(grpc.RpcError) as refused:
        _ask(privacy, querier, "PA-26-002")
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    dispute = privacy_pb2.FileDisputeRequest(statement_location="PO-STMT-1")
    dispute.tracing.agency, dispute.tracing.record_number = "NCIS", "NCIS-1"
    with pytest.raises(grpc.RpcError) as refused:
        privacy.FileDispute(dispute, metadata=querier.metadata, timeout=10)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    unaccredited = index.client("DSS-PRIVACY-2", "DSS", [Role.PRIVACY_OFFICER], purposes=[Purpose.SECURITY_CLEARANCE])
    with pytest.raises(grpc.RpcError) as refused:
        _ask(privacy_pb2_grpc.PrivacyServiceStub(unaccredited.channel), unaccredited, "PA-26-002")
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED  # the answer's purpose is not its own


# ---- the second diff review's cases (21b): what a record's earlier life may and may not vouch for ----


def test_a_batch_hit_on_a_record_deleted_since_is_not_sent_even_if_its_number_went_to_a_namesake(
    index: Index,
) -> None:
    """NCIS-8 was one Harold when the batch was answered; deleted, its number went to another Harold
    Whitfield, who disputes it. The fetch sent the first one's hit with the second one's statement on it."""
    submitter = index.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER])
    submitter.upsert(f.person(record="NCIS-8", ssn=OTHER_SSN))
    batcher = index.client("CCF-BATCH", "ARMY-CCF", [Role.QUERIER, Role.BATCH], purposes=[Purpose.SECURITY_CLEARANCE])
    batch_id = _submit(batcher, [_query("q", EXACT, name=HAROLD, identifiers={"ssn": OTHER_SSN})]).batch_id
    assert _wait(batcher, batch_id).state == DONE
    assert [r.outcome for r in submitter.push([f.delete("NCIS", "NCIS-8", 2)])] == [1]
    submitter.upsert(f.person(record="NCIS-8", version=3, ssn=SSN, dob=(1985, 3, 3)))
    officer, privacy = _officer(index)
    assert _dispute(privacy, officer, "NCIS-8").notices_queued == 0
    [result] = _results(batcher, batch_id)
    assert "NCIS-8" not in _keys(result.hits)


def test_unverified_leaves_out_another_middle_name_or_suffix(index: Index) -> None:
    submitter = index.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER])
    submitter.upsert(
        f.person(record="NCIS-1"),  # Harold James Whitfield, the person
        f.person(record="NCIS-U1", ssn="", middle="Xavier", suffix="Jr"),  # another Harold Whitfield
        f.person(record="NCIS-U2", ssn="", middle=""),  # no middle name: may be him
    )
    officer, privacy = _officer(index)
    _open(privacy, officer, "PA-26-090")
    request = privacy_pb2.AccessRequest(request_number="PA-26-090", ssn=SSN)
    request.name.surname, request.name.given_name, request.name.middle_name = "Whitfield", "Harold", "James"
    answer = privacy.AnswerAccessRequest(request, metadata=officer.metadata, timeout=10)
    assert _keys(answer.unverified) == ["NCIS-U2"]


def test_a_disclosure_of_a_record_without_ssn_in_an_earlier_life_is_not_the_new_holders(index: Index) -> None:
    submitter = index.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER])
    submitter.upsert(f.person(record="NCIS-9", ssn="", dob=(1950, 1, 1)))
    first = _querier(index, "CCF-TERM-01", "ARMY-CCF", Purpose.SECURITY_CLEARANCE)
    assert "NCIS-9" in _keys(first.search(mode=search_pb2.SEARCH_MODE_NAME_ONLY, name=HAROLD).hits)
    assert [r.outcome for r in submitter.push([f.delete("NCIS", "NCIS-9", 2)])] == [1]
    submitter.upsert(f.person(record="NCIS-9", version=3, ssn=SSN))
    officer, privacy = _officer(index)
    assert _dispute(privacy, officer, "NCIS-9").notices_queued == 0
    _open(privacy, officer, "PA-26-091")
    answer = _ask(privacy, officer, "PA-26-091")
    assert not [d for d in answer.disclosures if d.tracing.record_number == "NCIS-9"]


def test_a_type_change_under_the_same_number_is_no_new_life(index: Index) -> None:
    """An open case filed again as its file under the same number keeps its key and dispute: its earlier
    recipients stay its recipients after its SSN is then corrected."""
    submitter = index.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER])
    typo = "318-52-4417"
    submitter.upsert(f.open_case(record="NCIS-OC-7", ssn=typo))
    before = _querier(index, "CCF-TERM-01", "ARMY-CCF", Purpose.SECURITY_CLEARANCE)
    assert _keys(before.search(mode=EXACT, name=HAROLD, identifiers={"ssn": typo}).hits) == ["NCIS-OC-7"]
    submitter.upsert(f.person(record="NCIS-OC-7", version=2, ssn=typo))  # a FILE now, the same number
    submitter.upsert(f.person(record="NCIS-OC-7", version=3, ssn=SSN))  # the SSN corrected, the same name
    officer, privacy = _officer(index)
    assert _dispute(privacy, officer, "NCIS-OC-7").notices_queued == 1
    _open(privacy, officer, "PA-26-092")
    answer = _ask(privacy, officer, "PA-26-092")
    assert ("NCIS-OC-7", "CCF-TERM-01") in [(d.tracing.record_number, d.recipient_activity) for d in answer.disclosures]
