"""The ticket the agent answers: the text its router and injection check read."""

from __future__ import annotations

from streamdesk.agent.answers import Ticket


def ticket(subject: str, body: str) -> Ticket:
    return Ticket(source="zendesk", ticket_id="T-1", event_id="zendesk:T-1:1", subject=subject, body=body)


def test_a_subject_that_is_only_the_bodys_beginning_is_read_once() -> None:
    body = "I want to return the hose, backpack, and exchange the hiking boots for a waterproof pair."
    assert ticket("I want to return the hose, backpack, and exchange the hiking...", body).text == body
    assert ticket("I want to return the hose, backpack, and exchange the hiking\u2026", body).text == body
    assert ticket("Boots", body).text == f"Boots\n\n{body}"
    assert ticket("", body).text == body
