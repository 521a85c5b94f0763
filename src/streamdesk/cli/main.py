"""`streamdesk`: run the platform, its workers and its tools."""

from __future__ import annotations

import importlib
import os
import signal
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from streamdesk import db
from streamdesk import terminal as output
from streamdesk.audit.cli import audit_app
from streamdesk.cli.plugins import register_plugins
from streamdesk.config import REPO_ROOT, get_settings, reset_settings
from streamdesk.delivery.cli import standin_app
from streamdesk.identity.cli import operators_app
from streamdesk.logs import configure_logging
from streamdesk.policy.cli import approvals_app

app = typer.Typer(help="streamdesk: enterprise events in, grounded answers out.", no_args_is_help=True)
worker_app = typer.Typer(help="Run one worker in the foreground.", no_args_is_help=True)
topics_app = typer.Typer(help="The topic registry.", no_args_is_help=True)
app.add_typer(worker_app, name="worker")
app.add_typer(topics_app, name="topics")
app.add_typer(audit_app, name="audit")
app.add_typer(approvals_app, name="approvals")
app.add_typer(operators_app, name="operators")
app.add_typer(standin_app, name="standin")
console = Console(stderr=True)

SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
JsonOpt = output.JsonOpt


@app.callback()
def main(verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False) -> None:
    """Set up logging and offline model loading for every command."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    configure_logging(level="DEBUG" if verbose else get_settings().telemetry.log_level)


def _emit(data: dict[str, Any], *, as_json: bool, title: str) -> None:
    output.emit(data, as_json=as_json, title=title)


@app.command()
def migrate() -> None:
    """Apply database migrations (DATABASE_URL)."""
    db.migrate()
    console.print("migrations applied")


@topics_app.command("create")
def topics_create(as_json: JsonOpt = False) -> None:
    """Create every topic of the registry that does not exist (KAFKA_BOOTSTRAP_SERVERS)."""
    from streamdesk import topics

    bootstrap = get_settings().kafka.bootstrap_servers
    if not bootstrap:
        raise typer.BadParameter("set KAFKA_BOOTSTRAP_SERVERS")
    created = topics.ensure_topics(bootstrap, replication_factor=get_settings().kafka.replication_factor)
    if as_json:
        output.print_json({"created": created})
        return
    console.print(f"created {len(created)} topics: {', '.join(created) or '-'}")


@topics_app.command("list")
def topics_list(as_json: JsonOpt = False) -> None:
    """Show the topic registry."""
    from streamdesk import topics

    specs = {
        s.name: {
            "schema": s.schema,
            "partitions": s.partitions,
            "max_message_bytes": topics.max_message_bytes(s.name),
            "key": s.key,
        }
        for s in topics.registry().values()
    }
    _emit(specs, as_json=as_json, title="topics")


WORKERS: dict[str, tuple[str, str]] = {
    "ingest": ("streamdesk.ingest.app", "Raw -> canonical -> chunks/embeddings/rows (Faust)."),
    "agent": ("streamdesk.agent.worker", "ticket.stored -> answers -> `answer` topic (Faust, the configured model)."),
    "relay": (
        "streamdesk.gateway.relay",
        "Stored webhook deliveries -> their raw topics, re-published until ingest has processed them.",
    ),
    "audit-relay": (
        "streamdesk.audit.relay",
        "Committed audit records -> the `audit` topic, in chain order, woken by each commit.",
    ),
    "delivery": (
        "streamdesk.delivery.worker",
        "Auto replies (`answer`) and accepted, edited and follow-up replies (`reply`) -> the ticket's helpdesk.",
    ),
    "commands": (
        "streamdesk.agent.follow_ups",
        "Approved writes -> outbox commands -> `command.<system>`; rejections, timeouts, follow-up answers.",
    ),
    "reference-erp": (
        "streamdesk.reference_erp.worker",
        "The seeded world's ERP: applies `command.erp` once per key, emits Debezium changes on the raw topics.",
    ),
    "learn": (
        "streamdesk.training.worker",
        "Feedback -> labels -> retrain trigger -> training -> gate -> promotion (Faust).",
    ),
}
"""`streamdesk worker NAME`: the module whose `run_worker` runs it (imported only then), and what it does."""


def _serving_adapter() -> str | None:
    """The registry's promoted adapter of the agent's base model (None: the base model serves)."""
    from streamdesk.training import registry, service

    with db.connect(autocommit=True) as conn:
        serving = registry.serving(conn, base_model=service.BASE_MODEL)
    return None if serving is None else serving.version


def _follow_promoted_adapter() -> dict[str, Any]:
    """The agent starts on the registry's promoted adapter and follows the `model` topic from there.

    STREAMDESK_ANSWER__ADAPTER pins the adapter instead (no following), as does a non-local backend.
    """
    if os.environ.get("STREAMDESK_ANSWER__ADAPTER") or get_settings().agent.backend != "transformers":
        return {}
    serving = _serving_adapter()
    if serving is not None:
        os.environ["STREAMDESK_ANSWER__ADAPTER"] = serving
        reset_settings()
    return {"resolve": _serving_adapter}


def _add_worker(name: str, module: str, summary: str) -> None:
    def run() -> None:
        options = _follow_promoted_adapter() if name == "agent" else {}
        importlib.import_module(module).run_worker(**options)

    worker_app.command(name, help=summary)(run)


for _name, (_module, _summary) in WORKERS.items():
    _add_worker(_name, _module, _summary)


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="Bind address.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
) -> None:
    """Serve the HTTP API and webhook gateway."""
    import uvicorn

    settings = get_settings()
    uvicorn.run(
        "streamdesk.api.app:create_app",
        factory=True,
        host=host or settings.api_host,
        port=port or settings.api_port,
        log_level="warning",
    )


@app.command()
def replay(
    what: Annotated[
        list[str] | None,
        typer.Option(help="Sample sets: taubench, knowledge (help centre + policy), banking (own tenant), tickets."),
    ] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many records per set.")] = None,
    shared_data: Annotated[Path, typer.Option(help="Folder of the third-party data.")] = SHARED_DATA,
    as_json: JsonOpt = False,
) -> None:
    """Publish the bundled sample events (tau2 retail world as Debezium CDC, knowledge articles)."""
    from streamdesk.seed import service as seed

    if what is None:
        what = ["taubench", "knowledge"]
    bootstrap = get_settings().kafka.bootstrap_servers
    if not bootstrap:
        raise typer.BadParameter("set KAFKA_BOOTSTRAP_SERVERS (or use `streamdesk up --seed`)")
    summary = seed.replay(
        bootstrap_servers=bootstrap,
        shared_data=shared_data,
        what=what,
        limit=limit,
        progress=output.show_progress(as_json=as_json),
    )
    _emit(summary.as_dict(), as_json=as_json, title="replayed")


@app.command()
def status(as_json: JsonOpt = False) -> None:
    """What the store holds, and the ingest worker's lag."""
    from streamdesk.ingest import status as ingest_status

    with db.connect() as conn:
        data = ingest_status.store_counts(conn)
    bootstrap = get_settings().kafka.bootstrap_servers
    if bootstrap:
        data["lag"] = ingest_status.ingest_lag(bootstrap)
    _emit(data, as_json=as_json, title="streamdesk status")


def _wait_until_caught_up(bootstrap: str, *, timeout_s: float, quiet_s: float = 3.0) -> dict[str, Any]:
    """Poll until the ingest lag is zero and the store stops changing; return the counts."""
    from streamdesk.ingest import status as ingest_status

    deadline = time.monotonic() + timeout_s
    last: dict[str, Any] | None = None
    stable_since = time.monotonic()
    while time.monotonic() < deadline:
        with db.connect() as conn:
            counts = ingest_status.store_counts(conn)
        lag = sum(ingest_status.ingest_lag(bootstrap).values())
        if counts != last:
            last, stable_since = counts, time.monotonic()
        if lag == 0 and time.monotonic() - stable_since >= quiet_s:
            return counts
        time.sleep(1.0)
    raise typer.Exit(code=1)


def _show_answers(supervisor: Any, *, timeout_s: float) -> None:
    """Print each sample ticket's answer (reply, citations, tool trace) as it is stored, then a summary."""
    from streamdesk.cli import samples

    waiting = samples.show_sample_answers(
        poll=supervisor.poll, shared_data=SHARED_DATA, timeout_s=timeout_s, console=console
    )
    if waiting:
        console.print(f"no answer yet for tickets {waiting}; see {get_settings().state_dir / 'logs'}")


def _show_deliveries(supervisor: Any, *, timeout_s: float) -> None:
    """Wait (up to `timeout_s`) for the sample auto replies to reach the helpdesk, then say how many went out."""
    from streamdesk.delivery import service as delivery

    deadline = time.monotonic() + timeout_s
    while True:
        with db.connect(autocommit=True) as conn:
            counts = delivery.status_counts(conn)
        if not counts["auto_replies_waiting"] or time.monotonic() > deadline:
            break
        supervisor.poll()
        time.sleep(1.0)
    console.print(
        f"helpdesk {counts.get('delivered', 0)} replies delivered, {counts.get('dead_lettered', 0)} refused, "
        f"{counts['auto_replies_waiting']} still on their way; drafts go out once accepted in the console "
        "(GET /deliveries)",
        markup=False,
        highlight=False,
    )


def _stop_in_order(supervisor: Any, *, plat: Any, settings: Any) -> None:
    """Stop intake (the API) first, let ingest and the relays drain within the bound, then stop the workers."""
    from streamdesk.runtime.drain import drain

    runtime = settings.runtime
    console.print("stopping: intake (api) first ...")
    supervisor.stop(runtime.worker_stop_timeout_s, names=["api"])
    console.print(f"draining: ingest, the webhook and audit relays (at most {runtime.drain_timeout_s:.0f}s) ...")
    result = drain(
        bootstrap_servers=plat.bootstrap_servers,
        database_url=plat.database_url,
        timeout_s=runtime.drain_timeout_s,
        quiet_s=runtime.drain_quiet_s,
    )
    if result.drained:
        console.print(
            f"drained in {result.seconds:.1f}s: ingest lag 0, every stored webhook and audit record published"
        )
    else:
        console.print(
            f"drain timed out after {result.seconds:.0f}s: ingest lag {result.lag or 0}, "
            f"{result.unpublished_webhooks} webhooks and {result.unpublished_audit} audit records unpublished "
            "(they are relayed again at the next start)"
        )
    console.print("stopping workers ...")
    supervisor.stop(runtime.worker_stop_timeout_s)


def _recover_broker(supervisor: Any, *, plat: Any, settings: Any, with_agent: bool) -> None:
    """The embedded broker died: restart it, refill it from PostgreSQL, and restart the workers on it."""
    from streamdesk.runtime.service import refill_fresh_broker, restart_embedded_broker

    console.print("the embedded broker died; restarting it and the workers (stored webhooks are relayed again)")
    workers = [name for name in supervisor.names() if name not in ("api", "zendesk-standin")]
    supervisor.stop(min(5.0, settings.runtime.worker_stop_timeout_s), names=workers)
    restart_embedded_broker(plat=plat, settings=settings)
    refill_fresh_broker(plat=plat, answer_tickets=with_agent)
    supervisor.start(workers)


def _serve_default_adapter(*, bootstrap_servers: str) -> None:
    """Train (once per machine), register and gate the SFT bootstrap; the agent serves it if the gate prefers it."""
    from streamdesk.kafka import Publisher
    from streamdesk.training import default_adapter

    console.print("adapter  preparing the SFT bootstrap (shipped with the package; trained only when stale) ...")
    with db.connect(autocommit=True) as conn, Publisher(bootstrap_servers, client_id="streamdesk-up") as publisher:
        outcome = default_adapter.serve(conn, publisher=publisher)
    console.print(outcome.describe(), markup=False, highlight=False, soft_wrap=True)


def _first_admin_line(*, database_url: str, settings: Any, with_api: bool) -> str | None:
    """Create the first admin when no operator exists; the printout's line on how to sign in (None: nothing to say)."""
    from streamdesk.identity import first_run

    with db.transaction(database_url) as conn:
        outcome = first_run.ensure_first_admin(conn, state_dir=settings.state_dir)
    if outcome is None:
        return None
    where = f"http://{settings.api_host}:{settings.api_port}/console  " if with_api else ""
    return f"console  {where}{outcome.describe()}"


def _add_delivery(supervisor: Any, *, env: dict[str, str], logs: Path) -> str:
    """Add the delivery worker; with no helpdesk configured, also the local Zendesk stand-in it delivers to.

    Returns the printout's line saying where replies go.
    """
    from streamdesk.delivery.config import get_delivery_settings
    from streamdesk.runtime.embedded import free_port
    from streamdesk.runtime.supervisor import streamdesk_argv

    delivery = get_delivery_settings()
    worker_env = dict(env)
    if delivery.zendesk_url or delivery.webhook_url:
        where = delivery.zendesk_url or delivery.webhook_url
        line = f"helpdesk {where}  replies are delivered there (worker delivery)"
    else:
        port, received = free_port(), logs / "zendesk-standin.jsonl"
        argv = ["standin", "zendesk", "--port", str(port), "--received", str(received)]
        supervisor.add("zendesk-standin", streamdesk_argv(*argv), env=env, log_path=str(logs / "zendesk-standin.log"))
        worker_env |= {
            "STREAMDESK_DELIVERY__ZENDESK_URL": f"http://127.0.0.1:{port}",
            "STREAMDESK_DELIVERY__ZENDESK_EMAIL": "streamdesk@standin.invalid",
            "STREAMDESK_DELIVERY__ZENDESK_API_TOKEN": "standin",
        }
        line = (
            f"helpdesk http://127.0.0.1:{port}  local Zendesk stand-in (no STREAMDESK_DELIVERY__ZENDESK_URL set): "
            f"replies are posted there as ticket comments; what it received is in {received}"
        )
    supervisor.add(
        "delivery", streamdesk_argv("worker", "delivery"), env=worker_env, log_path=str(logs / "delivery.log")
    )
    return line


def supervise_workers(
    supervisor: Any, *, env: dict[str, str], logs: Path, with_agent: bool, with_api: bool, workers: int
) -> str:
    """Add every worker `streamdesk up` runs to `supervisor`, `workers` of each scaled group (ingest, agent).

    Returns the printout's line saying where replies go ("" without the agent). docker-compose.yml runs the
    same workers (tests/test_compose.py compares them).
    """
    from streamdesk.runtime.supervisor import streamdesk_argv

    supervisor.add_replicas("ingest", streamdesk_argv("worker", "ingest"), env=env, replicas=workers, log_dir=logs)
    for name in ("relay", "audit-relay", "commands", "reference-erp"):
        supervisor.add(name, streamdesk_argv("worker", name), env=env, log_path=str(logs / f"{name}.log"))
    helpdesk = ""
    if with_agent:
        supervisor.add_replicas("agent", streamdesk_argv("worker", "agent"), env=env, replicas=workers, log_dir=logs)
        supervisor.add("learn", streamdesk_argv("worker", "learn"), env=env, log_path=str(logs / "learn.log"))
        helpdesk = _add_delivery(supervisor, env=env, logs=logs)
    if with_api:
        supervisor.add("api", streamdesk_argv("api"), env=env, log_path=str(logs / "api.log"))
    return helpdesk


def _run_platform(
    *, seed: bool, stay: bool, with_api: bool, timeout_s: float, with_agent: bool = False, workers: int | None = None
) -> None:
    from streamdesk.exceptions import ConfigurationError
    from streamdesk.retrieval import cutover
    from streamdesk.runtime.service import check_replicas, platform, refill_fresh_broker
    from streamdesk.runtime.supervisor import Supervisor, child_env

    settings = get_settings()
    workers = workers or settings.runtime.workers
    try:
        check_replicas(workers)
    except ConfigurationError as exc:
        raise typer.BadParameter(str(exc), param_hint="--workers / STREAMDESK_RUNTIME__WORKERS") from exc
    with platform(settings) as plat:
        supervisor = Supervisor()
        logs = settings.state_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        env = child_env(KAFKA_BOOTSTRAP_SERVERS=plat.bootstrap_servers, DATABASE_URL=plat.database_url)
        helpdesk = supervise_workers(
            supervisor,
            env=env,
            logs=logs,
            with_agent=with_agent,
            with_api=with_api,
            workers=workers,
        )
        if plat.embedded_broker:
            refill_fresh_broker(plat=plat, answer_tickets=with_agent)
        if with_agent and settings.runtime.bootstrap_adapter and settings.agent.backend == "transformers":
            _serve_default_adapter(bootstrap_servers=plat.bootstrap_servers)
        sign_in = _first_admin_line(database_url=plat.database_url, settings=settings, with_api=with_api)
        supervisor.start()
        threading.Thread(  # a store embedded by another model moves to the settings' one while everything runs
            target=cutover.follow_settings, args=(plat.database_url,), name="embedding-cutover", daemon=True
        ).start()
        stop = {"now": False}

        def _stop(*_: object) -> None:
            stop["now"] = True

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started with SIGINT ignored (`cmd &`)
        try:
            console.print(f"broker   {plat.bootstrap_servers}" + (" (embedded Tansu)" if plat.embedded_broker else ""))
            console.print("database " + ("embedded PostgreSQL 18 + pgvector" if plat.embedded_database else "external"))
            if with_api:
                console.print(f"api      http://{settings.api_host}:{settings.api_port}  (logs in {logs})")
            if sign_in:
                console.print(sign_in, markup=False, highlight=False, soft_wrap=True)
            if helpdesk:
                console.print(helpdesk, markup=False, highlight=False, soft_wrap=True)
            if seed:
                replay(what=["taubench", "knowledge", "requesters"], limit=None, shared_data=SHARED_DATA, as_json=False)
                console.print("waiting for ingest to catch up ...")
                counts = _wait_until_caught_up(plat.bootstrap_servers, timeout_s=timeout_s)
                _emit(counts, as_json=False, title="ingested")
                if with_agent:
                    replay(what=["tickets"], limit=None, shared_data=SHARED_DATA, as_json=False)
                    console.print("the agent is answering the sample tickets (the model loads first) ...")
                    _show_answers(supervisor, timeout_s=timeout_s)
                    _show_deliveries(supervisor, timeout_s=60)
            if stay:
                console.print("running; Ctrl-C stops everything")
                while not stop["now"]:
                    supervisor.poll()
                    if plat.broker is not None and not plat.broker.is_running():
                        _recover_broker(supervisor, plat=plat, settings=settings, with_agent=with_agent)
                    time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not abandon the workers
            _stop_in_order(supervisor, plat=plat, settings=settings)


@app.command()
def up(
    seed: Annotated[bool, typer.Option(help="Replay the bundled sample events first.")] = False,
    with_api: Annotated[bool, typer.Option("--api/--no-api", help="Also serve the HTTP API.")] = True,
    with_agent: Annotated[
        bool, typer.Option("--agent/--no-agent", help="Also run the ticket agent and the learning worker.")
    ] = True,
    timeout_s: Annotated[float, typer.Option(help="Longest wait for the seed to be ingested.")] = 1800,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Processes per scaled worker group (ingest, agent), sharing its partitions "
            "(default: STREAMDESK_RUNTIME__WORKERS, 1).",
        ),
    ] = None,
) -> None:
    """Start the platform (embedded broker and database unless configured) and its workers until Ctrl-C."""
    _run_platform(seed=seed, stay=True, with_api=with_api, timeout_s=timeout_s, with_agent=with_agent, workers=workers)


@app.command()
def demo(
    timeout_s: Annotated[float, typer.Option(help="Longest wait for the seed to be ingested.")] = 1800,
) -> None:
    """Start everything, ingest the bundled samples end to end, print a summary, and stop."""
    _run_platform(seed=True, stay=False, with_api=False, timeout_s=timeout_s)


# The learning loop (issue 5): feedback export, adapter registry, retraining, the learn worker.
from streamdesk.feedback.cli import feedback_app  # noqa: E402
from streamdesk.training.cli import models_app, retrain_app  # noqa: E402

app.add_typer(feedback_app, name="feedback")
app.add_typer(models_app, name="models")
app.add_typer(retrain_app, name="retrain")

# Retrieval (issue 3): search, the embedding cut-over.
from streamdesk.cli import retrieval as retrieval_cli  # noqa: E402

app.command("search")(retrieval_cli.search)
app.add_typer(retrieval_cli.embeddings_app, name="embeddings")

# Evaluations and benchmarks (`eval ...`, `bench ...`): the `evals` package, outside the product (cli/plugins.py).
register_plugins(app)


if __name__ == "__main__":
    app()
