"""The answer service on the real store: finding the customer a ticket comes from, answering a stored ticket event."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import psycopg
from psycopg.types.json import Jsonb

from streamdesk import db, topics
from streamdesk.agent import answers, backends
from streamdesk.agent.answers import Ticket, TraceStep
from streamdesk.agent.service import AnswerService, principal_for
from streamdesk.config import get_settings
from streamdesk.contracts import Requester, StoredTicket, TicketEvent, TicketState
from streamdesk.streams.messages import RawMessage
from tests.factories import draft, ticket_event

_INSERT = """
    INSERT INTO entities (entity_type, source, external_id, version, deleted, event_id, attributes, tenant)
    VALUES ('customer', %s, %s, '{1,0}', false, %s, %s, 'default')
"""


def add_customer(conn: psycopg.Connection, *, source: str, external_id: str, email: str) -> None:
    conn.execute(_INSERT, (source, external_id, f"{source}:{external_id}", Jsonb({"email": email})))


def ticket(body: str = "help", **fields: str) -> Ticket:
    return Ticket(source="zendesk", ticket_id="1", event_id="zendesk:e1", body=body, **fields)


def test_the_requester_is_matched_to_the_erp_customer_by_email(conn: psycopg.Connection) -> None:
    add_customer(conn, source="debezium", external_id="mia_li_1", email="Mia.Li@example.com")
    add_customer(conn, source="zendesk", external_id="user:77", email="mia.li@example.com")
    by_email = principal_for(conn, ticket=ticket(requester_email=" mia.li@EXAMPLE.com"))
    by_user_record = principal_for(conn, ticket=ticket(requester_id="77"))
    assert by_email is not None and by_email.customer_id == "mia_li_1"
    assert by_user_record is not None and by_user_record.customer_id == "mia_li_1"


def test_unknown_or_ambiguous_requesters_are_not_verified(conn: psycopg.Connection) -> None:
    add_customer(conn, source="debezium", external_id="a_1", email="same@example.com")
    add_customer(conn, source="salesforce", external_id="003X", email="same@example.com")
    assert principal_for(conn, ticket=ticket(requester_email="same@example.com")) is None
    assert principal_for(conn, ticket=ticket(requester_id="404")) is None
    assert principal_for(conn, ticket=ticket(requester_email="nobody@example.com")) is None


def test_the_customer_is_identified_by_the_details_the_ticket_text_gives(conn: psycopg.Connection) -> None:
    """Name and zip, an email, or a user id with a zip in the ticket's words find the customer (nothing else does)."""
    name = {"first_name": "Mia", "last_name": "Li", "email": "mia.li@example.com", "address": {"zip": "10001"}}
    conn.execute(_INSERT, ("debezium", "mia_li_3668", "debezium:mia_li_3668", Jsonb(name)))
    by_name_zip = principal_for(conn, ticket=ticket(body="I am Mia Li, zip code 10001. Where is my order?"))
    by_email = principal_for(conn, ticket=ticket(body="My email is mia.li@example.com, please cancel my order."))
    by_user_id = principal_for(conn, ticket=ticket(body="My user id is mia_li_3668 and I live in 10001."))
    assert [p.customer_id if p else None for p in (by_name_zip, by_email, by_user_id)] == ["mia_li_3668"] * 3
    assert principal_for(conn, ticket=ticket(body="I am Mia Li, zip code 99999.")) is None
    assert principal_for(conn, ticket=ticket(body="Where is my order?")) is None


def test_a_customer_id_on_the_ticket_wins(conn: psycopg.Connection) -> None:
    principal = principal_for(conn, ticket=ticket(customer_id="c_9", requester_email="x@example.com"))
    assert principal is not None and principal.customer_id == "c_9" and principal.kind == "agent"


def test_an_answer_is_described_with_citation_titles_and_its_trace() -> None:
    step = TraceStep(index=0, source="router", tool="get_order_details", arguments={"order_id": "#W1"},
                     outcome="executed", decision="allow")  # fmt: skip
    fields = {"citations": ["mapped:kb-1#0"], "trace": [step], "model": "smollm2", "prompt_version": "p1"}
    answer = draft(ticket_event("9001", event_id="zendesk:e1"), "Your order ships tomorrow.", **fields)
    text = answers.describe(answer, question="Where is #W1?", titles={"mapped:kb-1#0": "Shipping"})
    assert "ticket zendesk:9001  [draft]  adapter base" in text
    assert "Shipping (mapped:kb-1#0)" in text
    assert 'get_order_details{"order_id":"#W1"} -> executed [allow]' in text


def test_a_stored_ticket_event_is_answered_from_its_record_with_no_tickets_row_read(
    clean_db: str, topics_ready: str, backend: backends.TransformersBackend
) -> None:
    """The agent's input carries the ticket as stored: a comment (no subject) is answered with no row to read."""
    event = TicketEvent(
        event_id="zendesk:T-5:comment", source="zendesk", ticket_id="T-5", event_type="comment_added", version=[2],
        occurred_at=datetime(2026, 12, 3, 7, 0, tzinfo=UTC), body="Any news?",
        requester=Requester(email="nobody@example.com"),
    )  # fmt: skip
    record = StoredTicket(event=event, ticket=TicketState(version=[2], subject="Where is my order?"))
    assert Ticket.from_stored(record).text == "Where is my order?\n\nAny news?"
    service = AnswerService(settings=get_settings(), backend=backend)
    value = json.dumps(record.to_json()).encode()
    try:
        answer = service.handle(RawMessage(topic=topics.STORED_TICKET, value=value, key=record.key.encode()))
    finally:
        service.close()
    with db.connect(clean_db) as conn:
        assert conn.execute("SELECT count(*) FROM tickets").fetchone() == (0,)
        assert answer is not None and answers.is_published(conn, answer_id=answer.answer_id)
    assert answer.event_id == event.event_id and answer.status == "draft"  # nobody to act for: it asks who
    assert "please reply with the email address of your account" in answer.text
    assert not answer.trace
