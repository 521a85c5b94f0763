"""Embedding cut-over: move search to a new embedding model with zero downtime (not a database migration).

Shadow backfill, comparison, atomic cut-over, cleanup. `chunks.embedding` always holds the active
space's vectors, so the ingest store and every query keep using the same column. A cut-over fills
`embedding_shadow` (plus the shadow model, version and chunk hash) with the new model, keyset-paged in
batches behind a progress bar; a trigger clears a row's shadow whenever ingest changes its text, and the
backfill loops until no row lacks one. It then builds the shadow's indexes (the same vector modes the
active column has), compares both spaces on a query sample (top-k agreement), and cuts over in one
transaction: writers are paused (`SHARE ROW EXCLUSIVE`), rows written meanwhile are embedded, in-flight
searches drain (searches hold a shared advisory lock), and columns and indexes are renamed, which is
catalog-only, so readers wait milliseconds. `finish` re-embeds rows an old-model writer added after the
cut-over and drops the old vectors.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb
from tqdm import tqdm

from streamdesk import db
from streamdesk.config import Settings, get_settings
from streamdesk.knowledge import embedders, embedding
from streamdesk.knowledge import store as knowledge_store
from streamdesk.retrieval import vectors
from streamdesk.retrieval.exceptions import EmbeddingSpaceError

log = logging.getLogger(__name__)

SPACE_LOCK = (0x5D0D, 1)
"""Advisory lock: searches hold it shared for their transaction, the cut-over takes it exclusively."""
SHADOW_COLUMNS = {
    "embedding": "embedding_shadow",
    "embedding_model": "embedding_model_shadow",
    "embedding_version": "embedding_version_shadow",
    "content_hash": "content_hash_shadow",
}


@dataclass(frozen=True)
class EmbeddingSpace:
    """One embedding model version whose vectors live in `chunks` (active) or are being backfilled (shadow)."""

    name: str
    model: str
    version: str
    backend: str
    path: str | None
    dimension: int
    state: str

    def embedder(self) -> Any:
        """The embedder producing this space's vectors (shared with ingest when the settings name it)."""
        ingest = get_settings().ingest
        backend = getattr(ingest, "embedding_backend", "torch")
        if (ingest.embedding_model, ingest.embedding_version, ingest.embedding_path, backend) == (
            self.model,
            self.version,
            self.path,
            self.backend,
        ):
            return embedders.get_embedder()
        return embedders.cached_embedder(
            backend=self.backend,
            path=self.path,
            model_name=self.model,
            version=self.version,
        )


@dataclass
class CutoverReport:
    """What an embedding cut-over did: rows embedded, the comparison, whether it cut over and dropped old vectors."""

    source: str
    target: str
    backfilled: int = 0
    stragglers: int = 0
    repaired: int = 0
    comparison: dict[str, Any] = field(default_factory=dict)
    cut_over: bool = False
    dropped_old: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The report as plain data."""
        return dict(self.__dict__)


def space_name(*, model: str, version: str) -> str:
    """The registry name of a model version."""
    return f"{model}@{version}"


_SPACE_COLUMNS = "name, model, version, backend, path, dimension, state"


def _space(row: Sequence[Any] | None) -> EmbeddingSpace | None:
    return EmbeddingSpace(*row) if row else None


def active_space(conn: psycopg.Connection, *, settings: Settings | None = None) -> EmbeddingSpace:
    """The active space; on first use, registers the ingest settings' model as active."""
    found = _space(conn.execute(f"SELECT {_SPACE_COLUMNS} FROM embedding_spaces WHERE state = 'active'").fetchone())
    if found:
        return found
    ingest = (settings or get_settings()).ingest
    conn.execute(
        """
        INSERT INTO embedding_spaces (name, model, version, backend, path, dimension, state, activated_at)
        VALUES (%s, %s, %s, %s, %s, %s, 'active', now()) ON CONFLICT DO NOTHING
        """,
        (
            space_name(model=ingest.embedding_model, version=ingest.embedding_version),
            ingest.embedding_model,
            ingest.embedding_version,
            getattr(ingest, "embedding_backend", "torch"),
            ingest.embedding_path,
            vectors.column_dimension(conn),
        ),
    )
    row = conn.execute(f"SELECT {_SPACE_COLUMNS} FROM embedding_spaces WHERE state = 'active'").fetchone()
    space = _space(row)
    if space is None:
        raise EmbeddingSpaceError("no active embedding space could be registered; run `streamdesk migrate`")
    return space


def shadow_space(conn: psycopg.Connection) -> EmbeddingSpace | None:
    """The space being backfilled, if an embedding cut-over is under way."""
    return _space(conn.execute(f"SELECT {_SPACE_COLUMNS} FROM embedding_spaces WHERE state = 'shadow'").fetchone())


def start(url: str, *, model: str, version: str, backend: str, path: str | None) -> EmbeddingSpace:
    """Register the target space as the shadow (resuming a cut-over to the same target)."""
    embedder = embedders.cached_embedder(backend=backend, path=path, model_name=model, version=version)
    name = space_name(model=model, version=version)
    with db.connect(url) as conn, conn.transaction():
        active = active_space(conn)
        if active.name == name:
            raise EmbeddingSpaceError(f"{name} is already the active space; pick a new --model-version")
        known = _space(
            conn.execute(f"SELECT {_SPACE_COLUMNS} FROM embedding_spaces WHERE name = %s", (name,)).fetchone()
        )
        if known is not None and known.state in ("retired", "active"):
            raise EmbeddingSpaceError(f"{name} was used before (state {known.state}); pick a new --model-version")
        shadow = shadow_space(conn)
        if shadow is not None and shadow.name != name:
            raise EmbeddingSpaceError(
                f"an embedding cut-over to {shadow.name} is under way; finish it or run `streamdesk embeddings abort`"
            )
        if shadow is None:
            _reset_shadow_columns(conn, dimension=embedder.dimension)
            conn.execute(
                """
                INSERT INTO embedding_spaces (name, model, version, backend, path, dimension, state)
                VALUES (%s, %s, %s, %s, %s, %s, 'shadow')
                ON CONFLICT (name) DO UPDATE SET state = 'shadow', backend = EXCLUDED.backend, path = EXCLUDED.path,
                    dimension = EXCLUDED.dimension, comparison = NULL
                """,
                (name, model, version, backend, path, embedder.dimension),
            )
        space = shadow_space(conn)
    assert space is not None
    return space


def _reset_shadow_columns(conn: psycopg.Connection, *, dimension: int) -> None:
    """Drop whatever the shadow columns hold and re-add them empty (catalog-only, instant)."""
    conn.execute("SET LOCAL lock_timeout = '10s'")
    drops = ", ".join(f"DROP COLUMN IF EXISTS {shadow}" for shadow in SHADOW_COLUMNS.values())
    conn.execute(f"ALTER TABLE chunks {drops}")
    conn.execute(
        f"""
        ALTER TABLE chunks ADD COLUMN embedding_shadow vector({dimension}), ADD COLUMN embedding_model_shadow text,
            ADD COLUMN embedding_version_shadow text, ADD COLUMN content_hash_shadow text
        """
    )


def _missing(
    conn: psycopg.Connection, *, after: tuple[str, str, int] | None, limit: int, stale_of: EmbeddingSpace | None
) -> list[tuple[Any, ...]]:
    """The next rows (by key) lacking a shadow vector, or, with `stale_of`, not embedded by that space."""
    condition = (
        "(embedding_model, embedding_version) IS DISTINCT FROM (%(model)s, %(version)s)"
        if stale_of
        else "embedding_shadow IS NULL"
    )
    params: dict[str, Any] = {"limit": limit}
    if stale_of:
        params.update(model=stale_of.model, version=stale_of.version)
    page = ""
    if after is not None:
        page = "AND (source, external_id, chunk_no) > (%(s)s, %(e)s, %(c)s)"
        params.update(s=after[0], e=after[1], c=after[2])
    return conn.execute(
        f"""
        SELECT source, external_id, chunk_no, title, text, content_hash FROM chunks
        WHERE {condition} {page} ORDER BY source, external_id, chunk_no LIMIT %(limit)s
        """,
        params,
    ).fetchall()


def _count_missing(conn: psycopg.Connection, *, stale_of: EmbeddingSpace | None = None) -> int:
    if stale_of:
        sql = "SELECT count(*) FROM chunks WHERE (embedding_model, embedding_version) IS DISTINCT FROM (%s, %s)"
        row = conn.execute(sql, (stale_of.model, stale_of.version)).fetchone()
    else:
        row = conn.execute("SELECT count(*) FROM chunks WHERE embedding_shadow IS NULL").fetchone()
    return int(row[0]) if row else 0


def _embed_rows(conn: psycopg.Connection, rows: list[tuple[Any, ...]], *, embedder: Any, into_shadow: bool) -> int:
    """Embed `rows` and write their vectors (shadow or active columns), unless their text changed meanwhile."""
    inputs = [embedding.embedding_input(row[3], row[4]) for row in rows]
    unique = list(dict.fromkeys(inputs))
    by_input = dict(zip(unique, embedder.embed(unique), strict=True))
    suffix = "_shadow" if into_shadow else ""
    sql = f"""
        UPDATE chunks SET embedding{suffix} = %s, embedding_model{suffix} = %s, embedding_version{suffix} = %s,
            content_hash{suffix} = %s
        WHERE source = %s AND external_id = %s AND chunk_no = %s AND content_hash = %s
    """
    params = [
        (
            by_input[text],
            embedder.model_name,
            embedder.version,
            knowledge_store.chunk_hash(text, embedder=embedder),
            row[0],
            row[1],
            row[2],
            row[5],
        )
        for row, text in zip(rows, inputs, strict=True)
    ]
    with conn.pipeline(), conn.cursor() as cur:
        cur.executemany(sql, params)
    return len(rows)


def _sweep(
    conn: psycopg.Connection,
    *,
    embedder: Any,
    batch: int,
    stale_of: EmbeddingSpace | None = None,
    progress: bool = False,
    desc: str = "backfill",
    commit: bool = True,
) -> int:
    """One keyset pass over the rows lacking vectors; returns how many were embedded."""
    total = _count_missing(conn, stale_of=stale_of)
    done = 0
    after: tuple[str, str, int] | None = None
    with tqdm(total=total, desc=desc, unit="chunk", disable=not progress or not total) as bar:
        while rows := _missing(conn, after=after, limit=batch, stale_of=stale_of):
            done += _embed_rows(conn, rows, embedder=embedder, into_shadow=stale_of is None)
            if commit:
                conn.commit()
            after = (rows[-1][0], rows[-1][1], rows[-1][2])
            bar.update(len(rows))
    return done


def backfill(url: str, *, space: EmbeddingSpace, batch: int = 64, progress: bool = True, max_passes: int = 5) -> int:
    """Fill the shadow columns for every chunk (looping while ingest adds rows); return the rows embedded."""
    embedder = space.embedder()
    done = 0
    with db.connect(url) as conn:
        for number in range(max_passes):
            embedded = _sweep(conn, embedder=embedder, batch=batch, progress=progress, desc=f"backfill {space.name}")
            done += embedded
            if not embedded or not _count_missing(conn):
                break
            log.info(
                "backfill pass %d embedded %d chunks; rows arrived meanwhile, sweeping again", number + 1, embedded
            )
    return done


def build_shadow_indexes(url: str) -> list[str]:
    """Build on the shadow column the vector indexes the active column has, plus its chunk-hash index."""
    built = []
    with db.connect(url, autocommit=True) as conn:
        for mode in vectors.existing_modes(conn) or ["vector"]:
            built.append(vectors.create_index(conn, mode=mode, column="embedding_shadow"))
        conn.execute(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_chunks_content_hash_shadow ON chunks (content_hash_shadow)"
        )
        built.append("ix_chunks_content_hash_shadow")
    return built


def sample_queries(conn: psycopg.Connection, *, size: int, seed: int = 7) -> list[str]:
    """Query-like texts for a comparison: the opening words of randomly chosen chunks."""
    rows = conn.execute("SELECT title, text FROM chunks ORDER BY source, external_id, chunk_no").fetchall()
    chosen = random.Random(seed).sample(rows, min(size, len(rows)))
    return [" ".join(f"{title} {text}".split()[:12]) for title, text in chosen]


def compare(url: str, *, queries: Sequence[str] | None = None, sample: int = 50, k: int = 10) -> dict[str, Any]:
    """Top-k agreement of the active and shadow spaces on a query sample (exact search in both)."""
    with db.connect(url) as conn:
        active, shadow = active_space(conn), shadow_space(conn)
        if shadow is None:
            raise EmbeddingSpaceError("no embedding cut-over under way; start one with `streamdesk embeddings migrate`")
        texts = list(queries) if queries else sample_queries(conn, size=sample)
        old = active.embedder().embed(texts)
        new = shadow.embedder().embed(texts)
        overlaps = []
        for old_vector, new_vector in zip(old, new, strict=True):
            before = _exact_top(conn, column="embedding", vector=old_vector, k=k)
            after = _exact_top(conn, column="embedding_shadow", vector=new_vector, k=k)
            if before:
                overlaps.append(len(set(before) & set(after)) / len(before))
        result = {
            "queries": len(overlaps),
            "k": k,
            f"agreement_at_{k}": round(float(np.mean(overlaps)), 4) if overlaps else None,
            "min_agreement": round(float(np.min(overlaps)), 4) if overlaps else None,
            "from": active.name,
            "to": shadow.name,
        }
        conn.execute("UPDATE embedding_spaces SET comparison = %s WHERE name = %s", (Jsonb(result), shadow.name))
        conn.commit()
    return result


def _exact_top(conn: psycopg.Connection, *, column: str, vector: Any, k: int) -> list[tuple[str, str, int]]:
    rows = conn.execute(
        f"""
        SELECT source, external_id, chunk_no FROM chunks WHERE embedding_shadow IS NOT NULL
        ORDER BY ({column} <=> %s) + 0 LIMIT %s
        """,
        (vector, k),
    ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]


def cut_over(url: str, *, batch: int = 64, lock_timeout_s: float = 10.0) -> EmbeddingSpace:
    """Make the shadow space active in one transaction; searches wait milliseconds, none fails."""
    with db.connect(url) as conn:
        shadow = shadow_space(conn)
        if shadow is None:
            raise EmbeddingSpaceError("no embedding cut-over under way; start one with `streamdesk embeddings migrate`")
        embedder = shadow.embedder()
        conn.commit()
        with conn.transaction():
            conn.execute(f"SET LOCAL lock_timeout = '{int(lock_timeout_s * 1000)}ms'")
            conn.execute("LOCK TABLE chunks IN SHARE ROW EXCLUSIVE MODE")
            stragglers = _sweep(conn, embedder=embedder, batch=batch, commit=False)
            conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", SPACE_LOCK)
            _swap_columns(conn)
            conn.execute("UPDATE embedding_spaces SET state = 'retired', retired_at = now() WHERE state = 'active'")
            conn.execute(
                "UPDATE embedding_spaces SET state = 'active', activated_at = now() WHERE name = %s", (shadow.name,)
            )
        log.info("cut over to %s (%d chunks embedded under the write lock)", shadow.name, stragglers)
        return active_space(conn)


def _swap_columns(conn: psycopg.Connection) -> None:
    """Swap active and shadow columns and their indexes by renaming (catalog-only)."""
    modes = vectors.existing_modes(conn)
    for shadow in SHADOW_COLUMNS.values():
        conn.execute(f"ALTER TABLE chunks ALTER COLUMN {shadow} SET NOT NULL")
    for active, shadow in SHADOW_COLUMNS.items():
        conn.execute(f"ALTER TABLE chunks RENAME COLUMN {active} TO {active}_swap")
        conn.execute(f"ALTER TABLE chunks RENAME COLUMN {shadow} TO {active}")
        conn.execute(f"ALTER TABLE chunks RENAME COLUMN {active}_swap TO {shadow}")
        conn.execute(f"ALTER TABLE chunks ALTER COLUMN {shadow} DROP NOT NULL")
    pairs = [(vectors.index_name(m), vectors.index_name(m, column="embedding_shadow")) for m in modes]
    pairs.append(("ix_chunks_content_hash", "ix_chunks_content_hash_shadow"))
    for active, shadow in pairs:
        conn.execute(f"ALTER INDEX IF EXISTS {active} RENAME TO {active}_swap")
        conn.execute(f"ALTER INDEX IF EXISTS {shadow} RENAME TO {active}")
        conn.execute(f"ALTER INDEX IF EXISTS {active}_swap RENAME TO {shadow}")


def finish(url: str, *, batch: int = 64, progress: bool = True) -> int:
    """Re-embed rows an old-model writer added after the cut-over, then drop the old vectors; return the re-embedded."""
    with db.connect(url) as conn:
        if shadow_space(conn) is not None:
            raise EmbeddingSpaceError("the embedding cut-over has not switched spaces yet; cut over first")
        active = active_space(conn)
        repaired = _sweep(
            conn, embedder=active.embedder(), batch=batch, stale_of=active, progress=progress, desc="repair"
        )
        with conn.transaction():
            _reset_shadow_columns(conn, dimension=active.dimension)
    return repaired


def abort(url: str) -> None:
    """Abandon the embedding cut-over under way: forget the shadow space and drop its vectors."""
    with db.connect(url) as conn, conn.transaction():
        shadow = shadow_space(conn)
        if shadow is None:
            return
        conn.execute("UPDATE embedding_spaces SET state = 'aborted' WHERE name = %s", (shadow.name,))
        _reset_shadow_columns(conn, dimension=vectors.column_dimension(conn))


def change_embedding_model(
    url: str,
    *,
    model: str,
    version: str,
    backend: str = "torch",
    path: str | None = None,
    queries: Sequence[str] | None = None,
    sample: int = 50,
    min_agreement: float = 0.0,
    cut: bool = True,
    drop_old: bool = True,
    batch: int = 64,
    progress: bool = True,
    on_step: Callable[[str], None] | None = None,
) -> CutoverReport:
    """Run a whole embedding cut-over: register, backfill, index, compare, cut over (if agreement allows), clean up."""
    step = on_step or (lambda name: log.info("embedding cut-over: %s", name))
    with db.connect(url) as conn:
        source = active_space(conn).name
        conn.commit()
    target = start(url, model=model, version=version, backend=backend, path=path)
    report = CutoverReport(source=source, target=target.name)
    step("backfill")
    report.backfilled = backfill(url, space=target, batch=batch, progress=progress)
    step("index")
    build_shadow_indexes(url)
    step("compare")
    report.comparison = compare(url, queries=queries, sample=sample)
    agreement = report.comparison.get("agreement_at_10") or 0.0
    if not cut or agreement < min_agreement:
        step(f"stopped before cut-over (agreement {agreement} < {min_agreement})" if cut else "stopped before cut-over")
        return report
    step("cut-over")
    cut_over(url, batch=batch)
    report.cut_over = True
    if drop_old:
        step("drop old vectors")
        report.repaired = finish(url, batch=batch, progress=progress)
        report.dropped_old = True
    return report


def follow_settings(url: str, *, settings: Settings | None = None) -> CutoverReport | None:
    """Move a store whose active space is not the one the ingest settings name onto it, by the cut-over.

    None when the store is already there. A cut-over under way to another target, or a target used
    before, is left alone (logged): `streamdesk embeddings` resolves those by hand.
    """
    ingest = (settings or get_settings()).ingest
    with db.connect(url) as conn:
        active = active_space(conn)
        conn.commit()
    if (active.model, active.version) == (ingest.embedding_model, ingest.embedding_version):
        return None
    target = space_name(model=ingest.embedding_model, version=ingest.embedding_version)
    log.info(
        "the store's embeddings are %s and the settings name %s: cutting over without downtime", active.name, target
    )
    try:
        report = change_embedding_model(
            url,
            model=ingest.embedding_model,
            version=ingest.embedding_version,
            backend=ingest.embedding_backend,
            path=ingest.embedding_path,
            progress=False,
        )
    except EmbeddingSpaceError as exc:
        log.warning("embedding cut-over to %s not started: %s", target, exc)
        return None
    log.info("embedding cut-over %s -> %s done: %s", report.source, report.target, report.comparison)
    return report
