"""Answering stored ticket events: parse, find the verified customer, answer, store, publish; the worker's work.

The agent reads `ticket.stored`, which the ingest ticket hop writes after its store transaction commits:
each record carries the event and the ticket as stored, so the agent never reads the `tickets` row back.

Runs on the agent worker's executor thread, free of Faust. Each message is handled under the shared
error runner (`streams/errors.py`): bad data and refused requests are dead-lettered, lost connections
are retried for a while, anything else crashes the worker before its offsets commit. An event is
answered at most once (`answers` is unique on the event id); a redelivered one is only published again
if its answer never went out. Each message is answered with its ticket's thread in view
(`agent.conversations`): the open request it may complete, the changes held for the customer's
confirmation, the customer already identified; the answer and the state it leaves are stored together.
The audit records it appends reach the `audit` topic through the audit relay (`streamdesk worker
audit-relay`), not through this worker.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import psycopg
from opentelemetry import trace

from streamdesk import db, telemetry
from streamdesk.agent import answers, backends, conversations, loop, packs, tools
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
    return identify(conn, ticket=ticket)[0]


def identify(
    conn: psycopg.Connection, *, ticket: Ticket, conversation: packs.Conversation = packs.NO_CONVERSATION
) -> tuple[Principal | None, str | None]:
    """The verified customer's agent identity and how it was established (None, None: nobody yet).

    The ticket's customer id, the requester's email, the customer an earlier message of the thread
    established, or the details the thread's customer messages give (an email, a name and zip code).
    """
    if ticket.customer_id:
        return identity.agent_identity(customer_id=ticket.customer_id, tenant=ticket.tenant), "ticket_customer_id"
    email = requester_email(conn, ticket=ticket)
    if email:
        matches = [
            row
            for row in entities.find_customers_by_email(conn, email=email)
            if row["tenant"] == ticket.tenant and row["source"] != ticket.source
        ]
        if len(matches) == 1:
            principal = identity.agent_identity(customer_id=matches[0]["external_id"], tenant=ticket.tenant)
            return principal, "requester_email"
    if conversation.customer_id:
        principal = identity.agent_identity(customer_id=conversation.customer_id, tenant=ticket.tenant)
        return principal, conversation.identified_by
    earlier = conversation.customer_text
    thread = ticket.model_copy(update={"body": f"{earlier}\n\n{ticket.body}" if earlier else ticket.body})
    found = identified_in_text(conn, ticket=thread)
    return found, "ticket_text" if found is not None else None


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


def answer_turn(
    conn: psycopg.Connection,
    *,
    ticket: Ticket,
    backend: backends.LLMBackend,
    registry: tools.ToolRegistry,
    settings: AnswerSettings,
    approver: Principal | None = None,
) -> tuple[Answer, conversations.TurnOutcome]:
    """Answer one customer message with its ticket's thread in view; the answer and the state it leaves.

    The message joins the thread (once per event id). A later message is read without the ticket's subject
    (the open request carries it). The caller stores the answer and the outcome
    (`conversations.record_agent_turn`).
    """
    conversations.record_customer_message(
        conn, source=ticket.source, ticket_id=ticket.ticket_id, tenant=ticket.tenant, event_id=ticket.event_id,
        text=ticket.body or ticket.subject,
    )  # fmt: skip
    conversation = conversations.load(
        conn, source=ticket.source, ticket_id=ticket.ticket_id, before_event=ticket.event_id
    )
    if conversation.turns:
        ticket = ticket.model_copy(update={"subject": ""})
    principal, how = identify(conn, ticket=ticket, conversation=conversation)
    if principal is None:
        earlier = conversation.open_request
        outcome = conversations.TurnOutcome(
            customer_id=None, identified_by=None,
            open_request=f"{earlier}\n\n{ticket.text}" if earlier else ticket.text,
            held_actions=conversation.held_actions, facts=conversation.facts,
            pending_action_ids=conversation.pending_action_ids, decision="identity_requested",
        )  # fmt: skip
        return unverified_answer(conn, ticket=ticket, model=backend.model_name), outcome
    result = loop.answer_ticket(
        conn, ticket=ticket, principal=principal, backend=backend, registry=registry, settings=settings,
        approver=approver, conversation=conversation,
    )  # fmt: skip
    pending = dict.fromkeys([*conversation.pending_action_ids, *result.answer.pending_action_ids])
    outcome = conversations.TurnOutcome(
        customer_id=principal.customer_id, identified_by=how, open_request=result.open_request,
        held_actions=result.held, facts=result.facts, pending_action_ids=list(pending), decision=result.decision,
    )  # fmt: skip
    return result.answer, outcome


def answer_once(
    conn: psycopg.Connection,
    *,
    ticket: Ticket,
    backend: backends.LLMBackend,
    registry: tools.ToolRegistry,
    settings: AnswerSettings,
) -> Answer:
    """The stored answer to the ticket event: the earlier one when it was answered before, else a new one."""
    stored = answers.answer_for_event(conn, event_id=ticket.event_id)
    if stored is not None:
        return stored
    answer, outcome = answer_turn(conn, ticket=ticket, backend=backend, registry=registry, settings=settings)
    return record_answer(conn, answer=answer, outcome=outcome)


def record_answer(conn: psycopg.Connection, *, answer: Answer, outcome: conversations.TurnOutcome) -> Answer:
    """Store `answer` and the state its turn leaves in one transaction; the stored answer (an earlier one if any)."""
    with conn.transaction():
        stored, new = answers.store_answer(conn, answer=answer)
        if new:
            conversations.record_agent_turn(
                conn, source=stored.source, ticket_id=stored.ticket_id, event_id=stored.event_id,
                answer_id=stored.answer_id, text=stored.text, outcome=outcome,
            )  # fmt: skip
    return stored


def _audit(conn: psycopg.Connection, **fields: Any) -> str | None:
    """Append an audit event carrying the current span's trace ids; the trace id (None outside a span)."""
    trace_id, span_id = telemetry.span_ids()
    audit.append(conn, event=AuditEvent(trace_id=trace_id, span_id=span_id, **fields))
    return trace_id


def unverified_answer(conn: psycopg.Connection, *, ticket: Ticket, model: str) -> Answer:
    """A draft that asks the customer for what identifies them: nothing is read or written for nobody."""
    pack = packs.resolve_default()
    reason = "nothing identifies the customer (customer id, requester email, details in the text); asked for them"
    record = {"ticket_id": ticket.ref, "tenant": ticket.tenant, "decision": "identity_requested", "reason": reason}
    trace_id = _audit(conn, action=AuditAction.GUARDRAIL, **record)
    return Answer(
        event_id=ticket.event_id,
        source=ticket.source,
        ticket_id=ticket.ticket_id,
        tenant=ticket.tenant,
        status="draft",
        text=IDENTITY_REQUEST.format(what=pack.intents.identity_request),
        model=model,
        prompt_version=pack.prompt_tag,
        trace_id=trace_id,
    )


WARM_UP_CUSTOMER = "warm-up"
"""The customer of the principal the warm-up builds the system prompt for (it names tools, not customers)."""


@contextmanager
def claimed_event(conn: psycopg.Connection, *, event_id: str) -> Iterator[None]:
    """Hold the ticket event's claim (a session advisory lock) while it is answered and published.

    During a rebalance a partition's old owner may still be working on a batch its new owner has been handed
    again (Faust redelivers what was not committed): the second worker waits here, then finds the answer stored
    and published. A killed worker's claim ends with its connection.
    """
    conn.execute("SELECT pg_advisory_lock(hashtext('answer-event'), hashtext(%s))", (event_id,))
    try:
        yield
    finally:
        with suppress(psycopg.Error):  # a broken connection has released it already
            conn.execute("SELECT pg_advisory_unlock(hashtext('answer-event'), hashtext(%s))", (event_id,))


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
        self._next: AnswerSettings | None = None
        self._swap = threading.Lock()

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

    def prepare_adapter(self, adapter: str | None) -> None:
        """Load `adapter` (None: the base model) beside the serving one while tickets go on; the next runs under it.

        Not warmed: reading the system prompt under it would hold the model from the ticket in flight for a
        whole prefill; the first ticket under it reads the prompt once, as after a cache eviction.
        """
        settings = self.answer_settings.model_copy(update={"adapter": adapter})
        self.backend.load_adapter(adapter)
        with self._swap:
            self._next = settings

    def settings_for_next_ticket(self) -> AnswerSettings:
        """The settings the next ticket runs under, every step of it: a prepared adapter takes over here."""
        with self._swap:
            prepared, self._next = self._next, None
        if prepared is not None:
            log.info("answering under adapter %s from here on", prepared.adapter or "base")
            self.answer_settings = prepared
        return self.answer_settings

    @property
    def conn(self) -> psycopg.Connection:
        """An autocommit connection: every audited step commits on its own."""
        if self._conn is None or self._conn.closed:
            self._conn = db.connect(db.database_url(self.settings), autocommit=True)
        return self._conn

    def close(self) -> None:
        """Release the producer and the connection (a stopped worker stops calling the broker)."""
        self.publisher.release()
        if self._conn is not None:
            self._conn.close()

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
            if not conversations.from_customer(event):
                conversations.record_staff_message(
                    self.conn, source=event.source, ticket_id=event.ticket_id, tenant=event.tenant,
                    event_id=event.event_id, text=event.body or "",
                )  # fmt: skip
                log.info("not answering %s: staff or streamdesk wrote it, not the customer", event.event_id)
                return None
            with claimed_event(self.conn, event_id=event.event_id):
                stored = answers.answer_for_event(self.conn, event_id=event.event_id)
                if stored is None:
                    started = time.perf_counter()
                    stored = answer_once(
                        self.conn,
                        ticket=Ticket.from_stored(record),
                        backend=self.backend,
                        registry=self.registry,
                        settings=self.settings_for_next_ticket(),
                    )
                    telemetry.record_answer(seconds=time.perf_counter() - started, status=stored.status)
                elif answers.is_published(self.conn, answer_id=stored.answer_id):
                    return stored
                self.publish(stored)
            return stored

    def publish(self, answer: Answer) -> None:
        """Deliver the `answer` event (with the trace context), then record that it went out."""
        headers = telemetry.inject_headers({"answer_id": answer.answer_id})
        self.publisher.publish(
            answers.ANSWER_TOPIC, answer.to_event(), key=f"{answer.source}:{answer.ticket_id}", headers=headers
        )
        self.publisher.flush()
        answers.mark_published(self.conn, answer_id=answer.answer_id)
        _audit(
            self.conn,
            action=AuditAction.ANSWER_PUBLISHED,
            tenant=answer.tenant,
            **answers.audit_fields(answer),
            decision=answer.status,
            details={"answer_id": answer.answer_id, "event_id": answer.event_id},
        )
