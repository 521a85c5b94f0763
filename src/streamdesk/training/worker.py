"""The learn worker (Faust): stores `feedback` signals, relabels, triggers retrains, runs them, rolls back.

- `store_feedback` takes batches from the `feedback` topic and returns to Faust only after they are in the
  database (bad payloads are dead-lettered by the stream error runner, `streams/errors.py`);
- a timer relabels answers with new signals, requests a retrain on the `retrain` topic when one is due,
  and rolls the serving adapter back when its live feedback trails the previous one's;
- `run_retrain` trains one request at a time, on its own thread, and publishes `model` events.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import faust

from streamdesk import db
from streamdesk.config import Settings, get_settings
from streamdesk.contracts import utcnow
from streamdesk.feedback import service as feedback
from streamdesk.feedback.exceptions import AnswersUnavailableError, FeedbackError
from streamdesk.feedback.models import FeedbackEvent
from streamdesk.kafka import Publisher
from streamdesk.streams import app as streams
from streamdesk.streams.deadletter import dead_letter_for, store_dead_letters
from streamdesk.streams.errors import ErrorRunner
from streamdesk.streams.messages import RawMessage, raw_message
from streamdesk.training import service, trigger
from streamdesk.training.config import TrainingSettings, get_training_settings
from streamdesk.training.kto_config import KTOTrainingConfig
from streamdesk.training.models import RetrainRequest

log = logging.getLogger(__name__)


def _feedback_event(message: RawMessage) -> FeedbackEvent:
    return FeedbackEvent.model_validate_json(message.value or b"")


class LearnLoop:
    """The worker's blocking work, run on its own threads: storing, relabelling, triggering, training."""

    def __init__(self, *, settings: Settings, training: TrainingSettings, config: KTOTrainingConfig) -> None:
        self.settings = settings
        self.training = training
        self.config = config
        self.publisher = Publisher(settings.kafka.bootstrap_servers or "", client_id="streamdesk-learn")
        self.relabelled_until: datetime | None = None
        self.errors = ErrorRunner()

    def store(self, messages: list[RawMessage]) -> None:
        """Store a batch of raw feedback messages (verdicts by `record_verdict`'s rules); dead-letter the refused."""
        parsed, letters = self.errors.sort(
            messages,
            _feedback_event,
            what="parsing feedback",
            dead_letter=functools.partial(dead_letter_for, stage="canonical"),
        )
        with db.transaction(db.database_url(self.settings)) as conn:
            feedback.store_feedback(conn, events=[e for _, e in parsed if e.kind not in feedback.VERDICTS])
            for message, event in parsed:
                if event.kind in feedback.VERDICTS:
                    try:
                        feedback.record_verdict(conn, event=event, via="topic")
                    except FeedbackError as exc:
                        letters.append(dead_letter_for(message, exc, stage="canonical"))
            store_dead_letters(conn, letters=letters)

    def tick(self) -> None:
        """Relabel answers with new signals, request a retrain when due, roll back on bad live feedback."""
        started = utcnow()
        with db.connect(db.database_url(self.settings), autocommit=True) as conn:
            answers = feedback.answers_with_feedback(conn, received_after=self.relabelled_until)
            if answers:
                try:
                    stats = feedback.relabel(conn, answer_ids=answers)
                    log.info("relabelled %s", stats.to_json())
                    self.relabelled_until = started
                except AnswersUnavailableError as exc:
                    log.warning("cannot relabel yet: %s", exc)
            request = trigger.check_and_request(conn, publisher=self.publisher, settings=self.training)
            if request is not None:
                log.info("requested retrain %s (%s)", request.request_id, request.reason)
            service.check_live_rollback(conn, settings=self.training, publisher=self.publisher)

    def retrain(self, request: RetrainRequest) -> None:
        """Run one retrain request to its end."""
        with db.connect(db.database_url(self.settings), autocommit=True) as conn:
            outcome = service.run_retrain(
                conn, request=request, config=self.config, settings=self.training, publisher=self.publisher
            )
        log.info("retrain %s: %s %s (%s)", request.request_id, outcome.status, outcome.version, outcome.reason)


def create_app(
    settings: Settings | None = None,
    *,
    training: TrainingSettings | None = None,
    config: KTOTrainingConfig | None = None,
) -> faust.App:
    """The learn Faust app for `settings` (broker and database from there)."""
    settings = settings or get_settings()
    streams.bootstrap_servers(settings)  # no broker: exit before anything loads
    training = training or get_training_settings()
    loop = LearnLoop(settings=settings, training=training, config=config or KTOTrainingConfig.from_env(progress=False))
    io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="learn-io")
    trainer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="learn-train")
    # a retrain runs for minutes: long polls and sessions; offsets committed at Faust's default interval
    app = streams.faust_app(
        "streamdesk-learn",
        settings=settings,
        broker_session_timeout=60.0,
        broker_heartbeat_interval=3.0,
        broker_max_poll_interval=3600.0,
        broker_commit_interval=2.8,
    )

    def raw(name: str) -> faust.TopicT:
        return streams.raw_topic(app, name)

    @app.agent(raw(feedback.FEEDBACK_TOPIC), name="store_feedback")
    async def store_feedback(stream: faust.StreamT) -> None:
        async for events in stream.take_events(500, within=1.0):  # type: ignore[attr-defined]
            messages = [raw_message(e) for e in events]
            await asyncio.get_running_loop().run_in_executor(io, loop.store, messages)

    @app.agent(raw(trigger.RETRAIN_TOPIC), name="run_retrain", concurrency=1)
    async def run_retrain(stream: faust.StreamT) -> None:
        async for value in stream:
            request = RetrainRequest.model_validate_json(value)
            await asyncio.get_running_loop().run_in_executor(trainer, loop.retrain, request)

    @app.timer(interval=training.check_interval_s, name="check_retrain")
    async def check_retrain() -> None:
        await asyncio.get_running_loop().run_in_executor(io, loop.tick)

    @app.on_before_shutdown.connect
    def release(app: Any, /, *_: Any, signal: Any = None, **__: Any) -> None:
        loop.publisher.release()

    return app


def run_worker(settings: Settings | None = None, *, loglevel: str = "info") -> None:
    """Run the learn worker in the foreground until stopped."""
    streams.run_app(create_app(settings), loglevel=loglevel)
