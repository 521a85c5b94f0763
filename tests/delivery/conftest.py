"""Delivery fixtures: the Zendesk stand-in served on a thread of the test process, and delivery settings for it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest

from streamdesk.delivery.config import DeliverySettings
from streamdesk.delivery.models import Reply
from streamdesk.delivery.standin import StandinState, running
from streamdesk.runtime.embedded import free_port

STANDIN_ENV = {"STREAMDESK_DELIVERY__ZENDESK_EMAIL": "bot@example.com", "STREAMDESK_DELIVERY__ZENDESK_API_TOKEN": "t0k"}


@dataclass
class Standin:
    """A running stand-in: its base URL and what it holds."""

    url: str
    state: StandinState


@pytest.fixture
def standin() -> Iterator[Standin]:
    """A fresh Zendesk stand-in on a free port."""
    state = StandinState()
    with running(state, port=free_port()) as url:
        yield Standin(url=url, state=state)


@pytest.fixture
def delivery_settings(standin: Standin) -> DeliverySettings:
    """Delivery to the stand-in with API-token auth; retries kept short."""
    return DeliverySettings(
        zendesk_url=standin.url,
        zendesk_email="bot@example.com",
        zendesk_api_token="t0k",
        retry_for_s=0.5,
        retry_later_s=60,
    )


def auto_reply(n: int, *, ticket_id: str | None = None, tenant: str = "default") -> Reply:
    """An auto reply to ticket `9000 + n`."""
    return Reply(
        reply_id=f"00000000-0000-4000-8000-{n:012d}",
        answer_id=f"00000000-0000-4000-8000-{n:012d}",
        kind="auto_reply",
        source="zendesk",
        ticket_id=ticket_id or str(9000 + n),
        tenant=tenant,
        text=f"Your order number {n} has shipped.",
    )


def delivery_row(conn: psycopg.Connection, reply_id: str) -> dict[str, object]:
    """Status, attempts, reason and dead-letter id of one delivery."""
    row = conn.execute(
        "SELECT status, attempts, reason, dead_letter_id FROM deliveries WHERE reply_id = %s", (reply_id,)
    ).fetchone()
    assert row is not None
    return dict(zip(("status", "attempts", "reason", "dead_letter_id"), row, strict=True))
