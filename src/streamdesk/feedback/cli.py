"""`streamdesk feedback export|balance|relabel`: the labelled examples from the shell."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from streamdesk import db
from streamdesk import terminal as output
from streamdesk.feedback import service

feedback_app = typer.Typer(help="Feedback signals and the KTO examples they become.", no_args_is_help=True)
console = Console(stderr=True)


@feedback_app.command("export")
def export(
    out: Annotated[Path | None, typer.Option("--out", help="JSONL file to write; default stdout.")] = None,
    text: Annotated[bool, typer.Option("--text", help="Plain text instead of chat messages.")] = False,
    lineage: Annotated[bool, typer.Option("--lineage", help="Add each row's answer, ticket, adapter, policy.")] = False,
    heldout: Annotated[
        bool | None, typer.Option("--heldout/--train-only", help="Only held-out rows, or only training rows.")
    ] = None,
) -> None:
    """Write the deduplicated, redacted examples as JSONL in TRL's KTO format (prompt, completion, label)."""
    with db.connect(autocommit=True) as conn:
        if out is None:
            count = service.export_kto(conn, out=sys.stdout, conversational=not text, lineage=lineage, heldout=heldout)
        else:
            with out.open("w", encoding="utf-8") as handle:
                count = service.export_kto(conn, out=handle, conversational=not text, lineage=lineage, heldout=heldout)
    console.print(f"exported {count} examples" + (f" to {out}" if out else ""))


@feedback_app.command("balance")
def balance(as_json: output.JsonOpt = False) -> None:
    """Class balance of the examples a retrain would add, and who contributed most."""
    with db.connect(autocommit=True) as conn:
        report = service.pending_balance(conn).to_json()
    output.emit(report, as_json=as_json, title="pending feedback balance")


@feedback_app.command("relabel")
def relabel(as_json: output.JsonOpt = False) -> None:
    """Run the label policy over every answer with feedback (needs the answers table)."""
    with output.refusals(), db.connect(autocommit=True) as conn:
        stats = service.relabel(conn, answer_ids=service.answers_with_feedback(conn))
    output.emit(stats.to_json(), as_json=as_json, title="relabelled")
