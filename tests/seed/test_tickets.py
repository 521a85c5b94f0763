"""The sample tickets: one per kind, each about a real customer (and order) of the world, parsed by the real
Zendesk connector."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.zendesk import ZendeskConnector
from streamdesk.contracts import EntityEvent, TicketEvent
from streamdesk.seed import taubench, tickets
from streamdesk.seed.exceptions import SeedError
from streamdesk.seed.wire import RawRecord
from streamdesk.streams.messages import RawMessage


@pytest.fixture(scope="module")
def world(shared_data: Path) -> taubench.World:
    return taubench.load_world(path=shared_data / taubench.DB_FILE)


def parse(record: RawRecord) -> list[object]:
    return list(ZendeskConnector().parse(RawMessage(topic=record.topic, key=record.key, value=record.value)))


KINDS = ["track", "cancel", "return", "policy", "address", "injection", "name_zip", "human", "no_answer"]
ORDER_STATUS = {"track": "processed", "cancel": "pending", "return": "delivered", "injection": "pending"}


def check_samples(world: taubench.World, *, distinct: bool) -> list[tickets.SampleTicket]:
    """Every sample refers to a real customer of `world`, and to a real order of theirs of the fitting status."""
    samples = tickets.sample_tickets(world)
    assert [s.kind for s in samples] == KINDS
    emails = {user["email"] for user in world["users"].values()}
    for sample in samples:
        user = world["users"][sample.user_id]
        if sample.order_id is not None:
            order = world["orders"][sample.order_id]
            assert order["user_id"] == sample.user_id and sample.order_id in f"{sample.subject} {sample.body}"
            assert order["status"] == ORDER_STATUS.get(sample.kind, order["status"])
        if sample.kind == "name_zip":
            assert sample.requester_email not in emails  # the helpdesk cannot match the customer by email
            name = user["name"]
            assert f"{name['first_name']} {name['last_name']}" in sample.body and user["address"]["zip"] in sample.body
        else:
            assert sample.requester_email == user["email"]
    by_kind = {s.kind: s for s in samples}
    assert {k for k, s in by_kind.items() if s.order_id is None} == {"policy", "address", "no_answer"}
    assert world["orders"][by_kind["track"].order_id or ""]["fulfillments"]  # it has a tracking number
    assert "12 Elm Street, Apt 4, Springfield, IL 62704, USA" in by_kind["address"].body
    assert "confirm" in by_kind["return"].body  # stated and confirmed at once: it runs without a question
    assert "If it has not shipped yet" in by_kind["cancel"].body  # a conversation: held, then confirmed
    assert by_kind["cancel"].follow_ups == ("Yes, please go ahead.",)
    if distinct:
        assert len({s.user_id for s in samples}) == len(samples)
    return samples


def test_each_kind_comes_from_a_different_real_customer_with_a_fitting_order(world: taubench.World) -> None:
    check_samples(world, distinct=True)


def test_the_bundled_mini_world_has_a_real_customer_for_every_ticket() -> None:
    world = taubench.load_world(path=taubench.BUNDLED_DB)
    samples = check_samples(world, distinct=False)
    assert len({s.user_id for s in samples}) == len(world["users"])  # every customer, one of them twice


def test_a_world_without_a_fitting_order_is_refused() -> None:
    world = taubench.load_world(path=taubench.BUNDLED_DB)
    world["orders"] = {k: v for k, v in world["orders"].items() if v["status"] != "processed"}
    with pytest.raises(SeedError, match="no customer with a processed order left for the 'track' sample ticket"):
        tickets.sample_tickets(world)


def test_requesters_and_tickets_parse_as_zendesk_users_and_created_tickets(world: taubench.World) -> None:
    users = [event for record in tickets.requester_records(world) for event in parse(record)]
    events = [event for record in tickets.ticket_records(world) for event in parse(record)]
    created = [event for event in events if isinstance(event, TicketEvent) and event.event_type == "created"]
    comments = [event for event in events if isinstance(event, TicketEvent) and event.event_type == "comment_added"]
    assert len(created) + len(comments) == len(events)
    assert [(c.ticket_id, c.body) for c in comments] == [(tickets.ticket_ids()[1], "Yes, please go ahead.")]
    assert all(isinstance(event, EntityEvent) and event.entity_type == "customer" for event in users)
    samples = tickets.sample_tickets(world)
    for user, ticket, sample in zip(users, created, samples, strict=True):
        assert isinstance(user, EntityEvent) and isinstance(ticket, TicketEvent)
        assert user.attributes["email"] == sample.requester_email
        assert ticket.requester is not None and user.external_id == f"user:{ticket.requester.id}"
        assert ticket.body == sample.body and ticket.customer_id is None
    assert [t.ticket_id for t in created if isinstance(t, TicketEvent)] == tickets.ticket_ids()
    assert list(tickets.ticket_kinds().values()) == KINDS
