"""`dcii serve --demo`: a working index in one command.

On the first start in a data directory it makes the PKI, accredits four demo activities with one
operator each (random passwords written beside their profiles, mode 0600), and loads synthetic
tracings through the same edit criteria as every submission. Later starts reuse all of it.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from dcii.cli.admin import Trail
from indexer.demo import generate_tracings
from indexer.edit_criteria import check_tracing
from indexer.model import Tracing
from indexer.store.base import TracingStore, Upsert
from indexer.store.factory import open_store
from search_service import accreditation_events as events
from search_service import pki
from search_service.accreditation import Purpose, Role
from search_service.registry import Registry

_ALL_QUERY_PURPOSES = [p for p in Purpose if p is not Purpose.PRIVACY_ACT_REQUEST]


@dataclass(frozen=True)
class DemoActivity:
    activity_id: str
    agency: str
    roles: tuple[Role, ...]
    purposes: tuple[Purpose, ...]
    operator: str
    terminal_purpose: str = ""  # written into the operator's profile: the purpose `dcii search` states for it


DEMO_ACTIVITIES = (
    DemoActivity("DEMO-ADMIN", "DSS", (Role.ADMINISTRATOR,), (), "admin"),
    DemoActivity(
        "DEMO-ADJUDICATOR",
        "ARMY-CCF",
        (Role.QUERIER, Role.BATCH),
        tuple(_ALL_QUERY_PURPOSES),
        "adjudicator",
        "security_clearance",
    ),
    DemoActivity("DEMO-PRIVACY", "DSS", (Role.PRIVACY_OFFICER, Role.QUERIER), tuple(Purpose), "privacy"),
    DemoActivity("DEMO-NCIS", "NCIS", (Role.SUBMITTER,), (), "ncis-connector"),
)


def _write_secret(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text + "\n")


def bootstrap(data_dir: Path, pki_dir: Path, *, port: int, count: int, seed: int, store_url: str | None = None) -> Path:
    """Make everything the demo needs (once); returns the profiles directory. The tracings go to `store_url`
    (indexer.store.factory) or, by default, the embedded store in `data_dir`."""
    profiles = data_dir / "profiles"
    marker = data_dir / "demo-ready"
    if marker.exists():
        return profiles
    data_dir.mkdir(parents=True, exist_ok=True)
    if not (pki_dir / "ca.pem").exists():
        pki.init_pki(pki_dir, activities=[(a.activity_id, a.agency) for a in DEMO_ACTIVITIES])
    registry = Registry(data_dir / "registry.db")
    profiles.mkdir(mode=0o700, exist_ok=True)
    known = {a.activity_id for a in registry.list_activities()}
    # Who may use the index is recorded in the audit trail, as `dcii accredit` records it.
    with Trail(data_dir, actor="demo bootstrap") as trail:
        for demo in DEMO_ACTIVITIES:
            if demo.activity_id in known:
                continue
            if not (pki_dir / f"{demo.activity_id}.pem").exists():
                pki.issue_client_into(pki_dir, demo.activity_id, demo.agency)
            accredited = events.accredited(demo.activity_id, demo.agency, demo.roles, demo.purposes)
            registry.add_activity(
                demo.activity_id, demo.agency, demo.roles, demo.purposes, record=trail.recorder(accredited)
            )
            fingerprint = pki.fingerprint((pki_dir / f"{demo.activity_id}.pem").read_bytes())
            added = events.certificate_added(demo.activity_id, fingerprint)
            registry.add_certificate(demo.activity_id, fingerprint, record=trail.recorder(added))
            password = secrets.token_urlsafe(18)
            made = events.operator_added(demo.operator, demo.activity_id)
            registry.add_operator(demo.operator, demo.activity_id, password, record=trail.recorder(made))
            _write_secret(profiles / f"{demo.operator}.password", password)
            profile = {
                "server": f"localhost:{port}",
                "ca": str((pki_dir / "ca.pem").resolve()),
                "cert": str((pki_dir / f"{demo.activity_id}.pem").resolve()),
                "key": str((pki_dir / f"{demo.activity_id}-key.pem").resolve()),
                "account_code": demo.operator,
                "password_file": f"{demo.operator}.password",
            }
            if demo.terminal_purpose:  # why the terminal's queries are asked (dcii search --purpose)
                profile["purpose"] = demo.terminal_purpose
            (profiles / f"{demo.operator}.json").write_text(json.dumps(profile, indent=2) + "\n")
    registry.close()
    load_demo(open_store(store_url or data_dir / "index.db"), count=count, seed=seed)
    marker.write_text(f"count={count} seed={seed}\n")
    return profiles


def load_demo(store: TracingStore, *, count: int, seed: int, chunk: int = 2000) -> int:
    """Generate and store `count` tracings (through the edit criteria); closes the store."""
    today = dt.date.today()
    stored = 0
    batch: list[Upsert] = []
    try:
        for tracing in generate_tracings(count, seed=seed, today=today):
            batch.append(Upsert(check_tracing(tracing, today=today)))
            if len(batch) >= chunk:
                stored += len(store.write(batch, actor="demo"))
                batch = []
        stored += len(store.write(batch, actor="demo"))
    finally:
        store.close()
    return stored


def sample_subject(count: int, seed: int) -> Tracing:
    """A demo person with an SSN and a full date of birth, to show the README's queries on."""
    for tracing in generate_tracings(min(count, 500), seed=seed):
        subject = tracing.subject
        if subject is None:
            continue
        ids = subject.identifiers
        if ids.ssn and ids.date_of_birth is not None and ids.date_of_birth.is_full and subject.name.given_name:
            return tracing
    raise LookupError("no suitable demo subject")


def _misspelled(surname: str) -> str:
    """The surname with one letter dropped, to show what FUZZY finds."""
    return surname if len(surname) < 4 else surname[:2] + surname[3:]


def instructions(profiles: Path, count: int, seed: int) -> str:
    subject = sample_subject(count, seed).subject
    assert subject is not None
    name, ids = subject.name, subject.identifiers
    dob = ids.date_of_birth.iso() if ids.date_of_birth else ""
    profile = profiles / "adjudicator.json"
    given_initial = name.given_name[:1]
    return "\n".join(
        [
            "",
            "The index is serving (mutual TLS) with demo data. From another terminal:",
            "",
            f"  export DCII_PROFILE={profile}",
            f"  .venv/bin/dcii search --mode exact --surname '{name.surname}' --given '{name.given_name}' "
            f"--ssn {ids.ssn}",
            f"  .venv/bin/dcii search --mode exact --surname '{name.surname}' --given '{name.given_name}' --dob {dob}",
            f"  .venv/bin/dcii search --mode name-only --surname '{name.surname}' --given '{name.given_name}'",
            f"  .venv/bin/dcii search --mode nonstandard --surname '{name.surname}' --given {given_initial}",
            f"  .venv/bin/dcii search --mode fuzzy --surname '{_misspelled(name.surname)}' --given '{name.given_name}'",
            "",
            f"Other demo operators (privacy officer, administrator, an NCIS submitter): {profiles}/*.json",
            "Stop with Ctrl-C.",
            "",
        ]
    )
