"""The command line of `dcii certs` and `dcii accredit`: every subcommand with its one-line help and its
description, every option with its help (dcii.cli.help_text).

`--data` (and `--pki`, where a certificate is read) is taken before the subcommand, as the RUNBOOK writes it
(`dcii accredit --data D activity list`), and after it, as `dcii audit events ... --data D` takes it: an
administrator's UAT typed the one where the other belonged and got "unrecognized arguments"
(`help_text.after_subcommand`).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from dcii.cli import accredit_changes, accredit_operators, admin
from dcii.cli.help_text import after_subcommand, subcommand
from search_service.accreditation import Purpose, Role

if TYPE_CHECKING:
    from dcii.cli.help_text import Subcommands

_PKI_HELP = (
    "the CA's directory (as `dcii serve --pki`): a certificate it did not issue is refused, and `activity certs`"
    " finds each certificate's CN and expiry there"
)


def add_parsers(commands: Subcommands, data_default: str) -> None:
    """`dcii certs ...` and `dcii accredit ...` under `commands`."""
    _add_certs_parsers(commands)
    accredit = commands.add_parser(
        "accredit",
        help="accredit activities and operators (on the server's machine, in its data directory)",
        description="Who may use the index, kept in the registry of --data: the running server reads it on every"
        " call, so a change takes effect at once, on that instance (run it on every instance). Each change is an"
        " event in that directory's audit trail, its actor cli:<OS user>. --data and --pki are taken before or"
        " after the subcommand.",
    )
    data_help = f"the server's data directory, which holds registry.db (default {data_default})"
    accredit.add_argument("--data", default=data_default, metavar="DIR", help=data_help)
    accredit.add_argument("--pki", metavar="DIR", help=_PKI_HELP)
    data = after_subcommand("--data", f"{data_help}; also taken before the subcommand")
    pki = after_subcommand("--pki", f"{_PKI_HELP}; also taken before the subcommand")
    kinds = accredit.add_subparsers(dest="accredit_kind", required=True)
    activity = subcommand(
        kinds,
        "activity",
        "activities: accredit, change, suspend, revoke, reinstate, list; their certificates",
        "An activity is an office's terminals or a repository's connector, known to the server by its client"
        " certificates' fingerprints and accredited for roles and, to query, purposes.",
    ).add_subparsers(dest="activity_command", required=True)
    _add_activity_parsers(activity, data, pki)
    operator = subcommand(
        kinds,
        "operator",
        "operator accounts: add, suspend, revoke, reinstate (which also unlocks), password, list",
        "An operator logs in at an activity's terminal with an account code and a password; five failed logins in"
        " a row lock the account for 15 minutes, and one unused for three years is disabled (dormant).",
    ).add_subparsers(dest="operator_command", required=True)
    _add_operator_parsers(operator, data)


def _add_certs_parsers(commands: Subcommands) -> None:
    certs = commands.add_parser(
        "certs",
        help="make the CA, the server certificate and client certificates",
        description="The deployment's PKI, made with `cryptography`: a CA, the server's certificate, and a client"
        " certificate per terminal or connector. Run where the CA's key is (RUNBOOK, First start).",
    )
    certs_sub = certs.add_subparsers(dest="certs_command", required=True)
    init = subcommand(
        certs_sub,
        "init",
        "a new CA and server certificate",
        "Written into --dir: ca.pem, ca-key.pem (move it offline once the certificates are issued), server.pem,"
        " server-key.pem.",
    )
    init.add_argument("--dir", default="var/pki", help="where to write them (default var/pki)")
    init.add_argument("--hostname", action="append", default=["localhost"], help="server name (repeatable)")
    init.add_argument("--force", action="store_true", help="replace an existing CA (invalidates every certificate)")
    init.set_defaults(run=admin.cmd_certs_init)
    issue = subcommand(
        certs_sub,
        "issue",
        "a client certificate for an activity's terminal or connector",
        "Issued from the CA in --dir to the activity (CN=ACTIVITY, O=AGENCY), valid --days, written as"
        " ACTIVITY.pem and ACTIVITY-key.pem into --dir, or into --out DIR: each further terminal of the activity"
        " gets its own pair (another --out), which `dcii accredit activity add-cert` accredits beside the first."
        " The fingerprint printed is the one `dcii accredit activity certs` lists; what it prints names the CA"
        " that issued it and until when it is valid.",
    )
    issue.add_argument("activity", help="the activity id the certificate is issued to (its CN)")
    issue.add_argument(
        "--agency",
        required=True,
        help="the activity's agency code (its O, fixed once issued): one the index knows, or with --data the"
        " activity's own",
    )
    issue.add_argument(
        "--dir",
        "--pki",
        dest="dir",
        metavar="DIR",
        help=f"the CA's directory, ca.pem and ca-key.pem (as `accredit --pki`; default {admin.CA_DIR_DEFAULT},"
        " and the output says so)",
    )
    issue.add_argument(
        "--days",
        type=int,
        default=admin.ISSUE_DAYS_DEFAULT,
        metavar="N",
        help=f"validity in days, 1 to {admin.ISSUE_DAYS_MAX} and not past the CA's expiry"
        f" (default {admin.ISSUE_DAYS_DEFAULT})",
    )
    issue.add_argument(
        "--data",
        metavar="DIR",
        help="a server's data directory: the activity must be accredited in its registry, to --agency (checked"
        " before issuing; for another terminal's or a new certificate of an accredited activity)",
    )
    issue.add_argument(
        "--out",
        metavar="DIR",
        help="write ACTIVITY.pem and ACTIVITY-key.pem here instead of --dir (made if absent): another terminal's"
        " pair, without replacing the first (a directory under --dir: `activity certs --pki` finds it there)",
    )
    issue.add_argument("--force", action="store_true", help="replace a pair already there (its key is lost)")
    issue.set_defaults(run=admin.cmd_certs_issue)
    server = subcommand(
        certs_sub,
        "server",
        "a new server certificate from the existing CA (rotation)",
        "New names or a new expiry under the same CA: every client keeps trusting the server.",
    )
    server.add_argument("--dir", default="var/pki", help="where the CA is")
    server.add_argument("--hostname", action="append", required=True, help="server name (repeatable)")
    server.add_argument("--ip", action="append", default=[], help="server IP address (repeatable)")
    server.add_argument("--days", type=int, default=825, help="validity in days")
    server.add_argument("--out", help="write server.pem / server-key.pem here (default: --dir)")
    server.set_defaults(run=admin.cmd_certs_server)


def _add_activity_parsers(activity: Subcommands, data: argparse.ArgumentParser, pki: argparse.ArgumentParser) -> None:
    add = subcommand(
        activity,
        "add",
        "accredit a new activity for roles and purposes (and its certificates)",
        "QUERIER and BATCH need --purposes (every query names one); a SUBMITTER's --agency must own tracings"
        " (docs/TRACING_FORMAT.md); PEER, the instances' own certificate, goes alone and without a purpose. With"
        " --pki a certificate another CA issued is refused; one made out to another agency's activity always is.",
        parents=[data, pki],
    )
    add.add_argument("activity_id", help="letters, digits, '-' and '_'")
    add.add_argument("--agency", required=True, help="the activity's agency code (e.g. DONCAF, NCIS)")
    add.add_argument("--roles", required=True, help=f"comma-separated: {', '.join(Role.__members__)}")
    add.add_argument("--purposes", default="", help=f"comma-separated: {', '.join(Purpose.__members__)}")
    add.add_argument("--cert", action="append", help="the activity's client certificate (PEM; repeatable)")
    add.add_argument(
        "--new-registry",
        action="store_true",
        help="make the registry when --data has none: a data directory's first activity, before any server ran on"
        " it (without it a mistyped --data is refused)",
    )
    add.set_defaults(run=admin.cmd_activity_add)
    cert = subcommand(
        activity,
        "add-cert",
        "accredit one more certificate to an activity (another terminal, or a rotation)",
        "Refused: an expired certificate, one revoked or another activity's, one made out to another agency's"
        " activity, and with --pki one another CA issued. One not valid yet is accredited with a warning.",
        parents=[data, pki],
    )
    cert.add_argument("activity_id", help="the accredited activity")
    cert.add_argument("cert", help="the certificate's PEM file (`dcii certs issue` wrote it)")
    cert.set_defaults(run=admin.cmd_activity_cert)
    for action, summary, details in (
        ("suspend", "suspend an activity: its calls refused, its sessions ended", "`reinstate` undoes it."),
        (
            "revoke",
            "revoke an activity: its certificates revoked for good, its calls refused, its sessions ended",
            "To bring it back: a new certificate (`add-cert`), then `reinstate`.",
        ),
        (
            "reinstate",
            "make a suspended or revoked activity ACTIVE again",
            "Its operators log in again; a revoked one needs a new certificate first (it says so).",
        ),
    ):
        status = subcommand(activity, action, summary, details, parents=[data])
        status.add_argument("activity_id", help="the accredited activity")
        status.set_defaults(run=admin.cmd_activity_status, action=action)
    subcommand(
        activity, "list", "every activity: agency, roles, purposes, status, certificates in use", parents=[data]
    ).set_defaults(run=admin.cmd_activity_list)
    changed = subcommand(
        activity,
        "set",
        "replace an activity's roles or purposes (at once on the server)",
        "What is given replaces what the activity has; the rest is kept. Its sessions go on, and its next call is"
        " authorized on the new ones.",
        parents=[data],
    )
    changed.add_argument("activity_id", help="the accredited activity")
    settable = ", ".join(r for r in Role.__members__ if r != Role.PEER)  # PEER is never given nor taken here
    changed.add_argument("--roles", help=f"comma-separated, replacing its roles: {settable}")
    changed.add_argument(
        "--purposes", help=f"comma-separated, replacing its purposes: {', '.join(Purpose.__members__)}"
    )
    changed.set_defaults(run=accredit_changes.cmd_activity_set)
    revoke = subcommand(
        activity,
        "revoke-cert",
        "revoke one certificate (a lost or stolen key); the activity and its others stay",
        "The sessions opened with it end; a revoked certificate never comes back.",
        parents=[data],
    )
    revoke.add_argument("activity_id", help="the activity the certificate is accredited to")
    revoke.add_argument("cert", help="the certificate's PEM file, or its SHA-256 fingerprint (`certs` lists them)")
    revoke.set_defaults(run=accredit_changes.cmd_activity_revoke_cert)
    certs = subcommand(
        activity,
        "certs",
        "an activity's certificates, revoked ones too",
        "Each one's fingerprint (as `revoke-cert` takes it), when it was added and revoked; with --pki, the CN it"
        " was issued to and its expiry, from the certificate files there (the registry keeps fingerprints only).",
        parents=[data, pki],
    )
    certs.add_argument("activity_id", help="the accredited activity")
    certs.set_defaults(run=accredit_changes.cmd_activity_certs)


def _add_operator_parsers(operator: Subcommands, data: argparse.ArgumentParser) -> None:
    from_file = "a file holding the password; else DCII_PASSWORD; else it is asked twice at the terminal"
    add = subcommand(
        operator,
        "add",
        "an operator account of an activity",
        "The account code is letters, digits and . _ @ -, at most 64; the password at least 12 characters.",
        parents=[data],
    )
    add.add_argument("account_code", help="what the operator types at login (never a name or a password)")
    add.add_argument("--activity", required=True, help="the activity whose terminals the operator uses")
    add.add_argument("--password-file", help=from_file)
    add.set_defaults(run=accredit_operators.cmd_operator_add)
    for action, summary, details in (
        ("suspend", "suspend an account: its logins refused, its sessions ended", "`reinstate` undoes it."),
        ("revoke", "revoke an account (the person gone): its logins refused, its sessions ended", ""),
        (
            "reinstate",
            "make an account ACTIVE again; it also clears a lockout (five failed logins)",
            "It says which lock it cleared, and changes nothing on an account ACTIVE and not locked. A dormant"
            " account's three years start again.",
        ),
    ):
        status = subcommand(operator, action, summary, details, parents=[data])
        status.add_argument("account_code", help="the operator's account code")
        status.set_defaults(run=accredit_operators.cmd_operator_status, action=action)
    password = subcommand(
        operator,
        "password",
        "a new password (a stolen terminal's password file)",
        "Its sessions end and its lock, if any, is cleared; the event names the account, never the password.",
        parents=[data],
    )
    password.add_argument("account_code", help="the operator's account code")
    password.add_argument("--password-file", help=from_file)
    password.set_defaults(run=accredit_operators.cmd_operator_password)
    subcommand(
        operator,
        "list",
        "every account: activity, status, last login, lock",
        "Dormant accounts are disabled first (each an OPERATOR_DISABLED event). A status reads SUSPENDED"
        " (dormant) when the registry disabled the account for three years unused, and ACTIVE (locked) with"
        " until when while failed logins lock it.",
        parents=[data],
    ).set_defaults(run=accredit_operators.cmd_operator_list)
