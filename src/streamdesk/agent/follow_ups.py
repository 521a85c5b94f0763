"""Follow-ups: when a command ends (confirmed, failed, escalated) the customer hears of it, as an answer.

The command relay (`commands/relay.py`) first carries out the actions approved since the agent's turn
(`carry_out_approved`: their commands go to the outbox), and calls `follow_up` for each resolved command;
it stores an answer for the ticket, keyed by `follow-up:<idempotency key>:<status>` (so a repeat finds
it), and publishes it on the `answer` topic like every other answer. `streamdesk worker commands` runs the
relay with it.
"""

from __future__ import annotations

import logging

import psycopg

from streamdesk.agent import answers, execution, packs
from streamdesk.agent import tools as desk
from streamdesk.agent.answers import Answer
from streamdesk.agent.models import ToolContext
from streamdesk.commands.models import TrackedCommand
from streamdesk.commands.relay import CommandRelay
from streamdesk.config import Settings, get_settings
from streamdesk.kafka import Publisher
from streamdesk.policy import approvals
from streamdesk.streams.relay import run_relay

log = logging.getLogger(__name__)
FOLLOW_UP_MODEL = "streamdesk-follow-up"
FOLLOW_UP_PROMPT = "follow-up-v1"
TEXTS: dict[str, str] = {
    "confirmed": "Good news: your request ({what}) has been carried out and confirmed by our {system}.",
    "failed": (
        "We are sorry: our {system} could not carry out your request ({what}): {reason}. "
        "A member of our team will look into it with you."
    ),
    "escalated": (
        "Your request ({what}) is taking longer than expected to go through our {system}; "
        "a member of our team is checking on it and will get back to you."
    ),
}
"""What the customer is told of each outcome (an `auto_reply` answer: the delivery worker posts it)."""


def follow_up_answer(tracked: TrackedCommand) -> Answer:
    """The answer that tells the ticket's customer how `tracked` ended."""
    command = tracked.command
    source, _, ticket_id = command.ticket_id.partition(":")
    return Answer(
        event_id=f"follow-up:{command.idempotency_key}:{tracked.status}",
        source=source,
        ticket_id=ticket_id or source,
        tenant=command.tenant,
        status="auto_reply",
        text=TEXTS[tracked.status].format(
            what=command.tool.replace("_", " "),
            system=command.system.upper(),
            reason=(tracked.reason or "no reason given").rstrip("."),
        ),
        model=FOLLOW_UP_MODEL,
        prompt_version=FOLLOW_UP_PROMPT,
        pending_action_ids=[command.action_id] if command.action_id else [],
    )


def follow_up(conn: psycopg.Connection, tracked: TrackedCommand, publisher: Publisher) -> None:
    """Store the follow-up answer of `tracked` (once) and queue it on the `answer` topic; a command that failed or
    was escalated also escalates its ticket to the human team."""
    answer, new = answers.store_answer(conn, answer=follow_up_answer(tracked))
    if new and tracked.status != "confirmed":
        context = ToolContext(
            actor="system:commands", tenant=answer.tenant, ticket_source=answer.source, ticket_id=answer.ticket_id
        )
        reason = f"{tracked.command.tool} command {tracked.status}: {tracked.reason}"
        desk.record_ticket_event(
            conn,
            context,
            tool="escalate",
            event_type="priority_changed",
            priority="high",
            add_tags=("escalated",),
            metadata={"escalation_reason": reason, "command_key": tracked.command.idempotency_key},
        )
    publisher.publish(
        answers.ANSWER_TOPIC,
        answer.to_event(),
        key=f"{answer.source}:{answer.ticket_id}",
        headers={"answer_id": answer.answer_id},
    )
    answers.mark_published(conn, answer_id=answer.answer_id)


_REFUSED: set[str] = set()
"""Approved actions whose handler refused to run in this process (audited once; a person takes them over)."""


def carry_out_approved(conn: psycopg.Connection) -> int:
    """Carry out the actions supervisors approved that have not run yet (a `command` write: issue its command)."""
    pack = packs.resolve_default()
    registry = desk.default_registry(pack)
    approved = [a for a in approvals.list_actions(conn, status="approved") if a.id not in _REFUSED]
    for action in approved:
        outcome = execution.carry_out_approved(conn, action=action, registry=registry, pack=pack)
        if outcome.step.outcome == "error":
            log.warning("approved action %s could not be carried out: %s", action.id, outcome.step.reason)
            _REFUSED.add(action.id)
    return len(approved)


def run_worker(settings: Settings | None = None) -> None:
    """Run the command relay, with follow-ups as answers, in the foreground until SIGTERM or SIGINT."""
    relay = CommandRelay(settings=settings or get_settings(), follow_up=follow_up, carry_out=carry_out_approved)
    run_relay(relay, what="outbox commands -> command.<system>; rejections, timeouts and follow-ups")
