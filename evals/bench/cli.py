"""`streamdesk bench ...`: the benchmarks' commands; each prints one JSON object as its last line."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from evals.cli import SHARED_DATA, SharedDataOpt
from streamdesk.training.kto_config import KTOTrainingConfig

H = KTOTrainingConfig.help_for
bench_app = typer.Typer(help="Benchmarks that print one JSON object as their last line.", no_args_is_help=True)


@bench_app.command("ingest")
def bench_ingest(
    docs: Annotated[int, typer.Option(help="Passages in the throughput phase.")] = 400,
    freshness_s: Annotated[float, typer.Option(help="Length of the freshness phase, in seconds.")] = 30.0,
    shared_data: SharedDataOpt = SHARED_DATA,
) -> None:
    """End-to-end ingest throughput and freshness versus the bare embedder."""
    from evals.bench import ingest

    typer.echo(json.dumps(ingest.run(shared_data=shared_data, docs=docs, freshness_s=freshness_s)))


@bench_app.command("agent")
def bench_agent(
    tickets: Annotated[int, typer.Option(help="τ²-bench test tickets to answer.")] = 6,
    bare_samples: Annotated[int, typer.Option(help="Model calls replayed with plain HF generate.")] = 4,
    max_steps: Annotated[int | None, typer.Option(help="Model steps per ticket (default: answer settings).")] = None,
    shared_data: SharedDataOpt = SHARED_DATA,
) -> None:
    """Answer latency per ticket (retrieval and tools included) and generation speed versus plain HF generate."""
    from evals.bench import agent

    typer.echo(
        json.dumps(agent.run(shared_data=shared_data, tickets=tickets, bare_samples=bare_samples, max_steps=max_steps))
    )


@bench_app.command("roundtrip")
def bench_roundtrip(
    tickets: Annotated[int, typer.Option(help="Signed Zendesk webhooks, each a confirmed cancellation.")] = 20,
    timeout_s: Annotated[float, typer.Option(help="Longest wait for the round trips to settle.")] = 1800,
    shared_data: SharedDataOpt = SHARED_DATA,
) -> None:
    """Ticket in -> reply on the Zendesk stand-in -> approval -> command -> ERP -> CDC confirm -> follow-up."""
    from evals.bench import roundtrip

    typer.echo(json.dumps(roundtrip.run(tickets=tickets, timeout_s=timeout_s, shared_data=shared_data)))


@bench_app.command("hotswap")
def bench_hotswap(
    tickets: Annotated[int, typer.Option(help="Tickets from a known customer, answered while adapters change.")] = 12,
    timeout_s: Annotated[float, typer.Option(help="Longest wait for the answers.")] = 1800,
) -> None:
    """Tickets answered on `up` while the serving adapter is changed 4 times: failed, mixed, swap time."""
    from evals.bench import hotswap

    typer.echo(json.dumps(hotswap.run(tickets=tickets, timeout_s=timeout_s)))


@bench_app.command("retrain")
def bench_retrain(
    examples: Annotated[int, typer.Option(help="Training examples per run.")] = 32,
    max_length: Annotated[int, typer.Option(help=H("max_length"))] = 128,
    batch_size: Annotated[int, typer.Option(help=H("batch_size"))] = 8,
    threads: Annotated[int | None, typer.Option(help=H("threads"))] = None,
) -> None:
    """KTO + LoRA and KTO + QLoRA training throughput and peak memory on this machine."""
    from evals.bench import retrain

    typer.echo(
        json.dumps(retrain.run(examples=examples, max_length=max_length, batch_size=batch_size, threads=threads))
    )


@bench_app.command("retrieval")
def bench_retrieval(
    chunks: Annotated[int, typer.Option(help="Chunks in the store.")] = 100_000,
    base: Annotated[int, typer.Option(help="Real passages embedded and replicated to `chunks`.")] = 2000,
    queries: Annotated[int, typer.Option(help="Queries timed.")] = 200,
    shared_data: SharedDataOpt = SHARED_DATA,
) -> None:
    """Hybrid search latency and recall (plain, 1% and 10% filters, each vector mode) over a large store."""
    from evals.bench import retrieval

    typer.echo(json.dumps(retrieval.run(shared_data=shared_data, chunks=chunks, base=base, queries=queries)))


@bench_app.command("embedders")
def bench_embedders(
    shared_data: SharedDataOpt = SHARED_DATA,
    rounds: Annotated[int, typer.Option(help="Interleaved timing rounds; the best is kept.")] = 3,
) -> None:
    """Throughput and top-10 agreement of the ONNX Runtime embedders (fp32, int8) against fp32 PyTorch."""
    from evals.bench import retrieval

    typer.echo(json.dumps(retrieval.compare_embedders(shared_data=shared_data, rounds=rounds)))
