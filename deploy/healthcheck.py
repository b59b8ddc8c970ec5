#!/usr/bin/env python3
"""Health probe of a DCII server: asks its gRPC health service over mutual TLS; exit 0 when SERVING.

The server has no plaintext port, so neither Docker's HEALTHCHECK nor a Kubernetes grpc probe (which
cannot present a client certificate) can ask it directly: this probe does, with a certificate from the
deployment's CA (`dcii certs issue probe`). Health is an infrastructure method: any certificate of our
CA may ask it, and that certificate can reach nothing else (search_service.auth).

    dcii-healthcheck [--target localhost:50051] [--pki /etc/dcii/pki] [--cert probe] [--timeout 3]

Each option also reads an environment variable: DCII_HEALTH_TARGET, DCII_PKI, DCII_HEALTH_CERT.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc


def check(target: str, pki: Path, cert: str, timeout: float, service: str = "") -> tuple[bool, str]:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=(pki / "ca.pem").read_bytes(),
        private_key=(pki / f"{cert}-key.pem").read_bytes(),
        certificate_chain=(pki / f"{cert}.pem").read_bytes(),
    )
    with grpc.secure_channel(target, credentials) as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=timeout
            )
        except grpc.RpcError as error:
            return False, f"unhealthy: {error.code().name}"
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
    return answer.status == health_pb2.HealthCheckResponse.SERVING, status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dcii-healthcheck", description=__doc__.splitlines()[0])
    parser.add_argument("--target", default=os.environ.get("DCII_HEALTH_TARGET", "localhost:50051"))
    parser.add_argument("--pki", type=Path, default=Path(os.environ.get("DCII_PKI", "/etc/dcii/pki")))
    parser.add_argument("--cert", default=os.environ.get("DCII_HEALTH_CERT", "probe"), help="stem of CERT.pem")
    parser.add_argument("--timeout", type=float, default=3.0)
    parser.add_argument("--service", default="", help="a service name; empty: the server as a whole")
    args = parser.parse_args(argv)
    try:
        healthy, status = check(args.target, args.pki, args.cert, args.timeout, args.service)
    except OSError as error:  # a certificate file missing or unreadable
        healthy, status = False, f"unhealthy: {error.__class__.__name__}: {error.filename}"
    print(status, file=sys.stdout if healthy else sys.stderr)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
