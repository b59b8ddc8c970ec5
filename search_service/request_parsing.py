"""A request message that does not parse is refused like any other bad request: INVALID_ARGUMENT naming it.

grpcio parses each request message before any interceptor's handler runs; when parsing fails (a truncated
message, a field of the wrong wire type, a string field that is not UTF-8) it answers INTERNAL itself,
"Exception deserializing request!", and logs a traceback: the client is told the server failed, and the
call is neither authorized nor counted. Here the parser never fails: a message that does not parse becomes
`Malformed`, and the handler, once the caller is authorized (an unknown terminal still hears that first),
refuses it with a field violation on `request`. The bytes are never kept or quoted (they may hold a name).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from indexer.exc import InvalidArgument
from indexer.model import Violation

Parse = Callable[[bytes], Any]


@dataclass(frozen=True, slots=True)
class Malformed:
    """Stands for a request message that did not parse; `message` is its type's full name."""

    message: str


@dataclass(frozen=True, slots=True)
class Oversized:
    """Stands for a request message larger than its method takes (`tolerant`'s `max_bytes`): parsed (the
    protobuf parser's own cost is small), but never read by the edit criteria."""

    message: Any
    max_bytes: int


# A unary call's request (a search, a login, one tracing): a few KiB at most, and 64 KiB leaves room for a
# tracing's 20 aliases and 50 files used. A search of a 4 MiB name was refused only after the edit
# criteria had read it twice, 24-37 ms of the server's CPU each (a misbehaving-terminal review).
UNARY_REQUEST_BYTES = 64 * 1024


def tolerant(parse: Parse | None, max_bytes: int | None = None) -> Parse | None:
    """`parse`, but a message it cannot read comes back as Malformed instead of an exception, and one over
    `max_bytes` as Oversized, unread."""
    if parse is None:
        return None
    owner = getattr(parse, "__self__", None)  # SearchRequest.FromString: the message class
    message = getattr(getattr(owner, "DESCRIPTOR", None), "full_name", "message")

    def parse_or_mark(data: bytes) -> Any:
        try:
            parsed_message = parse(data)
        except Exception:  # DecodeError, or the UnicodeDecodeError of a string that is not UTF-8
            return Malformed(message)
        if max_bytes is not None and len(data) > max_bytes:
            return Oversized(parsed_message, max_bytes)
        return parsed_message

    return parse_or_mark


def refusal(malformed: Malformed) -> InvalidArgument:
    why = (
        f"not a valid {malformed.message}: the bytes do not parse (a truncated message, a field of the "
        "wrong type, or a string that is not UTF-8)"
    )
    return InvalidArgument([Violation("request", why)], "the request message does not parse")


def parsed(request: Any) -> Any:
    """A unary call's request, refused if it did not parse or was too large to."""
    if isinstance(request, Malformed):
        raise refusal(request)
    if isinstance(request, Oversized):
        name = request.message.DESCRIPTOR.full_name
        why = f"too large: a {name} is at most {request.max_bytes // 1024} KiB"
        raise InvalidArgument([Violation(_largest_field(request.message), why)], "the request message is too large")
    return request


def _largest_field(message: Any) -> str:
    """The top-level field that takes most of `message`'s bytes (the one a violation names)."""

    def size(value: Any) -> int:
        if isinstance(value, str | bytes):
            return len(value)
        if hasattr(value, "ByteSize"):
            return int(value.ByteSize())
        if isinstance(value, Iterable):
            return sum(size(item) for item in value)
        return 8

    fields = message.ListFields()
    return max(fields, key=lambda pair: size(pair[1]))[0].name if fields else "request"


def parsed_each(requests: Iterator[Any]) -> Iterator[Any]:
    """A request stream's messages, in order, up to the first that did not parse (refused there: the
    messages before it were handled and answered, so a client knows where the stream broke)."""
    for request in requests:
        yield parsed(request)
