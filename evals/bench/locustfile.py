"""The Locust users of `streamdesk bench load`: search, ticket submission and Zendesk webhooks, each at a fixed rate.

Locust loads this file in its own process (`evals/bench/load.py` runs it headless); it reads the API key,
the webhook secret and each endpoint's rate from the environment that process gets.
"""

from __future__ import annotations

import itertools
import json
import os
import random
from datetime import UTC, datetime

from locust import FastHttpUser, constant_throughput, task

from streamdesk.gateway.signatures import sign_zendesk

USERS = int(os.environ.get("LOAD_USERS_PER_ENDPOINT", "4"))
AUTH = {"X-API-Key": os.environ.get("LOAD_API_KEY", "")}
SECRET = os.environ.get("LOAD_ZENDESK_SECRET", "dev-zendesk-secret")
QUERIES = json.loads(os.environ.get("LOAD_QUERIES", '["how do I reset my password"]'))
_ticket_ids = itertools.count(int(os.environ.get("LOAD_FIRST_TICKET", "500000")))


def _per_user(endpoint: str) -> float:
    return float(os.environ.get(f"LOAD_RATE_{endpoint.upper()}", "1")) / USERS


class SearchUser(FastHttpUser):
    """An operator searching the knowledge base (hybrid search, top 10)."""

    fixed_count = USERS
    wait_time = constant_throughput(_per_user("search"))

    @task
    def search(self) -> None:
        self.client.get("/search", params={"q": random.choice(QUERIES), "k": 10}, headers=AUTH, name="search")


class TicketUser(FastHttpUser):
    """An integration submitting new tickets through the API."""

    fixed_count = USERS
    wait_time = constant_throughput(_per_user("tickets"))

    @task
    def submit(self) -> None:
        body = {"subject": "Load test: where is my order?", "body": random.choice(QUERIES), "priority": "normal"}
        self.client.post("/tickets", json=body, headers=AUTH, name="tickets")


class WebhookUser(FastHttpUser):
    """Zendesk posting signed `ticket.created` webhooks to the gateway."""

    fixed_count = USERS
    wait_time = constant_throughput(_per_user("webhooks"))

    @task
    def webhook(self) -> None:
        ticket = next(_ticket_ids)
        at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        detail = {
            "id": str(ticket), "subject": "Load test ticket", "description": random.choice(QUERIES),
            "requester_id": "1", "actor_id": "1", "status": "NEW", "created_at": at, "updated_at": at,
        }  # fmt: skip
        payload = {"type": "zen:event-type:ticket.created", "id": f"load-{ticket}", "time": at, "detail": detail}
        body = json.dumps(payload | {"subject": f"zen:ticket:{ticket}"}).encode()
        headers = {
            "X-Zendesk-Webhook-Signature": sign_zendesk(secret=SECRET, timestamp=at, body=body),
            "X-Zendesk-Webhook-Signature-Timestamp": at,
            "X-Zendesk-Webhook-Invocation-Id": f"load-{ticket}",
            "Content-Type": "application/json",
        }
        self.client.post("/webhooks/zendesk", data=body.decode(), headers=headers, name="webhooks")
