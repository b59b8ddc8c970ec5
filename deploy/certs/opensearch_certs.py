#!/usr/bin/env python3
"""OpenSearch node and admin certificates, signed by the deployment's CA (the one `dcii certs init` made).

`dcii certs` issues server certificates (serverAuth) and activity certificates (clientAuth); an OpenSearch
node needs one certificate with both, because on the transport port every node is server and client to
the others. This script issues those, with the same CA, so that one CA vouches for the whole deployment:

    opensearch_certs.py --ca-dir PKI/ca --out PKI/opensearch --nodes "opensearch-1 opensearch-2" \
        [--names "opensearch opensearch.dcii.svc"]

writes `OUT/<node>/{node.pem,node-key.pem,ca.pem}` per node (SAN: the node's DNS name, the `--names`
every node answers to as well (a Kubernetes Service), localhost and 127.0.0.1; subject
CN=<node>,OU=DCII OpenSearch node,O=DSS, which opensearch.yml's nodes_dn matches) and
`OUT/admin.pem`, `OUT/admin-key.pem` (CN=admin,OU=DCII operations,O=DSS: the security plugin's admin_dn,
for securityadmin.sh and snapshot administration). Keys are RSA 2048 in unencrypted PKCS#8 PEM, the form
the security plugin reads. Existing files are never replaced (rotate by moving them away first).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

NODE_OU = "DCII OpenSearch node"
ADMIN_OU = "DCII operations"
ORGANIZATION = "DSS"


def _name(common_name: str, unit: str) -> x509.Name:
    # Most general first, so that the RFC 2253 form the security plugin compares (most specific first) reads
    # "CN=<name>,OU=<unit>,O=DSS", as opensearch.yml writes nodes_dn and admin_dn.
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def issue(
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
    subject: x509.Name,
    dns_names: Sequence[str],
    *,
    server: bool,
    valid_days: int = 825,
) -> tuple[bytes, bytes]:
    """(certificate PEM, PKCS#8 key PEM) for a node (serverAuth + clientAuth) or a client (clientAuth)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.now(UTC) - timedelta(minutes=5)
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH] + ([ExtendedKeyUsageOID.SERVER_AUTH] if server else [])
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    if server:
        sans.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=valid_days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    cert = builder.sign(ca_key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)  # never replaces: rotation is explicit
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def make(ca_dir: Path, out: Path, nodes: Sequence[str], names: Sequence[str] = ()) -> list[Path]:
    ca_pem = (ca_dir / "ca.pem").read_bytes()
    ca_cert = x509.load_pem_x509_certificate(ca_pem)
    ca_key = serialization.load_pem_private_key((ca_dir / "ca-key.pem").read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise SystemExit("the CA key must be EC or RSA")
    written = []
    out.mkdir(mode=0o700, parents=True, exist_ok=True)
    for node in nodes:
        directory = out / node
        directory.mkdir(mode=0o700, exist_ok=True)
        cert, key = issue(ca_cert, ca_key, _name(node, NODE_OU), [node, *names, "localhost"], server=True)
        for name, data, mode in (("node-key.pem", key, 0o600), ("node.pem", cert, 0o644), ("ca.pem", ca_pem, 0o644)):
            _write(directory / name, data, mode)
            written.append(directory / name)
    cert, key = issue(ca_cert, ca_key, _name("admin", ADMIN_OU), ["admin"], server=False)
    _write(out / "admin-key.pem", key, 0o600)
    _write(out / "admin.pem", cert, 0o644)
    return [*written, out / "admin.pem", out / "admin-key.pem"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ca-dir", type=Path, required=True, help="where `dcii certs init` put ca.pem, ca-key.pem")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--nodes", required=True, help="node names, separated by spaces or commas")
    parser.add_argument("--names", default="", help="more DNS names for every node (a Service's)")
    args = parser.parse_args(argv)
    nodes = [n for n in args.nodes.replace(",", " ").split() if n]
    names = [n for n in args.names.replace(",", " ").split() if n]
    written = make(args.ca_dir, args.out, nodes, names)
    print(f"{len(written)} files written to {args.out}")


if __name__ == "__main__":
    main()
