"""The vector indexes a mode needs (fp32, halfvec, binary) on an embedding column, and the SQL that uses them."""

from __future__ import annotations

import psycopg

from streamdesk.retrieval.config import VectorMode
from streamdesk.retrieval.exceptions import VectorIndexMissingError

MODES: tuple[VectorMode, ...] = ("vector", "halfvec", "binary")
_INDEX_USING = {
    "vector": "hnsw ({column} vector_cosine_ops)",
    "halfvec": "hnsw (({column}::halfvec({dimension})) halfvec_cosine_ops)",
    "binary": "hnsw ((binary_quantize({column})::bit({dimension})) bit_hamming_ops)",
}


def index_name(mode: VectorMode, *, column: str = "embedding") -> str:
    """The index serving `mode` on `column` (`ix_chunks_embedding` is the fp32 one created by migration 0001)."""
    return f"ix_chunks_{column}" if mode == "vector" else f"ix_chunks_{column}_{mode}"


def column_dimension(conn: psycopg.Connection, *, column: str = "embedding") -> int:
    """The declared dimension of a vector column of `chunks`."""
    row = conn.execute(
        "SELECT atttypmod FROM pg_attribute WHERE attrelid = 'chunks'::regclass AND attname = %s AND NOT attisdropped",
        (column,),
    ).fetchone()
    if row is None or row[0] is None or row[0] < 1:
        raise VectorIndexMissingError(f"chunks.{column} has no declared dimension; run `streamdesk migrate`")
    return int(row[0])


def existing_modes(conn: psycopg.Connection, *, column: str = "embedding") -> list[VectorMode]:
    """The modes whose index exists (and is valid) on `column`."""
    rows = conn.execute(
        """
        SELECT c.relname FROM pg_class c JOIN pg_index i ON i.indexrelid = c.oid
        WHERE i.indrelid = 'chunks'::regclass AND i.indisvalid AND c.relname = ANY(%s)
        """,
        ([index_name(mode, column=column) for mode in MODES],),
    ).fetchall()
    names = {r[0] for r in rows}
    return [mode for mode in MODES if index_name(mode, column=column) in names]


def create_index(conn: psycopg.Connection, *, mode: VectorMode, column: str = "embedding") -> str:
    """Build the index `mode` needs on `column` (concurrently: `conn` must be in autocommit); return its name."""
    if not conn.autocommit:
        raise VectorIndexMissingError("create_index needs an autocommit connection (CREATE INDEX CONCURRENTLY)")
    name = index_name(mode, column=column)
    if mode in existing_modes(conn, column=column):
        return name
    conn.execute(f"DROP INDEX IF EXISTS {name}")
    using = _INDEX_USING[mode].format(column=column, dimension=column_dimension(conn, column=column))
    conn.execute("SET maintenance_work_mem = '1GB'")
    conn.execute(f"CREATE INDEX CONCURRENTLY {name} ON chunks USING {using}")
    return name


def require_index(conn: psycopg.Connection, *, mode: VectorMode) -> None:
    """Raise VectorIndexMissingError naming the fix when `mode`'s index is missing on the active column."""
    if mode not in existing_modes(conn):
        raise VectorIndexMissingError(
            f"vector mode {mode!r} has no index {index_name(mode)!r} on chunks; run "
            f"`streamdesk embeddings index --mode {mode}` or set STREAMDESK_RETRIEVAL__VECTOR_MODE=vector"
        )


def ann_sql(mode: VectorMode, *, where: str, dimension: int, extra: str = "") -> str:
    """The vector arm through `mode`'s index: (source, external_id, chunk_no, distance), nearest first.

    Named parameters: `q` (the query vector), `n` (hits wanted), and for `binary` `n_candidates` (Hamming
    candidates re-ranked by exact cosine); `where` brings its own. Distances are always exact fp32 cosine.
    `extra` adds columns computed on `c` for the rows returned only (e.g. a text rank for fusion).
    """
    key = "source, external_id, chunk_no"
    if mode == "vector":
        return f"""
            WITH relaxed AS MATERIALIZED (
                SELECT {key}, embedding <=> %(q)s AS distance{extra} FROM chunks c WHERE {where}
                ORDER BY embedding <=> %(q)s LIMIT %(n)s)
            SELECT * FROM relaxed ORDER BY distance"""
    if mode == "halfvec":
        return f"""
            WITH relaxed AS MATERIALIZED (
                SELECT {key}, embedding::halfvec({dimension}) <=> %(q)s::halfvec({dimension}) AS approx
                FROM chunks c WHERE {where}
                ORDER BY embedding::halfvec({dimension}) <=> %(q)s::halfvec({dimension}) LIMIT %(n)s)
            SELECT r.source, r.external_id, r.chunk_no, c.embedding <=> %(q)s AS distance{extra}
            FROM relaxed r JOIN chunks c USING ({key}) ORDER BY distance"""
    return f"""
        WITH candidates AS MATERIALIZED (
            SELECT {key} FROM chunks c WHERE {where}
            ORDER BY binary_quantize(embedding)::bit({dimension}) <~> binary_quantize(%(q)s::vector)
            LIMIT %(n_candidates)s)
        SELECT r.source, r.external_id, r.chunk_no, c.embedding <=> %(q)s AS distance{extra}
        FROM candidates r JOIN chunks c USING ({key}) ORDER BY distance LIMIT %(n)s"""


def exact_sql(*, where: str, extra: str = "") -> str:
    """The vector arm without any index: every row matching `where`, ranked by exact cosine distance."""
    return f"""
        SELECT source, external_id, chunk_no, embedding <=> %(q)s AS distance{extra} FROM chunks c WHERE {where}
        ORDER BY (embedding <=> %(q)s) + 0 LIMIT %(n)s"""
