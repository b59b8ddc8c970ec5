"""`dcii search`: ask the index from the command line, as a readable table or as JSON."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable

import grpc
from google.protobuf import json_format
from rich.console import Console
from rich.table import Table
from rich.text import Text

from dcii.cli.batch_csv import asked_date
from dcii.cli.client import find_profile, session
from dcii.v1 import search_pb2, search_pb2_grpc, tracing_pb2
from indexer.model import PartialDate
from search_service.errors import field_violations

MARKING = "FOR OFFICIAL USE ONLY - PRIVACY SENSITIVE"
MODES = ("exact", "name-only", "nonstandard", "fuzzy", "pid-qualified")


PURPOSES = tuple(p.removeprefix("PURPOSE_").lower() for p in search_pb2.Purpose.keys()[1:])
TYPES = tuple(t.removeprefix("TRACING_TYPE_").lower() for t in tracing_pb2.TracingType.keys()[1:])


def _one_of(names: tuple[str, ...], what: str) -> Callable[[str], str]:
    """An option's check: one of `names` (any case, - for _), else argparse's one-line error, which does not
    quote the value (a name typed into the wrong option came back in a traceback)."""

    def check(text: str) -> str:
        if text.lower().replace("-", "_") not in names:
            raise argparse.ArgumentTypeError(f"not a {what}: one of {', '.join(names)}")
        return text

    return check


def build_request(args: argparse.Namespace, purpose: str) -> search_pb2.SearchRequest:
    request = search_pb2.SearchRequest(
        mode=search_pb2.SearchMode.Value("SEARCH_MODE_" + args.mode.upper().replace("-", "_")),
        purpose=search_pb2.Purpose.Value("PURPOSE_" + purpose.upper().replace("-", "_")),
        name=tracing_pb2.PersonName(
            surname=args.surname or "",
            given_name=args.given or "",
            middle_name=args.middle or "",
            suffix=args.suffix or "",
        ),
        title=args.title or "",
        page_size=args.page_size,
        page_token=args.page_token or "",
        min_score=args.min_score,
    )
    ids = request.identifiers
    if args.ssn:
        ids.ssn = args.ssn
    if args.dob:
        try:
            dob = asked_date(args.dob)
        except ValueError as error:
            raise SystemExit(f"--dob: {error}") from error
        ids.date_of_birth.year, ids.date_of_birth.month, ids.date_of_birth.day = dob.year, dob.month, dob.day
    if args.pob:
        place, _, city = args.pob.partition("/")
        if place.upper().startswith("US-"):
            ids.place_of_birth.us_state = place[3:]
        else:
            ids.place_of_birth.country = place
        ids.place_of_birth.city = city
    for kind in args.type or ():
        request.types.append(tracing_pb2.TracingType.Value("TRACING_TYPE_" + kind.upper().replace("-", "_")))
    return request


_ENUM_PREFIXES = ("CLEARANCE_LEVEL_", "SUBJECT_CATEGORY_", "NAC_OUTCOME_", "IMPERSONAL_TITLE_KIND_")


def _readable(value: object) -> str:
    """Dates as ISO, enums without their wire prefix, lists joined: what an adjudicator reads."""
    if isinstance(value, dict) and "year" in value:
        return PartialDate(value["year"], value.get("month", 0), value.get("day", 0)).iso()
    if isinstance(value, list):
        return ";".join(_readable(v) for v in value)
    text = str(value)
    for prefix in _ENUM_PREFIXES:
        text = text.removeprefix(prefix)
    return text


def _details(tracing: tracing_pb2.Tracing) -> str:
    kind = tracing.WhichOneof("kind")
    if kind is None:
        return ""
    fields = json_format.MessageToDict(getattr(tracing, kind), preserving_proto_field_name=True)
    return ", ".join(f"{k}={_readable(v)}" for k, v in fields.items())


# A ranked hit under this score is more likely someone else: a FUZZY answer lists them from 0.25 (fuzzy-8), so
# that a common name's misspellings and nicknames are shown, but the score is a probability (near 0.25, about
# one in four such hits is the person).
LIKELY = 0.5
POSSIBLE = "possible"

TRUNCATED = (
    "not every candidate was scored (the name is too common for the keys followed): a record may be missing;"
    " narrow the query with a PID or a full given name"
)


def _closest_under(response: search_pb2.SearchResponse) -> str:
    below, threshold = response.best_below_threshold, response.threshold
    digits = 3  # as many as tell it from the threshold (0.2499 is not "0.25")
    while f"{below:.{digits}g}" == f"{threshold:.{digits}g}" and digits < 17:
        digits += 1
    said = f"the closest record under the threshold ({threshold:.{digits}g}) scored {below:.{digits}g}"
    if not 1e-300 < below < 1.0:  # what no server sends: said as it came, with nothing to ask
        return said
    unit = 10.0 ** (math.floor(math.log10(below)) - 2)  # three significant digits, rounded down: asked
    return f"{said}: --min-score {math.floor(below / unit) * unit:.3g} shows it"  # with it, the record shows


def _matched(hit: search_pb2.Hit) -> str:
    """The matched column: which name (an alias written out), the subject's role when not the file's subject,
    what differs and what agrees only in part (a score of 1.00 says nothing of an SSN one digit off: an
    adjudicator's review found it only in --json), and a dispute."""
    t, features = hit.tracing, hit.explanation.features
    matched = hit.explanation.matched_name
    number = matched.removeprefix("alias ")
    if number.isdigit() and 0 < int(number) <= len(t.subject.aliases):
        alias = t.subject.aliases[int(number) - 1]
        matched += ": " + " ".join(p for p in (alias.given_name, alias.middle_name, alias.surname, alias.suffix) if p)
    if t.HasField("subject") and t.subject.role not in (
        tracing_pb2.SUBJECT_ROLE_UNSPECIFIED,
        tracing_pb2.SUBJECT_ROLE_SUBJECT,
    ):
        matched += "\nrole: " + tracing_pb2.SubjectRole.Name(t.subject.role).removeprefix("SUBJECT_ROLE_")
    differing = [f.feature for f in features if f.agreement == search_pb2.AGREEMENT_DISAGREE]
    if differing:  # a score of 1.00 in EXACT says nothing of an SSN given that is not the record's
        matched += f"\ndiffers: {', '.join(differing)}"
    partly = [f.feature for f in features if f.agreement == search_pb2.AGREEMENT_PARTIAL]
    if partly:
        matched += f"\nin part: {', '.join(partly)}"
    if hit.HasField("dispute"):
        matched += f"\nDISPUTED: {hit.dispute.statement_location}"
        if hit.dispute.summary:
            matched += f"\n{hit.dispute.summary}"
    return matched


def _notes(request: search_pb2.SearchRequest, response: search_pb2.SearchResponse) -> list[str]:
    """What an empty answer, or a thin one, may not say by itself (each a review's finding: it read as a clean
    check). The closest record under the threshold is worth saying when nothing or little was found, or when it
    came close; under hits of 0.9 a record at 0.0008 is noise."""
    notes = []
    if response.candidates_truncated:
        notes.append(TRUNCATED)
    below = response.best_below_threshold
    best = max((hit.score for hit in response.hits), default=0.0)
    if below != 0 and (not response.hits or below >= response.threshold / 2 or best < LIKELY):
        notes.append(_closest_under(response))
    if not response.hits:
        name = request.name
        one_part = bool(name.surname.strip()) != bool(name.given_name.strip())
        if request.mode in (search_pb2.SEARCH_MODE_EXACT, search_pb2.SEARCH_MODE_NAME_ONLY):
            if one_part:
                notes.append("asked as a person known by one name: a surname alone is --mode fuzzy or nonstandard")
            else:
                notes.append("exact names only: --mode pid-qualified (or fuzzy) finds misspellings and other forms")
    return notes


def _render(request: search_pb2.SearchRequest, response: search_pb2.SearchResponse, console: Console) -> None:
    for note in _notes(request, response):  # before "no records", which alone would read as a clean check
        console.print(Text(note, style="bold"))
    if not response.hits:
        console.print("no records")
        return
    console.print(f"[bold]{MARKING}[/bold]")
    table = Table("type", "agency / record", "name", "ssn", "born", "details", "score", "matched", show_lines=True)
    table.columns[3].min_width = 11  # ***-**-1234 whole
    for hit in response.hits:
        t = hit.tracing
        subject = t.subject
        name = subject.name
        full = " ".join(p for p in (name.given_name, name.middle_name, name.surname, name.suffix) if p)
        if not t.HasField("subject"):
            full = t.impersonal_title.title
        ids = subject.identifiers
        ssn = ids.ssn or (f"***-**-{ids.ssn_last_four}" if ids.ssn_last_four else "")
        dob = ids.date_of_birth
        born = PartialDate(dob.year, dob.month, dob.day).iso() if dob.year else ""
        pob = ids.place_of_birth
        if pob.us_state or pob.country:
            born += f" {pob.us_state or pob.country}{'/' + pob.city if pob.city else ''}"
        matched = _matched(hit)
        cells = (
            tracing_pb2.TracingType.Name(hit.type).removeprefix("TRACING_TYPE_"),
            f"{t.key.agency}\n{t.key.record_number}",
            full,
            ssn,
            born,
            _details(t),
            f"{hit.score:.2f}" + (f"\n{POSSIBLE}" if response.threshold and hit.score < LIKELY else ""),
            matched,
        )
        # As plain Text: the index's data is not rich markup ("[/2026]" in a dispute's statement location
        # was read as a closing tag and ended the command with a traceback; "[see letter]" vanished).
        table.add_row(*(Text(cell) for cell in cells))
    console.print(table)
    if response.next_page_token:
        console.print(f"more: --page-token {response.next_page_token}")
    if response.threshold and any(hit.score < LIKELY for hit in response.hits):
        console.print(f"{POSSIBLE}: under {LIKELY}, more likely another person than the one asked for")
    threshold = f", scores at or above {response.threshold:.3g}" if response.threshold else ""
    console.print(f"[bold]{MARKING}[/bold]  (matcher {response.matcher_version}{threshold})")


def cmd_search(args: argparse.Namespace) -> None:
    profile = find_profile(args.profile)
    purpose = args.purpose or profile.purpose
    if not purpose:  # the accounting records it: a purpose nobody stated was recorded (a privacy officer's review)
        raise SystemExit(f'why do you ask? --purpose one of {", ".join(PURPOSES)} (or "purpose" in the profile)')
    if purpose.lower().replace("-", "_") not in PURPOSES:
        raise SystemExit(f"profile: purpose {purpose!r} is not one of {', '.join(PURPOSES)}")
    request = build_request(args, purpose)
    # Piped output (a file, a test) is not cut to 80 columns: nothing may be truncated away.
    console = Console() if Console().is_terminal else Console(width=240)
    try:
        with session(profile) as (channel, metadata):
            response = search_pb2_grpc.SearchServiceStub(channel).Search(request, metadata=metadata, timeout=30)
    except grpc.RpcError as error:
        print(f"refused: {error.code().name}: {error.details()}", file=sys.stderr)
        for field, why in field_violations(error):
            print(f"  {field}: {why}", file=sys.stderr)
        raise SystemExit(2) from None
    if args.json:
        print(json.dumps(json_format.MessageToDict(response, preserving_proto_field_name=True), indent=2))
    else:
        _render(request, response, console)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    search = commands.add_parser("search", help="ask the index (needs a profile: --profile or DCII_PROFILE)")
    search.add_argument("--profile")
    search.add_argument("--mode", choices=MODES, default="exact")
    search.add_argument(
        "--purpose",
        type=_one_of(PURPOSES, "purpose"),
        help="why you ask (recorded in the accounting of the disclosures): "
        + ", ".join(PURPOSES)
        + '; required unless the profile names one ("purpose")',
    )
    search.add_argument("--surname")
    search.add_argument("--given")
    search.add_argument("--middle")
    search.add_argument("--suffix")
    search.add_argument("--ssn")
    search.add_argument("--dob", help="YYYY, YYYY-MM or YYYY-MM-DD")
    search.add_argument("--pob", help="US-VA, DE, or with a city: US-VA/Norfolk")
    search.add_argument("--title", help="an impersonal title (name-only or nonstandard)")
    search.add_argument(
        "--type",
        action="append",
        type=_one_of(TYPES, "tracing type"),
        help=f"{', '.join(TYPES)} (repeatable)",
    )
    search.add_argument("--page-size", type=int, default=20)
    search.add_argument("--min-score", type=float, default=0.0, help="fuzzy and pid-qualified: hide hits below it")
    search.add_argument("--page-token")
    search.add_argument("--json", action="store_true", help="the response as JSON")
    search.set_defaults(run=cmd_search)
