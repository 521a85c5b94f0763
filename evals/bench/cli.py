"""`streamdesk bench ...`: the benchmarks' commands; each prints one JSON object as its last line."""

from __future__ import annotations

import json
from pathlib import Path
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


@bench_app.command("cdc")
def bench_cdc(
    events: Annotated[
        int, typer.Option(help="Changes replayed: 70% metadata-only, 10% each deletes, creates, edits.")
    ] = 1000,
    base: Annotated[int, typer.Option(help="Documents loaded before the timed stream.")] = 200,
    timeout_s: Annotated[float, typer.Option(help="Longest wait for streamdesk to store the stream.")] = 1800,
    shared_data: SharedDataOpt = SHARED_DATA,
) -> None:
    """A CDC stream through streamdesk and a LangChain PGVector pipeline (same embedder); both final states checked."""
    from evals.bench import cdc

    typer.echo(json.dumps(cdc.run(shared_data=shared_data, events=events, base=base, timeout_s=timeout_s)))


@bench_app.command("load")
def bench_load(
    search_rps: Annotated[float, typer.Option(help="Searches per second held.")] = 4.0,
    tickets_rps: Annotated[float, typer.Option(help="Ticket submissions per second held.")] = 2.0,
    webhooks_rps: Annotated[float, typer.Option(help="Signed Zendesk webhooks per second held.")] = 4.0,
    duration_s: Annotated[int, typer.Option(help="Length of the run, in seconds.")] = 120,
    users: Annotated[int, typer.Option(help="Locust users per endpoint.")] = 4,
    docs: Annotated[int, typer.Option(help="Knowledge articles stored before the run.")] = 300,
    agent: Annotated[bool, typer.Option("--agent/--no-agent", help="Run the agent (it answers every ticket).")] = False,
    broker_port: Annotated[int, typer.Option(help="Port of up's broker; 0 picks a free one.")] = 0,
    api_port: Annotated[int, typer.Option(help="Port of up's API; 0 picks a free one.")] = 0,
    shared_data: SharedDataOpt = SHARED_DATA,
) -> None:
    """Headless Locust against `streamdesk up`: search, ticket submission, webhooks; rps, p50/p95 and errors each."""
    from evals.bench import load

    rates = {"search": search_rps, "tickets": tickets_rps, "webhooks": webhooks_rps}
    result = load.run(
        shared_data=shared_data,
        rates=rates,
        duration_s=duration_s,
        users=users,
        docs=docs,
        agent=agent,
        broker_port=broker_port,
        api_port=api_port,
    )
    typer.echo(json.dumps(result))


@bench_app.command("soak")
def bench_soak(
    minutes: Annotated[float, typer.Option(help="Length of the steady stream, in minutes.")] = 30,
    rate: Annotated[float, typer.Option(help="Article changes per second (the bench cdc mix).")] = 2.0,
    ticket_every_s: Annotated[float, typer.Option(help="Seconds between tickets through the API; 0: none.")] = 60,
    sample_s: Annotated[float, typer.Option(help="Seconds between lag and memory samples.")] = 10,
    window_min: Annotated[float, typer.Option(help="Minutes compared at the start and the end.")] = 5,
    docs: Annotated[int, typer.Option(help="Knowledge articles stored before the stream.")] = 200,
    agent: Annotated[bool, typer.Option("--agent/--no-agent", help="Run the agent and learn workers.")] = True,
    broker_port: Annotated[int, typer.Option(help="Port of up's broker; 0 picks a free one.")] = 0,
    api_port: Annotated[int, typer.Option(help="Port of up's API; 0 picks a free one.")] = 0,
    shared_data: SharedDataOpt = SHARED_DATA,
) -> None:
    """`streamdesk up` under a steady event stream: consumer lag over time and each process's memory growth."""
    from evals.bench import soak

    result = soak.run(
        shared_data=shared_data,
        minutes=minutes,
        rate=rate,
        ticket_every_s=ticket_every_s,
        sample_s=sample_s,
        window_min=window_min,
        docs=docs,
        agent=agent,
        broker_port=broker_port,
        api_port=api_port,
    )
    typer.echo(json.dumps(result))


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


@bench_app.command("scaleout")
def bench_scaleout(
    workers: Annotated[int, typer.Option(help="Ingest and agent workers per group at the start.")] = 2,
    events: Annotated[int, typer.Option(help="Change events (creates, updates, deletes, re-creates).")] = 5000,
    tickets: Annotated[int, typer.Option(help="Customer ticket events for the agent group.")] = 300,
    disruptions: Annotated[
        int,
        typer.Option(
            help="Workers SIGKILLed or added mid-run, in turn: kill ingest, add agent, kill agent, add ingest."
        ),
    ] = 4,
    publish_s: Annotated[float, typer.Option(help="Seconds over which the events are published.")] = 60.0,
    timeout_s: Annotated[float, typer.Option(help="Longest wait for both groups to catch up.")] = 1800,
    logs: Annotated[Path | None, typer.Option(help="Keep the workers' logs in this folder.")] = None,
) -> None:
    """Several workers per group, workers killed and added mid-run: nothing lost, duplicated or resurrected."""
    from evals.bench import scaleout

    figures = scaleout.run(
        workers=workers, events=events, tickets=tickets, disruptions=disruptions,
        publish_s=publish_s, timeout_s=timeout_s, logs=logs,
    )  # fmt: skip
    typer.echo(json.dumps(figures))


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
