"""Answering stored ticket events: parse, find the verified customer, answer, store, publish; the worker's work.

The agent reads `ticket.stored`, which the ingest ticket hop writes after its store transaction commits:
each record carries the event and the ticket as stored, so the agent never reads the `tickets` row back.

Runs on the agent worker's executor thread, free of Faust. Each message is handled under the shared
error runner (`streams/errors.py`): bad data and refused requests are dead-lettered, lost connections
are retried for a while, anything else crashes the worker before its offsets commit. An event is
answered at most once (`answers` is unique on the event id); a redelivered one is only published again
if its answer never went out. The audit records it appends reach the `audit` topic through the audit
relay (`streamdesk worker audit-relay`), not through this worker.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Sequence
from typing import Any

import psycopg
from opentelemetry import trace

from streamdesk import db, telemetry
from streamdesk.agent import answers, backends, loop, packs, tools
from streamdesk.agent.answer_config import AnswerSettings, get_answer_settings
from streamdesk.agent.answers import Answer, Ticket
from streamdesk.agent.exceptions import ToolError
from streamdesk.agent.models import ToolCall, ToolContext
from streamdesk.audit import service as audit
from streamdesk.audit.models import AuditAction, AuditEvent
from streamdesk.config import Settings, get_settings
from streamdesk.contracts import StoredTicket
from streamdesk.entities import store as entities
from streamdesk.identity import service as identity
from streamdesk.identity.models import Principal, agent_for_customer
from streamdesk.ingest import processors
from streamdesk.kafka import Publisher
from streamdesk.streams import deadletter
from streamdesk.streams.deadletter import dead_letter_for, store_dead_letters
from streamdesk.streams.errors import ErrorRunner
from streamdesk.streams.messages import RawMessage

log = logging.getLogger(__name__)
ANSWERED_EVENTS = frozenset({"created", "comment_added"})
IDENTITY_REQUEST = (
    "Thank you for your message. We could not match it to a customer account yet. To help you, please reply "
    "with {what}."
)
"""The reply to a ticket nothing identifies: it asks for what identifies the customer (the pack says what)."""


def requester_email(conn: psycopg.Connection, *, ticket: Ticket) -> str | None:
    """The requester's email: on the ticket, else on the helpdesk's user record of the requester."""
    if ticket.requester_email:
        return ticket.requester_email
    if not ticket.requester_id:
        return None
    user = entities.get_entity(
        conn, entity_type="customer", external_id=f"user:{ticket.requester_id}", source=ticket.source
    )
    email = (user or {}).get("attributes", {}).get("email")
    return str(email) if email else None


def principal_for(conn: psycopg.Connection, *, ticket: Ticket) -> Principal | None:
    """The agent identity for the ticket's verified customer.

    The ticket's customer id when the source names one; else the one customer of another system (the ERP)
    whose email is the requester's (from the ticket, or from the helpdesk's record of the requester).
    The helpdesk's own user records are not customers the agent can act for, so they never match.
    """
    if ticket.customer_id:
        return identity.agent_identity(customer_id=ticket.customer_id, tenant=ticket.tenant)
    email = requester_email(conn, ticket=ticket)
    if email:
        matches = [
            row
            for row in entities.find_customers_by_email(conn, email=email)
            if row["tenant"] == ticket.tenant and row["source"] != ticket.source
        ]
        if len(matches) == 1:
            return identity.agent_identity(customer_id=matches[0]["external_id"], tenant=ticket.tenant)
    return identified_in_text(conn, ticket=ticket)


def identified_in_text(
    conn: psycopg.Connection, *, ticket: Ticket, pack: packs.DomainPack | None = None
) -> Principal | None:
    """The agent identity for the customer the ticket's own words identify (an email, a name and zip code).

    The pack's rules name the look-ups (`IntentRules.identity_reads`); they run as reads confined to the
    ticket's tenant, and the loop makes them again on the one audited path as its first reads.
    """
    rules = packs.resolve(pack).intents
    registry = tools.default_registry(pack)
    context = ToolContext(actor="agent:identify", tenant=ticket.tenant)
    history: list[tuple[ToolCall, dict[str, Any] | None]] = []
    for call in rules.identity_reads(rules.recognise(ticket.text)):
        try:
            history.append((call, registry.call(conn, name=call.tool, arguments=call.arguments, context=context)))
        except ToolError:
            history.append((call, None))
        customer_id = rules.identified(history)
        if customer_id:
            return identity.agent_identity(customer_id=customer_id, tenant=ticket.tenant)
    return None


WARM_UP_CUSTOMER = "warm-up"
"""The customer of the principal the warm-up builds the system prompt for (it names tools, not customers)."""


class AnswerService:
    """Answers ticket events one by one on a dedicated connection, model and producer."""

    def __init__(
        self, *, settings: Settings, answer_settings: AnswerSettings | None = None, backend: backends.LLMBackend
    ) -> None:
        if not settings.kafka.bootstrap_servers:
            raise SystemExit("no broker configured: set KAFKA_BOOTSTRAP_SERVERS or run `streamdesk up`")
        self.settings = settings
        self.answer_settings = answer_settings or get_answer_settings()
        self.backend = backend
        self.registry = tools.default_registry()
        self.publisher = Publisher(settings.kafka.bootstrap_servers, client_id="streamdesk-agent")
        self.errors = ErrorRunner(retry_for_s=self.answer_settings.worker_retry_for_s, on_error=self._drop_connection)
        self._conn: psycopg.Connection | None = None

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> AnswerService:
        """The service with the configured backend (loaded and warmed now, before the worker joins its group)."""
        settings = settings or get_settings()
        service = cls(settings=settings, backend=backends.get_backend(settings.agent))
        loop.warm_up(
            service.backend,
            registry=service.registry,
            principal=agent_for_customer(WARM_UP_CUSTOMER),
            settings=service.answer_settings,
        )
        return service

    @property
    def conn(self) -> psycopg.Connection:
        """An autocommit connection: every audited step commits on its own."""
        if self._conn is None or self._conn.closed:
            self._conn = db.connect(db.database_url(self.settings), autocommit=True)
        return self._conn

    def handle_batch(self, messages: Sequence[RawMessage]) -> None:
        """Handle each message under the error runner; return when every answer is stored and published."""
        for message in messages:
            self.errors.run(
                functools.partial(self.handle, message),
                what=f"answering {message.topic}/{message.partition}@{message.offset}",
                dead_letter=functools.partial(self._dead_letter_retrying, message),
            )

    def _drop_connection(self, exc: Exception) -> None:
        if isinstance(exc, psycopg.OperationalError) and self._conn is not None:
            self._conn.close()

    def _dead_letter_retrying(self, message: RawMessage, exc: Exception) -> None:
        self.errors.run(functools.partial(self._dead_letter, message, exc), what="dead letter")

    def _dead_letter(self, message: RawMessage, exc: Exception) -> None:
        letter = dead_letter_for(message, exc, stage="ticket")
        with self.conn.transaction():
            ids = store_dead_letters(self.conn, letters=[letter])
        deadletter.announce(self.publisher, [letter], ids)
        self.publisher.flush()
        log.warning("dead-lettered %s/%s@%s: %s", message.topic, message.partition, message.offset, letter.reason)

    def handle(self, message: RawMessage) -> Answer | None:
        """Answer one ticket event (once), store it and publish it, in the trace the message carries."""
        parent = telemetry.extract_context(message.headers)
        attributes: dict[str, Any] = {
            "messaging.system": "kafka",
            "messaging.operation.type": "process",
            "messaging.destination.name": message.topic,
            "messaging.kafka.offset": message.offset,
        }
        span_name = f"process {message.topic}"
        with telemetry.tracer(__name__).start_as_current_span(
            span_name, context=parent, kind=trace.SpanKind.CONSUMER, attributes=attributes
        ):
            record: StoredTicket = processors.parse_canonical(message)
            event = record.event
            if event.event_type not in ANSWERED_EVENTS or event.event_id.startswith("agent:"):
                return None
            stored = answers.answer_for_event(self.conn, event_id=event.event_id)
            if stored is None:
                started = time.perf_counter()
                stored, _ = answers.store_answer(self.conn, answer=self.answer(record))
                telemetry.record_answer(seconds=time.perf_counter() - started, status=stored.status)
            elif answers.is_published(self.conn, answer_id=stored.answer_id):
                return stored
            self.publish(stored)
            return stored

    def answer(self, record: StoredTicket) -> Answer:
        """The answer to one stored ticket event: the loop as the verified customer's agent, or an escalation."""
        ticket = Ticket.from_stored(record)
        principal = principal_for(self.conn, ticket=ticket)
        if principal is None:
            return self._unverified(ticket)
        result = loop.answer_ticket(
            self.conn,
            ticket=ticket,
            principal=principal,
            backend=self.backend,
            registry=self.registry,
            settings=self.answer_settings,
        )
        return result.answer

    def _audit(self, **fields: Any) -> str | None:
        """Append an audit event carrying the current span's trace ids; the trace id (None outside a span)."""
        trace_id, span_id = telemetry.span_ids()
        audit.append(self.conn, event=AuditEvent(trace_id=trace_id, span_id=span_id, **fields))
        return trace_id

    def _unverified(self, ticket: Ticket) -> Answer:
        """A draft that asks the customer for what identifies them: nothing is read or written for nobody."""
        pack = packs.resolve_default()
        reason = "nothing identifies the customer (customer id, requester email, details in the text); asked for them"
        record = {"ticket_id": ticket.ref, "tenant": ticket.tenant, "decision": "identity_requested", "reason": reason}
        trace_id = self._audit(action=AuditAction.GUARDRAIL, **record)
        return Answer(
            event_id=ticket.event_id,
            source=ticket.source,
            ticket_id=ticket.ticket_id,
            tenant=ticket.tenant,
            status="draft",
            text=IDENTITY_REQUEST.format(what=pack.intents.identity_request),
            model=self.backend.model_name,
            prompt_version=pack.prompt_tag,
            trace_id=trace_id,
        )

    def publish(self, answer: Answer) -> None:
        """Deliver the `answer` event (with the trace context), then record that it went out."""
        headers = telemetry.inject_headers({"answer_id": answer.answer_id})
        self.publisher.publish(
            answers.ANSWER_TOPIC, answer.to_event(), key=f"{answer.source}:{answer.ticket_id}", headers=headers
        )
        self.publisher.flush()
        answers.mark_published(self.conn, answer_id=answer.answer_id)
        self._audit(
            action=AuditAction.ANSWER_PUBLISHED,
            tenant=answer.tenant,
            **answers.audit_fields(answer),
            decision=answer.status,
            details={"answer_id": answer.answer_id, "event_id": answer.event_id},
        )
