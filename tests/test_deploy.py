"""deploy/: the compose file validates (the compose-spec JSON schema, and `docker-compose config` where the
tool is installed), the Kubernetes manifests pass a strict schema check, the Dockerfile refers to files
and commands that exist, and the certificate maker and health probe work against a real server."""

from __future__ import annotations

import fnmatch
import importlib.resources
import json
import os
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from dcii.cli.main import parser as dcii_parser
from search_service.readiness import STORE_BOUND
from tests.support import ROOT, make_index

SEARCH_SERVICE = "dcii.v1.SearchService"

DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
KUBERNETES_VERSION = kubernetes_validate.latest_version()  # the newest schemas the package ships


def compose() -> dict[str, Any]:
    document = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(document, dict)
    return document


def compose_schema() -> dict[str, Any]:
    # The compose-spec schema as check-jsonschema vendors it (offline; no Docker engine is needed).
    text = (importlib.resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json").read_text()
    schema = json.loads(text)
    assert isinstance(schema, dict)
    return schema


def compose_errors(document: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft202012Validator(compose_schema())
    return [error.message for error in validator.iter_errors(document)]


# ---- compose ----


def test_the_compose_file_validates_against_the_compose_spec() -> None:
    document = compose()
    assert compose_errors(document) == []
    spoiled = json.loads(json.dumps(document))
    spoiled["services"]["search-1"]["healthchek"] = {}  # a typo must not pass: the schema is strict
    assert compose_errors(spoiled), "the compose-spec schema accepted an unknown service key"


def _compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


def test_docker_compose_config_accepts_the_file() -> None:
    command = _compose_command()
    if command is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install docker-compose (Debian package docker-compose) to validate deploy/")
        pytest.skip("no docker-compose here (apt-get install docker-compose)")
    done = subprocess.run(
        [*command, "-f", str(DEPLOY / "compose.yaml"), "config", "-q"],
        cwd=DEPLOY,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_the_compose_deployment_has_what_the_issue_asks() -> None:
    services = compose()["services"]
    nodes = [name for name in services if name.startswith("opensearch-")]
    instances = [name for name in services if name.startswith("search-")]
    assert len(nodes) == 3 and len(instances) == 2
    for node in nodes:
        environment = services[node]["environment"]
        assert environment["DISABLE_INSTALL_DEMO_CONFIG"] == "true"
        assert environment["cluster.initial_cluster_manager_nodes"] == ",".join(nodes)
        assert services[node]["depends_on"]["certs"]["condition"] == "service_completed_successfully"
        assert f"./pki/opensearch/{node}:/usr/share/opensearch/config/certs:ro" in services[node]["volumes"]
    settings = yaml.safe_load((DEPLOY / "opensearch" / "opensearch.yml").read_text())
    assert settings["plugins.security.ssl.http.enabled"] is True
    assert settings["plugins.security.ssl.http.clientauth_mode"] == "REQUIRE"
    assert settings["plugins.security.ssl.transport.pemcert_filepath"] == "certs/node.pem"
    for instance in instances:
        url = services[instance]["environment"]["DCII_STORE_URL"]
        assert url.startswith("opensearch+https://") and "replicas=1" in url and "cert=" in url
        assert services[instance]["healthcheck"]["test"] == ["CMD", "dcii-healthcheck"]
        assert dcii_parser().parse_args(["serve", *services[instance]["command"]]).metrics_port == 9464
    # The balancer forwards to exactly the two instances, in TCP mode (TLS passes through).
    haproxy = (DEPLOY / "haproxy" / "haproxy.cfg").read_text()
    servers = [line.split()[2] for line in haproxy.splitlines() if line.strip().startswith("server ")]
    assert sorted(servers) == sorted(f"{name}:50051" for name in instances) and "mode tcp" in haproxy
    # Connections per source address are limited at the balancer: an instance cannot refuse one before TLS.
    assert "track-sc0 src" in haproxy and "sc0_conn_cur gt" in haproxy
    assert "/opt/dcii/deploy/certs/make-certs.sh" in services["certs"]["entrypoint"]
    # Every file the compose file mounts from deploy/ exists (the pki/ ones are made by the certs service).
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./") and not source.startswith("./pki"):
                assert (DEPLOY / source).exists(), source


# ---- Kubernetes ----


def k8s_documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                found.append((path.name, document))
    return found


def test_the_kubernetes_manifests_pass_a_strict_schema_check() -> None:
    documents = k8s_documents()
    assert len(documents) >= 10
    for _name, document in documents:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)  # raises on any error
    spoiled = next(d for _, d in documents if d["kind"] == "StatefulSet")
    spoiled = json.loads(json.dumps(spoiled))
    spoiled["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(spoiled, KUBERNETES_VERSION, strict=True)


def test_the_kubernetes_deployment_has_probes_budgets_and_generated_secrets() -> None:
    documents = [d for _, d in k8s_documents()]
    kinds = {(d["kind"], d["metadata"]["name"]) for d in documents}
    assert {("StatefulSet", "opensearch"), ("StatefulSet", "search-service")} <= kinds
    assert {("PodDisruptionBudget", "opensearch"), ("PodDisruptionBudget", "search-service")} <= kinds
    assert ("Service", "search-service") in kinds and ("Service", "opensearch") in kinds
    for workload in (d for d in documents if d["kind"] == "StatefulSet"):
        for container in workload["spec"]["template"]["spec"]["containers"]:
            assert {"readinessProbe", "livenessProbe"} <= set(container), container["name"]
    opensearch = next(d for d in documents if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "opensearch")
    assert opensearch["spec"]["replicas"] == 3
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert all((K8S / resource).exists() for resource in kustomization["resources"])
    generated = {secret["name"] for secret in kustomization["secretGenerator"]}
    referenced = {
        volume["secret"]["secretName"]
        for d in documents
        if d["kind"] == "StatefulSet"
        for volume in d["spec"]["template"]["spec"].get("volumes", [])
        if "secret" in volume
    }
    assert referenced == generated == {"dcii-pki", "opensearch-node-certs"}
    search = next(d for d in documents if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "search-service")
    container = search["spec"]["template"]["spec"]["containers"][0]
    assert dcii_parser().parse_args(["serve", *container["args"]]).port == 50051
    # Liveness asks the server as a whole; readiness whether it can answer searches (search_service.readiness).
    assert container["livenessProbe"]["exec"]["command"] == ["dcii-healthcheck"]
    readiness = container["readinessProbe"]["exec"]["command"]
    assert readiness == ["dcii-healthcheck", "--service", SEARCH_SERVICE]
    assert SEARCH_SERVICE in STORE_BOUND


def test_the_configmap_holds_the_same_opensearch_configuration_as_compose() -> None:
    configmap = next(d for _, d in k8s_documents() if d["kind"] == "ConfigMap" and d["metadata"]["name"])
    data = configmap["data"]
    assert data["opensearch.yml"] == (DEPLOY / "opensearch" / "opensearch.yml").read_text()
    for name in ("config.yml", "roles.yml", "roles_mapping.yml", "internal_users.yml"):
        assert data[f"security-{name}"] == (DEPLOY / "opensearch" / "security" / name).read_text(), name


# ---- the Dockerfile ----


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) with continuation lines joined."""
    lines, current = [], ""
    for raw in (DEPLOY / "Dockerfile").read_text().splitlines():
        if not current and (not raw.strip() or raw.lstrip().startswith("#")):
            continue
        current += raw.rstrip().removesuffix("\\") + " "
        if not raw.rstrip().endswith("\\"):
            instruction, _, arguments = current.strip().partition(" ")
            lines.append((instruction.upper(), arguments.strip()))
            current = ""
    return lines


def test_the_dockerfile_refers_to_files_and_commands_that_exist() -> None:
    instructions = dockerfile()
    first = dict(instructions)
    assert instructions[0] == ("FROM", "python:3.11-slim")
    runs = " ".join(arguments for instruction, arguments in instructions if instruction == "RUN")
    assert first["USER"] not in ("root", "0") and "--uid 10001 --gid dcii --home-dir" in runs
    copies = [shlex.split(arguments) for instruction, arguments in instructions if instruction == "COPY"]
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text()
    destinations = {}
    for *sources, destination in copies:
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
            assert f"!{source.rstrip('/')}" in ignore, f"{source} is left out of the build context"
            destinations[destination] = source
    entrypoint = json.loads(first["ENTRYPOINT"])
    assert entrypoint == ["dcii", "serve"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["dcii"] == "dcii.cli.main:main"
    arguments = dcii_parser().parse_args(entrypoint[1:] + json.loads(first["CMD"]))
    assert arguments.host == "0.0.0.0" and arguments.metrics_port == 9464
    exposed = {int(port) for port in first["EXPOSE"].split()}
    assert exposed == {arguments.port, arguments.metrics_port}
    probe = json.loads(first["HEALTHCHECK"].split(" CMD ", 1)[1])
    assert destinations[f"/usr/local/bin/{probe[0]}"] == "deploy/healthcheck.py"


# ---- the certificates and the health probe, for real ----


def test_make_certs_and_the_health_probe_against_a_real_server(tmp_path: Path) -> None:
    pki_root = tmp_path / "pki"
    environment = dict(
        os.environ,
        PKI=str(pki_root),
        PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        PYTHON=sys.executable,
        PYTHONPATH=str(ROOT),
        OPENSEARCH_NAMES="opensearch opensearch.dcii.svc",
    )
    command = ["sh", str(DEPLOY / "certs" / "make-certs.sh")]
    made = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=120, check=False)
    assert made.returncode == 0, made.stderr
    again = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=120, check=False)
    assert again.returncode == 0 and "nothing else to do" in again.stdout  # a second run keeps the CA
    assert "peer certificate" not in again.stdout
    # A deployment made before the peer certificate existed gets it from its CA on the next run.
    for made_before in (*(pki_root / "ca").glob("dcii-peer*.pem"), *(pki_root / "dcii").glob("dcii-peer*.pem")):
        made_before.unlink()
    upgraded = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=120, check=False)
    assert upgraded.returncode == 0 and "issued the instances' peer certificate" in upgraded.stdout, upgraded.stderr
    peer = x509.load_pem_x509_certificate((pki_root / "dcii" / "dcii-peer.pem").read_bytes())
    assert set(peer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == {
        ExtendedKeyUsageOID.CLIENT_AUTH
    }

    ca = x509.load_pem_x509_certificate((pki_root / "ca" / "ca.pem").read_bytes())
    peer.verify_directly_issued_by(ca)
    settings = yaml.safe_load((DEPLOY / "opensearch" / "opensearch.yml").read_text())
    for node in ("opensearch-1", "opensearch-2", "opensearch-3"):
        cert = x509.load_pem_x509_certificate((pki_root / "opensearch" / node / "node.pem").read_bytes())
        cert.verify_directly_issued_by(ca)
        usages = set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
        assert usages == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert {node, "opensearch", "localhost"} <= set(names.get_values_for_type(x509.DNSName))
        assert any(fnmatch.fnmatch(cert.subject.rfc4514_string(), p) for p in settings["plugins.security.nodes_dn"])
    admin = x509.load_pem_x509_certificate((pki_root / "opensearch" / "admin.pem").read_bytes())
    assert admin.subject.rfc4514_string() in settings["plugins.security.authcz.admin_dn"]
    assert not (pki_root / "dcii" / "ca-key.pem").exists()  # the service never holds the CA's key

    index = make_index(tmp_path / "server")
    index.pki_dir = pki_root / "dcii"  # the server runs on the certificates make-certs made
    index.start()
    try:
        probe = [sys.executable, str(DEPLOY / "healthcheck.py"), "--pki", str(pki_root / "dcii")]
        healthy = subprocess.run(
            [*probe, "--target", f"localhost:{index.port}"], capture_output=True, text=True, timeout=60, check=False
        )
        assert healthy.returncode == 0 and healthy.stdout.strip() == "SERVING", healthy.stderr
        stranger = subprocess.run(  # a certificate of another CA is turned away at the handshake
            [
                *probe[:2],
                "--pki",
                str(tmp_path / "server" / "pki"),
                "--cert",
                "server",
                "--target",
                f"localhost:{index.port}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert stranger.returncode == 1 and "unhealthy" in stranger.stderr
    finally:
        index.stop()
    down = subprocess.run(
        [*probe, "--target", f"localhost:{index.port}", "--timeout", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert down.returncode == 1 and "unhealthy: UNAVAILABLE" in down.stderr


def test_the_store_urls_of_compose_and_kubernetes_parse() -> None:
    settings_module = pytest.importorskip("indexer.store.opensearch_settings")
    services = compose()["services"]
    search = next(
        d for _, d in k8s_documents() if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "search-service"
    )
    urls = [services["search-1"]["environment"]["DCII_STORE_URL"]]
    urls += [
        e["value"] for e in search["spec"]["template"]["spec"]["containers"][0]["env"] if e["name"] == "DCII_STORE_URL"
    ]
    for url in urls:
        settings = settings_module.OpenSearchSettings.from_url(url)
        assert settings.replicas == 1 and settings.client_cert is not None and settings.ca_file is not None
        assert all(host.startswith("https://") for host in settings.hosts)
