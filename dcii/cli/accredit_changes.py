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
import datetime as dt
import re
import sys
from pathlib import Path

from dcii.cli.accredit_certs import certificates_in
from dcii.cli.admin import Trail, _checked_agency, _csv_enum, _registry, console
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


def _utc(moment: dt.datetime) -> str:
    return f"{moment.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC"


def cmd_activity_certs(args: argparse.Namespace) -> None:
    """An activity's certificates, one block each: the fingerprint on a line of its own (a table folded it at
    80 columns, and it could not be copied whole into `revoke-cert`), then what the registry keeps of it
    (when added, when revoked), then, found by fingerprint among the certificates under `--pki`, the CN it
    was issued to and when it expires: the registry keeps no certificate, only its fingerprint, so nothing
    else tells which row is which terminal's (an administrator's UAT)."""
    rows = _registry(args).certificates(args.activity_id)
    files = certificates_in(Path(args.pki)) if args.pki else {}
    in_use = sum(row.revoked_at is None for row in rows)
    console.print(f"Certificates of {args.activity_id}: {len(rows)} ({in_use} in use)", soft_wrap=True)
    now = dt.datetime.now(dt.UTC)
    for row in rows:
        console.print(row.fingerprint, soft_wrap=True)
        state = "in use" if row.revoked_at is None else f"REVOKED {_utc(row.revoked_at)}"
        console.print(f"    added {_utc(row.added_at)}, {state}", soft_wrap=True)
        found = files.get(row.fingerprint)
        if found is not None:
            expiry = f"not after {_utc(found.not_after)}" + (" (expired)" if found.not_after <= now else "")
            console.print(f"    CN {found.holder}, O {found.organization}, {expiry}: {found.path}", soft_wrap=True)
        elif args.pki:
            console.print(f"    not among the certificates under {args.pki}", soft_wrap=True)
    if rows and not args.pki:
        console.print(
            "The registry keeps each certificate's fingerprint, not the certificate: --pki DIR (where `dcii certs"
            " issue` wrote them) shows each one's CN and expiry.",
            soft_wrap=True,
        )
