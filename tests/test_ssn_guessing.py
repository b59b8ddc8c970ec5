"""The cap on guessing an SSN through the search (search_service.ssn_probes): a querier who sees a hit's last
four digits walked the other five through PID_QUALIFIED's "one digit wrong" and had the full SSN in 3,899
queries, 9 accounted (a security review). On a real server over TLS: ten guesses with one ending are
answered, the eleventh refused and recorded; the record's own SSN, another ending, another activity and the
privacy office are not capped; a batch's guesses are refused in its results."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from dcii.v1 import search_pb2
from search_service.accounting import AuditLog, load_or_create_key
from search_service.accreditation import Purpose, Role
from search_service.batch_worker import BatchSettings
from search_service.ssn_probes import DEFAULT_LIMIT, WINDOW, SsnProbes, SsnProbesRefused
from tests import factories as f
from tests.support import Client, Index, make_index
from tests.test_batch import DONE, _query, _results, _submit, _wait, start

PID = search_pb2.SEARCH_MODE_PID_QUALIFIED
EXACT = search_pb2.SEARCH_MODE_EXACT
TRUE_SSN = "318-52-4471"


def _ask(client: Client, ssn: str, mode: search_pb2.SearchMode.ValueType = PID, **fields: object) -> int:
    answer = client.search(
        mode=mode,
        name={"surname": "Whitfield", "given_name": "Harold"},
        identifiers={"ssn": ssn, "date_of_birth": {"year": 1971, "month": 4, "day": 12}},
        **fields,
    )
    return len(answer.hits)


def _guesses(count: int, ending: str = "4471") -> list[str]:
    """SSNs ending in `ending` whose first five are not the record's (nor one digit from them)."""
    return [f"{600 + n:03d}-{10 + n:02d}-{ending}" for n in range(count)]


def test_a_querier_is_stopped_after_ten_guesses_with_one_ending(index: Index) -> None:
    index.client("NCIS-SUB", "NCIS", [Role.SUBMITTER]).upsert(f.person(record="NCIS-1", ssn=TRUE_SSN))
    terminal = index.client("CCF-1", "ARMY-CCF", [Role.QUERIER])
    near = "318-25-4471"  # two digits swapped: a hit that says so, and a guess all the same
    for _ in range(DEFAULT_LIMIT + 2):  # the record's own SSN is no guess, however often asked
        assert _ask(terminal, TRUE_SSN) == 1 and _ask(terminal, TRUE_SSN, EXACT) == 1
    assert _ask(terminal, near) == 1
    for ssn in _guesses(DEFAULT_LIMIT - 1):
        assert _ask(terminal, ssn) == 0
    with pytest.raises(grpc.RpcError) as refused:
        _ask(terminal, "700-20-4471", EXACT)  # EXACT tells a guess too: the same cap
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "different SSNs ending in the same four digits" in str(refused.value.details())
    assert "4471" not in str(refused.value.details())
    with pytest.raises(grpc.RpcError):
        _ask(terminal, TRUE_SSN)  # past the cap the ending is closed to the activity, its own SSN too
    assert _ask(terminal, "700-20-9999") == 0  # another ending: its own count
    audit = AuditLog(index.data_dir / "audit.db", key=load_or_create_key(index.data_dir / "audit.key"))
    try:
        refusals = [e for e in audit.events("REFUSAL") if "SSNs ending" in e.detail["reason"]]
    finally:
        audit.close()
    assert len(refusals) == 2 and all(e.actor == "CCF-1/ccf-1-op" for e in refusals)
    other = index.client("CCF-2", "ARMY-CCF", [Role.QUERIER])  # another activity: its own count
    assert _ask(other, "700-20-4471") == 0
    office = index.client(
        "DSS-PRIVACY", "DSS", [Role.PRIVACY_OFFICER, Role.QUERIER], purposes=[Purpose.PRIVACY_ACT_REQUEST]
    )
    for ssn in _guesses(DEFAULT_LIMIT + 2):  # it sees full SSNs anyway: nothing to guess
        _ask(office, ssn, purpose=search_pb2.PURPOSE_PRIVACY_ACT_REQUEST)


def test_a_guess_ages_out_after_a_day_and_nothing_is_held_in_clear() -> None:
    now = [1000.0]
    probes = SsnProbes(limit=2, clock=lambda: now[0])
    assert probes.take("CCF-1", "600104471") and probes.take("CCF-1", "601114471")
    assert not probes.take("CCF-1", "600104471")  # one already counted: asked again, not a new guess
    with pytest.raises(SsnProbesRefused):
        probes.take("CCF-1", "602124471")
    now[0] += WINDOW / 2
    probes.take("CCF-1", "600104471")  # asked again at noon: its day starts again
    now[0] += WINDOW / 2
    assert probes.take("CCF-1", "602124471")  # the other one is a day old: room for one
    probes.give_back("CCF-1", "602124471")  # its answer held that SSN: no guess
    assert probes.take("CCF-1", "603134471")
    held = repr(probes._buckets)
    assert "4471" not in held and "CCF" not in held


def test_guesses_sent_together_are_counted_before_any_is_answered(index: Index) -> None:
    """The count was made after each answer: 16 guesses sent at once all passed a check made before any was
    counted, and 11-13 were answered (a review)."""
    index.client("NCIS-SUB", "NCIS", [Role.SUBMITTER]).upsert(f.person(record="NCIS-1", ssn=TRUE_SSN))
    terminal = index.client("CCF-1", "ARMY-CCF", [Role.QUERIER])
    together = threading.Barrier(16)

    def one(ssn: str) -> bool:
        together.wait()
        try:
            _ask(terminal, ssn)
            return True
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.PERMISSION_DENIED, error
            return False

    with ThreadPoolExecutor(16) as pool:
        answered = list(pool.map(one, _guesses(16)))
    assert answered.count(True) == DEFAULT_LIMIT


def test_a_batchs_guesses_past_the_cap_are_refused_in_its_results(tmp_path: Path) -> None:
    index = make_index(tmp_path)
    start(index, BatchSettings(duty=1.0, process=False))
    try:
        index.client("NCIS-SUB", "NCIS", [Role.SUBMITTER]).upsert(f.person(record="NCIS-1", ssn=TRUE_SSN))
        client = index.client("CCF-B", "ARMY-CCF", [Role.QUERIER, Role.BATCH], purposes=[Purpose.SECURITY_CLEARANCE])
        harold = {"surname": "Whitfield", "given_name": "Harold"}
        guesses = _guesses(DEFAULT_LIMIT + 2)
        online, batched = guesses[: DEFAULT_LIMIT - 2], guesses[DEFAULT_LIMIT - 2 :]
        for ssn in online:  # the worker answers in the server's process: one count with the online path's
            assert _ask(client, ssn) == 0
        queries = [_query(f"q{n}", PID, name=harold, identifiers={"ssn": ssn}) for n, ssn in enumerate(batched)]
        submitted = _submit(client, queries)
        assert _wait(client, submitted.batch_id).state == DONE
        results = _results(client, submitted.batch_id)
        assert [bool(r.violations) for r in results] == [False, False, True, True]
        assert results[-1].violations[0].field.endswith("identifiers.ssn")
        assert "different SSNs ending in the same four digits" in results[-1].violations[0].description
    finally:
        index.stop()
