"""One write group of the OpenSearch writer, several callers (indexer.store.opensearch_writer): a bulk request is
not atomic, and a real cluster refuses single items of it when one shard of several is unavailable, running the
others. The proxy of tests/opensearch_proxy.py refuses such items. Each caller hears of its own operations: a
statement of dispute that landed is filed, whatever another caller's completion in its group met; a write
planned on another caller's failed one fails with it; a statement waits for the next group behind a write of
its own record."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from indexer.exc import Unavailable
from indexer.model import TracingType
from indexer.store.base import Replace, Upsert, WriteOutcome, WriteResult
from indexer.store.opensearch import OpenSearchStore
from indexer.store.opensearch_schema import tid_for
from tests import factories as f
from tests.opensearch_proxy import FailingProxy
from tests.store_backends import _dispute, _live
from tests.test_opensearch_write_steps import open_cluster, through_proxy
from tests.test_store_lifecycle import _checked, file_tracing

__all__ = ["open_cluster", "through_proxy"]  # fixtures, bound here by name so pytest finds them


def _grouped(store: OpenSearchStore, proxy: FailingProxy, calls: list[Callable[[], object]]) -> list[object]:
    """Run `calls` in order, each on a thread of its own, while the writer is held on a write of its own (its
    bulk request waits at the proxy): they queue behind it, and go out as one write group. Each call's result,
    or the exception it raised."""
    held = threading.Event()

    def hold_the_writer() -> None:
        held.set()
        time.sleep(0.8)

    proxy.before[1] = hold_the_writer
    outcomes: list[object] = [None] * len(calls)

    def run(at: int, call: Callable[[], object]) -> None:
        try:
            outcomes[at] = call()
        except Exception as error:  # the caller's answer: what it raised
            outcomes[at] = error

    threads = [threading.Thread(target=lambda: store.write([Upsert(file_tracing("HOLD"))], actor="NCIS"))]
    threads[0].start()
    assert held.wait(10)
    for at, call in enumerate(calls):
        threads.append(threading.Thread(target=run, args=(at, call)))
        threads[-1].start()
        time.sleep(0.1)  # queued in this order
    for thread in threads:
        thread.join(30)
    return outcomes


def _sent_together(proxy: FailingProxy, *doc_ids: str) -> bool:
    return any(set(doc_ids) <= {doc_id for _, _, doc_id in items} for items in proxy.sent)


def test_a_statement_grouped_with_a_completion_that_fails_is_reported_filed(
    through_proxy: tuple[OpenSearchStore, OpenSearchStore, FailingProxy],
) -> None:
    """The privacy office's filing and a connector's completion go out in one write group; the completion's
    tombstone of the open case is refused (its shard is down). The statement landed in the group's second
    request: FileDispute was told UNAVAILABLE all the same, recorded no filing and queued no notice, while
    every later recipient was shown the statement. Now it is told the statement is filed; the completion
    alone fails, and its replay finishes it."""
    direct, faulty, proxy = through_proxy
    disputed, case = file_tracing("NCIS-F-1"), _checked(f.open_case(record="OC-1"))
    direct.write([Upsert(disputed), Upsert(case)], actor="NCIS")
    completion = Replace(case.key, TracingType.OPEN_CASE, _checked(f.person("NCIS", "F-9", 2)))
    case_id = str(tid_for(case.key))
    proxy.fail_items = lambda op, meta: op == "index" and meta.get("_id") == case_id  # only its tombstone
    filed, completed = _grouped(
        faulty,
        proxy,
        [lambda: faulty.set_dispute(disputed.key, _dispute(1)), lambda: faulty.write([completion], actor="NCIS")],
    )
    assert _sent_together(proxy, str(tid_for(disputed.key)), str(tid_for(completion.new.key))), "not one group"
    assert filed is True
    assert isinstance(completed, Unavailable)
    shown = direct.get(disputed.key)
    assert shown is not None and shown.dispute == _dispute(1)
    proxy.fail_items = None
    assert faulty.write([completion], actor="NCIS")[0].outcome is WriteOutcome.APPLIED
    assert _live(direct) == {"NCIS-F-1", "F-9", "HOLD"}
    assert [(r.key.record_number, r.source_version) for r in direct.deletions()] == [("OC-1", 2)]
    assert direct.check_integrity() == []


def test_a_write_whose_shard_fails_does_not_fail_another_connectors_write_in_its_group(
    through_proxy: tuple[OpenSearchStore, OpenSearchStore, FailingProxy],
) -> None:
    """Two connectors' upserts in one group, one refused by its shard: the other landed and is APPLIED (it
    was told UNAVAILABLE and sent again, UNCHANGED)."""
    _, faulty, proxy = through_proxy
    refused, landed = file_tracing("R-1"), file_tracing("L-1")
    refused_id = str(tid_for(refused.key))
    proxy.fail_items = lambda op, meta: meta.get("_id") == refused_id
    first, second = _grouped(
        faulty,
        proxy,
        [lambda: faulty.write([Upsert(refused)], actor="NCIS"), lambda: faulty.write([Upsert(landed)], actor="DSS")],
    )
    assert _sent_together(proxy, refused_id, str(tid_for(landed.key))), "not one group"
    assert isinstance(first, Unavailable)
    assert second == [WriteResult(WriteOutcome.APPLIED, 1)]
    proxy.fail_items = None
    assert faulty.write([Upsert(refused)], actor="NCIS") == [WriteResult(WriteOutcome.APPLIED, 1)]


def test_a_statement_waits_for_the_next_group_behind_a_write_of_its_own_record(
    through_proxy: tuple[OpenSearchStore, OpenSearchStore, FailingProxy],
) -> None:
    """An update of the record and a statement of dispute on it, queued in that order. Planned in one group,
    the statement was planned on what the update would leave; the update failed, the statement landed, and
    its caller could only be told UNAVAILABLE for a statement shown to every later recipient. It goes in the
    next group instead, planned on what the cluster holds."""
    direct, faulty, proxy = through_proxy
    record = file_tracing("NCIS-F-1")
    direct.write([Upsert(record)], actor="NCIS")
    record_id = str(tid_for(record.key))
    proxy.fail_items = lambda op, meta: meta.get("_index") == direct.names.tracings and meta.get("_id") == record_id
    update = _checked(f.person("NCIS", "NCIS-F-1", 2, middle="J"))
    updated, filed = _grouped(
        faulty,
        proxy,
        [lambda: faulty.write([Upsert(update)], actor="NCIS"), lambda: faulty.set_dispute(record.key, _dispute(1))],
    )
    assert isinstance(updated, Unavailable)
    assert filed is True
    shown = direct.get(record.key)
    assert shown is not None and shown.tracing.source_version == 1 and shown.dispute == _dispute(1)
    names = direct.names
    grouped = [{(index, doc_id) for _, index, doc_id in items} for items in proxy.sent]
    assert not any({(names.tracings, record_id), (names.disputes, record_id)} <= items for items in grouped)
    assert direct.check_integrity() == []


def test_a_write_planned_on_another_callers_failed_write_fails_with_it(
    through_proxy: tuple[OpenSearchStore, OpenSearchStore, FailingProxy],
) -> None:
    """Two connectors send the same version of a record in one group, and the first one's item is refused: the
    second, planned on what the first would have written, answered UNCHANGED for a version never stored, and
    its connector sent it no more. It fails too; the resend stores it."""
    _, faulty, proxy = through_proxy
    record = file_tracing("R-1")
    record_id = str(tid_for(record.key))
    proxy.fail_items = lambda op, meta: meta.get("_id") == record_id
    first, second = _grouped(
        faulty,
        proxy,
        [lambda: faulty.write([Upsert(record)], actor="NCIS"), lambda: faulty.write([Upsert(record)], actor="NCIS")],
    )
    assert isinstance(first, Unavailable) and isinstance(second, Unavailable)
    proxy.fail_items = None
    assert faulty.write([Upsert(record)], actor="NCIS") == [WriteResult(WriteOutcome.APPLIED, 1)]
