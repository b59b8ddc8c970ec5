"""The domain model: tracings, subjects, identifiers (DOMAIN.md "Tracings").

Plain frozen dataclasses. Construction never validates: a model may hold anything a client sent,
and `indexer.edit_criteria.check_tracing` decides whether it may be stored (and returns it cleaned).
Field names follow the wire contract (proto/dcii/v1/tracing.proto) so that a violation's field path
reads the same in both.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum


class TracingType(StrEnum):
    FILE = "FILE"
    OPEN_CASE = "OPEN_CASE"
    NAC_PENDING = "NAC_PENDING"
    NAC_HISTORY = "NAC_HISTORY"
    CLEARANCE = "CLEARANCE"
    IMPERSONAL_TITLE = "IMPERSONAL_TITLE"


class SubjectRole(StrEnum):
    SUBJECT = "SUBJECT"
    VICTIM = "VICTIM"
    CROSS_REFERENCE = "CROSS_REFERENCE"


class NacOutcome(StrEnum):
    FAVORABLE = "FAVORABLE"
    INCOMPLETE = "INCOMPLETE"


class ClearanceLevel(StrEnum):
    NONE = "NONE"
    CONFIDENTIAL = "CONFIDENTIAL"
    SECRET = "SECRET"
    TOP_SECRET = "TOP_SECRET"
    TOP_SECRET_SCI = "TOP_SECRET_SCI"


class SubjectCategory(StrEnum):
    MILITARY = "MILITARY"
    CIVILIAN = "CIVILIAN"
    CONTRACTOR = "CONTRACTOR"
    FOREIGN_NATIONAL = "FOREIGN_NATIONAL"
    OTHER = "OTHER"


class ImpersonalTitleKind(StrEnum):
    ORGANIZATION = "ORGANIZATION"
    CONTRACTOR_LOCATION = "CONTRACTOR_LOCATION"
    INCIDENT = "INCIDENT"


@dataclass(frozen=True, slots=True)
class PartialDate:
    """A date that may be partial: year only (month = day = 0) or year and month (day = 0)."""

    year: int
    month: int = 0
    day: int = 0

    @property
    def is_full(self) -> bool:
        return self.month != 0 and self.day != 0

    def iso(self) -> str:
        """1970, 1970-05 or 1970-05-12."""
        if self.month == 0:
            return f"{self.year:04d}"
        if self.day == 0:
            return f"{self.year:04d}-{self.month:02d}"
        return f"{self.year:04d}-{self.month:02d}-{self.day:02d}"

    @classmethod
    def parse(cls, text: str) -> PartialDate:
        """Parse YYYY, YYYY-MM or YYYY-MM-DD. Raises ValueError on any other shape (not on range)."""
        parts = text.strip().split("-")
        if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
            raise ValueError("expected YYYY, YYYY-MM or YYYY-MM-DD")
        numbers = [int(p) for p in parts] + [0] * (3 - len(parts))
        return cls(numbers[0], numbers[1], numbers[2])

    @classmethod
    def from_date(cls, value: dt.date) -> PartialDate:
        return cls(value.year, value.month, value.day)

    def to_date(self) -> dt.date:
        """The full date. Raises ValueError when partial or not a real date."""
        if not self.is_full:
            raise ValueError("partial date")
        return dt.date(self.year, self.month, self.day)


@dataclass(frozen=True, slots=True)
class PersonName:
    surname: str
    given_name: str = ""
    middle_name: str = ""
    suffix: str = ""


@dataclass(frozen=True, slots=True)
class PlaceOfBirth:
    us_state: str = ""
    country: str = ""
    city: str = ""

    def code(self) -> str:
        """US-<state> or the country code: the comparable part of a place of birth."""
        return f"US-{self.us_state}" if self.us_state else self.country


@dataclass(frozen=True, slots=True)
class Identifiers:
    ssn: str = ""
    date_of_birth: PartialDate | None = None
    place_of_birth: PlaceOfBirth | None = None

    @property
    def is_empty(self) -> bool:
        return not self.ssn and self.date_of_birth is None and self.place_of_birth is None


@dataclass(frozen=True, slots=True)
class Subject:
    name: PersonName
    aliases: tuple[PersonName, ...] = ()
    role: SubjectRole = SubjectRole.SUBJECT
    identifiers: Identifiers = field(default_factory=Identifiers)

    def all_names(self) -> tuple[PersonName, ...]:
        return (self.name, *self.aliases)


@dataclass(frozen=True, slots=True, order=True)
class TracingKey:
    agency: str
    record_number: str

    def __str__(self) -> str:
        return f"{self.agency}/{self.record_number}"


@dataclass(frozen=True, slots=True)
class FileDetails:
    custodian: str
    year_indexed: int
    file_number: str


@dataclass(frozen=True, slots=True)
class OpenCaseDetails:
    location: str
    year_indexed: int
    investigative_number: str


@dataclass(frozen=True, slots=True)
class NacPendingDetails:
    case_number: str
    requester_category: str
    nac_type: str


@dataclass(frozen=True, slots=True)
class NacHistoryDetails:
    completed_on: PartialDate | None
    agencies_checked: tuple[str, ...]
    outcome: NacOutcome | None
    nac_type: str = ""


@dataclass(frozen=True, slots=True)
class ClearanceDetails:
    granted_on: PartialDate | None
    eligibility_level: ClearanceLevel | None
    access_level: ClearanceLevel | None
    access_granted_on: PartialDate | None = None
    basis_investigation_type: str = ""
    basis_investigation_date: PartialDate | None = None
    subject_category: SubjectCategory | None = None
    separation_date: PartialDate | None = None
    files_used: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ImpersonalTitleDetails:
    title: str
    kind: ImpersonalTitleKind | None
    custodian: str
    file_number: str
    year_indexed: int


Details = (
    FileDetails | OpenCaseDetails | NacPendingDetails | NacHistoryDetails | ClearanceDetails | ImpersonalTitleDetails
)

DETAILS_TYPE: dict[type, TracingType] = {
    FileDetails: TracingType.FILE,
    OpenCaseDetails: TracingType.OPEN_CASE,
    NacPendingDetails: TracingType.NAC_PENDING,
    NacHistoryDetails: TracingType.NAC_HISTORY,
    ClearanceDetails: TracingType.CLEARANCE,
    ImpersonalTitleDetails: TracingType.IMPERSONAL_TITLE,
}

# The wire name of each type's oneof field, used in violation paths ("tracing.file.custodian").
DETAILS_FIELD: dict[TracingType, str] = {
    TracingType.FILE: "file",
    TracingType.OPEN_CASE: "open_case",
    TracingType.NAC_PENDING: "nac_pending",
    TracingType.NAC_HISTORY: "nac_history",
    TracingType.CLEARANCE: "clearance",
    TracingType.IMPERSONAL_TITLE: "impersonal_title",
}


@dataclass(frozen=True, slots=True)
class Tracing:
    key: TracingKey
    source_version: int
    subject: Subject | None
    details: Details | None

    @property
    def type(self) -> TracingType | None:
        return None if self.details is None else DETAILS_TYPE[type(self.details)]


@dataclass(frozen=True, slots=True)
class Dispute:
    """A statement of dispute attached to a tracing by the privacy office (seed 003)."""

    dispute_id: str
    statement_location: str
    summary: str
    filed_at: dt.datetime


@dataclass(frozen=True, slots=True)
class StoredTracing:
    """A tracing as the index holds it."""

    tracing: Tracing
    indexed_at: dt.datetime
    dispute: Dispute | None = None


@dataclass(frozen=True, slots=True)
class Violation:
    """One field that failed the edit criteria: its path (wire names) and why."""

    field: str
    description: str
