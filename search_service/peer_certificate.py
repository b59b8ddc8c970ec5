"""The client certificate of a call: its fingerprint, checked valid on every call (the registry knows each
activity's certificates by fingerprint)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from indexer.exc import Unauthenticated


@dataclass(frozen=True, slots=True)
class _Certificate:
    """What a call needs of its client certificate: its fingerprint and validity (POSIX seconds)."""

    fingerprint: str
    not_before: float
    not_after: float


# Parsing the certificate on every call was a good part of a call's authorization: what is derived from
# the certificate's bytes alone never changes, so it is kept by those bytes (a few per activity).
_CERTIFICATES: dict[bytes, _Certificate] = {}
_CERTIFICATES_MAX = 4096


def _certificate(pem: bytes) -> _Certificate:
    found = _CERTIFICATES.get(pem)
    if found is None:
        cert = x509.load_pem_x509_certificate(pem)
        found = _Certificate(
            hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest(),
            cert.not_valid_before_utc.timestamp(),
            cert.not_valid_after_utc.timestamp(),
        )
        if len(_CERTIFICATES) >= _CERTIFICATES_MAX:
            _CERTIFICATES.clear()
        _CERTIFICATES[pem] = found
    return found


def peer_fingerprint(context: grpc.ServicerContext) -> str:
    """SHA-256 (hex) of the DER client certificate the TLS handshake verified, while it is valid.

    The handshake checked its validity when the connection opened; a connection can outlive it, so it is
    checked again on every call (wall-clock time, as TLS does)."""
    # grpc gives a dict of lists of bytes (its stubs say Mapping[str, bytes]).
    auth = cast(Mapping[str, list[bytes]], context.auth_context())
    pems = auth.get("x509_pem_cert")
    if not pems:
        raise Unauthenticated("a client certificate is required")
    cert = _certificate(pems[0])
    now = time.time()
    if not cert.not_before <= now <= cert.not_after:
        raise Unauthenticated("the client certificate has expired or is not yet valid")
    return cert.fingerprint
