"""`dcii certs` and `dcii accredit`: the administrator's commands, run on the server's machine.

They work on the registry file directly (not over the wire), so that the first administrator can be
accredited before any server runs; the running server reads the registry on every call, so a
suspension or revocation made here takes effect at once.

Every change made here is an event in the data directory's audit trail (search_service.accreditation_events),
its actor "cli:<OS user>": who at the console. The trail is opened only when a change is to be recorded.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable
from pathlib import Path

from rich.console import Console
from rich.table import Table

from dcii.cli.accredit_certs import check_holder, checked_fingerprint
from indexer.agencies import AGENCIES, SUBMITTING_AGENCIES
from indexer.exc import DciiError, Unavailable
from search_service import accreditation_events as events
from search_service import pki
from search_service.account_sweep import sweep_with_trail_at
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


def cmd_certs_issue(args: argparse.Namespace) -> None:
    try:
        cert, _key = pki.issue_client_into(Path(args.dir), args.activity, args.agency, force=args.force)
    except (FileExistsError, ValueError) as error:
        raise _certs_refusal(error) from None
    except OSError as error:
        raise _ca_refusal(args.dir, error) from None
    console.print(f"client certificate for {args.activity}: {cert}")
    console.print(f"fingerprint: {pki.fingerprint(cert.read_bytes())}")


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
    """The registry of `--data`. Only `activity add` (a data directory's first command) may make one: any
    other command on a directory without a registry is a mistyped `--data`, and is refused in one line
    rather than leaving an empty registry (and audit trail) where nobody will look."""
    path = Path(args.data) / "registry.db"
    if not path.exists():
        if not may_create:
            raise SystemExit(
                f"dcii: no registry at {path}: is --data right? (`dcii accredit activity add` makes a new one)"
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
    querying activity may belong to a component that holds no repository (the RUNBOOK's own example is
    NAVY): an unknown code is accredited, with a warning (cmd_activity_add), in case it is a typo."""
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
    registry = _registry(args, may_create=True)
    with Trail(Path(args.data)) as trail:
        record = trail.recorder(events.accredited(args.activity_id, agency, roles, purposes))
        registry.add_activity(args.activity_id, agency, roles, purposes, record=record)
        for fingerprint in prints:
            record = trail.recorder(events.certificate_added(args.activity_id, fingerprint))
            registry.add_certificate(args.activity_id, fingerprint, record=record)
    console.print(f"accredited {args.activity_id}")
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


_STATUS = {"suspend": Status.SUSPENDED, "revoke": Status.REVOKED, "reinstate": Status.ACTIVE}


def cmd_activity_status(args: argparse.Namespace) -> None:
    status = _STATUS[args.action]
    with Trail(Path(args.data)) as trail:
        record = trail.recorder(events.activity_status_set(args.activity_id, status))
        activity = _registry(args).set_activity_status(args.activity_id, status, record=record)
    console.print(f"{activity.activity_id} is now {activity.status.value}")
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


def _read_password(args: argparse.Namespace) -> str:
    """--password-file, else DCII_PASSWORD, else asked twice at the terminal; each failure one line (a
    mistyped file, or no terminal to ask at, ended in a traceback: an administrator's UAT)."""
    if args.password_file:
        try:
            return Path(args.password_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            why = error.strerror if isinstance(error, OSError) and error.strerror else "not UTF-8 text"
            raise SystemExit(f"dcii: --password-file {args.password_file}: {why}") from None
    from_env = os.environ.get("DCII_PASSWORD")
    if from_env:
        return from_env
    if not sys.stdin.isatty():
        raise SystemExit("dcii: no password: give --password-file FILE or set DCII_PASSWORD (no terminal to ask at)")
    try:
        first = getpass.getpass("password: ")
        again = getpass.getpass("again: ")
    except (EOFError, KeyboardInterrupt):
        raise SystemExit("dcii: no password given: nothing changed") from None
    if first != again:
        raise SystemExit("dcii: the passwords differ: nothing changed")
    return first


def cmd_operator_add(args: argparse.Namespace) -> None:
    password = _read_password(args)
    with Trail(Path(args.data)) as trail:
        record = trail.recorder(events.operator_added(args.account_code, args.activity))
        _registry(args).add_operator(args.account_code, args.activity, password, record=record)
    console.print(f"operator {args.account_code} added to {args.activity}")


def cmd_operator_password(args: argparse.Namespace) -> None:
    password = _read_password(args)
    with Trail(Path(args.data)) as trail:
        record = trail.recorder(events.operator_password_set(args.account_code))
        _registry(args).set_password(args.account_code, password, record=record)
    console.print(f"{args.account_code} has a new password; its sessions ended, its lock (if any) cleared")


def cmd_operator_status(args: argparse.Namespace) -> None:
    status = _STATUS[args.action]
    with Trail(Path(args.data)) as trail:
        record = trail.recorder(events.operator_status_set(args.account_code, status))
        _registry(args).set_operator_status(args.account_code, status, record=record)
    console.print(f"{args.account_code} is now {status.value}")


def cmd_operator_list(args: argparse.Namespace) -> None:
    registry = _registry(args)
    # The sweep first (as the server makes at its start and daily): a dormant account must not be listed
    # ACTIVE. Each disabling goes into the audit trail, as the server's do.
    for account in sweep_with_trail_at(registry, Path(args.data)):
        console.print(f"{account} disabled: unused for three years", markup=False)
    table = folding_table("account", "activity", "status", "last login", "locked until")
    for o in registry.list_operators():
        table.add_row(
            o.account_code,
            o.activity_id,
            o.status.value,
            o.last_login_at.isoformat(timespec="seconds") if o.last_login_at else "never",
            o.locked_until.isoformat(timespec="seconds") if o.locked_until else "",
        )
    console.print(table)


def add_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser], data_default: str) -> None:
    certs = commands.add_parser("certs", help="make the CA, the server certificate and client certificates")
    certs_sub = certs.add_subparsers(dest="certs_command", required=True)
    init = certs_sub.add_parser("init", help="a new CA and server certificate")
    init.add_argument("--dir", default="var/pki")
    init.add_argument("--hostname", action="append", default=["localhost"], help="server name (repeatable)")
    init.add_argument("--force", action="store_true", help="replace an existing CA (invalidates every certificate)")
    init.set_defaults(run=cmd_certs_init)
    issue = certs_sub.add_parser("issue", help="a client certificate for an activity")
    issue.add_argument("activity")
    issue.add_argument("--agency", required=True)
    issue.add_argument("--dir", default="var/pki")
    issue.add_argument("--force", action="store_true")
    issue.set_defaults(run=cmd_certs_issue)
    server = certs_sub.add_parser("server", help="a new server certificate from the existing CA (rotation)")
    server.add_argument("--dir", default="var/pki", help="where the CA is")
    server.add_argument("--hostname", action="append", required=True, help="server name (repeatable)")
    server.add_argument("--ip", action="append", default=[], help="server IP address (repeatable)")
    server.add_argument("--days", type=int, default=825, help="validity in days")
    server.add_argument("--out", help="write server.pem / server-key.pem here (default: --dir)")
    server.set_defaults(run=cmd_certs_server)
    _add_accredit_parsers(commands, data_default)


def _add_accredit_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser], data_default: str) -> None:
    accredit = commands.add_parser("accredit", help="accredit activities and operators")
    accredit.add_argument("--data", default=data_default, help="the server's data directory")
    accredit.add_argument(
        "--pki", help="the CA's directory (as `dcii serve --pki`): a --cert it did not issue is refused"
    )
    kinds = accredit.add_subparsers(dest="accredit_kind", required=True)
    activity = kinds.add_parser("activity").add_subparsers(dest="activity_command", required=True)
    add = activity.add_parser("add")
    add.add_argument("activity_id")
    add.add_argument("--agency", required=True)
    add.add_argument("--roles", required=True, help=f"comma-separated: {', '.join(Role.__members__)}")
    add.add_argument("--purposes", default="", help=f"comma-separated: {', '.join(Purpose.__members__)}")
    add.add_argument("--cert", action="append", help="the activity's client certificate (PEM; repeatable)")
    add.set_defaults(run=cmd_activity_add)
    cert = activity.add_parser("add-cert")
    cert.add_argument("activity_id")
    cert.add_argument("cert")
    cert.set_defaults(run=cmd_activity_cert)
    for action in ("suspend", "revoke", "reinstate"):
        p = activity.add_parser(action)
        p.add_argument("activity_id")
        p.set_defaults(run=cmd_activity_status, action=action)
    activity.add_parser("list").set_defaults(run=cmd_activity_list)
    from dcii.cli.accredit_changes import add_activity_parsers  # it builds on this module's helpers

    add_activity_parsers(activity)
    operator = kinds.add_parser("operator").add_subparsers(dest="operator_command", required=True)
    op_add = operator.add_parser("add")
    op_add.add_argument("account_code")
    op_add.add_argument("--activity", required=True)
    op_add.add_argument("--password-file", help="else DCII_PASSWORD, else asked")
    op_add.set_defaults(run=cmd_operator_add)
    for action in ("suspend", "revoke", "reinstate"):
        p = operator.add_parser(action)
        p.add_argument("account_code")
        p.set_defaults(run=cmd_operator_status, action=action)
    password = operator.add_parser("password", help="a new password (a stolen terminal's password file)")
    password.add_argument("account_code")
    password.add_argument("--password-file", help="else DCII_PASSWORD, else asked")
    password.set_defaults(run=cmd_operator_password)
    operator.add_parser("list").set_defaults(run=cmd_operator_list)
