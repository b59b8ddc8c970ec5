"""A request message that does not parse is refused like any other bad request: INVALID_ARGUMENT naming it.

grpcio parses each request message before any interceptor's handler runs; when parsing fails (a truncated
message, a field of the wrong wire type, a string field that is not UTF-8) it answers INTERNAL itself,
"Exception deserializing request!", and logs a traceback: the client is told the server failed, and the
call is neither authorized nor counted. Here the parser never fails: a message that does not parse becomes
`Malformed`, and the handler, once the caller is authorized (an unknown terminal still hears that first),
refuses it with a field violation on `request`. The bytes are never kept or quoted (they may hold a name).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from indexer.exc import InvalidArgument
from indexer.model import Violation

Parse = Callable[[bytes], Any]


@dataclass(frozen=True, slots=True)
class Malformed:
    """Stands for a request message that did not parse; `message` is its type's full name."""

    message: str


def tolerant(parse: Parse | None) -> Parse | None:
    """`parse`, but a message it cannot read comes back as Malformed instead of an exception."""
    if parse is None:
        return None
    owner = getattr(parse, "__self__", None)  # SearchRequest.FromString: the message class
    message = getattr(getattr(owner, "DESCRIPTOR", None), "full_name", "message")

    def parse_or_mark(data: bytes) -> Any:
        try:
            return parse(data)
        except Exception:  # DecodeError, or the UnicodeDecodeError of a string that is not UTF-8
            return Malformed(message)

    return parse_or_mark


def refusal(malformed: Malformed) -> InvalidArgument:
    why = (
        f"not a valid {malformed.message}: the bytes do not parse (a truncated message, a field of the "
        "wrong type, or a string that is not UTF-8)"
    )
    return InvalidArgument([Violation("request", why)], "the request message does not parse")


def parsed(request: Any) -> Any:
    """A unary call's request, refused if it did not parse."""
    if isinstance(request, Malformed):
        raise refusal(request)
    return request


def parsed_each(requests: Iterator[Any]) -> Iterator[Any]:
    """A request stream's messages, in order, up to the first that did not parse (refused there: the
    messages before it were handled and answered, so a client knows where the stream broke)."""
    for request in requests:
        yield parsed(request)
