"""`dcii certs` and `dcii accredit`: the administrator's commands, run on the server's machine.

They work on the registry file directly (not over the wire), so that the first administrator can be
accredited before any server runs (`activity add --new-registry`); the running server reads the registry on
every call, so a suspension or revocation made here takes effect at once. Here: `certs`, accrediting and
listing activities and the helpers the other `accredit` modules share; dcii.cli.accredit_changes changes an
activity, dcii.cli.accredit_operators keeps the operators' accounts, dcii.cli.accredit_parsers is the
command line of them all.

Every change made here is an event in the data directory's audit trail (search_service.accreditation_events),
its actor "cli:<OS user>": who at the console. The trail is opened only when a change is to be recorded.
"""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import os
import sys
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from rich.console import Console
from rich.table import Table

from dcii.cli.accredit_certs import check_holder, checked_fingerprint, warn_if_not_yet_valid, warn_if_unchecked
from indexer.agencies import AGENCIES, SUBMITTING_AGENCIES
from indexer.exc import DciiError, NotFound, Unavailable
from search_service import accreditation_events as events
from search_service import pki
from search_service.accounting import AuditLog, load_or_create_key
from search_service.accreditation import Purpose, Role, Status
from search_service.registry import Registry

console = Console(markup=False)  # ids, paths and records are shown as they are, never read as markup


def _csv_enum(enum: type[Role] | type[Purpose], text: str) -> list[str]:
    values = [v.strip().upper() for v in text.split(",") if v.strip()]
    unknown = [v for v in values if v not in enum.__members__]
    if unknown:
        raise SystemExit(
            f"dcii: unknown {enum.__name__.lower()}: {', '.join(unknown)} (choose from {', '.join(enum.__members__)})"
        )
    return values


def _certs_refusal(error: Exception) -> SystemExit:
    """A refusal of `dcii certs` (a file already there, a reserved or malformed name): one line."""
    return SystemExit(f"dcii: {error}")


def _ca_refusal(directory: str, error: OSError) -> SystemExit:
    """The CA cannot be read: its key moved offline (as the RUNBOOK says to do once the certificates are
    issued), or --dir mistyped or left at its default. One line saying which, not a traceback."""
    missing = Path(error.filename or "").name if isinstance(error, FileNotFoundError) else ""
    if missing == "ca-key.pem":
        return SystemExit(
            f"dcii: no CA key in {directory}: bring the CA's key back (RUNBOOK, Rotating certificates) or pass --dir"
        )
    if missing == "ca.pem":
        return SystemExit(f"dcii: no CA in {directory}: pass --dir, the directory holding ca.pem and ca-key.pem")
    return SystemExit(f"dcii: {error.filename or directory}: {error.strerror or type(error).__name__}")


def cmd_certs_init(args: argparse.Namespace) -> None:
    try:
        paths = pki.init_pki(Path(args.dir), activities=[], hostnames=tuple(args.hostname), force=args.force)
    except (FileExistsError, ValueError) as error:
        raise _certs_refusal(error) from None
    console.print(f"CA and server certificate written to {args.dir} ({len(paths)} files)")


# The stems of the PKI's own files (search_service.pki refuses them as activity ids in the CA's directory):
# written elsewhere with --out --force, a client pair would replace a server's or a CA's certificate.
_PKI_OWN_STEMS = frozenset({"ca", "server"})


# A client certificate's validity, in days: `certs issue --days` (the server certificate's default, too).
ISSUE_DAYS_DEFAULT, ISSUE_DAYS_MAX = 825, 825
CA_DIR_DEFAULT = "var/pki"


def _issued_agency(args: argparse.Namespace) -> str:
    """The agency a client certificate is made out to (its O, fixed once issued). With --data, the activity
    must be accredited in that registry, to that agency; without, the agency must be one the index knows
    (docs/TRACING_FORMAT.md). `certs issue` took any text: a typo'd agency was issued, and the certificate
    had to be issued again (an administrator's UAT). A component without a repository (accredited with a
    warning) is issued one after it is accredited, with --data."""
    agency: str = args.agency.strip().upper()
    if not agency:
        raise SystemExit("dcii: --agency: the activity's agency code is required")
    if args.data is None:
        if agency not in AGENCIES:
            raise SystemExit(
                f"dcii: --agency {agency}: not an agency the index knows ({', '.join(sorted(AGENCIES))}), and a"
                " certificate's agency cannot be changed once issued: check the spelling; a component without a"
                " repository: accredit the activity first, then issue with --data DIR (its registry)"
            )
        return agency
    registry = _registry(args)
    try:
        accredited = registry.activity(args.activity)
    except NotFound:
        raise SystemExit(
            f"dcii: {args.activity}: no such activity in {Path(args.data) / 'registry.db'}: check the activity id"
            " and --data (an activity's first certificate is issued before it is accredited: without --data)"
        ) from None
    finally:
        registry.close()
    if accredited.agency.upper() != agency:
        raise SystemExit(f"dcii: --agency {agency}: {args.activity} is accredited to agency {accredited.agency}")
    return str(accredited.agency)


def _checked_days(days: int, ca_dir: Path) -> None:
    """--days within 1..ISSUE_DAYS_MAX, and not past the CA's own expiry (verifiers refuse such a chain)."""
    if not 1 <= days <= ISSUE_DAYS_MAX:
        raise SystemExit(f"dcii: --days {days}: a client certificate is valid 1 to {ISSUE_DAYS_MAX} days")
    try:
        ca_expires = x509.load_pem_x509_certificate((ca_dir / "ca.pem").read_bytes()).not_valid_after_utc
    except (OSError, ValueError):
        return  # the issue itself says what is wrong with the CA, in one line
    left = (ca_expires - dt.datetime.now(dt.UTC)).days
    if days > left:
        raise SystemExit(
            f"dcii: --days {days}: the CA in {ca_dir} expires on {ca_expires:%Y-%m-%d}, and a certificate"
            f" cannot outlive it: at most --days {max(left, 0)} (or renew the CA: RUNBOOK, Rotating certificates)"
        )


def cmd_certs_issue(args: argparse.Namespace) -> None:
    """A client pair from the CA in --dir, written there, or into --out: an activity's second terminal needed
    another name or --force, and --force overwrote the first terminal's pair in the CA's directory, the PEM
    that `revoke-cert` takes (an administrator's UAT). Both terminals' certificates name the activity. What it
    prints names the CA that issued it (the default --dir said nothing) and until when it is valid."""
    ca_dir = Path(args.dir or CA_DIR_DEFAULT)
    out = Path(args.out) if args.out else ca_dir
    elsewhere = out.resolve() != ca_dir.resolve()
    stem = args.activity
    if elsewhere and (stem.casefold() in _PKI_OWN_STEMS or stem.casefold().endswith("-key")):
        raise SystemExit(f"dcii: activity id {stem!r} is reserved for the PKI's own files")
    for target in (out / f"{stem}.pem", out / f"{stem}-key.pem"):
        if target.exists() and not args.force:
            raise SystemExit(
                f"dcii: {target} already exists: --out DIR writes another terminal's pair elsewhere;"
                " --force replaces it (the key there is lost)"
            )
    agency = _issued_agency(args)
    _checked_days(args.days, ca_dir)
    try:
        if elsewhere:
            issued = pki.issue_client_cert(pki.load_issued(ca_dir, "ca"), stem, agency, valid_days=args.days)
            out.mkdir(mode=0o700, parents=True, exist_ok=True)
            cert, _key = pki.write_pem_pair(issued, out, stem)
        else:
            cert, _key = pki.issue_client_into(ca_dir, stem, agency, valid_days=args.days, force=args.force)
    except (FileExistsError, ValueError) as error:
        raise _certs_refusal(error) from None
    except OSError as error:
        raise _ca_refusal(str(ca_dir), error) from None
    pem = cert.read_bytes()
    expires = x509.load_pem_x509_certificate(pem).not_valid_after_utc
    console.print(f"client certificate for {stem}: {cert}")
    console.print(f"fingerprint: {pki.fingerprint(pem)}")
    which = f"{ca_dir}" + ("" if args.dir else " (no --dir given: the default)")
    until = f"{expires:%Y-%m-%d %H:%M} UTC"
    console.print(f"issued to {stem} of {agency} by the CA in {which}, valid until {until} ({args.days} days)",
                  soft_wrap=True)  # fmt: skip


def cmd_certs_server(args: argparse.Namespace) -> None:
    try:
        cert, _key = pki.issue_server_into(
            Path(args.dir), args.hostname, args.ip, valid_days=args.days, out=Path(args.out) if args.out else None
        )
    except (FileExistsError, ValueError) as error:
        raise _certs_refusal(error) from None
    except OSError as error:
        raise _ca_refusal(args.dir, error) from None
    console.print(f"server certificate for {', '.join([*args.hostname, *args.ip])}: {cert}")
    console.print("the CA is unchanged: restart the instances one at a time to serve it")


def _registry(args: argparse.Namespace, *, may_create: bool = False) -> Registry:
    """The registry of `--data`. On a directory without one every command is refused in one line: a
    mistyped `--data` made a new registry (and audit trail, and key) where nobody would look, and the
    administrator read "accredited" (an administrator's UAT). Only `activity add --new-registry`
    (`may_create`) makes one: a data directory's first activity, before any server ran on it (`dcii serve`
    makes the registry at its first start)."""
    path = Path(args.data) / "registry.db"
    if not path.exists():
        if not may_create:
            raise SystemExit(
                f"dcii: no registry at {path}: is --data right? (a new data directory's first activity:"
                " `dcii accredit --data DIR activity add ... --new-registry`)"
            )
        print(f"a new registry: {path}")  # not rich: a long path must stay on one line
    return Registry(path)


def console_actor() -> str:
    """The audit trail's actor for a change made here: the OS user running the command."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):  # no login name in the environment and no passwd entry (a bare container uid)
        return f"cli:uid-{os.getuid()}"


class Trail:
    """The audit trail of a data directory, opened at the first change to record (a refused change makes
    neither trail nor key), closed at the end of the `with` block.

    The order, change then event then commit: `recorder` gives the registry's `record` hook, which writes
    the event inside the registry's transaction, after the change and before its commit. If the trail
    cannot be written (unwritable, another writer past the timeout, another key), the change is rolled
    back and the command says so on stderr and exits non-zero: the administrator can run it again once the
    trail is fixed. Recording after the commit instead would leave, on such a failure, a change the trail
    never shows, which no auditor could find; this order can err only the other way (the registry's
    commit failing after the event is durable: one event too many, visible against the registry)."""

    def __init__(self, data_dir: Path, *, actor: str | None = None) -> None:
        self._data_dir = data_dir
        self._actor = actor or console_actor()
        self._audit: AuditLog | None = None

    def recorder(self, change: events.Change) -> Callable[[], None]:
        def record() -> None:
            try:
                if self._audit is None:
                    key = load_or_create_key(self._data_dir / "audit.key")
                    self._audit = AuditLog(self._data_dir / "audit.db", key=key)
                self._audit.record_event(change.kind, self._actor, change.detail)
            except (DciiError, OSError) as error:
                reason = error.message if isinstance(error, DciiError) else f"{error.__class__.__name__}: {error}"
                raise Unavailable(f"{change.kind} not made: the audit trail cannot be written ({reason})") from error

        return record

    def __enter__(self) -> Trail:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._audit is not None:
            self._audit.close()


# Every query and batch names a purpose, refused unless the activity is accredited for it.
_NEED_A_PURPOSE = frozenset({Role.QUERIER, Role.BATCH})


def _checked_agency(text: str, roles: list[Role]) -> str:
    """The activity's agency code. A SUBMITTER writes tracings its agency owns, and only a submitting agency
    may own one (docs/TRACING_FORMAT.md): any other code could never write anything, so it is refused. A
    querying activity may belong to a component that holds no repository: an unknown code is accredited,
    with a warning (cmd_activity_add), in case it is a typo."""
    agency = text.strip().upper()
    if Role.SUBMITTER in roles and agency not in SUBMITTING_AGENCIES:
        raise SystemExit(
            f"dcii: --agency {agency}: a SUBMITTER writes its own agency's tracings, and only these agencies own"
            f" tracings: {', '.join(sorted(SUBMITTING_AGENCIES))} (docs/TRACING_FORMAT.md)"
        )
    return agency


def cmd_activity_add(args: argparse.Namespace) -> None:
    roles = [Role(r) for r in _csv_enum(Role, args.roles)]
    purposes = [Purpose(p) for p in _csv_enum(Purpose, args.purposes)]
    # (PEER beside another role is refused by the registry, naming that rule: the more telling refusal.)
    if not purposes and _NEED_A_PURPOSE.intersection(roles) and Role.PEER not in roles:
        raise SystemExit(
            "dcii: --purposes: a QUERIER or BATCH activity needs at least one purpose (every query names one,"
            " refused unless the activity is accredited for it)"
        )
    if not args.agency.strip():
        raise SystemExit("dcii: --agency: the activity's agency code is required")
    prints = [checked_fingerprint(cert, args.pki) for cert in args.cert or ()]  # an unreadable one: no change
    agency = _checked_agency(args.agency, roles)
    for cert in args.cert or ():
        check_holder(cert, args.activity_id, agency)
    registry = _registry(args, may_create=args.new_registry)
    with Trail(Path(args.data)) as trail:
        record = trail.recorder(events.accredited(args.activity_id, agency, roles, purposes))
        registry.add_activity(args.activity_id, agency, roles, purposes, record=record)
        for fingerprint in prints:
            record = trail.recorder(events.certificate_added(args.activity_id, fingerprint))
            registry.add_certificate(args.activity_id, fingerprint, record=record)
    console.print(f"accredited {args.activity_id}")
    for cert in args.cert or ():
        warn_if_not_yet_valid(cert)
    warn_if_unchecked(args.cert or [], args.pki)
    if agency not in AGENCIES:
        print(
            f"dcii: warning: --agency {agency} is not an agency the index knows (docs/TRACING_FORMAT.md); an"
            " activity that does not submit may belong to a component without a repository: check the spelling",
            file=sys.stderr,
        )


def cmd_activity_cert(args: argparse.Namespace) -> None:
    fingerprint = checked_fingerprint(args.cert, args.pki)
    registry = _registry(args)
    check_holder(args.cert, args.activity_id, registry.activity(args.activity_id).agency)
    with Trail(Path(args.data)) as trail:
        record = trail.recorder(events.certificate_added(args.activity_id, fingerprint))
        registry.add_certificate(args.activity_id, fingerprint, record=record)
    console.print(f"certificate added to {args.activity_id}")
    warn_if_not_yet_valid(args.cert)
    warn_if_unchecked([args.cert], args.pki)


STATUS_OF_ACTION = {"suspend": Status.SUSPENDED, "revoke": Status.REVOKED, "reinstate": Status.ACTIVE}


def cmd_activity_status(args: argparse.Namespace) -> None:
    """Suspend, revoke or reinstate. An activity already in that state is left as it is and nothing is
    recorded: a second suspend printed "is now SUSPENDED" and put a second ACTIVITY_STATUS_SET event in the
    trail for one change (an administrator's UAT), as `operator reinstate` no longer does. A revoke of a
    REVOKED activity that has a certificate again (added after the revoke) is not a no-op: it revokes that."""
    status = STATUS_OF_ACTION[args.action]
    registry = _registry(args)
    before = registry.activity(args.activity_id)
    if before.already(status):
        console.print(f"{before.activity_id} is already {status.value}: nothing changed")
    else:
        with Trail(Path(args.data)) as trail:
            record = trail.recorder(events.activity_status_set(args.activity_id, status))
            activity = registry.set_activity_status(args.activity_id, status, record=record)
        console.print(f"{activity.activity_id} is now {activity.status.value} (was {before.status.value})")
    activity = registry.activity(args.activity_id)
    if status is Status.ACTIVE and not activity.fingerprints:
        # A revoke revoked its certificates for good: reinstated, it still cannot connect. The reinstate stands
        # (exit 0: it was made and recorded, and the RUNBOOK's order add-cert then reinstate never comes here);
        # this says what is missing rather than leaving "ACTIVE" to be read as "working".
        print(
            f"dcii: {activity.activity_id} has no certificate and cannot connect:"
            f" `dcii accredit activity add-cert {activity.activity_id} CERT.pem` (a new one: `dcii certs issue`)",
            file=sys.stderr,
        )


def folding_table(*headers: str, title: str | None = None) -> Table:
    """A table whose cells wrap, never elide: an 80-column terminal showed "DEMO-ADJUDI…", an id nobody could
    type into the next command."""
    table = Table(title=title)
    for header in headers:
        table.add_column(header, overflow="fold")
    return table


def cmd_activity_list(args: argparse.Namespace) -> None:
    table = folding_table("activity", "agency", "roles", "purposes", "status", "certificates")
    for a in _registry(args).list_activities():
        table.add_row(
            a.activity_id,
            a.agency,
            ",".join(sorted(a.roles)),
            ",".join(sorted(a.purposes)),
            a.status.value,
            str(len(a.fingerprints)),
        )
    console.print(table)
