"""Hypothesis strategies for the wire messages of dcii.v1: valid, nearly valid and hostile.

Every request strategy is a mix: about half the examples start from a valid message (a factory tracing,
a well-formed query) and spoil one field or two; the rest start from an empty message and set a handful
of fields to anything the wire allows. A field is spoiled by its type (descriptor-driven, so a field
added to a .proto is fuzzed without touching this file): strings get huge, control characters, mixed
scripts and combining marks; integers their extremes; enums numbers no contract defines (proto3 enums
are open); dates month 13, day 0, year 0 or 9999; timestamps outside the representable range; oneofs a
second member or none; repeated fields long lists. Lone surrogates cannot travel in a proto string and
are never generated.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any, TypeVar, cast

from google.protobuf import timestamp_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.type import date_pb2
from hypothesis import strategies as st

from dcii.v1 import admin_pb2, batch_pb2, ingest_pb2, privacy_pb2, search_pb2, tracing_pb2
from tests import factories as f

M = TypeVar("M", bound=Message)

# The agency the fuzzing submitter writes for; tracings of other agencies are refused (PERMISSION_DENIED).
OWN_AGENCY = "NCIS"
# Small pools of record numbers, so that upserts, deletes and completions meet each other.
RECORDS = tuple(f"FZ-{n}" for n in range(12))
OPEN_CASES = tuple(f"FZ-OC-{n}" for n in range(12))
NAC_PENDINGS = tuple(f"FZ-NP-{n}" for n in range(12))
# Activities the admin fuzzer may suspend or revoke (none of them is a client of the fuzzer).
VICTIMS = ("FZ-VICTIM-1", "FZ-VICTIM-2")

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
# Source versions of valid actions: small ones meet the stored versions (UNCHANGED), large ones move on.
VERSIONS = st.one_of(st.integers(1, 50), st.integers(1, 2**40))
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
# What a protobuf Timestamp can hold (0001-01-01 to 9999-12-31).
TIMESTAMP_MIN, TIMESTAMP_MAX = -62135596800, 253402300799

# ---- characters and text ----

LATIN = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
ACCENTED = "éèüñçøåßÆœÐþłŠžİı"
CYRILLIC = "ИвановЖЯщъЁё"
GREEK = "ΠαπαδόπουλοςΩΣς"
CJK = "王李张山田太郎金朴"
ARABIC = "عبداللهمحمدﻻ"
HEBREW_DEVANAGARI = "שלוםनमस्ते"
COMBINING = "\u0301\u0308\u0327\u094d\u064e\u20dd"
EMOJI = "😀🇺🇸👍🏽🧑‍🚀"
# Control, format (zero-width, bidi), private-use and unassigned characters; tab, LF, CR; NUL.
CONTROL = "\x00\x01\x07\x08\t\n\x0b\x0c\r\x1b\x1c\x1f\x7f\x85\u200b\u200d\u200e\u202e\u2028\ufeff\ue000\uffff\U000e0001"
PUNCTUATION = " -'.\u2019,;@/:_|\\\"<>%&*()[]{}=+#$!?~`^"
DIGITS = "0123456789\uff10\uff11\uff12٣"
ALL_CHARACTERS = (
    LATIN + ACCENTED + CYRILLIC + GREEK + CJK + ARABIC + HEBREW_DEVANAGARI + COMBINING + EMOJI + CONTROL + PUNCTUATION
) + DIGITS

NAMES = (
    "Whitfield",
    "Harold",
    "O'Brien",
    "Smith-Jones",
    "de la Cruz",
    "Müller",
    "Иванов",
    "Παπαδόπουλος",
    "王",
    "山田",
    "عبد الله",
    "José",
    "Nguyễn",
    "Jr.",
    "J",
)

ODD_STRINGS = ("   ", "\t\n", "\x00", "-", "A" * 61, "\u0301", "e\u0301", "\u200b", "ﬀ", "Ⅻ", "\uff11\uff12\uff13")

# Text a proto string may carry; no lone surrogates (Cs).
any_unicode = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40)
mixed_text = st.text(alphabet=st.sampled_from(ALL_CHARACTERS), max_size=80)


def _repeat(unit: str, target_bytes: int) -> str:
    """`unit` repeated until the string is about `target_bytes` of UTF-8 (huge, but cheap to generate)."""
    size = max(1, len(unit.encode()))
    return unit * max(1, target_bytes // size)


# Up to ~100 KB: far over every field limit, well under the 4 MB message limit.
huge_text = st.builds(
    _repeat, st.text(alphabet=st.sampled_from(ALL_CHARACTERS), min_size=1, max_size=6), st.integers(200, 100_000)
)

hostile_text: st.SearchStrategy[str] = st.one_of(
    st.just(""),
    st.sampled_from(NAMES),
    mixed_text,
    any_unicode,
    st.sampled_from(ODD_STRINGS),
    huge_text,
)


def _specialised(name: str) -> st.SearchStrategy[str] | None:
    """Values with meaning for particular fields, mixed in with the generic hostile text."""
    agencies = st.sampled_from((OWN_AGENCY, "ncis", " NCIS ", "DSS", "ARMY-CCF", "FBI", "OPM", "XX", "NCIS\x00"))
    table: dict[str, st.SearchStrategy[str]] = {
        "ssn": ssns,
        "agency": agencies,
        "custodian": agencies,
        "agencies_checked": agencies,
        "record_number": st.sampled_from((*RECORDS, *OPEN_CASES, *NAC_PENDINGS, "A" * 41, "a/b:c.d_e-f", "x y")),
        "us_state": st.sampled_from(("VA", "va", "AE", "ZZ", "PR", "V", "VAA")),
        "country": st.sampled_from(("FR", "US", "PR", "ZZ", "de", "F")),
        "nac_type": st.sampled_from(("NACLC", "T5", "t3", "XYZ")),
        "basis_investigation_type": st.sampled_from(("SSBI", "T5R", "ABC")),
        "requester_category": st.sampled_from(("MILITARY", "civilian", "PIRATE")),
        "page_token": page_tokens,
        "activity_id": st.sampled_from((*VICTIMS, "NO-SUCH-ACTIVITY", "")),
        "suffix": st.sampled_from(("JR", "Jr.", "III", "IIII", "J@R", "ESQ", "v")),
    }
    return table.get(name)


# ---- personal identifiers ----

ssns: st.SearchStrategy[str] = st.one_of(
    st.sampled_from(
        (
            "318-52-4471",
            "318524471",
            "318 52 4471",
            "000-12-3456",
            "666-12-3456",
            "912-34-5678",
            "123-00-4567",
            "123-45-0000",
            "078-05-1120",  # the Woolworth wallet number
            "31852447",
            "3185244711",
            "318-52-447X",
            "---",
            "\uff13\uff11\uff18\uff15\uff12\uff14\uff14\uff17\uff11",  # full-width digits
            "318\u201052\u20104471",  # Unicode hyphens
            "٣١٨٥٢٤٤٧١",  # Arabic-Indic digits
        )
    ),
    st.from_regex(r"\A[1-8][0-9]{2}-[0-9]{2}-[0-9]{4}\Z"),
    st.text(alphabet=st.sampled_from(DIGITS + "- "), max_size=14),
)

# ---- numbers ----

int32s = st.one_of(
    st.sampled_from((0, 1, -1, 99, 1899, 1900, 1997, 1998, 2015, 9999, INT32_MIN, INT32_MAX)),
    st.integers(INT32_MIN, INT32_MAX),
)
int64s = st.one_of(
    st.sampled_from((0, 1, 2, -1, 10**15, INT64_MIN, INT64_MAX)),
    st.integers(1, 50),
    st.integers(INT64_MIN, INT64_MAX),
)
doubles = st.one_of(
    st.sampled_from((0.0, -0.0, 0.5, 1.0, 1.0000001, -0.1, 2.0)),
    st.floats(allow_nan=True, allow_infinity=True),
)


def open_enum(enum: Any) -> st.SearchStrategy[int]:
    """A defined number of the enum, or any int32 (proto3 lets unknown numbers through)."""
    known = [value.number for value in enum.values]
    return st.one_of(st.sampled_from(known), st.sampled_from((99, -1, INT32_MIN, INT32_MAX)), st.integers(-5, 50))


# ---- dates and timestamps ----

valid_dates = st.dates(dt.date(1950, 1, 1), dt.date(2020, 12, 31)).map(lambda d: (d.year, d.month, d.day))
partial_dates = st.one_of(
    st.integers(1900, 2020).map(lambda y: (y, 0, 0)), st.tuples(st.integers(1900, 2020), st.integers(1, 12), st.just(0))
)
hostile_dates = st.one_of(
    st.tuples(
        st.sampled_from((0, -1, 1, 1879, 1880, 1899, 1900, 1949, 2999, 9999, 10000, INT32_MIN, INT32_MAX)),
        st.sampled_from((0, 1, 2, 12, 13, -1, INT32_MAX)),
        st.sampled_from((0, 1, 28, 29, 30, 31, 32, -1, INT32_MIN)),
    ),
    st.tuples(int32s, int32s, int32s),
    st.just((2021, 2, 29)),
    st.just((2999, 1, 1)),
    st.just((0, 0, 5)),
)


def _date(parts: tuple[int, int, int]) -> Any:
    return date_pb2.Date(year=parts[0], month=parts[1], day=parts[2])


dates = st.one_of(valid_dates, partial_dates, hostile_dates).map(_date)


def _timestamp(parts: tuple[int, int]) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=parts[0], nanos=parts[1])


RECEIVED = int(dt.datetime(2024, 1, 2, 9, 30, tzinfo=dt.UTC).timestamp())
timestamps = st.tuples(
    st.one_of(
        st.sampled_from(
            (0, RECEIVED, TIMESTAMP_MIN, TIMESTAMP_MAX, TIMESTAMP_MIN - 1, TIMESTAMP_MAX + 1, -1, 4102444800)
        ),
        st.integers(TIMESTAMP_MIN, TIMESTAMP_MAX),
        st.integers(INT64_MIN, INT64_MAX),
    ),
    st.one_of(st.just(0), st.sampled_from((999_999_999, 1_000_000_000, -1, INT32_MIN, INT32_MAX)), int32s),
).map(_timestamp)

# ---- page tokens: what the index issues, and forgeries of it ----


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


_token_ints = st.one_of(
    st.sampled_from((0, 1, -1, INT64_MAX, INT64_MAX + 1, INT64_MIN, 10**30, -(10**30))), st.integers(0, 10**6)
)
page_tokens: st.SearchStrategy[str] = st.one_of(
    st.just(""),
    st.text(alphabet=st.sampled_from(LATIN + DIGITS + "-_=+/"), max_size=40),  # base64-ish garbage
    any_unicode,
    st.builds(
        lambda g, i, a: _b64(f"{g}|{i}|{a}"), st.sampled_from(("WHITFIELD", "", "|", "É")), _token_ints, _token_ints
    ),
    st.builds(lambda i: _b64(f"t|{i}"), _token_ints),
    st.builds(lambda i: _b64(f"r|{i}"), _token_ints),
    st.builds(_b64, any_unicode),
    huge_text,
)

# ---- valid messages ----


def tracing_kinds(agency: str, record: str, version: int) -> dict[str, Callable[[], tracing_pb2.Tracing]]:
    def clearance() -> tracing_pb2.Tracing:
        t = f.person(agency, record, version)
        c = t.clearance
        c.granted_on.year, c.granted_on.month, c.granted_on.day = 2019, 3, 4
        c.eligibility_level = tracing_pb2.CLEARANCE_LEVEL_TOP_SECRET
        c.access_level = tracing_pb2.CLEARANCE_LEVEL_SECRET
        c.basis_investigation_type = "T5"
        c.subject_category = tracing_pb2.SUBJECT_CATEGORY_MILITARY
        c.files_used.extend(["F-1", "F-2"])
        return t

    def impersonal() -> tracing_pb2.Tracing:
        t = tracing_pb2.Tracing(source_version=version)
        t.key.agency, t.key.record_number = agency, record
        t.impersonal_title.title = "ACME DEFENSE WIDGETS INC"
        t.impersonal_title.kind = tracing_pb2.IMPERSONAL_TITLE_KIND_ORGANIZATION
        t.impersonal_title.custodian, t.impersonal_title.file_number = agency, f"T-{record}"
        t.impersonal_title.year_indexed = 1990
        return t

    return {
        "file": lambda: f.person(agency, record, version),
        "open_case": lambda: f.open_case(agency, record, version),
        "nac_pending": lambda: f.nac_pending(agency, record, version),
        "nac_history": lambda: f.nac_history(agency, record, version),
        "clearance": clearance,
        "impersonal_title": impersonal,
    }


@st.composite
def valid_tracings(draw: st.DrawFn, kind: str | None = None) -> tracing_pb2.Tracing:
    kinds = tracing_kinds(OWN_AGENCY, draw(st.sampled_from(RECORDS)), draw(VERSIONS))
    tracing = kinds[kind or draw(st.sampled_from(sorted(kinds)))]()
    if tracing.HasField("subject") and draw(st.booleans()):
        name = tracing.subject.name
        name.surname, name.given_name = draw(st.sampled_from(NAMES)), draw(st.sampled_from(NAMES))
    return tracing


@st.composite
def valid_ingest_requests(draw: st.DrawFn) -> ingest_pb2.IngestRequest:
    request = ingest_pb2.IngestRequest(request_id=draw(st.text(LATIN + DIGITS, max_size=12)))
    action = draw(st.sampled_from(("upsert", "upsert", "delete", "complete_open_case", "complete_nac_pending")))
    if action == "upsert":
        request.upsert.CopyFrom(draw(valid_tracings()))
    elif action == "delete":
        request.delete.CopyFrom(draw(valid_deletes()))
    elif action == "complete_open_case":
        request.complete_open_case.CopyFrom(draw(valid_open_case_completions()))
    else:
        request.complete_nac_pending.CopyFrom(draw(valid_nac_completions()))
    return request


@st.composite
def valid_deletes(draw: st.DrawFn) -> ingest_pb2.DeleteTracing:
    request = ingest_pb2.DeleteTracing(
        source_version=draw(VERSIONS), reason=draw(st.sampled_from(("", "DENIED", "ENTERED_IN_ERROR")))
    )
    request.key.agency = OWN_AGENCY
    request.key.record_number = draw(st.sampled_from((*RECORDS, *OPEN_CASES, *NAC_PENDINGS)))
    return request


@st.composite
def valid_open_case_completions(draw: st.DrawFn) -> ingest_pb2.CompleteOpenCase:
    request = ingest_pb2.CompleteOpenCase()
    request.open_case.agency, request.open_case.record_number = OWN_AGENCY, draw(st.sampled_from(OPEN_CASES))
    request.file.CopyFrom(draw(valid_tracings("file")))
    return request


@st.composite
def valid_nac_completions(draw: st.DrawFn) -> ingest_pb2.CompleteNacPending:
    request = ingest_pb2.CompleteNacPending()
    request.nac_pending.agency, request.nac_pending.record_number = OWN_AGENCY, draw(st.sampled_from(NAC_PENDINGS))
    request.nac_history.CopyFrom(draw(valid_tracings("nac_history")))
    return request


@st.composite
def valid_searches(draw: st.DrawFn) -> search_pb2.SearchRequest:
    purposes = [p.number for p in search_pb2.Purpose.DESCRIPTOR.values if p.number]
    request = search_pb2.SearchRequest()
    request.purpose = cast(Any, draw(st.sampled_from(purposes)))
    surname, given = draw(st.sampled_from(("Whitfield", *NAMES))), draw(st.sampled_from(("Harold", *NAMES)))
    shape = draw(st.sampled_from(("exact", "name_only", "nonstandard", "fuzzy", "pid", "title", "title_prefix")))
    if shape == "exact":
        request.mode = search_pb2.SEARCH_MODE_EXACT
        request.name.surname, request.name.given_name = surname, given
        request.identifiers.ssn = "318-52-4471"
    elif shape == "name_only":
        request.mode = search_pb2.SEARCH_MODE_NAME_ONLY
        request.name.surname, request.name.given_name = surname, given
    elif shape == "nonstandard":
        request.mode = search_pb2.SEARCH_MODE_NONSTANDARD
        request.name.surname = surname
    elif shape == "fuzzy":
        request.mode = search_pb2.SEARCH_MODE_FUZZY
        request.name.surname, request.name.given_name = surname, given
    elif shape == "pid":
        request.mode = search_pb2.SEARCH_MODE_PID_QUALIFIED
        request.name.surname = surname
        request.identifiers.date_of_birth.year, request.identifiers.date_of_birth.month = 1971, 4
    else:
        request.mode = search_pb2.SEARCH_MODE_NAME_ONLY if shape == "title" else search_pb2.SEARCH_MODE_NONSTANDARD
        request.title = "ACME DEFENSE WIDGETS INC" if shape == "title" else "ACME"
    request.page_size = draw(st.sampled_from((0, 1, 5, 100)))
    if draw(st.booleans()):
        request.types.append(
            cast(Any, draw(st.sampled_from([t.number for t in tracing_pb2.TracingType.DESCRIPTOR.values][1:])))
        )
    return request


@st.composite
def valid_access_requests(draw: st.DrawFn) -> privacy_pb2.AccessRequest:
    request = privacy_pb2.AccessRequest(
        request_number=f"PA-{draw(st.integers(1, 40))}", ssn="318-52-4471", withhold_law_enforcement=draw(st.booleans())
    )
    request.name.surname, request.name.given_name = "Whitfield", "Harold"
    return request


@st.composite
def valid_disputes(draw: st.DrawFn) -> privacy_pb2.FileDisputeRequest:
    request = privacy_pb2.FileDisputeRequest(
        statement_location="PRIVACY OFFICE FILE 12", summary="The subject disputes it"
    )
    request.tracing.agency, request.tracing.record_number = OWN_AGENCY, draw(st.sampled_from(RECORDS))
    return request


@st.composite
def valid_privacy_requests(draw: st.DrawFn) -> privacy_pb2.PrivacyRequest:
    request = privacy_pb2.PrivacyRequest(
        request_number=f"PR-{draw(st.integers(1, 10**9))}", kind=cast(Any, draw(st.sampled_from((1, 2))))
    )
    request.received_at.seconds = RECEIVED + draw(st.integers(0, 10**7))
    return request


@st.composite
def valid_status_changes(draw: st.DrawFn) -> admin_pb2.SetActivityStatusRequest:
    return admin_pb2.SetActivityStatusRequest(
        activity_id=draw(st.sampled_from(VICTIMS)), status=cast(Any, draw(st.sampled_from((1, 2, 3))))
    )


@st.composite
def valid_batches(draw: st.DrawFn) -> batch_pb2.SubmitBatchRequest:
    request = batch_pb2.SubmitBatchRequest(label=draw(st.sampled_from(("", "nightly"))))
    for i in range(draw(st.integers(1, 4))):
        request.queries.add(query_id=f"q{i}").query.CopyFrom(draw(valid_searches()))
    return request


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


# ---- the request strategies, one per RPC ----

ingest_requests = requests(valid_ingest_requests(), ingest_pb2.IngestRequest)
ingest_streams = st.lists(ingest_requests, min_size=0, max_size=12)
delete_requests = requests(valid_deletes(), ingest_pb2.DeleteTracing)
open_case_completions = requests(valid_open_case_completions(), ingest_pb2.CompleteOpenCase)
nac_completions = requests(valid_nac_completions(), ingest_pb2.CompleteNacPending)
search_requests = requests(valid_searches(), search_pb2.SearchRequest)
login_requests = requests(
    st.builds(
        admin_pb2.LoginRequest, account_code=st.just("fz-login-op"), password=st.text(LATIN, min_size=12, max_size=20)
    ),
    admin_pb2.LoginRequest,
)
logout_requests = with_unknown_fields(st.builds(admin_pb2.LogoutRequest))
list_activities_requests = with_unknown_fields(st.builds(admin_pb2.ListActivitiesRequest))
status_changes = requests(valid_status_changes(), admin_pb2.SetActivityStatusRequest)
access_requests = requests(valid_access_requests(), privacy_pb2.AccessRequest)
dispute_requests = requests(valid_disputes(), privacy_pb2.FileDisputeRequest)
privacy_requests = requests(valid_privacy_requests(), privacy_pb2.PrivacyRequest)
list_privacy_requests = with_unknown_fields(
    st.builds(privacy_pb2.ListPrivacyRequestsRequest, overdue_only=st.booleans())
)
batch_submissions = st.lists(requests(valid_batches(), batch_pb2.SubmitBatchRequest), min_size=0, max_size=3)
batch_ids = with_unknown_fields(
    st.builds(batch_pb2.GetBatchRequest, batch_id=st.one_of(hostile_text, st.uuids().map(lambda u: u.hex)))
)


def walk_strings(message: Message) -> Iterator[tuple[str, str]]:
    """(field name, value) of every string set anywhere in a message."""
    for field, value in message.ListFields():
        if field.message_type is not None:
            for item in value if field.is_repeated else [value]:
                yield from walk_strings(item)
        elif field.type == FieldDescriptor.TYPE_STRING:
            for item in value if field.is_repeated else [value]:
                yield field.name, item
