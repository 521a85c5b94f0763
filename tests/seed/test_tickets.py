"""The sample tickets: one per kind, each from a different real customer, parsed by the real Zendesk connector."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.zendesk import ZendeskConnector
from streamdesk.contracts import EntityEvent, TicketEvent
from streamdesk.seed import taubench, tickets
from streamdesk.seed.wire import RawRecord
from streamdesk.streams.messages import RawMessage


@pytest.fixture(scope="module")
def world(shared_data: Path) -> taubench.World:
    return taubench.load_world(path=shared_data / taubench.DB_FILE)


def parse(record: RawRecord) -> list[object]:
    return list(ZendeskConnector().parse(RawMessage(topic=record.topic, key=record.key, value=record.value)))


def test_each_kind_comes_from_a_different_customer_with_a_fitting_order(world: taubench.World) -> None:
    samples = tickets.sample_tickets(world)
    assert [s.kind for s in samples] == ["track", "cancel", "return", "policy", "address", "injection"]
    assert len({s.user_id for s in samples}) == len(samples)
    by_kind = {s.kind: s for s in samples}
    for kind, status in (("cancel", "pending"), ("return", "delivered"), ("track", "processed")):
        order_id = next(w.rstrip("?") for w in by_kind[kind].subject.split() if w.startswith("#W"))
        assert world["orders"][order_id]["status"] == status
        assert world["orders"][order_id]["user_id"] == by_kind[kind].user_id


def test_the_bundled_mini_world_has_a_customer_for_every_ticket() -> None:
    assert len(tickets.sample_tickets(taubench.load_world(path=taubench.BUNDLED_DB))) == len(tickets.TEMPLATES)


def test_requesters_and_tickets_parse_as_zendesk_users_and_created_tickets(world: taubench.World) -> None:
    users = [event for record in tickets.requester_records(world) for event in parse(record)]
    created = [event for record in tickets.ticket_records(world) for event in parse(record)]
    assert all(isinstance(event, EntityEvent) and event.entity_type == "customer" for event in users)
    assert all(isinstance(event, TicketEvent) and event.event_type == "created" for event in created)
    samples = tickets.sample_tickets(world)
    for user, ticket, sample in zip(users, created, samples, strict=True):
        assert isinstance(user, EntityEvent) and isinstance(ticket, TicketEvent)
        assert user.attributes["email"] == world["users"][sample.user_id]["email"]
        assert ticket.requester is not None and user.external_id == f"user:{ticket.requester.id}"
        assert ticket.body == sample.body and ticket.customer_id is None
    assert [t.ticket_id for t in created if isinstance(t, TicketEvent)] == tickets.ticket_ids()
