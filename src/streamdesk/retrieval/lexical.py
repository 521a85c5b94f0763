"""The lexical arm's queries: the question's lexemes OR-ed for ranking, and the rarest of them for matching.

PostgreSQL full text has no top-k index scan: every row matching the tsquery is ranked. An OR of all
the question's words matches most of a large store, so matching uses only the rarest words whose
estimated matches fit `lexical_match_budget` (frequencies from the planner's most-common-lexeme
statistics on `chunks.tsv`), while ranking (`ts_rank`, title weight A above body weight B) still
scores every word. Frequent words thus shape the order without widening the candidate set, as in a
"common terms" query.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import psycopg

STATS_TTL_S = 60.0
_stats: dict[str, tuple[float, float, dict[str, float]]] = {}


@dataclass(frozen=True)
class LexicalQuery:
    """A tsquery for matching (the rarest words) and one for ranking (all words); empty when no word is left."""

    match: str
    rank: str
    words: int
    matched_words: int


def quote(lexeme: str) -> str:
    """A lexeme as a tsquery operand."""
    return "'" + lexeme.replace("\\", "\\\\").replace("'", "''") + "'"


def lexeme_statistics(conn: psycopg.Connection) -> tuple[float, dict[str, float]]:
    """(estimated chunk count, frequency of the most common lexemes), cached per database for a minute."""
    key = conn.info.dsn
    cached = _stats.get(key)
    if cached and time.monotonic() - cached[0] < STATS_TTL_S:
        return cached[1], cached[2]
    row = conn.execute(
        """
        SELECT c.reltuples, s.most_common_elems::text::text[], s.most_common_elem_freqs
        FROM pg_class c LEFT JOIN pg_stats s ON s.tablename = 'chunks' AND s.attname = 'tsv' AND s.schemaname = 'public'
        WHERE c.oid = 'chunks'::regclass
        """
    ).fetchone()
    rows = float(row[0]) if row and row[0] and row[0] > 0 else 0.0
    frequencies: dict[str, float] = {}
    if row and row[1] and row[2]:
        frequencies = dict(zip(row[1], (float(f) for f in row[2]), strict=False))
    _stats[key] = (time.monotonic(), rows, frequencies)
    return rows, frequencies


def build(conn: psycopg.Connection, *, query: str, budget: int) -> LexicalQuery:
    """The matching and ranking tsqueries for `query` (English stemming and stop words)."""
    lexemes = [r[0] for r in conn.execute("SELECT lexeme FROM unnest(to_tsvector('english', %s))", (query,))]
    if not lexemes:
        return LexicalQuery("", "", 0, 0)
    rows, frequencies = lexeme_statistics(conn)
    floor = min(frequencies.values(), default=0.0)
    ranked = sorted(lexemes, key=lambda lexeme: (frequencies.get(lexeme, floor), lexeme))
    chosen: list[str] = []
    expected = 0.0
    for lexeme in ranked:
        expected += frequencies.get(lexeme, floor) * rows
        if chosen and expected > budget:
            break
        chosen.append(lexeme)
    return LexicalQuery(
        match=" | ".join(quote(lexeme) for lexeme in chosen),
        rank=" | ".join(quote(lexeme) for lexeme in lexemes),
        words=len(lexemes),
        matched_words=len(chosen),
    )
