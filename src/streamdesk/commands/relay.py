"""The command relay (`streamdesk worker commands`): outbox commands -> `command.<system>`, and their ends.

On the outbox-relay base (`streams/relay.py`), woken by the NOTIFY `service.enqueue` sends at commit, it
publishes each command at least once (a system of record dedupes on the idempotency key). Between
batches it reads the systems' rejections from `command.outcome` (the command fails), escalates commands
whose change has not come back within `confirm_timeout_s`, and hands every resolved command to the
follow-up callback (the agent's: an answer for the ticket).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import psycopg
from confluent_kafka import Consumer, KafkaException

from streamdesk.commands import service
from streamdesk.commands.config import CommandSettings, get_command_settings
from streamdesk.commands.models import OUTCOME_TOPIC, CommandOutcome, TrackedCommand
from streamdesk.config import Settings
from streamdesk.kafka import Publisher, PublishError
from streamdesk.streams.relay import OutboxRelay

log = logging.getLogger(__name__)
OUTCOME_GROUP = "streamdesk-commands"
FollowUp = Callable[[psycopg.Connection, TrackedCommand, Publisher], None]
"""`follow_up(conn, command, publisher)`: tell the customer how a resolved command ended."""
CarryOut = Callable[[psycopg.Connection], int]
"""`carry_out(conn)`: issue the commands of writes approved since the agent's turn; return how many."""


def _nothing_to_carry_out(conn: psycopg.Connection) -> int:
    return 0


class CommandRelay(OutboxRelay):
    """Publishes outbox commands to their systems' topics and tracks each to confirmed, failed or escalated."""

    name = "command-relay"
    channel = service.CHANNEL

    def __init__(
        self,
        *,
        settings: Settings,
        follow_up: FollowUp,
        carry_out: CarryOut = _nothing_to_carry_out,
        command_settings: CommandSettings | None = None,
    ) -> None:
        self.commands = command_settings or get_command_settings()
        super().__init__(settings=settings, interval_s=self.commands.relay_interval_s)
        self.follow_up = follow_up
        self.carry_out = carry_out
        self._consumer: Consumer | None = None

    @property
    def consumer(self) -> Consumer:
        """The consumer of the systems' rejections."""
        if self._consumer is None:
            self._consumer = Consumer(
                {
                    "bootstrap.servers": self.settings.kafka.bootstrap_servers,
                    "group.id": OUTCOME_GROUP,
                    "auto.offset.reset": "earliest",
                    "enable.auto.commit": False,
                }
            )
            self._consumer.subscribe([OUTCOME_TOPIC])
        return self._consumer

    def relay_once(self) -> int:
        """Carry out approved writes, publish the next batch of unpublished commands, wait for the broker, record."""
        self.carry_out(self.conn)
        commands = service.unpublished(self.conn, limit=self.commands.relay_batch)
        if not commands:
            return 0
        for command in commands:
            self.publisher.publish(
                command.topic,
                command.to_json(),
                key=command.idempotency_key,
                headers={"idempotency-key": command.idempotency_key},
            )
        self.flush()
        service.mark_published(self.conn, command_ids=[c.command_id for c in commands])
        log.info("relayed %d commands", len(commands))
        return len(commands)

    def tidy(self) -> None:
        """Rejections in, overdue commands escalated, follow-ups out."""
        self.take_outcomes()
        overdue = service.escalate_overdue(self.conn, older_than_s=self.commands.confirm_timeout_s)
        if overdue:
            log.warning(
                "escalated %d commands with no change back in %.0fs", len(overdue), self.commands.confirm_timeout_s
            )
        self.send_follow_ups()

    def take_outcomes(self, *, timeout_s: float = 0.2) -> int:
        """Fail the commands the systems rejected; commit the offsets once recorded."""
        try:
            messages = self.consumer.consume(500, timeout=timeout_s)
        except KafkaException as exc:
            raise PublishError(f"could not read {OUTCOME_TOPIC!r}: {exc}") from exc
        taken = 0
        for message in messages:
            if message.error() is not None:
                continue
            outcome = CommandOutcome.model_validate(
                {k: v for k, v in json.loads(message.value() or b"{}").items() if k != "schema_version"}
            )
            if service.fail(self.conn, idempotency_key=outcome.idempotency_key, reason=outcome.reason):
                log.info("command %s rejected by %s: %s", outcome.idempotency_key, outcome.system, outcome.reason)
            taken += 1
        if messages:
            self.consumer.commit(asynchronous=False)
        return taken

    def send_follow_ups(self) -> int:
        """Hand each resolved command without a follow-up to the callback, then record it."""
        resolved = service.awaiting_follow_up(self.conn)
        for tracked in resolved:
            self.follow_up(self.conn, tracked, self.publisher)
        if resolved:
            self.flush()
            for tracked in resolved:
                service.mark_followed_up(
                    self.conn, idempotency_key=tracked.command.idempotency_key, status=tracked.status
                )
        return len(resolved)

    def close(self) -> None:
        """Close the outcome consumer, then the connection and the producer."""
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
        super().close()
