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


def build_request(args: argparse.Namespace) -> search_pb2.SearchRequest:
    request = search_pb2.SearchRequest(
        mode=search_pb2.SearchMode.Value("SEARCH_MODE_" + args.mode.upper().replace("-", "_")),
        purpose=search_pb2.Purpose.Value("PURPOSE_" + args.purpose.upper().replace("-", "_")),
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
            dob = PartialDate.parse(args.dob)
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


def _render(response: search_pb2.SearchResponse, console: Console) -> None:
    if response.candidates_truncated:  # "no records" alone would read as a clean check
        console.print(f"[bold]{TRUNCATED}[/bold]")
    if response.best_below_threshold != 0:  # before "no records", which alone would read as a clean check
        console.print(f"[bold]{_closest_under(response)}[/bold]")
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
        matched = hit.explanation.matched_name
        differing = [f.feature for f in hit.explanation.features if f.agreement == search_pb2.AGREEMENT_DISAGREE]
        if differing:  # a score of 1.00 in EXACT says nothing of an SSN given that is not the record's
            matched += f"\ndiffers: {', '.join(differing)}"
        if hit.HasField("dispute"):
            matched += f"\nDISPUTED: {hit.dispute.statement_location}"
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
    request = build_request(args)
    profile = find_profile(args.profile)
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
        _render(response, console)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    search = commands.add_parser("search", help="ask the index (needs a profile: --profile or DCII_PROFILE)")
    search.add_argument("--profile")
    search.add_argument("--mode", choices=MODES, default="exact")
    search.add_argument(
        "--purpose",
        default="security_clearance",
        type=_one_of(PURPOSES, "purpose"),
        help="why you ask: " + ", ".join(PURPOSES),
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
