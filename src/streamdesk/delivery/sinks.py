"""Where replies go: Zendesk's REST API (a public comment and the status change) or a signed webhook sink.

Each comment carries the reply id (`stamp`), so a worker that crashed between posting and recording can find
its own comment among the ticket's before it posts again (`ZendeskSink.find`). The webhook sink cannot be
asked; it gets the reply id as `Idempotency-Key` and must drop a repeat.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from streamdesk.contracts import REPLY_STAMP_PREFIX
from streamdesk.delivery.config import DeliverySettings
from streamdesk.delivery.exceptions import DeliveryRefusedError, DeliveryUnavailableError, NoDestinationError
from streamdesk.delivery.models import Reply

STAMP_PREFIX = REPLY_STAMP_PREFIX
SIGNATURE_HEADER = "X-Streamdesk-Signature"
TIMESTAMP_HEADER = "X-Streamdesk-Timestamp"
IDEMPOTENCY_HEADER = "Idempotency-Key"


def stamp(reply_id: str) -> str:
    """The line each comment ends with: the reply id, which `find` looks for."""
    return f"[{STAMP_PREFIX}{reply_id}]"


def comment_body(reply: Reply) -> str:
    """The public comment's body: the reply's text, then its stamp."""
    return f"{reply.text.rstrip()}\n\n{stamp(reply.reply_id)}"


def sign(body: bytes, *, secret: str, timestamp: str) -> str:
    """The webhook signature: `v1=` + hex HMAC-SHA256 of `<timestamp>.<body>` under `secret`."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"v1={digest}"


def verify_signature(body: bytes, *, secret: str, timestamp: str, signature: str, tolerance_s: float = 300.0) -> bool:
    """True when `signature` signs `body` at `timestamp` under `secret` and the timestamp is recent."""
    try:
        fresh = abs(time.time() - float(timestamp)) <= tolerance_s
    except ValueError:
        return False
    return fresh and hmac.compare_digest(sign(body, secret=secret, timestamp=timestamp), signature)


def retry_after(response: httpx.Response) -> float | None:
    """The seconds a `Retry-After` header asks for (Zendesk sends it with a 429), None without a usable one."""
    value = response.headers.get("retry-after", "")
    return float(value) if value.strip().isdigit() else None


def check_response(response: httpx.Response, *, what: str) -> httpx.Response:
    """`response` when it succeeded; refused on a 4xx other than 429, unavailable on a 429 or 5xx."""
    if response.is_success:
        return response
    reason = f"{what}: HTTP {response.status_code} {response.text[:500]}".strip()
    if response.status_code == 429 or response.status_code >= 500:
        raise DeliveryUnavailableError(reason, retry_after_s=retry_after(response))
    raise DeliveryRefusedError(reason)


class Sink(Protocol):
    """A helpdesk that takes replies."""

    name: str

    def find(self, reply: Reply) -> str | None:
        """The reference of `reply` if the helpdesk already has it (None: not there, or it cannot tell)."""

    def send(self, reply: Reply, *, status: str) -> str:
        """Post `reply` and set the ticket's `status`; return the helpdesk's reference of it."""


@dataclass
class ZendeskSink:
    """Zendesk Support's Tickets API: `PUT /api/v2/tickets/{id}.json`, `GET /api/v2/tickets/{id}/comments.json`."""

    client: httpx.Client
    name: str = "zendesk"

    @classmethod
    def from_settings(cls, settings: DeliverySettings) -> ZendeskSink:
        """A sink on `zendesk_url`, authenticated by OAuth bearer token or by `email/token` and API token."""
        headers: dict[str, str] = {}
        auth: httpx.BasicAuth | None = None
        if settings.zendesk_oauth_token is not None:
            headers["Authorization"] = f"Bearer {settings.zendesk_oauth_token.get_secret_value()}"
        elif settings.zendesk_api_token is not None and settings.zendesk_email:
            auth = httpx.BasicAuth(f"{settings.zendesk_email}/token", settings.zendesk_api_token.get_secret_value())
        else:
            raise NoDestinationError(
                "Zendesk needs credentials: set STREAMDESK_DELIVERY__ZENDESK_OAUTH_TOKEN, or "
                "STREAMDESK_DELIVERY__ZENDESK_EMAIL and STREAMDESK_DELIVERY__ZENDESK_API_TOKEN"
            )
        client = httpx.Client(
            base_url=(settings.zendesk_url or "").rstrip("/"), headers=headers, auth=auth, timeout=settings.timeout_s
        )
        return cls(client=client)

    def _get(self, url: str) -> dict[str, Any]:
        try:
            response = self.client.get(url)
        except httpx.HTTPError as exc:
            raise DeliveryUnavailableError(f"GET {url}: {exc}") from exc
        return dict(check_response(response, what=f"GET {url}").json())

    def find(self, reply: Reply) -> str | None:
        """The id of the ticket's comment stamped with the reply id, following every page of comments."""
        url: str | None = f"/api/v2/tickets/{reply.ticket_id}/comments.json"
        mark = stamp(reply.reply_id)
        while url:
            page = self._get(url)
            for comment in page.get("comments") or []:
                if mark in str(comment.get("body") or ""):
                    return str(comment.get("id"))
            url = page.get("next_page")
        return None

    def send(self, reply: Reply, *, status: str) -> str:
        """One public comment and the status change, in one ticket update; the new audit's id is the reference."""
        url = f"/api/v2/tickets/{reply.ticket_id}.json"
        body = {"ticket": {"comment": {"body": comment_body(reply), "public": True}, "status": status}}
        try:
            response = self.client.put(url, json=body)
        except httpx.HTTPError as exc:
            raise DeliveryUnavailableError(f"PUT {url}: {exc}") from exc
        answer = check_response(response, what=f"PUT {url}").json()
        audit = answer.get("audit") or {}
        return str(audit.get("id") or (answer.get("ticket") or {}).get("id") or reply.ticket_id)


@dataclass
class WebhookSink:
    """A generic helpdesk: the reply as JSON, POSTed with a timestamped HMAC-SHA256 signature."""

    client: httpx.Client
    url: str
    secret: str
    name: str = "webhook"

    @classmethod
    def from_settings(cls, settings: DeliverySettings) -> WebhookSink:
        """A sink on `webhook_url` signing with `webhook_secret`."""
        secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
        return cls(client=httpx.Client(timeout=settings.timeout_s), url=settings.webhook_url or "", secret=secret)

    def find(self, reply: Reply) -> str | None:
        """A webhook cannot be asked; the receiver drops repeats of the `Idempotency-Key`."""
        return None

    def send(self, reply: Reply, *, status: str) -> str:
        """POST the reply with `status`, signed; the reply id is the reference."""
        body = json.dumps({**reply.to_json(), "ticket_status": status}, separators=(",", ":")).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(body, secret=self.secret, timestamp=timestamp),
            IDEMPOTENCY_HEADER: reply.reply_id,
        }
        try:
            response = self.client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryUnavailableError(f"POST {self.url}: {exc}") from exc
        check_response(response, what=f"POST {self.url}")
        return reply.reply_id


def sink_for(source: str, *, settings: DeliverySettings, sinks: dict[str, Sink]) -> Sink:
    """The sink of a ticket from `source` (built once, kept in `sinks`): Zendesk for `zendesk`, else the webhook."""
    name = "zendesk" if source == "zendesk" and settings.zendesk_url else "webhook" if settings.webhook_url else ""
    if not name:
        raise NoDestinationError(
            f"no helpdesk configured for {source!r} tickets: set STREAMDESK_DELIVERY__ZENDESK_URL "
            "(Zendesk tickets) or STREAMDESK_DELIVERY__WEBHOOK_URL and __WEBHOOK_SECRET"
        )
    if name not in sinks:
        sinks[name] = ZendeskSink.from_settings(settings) if name == "zendesk" else WebhookSink.from_settings(settings)
    return sinks[name]
