"""The scale bench's inputs, generated once per work directory (`--reuse` keeps them):

* inputs/AGENCY.bin: every tracing of that agency as a serialized IngestRequest, length-prefixed, so the
  ingest clients only read bytes and send them (the generator is not what is measured);
* inputs/manifest.json: the chunks the ingest streams take, and the counts;
* inputs/names.tsv: key, surname, given name and "GIVEN SURNAME" (folded) for every name of every person
  tracing, aliases included: what the brute-force and PostgreSQL baselines search;
* inputs/people.json: people known to be in the store (a sample of the demo's, plus planted holders of the
  commonest American names), each with their tracings' keys: the truth the queries are judged by.

The tracings are `dcii demo`'s (indexer.demo.generate_tracings, census name frequencies), N minus the few
planted ones.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import random
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dcii.v1 import ingest_pb2  # noqa: E402
from indexer import edit_ssn  # noqa: E402
from indexer.demo import generate_tracings  # noqa: E402
from indexer.edit_criteria import check_tracing  # noqa: E402
from indexer.model import FileDetails, Identifiers, PartialDate, PersonName, Subject, Tracing, TracingKey  # noqa: E402
from indexer.normalize import fold  # noqa: E402
from search_service.convert import tracing_out  # noqa: E402

# The commonest surnames and given names of the 1990 census, as full names someone will surely ask for.
COMMON_NAMES = [
    ("Smith", "John"),
    ("Johnson", "James"),
    ("Williams", "Mary"),
    ("Garcia", "Maria"),
    ("Brown", "Robert"),
    ("Jones", "Michael"),
    ("Miller", "David"),
    ("Davis", "William"),
    ("Rodriguez", "Jose"),
    ("Martinez", "Linda"),
    ("Smith", "Mary"),
    ("Johnson", "John"),
]
PLANTED_AGENCY = "DSS"
SAMPLE_PEOPLE = 6000
_LENGTH = struct.Struct("<I")


@dataclass(frozen=True)
class Manifest:
    tracings: int
    seed: int
    planted: int
    agencies: list[str]
    # (agency, byte offset, byte length, requests) per chunk
    chunks: list[tuple[str, int, int, int]]
    generated_seconds: float

    @classmethod
    def load(cls, path: Path) -> Manifest:
        data = json.loads(path.read_text())
        data["chunks"] = [tuple(c) for c in data["chunks"]]
        return cls(**data)


def key_text(key: TracingKey) -> str:
    return f"{key.agency}|{key.record_number}"


def full_name(surname: str, given: str) -> str:
    """The form every baseline compares: "GIVEN SURNAME", folded."""
    return fold(f"{given} {surname}")


def _valid_ssn(rng: random.Random) -> str:
    while True:
        digits = f"{rng.randint(1, 665):03d}{rng.randint(1, 99):02d}{rng.randint(1, 9999):04d}"
        out: list[Any] = []
        if edit_ssn.ssn(digits, "ssn", out) and not out:
            return digits


def planted_tracings(today: dt.date, seed: int) -> list[Tracing]:
    """One FILE tracing each for holders of the commonest names, with an SSN and a full date of birth."""
    rng = random.Random(seed * 7919 + 1)
    out = []
    for i, (surname, given) in enumerate(COMMON_NAMES):
        dob = PartialDate(rng.randint(1950, 1995), rng.randint(1, 12), rng.randint(1, 28))
        subject = Subject(PersonName(surname, given), identifiers=Identifiers(_valid_ssn(rng), dob))
        number = f"DSS-BENCH-{i:05d}"
        tracing = Tracing(TracingKey(PLANTED_AGENCY, number), 1, subject, FileDetails("DSS", 2020, number))
        out.append(check_tracing(tracing, today=today))
    return out


def _person(tracing: Tracing, planted: bool) -> dict[str, Any] | None:
    """A queryable person: both name parts, an SSN and a full date of birth."""
    s = tracing.subject
    if s is None or not s.name.surname or not s.name.given_name or not s.identifiers.ssn:
        return None
    dob = s.identifiers.date_of_birth
    if dob is None or not dob.is_full:
        return None
    return {
        "surname": s.name.surname,
        "given": s.name.given_name,
        "ssn": s.identifiers.ssn,
        "dob": [dob.year, dob.month, dob.day],
        "keys": [key_text(tracing.key)],
        "planted": planted,
    }


class _Writer:
    """Per-agency request files, cut into chunks of at most `chunk` requests."""

    def __init__(self, directory: Path, chunk: int) -> None:
        self.directory, self.chunk = directory, chunk
        self.files: dict[str, IO[bytes]] = {}
        self.open_chunk: dict[str, list[int]] = {}  # agency -> [offset, length, count]
        self.chunks: list[tuple[str, int, int, int]] = []

    def add(self, agency: str, payload: bytes) -> None:
        handle = self.files.get(agency)
        if handle is None:
            handle = self.files[agency] = (self.directory / f"{agency}.bin").open("wb")
            self.open_chunk[agency] = [0, 0, 0]
        current = self.open_chunk[agency]
        handle.write(_LENGTH.pack(len(payload)))
        handle.write(payload)
        current[1] += _LENGTH.size + len(payload)
        current[2] += 1
        if current[2] >= self.chunk:
            self.chunks.append((agency, current[0], current[1], current[2]))
            self.open_chunk[agency] = [current[0] + current[1], 0, 0]

    def close(self) -> None:
        for agency, (offset, length, count) in self.open_chunk.items():
            if count:
                self.chunks.append((agency, offset, length, count))
        for handle in self.files.values():
            handle.close()


def generate(inputs: Path, tracings: int, seed: int, chunk: int) -> Manifest:
    """Write the inputs for `tracings` tracings; prints progress to stderr at large sizes."""
    started = time.perf_counter()
    inputs.mkdir(parents=True, exist_ok=True)
    today = dt.date.today()
    planted = planted_tracings(today, seed)
    demo_count = max(0, tracings - len(planted))
    rng = random.Random(seed)
    pick = min(1.0, SAMPLE_PEOPLE * 1.75 / max(1, demo_count))
    writer = _Writer(inputs, chunk)
    people: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    previous_name: PersonName | None = None
    request = ingest_pb2.IngestRequest()
    with (inputs / "names.tsv").open("w", encoding="utf-8") as names:
        stream = generate_tracings(demo_count, seed=seed, today=today)
        for number, tracing in enumerate(itertools.chain(planted, stream)):
            request.Clear()
            request.request_id = str(number)
            tracing_out(tracing, request.upsert, full_ssn=True)
            writer.add(tracing.key.agency, request.SerializeToString())
            subject = tracing.subject
            if subject is None:
                previous_name, current = None, None
                continue
            key = key_text(tracing.key)
            for name in (subject.name, *subject.aliases):
                surname, given = fold(name.surname), fold(name.given_name)
                names.write(f"{key}\t{surname}\t{given}\t{full_name(name.surname, name.given_name)}\n")
            # A person's tracings come one after another with the same name (indexer.demo).
            if current is not None and subject.name == previous_name:
                current["keys"].append(key)
            else:
                is_planted = number < len(planted)
                current = _person(tracing, is_planted) if is_planted or rng.random() < pick else None
                if current is not None:
                    people.append(current)
            previous_name = subject.name
            if number and number % 1_000_000 == 0:
                rate = number / (time.perf_counter() - started)
                print(f"  generated {number:,} tracings ({rate:,.0f}/s)", file=sys.stderr, flush=True)
    writer.close()
    (inputs / "people.json").write_text(json.dumps(people))
    manifest = Manifest(
        tracings=len(planted) + demo_count,
        seed=seed,
        planted=len(planted),
        agencies=sorted(writer.files),
        chunks=writer.chunks,
        generated_seconds=round(time.perf_counter() - started, 1),
    )
    (inputs / "manifest.json").write_text(json.dumps(manifest.__dict__))
    return manifest


def read_chunk(inputs: Path, agency: str, offset: int, length: int) -> list[bytes]:
    """The serialized requests of one chunk."""
    with (inputs / f"{agency}.bin").open("rb") as handle:
        handle.seek(offset)
        data = handle.read(length)
    out, at = [], 0
    while at < len(data):
        (size,) = _LENGTH.unpack_from(data, at)
        at += _LENGTH.size
        out.append(data[at : at + size])
        at += size
    return out


def load_people(inputs: Path) -> list[dict[str, Any]]:
    people: list[dict[str, Any]] = json.loads((inputs / "people.json").read_text())
    return people
