"""What each search mode asks of a request beyond the edit criteria of its fields: an impersonal title is
asked alone, in the modes that search titles; EXACT needs a PID, NONSTANDARD and FUZZY take none
(search_service.search_query.check_query)."""

from __future__ import annotations

from indexer import edit_rules as rules
from indexer.model import Violation
from indexer.normalize import fold

TITLE_MAX = 120


def title_violations(title: str, at: str, *, mode: str, has_name: bool) -> list[Violation]:
    out = []
    if has_name:
        out.append(Violation(f"{at}title", "ask for a person's name or an impersonal title, not both"))
    if mode not in ("NAME_ONLY", "NONSTANDARD"):
        out.append(Violation(f"{at}title", "impersonal titles are searched in NAME_ONLY or NONSTANDARD mode"))
    if len(title) > TITLE_MAX or rules.has_control(title):
        out.append(Violation(f"{at}title", f"at most {TITLE_MAX} printable characters"))
    elif not fold(title):  # punctuation alone folds to nothing: as a prefix it would list every title
        out.append(Violation(f"{at}title", "must contain a letter or a digit"))
    return out


def mode_violations(mode: str, at: str, *, pid_sent: bool) -> list[Violation]:
    """What each mode asks of the PIDs: EXACT needs one, NONSTANDARD and FUZZY take none."""
    if mode == "EXACT" and not pid_sent:
        why = "EXACT needs at least one PID (SSN, date or place of birth); without one, ask NAME_ONLY or NONSTANDARD"
        return [Violation(f"{at}identifiers", why)]
    if mode == "NONSTANDARD" and pid_sent:
        return [Violation(f"{at}identifiers", "NONSTANDARD takes no PID; with one, ask EXACT")]
    if mode == "FUZZY" and pid_sent:
        return [Violation(f"{at}identifiers", "FUZZY is by name only; with PIDs, ask PID_QUALIFIED")]
    return []
