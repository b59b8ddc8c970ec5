"""Why the fuzzy scorer misses: every FEBRL query whose true record is not ranked first, by category.

    .venv/bin/python bench/misses.py                    # FEBRL4, all three query kinds, counts + 5 examples each
    .venv/bin/python bench/misses.py --kind Q3 --show 40
    .venv/bin/python bench/misses.py --dataset febrl3 --matcher fuzzy-2

Like `bench/scoring.py`, no blocking: each query is scored against every candidate (`score_matrix`), so
this explains the scorer's misses only. Ties count as the service's random-looking tie-break makes them
count: a true record tied with k - 1 others (none ahead) is found first in 1 of k cases, so such a query
is 1 - 1/k of a miss ("expected" below; the service breaks ties by tracing key).

Each miss is put in one category, by what the query and the true record share:

- namesake: the true record ties with another that has exactly its name (and, in Q1/Q2, identifiers
  that the query does not tell apart): no scorer that sees only these fields can do better than 1 in k;
- otherwise the relation of each name part, query to true record, in the better of the straight and the
  swapped alignment ("swapped:" in front when swapped): `same`, `typo` (at most two edits), `other` (a
  different name: more than two edits), `q-` (the query lacks the part), `r-` (the record lacks it),
  `both-` (both lack it); surname first, given name second;
- `, tied` when the best other candidate has exactly the true record's evidence.

For each category the first examples print the query, the true record and the record ranked first
instead, with the evidence in bits (log2 odds) and the explanation the service would give of each.

`--learned` asks instead how much any reweighing of the same evidence could win: a gradient-boosted
ranker (scikit-learn, installed with recordlinkage) over the matcher's bits and some 35 pairwise
features (Jaro-Winkler and edit distance of each part in both alignments, phonetic and nickname
agreement, which parts each side lacks, census and in-index frequency of each name, length; with the
date of birth its digits in common, year gap, month, day and day/month swap), fit on FEBRL3 and scored
on FEBRL4 (each query's 60 best candidates by the matcher), with the expected recall as above.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from rapidfuzz.distance import OSA

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scoring import BATCH
from scoring_data import KINDS, Record, Task, febrl3, febrl4, query_ids, tracing

from indexer.model import Identifiers
from search_service import matching


def _norm(text: str) -> str:
    return "".join(c for c in text.upper() if c.isalpha())


def _relation(query: str, record: str) -> str:
    if not query or not record:
        return "both-" if not query and not record else "q-" if not query else "r-"
    if query == record:
        return "same"
    return "typo" if OSA.distance(query, record) <= 2 else "other"


_AGREE = {"same": 2, "typo": 1}


def relation(query: Record, record: Record) -> str:
    """`surname/given` relation of the query to the record (see the module docstring)."""
    qs, qg, rs, rg = (
        _norm(p) for p in (query[0].surname, query[0].given_name, record[0].surname, record[0].given_name)
    )
    straight = (_relation(qs, rs), _relation(qg, rg))
    crossed = (_relation(qs, rg), _relation(qg, rs))
    if sum(_AGREE.get(r, 0) for r in crossed) > sum(_AGREE.get(r, 0) for r in straight):
        return "swapped: " + "/".join(crossed)
    return "/".join(straight)


_GROUPS = (  # coarse groups of the categories, first match wins
    ("namesake", "an identical namesake (tied)"),
    ("other", "a name part is another name"),
    ("q-", "the query lacks a name part"),
    ("both-", "a name part absent on both sides"),
    ("r-", "the record lacks a name part"),
    ("typo", "typos only"),
    ("same", "the name unchanged"),
)


def group(category: str) -> str:
    """The coarse group of a category (see _GROUPS), with "swapped" and "tied" kept."""
    parts = category.replace("swapped: ", "").split(", ")[0].split("/")
    found = next((label for key, label in _GROUPS if key in parts or key == category), "other")
    return found + (", swapped" if category.startswith("swapped") else "") + (", tied" if "tied" in category else "")


def _show(record: Record) -> str:
    name, ids = record
    dob = ids.date_of_birth.iso() if ids.date_of_birth else "-"
    return f"{name.given_name or '-':>12} {name.surname or '-':<14} dob {dob:<10} ssn {ids.ssn or '-'}"


def _explained(query: Record, record: Record, use_pids: bool, matcher: str) -> str:
    scored = matching.score(query[0], query[1], tracing("x", record), use_pids=use_pids, matcher=matcher)
    return "; ".join(f"{f.name}: {f.detail}" for f in scored.features if f.name not in ("middle_name", "suffix"))


def misses(task: Task, kind: str, show: int, matcher: str) -> list[str]:
    mode, with_dob, with_ssn = KINDS[kind]
    use_pids = mode == "PID_QUALIFIED"
    compiled = matching.compile_candidates([tracing(str(i), r) for i, r in enumerate(task.candidates)])
    expected: dict[str, float] = defaultdict(float)  # expected misses at recall@1, per category
    counts: Counter[str] = Counter()  # queries not surely first, per category
    beyond10: dict[str, float] = defaultdict(float)  # expected misses at recall@10
    examples: dict[str, list[str]] = {}
    for start in range(0, len(task.queries), BATCH):
        chunk = task.queries[start : start + BATCH]
        ids = [query_ids(q[1], with_dob, with_ssn) for q in chunk]
        bits = matching.score_matrix([q[0] for q in chunk], ids, compiled, use_pids=use_pids, matcher=matcher)
        for row, excluded in enumerate(task.excluded[start : start + BATCH]):
            if excluded:
                bits[row, excluded] = -np.inf
        for row in range(len(chunk)):
            target = task.targets[start + row]
            row_bits: npt.NDArray[np.float64] = bits[row]
            tb = row_bits[target]
            ahead, tied = int((row_bits > tb).sum()), int((row_bits == tb).sum())
            if ahead == 0 and tied == 1:
                continue
            q, t = (chunk[row][0], ids[row]), task.candidates[target]
            others = row_bits.copy()
            others[target] = -np.inf
            winner = int(np.argmax(others))
            w = task.candidates[winner]
            key = (_norm(t[0].surname), _norm(t[0].given_name))
            namesake = ahead == 0 and (_norm(w[0].surname), _norm(w[0].given_name)) == key
            category = "namesake" if namesake else relation(q, t)
            if category != "namesake" and row_bits[winner] == tb:
                category += ", tied"
            counts[category] += 1
            expected[category] += 1.0 - (1.0 / tied if ahead == 0 else 0.0)
            beyond10[category] += 1.0 - min(max(10 - ahead, 0), tied) / tied
            lines = examples.setdefault(category, [])
            if len(lines) < 6 * show:
                lines += [
                    f"  query  {_show(q)}",
                    f"  true   {_show(t)}  {tb:6.1f} bits, rank {ahead + 1}"
                    + (f", tied with {tied - 1}" if tied > 1 else ""),
                    f"         {_explained(q, t, use_pids, matcher)}",
                    f"  first  {_show(w)}  {row_bits[winner]:6.1f} bits",
                    f"         {_explained(q, w, use_pids, matcher)}",
                    "",
                ]
    n = len(task.queries)
    lost1, lost10 = sum(expected.values()), sum(beyond10.values())
    out = [
        f"## {task.name} {kind} ({matcher}): expected recall@1 {100 * (1 - lost1 / n):.2f}%, "
        f"recall@10 {100 * (1 - lost10 / n):.2f}%; {sum(counts.values())} of {n} queries not surely first",
        "",
        "| group | queries not surely first | expected misses @1 | expected misses @10 |",
        "|---|---|---|---|",
    ]
    coarse: dict[str, list[float]] = {}
    for c in counts:
        totals = coarse.setdefault(group(c), [0.0, 0.0, 0.0])
        totals[0] += counts[c]
        totals[1] += expected[c]
        totals[2] += beyond10[c]
    out += [
        f"| {g} | {int(v[0])} | {v[1]:.1f} | {v[2]:.1f} |" for g, v in sorted(coarse.items(), key=lambda i: -i[1][1])
    ]
    out += ["", "In detail (surname/given, query to true record):", ""]
    out += ["| category | queries not surely first | expected misses @1 | expected misses @10 |", "|---|---|---|---|"]
    out += [
        f"| {c} | {counts[c]} | {expected[c]:.1f} | {beyond10[c]:.1f} |"
        for c in sorted(counts, key=lambda c: -expected[c])
    ]
    for category in sorted(counts, key=lambda c: -expected[c]):
        if examples[category] and show:
            out += ["", f"### {category}", "", *examples[category]]
    return out


_TOP = 60  # candidates per query the learned ranker re-ranks (the matcher's best)


def _features(task: Task, kind: str, matcher: str) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_], list[int]]:
    """Pairwise features of each query with its `_TOP` best candidates (the true one added when not
    among them, so that a fit sees it; `sizes` says how many rows each query has)."""
    from rapidfuzz.distance import JaroWinkler
    from rapidfuzz.process import cdist

    from indexer.analysis import analyze
    from search_service.matching_columns import name_row

    mode, with_dob, with_ssn = KINDS[kind]
    cands = task.candidates
    parts = [(_norm(r[0].surname), _norm(r[0].given_name)) for r in cands]
    in_index = (Counter(p[0] for p in parts), Counter(p[1] for p in parts))
    analyses = [analyze(r[0]) for r in cands]
    rarity = np.frombuffer(b"".join(name_row(r[0]).rarity for r in cands), dtype=np.float32).reshape(-1, 2)
    compiled = matching.compile_candidates([tracing(str(i), r) for i, r in enumerate(cands)])
    rows: list[npt.NDArray[np.float64]] = []
    truth: list[npt.NDArray[np.bool_]] = []
    sizes: list[int] = []
    for start in range(0, len(task.queries), BATCH):
        chunk = task.queries[start : start + BATCH]
        ids = [query_ids(q[1], with_dob, with_ssn) for q in chunk]
        bits = matching.score_matrix([q[0] for q in chunk], ids, compiled, use_pids=mode != "FUZZY", matcher=matcher)
        for row, excluded in enumerate(task.excluded[start : start + BATCH]):
            if excluded:
                bits[row, excluded] = -np.inf
        for row, (query, qids) in enumerate(zip(chunk, ids, strict=True)):
            target = task.targets[start + row]
            top = np.argsort(-bits[row], kind="stable")[:_TOP]
            pick = top if target in top else np.append(top, target)
            qs, qg = _norm(query[0].surname), _norm(query[0].given_name)
            qa, qr = analyze(query[0]), np.frombuffer(name_row(query[0]).rarity, dtype=np.float32)
            cs, cg = [parts[j][0] for j in pick], [parts[j][1] for j in pick]
            sims = [cdist([a], b, scorer=JaroWinkler.normalized_similarity)[0] for a in (qs, qg) for b in (cs, cg)]
            edits = [np.minimum(cdist([a], b, scorer=OSA.distance)[0], 5) for a in (qs, qg) for b in (cs, cg)]
            n = len(pick)
            columns = [bits[row, pick], bits[row, top[0]] - bits[row, pick], *sims, *edits]
            columns += [[qa.surname_nysiis == analyses[j].surname_nysiis for j in pick]]
            columns += [[qa.given_nysiis == analyses[j].given_nysiis for j in pick]]
            columns += [[bool(qa.given_forms & analyses[j].given_forms) for j in pick]]
            columns += [np.full(n, not qs), np.full(n, not qg), [not x for x in cs], [not x for x in cg]]
            columns += [np.full(n, len(qs)), np.full(n, len(qg)), [len(x) for x in cs], [len(x) for x in cg]]
            columns += [np.full(n, qr[0]), np.full(n, qr[1]), rarity[pick, 0], rarity[pick, 1]]
            columns += [[in_index[0][x] for x in cs], [in_index[1][x] for x in cg]]
            if with_dob:
                columns += list(_dob_features(qids, [cands[j][1] for j in pick]).T)
            rows.append(np.column_stack(columns).astype(np.float64))
            truth.append(pick == target)
            sizes.append(n)
    return np.vstack(rows), np.concatenate(truth), sizes


def _dob_features(query: Identifiers, records: list[Identifiers]) -> npt.NDArray[np.float64]:
    out: list[tuple[float, ...]] = []
    q = query.date_of_birth
    for record in records:
        r = record.date_of_birth
        if q is None or r is None:
            out.append((q is None, r is None, -1, -1, -1, -1, -1))
            continue
        a, b = (f"{d.year:04d}{d.month:02d}{d.day:02d}" for d in (q, r))
        swap = q.month == r.day and q.day == r.month
        digits = sum(x == y for x, y in zip(a, b, strict=True))
        out.append((0, 0, digits, abs(q.year - r.year), q.month == r.month, q.day == r.day, swap))
    return np.array(out, dtype=np.float64)


def learned(kind: str, matcher: str) -> list[str]:
    """Expected recall@1 / @10 on FEBRL4 of a gradient-boosted ranker fit on FEBRL3 (see the docstring)."""
    from sklearn.ensemble import HistGradientBoostingClassifier  # type: ignore[import-untyped]

    def recall(model: HistGradientBoostingClassifier, data: tuple[Any, Any, list[int]]) -> tuple[float, float]:
        x, y, sizes = data
        p = model.predict_proba(x)[:, 1]
        top1 = top10 = 0.0
        at = 0
        for n in sizes:
            pp, yy = p[at : at + n], y[at : at + n]
            at += n
            where = int(np.argmax(yy))
            if where >= _TOP:  # the matcher did not put it among its best: a miss either way
                continue
            ahead, tied = int((pp > pp[where]).sum()), int((pp == pp[where]).sum())
            top1 += 1 / tied if ahead == 0 else 0.0
            top10 += min(max(10 - ahead, 0), tied) / tied
        return 100 * top1 / len(sizes), 100 * top10 / len(sizes)

    train, test = _features(febrl3(), kind, matcher), _features(febrl4(), kind, matcher)
    out = [f"## A learned ranker over {matcher}'s evidence, {kind}: expected recall@1 / recall@10", ""]
    for depth, rounds in ((4, 200), (6, 400)):
        model = HistGradientBoostingClassifier(max_depth=depth, max_iter=rounds, learning_rate=0.05, random_state=0)
        model.fit(train[0], train[1])
        on_test, on_train = recall(model, test), recall(model, train)
        out.append(
            f"- fit on FEBRL3 (depth {depth}, {rounds} rounds): FEBRL4 {on_test[0]:.2f}% / {on_test[1]:.2f}% "
            f"(FEBRL3 itself {on_train[0]:.2f}% / {on_train[1]:.2f}%)"
        )
    model = HistGradientBoostingClassifier(max_depth=6, max_iter=400, learning_rate=0.05, random_state=0)
    model.fit(test[0], test[1])
    seen = recall(model, test)
    out.append(
        f"- fit on FEBRL4 itself, answers seen (overfit, not a reachable figure): {seen[0]:.2f}% / {seen[1]:.2f}%"
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=["febrl4", "febrl3"], default="febrl4")
    parser.add_argument("--kind", choices=["Q1", "Q2", "Q3"], action="append", help="default: all three")
    parser.add_argument("--show", type=int, default=5, help="examples per category")
    parser.add_argument("--matcher", default=matching.MATCHER_VERSION, choices=sorted(matching.MATCHERS))
    parser.add_argument("--learned", action="store_true", help="a learned ranker's recall instead (FEBRL3 -> 4)")
    args = parser.parse_args()
    task = febrl4() if args.dataset == "febrl4" else febrl3()
    for kind in KINDS:
        if args.kind and kind.split()[0] not in args.kind:
            continue
        lines = learned(kind, args.matcher) if args.learned else misses(task, kind, args.show, args.matcher)
        print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
