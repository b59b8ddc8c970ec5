"""The processes the scale bench talks to, and how it reaches them: the work directory's layout, the
accredited bench activities, mutual-TLS channels, and a `dcii serve` (or echo) subprocess with its
start-up time and resident memory read from /proc."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dcii.v1 import admin_pb2, admin_pb2_grpc  # noqa: E402
from search_service import pki  # noqa: E402
from search_service.accreditation import Purpose, Role  # noqa: E402
from search_service.registry import Registry  # noqa: E402

Metadata = tuple[tuple[str, str], ...]
QUERY_ACTIVITY = "BENCH-QUERY"


@dataclass(frozen=True)
class Account:
    """One accredited bench activity with its single operator."""

    activity: str
    agency: str
    role: str
    account: str
    password: str


class Work:
    """The work directory: pki/ (kept), inputs/ (generated once), data/ (the server's), results."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.pki = root / "pki"
        self.inputs = root / "inputs"
        self.data = root / "data"
        self.accounts_file = root / "accounts.json"
        self.results = root / "results.json"
        self.server_log = root / "server.log"

    def accounts(self) -> dict[str, Account]:
        rows = json.loads(self.accounts_file.read_text())
        return {row["activity"]: Account(**row) for row in rows}

    def make_pki(self, agencies: list[str], load_activities: int) -> None:
        """Certificates for a submitter per agency (only an agency's own activity may write its tracings),
        one latency client and `load_activities` load-generator terminals (the rate limit is per activity)."""
        wanted = [Account(f"BENCH-SUB-{a}", a, Role.SUBMITTER.value, "", "") for a in agencies]
        wanted.append(Account(QUERY_ACTIVITY, "DSS", Role.QUERIER.value, "", ""))
        wanted += [Account(f"BENCH-LOAD-{i:02d}", "DSS", Role.QUERIER.value, "", "") for i in range(load_activities)]
        have = self.accounts() if self.accounts_file.exists() else {}
        if not (self.pki / "ca.pem").exists():
            pki.init_pki(self.pki, activities=[])
        accounts = dict(have)
        for want in wanted:
            if want.activity in accounts:
                continue
            if not (self.pki / f"{want.activity}.pem").exists():
                pki.issue_client_into(self.pki, want.activity, want.agency)
            password = secrets.token_urlsafe(18)
            accounts[want.activity] = Account(
                want.activity, want.agency, want.role, want.activity.lower() + "-op", password
            )
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.accounts_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump([asdict(a) for a in accounts.values()], handle, indent=1)

    def make_registry(self) -> None:
        """A fresh registry in data/ accrediting every bench activity."""
        self.data.mkdir(parents=True, exist_ok=True)
        registry = Registry(self.data / "registry.db")
        try:
            for acc in self.accounts().values():
                registry.add_activity(acc.activity, acc.agency, [Role(acc.role)], list(Purpose))
                registry.add_certificate(acc.activity, pki.fingerprint((self.pki / f"{acc.activity}.pem").read_bytes()))
                registry.add_operator(acc.account, acc.activity, acc.password)
        finally:
            registry.close()

    def store_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.data.glob("index.db*") if p.is_file())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def credentials(pki_dir: Path, activity: str) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=(pki_dir / "ca.pem").read_bytes(),
        private_key=(pki_dir / f"{activity}-key.pem").read_bytes(),
        certificate_chain=(pki_dir / f"{activity}.pem").read_bytes(),
    )


# Reconnect quickly: the default backoff (1 s, growing) would be counted as start-up time.
CHANNEL_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 20), ("grpc.max_reconnect_backoff_ms", 100)]


def channel(port: int, pki_dir: Path, activity: str) -> grpc.Channel:
    return grpc.secure_channel(f"localhost:{port}", credentials(pki_dir, activity), options=CHANNEL_OPTIONS)


def login(chan: grpc.Channel, account: Account) -> Metadata:
    response = admin_pb2_grpc.SessionServiceStub(chan).Login(
        admin_pb2.LoginRequest(account_code=account.account, password=account.password), timeout=60
    )
    return (("authorization", f"Bearer {response.session_token}"),)


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


class ServerProcess:
    """A server subprocess; `started` is taken just before the fork, so start-up includes the interpreter."""

    def __init__(self, argv: list[str], log_path: Path) -> None:
        self._log = log_path.open("ab")
        self.started = time.perf_counter()
        self.process = subprocess.Popen(argv, cwd=ROOT, stdout=self._log, stderr=self._log)

    @classmethod
    def dcii(cls, work: Work, port: int, processes: int = 1) -> ServerProcess:
        argv = [sys.executable, "-m", "dcii.cli.main", "serve", "--data", str(work.data), "--pki", str(work.pki)]
        return cls([*argv, "--port", str(port), "--processes", str(processes)], work.server_log)

    def serving_pids(self, marker: bytes = b"search_service.serving_processes") -> list[int]:
        """This process and the replicas it started to serve the same port (`--processes`)."""
        return [self.process.pid, *(pid for pid in _children(self.process.pid) if marker in _cmdline(pid))]

    def wait_port(self, port: int, timeout: float = 600.0) -> float:
        """Seconds from the fork until the port accepts connections."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}; see {self._log.name}")
            if _port_open(port):
                return time.perf_counter() - self.started
            time.sleep(0.01)
        raise TimeoutError(f"nothing listening on {port} after {timeout:.0f} s")

    def wait_serving(self, port: int, pki_dir: Path, timeout: float = 600.0) -> float:
        """Seconds from the fork until a health check over mutual TLS answers SERVING."""
        self.wait_port(port, timeout)
        with channel(port, pki_dir, QUERY_ACTIVITY) as chan:
            stub = health_pb2_grpc.HealthStub(chan)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    status = stub.Check(health_pb2.HealthCheckRequest(), timeout=2).status
                    if status == health_pb2.HealthCheckResponse.SERVING:
                        return time.perf_counter() - self.started
                except grpc.RpcError:
                    if self.process.poll() is not None:
                        raise RuntimeError(f"server exited; see {self._log.name}") from None
                time.sleep(0.01)
        raise TimeoutError("the server never answered SERVING")

    def memory(self) -> dict[str, int]:
        """Resident memory of the server (bytes), summed over its serving processes: VmRSS and its
        anonymous and file-backed parts, PSS, and the RSS of its other child processes (the batch worker,
        ingest workers). File-backed pages of a file mapped by several SQLite connections count in VmRSS
        once per mapping, and in each process's; PSS counts each page once in all."""
        serving = self.serving_pids()
        statuses = [_status_kib(pid) for pid in serving]
        children = sum(
            _status_kib(pid).get("VmRSS", 0) * 1024 for pid in _children(self.process.pid) if pid not in serving
        )
        return {
            "rss": sum(s.get("VmRSS", 0) for s in statuses) * 1024,
            "anon": sum(s.get("RssAnon", 0) for s in statuses) * 1024,
            "file": sum(s.get("RssFile", 0) for s in statuses) * 1024,
            "pss": sum(_pss_kib(pid) for pid in serving) * 1024,
            "children": children,
            "processes": len(serving),
        }

    def stop(self, timeout: float = 120.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        self._log.close()


def _children(parent: int) -> list[int]:
    """The pid of each process whose parent is `parent`."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent:
            found.append(int(stat.parent.name))
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _status_kib(pid: int) -> dict[str, int]:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    return {line.split(":")[0]: int(line.split()[1]) for line in lines if line.startswith(("VmRSS:", "Rss"))}


def _pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """User and system CPU a process has used so far (/proc/PID/stat)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
