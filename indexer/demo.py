"""Realistic synthetic tracings for demos, tests and benchmarks (`dcii demo`).

`generate_tracings(count, seed=..., today=...)` yields exactly `count` tracings, the same ones for the
same seed and `today`. They are meant to look right to an adjudicator:

* names drawn with the real 1990 census frequencies (`indexer.census`), title-cased as a repository
  sends them; middle names, suffixes and aliases (a maiden surname, a nickname) at realistic rates;
* persons, not records: each person gets one to three tracings (a NAC history and a clearance, a file
  and an open case...) carrying the same name and PIDs, now and then without an alias or one PID;
* SSNs that pass the edit criteria and are unique per person (an affine permutation of the valid
  SSN space, so no collision check is needed); dates of birth 1940 to 18 years ago, a few partial;
  places of birth weighted by state population, some abroad, some missing;
* all six tracing types from the agencies that hold them, with every date real, in order (basis
  investigation before grant before access, NAC after age 17...) and never after `today`; NAC
  histories younger than their 15-year retention; impersonal titles indexed no later than 1997.

Everything is drawn from one `random.Random(seed)`; weighted choices are a bisect over cumulative
weights, so a core generates well over 50,000 tracings a second.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import random as random_module
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Generic, TypeVar

from nicknames import NickNamer

from indexer.census import census_given_names, given_name_table, iter_census_surnames, surname_table
from indexer.model import (
    ClearanceDetails,
    ClearanceLevel,
    Details,
    FileDetails,
    Identifiers,
    ImpersonalTitleDetails,
    ImpersonalTitleKind,
    NacHistoryDetails,
    NacOutcome,
    NacPendingDetails,
    OpenCaseDetails,
    PartialDate,
    PersonName,
    PlaceOfBirth,
    Subject,
    SubjectCategory,
    SubjectRole,
    Tracing,
    TracingKey,
    TracingType,
)

__all__ = ["census_given_names", "generate_tracings", "iter_census_surnames"]

T = TypeVar("T")
Random = Callable[[], float]


class _Weighted(Generic[T]):
    """A fixed weighted choice: one bisect over cumulative weights per draw."""

    __slots__ = ("_cumulative", "_items", "_last")

    def __init__(self, pairs: Sequence[tuple[T, float]]) -> None:
        self._items = tuple(item for item, _ in pairs)
        self._cumulative = tuple(accumulate(weight for _, weight in pairs))
        self._last = len(self._items) - 1

    def pick(self, random: Random) -> T:
        cumulative = self._cumulative
        return self._items[bisect_right(cumulative, random() * cumulative[-1], 0, self._last)]


# --- Tables -------------------------------------------------------------------------------------------

# Person tracings by type, tuned so that after the once-per-person redraws (below) the output mix is
# FILE 30 : CLEARANCE 25 : NAC_HISTORY 20 : OPEN_CASE 10 : NAC_PENDING 10. Impersonal titles are drawn
# apart, at _IMPERSONAL_SHARE of all tracings.
_PERSON_TYPES = _Weighted(
    [
        (TracingType.FILE, 27.5),
        (TracingType.CLEARANCE, 29.0),
        (TracingType.NAC_HISTORY, 21.5),
        (TracingType.OPEN_CASE, 9.0),
        (TracingType.NAC_PENDING, 9.5),
    ]
)
_IMPERSONAL_SHARE = 0.005
_TRACINGS_PER_PERSON = _Weighted([(1, 45.0), (2, 35.0), (3, 20.0)])
_MEAN_TRACINGS_PER_PERSON = (1 * 45 + 2 * 35 + 3 * 20) / 100
# Chance that the next entity is an impersonal title so that they are _IMPERSONAL_SHARE of tracings.
_IMPERSONAL_ENTITY_CHANCE = (
    _IMPERSONAL_SHARE
    * _MEAN_TRACINGS_PER_PERSON
    / (1 - _IMPERSONAL_SHARE + _IMPERSONAL_SHARE * _MEAN_TRACINGS_PER_PERSON)
)
# A person has at most one of these: a later favorable NAC replaces the earlier history, one NAC runs
# at a time, and a clearance is updated in place rather than granted twice.
_ONCE_PER_PERSON = frozenset({TracingType.NAC_HISTORY, TracingType.NAC_PENDING, TracingType.CLEARANCE})
# Within a person, files come first so that a clearance can cite them in files_used.
_TYPE_ORDER = {
    TracingType.FILE: 0,
    TracingType.OPEN_CASE: 1,
    TracingType.NAC_HISTORY: 2,
    TracingType.NAC_PENDING: 3,
    TracingType.CLEARANCE: 4,
}

_MALE_SHARE = 0.62  # the cleared and investigated population is mostly male
_CATEGORIES = _Weighted(
    [
        (SubjectCategory.MILITARY, 45.0),
        (SubjectCategory.CONTRACTOR, 27.0),
        (SubjectCategory.CIVILIAN, 25.0),
        (SubjectCategory.OTHER, 2.0),
        (SubjectCategory.FOREIGN_NATIONAL, 1.0),
    ]
)
_SERVICES = _Weighted([("ARMY", 40.0), ("NAVY", 30.0), ("AF", 25.0), ("USCG", 5.0)])
_SERVICE_CAF = {"ARMY": "ARMY-CCF", "NAVY": "DONCAF", "AF": "AF-497IG", "USCG": "USCG"}
_SERVICE_REPOSITORIES = {
    "ARMY": ("ARMY-IRR", "ARMY-CRC"),
    "NAVY": ("NCIS",),
    "AF": ("AFOSI",),
    "USCG": ("USCG",),
}
_SUFFIXES = _Weighted([("JR", 55.0), ("III", 17.0), ("II", 15.0), ("SR", 10.0), ("IV", 3.0)])

# USPS code, 2020 population (thousands), a few cities of that state.
_STATES: tuple[tuple[str, float, tuple[str, ...]], ...] = (
    ("AL", 5024, ("Birmingham", "Montgomery", "Huntsville", "Mobile")),
    ("AK", 733, ("Anchorage", "Fairbanks")),
    ("AZ", 7152, ("Phoenix", "Tucson", "Mesa")),
    ("AR", 3012, ("Little Rock", "Fort Smith")),
    ("CA", 39538, ("Los Angeles", "San Diego", "San Jose", "San Francisco", "Fresno", "Sacramento")),
    ("CO", 5774, ("Denver", "Colorado Springs", "Aurora")),
    ("CT", 3606, ("Bridgeport", "New Haven", "Hartford")),
    ("DE", 990, ("Wilmington", "Dover")),
    ("DC", 690, ("Washington",)),
    ("FL", 21538, ("Jacksonville", "Miami", "Tampa", "Orlando", "Pensacola")),
    ("GA", 10712, ("Atlanta", "Savannah", "Columbus", "Augusta")),
    ("HI", 1455, ("Honolulu", "Hilo")),
    ("ID", 1839, ("Boise", "Idaho Falls")),
    ("IL", 12813, ("Chicago", "Springfield", "Peoria", "Rockford")),
    ("IN", 6785, ("Indianapolis", "Fort Wayne", "Evansville")),
    ("IA", 3190, ("Des Moines", "Cedar Rapids", "Davenport")),
    ("KS", 2938, ("Wichita", "Topeka", "Kansas City")),
    ("KY", 4506, ("Louisville", "Lexington", "Bowling Green")),
    ("LA", 4658, ("New Orleans", "Baton Rouge", "Shreveport")),
    ("ME", 1362, ("Portland", "Bangor")),
    ("MD", 6177, ("Baltimore", "Annapolis", "Frederick")),
    ("MA", 7030, ("Boston", "Worcester", "Springfield")),
    ("MI", 10077, ("Detroit", "Grand Rapids", "Lansing", "Flint")),
    ("MN", 5706, ("Minneapolis", "Saint Paul", "Duluth")),
    ("MS", 2961, ("Jackson", "Gulfport", "Biloxi")),
    ("MO", 6155, ("Kansas City", "Saint Louis", "Springfield")),
    ("MT", 1084, ("Billings", "Missoula", "Great Falls")),
    ("NE", 1962, ("Omaha", "Lincoln")),
    ("NV", 3105, ("Las Vegas", "Reno")),
    ("NH", 1377, ("Manchester", "Nashua")),
    ("NJ", 9289, ("Newark", "Jersey City", "Paterson", "Trenton")),
    ("NM", 2118, ("Albuquerque", "Las Cruces", "Santa Fe")),
    ("NY", 20201, ("New York", "Brooklyn", "Buffalo", "Rochester", "Syracuse", "Albany")),
    ("NC", 10439, ("Charlotte", "Raleigh", "Fayetteville", "Greensboro")),
    ("ND", 779, ("Fargo", "Bismarck", "Minot")),
    ("OH", 11799, ("Columbus", "Cleveland", "Cincinnati", "Dayton", "Toledo")),
    ("OK", 3959, ("Oklahoma City", "Tulsa", "Lawton")),
    ("OR", 4237, ("Portland", "Eugene", "Salem")),
    ("PA", 13003, ("Philadelphia", "Pittsburgh", "Allentown", "Erie")),
    ("RI", 1097, ("Providence", "Newport")),
    ("SC", 5118, ("Columbia", "Charleston", "Greenville")),
    ("SD", 887, ("Sioux Falls", "Rapid City")),
    ("TN", 6911, ("Nashville", "Memphis", "Knoxville", "Chattanooga")),
    ("TX", 29146, ("Houston", "San Antonio", "Dallas", "Austin", "El Paso", "Killeen")),
    ("UT", 3272, ("Salt Lake City", "Provo", "Ogden")),
    ("VT", 643, ("Burlington",)),
    ("VA", 8631, ("Virginia Beach", "Norfolk", "Richmond", "Arlington", "Alexandria")),
    ("WA", 7705, ("Seattle", "Spokane", "Tacoma", "Bremerton")),
    ("WV", 1794, ("Charleston", "Huntington")),
    ("WI", 5894, ("Milwaukee", "Madison", "Green Bay")),
    ("WY", 577, ("Cheyenne", "Casper")),
    ("PR", 3286, ("San Juan", "Ponce", "Bayamon")),
    ("GU", 154, ("Dededo", "Tamuning")),
)
# ISO 3166-1 alpha-2 code, relative weight among foreign births, a few cities.
_COUNTRIES: tuple[tuple[str, float, tuple[str, ...]], ...] = (
    ("DE", 14, ("Frankfurt", "Heidelberg", "Kaiserslautern", "Landstuhl")),
    ("MX", 14, ("Mexico City", "Guadalajara", "Monterrey", "Tijuana")),
    ("PH", 12, ("Manila", "Quezon City", "Olongapo", "Angeles")),
    ("KR", 8, ("Seoul", "Busan", "Pyeongtaek")),
    ("JP", 6, ("Okinawa", "Tokyo", "Yokosuka")),
    ("VN", 6, ("Ho Chi Minh City", "Hanoi", "Da Nang")),
    ("IN", 6, ("New Delhi", "Mumbai", "Bangalore")),
    ("GB", 5, ("London", "Lakenheath", "Manchester")),
    ("CA", 5, ("Toronto", "Montreal", "Vancouver")),
    ("CN", 5, ("Beijing", "Shanghai", "Guangzhou")),
    ("IT", 4, ("Naples", "Vicenza", "Rome")),
    ("CU", 3, ("Havana",)),
    ("DO", 3, ("Santo Domingo", "Santiago")),
    ("JM", 3, ("Kingston", "Montego Bay")),
    ("HT", 2, ("Port-au-Prince",)),
    ("NG", 2, ("Lagos", "Abuja")),
    ("PL", 2, ("Warsaw", "Krakow")),
    ("PA", 2, ("Panama City", "Colon")),
    ("ES", 2, ("Rota", "Madrid")),
    ("TR", 1, ("Adana", "Istanbul")),
)
_US_PLACES = _Weighted([((code, cities), weight) for code, weight, cities in _STATES])
_FOREIGN_PLACES = _Weighted([((code, cities), weight) for code, weight, cities in _COUNTRIES])

_CLEARANCE_AGENCIES_BY_CATEGORY: dict[SubjectCategory, _Weighted[str]] = {
    SubjectCategory.MILITARY: _Weighted([("", 88.0), ("DIA", 4.0), ("NSA", 3.0), ("JS", 3.0), ("NRO", 2.0)]),
    SubjectCategory.CIVILIAN: _Weighted(
        [("", 55.0), ("WHS", 20.0), ("DIA", 10.0), ("NSA", 8.0), ("NRO", 3.0), ("JS", 4.0)]
    ),
    SubjectCategory.CONTRACTOR: _Weighted(
        [("", 40.0), ("DOHA", 25.0), ("WHS", 12.0), ("NSA", 10.0), ("NRO", 7.0), ("DIA", 6.0)]
    ),
    SubjectCategory.FOREIGN_NATIONAL: _Weighted([("", 70.0), ("WHS", 30.0)]),
    SubjectCategory.OTHER: _Weighted([("", 60.0), ("WHS", 40.0)]),
}  # "" = the person's service CAF
_INTELLIGENCE_AGENCIES = frozenset({"DIA", "NSA", "NRO"})
_LEVELS_ORDER = (
    ClearanceLevel.NONE,
    ClearanceLevel.CONFIDENTIAL,
    ClearanceLevel.SECRET,
    ClearanceLevel.TOP_SECRET,
    ClearanceLevel.TOP_SECRET_SCI,
)
_ELIGIBILITY = _Weighted(
    [
        (ClearanceLevel.SECRET, 62.0),
        (ClearanceLevel.TOP_SECRET_SCI, 16.0),
        (ClearanceLevel.TOP_SECRET, 15.0),
        (ClearanceLevel.CONFIDENTIAL, 7.0),
    ]
)
_INTELLIGENCE_ELIGIBILITY = _Weighted(
    [(ClearanceLevel.TOP_SECRET_SCI, 82.0), (ClearanceLevel.TOP_SECRET, 13.0), (ClearanceLevel.SECRET, 5.0)]
)

_FILE_AGENCIES = _Weighted(
    [
        ("DSS", 28.0),
        ("ARMY-IRR", 18.0),
        ("ARMY-CRC", 16.0),
        ("NCIS", 14.0),
        ("AFOSI", 13.0),
        ("DODIG", 4.0),
        ("USCG", 4.0),
        ("DIA", 3.0),
    ]
)
_FILE_CUSTODIANS = ("DSS", "ARMY-IRR", "ARMY-CRC", "NCIS", "AFOSI", "DODIG", "USCG")
_OPEN_CASE_AGENCIES = _Weighted(
    [("NCIS", 25.0), ("ARMY-CRC", 25.0), ("AFOSI", 20.0), ("DSS", 15.0), ("DODIG", 8.0), ("USCG", 7.0)]
)
_IMPERSONAL_AGENCIES = _Weighted(
    [("ARMY-IRR", 30.0), ("DSS", 20.0), ("AFOSI", 15.0), ("NCIS", 15.0), ("ARMY-CRC", 15.0), ("DODIG", 5.0)]
)
_FILE_ROLES = _Weighted([(SubjectRole.SUBJECT, 80.0), (SubjectRole.VICTIM, 12.0), (SubjectRole.CROSS_REFERENCE, 8.0)])

# Open investigations: office wording and places per agency.
_OPEN_CASE_OFFICES: dict[str, tuple[str, ...]] = {
    "NCIS": tuple(
        f"NCIS {office} {place}"
        for office, place in (
            ("RESIDENT AGENCY", "NORFOLK VA"),
            ("FIELD OFFICE", "SAN DIEGO CA"),
            ("RESIDENT AGENCY", "CAMP LEJEUNE NC"),
            ("RESIDENT AGENCY", "CAMP PENDLETON CA"),
            ("RESIDENT AGENCY", "JACKSONVILLE FL"),
            ("FIELD OFFICE", "PEARL HARBOR HI"),
            ("RESIDENT AGENCY", "BREMERTON WA"),
            ("RESIDENT AGENCY", "GREAT LAKES IL"),
            ("RESIDENT AGENCY", "PENSACOLA FL"),
            ("RESIDENT AGENCY", "YOKOSUKA JAPAN"),
        )
    ),
    "AFOSI": tuple(
        f"AFOSI DETACHMENT {detachment} {base}"
        for detachment, base in (
            (501, "WRIGHT-PATTERSON AFB OH"),
            (401, "LACKLAND AFB TX"),
            (228, "NELLIS AFB NV"),
            (104, "EGLIN AFB FL"),
            (204, "LANGLEY AFB VA"),
            (303, "TRAVIS AFB CA"),
            (211, "OFFUTT AFB NE"),
            (331, "ANDREWS AFB MD"),
            (519, "RAMSTEIN AB GERMANY"),
            (624, "KADENA AB JAPAN"),
        )
    ),
    "ARMY-CRC": tuple(
        f"ARMY CID OFFICE {post}"
        for post in (
            "FORT BRAGG NC",
            "FORT HOOD TX",
            "FORT CAMPBELL KY",
            "FORT BENNING GA",
            "FORT CARSON CO",
            "FORT LEWIS WA",
            "FORT BLISS TX",
            "FORT STEWART GA",
            "FORT DRUM NY",
            "FORT RILEY KS",
        )
    ),
    "DODIG": tuple(
        f"DCIS RESIDENT AGENCY {city}"
        for city in ("DAYTON OH", "ST LOUIS MO", "HUNTSVILLE AL", "SAN DIEGO CA", "BOSTON MA", "DALLAS TX")
    ),
    "DSS": tuple(
        f"DSS FIELD OFFICE {city}"
        for city in (
            "ALEXANDRIA VA",
            "COLUMBIA MD",
            "HUNTSVILLE AL",
            "SAN DIEGO CA",
            "HOUSTON TX",
            "SEATTLE WA",
        )
    ),
    "USCG": tuple(
        f"CGIS RESIDENT AGENCY {city}"
        for city in ("ALAMEDA CA", "PORTSMOUTH VA", "NEW ORLEANS LA", "MIAMI FL", "SEATTLE WA", "BOSTON MA")
    ),
}

# Record-number prefixes (the tracing key): "CCF-2019-004812".
_RECORD_PREFIX: dict[str, str] = {
    "AF-497IG": "497IG",
    "AFOSI": "OSI",
    "ARMY-CCF": "CCF",
    "ARMY-CRC": "CRC",
    "ARMY-IRR": "IRR",
    "DIA": "DIA",
    "DOHA": "ISCR",
    "DODIG": "DCIS",
    "JS": "JS",
    "NRO": "NRO",
    "NSA": "NSA",
    "NCIS": "NCIS",
    "DONCAF": "DON",
    "USCG": "CG",
    "WHS": "WHS",
    "DSS": "DSS",
}
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
_IMPERSONAL_KINDS = _Weighted(
    [
        (ImpersonalTitleKind.CONTRACTOR_LOCATION, 40.0),
        (ImpersonalTitleKind.ORGANIZATION, 35.0),
        (ImpersonalTitleKind.INCIDENT, 25.0),
    ]
)
_LAST_IMPERSONAL_YEAR = 1997

# SSN space the edit criteria accept: area 001-665 and 667-899, group 01-99, serial 0001-9999.
_SSN_AREAS = 898
_SSN_SPACE = _SSN_AREAS * 99 * 9999
_SSN_BLOCKED = frozenset({"078051120", "457555462", "219099999"})  # published "example" numbers

_FIRST_DOB = dt.date(1940, 1, 1)
_FIRST_FILE_YEAR = 1975
_FIRST_NAC = dt.date(1985, 1, 1)
_FIRST_CLEARANCE = dt.date(1980, 1, 1)
_NAC_RETENTION_YEARS = 15
_EARLIEST_TODAY = dt.date(2000, 1, 1)


@functools.cache
def _nicknamer() -> NickNamer:
    return NickNamer()


@functools.cache
def _nicknames(given_name: str) -> tuple[str, ...]:
    """Title-cased nicknames of a given name, sorted (sets have no stable order across processes)."""
    own = given_name.lower()
    found = _nicknamer().nicknames_of(given_name)
    return tuple(sorted(nick.capitalize() for nick in found if nick.isalpha() and len(nick) > 1 and nick != own))


def _add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _partial(day: dt.date) -> PartialDate:
    return PartialDate(day.year, day.month, day.day)


@dataclass(slots=True)
class _Person:
    sex: str
    name: PersonName
    aliases: tuple[PersonName, ...]
    identifiers: Identifiers
    born: dt.date
    category: SubjectCategory
    service: str
    subject: Subject  # role SUBJECT, all PIDs
    file_numbers: list[str]


class _Generator:
    def __init__(self, seed: int, today: dt.date) -> None:
        self.rng = random_module.Random(seed)
        self.random: Random = self.rng.random
        self.today = today
        self.today_ordinal = today.toordinal()
        self.adult_ordinal = _add_years(today, -18).toordinal()
        self.first_dob_ordinal = _FIRST_DOB.toordinal()
        self.nac_floor = max(_FIRST_NAC, _add_years(today, -_NAC_RETENTION_YEARS) + dt.timedelta(days=1))
        self.surnames = surname_table()
        self.given = {"M": given_name_table("M"), "F": given_name_table("F")}
        multiplier = self.rng.randrange(_SSN_SPACE // 4, _SSN_SPACE)
        while math.gcd(multiplier, _SSN_SPACE) != 1:
            multiplier += 1
        self.ssn_multiplier = multiplier
        self.ssn_offset = self.rng.randrange(_SSN_SPACE)
        self.ssn_counter = 0
        self.record_counters: dict[tuple[str, int], int] = {}

    # --- helpers ---------------------------------------------------------------------------------------

    def between(self, low: int, high: int) -> int:
        """Uniform integer in [low, high]."""
        return low + int(self.random() * (high - low + 1))

    def day_between(self, low: dt.date, high: dt.date) -> dt.date:
        return dt.date.fromordinal(self.between(low.toordinal(), high.toordinal()))

    def choice(self, items: Sequence[T]) -> T:
        return items[int(self.random() * len(items))]

    def record_number(self, agency: str, year: int) -> str:
        counter_key = (agency, year)
        number = self.record_counters.get(counter_key)
        number = self.between(1, 2500) if number is None else number + 1
        self.record_counters[counter_key] = number
        return f"{_RECORD_PREFIX[agency]}-{year}-{number:06d}"

    def ssn(self) -> str:
        while True:
            index = (self.ssn_multiplier * self.ssn_counter + self.ssn_offset) % _SSN_SPACE
            self.ssn_counter += 1
            area, rest = divmod(index, 99 * 9999)
            group, serial = divmod(rest, 9999)
            area += 1 if area < 665 else 2  # skip 666
            number = f"{area:03d}{group + 1:02d}{serial + 1:04d}"
            if number not in _SSN_BLOCKED:
                return number

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
        return f"{_RECORD_PREFIX[agency]}-{year}-{between(1, 99999):05d}"

    # --- persons ---------------------------------------------------------------------------------------

    def person_name(self, sex: str) -> tuple[PersonName, tuple[PersonName, ...]]:
        random = self.random
        given_table = self.given[sex]
        surname = self.surnames.sample(random)
        given = given_table.sample(random)
        middle = ""
        if random() < 0.70:
            middle = given_table.sample(random)
            if middle == given:
                middle = given_table.sample(random)
            if random() < 0.15:
                middle = middle[0]
        suffix = _SUFFIXES.pick(random) if sex == "M" and random() < 0.03 else ""
        name = PersonName(surname, given, middle, suffix)
        if random() >= 0.08:
            return name, ()
        nicknames = _nicknames(given)
        if sex == "F" and (random() < 0.65 or not nicknames):
            maiden = self.surnames.sample(random)  # the name before marriage, kept on older records
            return name, (PersonName(maiden, given, middle),)
        if nicknames and (sex == "F" or random() < 0.8 or len(middle) < 2):
            return name, (PersonName(surname, self.choice(nicknames), middle, suffix),)
        if len(middle) > 1:  # goes by the middle name
            return name, (PersonName(surname, middle, "", suffix),)
        return name, ()

    def place_of_birth(self, category: SubjectCategory) -> PlaceOfBirth | None:
        random = self.random
        if category is SubjectCategory.FOREIGN_NATIONAL or random() < 0.10:
            code, cities = _FOREIGN_PLACES.pick(random)
            return PlaceOfBirth(country=code, city=self.choice(cities) if random() < 0.5 else "")
        if random() < 0.05:
            return None
        code, cities = _US_PLACES.pick(random)
        return PlaceOfBirth(us_state=code, city=self.choice(cities) if random() < 0.4 else "")

    def person(self) -> _Person:
        random = self.random
        sex = "M" if random() < _MALE_SHARE else "F"
        name, aliases = self.person_name(sex)
        category = _CATEGORIES.pick(random)
        born = dt.date.fromordinal(self.between(self.first_dob_ordinal, self.adult_ordinal))
        roll = random()
        if roll < 0.03:
            dob = PartialDate(born.year)
        elif roll < 0.05:
            dob = PartialDate(born.year, born.month)
        else:
            dob = PartialDate(born.year, born.month, born.day)
        no_ssn = 0.5 if category is SubjectCategory.FOREIGN_NATIONAL else 0.045
        ssn = "" if random() < no_ssn else self.ssn()
        identifiers = Identifiers(ssn, dob, self.place_of_birth(category))
        return _Person(
            sex=sex,
            name=name,
            aliases=aliases,
            identifiers=identifiers,
            born=born,
            category=category,
            service=_SERVICES.pick(random),
            subject=Subject(name, aliases, SubjectRole.SUBJECT, identifiers),
            file_numbers=[],
        )

    def subject_for(self, person: _Person, role: SubjectRole, later: bool) -> Subject:
        """The person as one tracing names them: a later record now and then lacks the alias or a PID."""
        if not later or self.random() >= 0.06:
            return (
                person.subject
                if role is SubjectRole.SUBJECT
                else Subject(person.name, person.aliases, role, person.identifiers)
            )
        identifiers = person.identifiers
        aliases = person.aliases
        variant = self.between(0, 2)
        if variant == 0 and aliases:
            aliases = ()
        elif variant == 1 and identifiers.ssn and identifiers.date_of_birth is not None:
            identifiers = Identifiers("", identifiers.date_of_birth, identifiers.place_of_birth)
        else:
            identifiers = Identifiers(identifiers.ssn, identifiers.date_of_birth, None)
        return Subject(person.name, aliases, role, identifiers)

    # --- details per type ------------------------------------------------------------------------------

    def file(self, person: _Person) -> tuple[str, int, FileDetails]:
        agency = _FILE_AGENCIES.pick(self.random)
        custodian = agency
        if agency not in _FILE_CUSTODIANS or self.random() < 0.10:
            custodian = self.choice([code for code in _FILE_CUSTODIANS if code != agency])
        year = self.between(max(_FIRST_FILE_YEAR, person.born.year + 16), self.today.year)
        number = self.file_number(custodian, year)
        person.file_numbers.append(number)
        return agency, year, FileDetails(custodian, year, number)

    def open_case(self, person: _Person) -> tuple[str, int, OpenCaseDetails]:
        agency = _OPEN_CASE_AGENCIES.pick(self.random)
        this_year = self.today.year
        year = self.between(max(_FIRST_FILE_YEAR, person.born.year + 16, this_year - 3), this_year)
        location = self.choice(_OPEN_CASE_OFFICES[agency])
        return agency, year, OpenCaseDetails(location, year, self.file_number(agency, year))

    def nac_agency(self, person: _Person) -> str:
        return "DSS" if self.random() < 0.85 else _SERVICE_CAF[person.service]

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

    def nac_pending(self, person: _Person) -> tuple[str, int, NacPendingDetails]:
        year = self.today.year - (1 if self.random() < 0.15 else 0)
        category = person.category.value if self.random() < 0.92 else "OTHER"
        case_number = f"N{year % 100:02d}-{self.between(1, 9999999):07d}"
        nac_type = self.nac_type(person.category, self.today.year)
        return self.nac_agency(person), year, NacPendingDetails(case_number, category, nac_type)

    def nac_history(self, person: _Person) -> tuple[str, int, NacHistoryDetails]:
        random = self.random
        low = max(self.nac_floor, _add_years(person.born, 17))
        completed = self.day_between(low, self.today)
        checked = ["FBI"]
        if random() < 0.85:
            checked.append("OPM")
        if random() < 0.9:
            checked.append("DSS")
        checked.append(self.choice(_SERVICE_REPOSITORIES[person.service]))
        if random() < 0.1:
            checked.append("DODIG")
        outcome = NacOutcome.FAVORABLE if random() < 0.95 else NacOutcome.INCOMPLETE
        details = NacHistoryDetails(
            _partial(completed), tuple(checked), outcome, self.nac_type(person.category, completed.year)
        )
        return self.nac_agency(person), completed.year, details

    def clearance(self, person: _Person) -> tuple[str, int, ClearanceDetails]:
        random = self.random
        agency = _CLEARANCE_AGENCIES_BY_CATEGORY[person.category].pick(random) or _SERVICE_CAF[person.service]
        levels = _INTELLIGENCE_ELIGIBILITY if agency in _INTELLIGENCE_AGENCIES else _ELIGIBILITY
        eligibility = levels.pick(random)
        rank = _LEVELS_ORDER.index(eligibility)
        access = eligibility if random() < 0.8 else _LEVELS_ORDER[self.between(0, rank - 1)]
        # Clearances live long; lean towards recent grants (the later of two draws).
        low = max(_FIRST_CLEARANCE, _add_years(person.born, 18)).toordinal()
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
                files_used += (self.file_number(_SERVICE_REPOSITORIES[person.service][0], basis_date.year),)
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
        agency = _IMPERSONAL_AGENCIES.pick(self.random)
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

    # --- the run ---------------------------------------------------------------------------------------

    def person_tracings(self, count: int) -> Iterator[Tracing]:
        person = self.person()
        random = self.random
        if count == 1:
            types = [_PERSON_TYPES.pick(random)]
        else:
            types = []
            for _ in range(count):
                tracing_type = _PERSON_TYPES.pick(random)
                while tracing_type in _ONCE_PER_PERSON and tracing_type in types:
                    tracing_type = _PERSON_TYPES.pick(random)
                types.append(tracing_type)
            types.sort(key=_TYPE_ORDER.__getitem__)
        for position, tracing_type in enumerate(types):
            details: Details
            role = SubjectRole.SUBJECT
            if tracing_type is TracingType.FILE:
                agency, year, details = self.file(person)
                role = _FILE_ROLES.pick(random)
            elif tracing_type is TracingType.CLEARANCE:
                agency, year, details = self.clearance(person)
            elif tracing_type is TracingType.NAC_HISTORY:
                agency, year, details = self.nac_history(person)
            elif tracing_type is TracingType.OPEN_CASE:
                agency, year, details = self.open_case(person)
                role = _FILE_ROLES.pick(random)
            else:
                agency, year, details = self.nac_pending(person)
            subject = self.subject_for(person, role, position > 0)
            yield Tracing(TracingKey(agency, self.record_number(agency, year)), 1, subject, details)

    def run(self, count: int) -> Iterator[Tracing]:
        remaining = count
        random = self.random
        while remaining > 0:
            if random() < _IMPERSONAL_ENTITY_CHANCE:
                yield self.impersonal()
                remaining -= 1
                continue
            tracings = min(_TRACINGS_PER_PERSON.pick(random), remaining)
            yield from self.person_tracings(tracings)
            remaining -= tracings


def generate_tracings(count: int, *, seed: int = 0, today: dt.date | None = None) -> Iterator[Tracing]:
    """Exactly `count` synthetic tracings, the same for the same `seed` and `today` (default: the
    current date; no date in a tracing is later). Lazy: draw as many as you need from the iterator.

    Raises ValueError for a negative count or a `today` before 2000 (the history needs room)."""
    if count < 0:
        raise ValueError("count must not be negative")
    today = dt.date.today() if today is None else today
    if today < _EARLIEST_TODAY:
        raise ValueError("today must be 2000-01-01 or later")
    return _Generator(seed, today).run(count)
