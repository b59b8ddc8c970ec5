"""The tracings' records in the demo (`indexer.demo`): each type's details, file and record numbers
in the agencies' own styles, and impersonal titles.

Every date is real, in order (basis investigation before grant before access, NAC after age 17...)
and never after `today`; NAC histories are younger than their 15-year retention; impersonal titles
were indexed no later than 1997.
"""

from __future__ import annotations

import datetime as dt
import random as random_module

from indexer.demo_agencies import (
    CLEARANCE_AGENCIES_BY_CATEGORY,
    FILE_AGENCIES,
    FILE_CUSTODIANS,
    IMPERSONAL_AGENCIES,
    INTELLIGENCE_AGENCIES,
    OPEN_CASE_AGENCIES,
    OPEN_CASE_OFFICES,
    RECORD_PREFIX,
    SERVICE_CAF,
    SERVICE_REPOSITORIES,
)
from indexer.demo_draws import Draws, Weighted, add_years
from indexer.demo_people import Person
from indexer.model import (
    ClearanceDetails,
    ClearanceLevel,
    FileDetails,
    ImpersonalTitleDetails,
    ImpersonalTitleKind,
    NacHistoryDetails,
    NacOutcome,
    NacPendingDetails,
    OpenCaseDetails,
    PartialDate,
    SubjectCategory,
    Tracing,
    TracingKey,
)

# Clearance levels lowest first: access is granted at or below the eligibility.
_LEVELS_ORDER = (
    ClearanceLevel.NONE,
    ClearanceLevel.CONFIDENTIAL,
    ClearanceLevel.SECRET,
    ClearanceLevel.TOP_SECRET,
    ClearanceLevel.TOP_SECRET_SCI,
)
_ELIGIBILITY = Weighted(
    [
        (ClearanceLevel.SECRET, 62.0),
        (ClearanceLevel.TOP_SECRET_SCI, 16.0),
        (ClearanceLevel.TOP_SECRET, 15.0),
        (ClearanceLevel.CONFIDENTIAL, 7.0),
    ]
)
_INTELLIGENCE_ELIGIBILITY = Weighted(
    [(ClearanceLevel.TOP_SECRET_SCI, 82.0), (ClearanceLevel.TOP_SECRET, 13.0), (ClearanceLevel.SECRET, 5.0)]
)

# The parts of an NCIS case control number (see file_number).
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_NCIS_OFFICES = ("NFNO", "SDSD", "DCWA", "JXJA", "PHPH", "CLCL", "NWNS", "EFYO")
_LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"

# Impersonal titles (none created after 19 April 1997).
_COMPANY_WORDS = (
    "ACME", "ALLIED", "AMERICAN", "ATLANTIC", "CONTINENTAL", "EAGLE", "FEDERAL", "FRONTIER", "GENERAL",
    "KEYSTONE", "LIBERTY", "MERIDIAN", "NORTHSTAR", "PACIFIC", "PATRIOT", "PIONEER", "SUMMIT", "TRIAD",
    "UNITED", "VANGUARD",
)  # fmt: skip
_COMPANY_TRADES = (
    "AEROSPACE", "AVIONICS", "DEFENSE SYSTEMS", "DYNAMICS", "ELECTRONICS", "ENGINEERING", "MARINE",
    "MUNITIONS", "OPTICS", "RESEARCH", "SYSTEMS", "TECHNOLOGIES",
)  # fmt: skip
_COMPANY_FORMS = ("", " INC", " INC", " CORP", " CO")
_CONTRACTOR_CITIES = (
    "HUNTSVILLE AL", "SAN DIEGO CA", "FORT WORTH TX", "ST LOUIS MO", "SEATTLE WA", "BALTIMORE MD",
    "ARLINGTON VA", "BETHPAGE NY", "MARIETTA GA", "GROTON CT", "BATH ME", "TUCSON AZ",
    "COLORADO SPRINGS CO", "DAYTON OH", "ORLANDO FL", "SUNNYVALE CA", "BURBANK CA", "WICHITA KS",
    "NEWPORT NEWS VA", "PASCAGOULA MS",
)  # fmt: skip
_ORGANIZATION_TYPES = (
    "TRADING COMPANY", "IMPORT EXPORT COMPANY", "FRIENDSHIP ASSOCIATION", "CULTURAL SOCIETY",
    "BENEVOLENT SOCIETY", "SHIPPING AGENCY", "TRAVEL SERVICE", "VETERANS CLUB",
)  # fmt: skip
_INSTALLATIONS = (
    "FORT BRAGG NC", "FORT HOOD TX", "FORT CAMPBELL KY", "FORT ORD CA", "FORT DIX NJ", "CAMP LEJEUNE NC",
    "CAMP PENDLETON CA", "NAVAL STATION NORFOLK VA", "NAVAL AIR STATION PENSACOLA FL", "LACKLAND AFB TX",
    "WRIGHT-PATTERSON AFB OH", "CLARK AB PHILIPPINES", "RAMSTEIN AB GERMANY", "YONGSAN KOREA",
)  # fmt: skip
_INCIDENTS = (
    "INCIDENT", "INCIDENT", "ARMS ROOM LARCENY", "AIRCRAFT MISHAP", "BOMB THREAT", "CLASSIFIED MATERIAL LOSS",
    "SECURITY VIOLATION", "FUEL THEFT", "FIRE",
)  # fmt: skip
_IMPERSONAL_KINDS = Weighted(
    [
        (ImpersonalTitleKind.CONTRACTOR_LOCATION, 40.0),
        (ImpersonalTitleKind.ORGANIZATION, 35.0),
        (ImpersonalTitleKind.INCIDENT, 25.0),
    ]
)
_LAST_IMPERSONAL_YEAR = 1997

_FIRST_FILE_YEAR = 1975
_FIRST_NAC = dt.date(1985, 1, 1)
_FIRST_CLEARANCE = dt.date(1980, 1, 1)
_NAC_RETENTION_YEARS = 15


def _partial(day: dt.date) -> PartialDate:
    return PartialDate(day.year, day.month, day.day)


class RecordGenerator(Draws):
    """Draws each tracing type's details for a person, the record numbers, and impersonal titles."""

    def __init__(self, rng: random_module.Random, today: dt.date) -> None:
        super().__init__(rng, today)
        self.nac_floor = max(_FIRST_NAC, add_years(today, -_NAC_RETENTION_YEARS) + dt.timedelta(days=1))
        self.record_counters: dict[tuple[str, int], int] = {}

    def record_number(self, agency: str, year: int) -> str:
        """The tracing key's record number: consecutive per agency and year from a random start."""
        counter_key = (agency, year)
        number = self.record_counters.get(counter_key)
        number = self.between(1, 2500) if number is None else number + 1
        self.record_counters[counter_key] = number
        return f"{RECORD_PREFIX[agency]}-{year}-{number:06d}"

    def file_number(self, agency: str, year: int) -> str:
        """A file or investigative number in the agency's own style."""
        yy = year % 100
        between = self.between
        if agency == "ARMY-CRC":  # CID report of investigation number
            return f"{between(1, 999):04d}-{yy:02d}-CID{between(1, 999):03d}-{between(1, 99999):05d}"
        if agency == "NCIS":  # case control number
            office = self.choice(_NCIS_OFFICES)
            letters = "".join(self.choice(_LETTERS) for _ in range(3))
            month = self.choice(_MONTHS)
            day = between(1, 28)
            return f"{day:02d}{month}{yy:02d}-{office}-{between(1, 9999):04d}-{between(1, 9)}{letters}"
        if agency == "AFOSI":
            return f"{year}{between(100, 899)}D{between(1, 9999):04d}"
        if agency == "ARMY-IRR":
            return f"D{yy:02d}{between(1, 9999999):07d}"
        if agency == "DSS":
            return f"{yy:02d}{self.choice('PSNQ')}{between(1, 9999999):07d}"
        if agency == "DODIG":
            return f"{year}{between(1, 99999):05d}{self.choice('ABCDEFGH')}"
        if agency == "USCG":
            return f"CGIS-{yy:02d}-{between(1, 99999):05d}"
        return f"{RECORD_PREFIX[agency]}-{year}-{between(1, 99999):05d}"

    # --- details per type ------------------------------------------------------------------------------

    def file(self, person: Person) -> tuple[str, int, FileDetails]:
        agency = FILE_AGENCIES.pick(self.random)
        custodian = agency
        if agency not in FILE_CUSTODIANS or self.random() < 0.10:
            custodian = self.choice([code for code in FILE_CUSTODIANS if code != agency])
        year = self.between(max(_FIRST_FILE_YEAR, person.born.year + 16), self.today.year)
        number = self.file_number(custodian, year)
        person.file_numbers.append(number)
        return agency, year, FileDetails(custodian, year, number)

    def open_case(self, person: Person) -> tuple[str, int, OpenCaseDetails]:
        agency = OPEN_CASE_AGENCIES.pick(self.random)
        this_year = self.today.year
        year = self.between(max(_FIRST_FILE_YEAR, person.born.year + 16, this_year - 3), this_year)
        location = self.choice(OPEN_CASE_OFFICES[agency])
        return agency, year, OpenCaseDetails(location, year, self.file_number(agency, year))

    def nac_agency(self, person: Person) -> str:
        return "DSS" if self.random() < 0.85 else SERVICE_CAF[person.service]

    def nac_type(self, category: SubjectCategory, year: int) -> str:
        random = self.random
        if year >= 2016:
            if category is SubjectCategory.CIVILIAN and random() < 0.35:
                return self.choice(("T1", "T1", "T2", "T4"))
            return self.choice(("T3", "T3", "T3", "T3R", "T5", "T5R"))
        if category is SubjectCategory.MILITARY and year < 1999:
            return "ENTNAC" if random() < 0.8 else "NAC"
        if category is SubjectCategory.CIVILIAN:
            return self.choice(("NACI", "ANACI", "SSBI"))
        return self.choice(("NACLC", "NACLC", "NACLC", "SSBI", "SSBI-PR"))

    def nac_pending(self, person: Person) -> tuple[str, int, NacPendingDetails]:
        year = self.today.year - (1 if self.random() < 0.15 else 0)
        category = person.category.value if self.random() < 0.92 else "OTHER"
        case_number = f"N{year % 100:02d}-{self.between(1, 9999999):07d}"
        nac_type = self.nac_type(person.category, self.today.year)
        return self.nac_agency(person), year, NacPendingDetails(case_number, category, nac_type)

    def nac_history(self, person: Person) -> tuple[str, int, NacHistoryDetails]:
        random = self.random
        low = max(self.nac_floor, add_years(person.born, 17))
        completed = self.day_between(low, self.today)
        checked = ["FBI"]
        if random() < 0.85:
            checked.append("OPM")
        if random() < 0.9:
            checked.append("DSS")
        checked.append(self.choice(SERVICE_REPOSITORIES[person.service]))
        if random() < 0.1:
            checked.append("DODIG")
        outcome = NacOutcome.FAVORABLE if random() < 0.95 else NacOutcome.INCOMPLETE
        details = NacHistoryDetails(
            _partial(completed), tuple(checked), outcome, self.nac_type(person.category, completed.year)
        )
        return self.nac_agency(person), completed.year, details

    def clearance(self, person: Person) -> tuple[str, int, ClearanceDetails]:
        random = self.random
        agency = CLEARANCE_AGENCIES_BY_CATEGORY[person.category].pick(random) or SERVICE_CAF[person.service]
        levels = _INTELLIGENCE_ELIGIBILITY if agency in INTELLIGENCE_AGENCIES else _ELIGIBILITY
        eligibility = levels.pick(random)
        rank = _LEVELS_ORDER.index(eligibility)
        access = eligibility if random() < 0.8 else _LEVELS_ORDER[self.between(0, rank - 1)]
        # Clearances live long; lean towards recent grants (the later of two draws).
        low = max(_FIRST_CLEARANCE, add_years(person.born, 18)).toordinal()
        granted_ordinal = max(self.between(low, self.today_ordinal), self.between(low, self.today_ordinal))
        granted = dt.date.fromordinal(granted_ordinal)
        access_on = None
        if access is not ClearanceLevel.NONE:
            access_ordinal = min(granted_ordinal + self.between(0, 120), self.today_ordinal)
            access_on = _partial(dt.date.fromordinal(access_ordinal))
        basis_date = dt.date.fromordinal(granted_ordinal - self.between(30, 330))
        basis_type = self.basis_type(person.category, eligibility, basis_date.year)
        separation = None
        if random() < 0.2 and granted_ordinal + 365 < self.today_ordinal:
            separated = self.between(granted_ordinal + 365, self.today_ordinal)
            separation = _partial(dt.date.fromordinal(separated))
        files_used = tuple(person.file_numbers[-2:])
        if not files_used:
            files_used = (self.file_number("DSS", basis_date.year),)
            if random() < 0.3:
                files_used += (self.file_number(SERVICE_REPOSITORIES[person.service][0], basis_date.year),)
        details = ClearanceDetails(
            granted_on=_partial(granted),
            eligibility_level=eligibility,
            access_level=access,
            access_granted_on=access_on,
            basis_investigation_type=basis_type,
            basis_investigation_date=_partial(basis_date),
            subject_category=person.category,
            separation_date=separation,
            files_used=files_used,
        )
        return agency, granted.year, details

    def basis_type(self, category: SubjectCategory, eligibility: ClearanceLevel, year: int) -> str:
        top = eligibility in (ClearanceLevel.TOP_SECRET, ClearanceLevel.TOP_SECRET_SCI)
        reinvestigation = self.random() < 0.3
        if year >= 2016:
            return ("T5R" if reinvestigation else "T5") if top else ("T3R" if reinvestigation else "T3")
        if top:
            return "SSBI-PR" if reinvestigation else "SSBI"
        if category is SubjectCategory.MILITARY and year < 1999:
            return "ENTNAC"
        if category is SubjectCategory.CIVILIAN:
            return "ANACI" if year >= 2000 else "NACI"
        return "NACLC" if year >= 1999 else "NAC"

    def impersonal(self) -> Tracing:
        agency = IMPERSONAL_AGENCIES.pick(self.random)
        year = self.between(_FIRST_FILE_YEAR, min(_LAST_IMPERSONAL_YEAR, self.today.year))
        kind = _IMPERSONAL_KINDS.pick(self.random)
        choice = self.choice
        if kind is ImpersonalTitleKind.CONTRACTOR_LOCATION:
            company = f"{choice(_COMPANY_WORDS)} {choice(_COMPANY_TRADES)}{choice(_COMPANY_FORMS)}"
            title = f"{company}, {choice(_CONTRACTOR_CITIES)}"
        elif kind is ImpersonalTitleKind.ORGANIZATION:
            title = f"{choice(_COMPANY_WORDS)} {choice(_ORGANIZATION_TYPES)}, {choice(_CONTRACTOR_CITIES)}"
        else:
            incident_year = max(_FIRST_FILE_YEAR, year - self.between(0, 1))
            title = f"{choice(_INCIDENTS)} {choice(_INSTALLATIONS)} {incident_year}"
        details = ImpersonalTitleDetails(title, kind, agency, self.file_number(agency, year), year)
        return Tracing(TracingKey(agency, self.record_number(agency, year)), 1, None, details)
