"""Conversation state per ticket: the thread in order, the customer established, facts found, changes held.

Keyed by (source, ticket id) in PostgreSQL (`conversations`, `conversation_messages`), so it survives
restarts, redelivery and a worker moving partitions. A customer message is recorded once per event id and
an agent message once per answered event, so a redelivered or replayed event changes nothing.

The language of a reply to a held change is generic English and lives here: a confirmation ("yes", "go
ahead", "confirmed", "please do"), a withdrawal ("don't cancel it", "never mind"), a restriction ("only the
shirt", "just order 2", "... instead") and an addition ("I also want ..."). What the restated change is
comes from the pack (`IntentRules.revise_held`).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from streamdesk.agent.models import ToolCall
from streamdesk.agent.packs import Conversation, Turn
from streamdesk.contracts import REPLY_STAMP_PREFIX, TicketEvent

Reply = Literal["confirm", "withdraw"]
_CONFIRM_START = re.compile(
    r"^\W*(yes|yeah|yep|yup|sure|ok(ay)?|confirm(ed)?|i confirm|go ahead|please do|please go ahead|please proceed"
    r"|do it|proceed|correct|that'?s (right|correct|fine)|sounds good|absolutely|of course)\b",
    re.IGNORECASE,
)
_CONFIRM_EXPLICIT = re.compile(
    r"\b(i (hereby |do )?confirm|i'?m confirming|(yes,? )?(please )?go ahead( and)?|confirmed|please proceed)\b",
    re.IGNORECASE,
)
"""A change the message itself states and confirms ("... I confirm."): no question needs asking first."""
_WITHDRAW = re.compile(
    r"^\W*no\b|\bnever ?mind\b|\b(don'?t|do not)\b(?!\s+(want|need|have|know|like|afford)\b)|\bforget (it|about it)\b"
    r"|\bchanged my mind\b|\bleave it( as it is)?\b|\bkeep it\b|\bnot anymore\b|\bwithdraw\w*\b|\bno,? thanks?\b"
    r"|\bhold off\b",
    re.IGNORECASE,
)


_RESTRICTS = re.compile(
    r"\b(only|just|instead|rather|solely|except|but not|change(d|s)? (my|his|her) mind|on second thought)\b",
    re.IGNORECASE,
)
_ADDS = re.compile(r"\b(also|as well|in addition|additionally|another|one more)\b", re.IGNORECASE)


def restricts(text: str) -> bool:
    """True when the message narrows or swaps what it refers to ("only the shirt", "return it instead")."""
    return bool(_RESTRICTS.search(text))


def adds(text: str) -> bool:
    """True when the message asks for something on top of what came before ("I also want to return ...")."""
    return bool(_ADDS.search(text)) and not restricts(text)


def reply_to_held(text: str) -> Reply | None:
    """How a message answers a held change: a withdrawal, a confirmation, or neither (None)."""
    if _WITHDRAW.search(text):
        return "withdraw"
    if _CONFIRM_START.search(text) or _CONFIRM_EXPLICIT.search(text):
        return "confirm"
    return None


def confirms_explicitly(text: str) -> bool:
    """True when the message states its change and confirms it explicitly ("I confirm", "please go ahead")."""
    return bool(_CONFIRM_EXPLICIT.search(text)) and not _WITHDRAW.search(text)


@dataclass(frozen=True)
class TurnOutcome:
    """What answering one customer message left in the conversation."""

    customer_id: str | None
    identified_by: str | None
    open_request: str | None
    held_actions: Sequence[ToolCall]
    facts: Sequence[dict[str, Any]]
    pending_action_ids: Sequence[str]
    decision: str


def _held(rows: Sequence[dict[str, Any]]) -> tuple[ToolCall, ...]:
    return tuple(ToolCall(tool=row["tool"], arguments=row["arguments"]) for row in rows)


def load(conn: psycopg.Connection, *, source: str, ticket_id: str, before_event: str | None = None) -> Conversation:
    """The conversation of ticket (source, ticket id); its turns up to, not including, `before_event`'s message."""
    with conn.cursor(row_factory=dict_row) as cur:
        row = cur.execute(
            "SELECT customer_id, identified_by, open_request, facts, held_actions, pending_action_ids "
            "FROM conversations WHERE source = %s AND ticket_id = %s",
            (source, ticket_id),
        ).fetchone()
        messages = cur.execute(
            "SELECT role, event_id, answer_id::text AS answer_id, text, decision, message_id "
            "FROM conversation_messages WHERE source = %s AND ticket_id = %s ORDER BY message_id",
            (source, ticket_id),
        ).fetchall()
    if row is None:
        return Conversation()
    turns = []
    for message in messages:
        if message["role"] == "customer" and message["event_id"] == before_event:
            break
        turns.append(
            Turn(
                role=message["role"],
                text=message["text"],
                event_id=message["event_id"],
                answer_id=message["answer_id"],
                decision=message["decision"],
            )
        )
    return Conversation(
        turns=tuple(turns),
        held_actions=_held(row["held_actions"]),
        open_request=row["open_request"],
        facts=tuple(row["facts"]),
        customer_id=row["customer_id"],
        identified_by=row["identified_by"],
        pending_action_ids=tuple(row["pending_action_ids"]),
    )


def _record_message(
    conn: psycopg.Connection,
    *,
    source: str,
    ticket_id: str,
    tenant: str,
    event_id: str,
    text: str,
    role: str,
    decision: str | None,
) -> bool:
    """Add one message to the ticket's thread (the thread first when it is new), once per (role, event id)."""
    with conn.transaction():
        conn.execute(
            "INSERT INTO conversations (source, ticket_id, tenant) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
            (source, ticket_id, tenant),
        )
        added = conn.execute(
            "INSERT INTO conversation_messages (source, ticket_id, role, event_id, text, decision) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (role, event_id) DO NOTHING RETURNING message_id",
            (source, ticket_id, role, event_id, text, decision),
        ).fetchone()
    return added is not None


def record_customer_message(
    conn: psycopg.Connection, *, source: str, ticket_id: str, tenant: str, event_id: str, text: str
) -> bool:
    """Add the customer's message of `event_id` to the thread (once); True when it is new."""
    return _record_message(
        conn, source=source, ticket_id=ticket_id, tenant=tenant, event_id=event_id, text=text, role="customer",
        decision=None,
    )  # fmt: skip


def from_customer(event: TicketEvent) -> bool:
    """Whether the event is the customer's message, not staff's or streamdesk's own reply coming back.

    A connector marks a comment another author wrote (`metadata.from_requester` false); every reply
    streamdesk posts ends with its `[streamdesk-reply:<id>]` stamp, which marks it even where the helpdesk
    does not tell the author.
    """
    return event.metadata.get("from_requester") is not False and f"[{REPLY_STAMP_PREFIX}" not in (event.body or "")


def record_staff_message(
    conn: psycopg.Connection, *, source: str, ticket_id: str, tenant: str, event_id: str, text: str
) -> bool:
    """Add a message staff (or streamdesk's own reply) wrote on the ticket to the thread (once); True when new."""
    return _record_message(
        conn, source=source, ticket_id=ticket_id, tenant=tenant, event_id=event_id, text=text, role="agent",
        decision="staff",
    )  # fmt: skip


def record_agent_turn(
    conn: psycopg.Connection,
    *,
    source: str,
    ticket_id: str,
    event_id: str,
    answer_id: str,
    text: str,
    outcome: TurnOutcome,
) -> bool:
    """Add the agent's answer to `event_id` and the state it leaves (once per event); True when it is new."""
    with conn.transaction():
        added = conn.execute(
            "INSERT INTO conversation_messages (source, ticket_id, role, event_id, answer_id, text, decision) "
            "VALUES (%s, %s, 'agent', %s, %s, %s, %s) ON CONFLICT (role, event_id) DO NOTHING RETURNING message_id",
            (source, ticket_id, event_id, uuid.UUID(answer_id), text, outcome.decision),
        ).fetchone()
        if added is None:
            return False
        conn.execute(
            "UPDATE conversations SET customer_id = %s, identified_by = %s, open_request = %s, facts = %s, "
            "held_actions = %s, pending_action_ids = %s, updated_at = now() WHERE source = %s AND ticket_id = %s",
            (
                outcome.customer_id,
                outcome.identified_by,
                outcome.open_request,
                Jsonb(list(outcome.facts)),
                Jsonb([{"tool": call.tool, "arguments": call.arguments} for call in outcome.held_actions]),
                list(outcome.pending_action_ids),
                source,
                ticket_id,
            ),
        )
    return True


def thread(conn: psycopg.Connection, *, source: str, ticket_id: str) -> list[dict[str, Any]]:
    """The ticket's messages in order (role, text, event id, answer id, the turn's decision) for reviewers."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            "SELECT role, text, event_id, answer_id::text AS answer_id, decision, created_at "
            "FROM conversation_messages WHERE source = %s AND ticket_id = %s ORDER BY message_id",
            (source, ticket_id),
        ).fetchall()
