"""Full-text search over the current version of every document, one backend per database.

SQLite: an external-content FTS5 table (porter stemming) kept in sync by triggers, ranked
by `bm25()` with the title weighted ten times the body; snippets from FTS5 `snippet()`.

PostgreSQL: a generated tsvector column (title weight A, body weight B) with a partial
GIN index over current versions. Plain `ts_rank` ignores how rare a term is, so a
query's score is a BM25-style sum over its terms: `idf(t) * ts_rank_cd(vector, t, 1)`
(per-term frequency normalised by document length), with
`idf(t) = ln(1 + (N - df + 0.5) / (df + 0.5))`. `df` comes from `docstore_terms`, a
term → document-frequency table that statement-level triggers keep exact as versions
enter and leave the index. We chose a maintained table over `ts_stat()` because
`ts_stat` scans every vector of the corpus on each call (seconds at 200,000 documents),
while the table answers a query's few terms by primary key; the price is that writers
queue on one statistics row until they commit. Snippets come from `ts_headline`.

Both backends answer the same shape: (version id, score) pages, higher score first, and
snippets with `<mark>…</mark>` around matched words (the text itself is not escaped).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import TSQUERY
from sqlalchemy.ext.asyncio import AsyncSession

from llmdocs.services.docstore.models import Document, Version

MARK_START, MARK_END = "<mark>", "</mark>"
_WORD = re.compile(r"\w+", re.UNICODE)
Ranked = list[tuple[int, float]]


def words_of(query: str) -> list[str]:
    """The query's words; operators and punctuation are not query syntax here."""
    return _WORD.findall(query)[:32]


class SearchBackend(Protocol):
    async def ranked(self, session: AsyncSession, words: Sequence[str],
                     conditions: Sequence[sa.ColumnElement[bool]],
                     limit: int, offset: int) -> Ranked: ...

    async def snippets(self, session: AsyncSession, words: Sequence[str],
                       ids: Sequence[int]) -> dict[int, str]: ...


def _to_document() -> sa.ColumnElement[bool]:
    return Document.id == Version.document_id


class SqliteSearch:
    fts = sa.table("docstore_fts", sa.column("rowid"))

    @staticmethod
    def _match(words: Sequence[str]) -> str:
        return " ".join(f'"{word}"' for word in words)  # \w+ words hold no quotes

    async def ranked(self, session: AsyncSession, words: Sequence[str],
                     conditions: Sequence[sa.ColumnElement[bool]],
                     limit: int, offset: int) -> Ranked:
        rank: sa.ColumnElement[float] = sa.literal_column("bm25(docstore_fts, 10.0, 1.0)")
        stmt = (
            sa.select(Version.id, rank)
            .select_from(self.fts)
            .join(Version, Version.id == self.fts.c.rowid)
            .join(Document, _to_document())
        ).where(sa.text("docstore_fts MATCH :match").bindparams(match=self._match(words)),
                *conditions).order_by(rank, Version.id).limit(limit).offset(offset)
        return [(row[0], -float(row[1])) for row in await session.execute(stmt)]

    async def snippets(self, session: AsyncSession, words: Sequence[str],
                       ids: Sequence[int]) -> dict[int, str]:
        stmt = sa.text(
            "SELECT rowid, snippet(docstore_fts, -1, :start, :end, '…', 16) "
            "FROM docstore_fts WHERE docstore_fts MATCH :match AND rowid IN :ids"
        ).bindparams(sa.bindparam("ids", expanding=True))
        rows = await session.execute(stmt, {"start": MARK_START, "end": MARK_END,
                                            "match": self._match(words), "ids": list(ids)})
        return {row[0]: row[1] or "" for row in rows}


def _tsquery_literal(lexeme: str) -> str:
    escaped = lexeme.replace("\\", "\\\\").replace("'", "''")
    return f"'{escaped}'"


class PostgresSearch:
    vector: sa.ColumnElement[Any] = sa.literal_column("docstore_versions.search_vector")
    headline_options = (f"StartSel={MARK_START}, StopSel={MARK_END}, MaxWords=24, "
                        "MinWords=8, MaxFragments=2, FragmentDelimiter=\" … \"")

    @staticmethod
    def _query(words: Sequence[str]) -> sa.ColumnElement[str]:
        return sa.func.plainto_tsquery("english", " ".join(words))

    async def _idf(self, session: AsyncSession, words: Sequence[str]) -> list[tuple[str, float]]:
        rows = (await session.execute(sa.text(
            "SELECT u.lexeme, coalesce(t.ndoc, 0), "
            "(SELECT ndocs FROM docstore_search_stats WHERE id = 1) "
            "FROM unnest(to_tsvector('english', :q)) u "
            "LEFT JOIN docstore_terms t ON t.lexeme = u.lexeme"), {"q": " ".join(words)})).all()
        return [(lexeme, math.log(1 + (total - df + 0.5) / (df + 0.5)))
                for lexeme, df, total in rows]

    async def ranked(self, session: AsyncSession, words: Sequence[str],
                     conditions: Sequence[sa.ColumnElement[bool]],
                     limit: int, offset: int) -> Ranked:
        weights = await self._idf(session, words)
        if not weights:  # only stop words: nothing can match
            return []
        score: sa.ColumnElement[float] = sa.literal(0.0)
        for lexeme, idf in weights:
            term = sa.cast(sa.literal(_tsquery_literal(lexeme)), TSQUERY)
            score = score + sa.literal(idf) * sa.func.ts_rank_cd(self.vector, term, 1)
        score = score.label("score")
        stmt = sa.select(Version.id, score).join(Document, _to_document()).where(
            Version.is_current, self.vector.op("@@")(self._query(words)), *conditions
        ).order_by(score.desc(), Version.id).limit(limit).offset(offset)
        return [(row[0], float(row[1])) for row in await session.execute(stmt)]

    async def snippets(self, session: AsyncSession, words: Sequence[str],
                       ids: Sequence[int]) -> dict[int, str]:
        headline = sa.func.ts_headline("english", sa.func.coalesce(Version.content, Version.title),
                                       self._query(words), self.headline_options)
        rows = await session.execute(sa.select(Version.id, headline).where(Version.id.in_(ids)))
        return {row[0]: row[1] or "" for row in rows}


def backend_for(dialect: str) -> SearchBackend:
    return PostgresSearch() if dialect == "postgresql" else SqliteSearch()
