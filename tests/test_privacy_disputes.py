"""Statements of dispute (issue 4): shown with every answer that discloses the record, online and in batch,
noticed to exactly its earlier recipients, kept with its person. Over the real gRPC service (mutual TLS) on
real SQLite files. Access requests: tests/test_privacy.py."""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest

from dcii.cli import batch as batch_cli
from dcii.cli import privacy as privacy_cli
from dcii.v1 import batch_pb2, privacy_pb2, privacy_pb2_grpc, search_pb2
from search_service.accreditation import Purpose, Role
from search_service.errors import field_violations
from search_service.search import MARKING
from tests import factories as f
from tests.support import Client, Index
from tests.test_batch import DONE, _query, _results, _submit, _wait
from tests.test_privacy import (
    EXACT,
    HAROLD,
    OTHER_SSN,
    SSN,
    _answered_batch,
    _ask,
    _audit,
    _dispute,
    _keys,
    _load_person,
    _officer,
    _open,
    _querier,
    _register,
)


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


def _filed_while_an_answer_waits(
    index: Index, meanwhile: Callable[[], object] = lambda: None
) -> tuple[search_pb2.SearchResponse, privacy_pb2.FileDisputeResponse]:
    """An EXACT answer on Harold that has read NCIS-1 and waits to be accounted (another writer holds the
    trail) while `meanwhile` runs and then a statement of dispute is filed on NCIS-1: the answer, and the
    filing (which found no accounting entry of that answer to send a notice by)."""
    _load_person(index)
    adjudicator = _querier(index, "CCF-TERM-01", "ARMY-CCF", Purpose.SECURITY_CLEARANCE)
    officer, privacy = _officer(index)
    answers: list[search_pb2.SearchResponse] = []
    filing: list[privacy_pb2.FileDisputeResponse] = []
    with (index.data_dir / "audit.db.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the trail's writer is busy: the search's accounting waits
        search = threading.Thread(
            target=lambda: answers.append(adjudicator.search(mode=EXACT, name=HAROLD, identifiers={"ssn": SSN}))
        )
        search.start()
        time.sleep(1.0)  # the search has read its answer and waits for the trail
        meanwhile()
        dispute = threading.Thread(target=lambda: filing.append(_dispute(privacy, officer, "NCIS-1")))
        dispute.start()  # attaches the statement, then waits for the trail to record its event
        time.sleep(1.0)
        fcntl.flock(lock, fcntl.LOCK_UN)
        search.join(timeout=30)
        dispute.join(timeout=30)
    [answer], [filed] = answers, filing
    assert filed.notices_queued == 0  # the search's disclosure was not in the trail when it was filed
    return answer, filed


def _ncis_1(answer: search_pb2.SearchResponse) -> search_pb2.Hit:
    [hit] = [h for h in answer.hits if h.tracing.key.record_number == "NCIS-1"]
    return hit


def test_a_dispute_filed_while_an_answer_waits_for_its_accounting_reaches_that_answer(index: Index) -> None:
    """The answer read NCIS-1 undisputed and waited to be accounted; the dispute was filed meanwhile and found
    no accounting entry to send a notice by. The answer left without the annotation, and its recipient was
    never told. Now the answer carries it. (On a machine so slow that the search reaches the trail only
    after the dispute is attached, this passes without the race.)"""
    answer, filed = _filed_while_an_answer_waits(index)
    assert _ncis_1(answer).dispute.dispute_id == filed.dispute.dispute_id


def _refiled(index: Index, surname: str = "Whitfield", given: str = "Harold", ssn: str = SSN) -> None:
    submitter = index.client("NCIS-RA-02", "NCIS", [Role.SUBMITTER])
    # NCIS's own record: no audit entry to wait for behind the held trail.
    submitter.upsert(f.person(record="NCIS-1", version=2, surname=surname, given=given, ssn=ssn))


def test_an_answer_waiting_for_its_accounting_does_not_take_the_statement_of_a_person_refiled_meanwhile(
    index: Index,
) -> None:
    """Meanwhile NCIS refiled the record to Ngozi Okafor and she disputed it: the late annotation put her
    statement on Harold's hit (a review of this session's change; batch results had the guard already)."""
    answer, filed = _filed_while_an_answer_waits(
        index, lambda: _refiled(index, surname="Okafor", given="Ngozi", ssn="212-44-8765")
    )
    assert filed.dispute.dispute_id
    harold = _ncis_1(answer)
    assert harold.tracing.subject.name.surname.upper() == "WHITFIELD"  # as read: Harold's record
    assert not harold.dispute.dispute_id


def test_an_answer_waiting_for_its_accounting_takes_the_statement_of_its_person_renamed_meanwhile(
    index: Index,
) -> None:
    """Meanwhile NCIS corrected Harold's given name (the same SSN) and he disputed the record: still his. The
    hit shows only the last four of the SSN, and judged on the hit the record looked another person's, so
    the statement was neither shown nor noticed (a second review of this session's change)."""
    answer, filed = _filed_while_an_answer_waits(index, lambda: _refiled(index, given="Harry"))
    assert not _ncis_1(answer).tracing.subject.identifiers.ssn  # the adjudicator sees the last four only
    assert _ncis_1(answer).dispute.dispute_id == filed.dispute.dispute_id


def test_a_record_deleted_since_its_batch_was_answered_is_not_sent_with_the_results(index: Index) -> None:
    """Its agency withdrew it after the batch ran: fetched weeks later, the results sent it as stored."""
    _load_person(index)
    batcher, batch_id = _answered_batch(index)
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
