"""The checks `dcii accredit` makes of a certificate before accrediting it: readable, a PEM certificate, not
expired, issued by the deployment's CA when `--pki` names it, and made out to the activity (or another
terminal of its agency). Each refusal is one line; an accredited certificate that could never connect (the
handshake refuses it, which a terminal hears as a lost connection) or that belongs to another agency's
activity is what they keep out (an administrator's and a connector operator's UATs). After it is accredited,
a warning when it is not valid yet; and, for `activity certs`, the certificates under the CA's directory by
fingerprint (the registry keeps fingerprints only)."""

from __future__ import annotations

import datetime as dt
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import NameOID

from search_service import pki


def checked_fingerprint(cert: str, pki_dir: str | None = None) -> str:
    """The fingerprint of a certificate file; a path that cannot be read is one line, not a traceback, and
    so is a certificate already expired, or one not issued by the CA of `pki_dir` when given (accredited,
    either could never connect: TLS refuses it during the handshake, which the terminal hears
    as a lost connection, a UAT finding)."""
    try:
        pem = Path(cert).read_bytes()
        loaded = x509.load_pem_x509_certificate(pem)
        expires = loaded.not_valid_after_utc
        if expires <= dt.datetime.now(dt.UTC):
            raise SystemExit(f"dcii: the certificate {cert} expired on {expires:%Y-%m-%d}; issue a new one")
        _check_issuer(loaded, cert, pki_dir)
        return pki.fingerprint(pem)
    except OSError as error:
        why = error.strerror or type(error).__name__
        raise SystemExit(f"dcii: cannot read the certificate {cert}: {why}") from None
    except ValueError:  # a key, a DER file, anything not a PEM certificate
        raise SystemExit(f"dcii: {cert} is not a PEM certificate") from None


def check_holder(cert_path: str, activity_id: str, agency: str) -> None:
    """A certificate made out to another activity of another agency is refused: `add-cert` took an AFOSI
    certificate issued to ADJ-AF-99 for a Navy office's activity, which it then logged in as (an
    administrator's UAT). One made out to another name of the same agency is a second terminal's (`dcii certs
    issue` names its files by the name given): accredited, with a line saying so."""
    holder, organization = pki.subject_of(Path(cert_path).read_bytes())
    if holder == activity_id:
        return
    if organization.upper() != agency.upper():
        raise SystemExit(
            f"dcii: the certificate {cert_path} was issued to {holder or '?'} of {organization or '?'}, not to"
            f" {activity_id} of {agency}: issue one for this activity (`dcii certs issue {activity_id}"
            f" --agency {agency}`)"
        )
    print(f"dcii: {cert_path} was issued to {holder}, of {agency}: accredited as a terminal of {activity_id}",
          file=sys.stderr)  # fmt: skip


def _check_issuer(cert: x509.Certificate, name: str, pki_dir: str | None) -> None:
    if pki_dir is None:
        return  # not asked: the server's handshake is the check
    ca_path = Path(pki_dir) / "ca.pem"
    if not ca_path.is_file():
        raise SystemExit(f"dcii: --pki {pki_dir}: no ca.pem there")
    try:
        cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_path.read_bytes()))
    except (ValueError, TypeError, InvalidSignature):
        raise SystemExit(
            f"dcii: the certificate {name} was not issued by the CA {ca_path}: the index would refuse its"
            f" connections; issue one from it: `dcii certs issue ACTIVITY --agency A --dir {pki_dir}`"
        ) from None


def warn_if_unchecked(certs: list[str], pki_dir: str | None) -> None:
    """After certificates are accredited without `--pki`: a line on stderr naming the option. Their issuer
    went unchecked, in silence, and one another CA issued (a demo's `var/pki`, an old CA) is accredited but
    refused at every handshake, which its terminal hears as a lost connection (an administrator's UAT). Not
    a refusal: the registry cannot tell which directory the server reads, and the change is right whenever
    the certificate is; the line says how to check it."""
    if pki_dir is not None or not certs:
        return
    print(
        f"dcii: warning: no --pki given: {', '.join(certs)} not checked against the deployment's CA; one another"
        " CA issued is accredited but can never connect (give --pki DIR, the CA's directory, as `dcii serve"
        " --pki`)",
        file=sys.stderr,
    )


def warn_if_not_yet_valid(cert: str) -> None:
    """After the certificate is accredited: a line on stderr when its validity starts later (a clock set
    wrong where it was issued, or one issued ahead). It stands, and says so: its terminal's handshakes are
    refused until then, which the terminal hears as a lost connection (an administrator's UAT)."""
    starts = x509.load_pem_x509_certificate(Path(cert).read_bytes()).not_valid_before_utc
    if starts > dt.datetime.now(dt.UTC):
        print(
            f"dcii: warning: the certificate {cert} is not valid before {starts:%Y-%m-%d %H:%M} UTC: accredited,"
            " but its terminal cannot connect until then",
            file=sys.stderr,
        )


@dataclass(frozen=True, slots=True)
class CertificateFile:
    """A certificate found in a directory, by what `activity certs` shows of it."""

    path: Path
    holder: str  # the subject's CN: the activity it was issued to
    organization: str  # the subject's O: the agency
    not_after: dt.datetime


def _subject(certificate: x509.Certificate, oid: x509.ObjectIdentifier) -> str:
    values = certificate.subject.get_attributes_for_oid(oid)
    value = values[0].value if values else "?"
    return value.decode() if isinstance(value, bytes) else value


def certificates_in(directory: Path) -> dict[str, CertificateFile]:
    """The certificates under `directory` (and its subdirectories: `dcii certs issue --out`), by fingerprint.
    The registry keeps a certificate's fingerprint only, and the CA's directory keeps every certificate
    issued there: from it `activity certs --pki` tells which row is which terminal's, and when it expires.
    Keys and files that are not PEM certificates are passed over; the first path (sorted) of a copy wins."""
    found: dict[str, CertificateFile] = {}
    for path in sorted(Path(directory).rglob("*.pem")):
        if path.name.endswith("-key.pem") or not path.is_file():
            continue
        try:
            pem = path.read_bytes()
            certificate = x509.load_pem_x509_certificate(pem)
        except (OSError, ValueError):
            continue
        cn, org = _subject(certificate, NameOID.COMMON_NAME), _subject(certificate, NameOID.ORGANIZATION_NAME)
        found.setdefault(pki.fingerprint(pem), CertificateFile(path, cn, org, certificate.not_valid_after_utc))
    return found
