"""A ranked page token across matcher versions (search_service.ranked, `Matcher.scores_of`): fuzzy-8 scores as
fuzzy-7 does and only FUZZY's default threshold moved (0.5 to 0.25), so a token fuzzy-7 issued at its default
(an adjudicator's next page across the upgrade, a batch result's kept for 30 days) resumes under fuzzy-8, and
a fuzzy-8 token under fuzzy-7 (a rollback). The token's scope holds the threshold: both were refused as
"issued for another query" (a review of fuzzy-8). A version that scores otherwise is still refused."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator

import pytest

from indexer.exc import InvalidArgument
from indexer.model import Identifiers, PersonName
from indexer.store.base import Upsert
from indexer.store.sqlite import SqliteStore
from search_service import page_tokens, ranked
from search_service.ranked import RankedPage, run_ranked
from tests.test_store_lifecycle import file_tracing

SMITH, WILLIAM = "Smith", "William"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqliteStore]:
    opened = SqliteStore(tmp_path_factory.mktemp("tokens") / "index.db", clock=lambda: dt.datetime.now(dt.UTC))
    namesakes = [file_tracing(f"W-{n}", surname=SMITH, given=WILLIAM, middle="", ssn="") for n in range(6)]
    opened.write([Upsert(t) for t in namesakes], actor="test")
    try:
        yield opened
    finally:
        opened.close()


def _page(store: SqliteStore, version: str, token: str = "", name: PersonName | None = None) -> RankedPage:
    return run_ranked(
        store,
        mode="FUZZY",
        name=name or PersonName(surname=SMITH, given_name=WILLIAM),
        identifiers=Identifiers(),
        types=frozenset(),
        min_score=0.0,  # the version's default threshold
        page_size=2,
        page_token=token,
        matcher_version=version,
    )


def _records(page: RankedPage) -> list[str]:
    return [hit.stored.tracing.key.record_number for hit in page.hits]


@pytest.mark.parametrize(("issued_by", "read_by"), [("fuzzy-7", "fuzzy-8"), ("fuzzy-8", "fuzzy-7")])
def test_a_token_of_a_version_that_scores_alike_resumes_where_it_stopped(
    store: SqliteStore, issued_by: str, read_by: str
) -> None:
    first = _page(store, issued_by)
    assert first.threshold != _page(store, read_by).threshold  # 0.5 and 0.25: the scopes differ
    assert first.next_token
    second = _page(store, read_by, first.next_token)
    own_second = _page(store, read_by, _page(store, read_by).next_token)
    assert _records(second) == _records(own_second) != []
    assert not set(_records(second)) & set(_records(first))


def test_a_token_of_a_version_that_scores_otherwise_is_refused(store: SqliteStore) -> None:
    """fuzzy-6 and fuzzy-7 both default to 0.5 but score differently (fuzzy-7's given-name words): the token
    names its version, so its position (in fuzzy-6's scores) is not read as one in fuzzy-7's."""
    token = _page(store, "fuzzy-6").next_token
    with pytest.raises(InvalidArgument) as refused:
        _page(store, "fuzzy-7", token)
    assert [v.field for v in refused.value.violations] == ["page_token"]
    assert "issued for another query" in refused.value.violations[0].description


def test_a_token_issued_before_versions_were_named_resumes_at_its_own_threshold_only(store: SqliteStore) -> None:
    """A token of the earlier format names no version: at 0.5 it may be fuzzy-7's or fuzzy-6's (which scores
    otherwise: its position would skip records silently, a review), so it resumes only where its threshold
    is the server's, as it did; elsewhere it is refused and the query asked from its first page."""
    name = PersonName(surname=SMITH, given_name=WILLIAM)
    first = _page(store, "fuzzy-7")
    _, position = page_tokens._opened(first.next_token, ranked._KIND) or ("", [])
    legacy = page_tokens.seal(ranked._KIND, ranked._scope("FUZZY", name, Identifiers(), frozenset(), 0.5), position)
    assert _records(_page(store, "fuzzy-7", legacy)) == _records(_page(store, "fuzzy-7", first.next_token)) != []
    with pytest.raises(InvalidArgument):
        _page(store, "fuzzy-8", legacy)


def test_a_token_for_another_query_is_still_refused_across_versions(store: SqliteStore) -> None:
    token = _page(store, "fuzzy-7").next_token
    with pytest.raises(InvalidArgument):
        _page(store, "fuzzy-8", token, PersonName(surname=SMITH, given_name="Willam"))


def test_a_token_of_fuzzy_8_or_before_versions_were_named_is_refused_under_fuzzy_9(store: SqliteStore) -> None:
    """fuzzy-9 scores otherwise (a Chinese or Korean surname's other spellings): neither fuzzy-8's token nor
    one that names no version (issued by fuzzy-7 or earlier, at fuzzy-9's own threshold too) nor one of the
    earliest format (an offset) resumes in its scores (a review of fuzzy-9); each asks for the first page."""
    name = PersonName(surname=SMITH, given_name=WILLIAM)
    first = _page(store, "fuzzy-8")
    _, position = page_tokens._opened(first.next_token, ranked._KIND) or ("", [])
    unnamed = page_tokens.seal(ranked._KIND, ranked._scope("FUZZY", name, Identifiers(), frozenset(), 0.25), position)
    offset = base64.urlsafe_b64encode(b"r|2").decode()
    assert _records(_page(store, "fuzzy-8", unnamed)) == _records(_page(store, "fuzzy-8", first.next_token)) != []
    assert _records(_page(store, "fuzzy-8", offset)) != []
    for token in (first.next_token, unnamed, offset):
        with pytest.raises(InvalidArgument) as refused:
            _page(store, "fuzzy-9", token)
        assert "issued for another query" in refused.value.violations[0].description
