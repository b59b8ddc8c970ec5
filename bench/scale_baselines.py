"""What a team would build instead, on the same names and the same FUZZY queries.

* Brute force: rapidfuzz's process.extract with WRatio (the scorer bench/febrl.py's baseline uses; it
  also survives swapped name order) of "GIVEN SURNAME" against every name held in memory, one query at
  a time on one thread. At millions of names a query takes seconds, so the queries run in a fixed
  shuffled order until a time budget is spent (at least a few are always run), and the table says how many.
* PostgreSQL (15 here) with pg_trgm and fuzzystrmatch: the names loaded with COPY into one table with a GIN
  trigram index on "GIVEN SURNAME" and an expression index on dmetaphone(surname). Two queries, the two a
  team would write first: `full_name % q ORDER BY similarity DESC` (trigrams, default threshold 0.3) and
  `dmetaphone(surname) = dmetaphone(q) ORDER BY levenshtein(surname) + levenshtein(given)`. The cluster
  runs on a free loopback port with shared_buffers 512MB, work_mem 64MB, wal_level minimal (load speed).

Every baseline is judged like the index's FUZZY answers: its top 10 distinct tracings (bench/scale_queries.py).
"""

from __future__ import annotations

import os
import random
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for entry in (str(ROOT), str(ROOT / "bench")):
    if entry not in sys.path:
        sys.path.insert(0, entry)

from scale_data import full_name  # noqa: E402
from scale_queries import FUZZY_PAGE, Query  # noqa: E402
from scale_server import free_port  # noqa: E402


def _pg_bin() -> Path:
    """The newest installed PostgreSQL (Debian's layout, as .ci/run finds it); 15 on the bench machine."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0
    )
    return found[-1] if found else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _pg_bin()
PG_VERSION = PG_BIN.parent.name
MIN_QUERIES = 5


@dataclass
class Hits:
    """One answered query: its time and what it returned, best first."""

    seconds: float
    keys: tuple[str, ...]
    top_name: str
    error: str = ""


@dataclass
class Baseline:
    system: str
    hits: list[Hits]
    queries: list[Query]  # the queries answered (a sample when the budget ran out)
    note: str = ""


def _distinct(rows: Sequence[tuple[str, str]]) -> tuple[tuple[str, ...], str]:
    """(key, name) rows, best first -> the first FUZZY_PAGE distinct keys, and the first row's name."""
    keys: list[str] = []
    for key, _name in rows:
        if key not in keys:
            keys.append(key)
            if len(keys) == FUZZY_PAGE:
                break
    return tuple(keys), rows[0][1] if rows else ""


def _budgeted(queries: list[Query], budget: float, run: Callable[[Query], Hits]) -> tuple[list[Hits], list[Query]]:
    order = list(queries)
    random.Random(1).shuffle(order)
    hits: list[Hits] = []
    spent = 0.0
    for query in order:
        if spent > budget and len(hits) >= MIN_QUERIES:
            break
        answer = run(query)
        hits.append(answer)
        spent += answer.seconds
    return hits, order[: len(hits)]


def _load_names(names_tsv: Path) -> tuple[list[str], list[str]]:
    keys, names = [], []
    with names_tsv.open(encoding="utf-8") as handle:
        for line in handle:
            key, _surname, _given, name = line.rstrip("\n").split("\t")
            keys.append(key)
            names.append(name)
    return keys, names


def rapidfuzz_baseline(names_tsv: Path, queries: list[Query], budget: float) -> Baseline:
    from rapidfuzz import fuzz, process

    keys, names = _load_names(names_tsv)

    def run(query: Query) -> Hits:
        text = full_name(query.asked_surname, query.asked_given)
        started = time.perf_counter()
        # More than 10: a person's aliases are names of the same tracing.
        found = process.extract(text, names, scorer=fuzz.WRatio, limit=FUZZY_PAGE * 3)
        seconds = time.perf_counter() - started
        return Hits(seconds, *_distinct([(keys[i], names[i]) for _, _, i in found]))

    hits, asked = _budgeted(queries, budget, run)
    note = f"{len(names):,} names in memory"
    return Baseline("brute-force rapidfuzz (WRatio, every name)", hits, asked, note)


# ---- PostgreSQL ----


def postgres_available() -> bool:
    return (PG_BIN / "initdb").exists() and (PG_BIN / "pg_ctl").exists()


def _as_postgres() -> list[str]:
    return ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []


def _reachable_by_others(path: Path) -> bool:
    """initdb refuses root, so the cluster runs as postgres, who must be able to reach its directory."""
    return all(p.stat().st_mode & stat.S_IXOTH for p in [path, *path.parents] if p.exists())


class Postgres:
    """A throwaway cluster (initdb as postgres when we are root, as .ci/run does)."""

    def __init__(self, home: Path) -> None:
        self.temporary = os.getuid() == 0 and not _reachable_by_others(home.parent)
        if self.temporary:
            home = Path(tempfile.mkdtemp(prefix="dcii-scale-pg-"))
            home.chmod(0o755)
        self.home, self.port = home, free_port()
        self.data = home / "data"

    def start(self) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        if os.getuid() == 0:
            shutil.chown(self.home, "postgres")
        if not (self.data / "PG_VERSION").exists():
            subprocess.run(
                [
                    *_as_postgres(),
                    str(PG_BIN / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    "postgres",
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        options = (
            f"-p {self.port} -k {self.home} -c listen_addresses=127.0.0.1 -c shared_buffers=512MB "
            "-c work_mem=64MB -c wal_level=minimal -c max_wal_senders=0"
        )
        log = ["-l", str(self.home / "log")]
        subprocess.run(
            [*_as_postgres(), str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options, *log, "-w", "start"],
            check=True,
            stdout=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        subprocess.run(
            [*_as_postgres(), str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "stop"],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if self.temporary:
            shutil.rmtree(self.home, ignore_errors=True)

    def dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"


def _load(conn: object, names_tsv: Path, rows: int) -> float:
    """(Re)load the names unless the table already holds them; seconds spent."""
    import psycopg

    assert isinstance(conn, psycopg.Connection)
    started = time.perf_counter()
    have = conn.execute("SELECT count(*) FROM pg_tables WHERE tablename = 'names'").fetchone()
    if have and have[0]:
        count = conn.execute("SELECT count(*) FROM names").fetchone()
        if count and count[0] == rows:
            return 0.0
    with conn.transaction():
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        conn.execute("CREATE EXTENSION IF NOT EXISTS fuzzystrmatch")
        conn.execute("DROP TABLE IF EXISTS names")
        conn.execute("CREATE TABLE names (key text, surname text, given text, full_name text)")
        with conn.cursor().copy("COPY names FROM STDIN") as copy, names_tsv.open("rb") as handle:
            while block := handle.read(1 << 20):
                copy.write(block)
    conn.execute("CREATE INDEX names_trgm ON names USING gin (full_name gin_trgm_ops)")
    conn.execute("CREATE INDEX names_dmetaphone ON names (dmetaphone(surname))")
    conn.execute("ANALYZE names")
    return time.perf_counter() - started


# LIMIT 30 (3 x FUZZY_PAGE): a person's aliases are rows of the same tracing.
_TRGM = "SELECT key, full_name FROM names WHERE full_name %% %(q)s ORDER BY similarity(full_name, %(q)s) DESC LIMIT 30"
_DMETAPHONE = (
    "SELECT key, full_name FROM names WHERE dmetaphone(surname) = dmetaphone(%(s)s) "
    "ORDER BY levenshtein(surname, %(s)s) + levenshtein(given, %(g)s) LIMIT 30"
)


def postgres_baselines(home: Path, names_tsv: Path, queries: list[Query], budget: float) -> tuple[list[Baseline], str]:
    """Both PostgreSQL queries; the second value says how long the load and indexing took."""
    import psycopg

    from indexer.normalize import fold

    rows = sum(1 for _ in names_tsv.open(encoding="utf-8"))
    cluster = Postgres(home)
    cluster.start()
    try:
        with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
            loaded = _load(conn, names_tsv, rows)
            conn.execute("SET statement_timeout = '60s'")
            out = []
            for label, sql in (
                (f"PostgreSQL {PG_VERSION} pg_trgm (% and similarity, GIN)", _TRGM),
                (f"PostgreSQL {PG_VERSION} fuzzystrmatch (dmetaphone index, levenshtein)", _DMETAPHONE),
            ):

                def run(query: Query, sql: str = sql) -> Hits:
                    params = {
                        "q": full_name(query.asked_surname, query.asked_given),
                        "s": fold(query.asked_surname),
                        "g": fold(query.asked_given),
                    }
                    started = time.perf_counter()
                    try:
                        found = conn.execute(sql, params).fetchall()
                    except psycopg.errors.QueryCanceled:
                        return Hits(time.perf_counter() - started, (), "", "timeout")
                    return Hits(time.perf_counter() - started, *_distinct(found))

                for query in queries[:3]:  # warm the cache and the prepared plans
                    run(query)
                hits, asked = _budgeted(queries, budget, run)
                out.append(Baseline(label, hits, asked, f"{rows:,} names"))
    finally:
        cluster.stop()
    took = f"loaded and indexed in {loaded:.0f} s" if loaded else "reused the loaded table"
    return out, took
