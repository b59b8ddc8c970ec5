"""`dcii accredit activity set|revoke-cert|certs`: changing an accredited activity without starting it over.

An administrator had to revoke a whole activity (every certificate, every session) to take one lost
terminal's key out, and could not change what an activity is accredited for at all: a new purpose for an
adjudicating office meant a new activity id, under which its operators and the accounting of its past
disclosures were not found. Each change here is recorded in the audit trail inside the registry's
transaction, as every `dcii accredit` change is (dcii.cli.admin.Trail), and takes effect at the running
server's next call: a role or purpose taken away refuses that call, a revoked certificate's sessions end.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from dcii.cli.admin import Trail, _checked_agency, _csv_enum, _registry, console, folding_table
from indexer.exc import InvalidArgument
from search_service import accreditation_events as events
from search_service import pki
from search_service.accreditation import Purpose, Role

_HEX_FINGERPRINT = re.compile(r"[0-9a-f]{64}")


def cmd_activity_set(args: argparse.Namespace) -> None:
    if args.roles is None and args.purposes is None:
        raise SystemExit("dcii: give --roles, --purposes or both (each replaces what the activity has)")
    registry = _registry(args)
    current = registry.activity(args.activity_id)
    roles = current.roles if args.roles is None else frozenset(Role(r) for r in _csv_enum(Role, args.roles))
    purposes = current.purposes
    if args.purposes is not None:
        purposes = frozenset(Purpose(p) for p in _csv_enum(Purpose, args.purposes))
    if Role.SUBMITTER in roles:
        _checked_agency(current.agency, list(roles))  # a submitter's agency must own tracings: as `add` checks
    with Trail(Path(args.data)) as trail:
        record = trail.recorder(events.access_set(args.activity_id, roles, purposes))
        try:
            changed = registry.set_activity_access(args.activity_id, roles, purposes, record=record)
        except InvalidArgument as error:  # named by the option that asked for it
            raise SystemExit("; ".join(f"dcii: --{v.field}: {v.description}" for v in error.violations)) from None
    console.print(
        f"{changed.activity_id} now has roles {','.join(sorted(changed.roles))};"
        f" purposes {','.join(sorted(changed.purposes)) or '(none)'}"
    )


def _fingerprint_named(text: str) -> str:
    """A fingerprint given as hex (colons allowed, as `openssl x509 -fingerprint` prints it) or a PEM file.
    An expired certificate is read too: revoking it is never wrong."""
    bare = text.replace(":", "").strip().lower()
    if _HEX_FINGERPRINT.fullmatch(bare):
        return bare
    try:
        return pki.fingerprint(Path(text).read_bytes())
    except OSError as error:
        why = error.strerror or type(error).__name__
        raise SystemExit(f"dcii: {text} is neither a SHA-256 fingerprint nor a readable certificate ({why})") from None
    except ValueError:
        raise SystemExit(f"dcii: {text} is neither a SHA-256 fingerprint nor a PEM certificate") from None


def cmd_activity_revoke_cert(args: argparse.Namespace) -> None:
    fingerprint = _fingerprint_named(args.cert)
    registry = _registry(args)
    registry.activity(args.activity_id)  # a mistyped id: "no activity X", not "no such certificate"
    with Trail(Path(args.data)) as trail:
        record = trail.recorder(events.certificate_revoked(args.activity_id, fingerprint))
        registry.revoke_certificate(fingerprint, activity_id=args.activity_id, record=record)
    console.print(f"certificate {fingerprint[:16]}... of {args.activity_id} revoked; its sessions ended")
    if not registry.activity(args.activity_id).fingerprints:
        print(
            f"dcii: {args.activity_id} has no other certificate and cannot connect until one is added:"
            f" `dcii accredit activity add-cert {args.activity_id} CERT.pem` (a new one: `dcii certs issue`)",
            file=sys.stderr,
        )


def cmd_activity_certs(args: argparse.Namespace) -> None:
    table = folding_table(
        "fingerprint (SHA-256)", "added (UTC)", "revoked (UTC)", title=f"Certificates of {args.activity_id}"
    )
    for row in _registry(args).certificates(args.activity_id):
        revoked = "" if row.revoked_at is None else f"{row.revoked_at:%Y-%m-%d %H:%M}"
        table.add_row(row.fingerprint, f"{row.added_at:%Y-%m-%d %H:%M}", revoked)
    console.print(table)


def add_activity_parsers(activity: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    changed = activity.add_parser("set", help="replace an activity's roles or purposes (at once on the server)")
    changed.add_argument("activity_id")
    settable = ", ".join(r for r in Role.__members__ if r != Role.PEER)  # PEER is never given nor taken here
    changed.add_argument("--roles", help=f"comma-separated, replacing its roles: {settable}")
    changed.add_argument(
        "--purposes", help=f"comma-separated, replacing its purposes: {', '.join(Purpose.__members__)}"
    )
    changed.set_defaults(run=cmd_activity_set)
    revoke = activity.add_parser(
        "revoke-cert", help="revoke one certificate (a lost or stolen key); the activity and its others stay"
    )
    revoke.add_argument("activity_id")
    revoke.add_argument("cert", help="the certificate's PEM file, or its SHA-256 fingerprint (`certs` lists them)")
    revoke.set_defaults(run=cmd_activity_revoke_cert)
    certs = activity.add_parser("certs", help="an activity's certificates, revoked ones too")
    certs.add_argument("activity_id")
    certs.set_defaults(run=cmd_activity_certs)
