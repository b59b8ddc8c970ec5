"""The one exception hierarchy of the project.

Each class names the status a caller should see (`code`, a gRPC status name kept as text so that the
indexer stays free of gRPC); search_service.errors maps it to the wire in one place. Messages never
carry a name, SSN or date of birth: they reach logs.
"""

from __future__ import annotations

from collections.abc import Sequence

from indexer.model import Violation


class DciiError(Exception):
    code = "INTERNAL"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(DciiError):
    """A request failed the edit criteria; `violations` says which field and why."""

    code = "INVALID_ARGUMENT"

    def __init__(self, violations: Sequence[Violation], message: str = "request failed the edit criteria") -> None:
        super().__init__(message)
        self.violations = tuple(violations)


class Unauthenticated(DciiError):
    code = "UNAUTHENTICATED"


class PermissionDenied(DciiError):
    code = "PERMISSION_DENIED"


class NotFound(DciiError):
    code = "NOT_FOUND"


class FailedPrecondition(DciiError):
    code = "FAILED_PRECONDITION"


class ResourceExhausted(DciiError):
    code = "RESOURCE_EXHAUSTED"


class Unavailable(DciiError):
    """The store or the audit trail cannot be written: fail closed."""

    code = "UNAVAILABLE"
