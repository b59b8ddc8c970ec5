"""The one place where the project's exceptions become gRPC statuses.

Bad requests carry google.rpc.BadRequest field violations in the status details, so a client learns
which field failed and why. Unexpected exceptions become a bare INTERNAL: their text could carry PII; the
log has their type, the method and the stack (dcii.cli.logs writes no exception's text).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import NoReturn

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from indexer.exc import DciiError, InvalidArgument
from indexer.model import Violation
from indexer.store.sqlite_ops import StoreDiskFull

log = logging.getLogger(__name__)


# A status travels in the response trailers, which clients cap (8 KB by default): keep it well under.
MAX_MESSAGE_CHARS = 300
MAX_VIOLATIONS = 50


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def status_for(error: DciiError) -> status_pb2.Status:
    message = _clip(error.message, MAX_MESSAGE_CHARS)
    if isinstance(error, InvalidArgument) and len(error.violations) > MAX_VIOLATIONS:
        message += f" (the first {MAX_VIOLATIONS} of {len(error.violations)} violations are listed)"
    status = status_pb2.Status(code=getattr(code_pb2, error.code), message=message)
    if isinstance(error, InvalidArgument):
        shown = error.violations[:MAX_VIOLATIONS]
        detail = any_pb2.Any()
        detail.Pack(bad_request(tuple(Violation(_clip(v.field, 120), _clip(v.description, 200)) for v in shown)))
        status.details.append(detail)
    return status


def bad_request(violations: tuple[Violation, ...]) -> error_details_pb2.BadRequest:
    return error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description) for v in violations
        ]
    )


# The server's own failures (the trail, the registry or the store cannot be written, and every answer is
# refused, failing closed; the store's disk full) are logged, at most once a minute for each message: with no
# metrics port nothing else would say so.
_FAILURE_LOG_INTERVAL = 60.0
_failures_logged: dict[str, float] = {}


def _log_failure(error: DciiError) -> None:
    now = time.monotonic()
    if now - _failures_logged.get(error.message, -_FAILURE_LOG_INTERVAL) >= _FAILURE_LOG_INTERVAL:
        if len(_failures_logged) > 1000:
            _failures_logged.clear()
        _failures_logged[error.message] = now
        # The project's own messages name no person (they name files, types and rules).
        log.error("failing closed", extra={"code": error.code, "reason": error.message})


# The method of the call each handler thread serves, for the log line of an unexpected error: gRPC's server
# context does not say (its call details are empty by the time a handler runs).
_serving = threading.local()


def serving(method: str) -> None:
    """Notes the method of the call this thread now serves (search_service.auth, as it authorizes each call:
    a call keeps its thread from start to end in gRPC's synchronous server; an interceptor of its own for
    this cost every call a wrapper)."""
    _serving.method = method


def abort(context: grpc.ServicerContext, error: BaseException) -> NoReturn:
    if isinstance(error, DciiError):
        if error.code in ("UNAVAILABLE", "INTERNAL") or isinstance(error, StoreDiskFull):
            _log_failure(error)
        context.abort_with_status(rpc_status.to_status(status_for(error)))
    # The type and the stack (exc_info: dcii.cli.logs writes no exception's text, which may quote a name or
    # an SSN) and the method: "unexpected error" with a type alone said neither which call nor where.
    log.error("unexpected error", exc_info=error, extra={"method": getattr(_serving, "method", "")})
    context.abort(grpc.StatusCode.INTERNAL, "internal error")
    raise AssertionError("unreachable")  # context.abort always raises


def field_violations(error: grpc.RpcError) -> list[tuple[str, str]]:
    """Client side: the (field, description) pairs of an INVALID_ARGUMENT status."""
    status = rpc_status.from_call(error)
    found: list[tuple[str, str]] = []
    for detail in [] if status is None else status.details:
        request = error_details_pb2.BadRequest()
        if detail.Unpack(request):
            found += [(v.field, v.description) for v in request.field_violations]
    return found
