"""Finding the customer a ticket comes from, on the real store: by customer id, email, or the helpdesk's user record."""

from __future__ import annotations

import psycopg
from psycopg.types.json import Jsonb

from streamdesk.agent import answers
from streamdesk.agent.answers import Answer, Ticket, TraceStep
from streamdesk.agent.service import principal_for

_INSERT = """
    INSERT INTO entities (entity_type, source, external_id, version, deleted, event_id, attributes, tenant)
    VALUES ('customer', %s, %s, '{1,0}', false, %s, %s, 'default')
"""


def add_customer(conn: psycopg.Connection, *, source: str, external_id: str, email: str) -> None:
    conn.execute(_INSERT, (source, external_id, f"{source}:{external_id}", Jsonb({"email": email})))


def ticket(**fields: str) -> Ticket:
    return Ticket(source="zendesk", ticket_id="1", event_id="zendesk:e1", body="help", **fields)


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


def test_a_customer_id_on_the_ticket_wins(conn: psycopg.Connection) -> None:
    principal = principal_for(conn, ticket=ticket(customer_id="c_9", requester_email="x@example.com"))
    assert principal is not None and principal.customer_id == "c_9" and principal.kind == "agent"


def test_an_answer_is_described_with_citation_titles_and_its_trace() -> None:
    answer = Answer(
        event_id="zendesk:e1",
        source="zendesk",
        ticket_id="9001",
        status="draft",
        text="Your order ships tomorrow.",
        citations=["mapped:kb-1#0"],
        trace=[
            TraceStep(index=0, source="router", tool="get_order_details", arguments={"order_id": "#W1"},
                      outcome="executed", decision="allow"),
        ],
        model="smollm2",
        prompt_version="p1",
    )  # fmt: skip
    text = answers.describe(answer, question="Where is #W1?", titles={"mapped:kb-1#0": "Shipping"})
    assert "ticket zendesk:9001  [draft]  adapter base" in text
    assert "Shipping (mapped:kb-1#0)" in text
    assert 'get_order_details{"order_id":"#W1"} -> executed [allow]' in text
