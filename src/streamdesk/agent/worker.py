"""The agent worker (`streamdesk worker agent`): ticket.stored -> answers table -> `answer` topic (Faust).

It reads `ticket.stored`, not `canonical.ticket`: the ingest ticket hop publishes there only after the
ticket is committed, with the ticket as stored, so an answer never depends on a row not yet written.

Like the ingest agents it takes a batch, works on an executor thread (`service.AnswerService`), and
returns to Faust only once every answer of the batch is stored and published; Faust commits the batch's
offsets only then, and an error escaping a batch exits the worker before that commit (`streams/errors.py`).
A worker that dies mid-batch is restarted and redoes it: answers are idempotent on the ticket event id,
writes on their idempotency keys. Its audit records reach the `audit` topic through the audit relay
(`streamdesk worker audit-relay`).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import faust

from streamdesk import telemetry, topics
from streamdesk.agent import config as agent_config
from streamdesk.agent import hotswap
from streamdesk.agent.answer_config import get_answer_settings
from streamdesk.agent.service import AnswerService
from streamdesk.config import Settings, get_settings
from streamdesk.streams.app import bootstrap_servers, faust_app, raw_topic, run_app
from streamdesk.streams.errors import crash_on_error
from streamdesk.streams.messages import raw_message

APP_ID = "streamdesk-agent"


def create_app(
    settings: Settings | None = None, *, service: AnswerService | None = None, resolve: hotswap.Resolve | None = None
) -> faust.App:
    """The agent's Faust app: one agent, `answer_tickets`, on ticket.stored.

    With `resolve` (the registry's serving adapter) the worker follows the `model` topic and swaps adapters
    between tickets (`agent/hotswap.py`); without it, it serves the configured adapter only.
    """
    settings = settings or get_settings()
    answer_settings = get_answer_settings()
    servers = bootstrap_servers(settings)
    telemetry.configure(settings=settings.telemetry, service_name=APP_ID)
    telemetry.configure_metrics(settings=settings.telemetry, service_name=APP_ID)
    telemetry.watch_consumer_lag(bootstrap_servers=servers, group=APP_ID, topic_names=[topics.STORED_TICKET])
    service = service or AnswerService.from_settings(settings)  # the model loads before the worker joins
    if resolve is not None:
        hotswap.AdapterFollower(
            bootstrap_servers=servers,
            base_model=agent_config.MODEL_CACHE_NAME,
            serving=service.answer_settings.adapter,
            prepare=service.prepare_adapter,
            resolve=resolve,
        ).start()
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="agent")
    app = faust_app(APP_ID, settings=settings, broker_max_poll_interval=answer_settings.worker_max_poll_interval_s)
    tickets = raw_topic(app, topics.STORED_TICKET)

    @app.agent(tickets, name="answer_tickets")
    @crash_on_error
    async def answer_tickets(stream: faust.StreamT) -> None:
        async for events in stream.take_events(  # type: ignore[attr-defined]
            answer_settings.worker_batch, within=0.2
        ):
            messages = [raw_message(event) for event in events]
            await asyncio.get_running_loop().run_in_executor(executor, service.handle_batch, messages)

    @app.on_before_shutdown.connect
    def release(app: Any, /, *_: Any, signal: Any = None, **__: Any) -> None:
        service.close()

    return app


def run_worker(
    settings: Settings | None = None, *, loglevel: str = "info", resolve: hotswap.Resolve | None = None
) -> None:
    """Run the agent worker in the foreground until stopped (following the registry when `resolve` is given)."""
    run_app(create_app(settings, resolve=resolve), loglevel=loglevel)
