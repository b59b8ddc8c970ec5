"""search_service.pki: real certificates (their contents, the files they are written to, `dcii certs`), checked
with cryptography's verifier. The same certificates on a real mTLS gRPC server: tests/test_pki_mtls.py."""

from __future__ import annotations

import hashlib
import ipaddress
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import verification as xv
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from search_service import pki


@pytest.fixture(scope="module")
def ca() -> pki.Issued:
    return pki.make_ca()


def _client_verifier(ca: pki.Issued, at: datetime | None = None) -> xv.ClientVerifier:
    store = xv.Store([ca.certificate])
    return xv.PolicyBuilder().store(store).time(at or datetime.now(UTC)).build_client_verifier()


def _server_verifier(ca: pki.Issued, name: xv.Subject) -> xv.ServerVerifier:
    store = xv.Store([ca.certificate])
    return xv.PolicyBuilder().store(store).time(datetime.now(UTC)).build_server_verifier(name)


_E = TypeVar("_E", bound=x509.ExtensionType)


def _ext(cert: x509.Certificate, kind: type[_E]) -> x509.Extension[_E]:
    return cert.extensions.get_extension_for_class(kind)


# --- certificate contents ----------------------------------------------------------------------


def test_ca_is_a_self_signed_p256_ca(ca: pki.Issued) -> None:
    cert = ca.certificate
    cert.verify_directly_issued_by(cert)
    assert cert.subject == cert.issuer
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "DCII Test CA"
    basic = _ext(cert, x509.BasicConstraints)
    assert basic.critical and basic.value.ca and basic.value.path_length == 0
    usage = _ext(cert, x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    ski = _ext(cert, x509.SubjectKeyIdentifier).value
    assert ski == x509.SubjectKeyIdentifier.from_public_key(cert.public_key())
    public_key = cert.public_key()
    assert isinstance(public_key, ec.EllipticCurvePublicKey) and public_key.curve.name == "secp256r1"
    assert cert.not_valid_before_utc <= datetime.now(UTC) < cert.not_valid_after_utc
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == timedelta(days=3650)


def test_server_cert_chains_to_ca_and_names_its_hosts(ca: pki.Issued) -> None:
    server = pki.issue_server_cert(ca, ["localhost", "dcii.example.mil"], ["127.0.0.1", "::1"])
    cert = server.certificate
    cert.verify_directly_issued_by(ca.certificate)
    san = _ext(cert, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost", "dcii.example.mil"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    assert list(_ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert not _ext(cert, x509.BasicConstraints).value.ca
    aki = _ext(cert, x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == _ext(ca.certificate, x509.SubjectKeyIdentifier).value.digest

    for name in (
        x509.DNSName("localhost"),
        x509.DNSName("dcii.example.mil"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.IPAddress(ipaddress.ip_address("::1")),
    ):
        chain = _server_verifier(ca, name).verify(cert, [])
        assert chain[-1] == ca.certificate
    with pytest.raises(xv.VerificationError, match="subjectAltName"):
        _server_verifier(ca, x509.DNSName("elsewhere.example")).verify(cert, [])


def test_client_cert_names_the_activity_and_is_client_auth_only(ca: pki.Issued) -> None:
    client = pki.issue_client_cert(ca, "NCIS-RA-01", "NCIS")
    cert = client.certificate
    assert pki.subject_of(client.cert_pem) == ("NCIS-RA-01", "NCIS")
    ou = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    assert [a.value for a in ou] == ["DCII accredited activity"]
    assert list(_ext(cert, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]

    verified = _client_verifier(ca).verify(cert, [])
    assert verified.chain == [cert, ca.certificate]
    assert verified.subjects == [x509.UniformResourceIdentifier("urn:dcii:activity:NCIS-RA-01")]
    # EKUs keep the roles apart: neither certificate verifies in the other's role.
    with pytest.raises(xv.VerificationError, match="EKU"):
        _client_verifier(ca).verify(pki.issue_server_cert(ca).certificate, [])
    with pytest.raises(xv.VerificationError):
        _server_verifier(ca, x509.DNSName("localhost")).verify(cert, [])


def test_certificate_from_another_ca_does_not_verify(ca: pki.Issued) -> None:
    rogue = pki.issue_client_cert(pki.make_ca("DCII Test CA"), "NCIS-RA-01", "NCIS")
    with pytest.raises(xv.VerificationError):
        _client_verifier(ca).verify(rogue.certificate, [])
    # Same issuer name, different key: only the signature tells them apart.
    with pytest.raises(InvalidSignature):
        rogue.certificate.verify_directly_issued_by(ca.certificate)


def test_fingerprint_is_lowercase_sha256_of_der(ca: pki.Issued) -> None:
    client = pki.issue_client_cert(ca, "DIA-01", "DIA")
    der = client.certificate.public_bytes(serialization.Encoding.DER)
    expected = hashlib.sha256(der).hexdigest()
    assert pki.fingerprint(client.cert_pem) == expected == client.fingerprint
    assert expected == client.certificate.fingerprint(hashes.SHA256()).hex()
    assert len(expected) == 64 and expected == expected.lower()
    # Two certificates for the same activity are two identities.
    assert pki.issue_client_cert(ca, "DIA-01", "DIA").fingerprint != expected


def test_expired_client_cert_can_be_made(ca: pki.Issued) -> None:
    now = datetime.now(UTC)
    expired = pki.issue_client_cert(ca, "AFOSI-01", "AFOSI", not_after=now - timedelta(days=1))
    cert = expired.certificate
    assert cert.not_valid_after_utc < now
    assert cert.not_valid_before_utc < cert.not_valid_after_utc
    with pytest.raises(xv.VerificationError, match="not valid at validation time"):
        _client_verifier(ca).verify(cert, [])


def test_bad_arguments_are_refused(ca: pki.Issued) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        pki.issue_client_cert(ca, "A-1", "NSA", not_after=datetime(2020, 1, 1))
    with pytest.raises(ValueError, match="later than"):
        pki.issue_client_cert(
            ca, "A-1", "NSA", not_before=datetime.now(UTC), not_after=datetime(2020, 1, 1, tzinfo=UTC)
        )
    with pytest.raises(ValueError, match="activity id"):
        pki.issue_client_cert(ca, "../etc/passwd", "NSA")
    with pytest.raises(TypeError):
        pki.issue_server_cert(ca, "localhost")
    with pytest.raises(ValueError, match="at least one"):
        pki.issue_server_cert(ca, [], [])


def test_repr_never_shows_the_key(ca: pki.Issued) -> None:
    assert b"PRIVATE KEY" in ca.key_pem
    assert "PRIVATE" not in repr(ca) and "key_pem" not in repr(ca)


# --- files -------------------------------------------------------------------------------------


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_write_pem_pair_key_is_0600_even_with_open_umask(ca: pki.Issued, tmp_path: Path) -> None:
    client = pki.issue_client_cert(ca, "NSA-01", "NSA")
    # A world-readable key file left by some earlier tool must not keep its mode.
    (tmp_path / "NSA-01-key.pem").write_bytes(b"old")
    (tmp_path / "NSA-01-key.pem").chmod(0o644)
    old_umask = os.umask(0)
    try:
        cert_path, key_path = pki.write_pem_pair(client, tmp_path, "NSA-01")
    finally:
        os.umask(old_umask)
    assert (cert_path, key_path) == (tmp_path / "NSA-01.pem", tmp_path / "NSA-01-key.pem")
    assert _mode(key_path) == 0o600
    assert _mode(cert_path) == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["NSA-01-key.pem", "NSA-01.pem"]  # no temp files
    assert pki.load_issued(tmp_path, "NSA-01") == client


def test_load_issued_rejects_a_key_that_does_not_match(ca: pki.Issued, tmp_path: Path) -> None:
    one, other = pki.issue_client_cert(ca, "A-1", "NSA"), pki.issue_client_cert(ca, "A-2", "NSA")
    pki.write_pem_pair(pki.Issued(one.cert_pem, other.key_pem), tmp_path, "mixed")
    with pytest.raises(ValueError, match="does not belong"):
        pki.load_issued(tmp_path, "mixed")


def test_init_pki_writes_a_working_pki(tmp_path: Path) -> None:
    directory = tmp_path / "pki"
    activities = [("NCIS-RA-01", "NCIS"), ("DSS-OPS", "DSS")]
    paths = pki.init_pki(directory, activities=activities, hostnames=["localhost", "dcii.internal"])

    assert _mode(directory) == 0o700
    stems = ["ca", "server", "NCIS-RA-01", "DSS-OPS"]
    assert set(paths) == {s for stem in stems for s in (stem, f"{stem}-key")}
    for stem in stems:
        assert paths[stem] == directory / f"{stem}.pem"
        assert _mode(paths[f"{stem}-key"]) == 0o600
    ca = pki.load_issued(directory, "ca")
    server = pki.load_issued(directory, "server")
    _server_verifier(ca, x509.DNSName("dcii.internal")).verify(server.certificate, [])
    for activity_id, agency in activities:
        client = pki.load_issued(directory, activity_id)
        assert pki.subject_of(client.cert_pem) == (activity_id, agency)
        _client_verifier(ca).verify(client.certificate, [])


def test_init_pki_refuses_to_replace_a_ca_unless_forced(tmp_path: Path) -> None:
    pki.init_pki(tmp_path, activities=[("NCIS-RA-01", "NCIS")])
    before = (tmp_path / "ca.pem").read_bytes()
    with pytest.raises(FileExistsError, match=r"ca\.pem already exists; refusing to replace the CA"):
        pki.init_pki(tmp_path, activities=[])
    assert (tmp_path / "ca.pem").read_bytes() == before

    pki.init_pki(tmp_path, activities=[("NCIS-RA-01", "NCIS")], force=True)
    ca = pki.load_issued(tmp_path, "ca")
    assert ca.cert_pem != before
    _client_verifier(ca).verify(pki.load_issued(tmp_path, "NCIS-RA-01").certificate, [])


@pytest.mark.parametrize(
    ("activities", "message"),
    [
        ([("ca", "NSA")], "reserved"),
        ([("SERVER", "NSA")], "reserved"),
        ([("x-key", "NSA")], "reserved"),
        ([("admin", "DSS")], "index cluster"),  # the cluster maps CN=admin to all_access
        ([("OpenSearch-2", "DSS")], "index cluster"),
        ([("../x", "NSA")], "activity id"),
        ([("", "NSA")], "activity id"),
        ([("A-1", "NSA"), ("a-1", "DIA")], "listed twice"),
    ],
)
def test_init_pki_refuses_unsafe_activity_ids(tmp_path: Path, activities: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pki.init_pki(tmp_path / "pki", activities=activities)
    assert not (tmp_path / "pki").exists()  # checked before anything was written


def test_issue_client_into_adds_a_certificate_from_the_stored_ca(tmp_path: Path) -> None:
    pki.init_pki(tmp_path, activities=[])
    cert_path, key_path = pki.issue_client_into(tmp_path, "USCG-01", "USCG")
    assert (cert_path, key_path) == (tmp_path / "USCG-01.pem", tmp_path / "USCG-01-key.pem")
    assert _mode(key_path) == 0o600
    client = pki.load_issued(tmp_path, "USCG-01")
    assert pki.subject_of(client.cert_pem) == ("USCG-01", "USCG")
    _client_verifier(pki.load_issued(tmp_path, "ca")).verify(client.certificate, [])

    with pytest.raises(FileExistsError, match=r"USCG-01\.pem already exists"):
        pki.issue_client_into(tmp_path, "USCG-01", "USCG")
    pki.issue_client_into(tmp_path, "USCG-01", "USCG", force=True)
    assert pki.load_issued(tmp_path, "USCG-01").fingerprint != client.fingerprint
    with pytest.raises(FileNotFoundError):
        pki.issue_client_into(tmp_path / "empty", "USCG-02", "USCG")


def test_dcii_certs_server_rotates_the_server_certificate_under_the_same_ca(tmp_path: Path) -> None:
    from dcii.cli.main import main

    pki.init_pki(tmp_path, activities=[])
    ca, old = pki.load_issued(tmp_path, "ca"), pki.load_issued(tmp_path, "server")
    main(["certs", "server", "--dir", str(tmp_path), "--hostname", "search-1", "--hostname", "dcii.example.mil"])
    new = pki.load_issued(tmp_path, "server")
    assert new.fingerprint != old.fingerprint and pki.load_issued(tmp_path, "ca").fingerprint == ca.fingerprint
    _server_verifier(ca, x509.DNSName("dcii.example.mil")).verify(new.certificate, [])
    _server_verifier(ca, x509.DNSName("search-1")).verify(new.certificate, [])
    with pytest.raises(xv.VerificationError):
        _server_verifier(ca, x509.DNSName("localhost")).verify(new.certificate, [])  # only the names asked
    main(["certs", "server", "--dir", str(tmp_path), "--hostname", "x", "--out", str(tmp_path / "new")])
    assert pki.load_issued(tmp_path / "new", "server").fingerprint != new.fingerprint
    assert pki.load_issued(tmp_path, "server").fingerprint == new.fingerprint  # --out leaves the live pair
