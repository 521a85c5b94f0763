"""Ticket events the store holds but the agent never answered (or never published): put back on the broker.

An embedded broker forgets its topics when it stops, so a ticket event ingest stored but the agent had
not answered yet would wait forever; `streamdesk up` republishes these, with their stored tickets, to
`ticket.stored` (the agent's input) whenever it starts a fresh embedded broker. Answering stays once per
event: the agent skips an event whose answer is stored and published, and only publishes a stored,
unpublished one.
"""

from __future__ import annotations

import logging

import psycopg

from streamdesk import topics
from streamdesk.agent.service import ANSWERED_EVENTS
from streamdesk.contracts import TicketEvent
from streamdesk.entities import store as entities
from streamdesk.kafka import Publisher

log = logging.getLogger(__name__)

_UNANSWERED = """
    SELECT e.payload FROM ticket_events AS e
    WHERE e.event_type = ANY(%s) AND e.event_id NOT LIKE 'agent:%%'
      AND NOT EXISTS (SELECT 1 FROM answers AS a WHERE a.event_id = e.event_id AND a.published_at IS NOT NULL)
    ORDER BY e.occurred_at, e.event_id
"""
BATCH = 500


def republish_unanswered(*, conn: psycopg.Connection, publisher: Publisher) -> int:
    """Publish every stored ticket event that has no published answer to `ticket.stored`; return how many."""
    count = 0
    with conn.cursor(name="unanswered_ticket_events") as cur:
        cur.execute(_UNANSWERED, (sorted(ANSWERED_EVENTS),))
        while rows := cur.fetchmany(BATCH):
            events = [TicketEvent.model_validate(payload) for (payload,) in rows]
            for record in entities.stored_tickets(conn, events=events):
                publisher.publish(topics.STORED_TICKET, record.to_json(), key=record.key)
                count += 1
    publisher.flush()
    if count:
        log.info("republished %d stored ticket events that have no published answer", count)
    return count
