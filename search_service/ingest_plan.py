"""One ingest action to a store operation, or a refusal: the checks of IngestService that depend on the
action alone (edit criteria, ownership), so they can run anywhere — in the handler's thread, or in an
ingest worker process (search_service.ingest_pool).

Worker processes send their plans back as `marshal` bytes (`encode_plans` / `decode_plans`): plain
tuples of strings and numbers, which the server's process takes in at ~1 µs a tracing, where a pickled
Tracing model would cost ~18 µs of the one process that also runs the single writer.
"""

from __future__ import annotations

import datetime as dt
import marshal
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dcii.v1 import ingest_pb2, tracing_pb2
from indexer import model as m
from indexer.edit_criteria import check_key, check_tracing
from indexer.exc import InvalidArgument
from indexer.match_keys import KEYS_VERSION
from indexer.store.base import SUPERSEDED_PREFIX, Delete, Replace, Upsert, WriteOp
from indexer.store.prepared import PreparedTracing, as_prepared
from search_service.convert import key_in, output_only_violations, tracing_in


@dataclass(frozen=True, slots=True)
class Refusal:
    outcome: str  # an IngestOutcome name: REJECTED or PERMISSION_DENIED
    violations: tuple[m.Violation, ...]


Plan = WriteOp | Refusal


def _check_owner(agency: str, key: m.TracingKey, field: str) -> Refusal | None:
    if key.agency != agency:
        return Refusal(
            "PERMISSION_DENIED",
            (m.Violation(field, f"only the owning agency may change its tracings; this activity writes for {agency}"),),
        )
    return None


def _refused(error: InvalidArgument) -> Refusal:
    return Refusal("REJECTED", error.violations)


def _checked(new: tracing_pb2.Tracing, today: dt.date, prefix: str) -> m.Tracing:
    """The edit criteria of the tracing, and of what the wire has that the model does not take."""
    wire = output_only_violations(new.subject.identifiers, f"{prefix}.subject.identifiers")
    try:
        tracing = check_tracing(tracing_in(new), today=today, prefix=prefix)
    except InvalidArgument as error:
        raise InvalidArgument([*error.violations, *wire]) from None
    if wire:
        raise InvalidArgument(wire)
    return tracing


def _completion(
    agency: str,
    today: dt.date,
    old: tracing_pb2.TracingKey,
    new: tracing_pb2.Tracing,
    field: str,
    old_type: m.TracingType,
    new_type: m.TracingType,
) -> Plan:
    old_field = f"{field.rsplit('.', 1)[0]}.{old_type.value.lower()}"
    violations: list[m.Violation] = []
    try:
        old_key = check_key(key_in(old), old_field)
    except InvalidArgument as error:
        violations += error.violations
    try:
        tracing = _checked(new, today, field)
    except InvalidArgument as error:
        violations += error.violations
    if violations:
        return Refusal("REJECTED", tuple(violations))
    if tracing.type is not new_type:
        return Refusal("REJECTED", (m.Violation(field, f"must be a {new_type.value} tracing"),))
    return (
        _check_owner(agency, old_key, f"{old_field}.agency")
        or _check_owner(agency, tracing.key, f"{field}.key.agency")
        or Replace(old_key, old_type, tracing)
    )


def _delete(agency: str, delete: ingest_pb2.DeleteTracing, field: str) -> Plan:
    violations: list[m.Violation] = []
    key = key_in(delete.key)
    try:
        key = check_key(key, f"{field}.key")
    except InvalidArgument as error:
        violations += error.violations
    if delete.source_version < 1:
        violations.append(m.Violation(f"{field}.source_version", "must be at least 1"))
    if len(delete.reason) > 200:
        violations.append(m.Violation(f"{field}.reason", "at most 200 characters"))
    elif delete.reason.strip().upper().startswith(SUPERSEDED_PREFIX.upper()):  # the index's own, read back
        violations.append(m.Violation(f"{field}.reason", "reasons beginning SUPERSEDED are the index's own"))
    if violations:
        return Refusal("REJECTED", tuple(violations))
    return _check_owner(agency, key, f"{field}.key.agency") or Delete(
        key, delete.source_version, delete.reason.strip() or "DELETED BY OWNING AGENCY"
    )


def plan_action(agency: str, today: dt.date, request: ingest_pb2.IngestRequest) -> Plan:
    """What to store for one action of an activity writing for `agency`, or why not."""
    action = request.WhichOneof("action")
    if action == "upsert":
        try:
            tracing = _checked(request.upsert, today, "upsert")
        except InvalidArgument as error:
            return _refused(error)
        return _check_owner(agency, tracing.key, "upsert.key.agency") or Upsert(tracing)
    if action == "delete":
        return _delete(agency, request.delete, "delete")
    if action == "complete_open_case":
        c = request.complete_open_case
        return _completion(
            agency, today, c.open_case, c.file, "complete_open_case.file", m.TracingType.OPEN_CASE, m.TracingType.FILE
        )
    if action == "complete_nac_pending":
        n = request.complete_nac_pending
        return _completion(
            agency,
            today,
            n.nac_pending,
            n.nac_history,
            "complete_nac_pending.nac_history",
            m.TracingType.NAC_PENDING,
            m.TracingType.NAC_HISTORY,
        )
    return Refusal(
        "REJECTED",
        (m.Violation("action", "one of upsert, delete, complete_open_case or complete_nac_pending is required"),),
    )


# ---- plans across a process boundary ----


def _encoded(plan: Plan) -> tuple[Any, ...]:
    match plan:
        case Upsert(tracing):
            return ("U", as_prepared(tracing).row())
        case Delete(key, version, reason):
            return ("D", key.agency, key.record_number, version, reason)
        case Replace(old, expected_type, new):
            return ("C", old.agency, old.record_number, expected_type.value, as_prepared(new).row())
        case Refusal(outcome, violations):
            return ("R", outcome, tuple((v.field, v.description) for v in violations))
    raise AssertionError(plan)


# What the rows mean: their layout (bump the first number whenever `_encoded` or PreparedTracing.row
# changes) and the match keys' version. A worker started from other code than the server's (the code on
# disk upgraded while the server ran; spawned workers import it afresh) says so, and its rows are not used.
ROWS_FORMAT = (1, KEYS_VERSION)


class OtherCode(Exception):
    """A worker's rows are of another ROWS_FORMAT than this process's."""


def plan_encoded(agency: str, today_iso: str, requests: Sequence[bytes]) -> bytes:
    """The worker processes' task: each serialized IngestRequest planned, its tracing prepared for the
    store (indexer.store.prepared), all of it as marshal bytes for `decode_plans`."""
    today = dt.date.fromisoformat(today_iso)
    parse = ingest_pb2.IngestRequest.FromString
    return marshal.dumps((ROWS_FORMAT, [_encoded(plan_action(agency, today, parse(request))) for request in requests]))


def decode_plans(data: bytes) -> list[Plan]:
    """The plans `plan_encoded` sent (OtherCode: they are of another format, from other code)."""
    found, items = marshal.loads(data)  # noqa: S302 - our own worker processes' output, never a client's bytes
    if tuple(found) != ROWS_FORMAT:
        raise OtherCode(f"ingest rows of format {tuple(found)}, this server reads {ROWS_FORMAT}")
    plans: list[Plan] = []
    for item in items:
        kind = item[0]
        if kind == "U":
            plans.append(Upsert(PreparedTracing.from_row(item[1])))
        elif kind == "D":
            plans.append(Delete(m.TracingKey(item[1], item[2]), item[3], item[4]))
        elif kind == "C":
            old = m.TracingKey(item[1], item[2])
            plans.append(Replace(old, m.TracingType(item[3]), PreparedTracing.from_row(item[4])))
        else:
            plans.append(Refusal(item[1], tuple(m.Violation(f, d) for f, d in item[2])))
    return plans
