"""The SSN edit criterion (DOMAIN.md "Edit criteria"), one of the field rules of `indexer.edit_rules`.

Apart from the other rules because it alone follows an outside authority: python-stdnum's
`stdnum.us.ssn`, whose component rules and void list it applies without stdnum's per-character cleaning
(ASCII digits and dashes, the common case), and whose terse "invalid component" it replaces with the rule
that was broken. As everywhere in the edit criteria, a description never repeats the number sent.
"""

from __future__ import annotations

import re

from stdnum.us import ssn as stdnum_ssn

from indexer.model import Violation

_SSN_PLAIN_RE = re.compile(r"[0-9-]*")
# What stdnum.us.ssn.validate refuses beyond the component rules (its `_ssn_blacklist`, "AAA-GG-SSSS"
# numbers), read from it so that `ssn` keeps agreeing with it; the copy is its list as of python-stdnum
# 2.2. Kept as 9 digits: stdnum compares the number formatted with dashes, which only these can match.
_SSN_VOID: frozenset[str] = frozenset(
    number.replace("-", "")
    for number in getattr(stdnum_ssn, "_ssn_blacklist", ("078-05-1120", "457-55-5462", "219-09-9999"))
    if re.fullmatch(r"[0-9]{3}-[0-9]{2}-[0-9]{4}", number)
)


def ssn(raw: str, path: str, out: list[Violation]) -> str:
    """An SSN compacted to its 9 digits, or "" when none was sent."""
    digits, reason = judge_ssn(raw)
    if reason:
        out.append(Violation(path, reason))
    return digits


def judge_ssn(raw: str) -> tuple[str, str]:
    """`ssn` without the path: the digits ("" if none or refused) and the violation's description."""
    # Only ASCII digits and dashes (the common case): stdnum's compact would just drop the dashes.
    # Otherwise stdnum's compact folds Unicode dashes to "-" and drops them, and full-width digits to
    # ASCII; spaces of any kind go first.
    plain = _SSN_PLAIN_RE.fullmatch(raw) is not None
    digits = raw.replace("-", "") if plain else stdnum_ssn.compact("".join(raw.split()))
    if not digits:
        # only dashes were sent, or nothing
        return "", "SSN must be 9 digits" if raw.strip() else ""
    if len(digits) != 9 or not digits.isascii() or not digits.isdigit():
        return "", "SSN must be 9 digits (dashes and spaces are allowed between them)"
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    # What stdnum.us.ssn.validate checks of 9 ASCII digits, without its per-character cleaning.
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000" or digits in _SSN_VOID:
        # stdnum says only "invalid component"; name the rule that was broken, never the number.
        reasons: list[str] = []
        if area in ("000", "666"):
            reasons.append(f"SSN area {area} is never issued")
        elif area.startswith("9"):
            reasons.append("SSN areas 900-999 are never issued")
        if group == "00":
            reasons.append("SSN group 00 is never issued")
        if serial == "0000":
            reasons.append("SSN serial 0000 is never issued")
        if not reasons:
            reasons.append("this SSN is a known advertising or void number, never a person's")
        return "", "; ".join(reasons)
    return digits, ""
