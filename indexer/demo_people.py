"""The persons behind the demo tracings (`indexer.demo`): names, identifiers and the subject as a
tracing names them.

Names are drawn with the real 1990 census frequencies (`indexer.census`), with middle names, suffixes
and aliases (a maiden surname, a nickname) at realistic rates. SSNs pass the edit criteria and are
unique per person: an affine permutation of the valid SSN space, so no collision check is needed.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import random as random_module
from dataclasses import dataclass

from nicknames import NickNamer

from indexer.census import given_name_table, surname_table
from indexer.demo_draws import Draws, Weighted, add_years
from indexer.model import Identifiers, PartialDate, PersonName, PlaceOfBirth, Subject, SubjectCategory, SubjectRole

_MALE_SHARE = 0.62  # the cleared and investigated population is mostly male
_CATEGORIES = Weighted(
    [
        (SubjectCategory.MILITARY, 45.0),
        (SubjectCategory.CONTRACTOR, 27.0),
        (SubjectCategory.CIVILIAN, 25.0),
        (SubjectCategory.OTHER, 2.0),
        (SubjectCategory.FOREIGN_NATIONAL, 1.0),
    ]
)
_SERVICES = Weighted([("ARMY", 40.0), ("NAVY", 30.0), ("AF", 25.0), ("USCG", 5.0)])
_SUFFIXES = Weighted([("JR", 55.0), ("III", 17.0), ("II", 15.0), ("SR", 10.0), ("IV", 3.0)])

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
_US_PLACES = Weighted([((code, cities), weight) for code, weight, cities in _STATES])
_FOREIGN_PLACES = Weighted([((code, cities), weight) for code, weight, cities in _COUNTRIES])

# SSN space the edit criteria accept: area 001-665 and 667-899, group 01-99, serial 0001-9999.
_SSN_AREAS = 898
_SSN_SPACE = _SSN_AREAS * 99 * 9999
_SSN_BLOCKED = frozenset({"078051120", "457555462", "219099999"})  # published "example" numbers

_FIRST_DOB = dt.date(1940, 1, 1)


@functools.cache
def _nicknamer() -> NickNamer:
    return NickNamer()


@functools.cache
def _nicknames(given_name: str) -> tuple[str, ...]:
    """Title-cased nicknames of a given name, sorted (sets have no stable order across processes)."""
    own = given_name.lower()
    found = _nicknamer().nicknames_of(given_name)
    return tuple(sorted(nick.capitalize() for nick in found if nick.isalpha() and len(nick) > 1 and nick != own))


@dataclass(slots=True)
class Person:
    """One drawn person: what all their tracings share. `file_numbers` grows as their files are drawn,
    so that a later clearance can cite them."""

    sex: str
    name: PersonName
    aliases: tuple[PersonName, ...]
    identifiers: Identifiers
    born: dt.date
    category: SubjectCategory
    service: str
    subject: Subject  # role SUBJECT, all PIDs
    file_numbers: list[str]


class PersonGenerator(Draws):
    """Draws persons, and the subject each of their tracings names."""

    def __init__(self, rng: random_module.Random, today: dt.date) -> None:
        super().__init__(rng, today)
        self.adult_ordinal = add_years(today, -18).toordinal()
        self.first_dob_ordinal = _FIRST_DOB.toordinal()
        self.surnames = surname_table()
        self.given = {"M": given_name_table("M"), "F": given_name_table("F")}
        multiplier = self.rng.randrange(_SSN_SPACE // 4, _SSN_SPACE)
        while math.gcd(multiplier, _SSN_SPACE) != 1:
            multiplier += 1
        self.ssn_multiplier = multiplier
        self.ssn_offset = self.rng.randrange(_SSN_SPACE)
        self.ssn_counter = 0

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

    def person(self) -> Person:
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
        return Person(
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

    def subject_for(self, person: Person, role: SubjectRole, later: bool) -> Subject:
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
