"""Spoiling dcii.v1 messages by their descriptors (hypothesis): a field path is chosen anywhere in a message
and set to a hostile value of its type (tests/strategies_values.py), so that a field added to a .proto is fuzzed
without touching the strategies; a valid message with a field or two spoiled, an empty one with a handful set,
and fields this contract does not define appended. Used by tests/strategies.py.
"""

from __future__ import annotations

from functools import cache
from typing import Any, TypeVar

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

from tests.strategies_values import _specialised, dates, doubles, hostile_text, int32s, int64s, open_enum, timestamps

M = TypeVar("M", bound=Message)


# ---- spoiling: descriptor-driven mutation of one field ----

Path = tuple[FieldDescriptor, ...]
_DEPTH = 6


@cache
def field_paths(descriptor: Descriptor) -> tuple[Path, ...]:
    """Every field path reachable in a message (Date and Timestamp are leaves), depth-limited."""
    found: list[Path] = []

    def walk(d: Descriptor, prefix: Path) -> None:
        for field in d.fields:
            path = (*prefix, field)
            found.append(path)
            sub = field.message_type
            if sub is not None and sub.full_name not in _LEAF_MESSAGES and len(path) < _DEPTH:
                walk(sub, path)

    walk(descriptor, ())
    return tuple(found)


_LEAF_MESSAGES = frozenset({"google.type.Date", "google.protobuf.Timestamp"})


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    t = field.type
    if t == FieldDescriptor.TYPE_STRING:
        special = _specialised(field.name)
        return hostile_text if special is None else st.one_of(special, hostile_text)
    if t in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32):
        return int32s
    if t in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64):
        return int64s
    if t == FieldDescriptor.TYPE_ENUM:
        return open_enum(field.enum_type)
    if t == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return doubles
    if t == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64)
    raise AssertionError(f"no strategy for field type {t} ({field.full_name})")


def _message_name(field: FieldDescriptor) -> str:
    assert field.message_type is not None
    return str(field.message_type.full_name)


def _leaf_message(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    return dates if _message_name(field) == "google.type.Date" else timestamps


def _many(element: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    """A short list, or a long one of one repeated value (past every MAX_* of the edit criteria)."""
    return st.one_of(st.lists(element, max_size=6), st.builds(lambda v, n: [v] * n, element, st.integers(20, 120)))


def _set(draw: st.DrawFn, message: Message, path: Path) -> None:
    """Set the field at `path` (creating the messages on the way, choosing or adding list elements)."""
    field, rest = path[0], path[1:]
    if not rest:
        if field.message_type is None:
            value = draw(_many(_scalar(field))) if field.is_repeated else draw(_scalar(field))
            if field.is_repeated:
                container = getattr(message, field.name)
                del container[:]
                container.extend(value)
            else:
                setattr(message, field.name, value)
            return
        _set_message(draw, message, field)
        return
    if field.is_repeated:
        container = getattr(message, field.name)
        index = draw(st.integers(0, len(container)))
        target = container[index] if index < len(container) else container.add()
    else:
        target = getattr(message, field.name)
    _set(draw, target, rest)


def _set_message(draw: st.DrawFn, message: Message, field: FieldDescriptor) -> None:
    leaf = _message_name(field) in _LEAF_MESSAGES
    action = draw(st.sampled_from(("clear", "empty", "value", "value") if leaf else ("clear", "empty", "many")))
    if action == "clear" or (action == "many" and not field.is_repeated):
        message.ClearField(field.name)
        if action == "many":  # a singular message: present but empty
            getattr(message, field.name).SetInParent()
        return
    if field.is_repeated:
        container = getattr(message, field.name)
        count = draw(st.integers(1, 3)) if action == "empty" else draw(st.integers(15, 60))
        for _ in range(count):
            item = container.add()
            if leaf:
                item.CopyFrom(draw(_leaf_message(field)))
            elif len(container) > 1 and action == "many":
                item.CopyFrom(container[0])
        return
    message.ClearField(field.name)
    if action == "empty":
        getattr(message, field.name).SetInParent()  # present, every field default (a oneof member chosen, empty)
    else:
        getattr(message, field.name).CopyFrom(draw(_leaf_message(field)))


@st.composite
def spoiled(draw: st.DrawFn, base: st.SearchStrategy[M], most: int = 2) -> M:
    """A message from `base` with up to `most` fields set to hostile values (0 keeps it as it was)."""
    message = draw(base)
    paths = field_paths(message.DESCRIPTOR)
    for _ in range(draw(st.integers(0, most))):
        _set(draw, message, draw(st.sampled_from(paths)))
    return message


def hostile(message_type: type[M], most: int = 8) -> st.SearchStrategy[M]:
    """An empty message with up to `most` fields set to anything the wire allows."""
    if not field_paths(message_type.DESCRIPTOR):
        return st.just(message_type())
    return spoiled(st.builds(message_type), most)


def with_unknown_fields(base: st.SearchStrategy[M]) -> st.SearchStrategy[M]:
    """Sometimes append fields this contract does not define (a newer client): they must be ignored."""

    def append(message: M, extra: list[tuple[int, int, bytes]]) -> M:
        raw = message.SerializeToString() + b"".join(_unknown(number, kind, payload) for number, kind, payload in extra)
        return type(message).FromString(raw)

    field = st.tuples(
        st.integers(100, 18_999) | st.integers(20_000, 2**29 - 1), st.sampled_from((0, 2)), st.binary(max_size=32)
    )
    return st.one_of(base, st.builds(append, base, st.lists(field, min_size=1, max_size=4)))


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _unknown(number: int, kind: int, payload: bytes) -> bytes:
    if kind == 0:
        return _varint(number << 3) + _varint(int.from_bytes(payload[:8] or b"\x00", "little"))
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def requests(valid: st.SearchStrategy[M], message_type: type[M]) -> st.SearchStrategy[M]:
    """About half nearly valid (a valid message, one or two fields spoiled), half hostile."""
    return with_unknown_fields(st.one_of(spoiled(valid), hostile(message_type)))
