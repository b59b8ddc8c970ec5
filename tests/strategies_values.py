"""Hypothesis strategies for the values of single fields of dcii.v1 messages, valid and hostile: text (huge,
control characters, mixed scripts, combining marks; no lone surrogates), SSNs, numbers at their extremes, open
enums, dates and timestamps out of range, and page tokens with forgeries of them; values with meaning for
particular fields (`_specialised`); and the pools of agencies, record numbers and activities the fuzzer writes
to. Used by tests/strategies_spoil.py and tests/strategies.py.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from google.protobuf import timestamp_pb2
from google.type import date_pb2
from hypothesis import strategies as st

# The agency the fuzzing submitter writes for; tracings of other agencies are refused (PERMISSION_DENIED).
OWN_AGENCY = "NCIS"
# Small pools of record numbers, so that upserts, deletes and completions meet each other.
RECORDS = tuple(f"FZ-{n}" for n in range(12))
OPEN_CASES = tuple(f"FZ-OC-{n}" for n in range(12))
NAC_PENDINGS = tuple(f"FZ-NP-{n}" for n in range(12))
# Impersonal titles have record numbers of their own: a key that held a person's tracing never becomes one.
TITLES = tuple(f"FZ-T-{n}" for n in range(6))
# Activities the admin fuzzer may suspend or revoke (none of them is a client of the fuzzer).
VICTIMS = ("FZ-VICTIM-1", "FZ-VICTIM-2")

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
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
