"""Zendesk: event webhooks (zen:event-type:ticket.*), Snowplow ticket_updated bodies, and API records
(organizations, users, tickets) as the Confluent Zendesk source connector writes them."""

from __future__ import annotations

import re
from typing import Any, cast

from connectors.base import Connector, ConnectorError, RawMessage, decode_json
from connectors.entities import canonical_attributes
from connectors.guard import guarded
from connectors.times import from_epoch_ms, parse_time, sub_ms_nanos, time_ms
from connectors.versions import version_tag
from connectors.wire import as_list, as_object, unwrap_connect
from streamdesk.contracts import CanonicalEvent, EntityEvent, Requester, TicketEvent, TicketEventType

PREFIX = "zen:event-type:"
# ticket event types with their own canonical type
TICKET_EVENTS = {
    "ticket.created": "created",
    "ticket.comment_added": "comment_added",
    "ticket.status_changed": "status_changed",
    "ticket.priority_changed": "priority_changed",
    "ticket.agent_assignment_changed": "assignment_changed",
}
# other documented ticket event types: the ticket changed in some other way
TICKET_UPDATES = frozenset(
    {
        "ticket.subject_changed", "ticket.description_changed", "ticket.tags_changed",
        "ticket.group_assignment_changed", "ticket.custom_status_changed", "ticket.custom_field_changed",
        "ticket.type_changed", "ticket.requester_changed", "ticket.submitter_changed",
        "ticket.organization_changed", "ticket.brand_changed", "ticket.form_changed",
        "ticket.email_ccs_changed", "ticket.followers_changed", "ticket.task_due_at_changed",
        "ticket.comment_made_private", "ticket.marked_as_spam", "ticket.merged", "ticket.soft_deleted",
        "ticket.permanently_deleted", "ticket.undeleted", "ticket.problem_link_changed",
    }
)  # fmt: skip
SNOWPLOW_METADATA = (
    "latestComment", "latestCommentAuthorName", "latestCommentIsPublic", "groupAssigned", "organizationName",
    "ticketType", "via", "url", "brand", "account", "dueDate",
)  # fmt: skip
RECORD_URL = re.compile(r"/api/v2/(organizations|users|tickets)/(\d+)")
_TICKET_SUBJECT = re.compile(r"^zen:ticket:(\d+)$")


def _text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _lower(value: Any) -> str | None:
    return None if value in (None, "") else str(value).lower()


def _by_requester(comment: dict[str, Any], requester_id: str | None) -> bool:
    """Whether the ticket's requester wrote `comment` (not staff, not an API user such as streamdesk itself)."""
    author = as_object(comment.get("author"))
    if author.get("is_staff") is True:
        return False
    author_id = _text(author.get("id"))
    return author_id is None or requester_id is None or author_id == requester_id


class ZendeskConnector(Connector):
    """Zendesk webhooks and records -> TicketEvents, organizations and users -> customer EntityEvents."""

    family = "zendesk"

    @guarded
    def parse(self, message: RawMessage) -> list[CanonicalEvent]:
        """Canonical events for one Zendesk webhook body or API record."""
        body = unwrap_connect(decode_json(message.value))
        if not isinstance(body, dict):
            raise ConnectorError(f"Zendesk payload must be a JSON object, got {type(body).__name__}")
        if isinstance(body.get("type"), str) and "detail" in body:
            return [self._webhook(body)]
        if "ticketId" in body and "updatedAt" in body:
            return [self._snowplow_ticket(body)]
        match = RECORD_URL.search(str(body.get("url") or ""))
        if match:
            kind = match.group(1)
            if kind == "tickets":
                return [self._ticket_record(body)]
            return [self._party_record(body, kind)]
        raise ConnectorError(
            "Zendesk payload is neither an event webhook (type + detail), a ticket_updated body "
            "(ticketId + updatedAt) nor an API record with an /api/v2/{organizations,users,tickets}/ url"
        )

    def _webhook(self, body: dict[str, Any]) -> TicketEvent:
        full_type = str(body["type"])
        kind = full_type.removeprefix(PREFIX)
        if not full_type.startswith(PREFIX) or (kind not in TICKET_EVENTS and kind not in TICKET_UPDATES):
            raise ConnectorError(
                f"unknown Zendesk event type {full_type!r}; supported: "
                f"{', '.join(PREFIX + k for k in TICKET_EVENTS)} and other {PREFIX}ticket.* changes"
            )
        event_id = body.get("id")
        if not event_id:
            raise ConnectorError(f"Zendesk {kind} webhook has no event 'id'; cannot de-duplicate it")
        detail, event = as_object(body["detail"]), as_object(body.get("event"))
        ticket_id = _text(detail.get("id"))
        if ticket_id is None:
            match = _TICKET_SUBJECT.match(str(body.get("subject") or ""))
            ticket_id = match.group(1) if match else None
        if ticket_id is None:
            raise ConnectorError(f"Zendesk {kind} webhook {event_id} names no ticket (detail.id or subject)")
        moment = body.get("time") or detail.get("updated_at")
        if not isinstance(moment, str):
            raise ConnectorError(f"Zendesk {kind} webhook {event_id} has no ISO 'time'")
        version = [time_ms(moment, what="Zendesk event time"), sub_ms_nanos(moment)]
        event_type = TICKET_EVENTS.get(kind, "updated")
        comment = as_object(event.get("comment"))
        body_text = {"created": detail.get("description"), "comment_added": comment.get("body")}.get(event_type)
        status, priority, assignee = detail.get("status"), detail.get("priority"), detail.get("assignee_id")
        if event_type == "status_changed":
            status = event.get("current", status)
        elif event_type == "priority_changed":
            priority = event.get("current", priority)
        elif event_type == "assignment_changed":
            assignee = event.get("current", assignee)
        metadata: dict[str, Any] = {"zendesk_type": kind, "account_id": body.get("account_id")}
        if "previous" in event:
            metadata["previous"] = event["previous"]
        requester_id = _text(detail.get("requester_id"))
        if comment:
            metadata["comment"] = {key: comment.get(key) for key in ("id", "is_public", "author")}
            metadata["from_requester"] = _by_requester(comment, requester_id)
        for key in ("type", "via", "group_id", "brand_id", "actor_id", "is_public"):
            if detail.get(key) is not None:
                metadata[key] = detail[key]
        return TicketEvent(
            event_id=f"zendesk:{event_id}",
            source=self.source,
            ticket_id=ticket_id,
            event_type=cast(TicketEventType, event_type),
            version=version,
            occurred_at=parse_time(moment, what="Zendesk event time"),
            subject=_text(detail.get("subject")),
            body=_text(body_text),
            status=_lower(status),
            priority=_lower(priority),
            assignee_id=_text(assignee),
            requester=Requester(id=requester_id) if requester_id else None,
            customer_id=_text(detail.get("organization_id")),
            tags=[str(tag) for tag in as_list(detail.get("tags"))],
            tenant=self.tenant,
            metadata=metadata,
        )

    def _snowplow_ticket(self, body: dict[str, Any]) -> TicketEvent:
        ticket_id = _text(body.get("ticketId"))
        if ticket_id is None:
            raise ConnectorError("Zendesk ticket_updated body has an empty ticketId")
        updated = body.get("updatedAt")
        ms = time_ms(updated, what="ticket_updated updatedAt")
        version = [ms, sub_ms_nanos(updated) if isinstance(updated, str) else 0]
        tags = body.get("tags")
        return self._updated(
            ticket_id,
            event_id=f"zendesk:ticket_updated:{ticket_id}:{version_tag(version)}",
            version=version,
            ms=ms,
            subject=_text(body.get("ticketTitle")),
            status=_lower(body.get("status")),
            priority=_lower(body.get("priority")),
            customer_id=_text(body.get("organizationId")),
            tags=str(tags).split() if tags else [],
            metadata={key: body.get(key) for key in SNOWPLOW_METADATA if body.get(key) is not None},
        )

    def _ticket_record(self, body: dict[str, Any]) -> TicketEvent:
        ticket_id = _text(body.get("id"))
        if ticket_id is None:
            raise ConnectorError("Zendesk ticket record has no id")
        ms = time_ms(body.get("updated_at"), what=f"Zendesk ticket {ticket_id} updated_at")
        requester_id = _text(body.get("requester_id"))
        tags = body.get("tags")
        return self._updated(
            ticket_id,
            event_id=f"zendesk:ticket:{ticket_id}:{ms}",
            version=[ms, 0],
            ms=ms,
            subject=_text(body.get("subject") or body.get("raw_subject")),
            body=_text(body.get("description")),
            status=_lower(body.get("status")),
            priority=_lower(body.get("priority")),
            assignee_id=_text(body.get("assignee_id")),
            requester=Requester(id=requester_id) if requester_id else None,
            customer_id=_text(body.get("organization_id")),
            tags=[str(t) for t in tags] if isinstance(tags, list) else str(tags or "").split(),
            metadata={"type": body.get("type"), "via": body.get("via"), "url": body.get("url")},
        )

    def _updated(self, ticket_id: str, *, event_id: str, version: list[int], ms: int, **fields: Any) -> TicketEvent:
        """An `updated` event for `ticket_id` at epoch `ms` (a snapshot of the ticket, not one change)."""
        return TicketEvent(
            event_id=event_id,
            source=self.source,
            ticket_id=ticket_id,
            event_type="updated",
            version=version,
            occurred_at=from_epoch_ms(ms),
            tenant=self.tenant,
            **fields,
        )

    def _party_record(self, body: dict[str, Any], kind: str) -> EntityEvent:
        record_id = _text(body.get("id"))
        if record_id is None:
            raise ConnectorError(f"Zendesk {kind} record has no id")
        singular = kind.rstrip("s")
        ms = time_ms(body.get("updated_at"), what=f"Zendesk {singular} {record_id} updated_at")
        attributes = dict(body)
        attributes["kind"] = singular if singular == "organization" else "person"
        return EntityEvent(
            event_id=f"zendesk:{singular}:{record_id}:{ms}",
            source=self.source,
            entity_type="customer",
            external_id=f"{singular}:{record_id}",
            op="delete" if body.get("deleted_at") or body.get("active") is False else "upsert",
            version=[ms],
            occurred_at=from_epoch_ms(ms),
            partial=False,
            attributes=canonical_attributes("customer", attributes),
            tenant=self.tenant,
        )
