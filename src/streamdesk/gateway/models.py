"""What the gateway knows about each source, and the record of an accepted delivery."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from streamdesk.gateway import signatures
from streamdesk.gateway.signatures import Verifier

KeyPath = tuple[str | int, ...]

STREAMDESK_DELIVERY_ID = "x-streamdesk-delivery-id"


@dataclass(frozen=True)
class Source:
    """One push-only system: how it signs, where its deliveries go, and how they are keyed."""

    name: str
    family: str
    verify: Verifier
    delivery_header: str | None
    key_paths: tuple[KeyPath, ...]
    forwarded_headers: tuple[str, ...] = ()

    @property
    def secret_field(self) -> str:
        """The `Settings.gateway` field holding this source's secret."""
        return f"{self.name}_secret"


SOURCES: dict[str, Source] = {
    source.name: source
    for source in (
        Source(
            name="salesforce",
            family="salesforce",
            verify=signatures.verify_streamdesk,
            delivery_header=STREAMDESK_DELIVERY_ID,
            key_paths=(
                ("payload", "ChangeEventHeader", "recordIds", 0),
                ("ChangeEventHeader", "recordIds", 0),
                ("sobject", "Id"),
                ("payload", "Id"),
                ("Id",),
                ("replayId",),
                ("ReplayId",),
            ),
        ),
        Source(
            name="hubspot",
            family="hubspot",
            verify=signatures.verify_hubspot,
            delivery_header=None,
            key_paths=((0, "objectId"), ("objectId",)),
        ),
        Source(
            name="zendesk",
            family="zendesk",
            verify=signatures.verify_zendesk,
            delivery_header="x-zendesk-webhook-invocation-id",
            key_paths=(("detail", "id"), ("ticket", "id"), ("ticket_id",)),
        ),
        Source(
            name="wordpress",
            family="wordpress",
            verify=signatures.verify_streamdesk,
            delivery_header=STREAMDESK_DELIVERY_ID,
            key_paths=(("ID",), ("post", "ID"), ("post_id",), ("id",)),
        ),
        Source(
            name="contentful",
            family="contentful",
            verify=signatures.verify_contentful,
            delivery_header="x-contentful-idempotency-key",
            key_paths=(("sys", "id"),),
            forwarded_headers=("x-contentful-topic",),
        ),
        Source(
            name="stripe",
            family="stripe",
            verify=signatures.verify_stripe,
            delivery_header=None,
            key_paths=(("data", "object", "id"), ("id",)),
        ),
        Source(
            name="generic",
            family="mapped",
            verify=signatures.verify_streamdesk,
            delivery_header=STREAMDESK_DELIVERY_ID,
            key_paths=(("id",), ("record_id",)),
        ),
    )
}


@dataclass(frozen=True)
class Delivery:
    """A webhook the gateway accepted: stored in `webhook_deliveries` (with its payload, for the relay)."""

    source: str
    delivery_id: str
    topic: str
    key: str
    received_at: datetime
    headers: dict[str, str] = field(default_factory=dict)
