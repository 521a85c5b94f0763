"""`streamdesk eval ...` and `streamdesk bench ...`: the evaluations' and benchmarks' commands.

The product never imports this package: `register` is the `streamdesk.cli` entry point (pyproject.toml)
that `streamdesk.cli.plugins` calls with the root app. Each command prints one JSON object as its last line.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from streamdesk import terminal as output
from streamdesk.config import REPO_ROOT
from streamdesk.exceptions import StreamdeskError

if TYPE_CHECKING:
    from evals.agent import CaseResult

SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
TAUBENCH = Path("taubench")
SharedDataOpt = Annotated[Path, typer.Option(help="Folder of the third-party data (shared/data).")]
OutOpt = Annotated[Path, typer.Option("--out", help="JSONL file to write the cases to.")]
console = Console(stderr=True)

eval_app = typer.Typer(help="Evaluations that print one JSON object as their last line.", no_args_is_help=True)
convert_app = typer.Typer(help="Turn third-party datasets into agent evaluation cases (JSONL).", no_args_is_help=True)
eval_app.add_typer(convert_app, name="convert")


def register(app: typer.Typer) -> None:
    """Add the `eval` and `bench` groups to the `streamdesk` app (the `streamdesk.cli` entry point)."""
    from evals.bench.cli import bench_app

    app.add_typer(eval_app, name="eval")
    app.add_typer(bench_app, name="bench")


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

    from evals import agent as evaluation
    from evals import datasets
    from streamdesk import db
    from streamdesk.agent import backends
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


@eval_app.command("conversations")
def eval_conversations(
    dataset: Annotated[Path, typer.Option(help="JSONL conversations: ticket, turns, expected actions.")],
    world: Annotated[
        Path | None, typer.Option(help="τ²-bench retail DB to load into the scratch store first (rolled back).")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N conversations.")] = None,
) -> None:
    """Post each conversation's turns as one ticket's messages, answered in order; writes are auto-approved.

    One line per conversation on stdout, then the summary object (premature_writes, turn_p50_s, ...).
    """
    from evals import agent as evaluation
    from evals import conversations
    from streamdesk import db
    from streamdesk.agent import backends
    from streamdesk.agent.answer_config import get_answer_settings

    cases = conversations.read_cases(dataset)[:limit]
    backend = backends.get_backend()
    with db.connect() as conn, conn.transaction(force_rollback=True):
        if world is not None:
            loaded = evaluation.load_taubench_world(conn, db_path=world)
            typer.echo(f"loaded {loaded} entity rows from {world}", err=True)
        summary = conversations.evaluate(
            conn,
            cases=cases,
            backend=backend,
            settings=get_answer_settings(),
            on_result=lambda result: typer.echo(result.line()),
        )
    typer.echo(json.dumps(summary))


def _taubench_files(shared_data: Path) -> dict[str, Path]:
    """The τ²-bench retail tasks, splits and world under `shared_data`, as the converters take them."""
    folder = shared_data / TAUBENCH
    return {
        "tasks_path": folder / "tau2_retail_tasks.json",
        "split_path": folder / "tau2_retail_split_tasks.json",
        "db_path": folder / "tau2_retail_db.json",
    }


@convert_app.command("taubench")
def convert_taubench(
    out: OutOpt,
    split: Annotated[str, typer.Option(help="train, test or base (tau2_retail_split_tasks.json).")] = "test",
    shared_data: SharedDataOpt = SHARED_DATA,
) -> None:
    """τ²-bench retail tasks of one split -> cases (reason for call + known info as the ticket)."""
    from evals import datasets

    cases = datasets.taubench_cases(**_taubench_files(shared_data), split=split)
    typer.echo(json.dumps({"cases": datasets.write_cases(out, cases), "out": str(out), "split": split}))


@convert_app.command("tau2-conversations")
def convert_tau2_conversations(
    out: OutOpt,
    split: Annotated[str, typer.Option(help="train, test or base (tau2_retail_split_tasks.json).")] = "test",
    shared_data: SharedDataOpt = SHARED_DATA,
) -> None:
    """τ²-bench retail tasks of one split -> conversation cases (the opening, the τ² user's replies, confirmations)."""
    from evals import datasets

    cases = datasets.taubench_conversations(**_taubench_files(shared_data), split=split)
    turns = [len(case["turns"]) for case in cases]
    summary = {"cases": datasets.write_jsonl(out, cases), "out": str(out), "split": split}
    summary["turns"] = {"total": sum(turns), "min": min(turns, default=0), "max": max(turns, default=0)}
    typer.echo(json.dumps(summary))


@convert_app.command("bitext")
def convert_bitext(
    out: OutOpt,
    per_intent: Annotated[int, typer.Option(help="Rows per intent.")] = 25,
    shared_data: SharedDataOpt = SHARED_DATA,
) -> None:
    """Bitext rows of cancel_order, get_refund, track_order, contact_human_agent -> name-only cases."""
    from evals import datasets

    csv_path = shared_data / "support" / "bitext_customer_support_training_4514.csv"
    cases = datasets.bitext_cases(csv_path=csv_path, per_intent=per_intent)
    typer.echo(json.dumps({"cases": datasets.write_cases(out, cases), "out": str(out)}))


@convert_app.command("injections")
def convert_injections(out: OutOpt, shared_data: SharedDataOpt = SHARED_DATA) -> None:
    """Prompt-injection cases (ticket text and poisoned knowledge articles) on real τ²-bench customers."""
    from evals import datasets

    cases = datasets.injection_cases(db_path=shared_data / TAUBENCH / "tau2_retail_db.json")
    typer.echo(json.dumps({"cases": datasets.write_cases(out, cases), "out": str(out)}))


@eval_app.command("retrieval")
def eval_retrieval(
    dataset: Annotated[Path, typer.Option("--dataset", help="BEIR folder: corpus.jsonl, queries.jsonl, qrels.tsv.")],
    timeout_s: Annotated[float, typer.Option(help="Longest wait for the corpus to be ingested.")] = 1800,
) -> None:
    """Ingest a BEIR corpus through the real ingest path on a fresh stack; print lexical/vector/hybrid metrics."""
    from evals import retrieval

    result = retrieval.evaluate_dataset(dataset, timeout_s=timeout_s)
    typer.echo(json.dumps(result))


@eval_app.command("answers")
def eval_answers(
    dataset: Annotated[
        Path, typer.Option("--dataset", help="BEIR folder: corpus.jsonl, queries.jsonl with answerable and answers.")
    ],
    limit: Annotated[int | None, typer.Option(help="Only the first N queries.")] = None,
    compose: Annotated[
        str, typer.Option(help="extractive (the default answer path) or model (the serving model writes: the gate).")
    ] = "extractive",
    fit: Annotated[
        bool, typer.Option("--fit", help="Also fit the answerability weights on the calibration half.")
    ] = False,
    timeout_s: Annotated[float, typer.Option(help="Longest wait for the corpus to be ingested.")] = 1800,
) -> None:
    """Ingest a BEIR folder on a fresh stack and answer each query through the answer path; print answer quality.

    One JSON line per query on stdout, then the summary: rougeL, declines, grounded_sentence_rate, p50_s,
    by calibration and held-out half. `--compose model` measures the serving model's own replies and
    records the reply-quality gate for its model and adapter.
    """
    from evals import answers

    if compose not in ("extractive", "model"):
        console.print(f"refused: --compose {compose!r}; use extractive or model")
        raise typer.Exit(code=2)
    backend = None
    if compose == "model":
        from streamdesk.agent import backends

        backend = backends.get_backend()
    summary = answers.evaluate_answers(
        dataset,
        limit=limit,
        compose="model" if compose == "model" else "extractive",
        backend=backend,
        timeout_s=timeout_s,
        fit=fit,
        on_result=lambda result: typer.echo(answers.result_line(result)),
    )
    typer.echo(json.dumps(summary))


@eval_app.command("flywheel")
def eval_flywheel(
    shared_data: SharedDataOpt = SHARED_DATA,
    eval_per_intent: Annotated[int, typer.Option(help="Held-out Bitext rows per routed intent.")] = 20,
    train_per_intent: Annotated[int, typer.Option(help="Bitext rows per routed intent for the SFT bootstrap.")] = 25,
    feedback_per_intent: Annotated[
        int, typer.Option(help="Bitext rows per routed intent answered live and reviewed (KTO data).")
    ] = 15,
    tau_limit: Annotated[
        int | None, typer.Option(help="Use only the first N τ²-bench tasks of each split (default: all).")
    ] = None,
    max_steps: Annotated[int, typer.Option(help="KTO optimiser steps; -1 trains for --epochs.")] = 16,
    epochs: Annotated[float, typer.Option(help="KTO passes over the feedback and replayed examples.")] = 1.0,
    learning_rate: Annotated[float, typer.Option(help="KTO learning rate of the LoRA weights.")] = 5e-5,
    sft_max_steps: Annotated[int, typer.Option(help="SFT optimiser steps; -1 trains for --sft-epochs.")] = -1,
    sft_epochs: Annotated[float, typer.Option(help="SFT passes over the bootstrap tickets.")] = 1.0,
    max_length: Annotated[int, typer.Option(help="Tokens per training example (prompt + tool call).")] = 160,
    edit_share: Annotated[
        float, typer.Option(help="Share of wrong drafts the reviewer edits (the rest rejected).")
    ] = 0.5,
    tolerance: Annotated[float, typer.Option(help="How much lower a regression-set metric may go.")] = 0.0,
    seed: Annotated[int, typer.Option(help="Seed of the splits, both trainings and the reviewer.")] = 42,
    seeds: Annotated[
        int | None, typer.Option(min=1, max=3, help="Run the first N of the fixed seeds 42, 7, 1234 instead of --seed.")
    ] = None,
    threads: Annotated[int | None, typer.Option(help="CPU threads for torch.")] = 1,
    keep: Annotated[bool, typer.Option("--keep", help="Keep the run's database and adapters folder.")] = False,
) -> None:
    """Base -> SFT bootstrap -> simulated feedback -> KTO retrain, on held-out tickets; last line is one JSON object."""
    from evals import flywheel

    started = time.perf_counter()
    try:
        options = flywheel.FlywheelOptions(
            shared_data=shared_data,
            eval_per_intent=eval_per_intent,
            train_per_intent=train_per_intent,
            feedback_per_intent=feedback_per_intent,
            tau_limit=tau_limit,
            max_steps=max_steps,
            epochs=epochs,
            learning_rate=learning_rate,
            sft_max_steps=sft_max_steps,
            sft_epochs=sft_epochs,
            max_length=max_length,
            edit_share=edit_share,
            tolerance=tolerance,
            seed=seed,
            threads=threads,
        )
        chosen = flywheel.SEEDS[:seeds] if seeds else (seed,)
        if seeds:
            typer.echo(f"seeds: {list(chosen)}")
        reports = []
        for each in chosen:
            reports.append(flywheel.run_flywheel(dataclasses.replace(options, seed=each), keep=keep))
            if seeds:
                typer.echo(flywheel.seed_line(reports[-1]))
    except StreamdeskError as exc:
        console.print(f"refused: {exc}")
        raise typer.Exit(code=1) from None
    summary = flywheel.seeds_summary(reports) if seeds else reports[0].to_json()
    summary.setdefault("timing_s", {})
    summary["timing_s"]["wall"] = round(time.perf_counter() - started, 1)
    typer.echo(json.dumps(summary))
