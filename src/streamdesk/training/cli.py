"""The learning loop's commands: `models list|promote|rollback|bootstrap|ship-bootstrap`, `retrain`.

`bench retrain` and `eval flywheel` live in `evals/cli.py`, outside the product.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from streamdesk import db
from streamdesk import terminal as output
from streamdesk.config import REPO_ROOT, get_settings
from streamdesk.feedback import service as feedback
from streamdesk.identity import service as identity
from streamdesk.kafka import Publisher
from streamdesk.training import registry, service, sft, trigger
from streamdesk.training.kto_config import KTOTrainingConfig
from streamdesk.training.models import ModelEvent
from streamdesk.training.sft import SFTTrainingConfig

models_app = typer.Typer(help="The LoRA adapter registry: candidates, serving, rollbacks.", no_args_is_help=True)
retrain_app = typer.Typer(help="Train a new adapter from the labelled feedback.", invoke_without_command=True)
console = Console(stderr=True)
H = KTOTrainingConfig.help_for
S = SFTTrainingConfig.help_for
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
SharedDataOpt = Annotated[Path, typer.Option(help="Folder of the third-party data (shared/data).")]

OperatorOpt = Annotated[
    str,
    typer.Option("--as", envvar="STREAMDESK_OPERATOR", help="Your operator id (`streamdesk operators list`)."),
]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why; kept in the audit trail.")]


def _publisher() -> Publisher | None:
    bootstrap = get_settings().kafka.bootstrap_servers
    return Publisher(bootstrap, client_id="streamdesk-models") if bootstrap else None


@models_app.command("list")
def list_models(as_json: output.JsonOpt = False) -> None:
    """Every registered adapter, newest first, with status, parent, data digest and gate verdict."""
    with db.connect(autocommit=True) as conn:
        versions = registry.list_versions(conn)
    if as_json:
        output.print_json([version.model_dump(mode="json") for version in versions])
        return
    table = Table(title="adapters")
    for column in ("version", "status", "parent", "examples", "margin", "gate", "dataset", "created"):
        table.add_column(column)
    for v in versions:
        gate = "-" if v.gate is None else ("passed" if v.gate.get("passed") else "failed")
        table.add_row(
            v.version,
            v.status,
            v.parent or "base",
            str(v.metrics.get("examples", "-")),
            str(v.metrics.get("rewards/margins", "-")),
            gate,
            v.dataset_digest[:12],
            v.created_at.isoformat(timespec="seconds"),
        )
    Console().print(table)


def _change_serving(
    change: Callable[..., ModelEvent],
    *,
    operator_id: str,
    reason: str,
    as_json: bool,
    message: Callable[[ModelEvent], str],
    **target: str,
) -> None:
    """Run a registry `change` (promote or rollback) as the operator; print its event or `message`."""
    with output.refusals():
        actor = identity.operator(operator_id=operator_id).id
        with db.connect(autocommit=True) as conn:
            event = change(conn, **target, actor=actor, actor_kind="user", reason=reason, publisher=_publisher())
    output.announce(event.model_dump(mode="json"), as_json=as_json, message=message(event))


@models_app.command("promote")
def promote(
    version: str, operator_id: OperatorOpt, reason: ReasonOpt = "promoted by hand", as_json: output.JsonOpt = False
) -> None:
    """Serve adapter VERSION now (the serving one is retired); audited and announced on the `model` topic."""
    _change_serving(
        registry.promote,
        version=version,
        operator_id=operator_id,
        reason=reason,
        as_json=as_json,
        message=lambda event: f"{event.version} now serves {event.base_model} (was {event.previous or 'base model'})",
    )


@models_app.command("rollback")
def rollback(
    operator_id: OperatorOpt, reason: ReasonOpt = "rolled back by hand", as_json: output.JsonOpt = False
) -> None:
    """Retire the serving adapter and restore the one it replaced; audited and announced."""
    _change_serving(
        registry.rollback,
        base_model=service.BASE_MODEL,
        operator_id=operator_id,
        reason=reason,
        as_json=as_json,
        message=lambda event: f"rolled back {event.previous}; {event.version or 'the base model'} serves again",
    )


@retrain_app.callback()
def retrain(
    now: Annotated[bool, typer.Option("--now", help="Train here and now instead of asking the learn worker.")] = False,
    promote: Annotated[bool, typer.Option("--promote/--no-promote", help="Promote when the gate passes.")] = True,
    max_steps: Annotated[int, typer.Option(help=H("max_steps"))] = -1,
    epochs: Annotated[float, typer.Option(help=H("epochs"))] = 1.0,
    batch_size: Annotated[int, typer.Option(help=H("batch_size"))] = 4,
    max_length: Annotated[int, typer.Option(help=H("max_length"))] = 128,
    learning_rate: Annotated[float, typer.Option(help=H("learning_rate"))] = 5e-4,
    quantization: Annotated[str, typer.Option(help=H("quantization"))] = "none",
    seed: Annotated[int, typer.Option(help=H("seed"))] = 42,
    as_json: output.JsonOpt = False,
) -> None:
    """Ask for a retrain on the `retrain` topic, or with --now train, gate and promote in this process."""
    with output.refusals():
        config = KTOTrainingConfig(
            max_steps=max_steps,
            epochs=epochs,
            batch_size=batch_size,
            max_length=max_length,
            learning_rate=learning_rate,
            quantization=quantization,  # type: ignore[arg-type]
            seed=seed,
            progress=output.show_progress(as_json=as_json),
        )
        publisher = _publisher()
        if not now and publisher is None:
            raise typer.BadParameter("no broker to ask: set KAFKA_BOOTSTRAP_SERVERS, or use --now")
        with db.connect(autocommit=True) as conn:
            request = trigger.request_retrain(
                conn,
                reason="manual",
                pending=feedback.pending_balance(conn),
                requested_by="cli",
                publisher=None if now else publisher,
            )
            if not now:
                output.announce(
                    {"request_id": request.request_id, "status": "requested"},
                    as_json=as_json,
                    message=f"retrain {request.request_id} requested; the learn worker will run it",
                )
                return
            with output.stdout_to_stderr(enabled=as_json):
                outcome = service.run_retrain(
                    conn, request=request, config=config, publisher=publisher, auto_promote=promote
                )
    output.emit(outcome.to_json(), as_json=as_json, title="retrain")


@models_app.command("bootstrap")
def bootstrap(
    shared_data: SharedDataOpt = SHARED_DATA,
    train_per_intent: Annotated[int, typer.Option(help="Bitext rows per routed intent to train on.")] = 25,
    promote: Annotated[bool, typer.Option("--promote/--no-promote", help="Serve the adapter right away.")] = False,
    epochs: Annotated[float, typer.Option(help=S("epochs"))] = 1.0,
    max_steps: Annotated[int, typer.Option(help=S("max_steps"))] = -1,
    batch_size: Annotated[int, typer.Option(help=S("batch_size"))] = 8,
    max_length: Annotated[int, typer.Option(help=S("max_length"))] = 160,
    learning_rate: Annotated[float, typer.Option(help=S("learning_rate"))] = 1e-3,
    seed: Annotated[int, typer.Option(help=S("seed"))] = 42,
    threads: Annotated[int | None, typer.Option(help=S("threads"))] = None,
    as_json: output.JsonOpt = False,
) -> None:
    """Train the SFT LoRA adapter on resolved tickets (τ²-bench train split, Bitext routes); register it."""
    with output.refusals():
        config = SFTTrainingConfig(
            epochs=epochs,
            max_steps=max_steps,
            batch_size=batch_size,
            max_length=max_length,
            learning_rate=learning_rate,
            seed=seed,
            threads=threads,
            progress=output.show_progress(as_json=as_json),
        )
        tickets = sft.historical_tickets(shared_data=shared_data, train_per_intent=train_per_intent, seed=seed)
        publisher = _publisher()
        with db.connect(autocommit=True) as conn:
            with output.stdout_to_stderr(enabled=as_json):
                version = sft.bootstrap(conn, tickets=tickets, config=config, publisher=publisher)
            if promote:
                registry.promote(
                    conn,
                    version=version.version,
                    actor=sft.BOOTSTRAP_ACTOR,
                    reason="SFT bootstrap",
                    publisher=publisher,
                )
                version = registry.get(conn, version=version.version)
    output.emit(version.model_dump(mode="json"), as_json=as_json, title=f"adapter {version.version}")


@models_app.command("ship-bootstrap")
def ship_bootstrap(
    threads: Annotated[int | None, typer.Option(help=S("threads"))] = None, as_json: output.JsonOpt = False
) -> None:
    """Re-create the default bootstrap shipped in the package (`up`'s data and config); only a gate-promoted one."""
    from streamdesk.agent import model_cache
    from streamdesk.training import default_adapter

    with output.refusals(), output.stdout_to_stderr(enabled=as_json):
        shipped = default_adapter.ship(model_dir=model_cache.ensure_model(), threads=threads)
    output.emit(shipped.info | {"path": str(shipped.path)}, as_json=as_json, title="shipped bootstrap")
