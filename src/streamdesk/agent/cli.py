"""CLI of the agent: `eval agent`, `eval convert taubench|bitext|injections`, `worker agent`, `bench agent`.

`cli/main.py` registers `eval_app` and the two commands; each prints one JSON object as its last line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from streamdesk.cli import output
from streamdesk.config import REPO_ROOT

if TYPE_CHECKING:
    from streamdesk.agent.evaluation import CaseResult

SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
TAUBENCH = Path("taubench")
SharedDataOpt = Annotated[Path, typer.Option(help="Folder of the third-party data (shared/data).")]
OutOpt = Annotated[Path, typer.Option("--out", help="JSONL file to write the cases to.")]

eval_app = typer.Typer(help="Evaluations that print one JSON object as their last line.", no_args_is_help=True)
convert_app = typer.Typer(help="Turn third-party datasets into agent evaluation cases (JSONL).", no_args_is_help=True)
eval_app.add_typer(convert_app, name="convert")


@eval_app.command("agent")
def eval_agent(
    dataset: Annotated[Path, typer.Option(help="JSONL cases (see `eval convert`).")],
    world: Annotated[
        Path | None, typer.Option(help="τ²-bench retail DB to load into the scratch store first (rolled back).")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N cases.")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Model steps per case (default: answer settings).")] = None,
) -> None:
    """Run cases through the real agent on a scratch copy of the store (DATABASE_URL); writes are auto-approved.

    One JSON line per case on stdout, then the summary object; a progress bar on stderr when it is a terminal.
    """
    from tqdm import tqdm

    from streamdesk import db
    from streamdesk.agent import backends, datasets, evaluation
    from streamdesk.agent.answer_config import get_answer_settings

    cases = datasets.read_cases(dataset)[:limit]
    backend = backends.get_backend()
    bar = tqdm(total=len(cases), unit="case", desc="eval agent", disable=not output.show_progress(as_json=False))

    def report(result: CaseResult) -> None:
        if bar.disable:
            typer.echo(result.line())
        else:
            tqdm.write(result.line(), file=sys.stdout)
        bar.update()

    with bar, db.connect() as conn, conn.transaction(force_rollback=True):
        if world is not None:
            typer.echo(
                f"loaded {evaluation.load_taubench_world(conn, db_path=world)} entity rows from {world}", err=True
            )
        summary = evaluation.evaluate(
            conn,
            cases=cases,
            backend=backend,
            settings=get_answer_settings(),
            max_steps=max_steps,
            on_result=report,
        )
    typer.echo(json.dumps(summary))


@convert_app.command("taubench")
def convert_taubench(
    out: OutOpt,
    split: Annotated[str, typer.Option(help="train, test or base (tau2_retail_split_tasks.json).")] = "test",
    shared_data: SharedDataOpt = SHARED_DATA,
) -> None:
    """τ²-bench retail tasks of one split -> cases (reason for call + known info as the ticket)."""
    from streamdesk.agent import datasets

    cases = datasets.taubench_cases(
        tasks_path=shared_data / TAUBENCH / "tau2_retail_tasks.json",
        split_path=shared_data / TAUBENCH / "tau2_retail_split_tasks.json",
        db_path=shared_data / TAUBENCH / "tau2_retail_db.json",
        split=split,
    )
    typer.echo(json.dumps({"cases": datasets.write_cases(out, cases), "out": str(out), "split": split}))


@convert_app.command("bitext")
def convert_bitext(
    out: OutOpt,
    per_intent: Annotated[int, typer.Option(help="Rows per intent.")] = 25,
    shared_data: SharedDataOpt = SHARED_DATA,
) -> None:
    """Bitext rows of cancel_order, get_refund, track_order, contact_human_agent -> name-only cases."""
    from streamdesk.agent import datasets

    csv_path = shared_data / "support" / "bitext_customer_support_training_4514.csv"
    cases = datasets.bitext_cases(csv_path=csv_path, per_intent=per_intent)
    typer.echo(json.dumps({"cases": datasets.write_cases(out, cases), "out": str(out)}))


@convert_app.command("injections")
def convert_injections(out: OutOpt, shared_data: SharedDataOpt = SHARED_DATA) -> None:
    """Prompt-injection cases (ticket text and poisoned knowledge articles) on real τ²-bench customers."""
    from streamdesk.agent import datasets

    cases = datasets.injection_cases(db_path=shared_data / TAUBENCH / "tau2_retail_db.json")
    typer.echo(json.dumps({"cases": datasets.write_cases(out, cases), "out": str(out)}))


def worker_agent() -> None:
    """canonical.ticket -> answers -> `answer` topic (Faust, the configured model)."""
    from streamdesk.agent.worker import run_worker

    run_worker()


def bench_agent(
    tickets: Annotated[int, typer.Option(help="τ²-bench test tickets to answer.")] = 6,
    bare_samples: Annotated[int, typer.Option(help="Model calls replayed with plain HF generate.")] = 4,
    max_steps: Annotated[int | None, typer.Option(help="Model steps per ticket (default: answer settings).")] = None,
    shared_data: SharedDataOpt = SHARED_DATA,
) -> None:
    """Answer latency per ticket (retrieval and tools included) and generation speed versus plain HF generate."""
    from streamdesk.bench import agent as agent_bench

    result = agent_bench.run(shared_data=shared_data, tickets=tickets, bare_samples=bare_samples, max_steps=max_steps)
    typer.echo(json.dumps(result))
