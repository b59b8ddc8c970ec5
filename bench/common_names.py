"""How a FUZZY query of a common name scores, per matcher version: the person asked for a nickname or a typo,
and other people whose given name is a letter or two away.

    .venv/bin/python bench/common_names.py                        # fuzzy-7 and the default
    .venv/bin/python bench/common_names.py --matchers fuzzy-8

The twelve commonest US surnames (census order) with given names, in process (`search_service.matching`):
- nicknames: twelve nickname / full-name pairs (JIM / JAMES, BILL / WILLIAM, LIZ / ELIZABETH ...), asked by
  the nickname against a record of the full name;
- typos: the twelve commonest given names, each query mistyped once in its surname or its given name by each
  of the scale bench's three kinds of typo (`bench/scale_queries.TYPOS`: two letters swapped, one dropped, one
  replaced), against the record of the name meant;
- other people: every ordered pair of different given names among the census's 100 commonest male and 100
  commonest female names, asked by one against a record of the other (same surname); a pair related as
  nickname and full name is counted apart (it is meant to be found), and a pair of a male and a female name
  (neither among both lists) as "of the other sex".
It prints, for each version, the share of each at or above 0.5 and at or above its FUZZY default threshold.
The scores are a common name's, so the lowest the scorer gives for that agreement: a rarer surname scores
higher. The FUZZY default of fuzzy-8 came from these (search_service.matching_versions).
"""

from __future__ import annotations

import argparse
import random
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale_queries import TYPOS

from indexer.census import given_name_table
from indexer.model import FileDetails, Identifiers, PersonName, Subject, Tracing, TracingKey
from search_service.matching import DEFAULT_MATCHER, Agreement, matcher, rank, score

SURNAMES = ("SMITH", "JOHNSON", "WILLIAMS", "BROWN", "JONES", "GARCIA", "MILLER", "DAVIS", "RODRIGUEZ",
            "MARTINEZ", "NGUYEN", "LEE")  # fmt: skip
NICKNAMES = (("JIM", "JAMES"), ("BOB", "ROBERT"), ("BILL", "WILLIAM"), ("MIKE", "MICHAEL"), ("DAVE", "DAVID"),
             ("JON", "JOHN"), ("LIZ", "ELIZABETH"), ("PATTY", "PATRICIA"), ("JOE", "JOSEPH"), ("TOM", "THOMAS"),
             ("CHRIS", "CHRISTOPHER"), ("SUE", "SUSAN"))  # fmt: skip
GIVEN = ("JAMES", "JOHN", "ROBERT", "MICHAEL", "WILLIAM", "DAVID", "MARY", "PATRICIA", "JENNIFER", "LINDA",
         "MARIA", "JOSE")  # fmt: skip


def _record(name: PersonName, number: int = 0) -> Tracing:
    return Tracing(TracingKey("NCIS", f"R-{number}"), 1, Subject(name), FileDetails("NCIS", 2015, f"F-{number}"))


def _person_scores(version: str) -> tuple[list[float], list[float]]:
    def scored(query: PersonName, meant: PersonName) -> float:
        return score(query, Identifiers(), _record(meant), use_pids=False, matcher=version).score

    nicknames = [
        scored(PersonName(surname=s, given_name=nick), PersonName(surname=s, given_name=full))
        for s in SURNAMES
        for nick, full in NICKNAMES
    ]
    rng = random.Random(1)  # the same typos for every version
    typos = []
    for s in SURNAMES:
        for g in GIVEN:
            for typo in TYPOS:
                meant = PersonName(surname=s, given_name=g)
                typos.append(scored(PersonName(surname=typo(s, rng), given_name=g), meant))
                typos.append(scored(PersonName(surname=s, given_name=typo(g, rng)), meant))
    return nicknames, typos


def _other_people(version: str, floor: float) -> Counter[str]:
    """Pairs of different given names scoring at or above `floor`, by kind (nickname, other sex, other)."""
    male, female = given_name_table("M").names[:100], given_name_table("F").names[:100]
    both = set(male) & set(female)
    sex = {g: "M" for g in male} | {g: "F" for g in female} | {g: "" for g in both}
    names = list(sex)
    counts: Counter[str] = Counter()
    for s in SURNAMES:
        records = [_record(PersonName(surname=s, given_name=g), n) for n, g in enumerate(names)]
        for asked in names:
            query = PersonName(surname=s, given_name=asked)
            for i, hit in rank(query, Identifiers(), records, use_pids=False, matcher=version, min_score=floor):
                shown = names[i]
                if shown == asked:
                    continue
                given = next(f for f in hit.features if f.name == "given_name")
                if given.agreement is Agreement.PARTIAL and "nickname" in given.detail:
                    counts["nickname"] += 1
                elif sex[asked] and sex[shown] and sex[asked] != sex[shown]:
                    counts["other sex"] += 1
                else:
                    counts["other"] += 1
    counts["pairs"] = len(SURNAMES) * len(names) * (len(names) - 1)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--matchers", nargs="+", default=sorted({"fuzzy-7", DEFAULT_MATCHER}))
    args = parser.parse_args()
    print("| matcher | FUZZY default | nickname: min / at or above 0.5 / default | one typo: at or above 0.5 / "
          "default | other given names shown at 0.5 / default: not nicknames (of the other sex) |")  # fmt: skip
    print("|---|---|---|---|---|")
    for version in args.matchers:
        default = matcher(version).thresholds["FUZZY"]
        nicknames, typos = _person_scores(version)

        def share(values: list[float], at: float) -> str:
            return f"{100 * sum(v >= at for v in values) / len(values):.0f}%"

        half, low = _other_people(version, 0.5), _other_people(version, default)
        print(
            f"| {version} | {default} | {min(nicknames):.3f} / {share(nicknames, 0.5)} / {share(nicknames, default)} "
            f"| {share(typos, 0.5)} / {share(typos, default)} | {half['other'] + half['other sex']} "
            f"({half['other sex']}) / {low['other'] + low['other sex']} ({low['other sex']}) of {half['pairs']:,} |"
        )


if __name__ == "__main__":
    main()
