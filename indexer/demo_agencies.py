"""The agencies behind the demo tracings (`indexer.demo`): who holds which tracings, where their
investigators sit, and how they prefix their record numbers.
"""

from __future__ import annotations

from indexer.demo_draws import Weighted
from indexer.model import SubjectCategory

# A person's service decides the CAF that adjudicates them and the repositories a NAC checks.
SERVICE_CAF = {"ARMY": "ARMY-CCF", "NAVY": "DONCAF", "AF": "AF-497IG", "USCG": "USCG"}
SERVICE_REPOSITORIES = {
    "ARMY": ("ARMY-IRR", "ARMY-CRC"),
    "NAVY": ("NCIS",),
    "AF": ("AFOSI",),
    "USCG": ("USCG",),
}

CLEARANCE_AGENCIES_BY_CATEGORY: dict[SubjectCategory, Weighted[str]] = {
    SubjectCategory.MILITARY: Weighted([("", 88.0), ("DIA", 4.0), ("NSA", 3.0), ("JS", 3.0), ("NRO", 2.0)]),
    SubjectCategory.CIVILIAN: Weighted(
        [("", 55.0), ("WHS", 20.0), ("DIA", 10.0), ("NSA", 8.0), ("NRO", 3.0), ("JS", 4.0)]
    ),
    SubjectCategory.CONTRACTOR: Weighted(
        [("", 40.0), ("DOHA", 25.0), ("WHS", 12.0), ("NSA", 10.0), ("NRO", 7.0), ("DIA", 6.0)]
    ),
    SubjectCategory.FOREIGN_NATIONAL: Weighted([("", 70.0), ("WHS", 30.0)]),
    SubjectCategory.OTHER: Weighted([("", 60.0), ("WHS", 40.0)]),
}  # "" = the person's service CAF
INTELLIGENCE_AGENCIES = frozenset({"DIA", "NSA", "NRO"})

FILE_AGENCIES = Weighted(
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
FILE_CUSTODIANS = ("DSS", "ARMY-IRR", "ARMY-CRC", "NCIS", "AFOSI", "DODIG", "USCG")
OPEN_CASE_AGENCIES = Weighted(
    [("NCIS", 25.0), ("ARMY-CRC", 25.0), ("AFOSI", 20.0), ("DSS", 15.0), ("DODIG", 8.0), ("USCG", 7.0)]
)
IMPERSONAL_AGENCIES = Weighted(
    [("ARMY-IRR", 30.0), ("DSS", 20.0), ("AFOSI", 15.0), ("NCIS", 15.0), ("ARMY-CRC", 15.0), ("DODIG", 5.0)]
)

# Open investigations: office wording and places per agency.
OPEN_CASE_OFFICES: dict[str, tuple[str, ...]] = {
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
RECORD_PREFIX: dict[str, str] = {
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
