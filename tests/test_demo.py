"""The demo generator: deterministic, exact, and plausible to an adjudicator (indexer/demo.py)."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterator

import pytest
from stdnum.us import ssn as stdnum_ssn

from indexer.agencies import AGENCIES, NAC_TYPES, REQUESTER_CATEGORIES, SUBMITTING_AGENCIES
from indexer.demo import census_given_names, generate_tracings, iter_census_surnames
from indexer.edit_criteria import check_tracing
from indexer.exc import InvalidArgument
from indexer.model import (
    ClearanceDetails,
    ClearanceLevel,
    FileDetails,
    ImpersonalTitleDetails,
    NacHistoryDetails,
    NacPendingDetails,
    OpenCaseDetails,
    PartialDate,
    PersonName,
    Tracing,
    TracingType,
)
from indexer.normalize import SUFFIXES

TODAY = dt.date(2025, 6, 15)
_RANK = {
    ClearanceLevel.NONE: 0,
    ClearanceLevel.CONFIDENTIAL: 1,
    ClearanceLevel.SECRET: 2,
    ClearanceLevel.TOP_SECRET: 3,
    ClearanceLevel.TOP_SECRET_SCI: 4,
}


@pytest.fixture(scope="module")
def five_thousand() -> list[Tracing]:
    return list(generate_tracings(5_000, seed=11, today=TODAY))


@pytest.fixture(scope="module")
def twenty_thousand() -> list[Tracing]:
    return list(generate_tracings(20_000, seed=5, today=TODAY))


def _dates(tracing: Tracing) -> Iterator[tuple[str, PartialDate]]:
    if tracing.subject is not None and tracing.subject.identifiers.date_of_birth is not None:
        yield "date_of_birth", tracing.subject.identifiers.date_of_birth
    details = tracing.details
    if isinstance(details, NacHistoryDetails) and details.completed_on is not None:
        yield "completed_on", details.completed_on
    if isinstance(details, ClearanceDetails):
        for name in ("granted_on", "access_granted_on", "basis_investigation_date", "separation_date"):
            value = getattr(details, name)
            if value is not None:
                yield name, value


def _year_indexed(tracing: Tracing) -> int | None:
    details = tracing.details
    if isinstance(details, FileDetails | OpenCaseDetails | ImpersonalTitleDetails):
        return details.year_indexed
    return None


# --- the run as a whole --------------------------------------------------------------------------------


def test_same_seed_same_output_and_another_seed_differs() -> None:
    first = list(generate_tracings(2_000, seed=3, today=TODAY))
    assert first == list(generate_tracings(2_000, seed=3, today=TODAY))
    other = list(generate_tracings(2_000, seed=4, today=TODAY))
    assert first != other
    assert {t.key for t in first} != {t.key for t in other}


def test_a_prefix_of_a_run_is_the_shorter_run() -> None:
    # Lazy generation: asking for fewer gives the beginning of the same stream (a person's
    # tracings may be cut short at the end, nothing else changes).
    long = list(generate_tracings(1_000, seed=9, today=TODAY))
    short = list(generate_tracings(600, seed=9, today=TODAY))
    assert long[:597] == short[:597]


@pytest.mark.parametrize("count", [0, 1, 2, 3, 4, 999, 5_001])
def test_exact_count(count: int) -> None:
    assert sum(1 for _ in generate_tracings(count, seed=count, today=TODAY)) == count


def test_negative_count_and_too_early_today_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        generate_tracings(-1)
    with pytest.raises(ValueError, match="today"):
        generate_tracings(5, today=dt.date(1999, 12, 31))


def test_keys_are_unique_and_look_like_agency_numbering(twenty_thousand: list[Tracing]) -> None:
    keys = [t.key for t in twenty_thousand]
    assert len(set(keys)) == len(keys)
    for tracing in twenty_thousand:
        assert tracing.key.agency in SUBMITTING_AGENCIES
        prefix, year, number = tracing.key.record_number.split("-")
        assert prefix.isalnum()
        assert 1975 <= int(year) <= TODAY.year
        assert len(number) >= 6
        assert number.isdigit()
        assert tracing.source_version == 1


def test_all_six_types_in_roughly_the_intended_mix(five_thousand: list[Tracing]) -> None:
    counts = Counter(t.type for t in five_thousand)
    assert set(counts) == set(TracingType)
    intended = {
        TracingType.FILE: 30.0,
        TracingType.CLEARANCE: 25.0,
        TracingType.NAC_HISTORY: 20.0,
        TracingType.OPEN_CASE: 10.0,
        TracingType.NAC_PENDING: 10.0,
        TracingType.IMPERSONAL_TITLE: 0.5,
    }
    total = sum(intended.values())
    for tracing_type, weight in intended.items():
        share = counts[tracing_type] / len(five_thousand)
        assert share == pytest.approx(weight / total, abs=0.03), tracing_type
    assert 0 < counts[TracingType.IMPERSONAL_TITLE] <= 0.015 * len(five_thousand)


def test_each_type_comes_from_the_agencies_that_hold_it(twenty_thousand: list[Tracing]) -> None:
    by_type: dict[TracingType | None, Counter[str]] = defaultdict(Counter)
    for tracing in twenty_thousand:
        by_type[tracing.type][tracing.key.agency] += 1
    assert {"ARMY-CCF", "DONCAF", "AF-497IG"} <= set(by_type[TracingType.CLEARANCE])
    assert not {"AFOSI", "ARMY-CRC", "NCIS"} & set(by_type[TracingType.CLEARANCE])
    assert {"AFOSI", "ARMY-CRC", "ARMY-IRR", "NCIS", "DSS"} <= set(by_type[TracingType.FILE])
    assert {"NCIS", "AFOSI", "ARMY-CRC"} <= set(by_type[TracingType.OPEN_CASE])
    for nac in (TracingType.NAC_PENDING, TracingType.NAC_HISTORY):
        assert by_type[nac].most_common(1)[0][0] == "DSS"


# --- persons and their identifiers ---------------------------------------------------------------------


def test_ssns_are_valid_and_unique_per_person(twenty_thousand: list[Tracing]) -> None:
    people: dict[str, set[tuple[PersonName, PartialDate | None]]] = defaultdict(set)
    missing = 0
    for tracing in twenty_thousand:
        if tracing.subject is None:
            continue
        ssn = tracing.subject.identifiers.ssn
        if not ssn:
            missing += 1
            continue
        assert len(ssn) == 9
        assert ssn.isdigit()
        assert stdnum_ssn.is_valid(ssn), ssn
        people[ssn].add((tracing.subject.name, tracing.subject.identifiers.date_of_birth))
    # One SSN, one person: the same name and date of birth on every tracing that carries it.
    assert all(len(names) == 1 for names in people.values())
    # Persons, not records: many people have more than one tracing.
    per_person = Counter(t.subject.identifiers.ssn for t in twenty_thousand if t.subject and t.subject.identifiers.ssn)
    assert sum(1 for n in per_person.values() if n > 1) > len(per_person) * 0.3
    assert max(per_person.values()) <= 3
    # About 5% of persons have none (older records), plus a few tracings that omit it.
    assert 0.03 < missing / len(twenty_thousand) < 0.10


def test_the_same_person_carries_the_same_name_and_pids(twenty_thousand: list[Tracing]) -> None:
    by_ssn: dict[str, list[Tracing]] = defaultdict(list)
    for tracing in twenty_thousand:
        if tracing.subject is not None and tracing.subject.identifiers.ssn:
            by_ssn[tracing.subject.identifiers.ssn].append(tracing)
    differing = 0
    for tracings in by_ssn.values():
        subjects = [t.subject for t in tracings if t.subject is not None]
        assert len({s.name for s in subjects}) == 1
        assert len({s.identifiers.date_of_birth for s in subjects}) == 1
        if len({(s.aliases, s.identifiers) for s in subjects}) > 1:
            differing += 1  # occasionally a record lacks the alias or a PID
    assert differing < len(by_ssn) * 0.1


def test_no_date_in_the_future_and_every_date_real(twenty_thousand: list[Tracing]) -> None:
    for tracing in twenty_thousand:
        for field, value in _dates(tracing):
            if value.is_full:
                assert value.to_date() <= TODAY, (field, value)
            else:
                assert field == "date_of_birth"
                assert (value.year, value.month) <= (TODAY.year, TODAY.month)
                dt.date(value.year, value.month or 1, 1)
        year = _year_indexed(tracing)
        if year is not None:
            assert 1975 <= year <= TODAY.year


@pytest.mark.parametrize("today", [dt.date(2024, 2, 29), dt.date(2031, 1, 1), None])
def test_no_date_in_the_future_for_other_todays(today: dt.date | None) -> None:
    reference = dt.date.today() if today is None else today
    for tracing in generate_tracings(3_000, seed=21, today=today):
        for _, value in _dates(tracing):
            first_day = dt.date(value.year, value.month or 1, value.day or 1)
            assert first_day <= reference
        year = _year_indexed(tracing)
        assert year is None or year <= reference.year


def test_dates_of_birth_adults_born_since_1940_some_partial(twenty_thousand: list[Tracing]) -> None:
    dobs = [
        t.subject.identifiers.date_of_birth
        for t in twenty_thousand
        if t.subject is not None and t.subject.identifiers.date_of_birth is not None
    ]
    adult = TODAY.replace(year=TODAY.year - 18)
    for dob in dobs:
        assert dt.date(dob.year, dob.month or 1, dob.day or 1) <= adult
        assert dob.year >= 1940
    year_only = sum(1 for d in dobs if d.month == 0)
    year_month = sum(1 for d in dobs if d.month != 0 and d.day == 0)
    assert 0.015 < year_only / len(dobs) < 0.05
    assert 0.008 < year_month / len(dobs) < 0.035


def test_places_of_birth(twenty_thousand: list[Tracing]) -> None:
    places = [t.subject.identifiers.place_of_birth for t in twenty_thousand if t.subject is not None]
    present = [p for p in places if p is not None]
    assert 0.02 < (len(places) - len(present)) / len(places) < 0.12
    for place in present:
        assert bool(place.us_state) != bool(place.country)
    states = Counter(p.us_state for p in present if p.us_state)
    assert states.most_common(1)[0][0] == "CA"
    assert "PR" in states
    foreign = Counter(p.country for p in present if p.country)
    assert 0.06 < sum(foreign.values()) / len(present) < 0.16
    assert {"DE", "PH", "MX", "KR"} <= set(foreign)
    assert any(p.city for p in present)


def test_names_follow_the_census(twenty_thousand: list[Tracing]) -> None:
    subjects = [t.subject for t in twenty_thousand if t.subject is not None]
    surnames = Counter(s.name.surname for s in subjects)
    assert surnames.most_common(1)[0][0] == "Smith"
    # Title-cased as a repository sends it.
    assert all(s.name.surname == s.name.surname.capitalize() for s in subjects)
    given = Counter(s.name.given_name for s in subjects)
    assert {"James", "John", "Robert", "Mary"} <= set(given)
    middles = [s.name.middle_name for s in subjects]
    assert 0.6 < sum(1 for m in middles if m) / len(middles) < 0.8
    assert any(len(m) == 1 for m in middles)
    suffixes = Counter(s.name.suffix for s in subjects if s.name.suffix)
    assert set(suffixes) <= SUFFIXES
    assert 0.005 < sum(suffixes.values()) / len(subjects) < 0.04
    with_alias = [s for s in subjects if s.aliases]
    assert 0.04 < len(with_alias) / len(subjects) < 0.12
    # Maiden names (another surname) and nicknames (another given name) both occur.
    assert any(a.surname != s.name.surname for s in with_alias for a in s.aliases)
    assert any(a.given_name != s.name.given_name for s in with_alias for a in s.aliases)


def test_roles_are_mostly_subject(twenty_thousand: list[Tracing]) -> None:
    roles = Counter(t.subject.role for t in twenty_thousand if t.subject is not None)
    total = sum(roles.values())
    assert roles.most_common(1)[0][0].value == "SUBJECT"
    assert roles.most_common(1)[0][1] / total > 0.85
    assert len(roles) == 3


# --- details per type ----------------------------------------------------------------------------------


def test_impersonal_titles_have_no_subject_and_predate_april_1997(twenty_thousand: list[Tracing]) -> None:
    titles = [t for t in twenty_thousand if t.type is TracingType.IMPERSONAL_TITLE]
    assert titles
    for tracing in titles:
        assert tracing.subject is None
        details = tracing.details
        assert isinstance(details, ImpersonalTitleDetails)
        assert 1975 <= details.year_indexed <= 1997
        assert details.title == details.title.upper()
        assert details.kind is not None
        assert details.custodian in AGENCIES
        assert details.file_number
    assert all(t.subject is not None for t in twenty_thousand if t.type is not TracingType.IMPERSONAL_TITLE)


def test_clearances_never_grant_access_above_eligibility(twenty_thousand: list[Tracing]) -> None:
    clearances = [t.details for t in twenty_thousand if isinstance(t.details, ClearanceDetails)]
    assert clearances
    for details in clearances:
        assert details.eligibility_level is not None
        assert details.access_level is not None
        assert _RANK[details.access_level] <= _RANK[details.eligibility_level]
        assert details.granted_on is not None
        granted = details.granted_on.to_date()
        if details.access_level is ClearanceLevel.NONE:
            assert details.access_granted_on is None
        else:
            assert details.access_granted_on is not None
            assert details.access_granted_on.to_date() >= granted
        assert details.basis_investigation_type in NAC_TYPES
        assert details.basis_investigation_date is not None
        assert details.basis_investigation_date.to_date() < granted
        if details.separation_date is not None:
            assert details.separation_date.to_date() > granted
        assert details.subject_category is not None
        assert 1 <= len(details.files_used) <= 2
    assert any(d.separation_date is not None for d in clearances)
    assert any(d.access_level is not d.eligibility_level for d in clearances)


def test_events_follow_the_person_s_age(twenty_thousand: list[Tracing]) -> None:
    for tracing in twenty_thousand:
        if tracing.subject is None or tracing.subject.identifiers.date_of_birth is None:
            continue
        born = tracing.subject.identifiers.date_of_birth.year
        details = tracing.details
        if isinstance(details, FileDetails | OpenCaseDetails):
            assert details.year_indexed >= born + 16
        elif isinstance(details, NacHistoryDetails):
            assert details.completed_on is not None
            assert details.completed_on.year >= born + 17
        elif isinstance(details, ClearanceDetails):
            assert details.granted_on is not None
            assert details.granted_on.year >= born + 18


def test_nac_fields_use_the_known_codes(twenty_thousand: list[Tracing]) -> None:
    outcomes: Counter[str] = Counter()
    retention_start = TODAY.replace(year=TODAY.year - 15)
    for tracing in twenty_thousand:
        details = tracing.details
        if isinstance(details, NacPendingDetails):
            assert details.requester_category in REQUESTER_CATEGORIES
            assert details.nac_type in NAC_TYPES
            assert details.case_number
        elif isinstance(details, NacHistoryDetails):
            assert details.nac_type in NAC_TYPES
            assert details.completed_on is not None
            completed = details.completed_on.to_date()
            # Kept 15 years after completion (then deleted), so never older than that.
            assert retention_start < completed <= TODAY
            assert completed.year >= 1985
            assert "FBI" in details.agencies_checked
            assert set(details.agencies_checked) <= set(AGENCIES)
            assert len(set(details.agencies_checked)) == len(details.agencies_checked) >= 2
            assert details.outcome is not None
            outcomes[details.outcome.value] += 1
    assert outcomes.most_common(1)[0][0] == "FAVORABLE"
    assert outcomes["INCOMPLETE"] > 0


def test_files_and_open_cases(twenty_thousand: list[Tracing]) -> None:
    custodian_is_owner = 0
    files = 0
    for tracing in twenty_thousand:
        details = tracing.details
        if isinstance(details, FileDetails):
            files += 1
            assert details.custodian in SUBMITTING_AGENCIES
            custodian_is_owner += details.custodian == tracing.key.agency
            assert details.file_number
        elif isinstance(details, OpenCaseDetails):
            assert details.location == details.location.upper()
            assert details.investigative_number
            assert details.year_indexed >= TODAY.year - 3
    assert custodian_is_owner / files > 0.75


# --- census accessors ----------------------------------------------------------------------------------


def test_census_accessors() -> None:
    surnames = iter_census_surnames()
    assert surnames[0][0] == "SMITH"
    assert surnames[0][1] == pytest.approx(1.006)
    assert len(surnames) > 80_000
    assert all(frequency > 0 for _, frequency in surnames)
    surnames.clear()  # a fresh list each call: the cache is not shared
    assert iter_census_surnames()[1][0] == "JOHNSON"
    assert census_given_names("M")[0][0] == "JAMES"
    assert census_given_names("F")[0][0] == "MARY"
    both = dict(census_given_names())
    assert both["JAMES"] > both["MARY"] > 0
    assert "MARY" in both
    assert "JAMES" in both


# --- the edit criteria ---------------------------------------------------------------------------------


def test_every_generated_tracing_passes_the_edit_criteria(five_thousand: list[Tracing]) -> None:
    for tracing in five_thousand:
        try:
            check_tracing(tracing, today=TODAY)
        except InvalidArgument as error:
            pytest.fail(f"{tracing.key} ({tracing.type}) fails the edit criteria: {error.violations}")
