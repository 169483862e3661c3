"""Full-text search over live documents' current versions in one statement per search:
FTS5 ranked by bm25 on SQLite, a GIN-indexed tsvector scored BM25-style (IDF-weighted
`ts_rank_cd`) on PostgreSQL; both give scores (higher first) and `<mark>`ed snippets."""

from __future__ import annotations

import abc
import json
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, NamedTuple, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, TSVECTOR
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.ext.compiler import compiles

from llmdocs.services.docstore.models import DOCUMENTS, TAGS, VERSIONS

MARK_START, MARK_END = "<mark>", "</mark>"
Executor = AsyncSession | AsyncConnection
_WORD = re.compile(r"\w+", re.UNICODE)


def search_terms(title: sa.ColumnElement[Any], content: sa.ColumnElement[Any]
                 ) -> sa.ColumnElement[Any]:
    """A version's weighted terms on PostgreSQL, computed from its plaintext as it is
    written: the stored tsvector keeps terms (as FTS5 does), the row only ciphertext."""
    def weighted(text: sa.ColumnElement[Any], weight: str) -> sa.ColumnElement[Any]:
        return sa.func.setweight(sa.func.to_tsvector(
            sa.literal_column("'english'"), sa.func.coalesce(text, "")),
            sa.literal_column(f"'{weight}'"))

    return weighted(title, "A").op("||")(weighted(content, "B"))


# the versions table with PostgreSQL's search column (not in the model: SQLite has none)
SEARCHABLE_VERSIONS = sa.table(VERSIONS.name, *(sa.column(c.name, c.type) for c in VERSIONS.c),
                               sa.column("search_vector", TSVECTOR))


def words_of(query: str) -> list[str]:
    """The query's words; operators and punctuation are not query syntax here."""
    return _WORD.findall(query)[:32]


class Hit(NamedTuple):
    """One ranked match with all a search result shows, from a single statement."""

    score: float
    snippet: str
    tags: list[str]
    document_id: str
    version: int
    title: str
    format: str
    source: str
    author: str
    created_at: datetime
    updated_at: datetime


class SearchBackend(Protocol):
    """`conditions` are the caller's filters; soft-deleted documents are always left out."""

    async def page(self, session: Executor, words: Sequence[str],
                   conditions: Sequence[sa.ColumnElement[bool]],
                   limit: int, offset: int) -> list[Hit]: ...


_HIT_COLUMNS = (DOCUMENTS.c.id, VERSIONS.c.version, DOCUMENTS.c.title, DOCUMENTS.c.format,
                DOCUMENTS.c.source, DOCUMENTS.c.author, DOCUMENTS.c.created_at,
                DOCUMENTS.c.updated_at)


class _TagList(sa.sql.functions.GenericFunction[Any]):
    """A document's tags in one value: `json_group_array` (SQLite), `array_agg`."""

    name = "tag_list"
    inherit_cache = True


@compiles(_TagList, "sqlite")
def _tag_list_sqlite(element: _TagList, compiler: Any, **kw: Any) -> str:
    return f"json_group_array({compiler.process(element.clauses, **kw)})"


@compiles(_TagList, "postgresql")
def _tag_list_postgresql(element: _TagList, compiler: Any, **kw: Any) -> str:
    return f"array_agg({compiler.process(element.clauses, **kw)})"


TAG_LIST = _TagList(TAGS.c.tag)


def tag_list(value: Any) -> list[str]:
    """Tags as gathered by either database: a JSON array (SQLite) or an array."""
    tags = json.loads(value) if isinstance(value, str) else (value or [])
    return sorted(tag for tag in tags if tag is not None)


def _statement(matches: sa.Select[Any], conditions: Sequence[sa.ColumnElement[bool]],
               snippet: Callable[[Any], sa.ColumnElement[str]]) -> sa.Select[Any]:
    """Rank and page the matches before making snippets and tags, for the page alone.
    Only filtered matches are materialised: materialising every match of a common word
    doubled an unfiltered search (PostgreSQL then ranks in one top-N pass)."""
    found = matches.cte("matches")
    if conditions:
        found = found.prefix_with("MATERIALIZED", dialect="postgresql")
    ranked = sa.select(found.c.vid, found.c.score)
    if conditions:
        if "doc" in found.c:
            ranked = ranked.join(DOCUMENTS, DOCUMENTS.c.id == found.c.doc)
        else:
            ranked = (ranked.join(VERSIONS, VERSIONS.c.id == found.c.vid)
                      .join(DOCUMENTS, DOCUMENTS.c.id == VERSIONS.c.document_id))
    page = (ranked.where(*conditions).order_by(found.c.score.desc(), found.c.vid)
            .limit(sa.bindparam("limit", type_=sa.Integer))
            .offset(sa.bindparam("offset", type_=sa.Integer)).cte("ranked"))
    tags = (sa.select(TAG_LIST).where(TAGS.c.document_id == DOCUMENTS.c.id)
            .scalar_subquery())
    return (sa.select(page.c.score, snippet(page), tags, *_HIT_COLUMNS)
            .select_from(page)
            .join(VERSIONS, VERSIONS.c.id == page.c.vid)
            .join(DOCUMENTS, DOCUMENTS.c.id == VERSIONS.c.document_id)
            .order_by(page.c.score.desc(), page.c.vid))


class _Search(abc.ABC):
    """What both backends share: a statement per query shape, and running it. Building
    a statement costs more Python than running a rare-word search, so the unfiltered
    shapes (per number of words) are built once."""

    def __init__(self) -> None:
        self._unfiltered: dict[int, sa.Select[Any]] = {}

    @abc.abstractmethod
    def statement(self, words: int, conditions: Sequence[sa.ColumnElement[bool]]
                  ) -> sa.Select[Any]: ...

    @abc.abstractmethod
    def params(self, words: Sequence[str]) -> tuple[int, dict[str, Any]]:
        """The query's shape (a number of words) and its bound values."""

    async def page(self, session: Executor, words: Sequence[str],
                   conditions: Sequence[sa.ColumnElement[bool]],
                   limit: int, offset: int) -> list[Hit]:
        shape, params = self.params(words)
        stmt = None if conditions else self._unfiltered.get(shape)
        if stmt is None:
            stmt = self.statement(shape, conditions)
            if not conditions:
                self._unfiltered[shape] = stmt
        rows = await session.execute(stmt, {**params, "limit": limit, "offset": offset})
        return [Hit(float(score), snippet or "", tag_list(tags), *columns)
                for score, snippet, tags, *columns in rows]


class SqliteSearch(_Search):
    """FTS5 drives: MATCH finds, bm25 ranks; `snippet()` needs a cursor positioned by
    MATCH, so each row of the page looks itself up by rowid (a join rescans every match)."""

    fts = sa.table("docstore_fts", sa.column("rowid"))
    match = sa.text("docstore_fts MATCH :match")

    def params(self, words: Sequence[str]) -> tuple[int, dict[str, Any]]:
        return 1, {"match": " ".join(f'"{word}"' for word in words)}  # \w+: no quotes

    def statement(self, words: int, conditions: Sequence[sa.ColumnElement[bool]]
                  ) -> sa.Select[Any]:
        # bm25 is lower-is-better: negated, so both backends sort by score descending
        score: sa.ColumnElement[float] = sa.literal_column("-bm25(docstore_fts, 10.0, 1.0)")
        matches = sa.select(self.fts.c.rowid.label("vid"), score.label("score")).where(
            self.match)

        def snippet(ranked: Any) -> sa.ColumnElement[str]:
            return (sa.select(sa.func.snippet(sa.literal_column("docstore_fts"), -1,
                                              MARK_START, MARK_END, "…", 16))
                    .select_from(self.fts)
                    .where(self.match, self.fts.c.rowid == ranked.c.vid).scalar_subquery())

        return _statement(matches, conditions, snippet)


class PostgresSearch(_Search):
    """The GIN index drives; each word's IDF is an uncorrelated subquery, computed once per
    search. The generic plan stays: custom plans, measured at 200,000 documents, cost
    ~0.5 ms of planning and only helped a word found in 90% of the documents."""

    headline_options = (f"StartSel={MARK_START}, StopSel={MARK_END}, MaxWords=24, "
                        "MinWords=8, MaxFragments=2, FragmentDelimiter=\" … \"")
    # document frequencies kept exact by triggers: `ts_stat()` would scan every vector on
    # each search (seconds at 200,000 documents); writers queue on one row, so bulk
    # writes insert many rows per statement
    terms = sa.table("docstore_terms", sa.column("lexeme"), sa.column("ndoc"))
    stats = sa.table("docstore_search_stats", sa.column("id"), sa.column("ndocs"))

    def __init__(self, sealed: bool = False) -> None:
        """`sealed`: contents are stored encrypted, so snippets are marked up from the
        plaintext in a second statement (PostgreSQL sees it, never stores it)."""
        super().__init__()
        self.sealed = sealed
        text = (sa.func.unnest(sa.bindparam("texts", type_=ARRAY(sa.Text)))
                .table_valued("text", with_ordinality="n").render_derived(name="t"))
        self._headlines = (sa.select(self._headline(text.c.text, self._query(
            sa.bindparam("q")))).select_from(text).order_by(text.c.n))

    @staticmethod
    def _query(text: sa.ColumnElement[str]) -> sa.ColumnElement[Any]:
        return sa.func.plainto_tsquery("english", text)

    def _idf(self, word: sa.ColumnElement[str]) -> sa.ColumnElement[float]:
        """ln(1 + (N - df + 0.5) / (df + 0.5)) summed over the word's lexemes (one, or
        none for a stop word)."""
        lexemes = sa.func.unnest(sa.func.to_tsvector("english", word)).table_valued(
            "lexeme", "positions", "weights")
        df = sa.func.coalesce(self.terms.c.ndoc, 0)
        total = sa.select(self.stats.c.ndocs).where(self.stats.c.id == 1).scalar_subquery()
        idf = sa.func.ln(1 + (total - df + 0.5) / (df + 0.5))
        return sa.cast(
            sa.select(sa.func.coalesce(sa.func.sum(idf), 0))
            .select_from(lexemes.outerjoin(self.terms, self.terms.c.lexeme == lexemes.c.lexeme))
            .scalar_subquery(), sa.Float)

    def params(self, words: Sequence[str]) -> tuple[int, dict[str, Any]]:
        distinct = dict.fromkeys(word.lower() for word in words)
        return len(distinct), {"q": " ".join(words),
                               **{f"w{i}": word for i, word in enumerate(distinct)}}

    def statement(self, words: int, conditions: Sequence[sa.ColumnElement[bool]]
                  ) -> sa.Select[Any]:
        vector: sa.ColumnElement[Any] = sa.literal_column("docstore_versions.search_vector")
        query = self._query(sa.bindparam("q"))
        score: sa.ColumnElement[float] = sa.literal(0.0)
        for i in range(words):
            term: sa.BindParameter[str] = sa.bindparam(f"w{i}")
            # the word's tsquery as an InitPlan too: under a generic plan (asyncpg
            # prepares statements) a plain function call would run once per matching row
            score = score + self._idf(term) * sa.func.ts_rank_cd(
                vector, sa.select(self._query(term)).scalar_subquery(), 1)
        matches = sa.select(VERSIONS.c.id.label("vid"), VERSIONS.c.document_id.label("doc"),
                            score.label("score")).where(VERSIONS.c.is_current,
                                                        vector.op("@@")(query))

        def headline(_ranked: Any) -> sa.ColumnElement[str]:
            text = sa.func.coalesce(VERSIONS.c.content, VERSIONS.c.title)
            if self.sealed:  # the plaintext, for `page` to mark up
                return sa.type_coerce(text, VERSIONS.c.content.type)
            return self._headline(text, query)

        if conditions:  # the matches are joined to their documents anyway
            return _statement(matches, [*conditions, DOCUMENTS.c.deleted_at.is_(None)],
                              headline)
        # without filters, leave out the few soft-deleted documents (a partial index)
        # rather than join every match to its document
        deleted = sa.exists().where(DOCUMENTS.c.id == VERSIONS.c.document_id,
                                    DOCUMENTS.c.deleted_at.is_not(None))
        return _statement(matches.where(~deleted), [], headline)


    def _headline(self, text: sa.ColumnElement[Any], query: sa.ColumnElement[Any]
                  ) -> sa.ColumnElement[str]:
        return sa.func.ts_headline("english", text, query, self.headline_options)

    async def page(self, session: Executor, words: Sequence[str],
                   conditions: Sequence[sa.ColumnElement[bool]],
                   limit: int, offset: int) -> list[Hit]:
        hits = await super().page(session, words, conditions, limit, offset)
        if not self.sealed or not hits:
            return hits
        marked = (await session.execute(self._headlines, {
            "q": self.params(words)[1]["q"], "texts": [hit.snippet for hit in hits]})).scalars()
        return [hit._replace(snippet=snippet or "") for hit, snippet in zip(hits, marked,
                                                                           strict=True)]


def backend_for(dialect: str, sealed: bool = False) -> SearchBackend:
    """`sealed`: contents are stored encrypted (PostgreSQL marks snippets up apart)."""
    return PostgresSearch(sealed) if dialect == "postgresql" else SqliteSearch()
