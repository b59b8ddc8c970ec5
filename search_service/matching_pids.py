"""Identifier comparison for the fuzzy matcher: SSN, date of birth and place of birth by structure.

Identifiers are never compared as strings. Each pair of values is put in one *level* (exact, two
adjacent digits swapped, one digit wrong, ...) and each level carries a Fellegi-Sunter weight,
log2(m/u), per matcher version (`PidWeights`, tabulated in docs/MATCHERS.md).

Everything here is vectorised: the candidates' identifiers are compiled once into digit matrices
(`PidColumns`), and a batch of Q queries is compared with N candidates in a handful of numpy
operations that give a (Q, N) matrix of level codes per identifier. The explanation (`Feature`) is
built only for the hits a caller keeps.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum, StrEnum

import numpy as np
import numpy.typing as npt

from indexer.codec_head import identifiers_from_fields
from indexer.match_keys import full_ssn
from indexer.model import Identifiers, PartialDate
from search_service.matching_levels import UNUSED_WEIGHT, select_levels

Bools = npt.NDArray[np.bool_]
Codes = npt.NDArray[np.int8]
Floats = npt.NDArray[np.float64]


class Agreement(StrEnum):
    EXACT = "EXACT"
    PARTIAL = "PARTIAL"
    DISAGREE = "DISAGREE"
    MISSING = "MISSING"


@dataclass(frozen=True, slots=True)
class Feature:
    """One compared field: how it agreed, a similarity in [0, 1], and a sentence for the adjudicator."""

    name: str
    agreement: Agreement
    similarity: float
    detail: str


@dataclass(frozen=True, slots=True)
class LevelSpec:
    """One comparison level: its agreement class, nominal similarity and explanation. Its weight, log2(m/u)
    in bits, belongs to a matcher version (`PidWeights`)."""

    agreement: Agreement
    similarity: float
    detail: str


class SsnLevel(IntEnum):
    MISSING = 0
    EXACT = 1
    TRANSPOSED = 2
    ONE_DIGIT = 3
    LAST_FOUR = 4
    LAST_FOUR_DIFFERENT = 5
    DISAGREE = 6


class DobLevel(IntEnum):
    MISSING = 0
    EXACT = 1
    DAY_MONTH_SWAPPED = 2
    TRANSPOSED = 3
    ONE_DIGIT = 4
    YEAR_OFF_BY_ONE = 5
    PARTIAL_YEAR_MONTH = 6
    PARTIAL_YEAR = 7
    DISAGREE = 8
    # From fuzzy-3: neither the query nor the record gives a date of birth (weighs only where a version
    # uses it; elsewhere such a pair is MISSING).
    BOTH_MISSING = 9


class PobLevel(IntEnum):
    MISSING = 0
    EXACT = 1
    DISAGREE = 2


_E, _P, _D, _M = Agreement.EXACT, Agreement.PARTIAL, Agreement.DISAGREE, Agreement.MISSING

SSN_LEVELS: dict[SsnLevel, LevelSpec] = {
    SsnLevel.MISSING: LevelSpec(_M, 0.0, "given by only one of the query and the record, or by neither"),
    SsnLevel.EXACT: LevelSpec(_E, 1.0, "same SSN"),
    SsnLevel.TRANSPOSED: LevelSpec(_P, 0.8, "two adjacent digits swapped"),
    SsnLevel.ONE_DIGIT: LevelSpec(_P, 0.8, "one digit wrong"),
    SsnLevel.LAST_FOUR: LevelSpec(_P, 0.5, "last four digits agree (only the last four known)"),
    SsnLevel.LAST_FOUR_DIFFERENT: LevelSpec(_D, 0.0, "last four digits differ"),
    SsnLevel.DISAGREE: LevelSpec(_D, 0.0, "different SSN"),
}

DOB_LEVELS: dict[DobLevel, LevelSpec] = {
    DobLevel.MISSING: LevelSpec(_M, 0.0, "given by only one of the query and the record, or by neither"),
    DobLevel.EXACT: LevelSpec(_E, 1.0, "same date of birth"),
    DobLevel.DAY_MONTH_SWAPPED: LevelSpec(_P, 0.8, "day and month swapped"),
    DobLevel.TRANSPOSED: LevelSpec(_P, 0.8, "two adjacent digits swapped"),
    DobLevel.ONE_DIGIT: LevelSpec(_P, 0.8, "one digit wrong"),
    DobLevel.YEAR_OFF_BY_ONE: LevelSpec(_P, 0.7, "year one off, same month and day"),
    DobLevel.PARTIAL_YEAR_MONTH: LevelSpec(_P, 0.6, "agrees to the month (partial date)"),
    DobLevel.PARTIAL_YEAR: LevelSpec(_P, 0.4, "agrees on the year (partial date)"),
    DobLevel.DISAGREE: LevelSpec(_D, 0.0, "different date of birth"),
    DobLevel.BOTH_MISSING: LevelSpec(_M, 0.0, "absent in both the query and the record"),
}

POB_LEVELS: dict[PobLevel, LevelSpec] = {
    PobLevel.MISSING: LevelSpec(_M, 0.0, "given by only one of the query and the record, or by neither"),
    PobLevel.EXACT: LevelSpec(_E, 1.0, "same place of birth"),
    PobLevel.DISAGREE: LevelSpec(_D, 0.0, "different place of birth"),
}


@dataclass(frozen=True, eq=False)
class PidWeights:
    """The identifier half of one matcher version: a weight in bits per level of each identifier."""

    ssn: dict[SsnLevel, float]
    dob: dict[DobLevel, float]
    pob: dict[PobLevel, float]

    def __post_init__(self) -> None:
        for levels, weights in ((SsnLevel, self.ssn), (DobLevel, self.dob), (PobLevel, self.pob)):
            if set(weights) != set(levels):
                raise ValueError(f"{levels.__name__}: a weight for every level")

    @functools.cached_property
    def arrays(self) -> tuple[Floats, Floats, Floats]:
        """The weights as arrays indexed by level code: SSN, DOB, place of birth."""
        return _table(self.ssn), _table(self.dob), _table(self.pob)


def _table(weights: dict[SsnLevel, float] | dict[DobLevel, float] | dict[PobLevel, float]) -> Floats:
    table = np.zeros(len(weights), dtype=np.float64)
    for level, weight in weights.items():
        table[int(level)] = weight
    return table


_ZERO = ord("0")
_SSN_NONE, _SSN_FULL, _SSN_LAST4 = 0, 1, 2


@dataclass(frozen=True, slots=True)
class PidColumns:
    """The identifiers of many records as arrays, one row per record."""

    ssn: npt.NDArray[np.uint8]  # (n, 9) digits; a last-four-only SSN is right-aligned
    ssn_kind: npt.NDArray[np.int8]  # 0 none, 1 full, 2 last four only
    dob: npt.NDArray[np.uint8]  # (n, 8) digits of YYYYMMDD, zeros where partial
    year: npt.NDArray[np.int16]  # 0 when there is no date of birth
    month: npt.NDArray[np.int8]  # 0 when unknown
    day: npt.NDArray[np.int8]
    pob: npt.NDArray[np.int64]  # hash of the place code, 0 when unknown

    def __len__(self) -> int:
        return len(self.ssn_kind)


def _ssn_text(ssn: str) -> tuple[int, str]:
    # A full SSN is read exactly as the blocking keys read it (`full_ssn`): identifier-first retrieval
    # leaves out what its keys call conflicting, so the two readings must be one.
    full = full_ssn(ssn)
    if full:
        return _SSN_FULL, full
    digits = "".join(c for c in ssn if c.isdigit())
    if len(digits) == 4:
        return _SSN_LAST4, "00000" + digits
    return _SSN_NONE, ""


def ssn_conflicts(query: str, record: str) -> bool:
    """Whether the record's SSN conflicts with the query's (`SsnLevel.DISAGREE` in every matcher
    version): both full, and neither equal, nor one digit apart, nor two adjacent digits swapped."""
    query_kind, q = _ssn_text(query)
    record_kind, r = _ssn_text(record)
    if query_kind != _SSN_FULL or record_kind != _SSN_FULL:
        return False
    wrong = [i for i in range(9) if q[i] != r[i]]
    if len(wrong) <= 1:
        return False
    first, second = wrong[0], wrong[-1]
    return not (len(wrong) == 2 and second == first + 1 and q[first] == r[second] and q[second] == r[first])


_NO_SSN = (_SSN_NONE, b"\0" * 9)
_NO_DOB = b"\0" * 8
# One record's identifiers packed: (SSN kind, 9 SSN digit bytes, 8 YYYYMMDD digit bytes, place id).
Packed = tuple[int, bytes, bytes, int]
NO_PIDS: Packed = (_SSN_NONE, _NO_SSN[1], _NO_DOB, 0)
_PIDS: dict[Identifiers, Packed] = {}
_PIDS_BY_TEXT: dict[tuple[str, str, str], Packed] = {}


def _pack(ids: Identifiers) -> Packed:
    kind, text = _ssn_text(ids.ssn) if ids.ssn else (_SSN_NONE, "")
    ssn = bytes(ord(c) - _ZERO for c in text) if kind != _SSN_NONE else _NO_SSN[1]
    dob, dob_bytes = ids.date_of_birth, _NO_DOB
    if dob is not None and 0 < dob.year <= 9999:
        month = dob.month if 0 < dob.month <= 12 else 0
        day = dob.day if month and 0 < dob.day <= 31 else 0
        dob_bytes = bytes(ord(c) - _ZERO for c in f"{dob.year:04d}{month:02d}{day:02d}")
    code = ids.place_of_birth.code() if ids.place_of_birth is not None else ""
    place = hash(code) if code else 0
    return kind, ssn, dob_bytes, place


def packed(ids: Identifiers | None) -> Packed:
    """One record's identifiers packed (NO_PIDS for a record without any), cached."""
    if ids is None:
        return NO_PIDS
    found = _PIDS.get(ids)
    if found is None:
        if len(_PIDS) >= 200_000:
            _PIDS.clear()
        found = _PIDS[ids] = _pack(ids)
    return found


def packed_from_fields(ssn: str, dob: str, pob: str) -> Packed:
    """`packed` of a stored head's identifier fields (indexer.codec_head.head_fields), cached by their text:
    a ranked query compiles dozens to thousands of heads, and building and hashing an Identifiers for each
    was most of compiling their identifiers."""
    key = (ssn, dob, pob)
    found = _PIDS_BY_TEXT.get(key)
    if found is None:
        if len(_PIDS_BY_TEXT) >= 200_000:
            _PIDS_BY_TEXT.clear()
        found = _PIDS_BY_TEXT[key] = _pack(identifiers_from_fields(ssn, dob, pob))
    return found


def compile_pids(records: Sequence[Identifiers | None]) -> PidColumns:
    """Compile identifiers (None for a record without any) into `PidColumns`."""
    return compile_packed([packed(ids) for ids in records])


def compile_packed(records: Sequence[Packed]) -> PidColumns:
    """Compile packed identifiers (`packed`, `packed_from_fields`) into `PidColumns`."""
    n = len(records)
    ssn = np.frombuffer(b"".join([p[1] for p in records]), dtype=np.uint8).reshape(n, 9)
    dob = np.frombuffer(b"".join([p[2] for p in records]), dtype=np.uint8).reshape(n, 8)
    wide = dob.astype(np.int16)
    return PidColumns(
        ssn=ssn,
        ssn_kind=np.array([p[0] for p in records], dtype=np.int8),
        dob=dob,
        year=wide[:, 0] * 1000 + wide[:, 1] * 100 + wide[:, 2] * 10 + wide[:, 3],
        month=(wide[:, 4] * 10 + wide[:, 5]).astype(np.int8),
        day=(wide[:, 6] * 10 + wide[:, 7]).astype(np.int8),
        pob=np.array([p[3] for p in records], dtype=np.int64),
    )


# Level codes as numpy scalars, made once (numpy probes an IntEnum for array interfaces, slowly).
_SSN_MISSING, _DOB_MISSING = np.int8(int(SsnLevel.MISSING)), np.int8(int(DobLevel.MISSING))
_DOB_BOTH_MISSING, _POB_MISSING = np.int8(int(DobLevel.BOTH_MISSING)), np.int8(int(PobLevel.MISSING))


def _digit_structure(q: npt.NDArray[np.uint8], c: npt.NDArray[np.uint8]) -> tuple[Bools, Bools, Bools]:
    """(equal, one digit wrong, two adjacent digits swapped) for (Q, 1, w) against (1, N, w)."""
    diff = q != c
    wrong = diff.sum(axis=-1)
    swapped = (diff[..., :-1] & diff[..., 1:] & (q[..., :-1] == c[..., 1:]) & (q[..., 1:] == c[..., :-1])).any(
        axis=-1
    ) & (wrong == 2)
    return wrong == 0, wrong == 1, swapped


def ssn_levels(q: PidColumns, c: PidColumns, weights: Floats) -> Codes:
    """(Q, N) SSN levels."""
    if not q.ssn_kind.any():  # no query gives one (name + DOB): MISSING throughout, as worked out below
        return np.full((len(q), len(c)), int(SsnLevel.MISSING), dtype=np.int8)
    qk, ck = q.ssn_kind[:, None], c.ssn_kind[None, :]
    qd, cd = q.ssn[:, None, :], c.ssn[None, :, :]
    full = (qk == _SSN_FULL) & (ck == _SSN_FULL)
    equal, one, swapped = _digit_structure(qd, cd)
    last4 = ((qk == _SSN_LAST4) & (ck != _SSN_NONE)) | ((ck == _SSN_LAST4) & (qk != _SSN_NONE))
    last4_equal = (qd[..., 5:] == cd[..., 5:]).all(axis=-1)
    missing = (qk == _SSN_NONE) | (ck == _SSN_NONE)
    conditions = [
        (SsnLevel.EXACT, full & equal),
        (SsnLevel.TRANSPOSED, full & swapped),
        (SsnLevel.ONE_DIGIT, full & one),
        (SsnLevel.LAST_FOUR, last4 & last4_equal),
        (SsnLevel.LAST_FOUR_DIFFERENT, last4 & ~last4_equal),
    ]
    levels = select_levels(conditions, weights, int(SsnLevel.DISAGREE))
    np.copyto(levels, _SSN_MISSING, where=missing)
    return levels


def dob_levels(q: PidColumns, c: PidColumns, weights: Floats) -> Codes:
    """(Q, N) date-of-birth levels."""
    qy, cy = q.year[:, None], c.year[None, :]
    qm, cm = q.month[:, None], c.month[None, :]
    qd, cd = q.day[:, None], c.day[None, :]
    q_full, c_full = (qm > 0) & (qd > 0), (cm > 0) & (cd > 0)
    full = q_full & c_full
    equal, one, swapped = _digit_structure(q.dob[:, None, :], c.dob[None, :, :])
    same_year = qy == cy
    same_month = qm == cm
    # A partial date agrees at its own precision: the coarser of the two decides.
    month_known = (qm > 0) & (cm > 0)
    conditions = [
        (DobLevel.EXACT, full & equal),
        (DobLevel.DAY_MONTH_SWAPPED, full & same_year & (qm == cd) & (qd == cm) & (qm != qd)),
        (DobLevel.TRANSPOSED, full & swapped),
        (DobLevel.ONE_DIGIT, full & one),
        (DobLevel.YEAR_OFF_BY_ONE, full & (np.abs(qy - cy) == 1) & same_month & (qd == cd)),
        (DobLevel.PARTIAL_YEAR_MONTH, ~full & month_known & same_year & same_month),
        (DobLevel.PARTIAL_YEAR, ~full & ~month_known & same_year),
    ]
    levels = select_levels(conditions, weights, int(DobLevel.DISAGREE))
    np.copyto(levels, _DOB_MISSING, where=(qy == 0) | (cy == 0))
    if weights[DobLevel.BOTH_MISSING] > UNUSED_WEIGHT and not q.year.all():
        np.copyto(levels, _DOB_BOTH_MISSING, where=(qy == 0) & (cy == 0))
    return levels


def pob_levels(q: PidColumns, c: PidColumns) -> Codes:
    """(Q, N) place-of-birth levels."""
    if not q.pob.any():  # no query gives one: MISSING throughout, as worked out below
        return np.full((len(q), len(c)), int(PobLevel.MISSING), dtype=np.int8)
    qp, cp = q.pob[:, None], c.pob[None, :]
    levels = np.where(qp == cp, np.int8(int(PobLevel.EXACT)), np.int8(int(PobLevel.DISAGREE))).astype(np.int8)
    np.copyto(levels, _POB_MISSING, where=(qp == 0) | (cp == 0))
    return levels


def _last4(ssn: str) -> str:
    return f"***-**-{ssn[-4:]}" if len(ssn) >= 4 else ssn


def _date(value: PartialDate | None) -> str:
    return value.iso() if value is not None else "none"


def ssn_feature(level: int, query: Identifiers, record: Identifiers | None) -> Feature:
    spec = SSN_LEVELS[SsnLevel(level)]
    detail = spec.detail
    if level != SsnLevel.MISSING and record is not None:
        # PPI minimisation: an explanation never repeats a full SSN.
        detail = f"{detail} (query {_last4(query.ssn)}, record {_last4(record.ssn)})"
    return Feature("ssn", spec.agreement, spec.similarity, detail)


def dob_feature(level: int, query: Identifiers, record: Identifiers | None) -> Feature:
    spec = DOB_LEVELS[DobLevel(level)]
    detail = spec.detail
    if level not in (DobLevel.MISSING, DobLevel.BOTH_MISSING) and record is not None:
        detail = f"{detail} (query {_date(query.date_of_birth)}, record {_date(record.date_of_birth)})"
    return Feature("date_of_birth", spec.agreement, spec.similarity, detail)


def pob_feature(level: int, query: Identifiers, record: Identifiers | None) -> Feature:
    spec = POB_LEVELS[PobLevel(level)]
    detail = spec.detail
    if level != PobLevel.MISSING and record is not None and query.place_of_birth and record.place_of_birth:
        q, r = query.place_of_birth, record.place_of_birth
        detail = f"{detail} (query {q.code()}, record {r.code()})"
        if level == PobLevel.EXACT and q.city and r.city and q.city.upper() != r.city.upper():
            detail += f"; cities differ ({q.city} / {r.city})"
    return Feature("place_of_birth", spec.agreement, spec.similarity, detail)
