"""Wire tracings for tests, valid unless a test spoils them."""

from __future__ import annotations

from dcii.v1 import ingest_pb2, tracing_pb2


def person(
    agency: str = "NCIS",
    record: str = "NCIS-0001",
    version: int = 1,
    *,
    surname: str = "Whitfield",
    given: str = "Harold",
    middle: str = "James",
    suffix: str = "",
    ssn: str = "318-52-4471",
    dob: tuple[int, int, int] | None = (1971, 4, 12),
    state: str = "VA",
    aliases: tuple[tuple[str, str], ...] = (),
    year_indexed: int = 2015,
) -> tracing_pb2.Tracing:
    """A FILE tracing on one person."""
    tracing = tracing_pb2.Tracing(source_version=version)
    tracing.key.agency, tracing.key.record_number = agency, record
    name = tracing.subject.name
    name.surname, name.given_name, name.middle_name, name.suffix = surname, given, middle, suffix
    for alias_surname, alias_given in aliases:
        tracing.subject.aliases.add(surname=alias_surname, given_name=alias_given)
    tracing.subject.role = tracing_pb2.SUBJECT_ROLE_SUBJECT
    ids = tracing.subject.identifiers
    ids.ssn = ssn
    if dob is not None:
        ids.date_of_birth.year, ids.date_of_birth.month, ids.date_of_birth.day = dob
    if state:
        ids.place_of_birth.us_state = state
    tracing.file.custodian, tracing.file.year_indexed = agency, year_indexed
    tracing.file.file_number = f"F-{record}"
    return tracing


def open_case(agency: str = "NCIS", record: str = "NCIS-OC-1", version: int = 1, **kw: object) -> tracing_pb2.Tracing:
    tracing = person(agency, record, version, **kw)  # type: ignore[arg-type]
    tracing.open_case.location = "NCIS RESIDENT AGENCY NORFOLK VA"
    tracing.open_case.year_indexed = 2024
    tracing.open_case.investigative_number = f"IN-{record}"
    return tracing


def nac_pending(agency: str = "DSS", record: str = "DSS-NP-1", version: int = 1, **kw: object) -> tracing_pb2.Tracing:
    tracing = person(agency, record, version, **kw)  # type: ignore[arg-type]
    tracing.nac_pending.case_number = f"C-{record}"
    tracing.nac_pending.requester_category = "MILITARY"
    tracing.nac_pending.nac_type = "NACLC"
    return tracing


def nac_history(agency: str = "DSS", record: str = "DSS-NH-1", version: int = 1, **kw: object) -> tracing_pb2.Tracing:
    tracing = person(agency, record, version, **kw)  # type: ignore[arg-type]
    h = tracing.nac_history
    h.completed_on.year, h.completed_on.month, h.completed_on.day = 2020, 6, 1
    h.agencies_checked.extend(["FBI", "OPM"])
    h.outcome = tracing_pb2.NAC_OUTCOME_FAVORABLE
    return tracing


def upsert(tracing: tracing_pb2.Tracing, request_id: str = "") -> ingest_pb2.IngestRequest:
    return ingest_pb2.IngestRequest(request_id=request_id or tracing.key.record_number, upsert=tracing)


def delete(agency: str, record: str, version: int, request_id: str = "del") -> ingest_pb2.IngestRequest:
    request = ingest_pb2.IngestRequest(request_id=request_id)
    request.delete.key.agency, request.delete.key.record_number = agency, record
    request.delete.source_version = version
    return request
