"""Why the fuzzy scorer misses: every FEBRL query whose true record is not ranked first, by category.

    .venv/bin/python bench/misses.py                    # FEBRL4, all three query kinds, counts + 15 examples each
    .venv/bin/python bench/misses.py --kind Q3 --show 40
    .venv/bin/python bench/misses.py --dataset febrl3 --matcher fuzzy-1

Like `bench/scoring.py`, no blocking: each query is scored against every candidate (`score_matrix`), so
this explains the scorer's misses only. For each miss it prints the query, the true record and the
record ranked first instead, with the bits (log2 odds) of both and their per-field levels, and puts the
miss in the first category that applies:

- query-missing-part / record-missing-part: the query (or the true record) lacks the surname or given name;
- swapped: the true record matches best with given and surname swapped;
- surname-replaced / given-replaced: the part disagrees (DISAGREE or only PHONETIC) and is more than two
  edits from the query's: another name, not a typo;
- surname-typo / given-typo: the part disagrees but is at most two edits away (a first-letter typo in a
  short name, two typos);
- tie: the record ranked first has exactly the true record's bits (a namesake; candidate order decides);
- namesake-exact: the winner's name is the query's exactly, the true record's is not;
- pid: (Q1, Q2) the winner's identifiers agree better than the true record's;
- other.

A category gets ", tied" where the winner's bits equal the true record's: no scorer that sees only these
fields could tell them apart (the candidates' order decides, as in the service).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import numpy.typing as npt
from rapidfuzz.distance import OSA

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scoring import BATCH, KINDS, Record, Task, febrl3, febrl4, query_ids, tracing

from search_service import matching, matching_pids
from search_service.matching_names import NameLevel

_WEAK = (NameLevel.DISAGREE, NameLevel.PHONETIC)


def _show(record: Record) -> str:
    name, ids = record
    dob = ids.date_of_birth.iso() if ids.date_of_birth else "-"
    return f"{name.given_name or '-':>12} {name.surname or '-':<14} dob {dob:<10} ssn {ids.ssn or '-'}"


def _levels(cmp: matching._Comparison, row: int, col: int) -> str:
    n = cmp.names
    out = f"s={NameLevel(n.surname[row, col]).name} g={NameLevel(n.given[row, col]).name}"
    if n.swapped[row, col]:
        out += " swapped"
    if cmp.pids is not None:
        out += f" ssn={matching_pids.SsnLevel(cmp.pids[0][row, col]).name}"
        out += f" dob={matching_pids.DobLevel(cmp.pids[1][row, col]).name}"
    return out


def _category(
    q: Record,
    t: Record,
    w: Record,
    cmp: matching._Comparison,
    at: tuple[int, int, int],
    bits: npt.NDArray[np.float64],
    pid_weights: tuple[npt.NDArray[np.float64], ...],
) -> str:
    row, target, winner = at
    qn, tn, wn = q[0], t[0], w[0]
    n = cmp.names
    if not qn.surname or not qn.given_name:
        return "query-missing-part"
    if not tn.surname or not tn.given_name:
        return "record-missing-part"
    if n.swapped[row, target]:
        return "swapped"
    for part, level, q_text, t_text in (
        ("surname", n.surname[row, target], qn.surname, tn.surname),
        ("given", n.given[row, target], qn.given_name, tn.given_name),
    ):
        if level in _WEAK:
            typo = OSA.distance(q_text.upper().replace(" ", ""), t_text.upper().replace(" ", "")) <= 2
            return f"{part}-typo" if typo else f"{part}-replaced"
    if bits[row, winner] == bits[row, target]:
        return "tie"
    same = (wn.surname.upper(), wn.given_name.upper()) == (qn.surname.upper(), qn.given_name.upper())
    if same and (tn.surname.upper(), tn.given_name.upper()) != (qn.surname.upper(), qn.given_name.upper()):
        return "namesake-exact"
    if cmp.pids is not None:
        ssn_w, dob_w = pid_weights[0], pid_weights[1]
        t_pid = ssn_w[cmp.pids[0][row, target]] + dob_w[cmp.pids[1][row, target]]
        w_pid = ssn_w[cmp.pids[0][row, winner]] + dob_w[cmp.pids[1][row, winner]]
        if w_pid > t_pid:
            return "pid"
    return "other"


def misses(task: Task, kind: str, show: int, matcher: str) -> list[str]:
    mode, with_dob, with_ssn = KINDS[kind]
    use_pids = mode == "PID_QUALIFIED"
    compiled = matching.compile_candidates([tracing(str(i), r) for i, r in enumerate(task.candidates)])
    positions = np.arange(len(task.candidates))
    pid_weights = matching.matcher(matcher).pids.arrays
    counts: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    n_miss10 = 0
    for start in range(0, len(task.queries), BATCH):
        chunk = task.queries[start : start + BATCH]
        ids = [query_ids(q[1], with_dob, with_ssn) for q in chunk]
        cmp = matching._compare([q[0] for q in chunk], ids, compiled, use_pids, 1, matcher=matcher)
        bits = cmp.bits.copy()
        for row, excluded in enumerate(task.excluded[start : start + BATCH]):
            if excluded:
                bits[row, excluded] = -np.inf
        for row in range(len(chunk)):
            target = task.targets[start + row]
            tb = bits[row, target]
            ahead = int((bits[row] > tb).sum() + ((bits[row] == tb) & (positions < target)).sum())
            if ahead == 0:
                continue
            n_miss10 += ahead >= 10
            order = np.lexsort((positions, -bits[row]))
            winner = int(order[0])
            q, t, w = chunk[row], task.candidates[target], task.candidates[winner]
            qr = (q[0], ids[row])
            category = _category(qr, t, w, cmp, (row, target, winner), bits, pid_weights)
            if category != "tie" and bits[row, winner] == tb:
                category += ", tied"
            counts[category] += 1
            lines = examples.setdefault(category, [])
            if len(lines) < show:
                lines += [
                    f"  query  {_show(qr)}",
                    f"  true   {_show(t)}  {tb:6.1f} bits  {_levels(cmp, row, target)}  (rank {ahead + 1})",
                    f"  winner {_show(w)}  {bits[row, winner]:6.1f} bits  {_levels(cmp, row, winner)}",
                    "",
                ]
    total = sum(counts.values())
    out = [f"## {task.name} {kind} ({matcher}): {total} of {len(task.queries)} not first, {n_miss10} not in top 10", ""]
    out += [f"  {category:<22} {count}" for category, count in counts.most_common()]
    for category, _ in counts.most_common():
        out += ["", f"### {category}", "", *examples[category]]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=["febrl4", "febrl3"], default="febrl4")
    parser.add_argument("--kind", choices=["Q1", "Q2", "Q3"], action="append", help="default: all three")
    parser.add_argument("--show", type=int, default=15, help="examples per category")
    parser.add_argument("--matcher", default=matching.MATCHER_VERSION, choices=sorted(matching.MATCHERS))
    args = parser.parse_args()
    task = febrl4() if args.dataset == "febrl4" else febrl3()
    for kind in KINDS:
        if args.kind and kind.split()[0] not in args.kind:
            continue
        print("\n".join(misses(task, kind, args.show, args.matcher)))


if __name__ == "__main__":
    main()
