"""The delivery worker (`streamdesk worker delivery`): answers and replies -> the ticket's helpdesk (Faust).

`deliver_replies` reads auto replies from the `answer` topic and accepted, edited and follow-up replies from
the `reply` topic (`schemas/reply.v1.json`), records each batch in `deliveries` and delivers it
(`service.Deliverer`) before returning the batch to Faust, so offsets are committed only for replies that
are delivered, dead-lettered, or recorded to be retried. A timer delivers what is due in the table: retries,
replies a verdict queued whose topic record never came, and sends a killed worker left unfinished.
"""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor

import faust

from streamdesk import db, telemetry
from streamdesk.agent.answers import ANSWER_TOPIC
from streamdesk.config import Settings, get_settings
from streamdesk.delivery.config import DeliverySettings, get_delivery_settings
from streamdesk.delivery.models import REPLY_TOPIC, AnswerOnTopic, Reply
from streamdesk.delivery.service import Deliverer, enqueue
from streamdesk.kafka import Publisher
from streamdesk.streams.app import bootstrap_servers, faust_app, raw_topic, run_app
from streamdesk.streams.deadletter import dead_letter_for, store_dead_letters
from streamdesk.streams.errors import DECODING, ErrorRunner, crash_on_error
from streamdesk.streams.messages import RawMessage, raw_message

APP_ID = "streamdesk-delivery"


def reply_of(message: RawMessage) -> Reply | None:
    """The reply a message carries: an `answer` event's auto reply (None for other answers), or a `reply` event."""
    if message.topic == ANSWER_TOPIC:
        return AnswerOnTopic.model_validate_json(message.value or b"").reply()
    return Reply.model_validate_json(message.value or b"")


class DeliveryLoop:
    """The worker's blocking work, on its own thread: record a batch, deliver it; deliver what is due."""

    def __init__(self, *, settings: Settings, delivery: DeliverySettings) -> None:
        self.url = db.database_url(settings)
        publisher = Publisher(settings.kafka.bootstrap_servers or "", client_id=APP_ID)
        self.deliverer = Deliverer(database_url=self.url, settings=delivery, publisher=publisher)
        self.errors = ErrorRunner()

    def take(self, messages: list[RawMessage]) -> None:
        """Record the batch's replies (unreadable messages dead-lettered), then deliver each."""
        parsed, letters = DECODING.sort(
            messages, reply_of, what="reading a reply", dead_letter=functools.partial(dead_letter_for, stage="delivery")
        )
        replies = [reply for _, reply in parsed if reply is not None]

        def record() -> None:
            with db.transaction(self.url) as conn:
                enqueue(conn, replies=replies)
                store_dead_letters(conn, letters=letters)

        self.errors.run(record, what="recording replies")
        for reply in replies:
            self.errors.run(functools.partial(self.deliverer.deliver, reply.reply_id), what="delivering a reply")

    def sweep(self) -> None:
        """Deliver the replies due in the table."""
        self.errors.run(self.deliverer.deliver_due, what="delivering due replies")


def create_app(settings: Settings | None = None, *, delivery: DeliverySettings | None = None) -> faust.App:
    """The delivery Faust app: `deliver_replies` on `answer` and `reply`, and the `deliver_due` timer."""
    settings = settings or get_settings()
    delivery = delivery or get_delivery_settings()
    bootstrap_servers(settings)  # no broker: exit before anything starts
    telemetry.configure(settings=settings.telemetry, service_name=APP_ID)
    loop = DeliveryLoop(settings=settings, delivery=delivery)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="delivery")
    app = faust_app(APP_ID, settings=settings)

    @app.agent(raw_topic(app, ANSWER_TOPIC, REPLY_TOPIC), name="deliver_replies")
    @crash_on_error
    async def deliver_replies(stream: faust.StreamT) -> None:
        async for events in stream.take_events(100, within=0.2):  # type: ignore[attr-defined]
            messages = [raw_message(event) for event in events]
            await asyncio.get_running_loop().run_in_executor(executor, loop.take, messages)

    @app.timer(interval=delivery.sweep_interval_s, name="deliver_due")
    async def deliver_due() -> None:
        await asyncio.get_running_loop().run_in_executor(executor, loop.sweep)

    return app


def run_worker(settings: Settings | None = None, *, loglevel: str = "info") -> None:
    """Run the delivery worker in the foreground until stopped."""
    run_app(create_app(settings), loglevel=loglevel)
