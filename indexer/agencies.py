"""The agencies whose repositories submit tracings (DOMAIN.md "Who uses it", seed 002)."""

from __future__ import annotations

# Code -> name. A tracing's owning agency, a file's custodian and a NAC's agencies checked must be one
# of these codes; adding a repository means adding its code here (and to docs/TRACING_FORMAT.md).
AGENCIES: dict[str, str] = {
    "AF-497IG": "Air Force, HQ 497th IG/INS",
    "AFOSI": "Air Force Office of Special Investigations",
    "ARMY-CCF": "Army Central Clearance Facility",
    "ARMY-CRC": "Army Crime Records Center",
    "ARMY-IRR": "Army Investigative Records Repository",
    "DIA": "Defense Intelligence Agency",
    "DOHA": "Defense Office of Hearings and Appeals",
    "DODIG": "DoD Inspector General",
    "JS": "Joint Staff",
    "NRO": "National Reconnaissance Office",
    "NSA": "National Security Agency",
    "NCIS": "Naval Criminal Investigative Service",
    "DONCAF": "Department of the Navy Central Adjudication Facility",
    "USCG": "Coast Guard",
    "WHS": "Washington Headquarters Services",
    "DSS": "Defense Security Service (index operator)",
    # Agencies checked during a NAC that are not DoD repositories.
    "FBI": "Federal Bureau of Investigation",
    "OPM": "Office of Personnel Management",
}

# Only these may own tracings (the non-DoD codes above appear only as agencies checked).
SUBMITTING_AGENCIES: frozenset[str] = frozenset(AGENCIES) - {"FBI", "OPM"}

NAC_TYPES: frozenset[str] = frozenset(
    {"NAC", "ENTNAC", "NACI", "NACLC", "ANACI", "SSBI", "SSBI-PR", "T1", "T2", "T3", "T3R", "T4", "T5", "T5R"}
)

REQUESTER_CATEGORIES: frozenset[str] = frozenset({"MILITARY", "CIVILIAN", "CONTRACTOR", "FOREIGN_NATIONAL", "OTHER"})
