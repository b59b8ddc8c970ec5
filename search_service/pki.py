"""A small PKI for the mutual-TLS gRPC service, built with `cryptography` alone (no openssl subprocess).

One CA signs one server certificate and one client certificate per accredited activity. The server
identifies an activity by the SHA-256 fingerprint of its client certificate (`fingerprint`); the
subject (CN=activity id, O=agency) is informational, the fingerprint is what gets accredited.

Keys are EC P-256: fast to generate (tests make many) and accepted by every TLS stack gRPC uses.
Nothing here logs, and `Issued.__repr__` omits the key, so a private key never reaches a log line.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CLIENT_OU = "DCII accredited activity"

# Certificates start a little in the past so a peer whose clock is slightly behind still accepts them.
_CLOCK_SKEW = timedelta(minutes=5)

# Activity ids become file names in the PKI directory: one safe path component, at most 64 characters
# (the X.520 upper bound for a common name).
_ACTIVITY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
# Stems init_pki uses for itself; an activity named like this would overwrite the CA or server pair.
_RESERVED_STEMS = frozenset({"ca", "server"})
_CLUSTER_NAMES = re.compile(r"admin|opensearch-\d+")


@dataclass(frozen=True)
class Issued:
    """A PEM certificate and its unencrypted PKCS#8 PEM private key."""

    cert_pem: bytes
    key_pem: bytes = field(repr=False)  # a repr reaches logs and tracebacks; the key must not

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.cert_pem)

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)


def fingerprint(cert_pem: bytes) -> str:
    """Lowercase hex SHA-256 of the certificate's DER encoding: how the server names an activity."""
    der = x509.load_pem_x509_certificate(cert_pem).public_bytes(serialization.Encoding.DER)
    return hashlib.sha256(der).hexdigest()


def subject_of(cert_pem: bytes) -> tuple[str, str]:
    """(common name, organization) of the certificate's subject."""
    subject = x509.load_pem_x509_certificate(cert_pem).subject
    return _attribute(subject, NameOID.COMMON_NAME), _attribute(subject, NameOID.ORGANIZATION_NAME)


def make_ca(common_name: str = "DCII Test CA", *, valid_days: int = 3650, not_before: datetime | None = None) -> Issued:
    """A self-signed CA that may sign end-entity certificates only (path length 0)."""
    key = ec.generate_private_key(ec.SECP256R1())
    start, end = _validity(valid_days, not_before, None)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
    )
    return _issued(builder.sign(key, hashes.SHA256()), key)


def issue_server_cert(
    ca: Issued,
    hostnames: Sequence[str] = ("localhost",),
    ip_addresses: Sequence[str] = ("127.0.0.1", "::1"),
    *,
    valid_days: int = 825,
    not_before: datetime | None = None,
) -> Issued:
    """A serverAuth certificate whose SAN lists the given DNS names and IP addresses."""
    if isinstance(hostnames, str) or isinstance(ip_addresses, str):
        # A bare str is a Sequence[str] too and would silently become one SAN per character.
        raise TypeError("hostnames and ip_addresses must be sequences of strings, not a string")
    if not hostnames and not ip_addresses:
        raise ValueError("a server certificate needs at least one hostname or IP address")
    sans: list[x509.GeneralName] = [x509.DNSName(h) for h in hostnames]
    sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    # TLS clients match the SAN only; the CN is for humans reading the certificate.
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, [*hostnames, *ip_addresses][0])])
    validity = _validity(valid_days, not_before, None)
    san = x509.SubjectAlternativeName(sans)
    return _issue_leaf(ca, subject, ExtendedKeyUsageOID.SERVER_AUTH, validity, san)


def issue_client_cert(
    ca: Issued,
    activity_id: str,
    agency: str,
    *,
    valid_days: int = 825,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> Issued:
    """A clientAuth certificate for one activity: CN=activity_id, O=agency, OU=CLIENT_OU and SAN
    URI `activity_urn(activity_id)`.

    `not_after` may be in the past (an already-expired certificate, for tests); `not_before` then
    defaults to `valid_days` before it.
    """
    _check_activity_id(activity_id)
    if not agency:
        raise ValueError("agency must be non-empty")
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, activity_id),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, agency),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, CLIENT_OU),
        ]
    )
    validity = _validity(valid_days, not_before, not_after)
    # RFC 5280 verifiers (cryptography's ClientVerifier among them) require a SAN on a leaf; a URN
    # naming the activity satisfies them without pretending the client has a host name.
    san = x509.SubjectAlternativeName([x509.UniformResourceIdentifier(activity_urn(activity_id))])
    return _issue_leaf(ca, subject, ExtendedKeyUsageOID.CLIENT_AUTH, validity, san)


def activity_urn(activity_id: str) -> str:
    """The URI in an activity certificate's SAN."""
    return f"urn:dcii:activity:{activity_id}"


def write_pem_pair(issued: Issued, directory: Path, stem: str) -> tuple[Path, Path]:
    """Write `<stem>.pem` (0644) and `<stem>-key.pem` (0600); return (cert path, key path)."""
    directory = Path(directory)
    cert_path, key_path = directory / f"{stem}.pem", directory / f"{stem}-key.pem"
    _write_atomic(key_path, issued.key_pem, 0o600)
    _write_atomic(cert_path, issued.cert_pem, 0o644)
    return cert_path, key_path


def load_issued(directory: Path, stem: str) -> Issued:
    """Read a pair written by `write_pem_pair`, checking that the key belongs to the certificate."""
    directory = Path(directory)
    issued = Issued((directory / f"{stem}.pem").read_bytes(), (directory / f"{stem}-key.pem").read_bytes())
    _issuer_parts(issued)  # raises if either half is unreadable or they do not match
    return issued


def init_pki(
    directory: Path,
    *,
    activities: Sequence[tuple[str, str]],
    hostnames: Sequence[str] = ("localhost",),
    ip_addresses: Sequence[str] = ("127.0.0.1", "::1"),
    ca_common_name: str = "DCII Test CA",
    force: bool = False,
) -> dict[str, Path]:
    """Create a CA, a server pair and one client pair per (activity_id, agency) in `directory`.

    Returns file stem -> path: "ca", "ca-key", "server", "server-key", then "<id>", "<id>-key" per
    activity. Refuses to replace an existing CA unless `force`: a new CA invalidates every
    certificate the old one issued, including ones already handed to activities.
    """
    directory = Path(directory)
    for existing in (directory / "ca.pem", directory / "ca-key.pem"):
        if existing.exists() and not force:
            raise FileExistsError(
                f"{existing} already exists; refusing to replace the CA, which would invalidate every "
                "certificate it issued (--force / force=True replaces it anyway)"
            )
    # Check every name before writing anything, so a bad entry cannot leave half a PKI behind.
    seen: set[str] = set()
    for activity_id, _agency in activities:
        _check_activity_id(activity_id, as_file_stem=True)
        if activity_id.casefold() in seen:  # casefold: the files may live on a case-insensitive disk
            raise ValueError(f"activity {activity_id!r} is listed twice")
        seen.add(activity_id.casefold())
    # mkdir's mode is narrowed by the umask, never widened, so a new directory is at most 0700.
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)

    ca = make_ca(ca_common_name)
    pairs = [(ca, "ca"), (issue_server_cert(ca, hostnames, ip_addresses), "server")]
    pairs += [(issue_client_cert(ca, a_id, agency), a_id) for a_id, agency in activities]
    paths: dict[str, Path] = {}
    for issued, stem in pairs:
        paths[stem], paths[f"{stem}-key"] = write_pem_pair(issued, directory, stem)
    return paths


def issue_client_into(
    directory: Path, activity_id: str, agency: str, *, valid_days: int = 825, force: bool = False
) -> tuple[Path, Path]:
    """Issue one more client pair from the CA in `directory` (for `dcii certs issue`).

    Refuses to overwrite an existing `<activity_id>.pem` unless `force`: that would discard a key
    which may not have been handed over yet.
    """
    directory = Path(directory)
    _check_activity_id(activity_id, as_file_stem=True)
    ca = load_issued(directory, "ca")
    for target in (directory / f"{activity_id}.pem", directory / f"{activity_id}-key.pem"):
        if target.exists() and not force:
            raise FileExistsError(f"{target} already exists; --force (force=True) replaces it")
    issued = issue_client_cert(ca, activity_id, agency, valid_days=valid_days)
    return write_pem_pair(issued, directory, activity_id)


def issue_server_into(
    directory: Path,
    hostnames: Sequence[str],
    ip_addresses: Sequence[str] = ("127.0.0.1", "::1"),
    *,
    valid_days: int = 825,
    out: Path | None = None,
) -> tuple[Path, Path]:
    """A new server pair from the CA in `directory` (for `dcii certs server`: new names or a new expiry,
    same CA, so every client keeps trusting the server), written to `out` (default: `directory`)."""
    ca = load_issued(Path(directory), "ca")
    issued = issue_server_cert(ca, hostnames, ip_addresses, valid_days=valid_days)
    target = Path(out or directory)
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    return write_pem_pair(issued, target, "server")


# --- internals ---------------------------------------------------------------------------------


def _issue_leaf(
    ca: Issued,
    subject: x509.Name,
    usage: x509.ObjectIdentifier,
    validity: tuple[datetime, datetime],
    san: x509.SubjectAlternativeName,
) -> Issued:
    ca_cert, ca_key = _issuer_parts(ca)
    key = ec.generate_private_key(ec.SECP256R1())
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .add_extension(san, critical=False)
    )
    return _issued(builder.sign(ca_key, hashes.SHA256()), key)


def _issuer_parts(issued: Issued) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey]:
    cert = issued.certificate
    key = serialization.load_pem_private_key(issued.key_pem, password=None)
    # make_ca makes EC keys; RSA is accepted so an existing CA from elsewhere can be loaded.
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise TypeError(f"unsupported private key type {type(key).__name__}")
    der, spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(der, spki) != cert.public_key().public_bytes(der, spki):
        raise ValueError("the private key does not belong to the certificate")
    return cert, key


def _issued(cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Issued:
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return Issued(cert.public_bytes(serialization.Encoding.PEM), key_pem)


def _validity(valid_days: int, not_before: datetime | None, not_after: datetime | None) -> tuple[datetime, datetime]:
    if valid_days <= 0:
        raise ValueError("valid_days must be positive")
    # cryptography would read a naive datetime as UTC; a local time silently taken as UTC is a bug.
    if any(t is not None and t.tzinfo is None for t in (not_before, not_after)):
        raise ValueError("not_before and not_after must be timezone-aware")
    if not_before is None:
        not_before = datetime.now(UTC) - _CLOCK_SKEW
        if not_after is not None and not_after <= not_before:
            not_before = not_after - timedelta(days=valid_days)
    if not_after is None:
        not_after = not_before + timedelta(days=valid_days)
    if not_after <= not_before:
        raise ValueError("not_after must be later than not_before")
    return not_before, not_after


def _key_usage(*, cert_sign: bool = False) -> x509.KeyUsage:
    # A CA signs certificates and CRLs; a leaf only signs handshakes (ECDHE-ECDSA needs nothing more).
    return x509.KeyUsage(
        digital_signature=not cert_sign,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _attribute(name: x509.Name, oid: x509.ObjectIdentifier) -> str:
    attributes = name.get_attributes_for_oid(oid)
    if not attributes:
        raise ValueError(f"certificate subject has no {oid.dotted_string} attribute")
    value = attributes[0].value
    return value.decode() if isinstance(value, bytes) else value


def _check_activity_id(activity_id: str, *, as_file_stem: bool = False) -> None:
    if not _ACTIVITY_ID.fullmatch(activity_id):
        raise ValueError(
            f"activity id {activity_id!r} must be 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    if _CLUSTER_NAMES.fullmatch(activity_id.casefold()):
        # The deployed OpenSearch cluster trusts this CA and maps users by certificate CN (deploy/opensearch/
        # security): an activity certificate named "admin" would be its administrator, "opensearch-1" a node.
        raise ValueError(f"activity id {activity_id!r} is reserved for the index cluster's own certificates")
    if not as_file_stem:
        return
    # A "-key" suffix would collide with another activity's key file (activity "x" writes x-key.pem).
    folded = activity_id.casefold()
    if folded in _RESERVED_STEMS or folded.endswith("-key"):
        raise ValueError(f"activity id {activity_id!r} is reserved for the PKI's own files")


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    # mkstemp creates a fresh file (O_EXCL, random name) readable by the owner only, so a key is never
    # world-readable even briefly; renaming it over the target means readers see the old file or the
    # new one, never a partial write.
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)  # 0600 from mkstemp; widen only a certificate to 0644
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
