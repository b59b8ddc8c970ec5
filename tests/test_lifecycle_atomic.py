"""A completion replaces an open case (or a NAC pending) in one step: a reader never sees both or neither."""

from __future__ import annotations

import threading

from dcii.v1 import ingest_pb2, search_pb2
from search_service.accreditation import Role
from tests import factories as f
from tests.support import Index

# Fewer than one page holds, so each answer is one read of the index.
CASES = 90


def _completion(i: int) -> ingest_pb2.IngestRequest:
    request = ingest_pb2.IngestRequest(request_id=f"c{i}")
    request.complete_open_case.open_case.agency = "NCIS"
    request.complete_open_case.open_case.record_number = f"OC-{i}"
    request.complete_open_case.file.CopyFrom(f.person(record=f"F-{i}", version=2))
    return request


def test_readers_see_the_open_case_or_the_file_never_both_or_neither(index: Index) -> None:
    submitter = index.client("NCIS-RA-01", "NCIS", [Role.SUBMITTER])
    reader = index.client("CCF-TERM-01", "ARMY-CCF", [Role.QUERIER])
    assert {r.outcome for r in submitter.upsert(*(f.open_case(record=f"OC-{i}") for i in range(CASES)))} == {
        ingest_pb2.INGEST_OUTCOME_APPLIED
    }
    done = threading.Event()
    problems: list[str] = []
    reads = 0

    def read() -> None:
        nonlocal reads
        while not done.is_set():
            response = reader.search(
                mode=search_pb2.SEARCH_MODE_NAME_ONLY,
                name={"surname": "Whitfield", "given_name": "Harold"},
                page_size=100,
            )
            assert not response.next_page_token
            seen = {h.tracing.key.record_number for h in response.hits}
            reads += 1
            problems.extend(
                f"case {i}: {'both' if both else 'neither'}"
                for i in range(CASES)
                if (both := f"OC-{i}" in seen and f"F-{i}" in seen) or (f"OC-{i}" not in seen and f"F-{i}" not in seen)
            )

    readers = [threading.Thread(target=read) for _ in range(2)]
    for thread in readers:
        thread.start()
    for i in range(CASES):
        assert submitter.push([_completion(i)])[0].outcome == ingest_pb2.INGEST_OUTCOME_APPLIED
    done.set()
    for thread in readers:
        thread.join()
    assert reads >= 3  # the readers really ran during the completions
    assert problems == []
