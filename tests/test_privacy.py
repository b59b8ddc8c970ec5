"""The person's rights (issue 4): access requests with their accounting, statements of dispute with
notices to earlier recipients, and request deadlines in working days. Over the real gRPC service
(mutual TLS) on real SQLite files."""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import threading
import time
from pathlib import Path

import grpc
import pytest

from dcii.cli import batch as batch_cli
from dcii.cli import privacy as privacy_cli
from dcii.v1 import batch_pb2, privacy_pb2, privacy_pb2_grpc, search_pb2
from search_service.accounting import AuditLog, load_or_create_key
from search_service.accreditation import Purpose, Role
from search_service.errors import field_violations
from search_service.privacy_requests import PrivacyRequests, RequestKind, add_working_days, deadline, federal_holidays
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


def _dispute(
    privacy: privacy_pb2_grpc.PrivacyServiceStub,
    officer: Client,
    record: str,
    location: str = "PRIVACY OFFICE FILE 26-17",
) -> privacy_pb2.FileDisputeResponse:
    request = privacy_pb2.FileDisputeRequest(statement_location=location, summary="Subject disputes the outcome")
    request.tracing.agency, request.tracing.record_number = "NCIS", record
    return privacy.FileDispute(request, metadata=officer.metadata, timeout=10)


def _disputed_setup(index: Index) -> tuple[Client, Client, Client, privacy_pb2.FileDisputeResponse]:
    """NCIS-1 seen by A (once) and B (twice); C saw only NCIS-5; then a dispute on NCIS-1."""
    _load_person(index)
    a = _querier(index, "CCF-TERM-01", "ARMY-CCF", Purpose.SECURITY_CLEARANCE)
    b = _querier(index, "NAVY-CAF-01", "NAVY-CAF", Purpose.SECURITY_CLEARANCE)
    c = _querier(index, "WHS-TERM-01", "WHS", Purpose.SECURITY_CLEARANCE)
    a.search(mode=EXACT, name=HAROLD, identifiers={"ssn": SSN})
    for _ in range(2):
        b.search(mode=EXACT, name=HAROLD, identifiers={"ssn": SSN})
    assert _keys(
        c.search(mode=EXACT, name={"surname": "Okafor", "given_name": "Ngozi"}, identifiers={"ssn": "212-44-8765"}).hits
    ) == ["NCIS-5"]
    officer, privacy = _officer(index)
    return a, b, c, _dispute(privacy, officer, "NCIS-1")


def test_a_dispute_is_shown_and_noticed_to_exactly_the_earlier_recipients(index: Index) -> None:
    a, _b, c, filed = _disputed_setup(index)
    assert filed.notices_queued == 2
    assert filed.dispute.dispute_id and filed.dispute.statement_location == "PRIVACY OFFICE FILE 26-17"
    assert filed.marking == MARKING  # its summary describes the person
    later = c.search(mode=EXACT, name=HAROLD, identifiers={"ssn": SSN})  # C's first sight of NCIS-1, after
    shown = {h.tracing.key.record_number: h.dispute for h in later.hits}
    assert shown["NCIS-1"] == filed.dispute
    assert not shown["NCIS-3"].dispute_id  # only the disputed tracing says so
    again = a.search(mode=search_pb2.SEARCH_MODE_NAME_ONLY, name=HAROLD)
    assert [h.dispute.dispute_id for h in again.hits if h.tracing.key.record_number == "NCIS-1"] == [
        filed.dispute.dispute_id
    ]
    register = _register(index)
    try:
        notices = register.notices(dispute_id=filed.dispute.dispute_id)
    finally:
        register.close()
    assert sorted(n.recipient_activity for n in notices) == ["CCF-TERM-01", "NAVY-CAF-01"]  # not WHS: never saw it
    assert all(n.sent_at is None and n.statement_location == filed.dispute.statement_location for n in notices)
    assert {str(n.tracing) for n in notices} == {"NCIS/NCIS-1"}
    audit = _audit(index)
    try:
        [event] = audit.events("DISPUTE_FILED")
        assert event.detail["dispute_id"] == filed.dispute.dispute_id and event.detail["notices_queued"] == "2"
    finally:
        audit.close()


def test_a_dispute_is_shown_in_ranked_and_batch_answers_and_the_batch_file_is_marked(
    index: Index, tmp_path: Path
) -> None:
    """Wherever the disputed record is disclosed: ranked online answers (FUZZY, PID_QUALIFIED), a batch
    result, and the line `dcii batch` writes of it, which carries the FOUO marking too."""
    _a, _b, c, filed = _disputed_setup(index)
    misspelled = {"surname": "Whitfeld", "given_name": "Harold"}
    for mode, ids in ((search_pb2.SEARCH_MODE_FUZZY, {}), (search_pb2.SEARCH_MODE_PID_QUALIFIED, {"ssn": SSN})):
        ranked = c.search(mode=mode, name=misspelled, identifiers=ids)
        shown = {h.tracing.key.record_number: h.dispute for h in ranked.hits}
        assert shown["NCIS-1"] == filed.dispute, search_pb2.SearchMode.Name(mode)
        assert [r for r, d in shown.items() if d.dispute_id] == ["NCIS-1"]
        assert ranked.marking == MARKING

    batcher = index.client("CCF-BATCH", "ARMY-CCF", [Role.QUERIER, Role.BATCH], purposes=[Purpose.SECURITY_CLEARANCE])
    queries = [
        _query("fuzzy", search_pb2.SEARCH_MODE_FUZZY, name=misspelled),
        _query("exact", EXACT, name=HAROLD, identifiers={"ssn": SSN}),
        _query("nobody", EXACT, name={"surname": "Nobody", "given_name": "Anne"}, identifiers={"ssn": OTHER_SSN}),
    ]
    batch_id = _submit(batcher, queries).batch_id
    assert _wait(batcher, batch_id).state == DONE
    results = _results(batcher, batch_id)
    for result in results[:2]:
        shown = {h.tracing.key.record_number: h.dispute for h in result.hits}
        assert shown["NCIS-1"] == filed.dispute and result.marking == MARKING, result.query_id
    assert not results[2].hits and not results[2].marking  # nothing disclosed, nothing to mark

    out = tmp_path / "results.jsonl"
    assert batch_cli.write_results(results, out)[0] == 3
    lines = {line["query_id"]: line for line in map(json.loads, out.read_text().splitlines())}
    statement = {
        "dispute_id": filed.dispute.dispute_id,
        "statement_location": "PRIVACY OFFICE FILE 26-17",
        "summary": "Subject disputes the outcome",
    }
    for query_id in ("fuzzy", "exact"):
        hits = {h["record_number"]: h for h in lines[query_id]["hits"]}
        assert hits["NCIS-1"]["dispute"] == statement, query_id
        assert [r for r, h in hits.items() if "dispute" in h] == ["NCIS-1"]
        assert lines[query_id]["marking"] == MARKING
    assert "marking" not in lines["nobody"]
    stored_unmarked = batch_pb2.BatchQueryResult(query_id="old", hits=results[0].hits)  # kept from before marking
    assert batch_cli.result_line(stored_unmarked)["marking"] == MARKING
    register = _register(index)
    try:  # later recipients see the annotation; the notices went only to the earlier ones
        assert len(register.notices(dispute_id=filed.dispute.dispute_id)) == 2
    finally:
        register.close()


def test_a_batch_answered_before_a_dispute_is_fetched_with_its_annotation(index: Index) -> None:
    """Results wait up to 30 days for their operator: a record disputed since the batch ran was sent as it
    was stored, unannotated, while an online search at the same moment showed the dispute."""
    _load_person(index)
    batcher = index.client("CCF-BATCH", "ARMY-CCF", [Role.QUERIER, Role.BATCH], purposes=[Purpose.SECURITY_CLEARANCE])
    batch_id = _submit(batcher, [_query("exact", EXACT, name=HAROLD, identifiers={"ssn": SSN})]).batch_id
    assert _wait(batcher, batch_id).state == DONE
    officer, privacy = _officer(index)
    filed = _dispute(privacy, officer, "NCIS-1")
    assert filed.notices_queued == 1  # the batch's recipient, told as an earlier recipient
    [result] = _results(batcher, batch_id)
    shown = {h.tracing.key.record_number: h.dispute for h in result.hits}
    assert shown["NCIS-1"] == filed.dispute
    assert [r for r, d in shown.items() if d.dispute_id] == ["NCIS-1"]


def test_a_batch_hit_on_a_record_refiled_to_another_person_goes_without_that_persons_dispute(
    index: Index,
) -> None:
    """Results are fetched as records stand: NCIS-1, answered about Harold, was refiled by NCIS to Ngozi
    Okafor and disputed by her; the stored hit went out with her statement attached (privacy review 2).
    The hit goes as it was answered, without hers."""
    _load_person(index)
    batcher = index.client("CCF-BATCH", "ARMY-CCF", [Role.QUERIER, Role.BATCH], purposes=[Purpose.SECURITY_CLEARANCE])
    batch_id = _submit(batcher, [_query("exact", EXACT, name=HAROLD, identifiers={"ssn": SSN})]).batch_id
    assert _wait(batcher, batch_id).state == DONE
    submitter = index.client("NCIS-RA-02", "NCIS", [Role.SUBMITTER])
    submitter.upsert(f.person(record="NCIS-1", version=2, surname="Okafor", given="Ngozi", ssn="212-44-8765"))
    officer, privacy = _officer(index)
    filed = _dispute(privacy, officer, "NCIS-1")
    assert filed.notices_queued == 0  # the batch's recipient saw Harold's record, not hers
    [result] = _results(batcher, batch_id)
    assert "NCIS-1" in _keys(result.hits)
    assert all(not h.dispute.dispute_id for h in result.hits)


def test_a_record_whose_ssn_was_corrected_keeps_its_earlier_recipients_and_accounting(index: Index) -> None:
    """NCIS-7 was disclosed under a mistyped SSN, then corrected under the same name: its earlier recipient
    got no statement of dispute, and the person's accounting lost that disclosure (privacy review 3). The
    record kept its name: the same person (indexer.subjects)."""
    submitter = index.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER])
    typo = "318-52-4417"
    submitter.upsert(f.person(record="NCIS-7", ssn=typo))
    before = _querier(index, "CCF-TERM-01", "ARMY-CCF", Purpose.SECURITY_CLEARANCE)
    assert _keys(before.search(mode=EXACT, name=HAROLD, identifiers={"ssn": typo}).hits) == ["NCIS-7"]
    submitter.upsert(f.person(record="NCIS-7", version=2, ssn=SSN))
    after = _querier(index, "NAVY-CAF-01", "NAVY-CAF", Purpose.SECURITY_CLEARANCE)
    assert _keys(after.search(mode=EXACT, name=HAROLD, identifiers={"ssn": SSN}).hits) == ["NCIS-7"]
    officer, privacy = _officer(index)
    filed = _dispute(privacy, officer, "NCIS-7")
    assert filed.notices_queued == 2
    register = _register(index)
    try:
        told = {n.recipient_activity for n in register.notices(dispute_id=filed.dispute.dispute_id)}
    finally:
        register.close()
    assert told == {"CCF-TERM-01", "NAVY-CAF-01"}
    _open(privacy, officer, "PA-26-070")
    answer = _ask(privacy, officer, "PA-26-070")
    assert {(d.tracing.record_number, d.recipient_activity) for d in answer.disclosures} >= {
        ("NCIS-7", "CCF-TERM-01"),
        ("NCIS-7", "NAVY-CAF-01"),
    }


def test_a_record_number_deleted_and_used_again_for_a_namesake_is_not_theirs_before(index: Index) -> None:
    """The name alone vouches only within the record's present life: NCIS-8 was one Harold Whitfield's,
    deleted, then used again for another; the first one's recipient is not the second's (diff review 2)."""
    submitter = index.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER])
    submitter.upsert(f.person(record="NCIS-8", ssn=OTHER_SSN))
    first = _querier(index, "CCF-TERM-01", "ARMY-CCF", Purpose.SECURITY_CLEARANCE)
    assert _keys(first.search(mode=EXACT, name=HAROLD, identifiers={"ssn": OTHER_SSN}).hits) == ["NCIS-8"]
    deleted = submitter.push([f.delete("NCIS", "NCIS-8", 2)])
    assert [r.outcome for r in deleted] == [1]
    submitter.upsert(f.person(record="NCIS-8", version=3, ssn=SSN))
    officer, privacy = _officer(index)
    assert _dispute(privacy, officer, "NCIS-8").notices_queued == 0
    _open(privacy, officer, "PA-26-080")
    answer = _ask(privacy, officer, "PA-26-080")
    assert "NCIS-8" in _keys(answer.tracings)
    assert not any(d.tracing.record_number == "NCIS-8" for d in answer.disclosures)


def test_a_dispute_filed_while_an_answer_waits_for_its_accounting_reaches_that_answer(index: Index) -> None:
    """The answer read NCIS-1 undisputed and waited to be accounted (another writer held the trail); the
    dispute was filed meanwhile and found no accounting entry to send a notice by. The answer left without
    the annotation, and its recipient was never told. Now the answer carries it. (On a machine so slow that
    the search reaches the trail only after the dispute is attached, this passes without the race.)"""
    _load_person(index)
    adjudicator = _querier(index, "CCF-TERM-01", "ARMY-CCF", Purpose.SECURITY_CLEARANCE)
    officer, privacy = _officer(index)
    answers: list[search_pb2.SearchResponse] = []
    with (index.data_dir / "audit.db.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the trail's writer is busy: the search's accounting waits
        search = threading.Thread(
            target=lambda: answers.append(adjudicator.search(mode=EXACT, name=HAROLD, identifiers={"ssn": SSN}))
        )
        search.start()
        time.sleep(1.0)  # the search has read its answer and waits for the trail
        filing: list[privacy_pb2.FileDisputeResponse] = []
        dispute = threading.Thread(target=lambda: filing.append(_dispute(privacy, officer, "NCIS-1")))
        dispute.start()  # attaches the statement, then waits for the trail to record its event
        time.sleep(1.0)
        fcntl.flock(lock, fcntl.LOCK_UN)
        search.join(timeout=30)
        dispute.join(timeout=30)
    [answer], [filed] = answers, filing
    assert filed.notices_queued == 0  # the search's disclosure was not in the trail when it was filed
    shown = {h.tracing.key.record_number: h.dispute.dispute_id for h in answer.hits}
    assert shown["NCIS-1"] == filed.dispute.dispute_id


def test_a_record_deleted_since_its_batch_was_answered_is_not_sent_with_the_results(index: Index) -> None:
    """Its agency withdrew it after the batch ran: fetched weeks later, the results sent it as stored."""
    _load_person(index)
    batcher = index.client("CCF-BATCH", "ARMY-CCF", [Role.QUERIER, Role.BATCH], purposes=[Purpose.SECURITY_CLEARANCE])
    queries = [
        _query("harold", EXACT, name=HAROLD, identifiers={"ssn": SSN}),
        _query("ngozi", EXACT, name={"surname": "Okafor", "given_name": "Ngozi"}, identifiers={"ssn": "212-44-8765"}),
    ]
    batch_id = _submit(batcher, queries).batch_id
    assert _wait(batcher, batch_id).state == DONE
    submitter = index.client("NCIS-RA-02", "NCIS", [Role.SUBMITTER])
    assert [r.outcome for r in submitter.push([f.delete("NCIS", "NCIS-1", 2), f.delete("NCIS", "NCIS-5", 2)])] == [1, 1]
    harold, ngozi = _results(batcher, batch_id)
    assert "NCIS-1" not in _keys(harold.hits) and _keys(harold.hits) == ["NCIS-3"] and harold.marking == MARKING
    assert list(ngozi.hits) == [] and not ngozi.marking  # nothing left to disclose in it


def test_dispute_refusals(index: Index) -> None:
    _load_person(index)
    officer, privacy = _officer(index)
    with pytest.raises(grpc.RpcError) as missing:
        _dispute(privacy, officer, "NCIS-404")
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as bad:
        _dispute(privacy, officer, "NCIS-1", location="")
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in field_violations(bad.value)] == ["statement_location"]
    assert _dispute(privacy, officer, "NCIS-2").notices_queued == 0  # never disclosed: nobody to tell
    # Accreditation is per purpose: a privacy office's activity without the Privacy Act's purpose may not
    # file a statement (it queued one to every earlier recipient), nor open or list requests.
    unaccredited = index.client("DSS-PRIVACY-2", "DSS", [Role.PRIVACY_OFFICER], purposes=[])
    stub = privacy_pb2_grpc.PrivacyServiceStub(unaccredited.channel)
    opened = privacy_pb2.PrivacyRequest(request_number="PA-26-090", kind=privacy_pb2.PRIVACY_REQUEST_KIND_ACCESS)
    opened.received_at.FromDatetime(dt.datetime.now(dt.UTC))
    for call in (
        lambda: _dispute(stub, unaccredited, "NCIS-1"),
        lambda: stub.OpenPrivacyRequest(opened, metadata=unaccredited.metadata, timeout=10),
        lambda: stub.ListPrivacyRequests(privacy_pb2.ListPrivacyRequestsRequest(), metadata=unaccredited.metadata),
    ):
        with pytest.raises(grpc.RpcError) as denied:
            call()
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "PRIVACY_ACT_REQUEST" in (denied.value.details() or "")


def test_a_second_statement_replaces_the_first_and_says_which(index: Index) -> None:
    """A record shows the person's latest statement; the second silently took the first's place, with no
    trace of which it replaced (privacy review 4)."""
    _load_person(index)
    officer, privacy = _officer(index)
    first = _dispute(privacy, officer, "NCIS-1", location="PO FILE 1")
    assert first.replaced_dispute_id == ""
    second = _dispute(privacy, officer, "NCIS-1", location="PO FILE 2")
    assert second.replaced_dispute_id == first.dispute.dispute_id
    audit = _audit(index)
    try:
        filed = [e.detail for e in audit.events("DISPUTE_FILED")]
    finally:
        audit.close()
    assert [d.get("replaces_dispute_id") for d in filed] == [None, first.dispute.dispute_id]


def test_the_cli_shows_a_statement_as_written_not_as_markup(
    index: Index, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A statement location holding "[/2026]" ended `dcii privacy notices list` with rich's MarkupError, and
    "[see letter]" vanished (diff review 6; `dcii search` had the same)."""
    monkeypatch.setattr(privacy_cli.console, "width", 240)
    _load_person(index)
    _querier(index, "CCF-TERM-01", "ARMY-CCF", Purpose.SECURITY_CLEARANCE).search(
        mode=EXACT, name=HAROLD, identifiers={"ssn": SSN}
    )
    officer, privacy = _officer(index)
    assert _dispute(privacy, officer, "NCIS-1", location="PO file [/2026] 0002 [see letter]").notices_queued == 1
    privacy_cli.main(["notices", "list", "--data", str(index.data_dir)])
    assert "PO file [/2026] 0002 [see letter]" in capsys.readouterr().out


def test_cli_lists_and_marks_notices(
    index: Index, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(privacy_cli.console, "width", 240)  # one line per notice
    _disputed_setup(index)
    data = str(index.data_dir)
    privacy_cli.main(["notices", "list", "--data", data])
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == MARKING and lines[-1] == MARKING
    assert "2 notices" in lines[-2]
    register = _register(index)
    try:
        first, second = register.notices()
    finally:
        register.close()
    privacy_cli.main(["notices", "mark-sent", first.notice_id, "--data", data])
    assert "marked sent" in capsys.readouterr().out
    privacy_cli.main(["notices", "list", "--unsent", "--data", data])
    out = capsys.readouterr().out
    assert "1 unsent notices" in out and second.recipient_activity in out and first.recipient_activity not in out
    with pytest.raises(SystemExit, match="already marked sent"):
        privacy_cli.main(["notices", "mark-sent", first.notice_id, "--data", data])
    with pytest.raises(SystemExit, match="no notice"):
        privacy_cli.main(["notices", "mark-sent", "0" * 32, "--data", data])
    audit = _audit(index)
    try:  # who marked it sent, and when, is the office's record; the refused ones recorded nothing
        sent = audit.events("DISPUTE_NOTICE_SENT")
        assert [e.detail for e in sent] == [{"notice_id": first.notice_id}] and sent[0].actor.startswith("cli:")
    finally:
        audit.close()


# ---- deadlines ----


def test_federal_holidays_with_observed_dates() -> None:
    assert len(federal_holidays(2026)) == 11
    assert dt.date(2026, 11, 26) in federal_holidays(2026)  # Thanksgiving
    assert dt.date(2026, 7, 3) in federal_holidays(2026)  # 4 July 2026 is a Saturday
    assert dt.date(2027, 6, 18) in federal_holidays(2027)  # Juneteenth 2027 is a Saturday
    assert dt.date(2027, 12, 31) in federal_holidays(2027)  # New Year's Day 2028 is a Saturday
    assert dt.date(2027, 12, 24) in federal_holidays(2027)  # Christmas 2027 is a Saturday
    assert len(federal_holidays(2028)) == 10  # its New Year's Day was observed in 2027
    assert dt.date(2023, 1, 2) in federal_holidays(2023)  # 1 January 2023 is a Sunday
    assert dt.date(2020, 6, 19) not in federal_holidays(2020)  # Juneteenth from 2021


def test_working_days_skip_weekends_and_holidays() -> None:
    friday = dt.date(2026, 11, 20)
    assert add_working_days(friday, 1) == dt.date(2026, 11, 23)  # over the weekend
    assert add_working_days(friday, 4) == dt.date(2026, 11, 27)  # over Thanksgiving
    assert add_working_days(friday, 10) == dt.date(2026, 12, 7)
    assert add_working_days(friday, 30) == dt.date(2027, 1, 6)  # over Christmas and New Year's Day
    assert add_working_days(dt.date(2026, 11, 21), 10) == dt.date(2026, 12, 7)  # received on a Saturday


def test_open_request_sets_deadlines_and_refuses_a_duplicate(index: Index) -> None:
    officer, privacy = _officer(index)
    request = privacy_pb2.PrivacyRequest(request_number="PA-26-010", kind=privacy_pb2.PRIVACY_REQUEST_KIND_AMENDMENT)
    request.received_at.FromDatetime(dt.datetime(2026, 11, 20, 15, 0, tzinfo=dt.UTC))
    opened = privacy.OpenPrivacyRequest(request, metadata=officer.metadata, timeout=10)
    # The end of the 10th and 30th working days in the privacy office's zone (New York: UTC-5 in winter).
    assert opened.acknowledge_by.ToDatetime(dt.UTC) == dt.datetime(2026, 12, 8, 4, 59, 59, tzinfo=dt.UTC)
    assert opened.respond_by.ToDatetime(dt.UTC) == dt.datetime(2027, 1, 7, 4, 59, 59, tzinfo=dt.UTC)
    assert not opened.HasField("acknowledged_at") and not opened.HasField("responded_at")
    with pytest.raises(grpc.RpcError) as duplicate:
        privacy.OpenPrivacyRequest(request, metadata=officer.metadata, timeout=10)
    assert duplicate.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.RpcError) as bad:
        privacy.OpenPrivacyRequest(privacy_pb2.PrivacyRequest(request_number="PA 1"), metadata=officer.metadata)
    assert {field for field, _ in field_violations(bad.value)} == {"request_number", "kind", "received_at"}
    # Received before the Privacy Act took effect (deadlines overdue for ever), and fields only the index sets.
    wrong = privacy_pb2.PrivacyRequest(request_number="PA-26-011", kind=privacy_pb2.PRIVACY_REQUEST_KIND_ACCESS)
    wrong.received_at.FromDatetime(dt.datetime(1975, 9, 26, tzinfo=dt.UTC))
    wrong.acknowledged_at.FromDatetime(dt.datetime(2026, 11, 20, tzinfo=dt.UTC))
    wrong.respond_by.FromDatetime(dt.datetime(2027, 1, 1, tzinfo=dt.UTC))
    with pytest.raises(grpc.RpcError) as bad:
        privacy.OpenPrivacyRequest(wrong, metadata=officer.metadata)
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {field for field, _ in field_violations(bad.value)} == {"received_at", "acknowledged_at", "respond_by"}
    wrong.ClearField("acknowledged_at")
    wrong.ClearField("respond_by")
    wrong.received_at.FromDatetime(dt.datetime(1975, 9, 27, tzinfo=dt.UTC))
    assert privacy.OpenPrivacyRequest(wrong, metadata=officer.metadata).request_number == "PA-26-011"


def test_overdue_with_an_injected_clock(tmp_path: Path) -> None:
    now = [dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC)]
    register = PrivacyRequests(tmp_path / "privacy.db", clock=lambda: now[0])
    try:
        register.open_request("PA-1", RequestKind.ACCESS, now[0])
        register.open_request("PA-2", RequestKind.AMENDMENT, now[0] + dt.timedelta(days=10))

        def overdue() -> list[str]:
            return [r.request_number for r in register.list_requests(overdue_only=True)]

        now[0] = deadline(now[0], 10)  # the last moment of the tenth working day
        assert overdue() == []
        now[0] += dt.timedelta(seconds=1)
        assert overdue() == ["PA-1"]  # not acknowledged in time
        register.acknowledge("PA-1")
        assert overdue() == []
        now[0] = dt.datetime(2027, 1, 7, 5, 0, tzinfo=dt.UTC)  # past midnight of 6 January in New York
        # PA-1 acknowledged but not answered within 30 working days; PA-2 (received 30 Nov) not acknowledged
        assert overdue() == ["PA-1", "PA-2"]
        register.respond("PA-1")
        assert overdue() == ["PA-2"]
        register.respond("PA-2")  # an answer acknowledges too
        assert overdue() == []
        assert [r.request_number for r in register.list_requests()] == ["PA-1", "PA-2"]
    finally:
        register.close()


def test_overdue_requests_over_the_wire_and_the_cli(
    index: Index, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(privacy_cli.console, "width", 240)
    _load_person(index)
    officer, privacy = _officer(index)
    received = {"PA-20-001": dt.datetime(2020, 3, 2, tzinfo=dt.UTC), "PA-26-020": dt.datetime.now(dt.UTC)}
    for number, at in received.items():
        request = privacy_pb2.PrivacyRequest(request_number=number, kind=privacy_pb2.PRIVACY_REQUEST_KIND_ACCESS)
        request.received_at.FromDatetime(at)
        privacy.OpenPrivacyRequest(request, metadata=officer.metadata, timeout=10)
    listing = privacy.ListPrivacyRequests(
        privacy_pb2.ListPrivacyRequestsRequest(overdue_only=True), metadata=officer.metadata
    )
    assert [r.request_number for r in listing.requests] == ["PA-20-001"]
    every = privacy.ListPrivacyRequests(privacy_pb2.ListPrivacyRequestsRequest(), metadata=officer.metadata)
    assert [r.request_number for r in every.requests] == ["PA-20-001", "PA-26-020"]
    data = str(index.data_dir)
    with pytest.raises(SystemExit, match=r"no privacy register at .*is --data right"):  # a mistyped directory
        privacy_cli.main(["requests", "list", "--overdue", "--data", data + "x"])
    assert not Path(data + "x").exists()
    privacy_cli.main(["requests", "list", "--overdue", "--data", data])
    out = capsys.readouterr().out
    assert "PA-20-001" in out and "OVERDUE" in out and "PA-26-020" not in out
    _ask(privacy, officer, "PA-20-001")  # answered (late): no duty outstanding
    listing = privacy.ListPrivacyRequests(
        privacy_pb2.ListPrivacyRequestsRequest(overdue_only=True), metadata=officer.metadata
    )
    assert list(listing.requests) == []
    privacy_cli.main(["requests", "acknowledge", "PA-26-020", "--data", data])
    assert "PA-26-020 acknowledged" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="no privacy request"):
        privacy_cli.main(["requests", "acknowledge", "PA-99-999", "--data", data])
    # Done already (acknowledged just now; PA-20-001 answered over the wire): the first stands, and a second
    # is no event saying someone did it again at a time the register never held (privacy review 7).
    privacy_cli.main(["requests", "acknowledge", "PA-26-020", "--data", data])
    privacy_cli.main(["requests", "respond", "PA-20-001", "--data", data])
    again = capsys.readouterr().out
    assert "PA-26-020 was already acknowledged" in again and "PA-20-001 was already answered" in again
    audit = _audit(index)
    try:
        assert [e.detail for e in audit.events("PRIVACY_REQUEST_ACKNOWLEDGED")] == [{"request_number": "PA-26-020"}]
        assert audit.events("PRIVACY_REQUEST_ANSWERED") == []
    finally:
        audit.close()


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
