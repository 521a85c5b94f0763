"""Store feedback signals, label the answers they are about, keep the training examples, export them for KTO.

Signals are stored as received (edited text redacted first) and never changed. Labelling is a pure
function of an answer and all its signals (`labels.label_answer`), so `relabel` can run again whenever
new signals arrive: an example whose label or text changes is rewritten and queued for training again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

import psycopg
from psycopg.rows import dict_row

from streamdesk.contracts import DataclassRecord, utcnow
from streamdesk.delivery import service as delivery
from streamdesk.delivery.models import REPLY_TOPIC, Reply, ReplyKind
from streamdesk.feedback import hygiene, labels
from streamdesk.feedback.config import FeedbackSettings, get_feedback_settings
from streamdesk.feedback.exceptions import AnswersUnavailableError, InvalidVerdictError, VerdictConflictError
from streamdesk.feedback.models import AnswerContext, ClassBalance, FeedbackEvent, KtoExample
from streamdesk.kafka import Publisher

FEEDBACK_TOPIC = "feedback"
VERDICTS = frozenset({"accepted", "edited", "rejected"})
"""Signal kinds that are a reviewer's verdict on a draft: one per answer, and an edit must change the draft."""
AnswerLookup = Callable[[psycopg.Connection, Sequence[str]], Mapping[str, AnswerContext]]
"""Given answer ids, what the label policy needs about each answer found (prompt, draft, ticket, adapter)."""

_FEEDBACK_COLUMNS = (
    "event_id, answer_id, ticket_id, kind, rating, edited_text, adapter_version, customer_id, annotator_id, "
    "tenant, occurred_at"
)
_INSERT_FEEDBACK = f"""
    INSERT INTO feedback ({_FEEDBACK_COLUMNS}) VALUES ({", ".join(["%s"] * 11)})
    ON CONFLICT (event_id) DO NOTHING
"""
_EXAMPLE_COLUMNS = (
    "answer_id, source, ticket_id, prompt, completion, label, adapter_version, policy_version, decided_by, "
    "signal_ids, customer_id, annotator_id, tenant, content_digest, heldout, trained_in"
)
_UPSERT_EXAMPLE = f"""
    INSERT INTO training_examples ({_EXAMPLE_COLUMNS})
    VALUES ({", ".join(["%s"] * 15)}, NULL)
    ON CONFLICT (answer_id, source) DO UPDATE SET
        ticket_id = EXCLUDED.ticket_id, prompt = EXCLUDED.prompt, completion = EXCLUDED.completion,
        label = EXCLUDED.label, adapter_version = EXCLUDED.adapter_version,
        policy_version = EXCLUDED.policy_version, decided_by = EXCLUDED.decided_by,
        signal_ids = EXCLUDED.signal_ids, customer_id = EXCLUDED.customer_id,
        annotator_id = EXCLUDED.annotator_id, tenant = EXCLUDED.tenant,
        content_digest = EXCLUDED.content_digest, heldout = EXCLUDED.heldout,
        trained_in = CASE
            WHEN training_examples.label = EXCLUDED.label
                 AND training_examples.content_digest = EXCLUDED.content_digest
            THEN training_examples.trained_in END,
        updated_at = now()
    WHERE (training_examples.label, training_examples.content_digest, training_examples.decided_by,
           training_examples.signal_ids, training_examples.policy_version)
          IS DISTINCT FROM (EXCLUDED.label, EXCLUDED.content_digest, EXCLUDED.decided_by,
                            EXCLUDED.signal_ids, EXCLUDED.policy_version)
    RETURNING (xmax = 0) AS inserted
"""
_ANSWERS_SQL = """
    SELECT a.answer_id::text AS answer_id, a.ticket_id, a.text AS completion, a.adapter AS adapter_version,
           a.created_at AS answered_at, coalesce(a.customer_id, t.customer_id) AS customer_id, a.tenant,
           coalesce(t.subject, '') AS subject, coalesce(e.body, '') AS body
      FROM answers a
      LEFT JOIN tickets t ON t.source = a.source AND t.ticket_id = a.ticket_id
      LEFT JOIN ticket_events e ON e.event_id = a.event_id
     WHERE a.answer_id::text = ANY(%s)
"""


@dataclass(frozen=True)
class RelabelStats(DataclassRecord):
    """What one relabelling pass did."""

    answers: int
    missing_answers: int
    examples: int
    inserted: int
    updated: int


def redacted(event: FeedbackEvent) -> FeedbackEvent:
    """The signal with its edited text redacted for training (PII and postal addresses)."""
    if event.edited_text is None:
        return event
    return event.model_copy(update={"edited_text": hygiene.redact_for_training(event.edited_text)})


def store_feedback(conn: psycopg.Connection, *, events: Iterable[FeedbackEvent]) -> int:
    """Insert signals (edited text redacted); a redelivered event id is ignored. Return how many were new."""
    rows = [
        (
            e.event_id,
            e.answer_id,
            e.ticket_id,
            e.kind,
            e.rating,
            e.edited_text,
            e.adapter_version,
            e.customer_id,
            e.annotator_id,
            e.tenant,
            e.occurred_at,
        )
        for e in map(redacted, events)
    ]
    if not rows:
        return 0
    with conn.cursor() as cur:
        cur.executemany(_INSERT_FEEDBACK, rows)
        return max(cur.rowcount, 0)


def submit_feedback(
    conn: psycopg.Connection, *, event: FeedbackEvent, publisher: Publisher | None = None
) -> FeedbackEvent:
    """Store one signal from the API and, with a publisher, put it on the `feedback` topic; return it redacted."""
    clean = redacted(event)
    with conn.transaction():
        store_feedback(conn, events=[clean])
    if publisher is not None:
        publisher.publish(FEEDBACK_TOPIC, clean.to_json(), key=clean.answer_id)
        publisher.flush()
    return clean


def signals_for(conn: psycopg.Connection, *, answer_ids: Sequence[str]) -> dict[str, list[FeedbackEvent]]:
    """Every stored signal on each of `answer_ids`, oldest first."""
    found: dict[str, list[FeedbackEvent]] = {answer_id: [] for answer_id in answer_ids}
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(
            f"SELECT {_FEEDBACK_COLUMNS} FROM feedback WHERE answer_id = ANY(%s) ORDER BY occurred_at, event_id",
            (list(answer_ids),),
        ).fetchall()
    for row in rows:
        found[row["answer_id"]].append(FeedbackEvent(**row))
    return found


def answers_with_feedback(conn: psycopg.Connection, *, received_after: datetime | None = None) -> list[str]:
    """Ids of answers with signals received after `received_after` (all when None)."""
    if received_after is None:
        rows = conn.execute("SELECT DISTINCT answer_id FROM feedback ORDER BY answer_id").fetchall()
    else:
        rows = conn.execute(
            "SELECT DISTINCT answer_id FROM feedback WHERE received_at > %s ORDER BY answer_id", (received_after,)
        ).fetchall()
    return [row[0] for row in rows]


def answer_contexts(conn: psycopg.Connection, answer_ids: Sequence[str]) -> dict[str, AnswerContext]:
    """The agent's answers (migration 0005): the ticket subject and the message answered are the prompt."""
    if conn.execute("SELECT to_regclass('answers')").fetchone() == (None,):
        raise AnswersUnavailableError(
            "table 'answers' does not exist; apply migration 0005 (`streamdesk migrate`) or pass a lookup to relabel()"
        )
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(_ANSWERS_SQL, (list(answer_ids),)).fetchall()
    contexts = {}
    for row in rows:
        prompt = "\n\n".join(part for part in (row["subject"], row["body"]) if part)
        contexts[row["answer_id"]] = AnswerContext(
            answer_id=row["answer_id"],
            ticket_id=row["ticket_id"],
            prompt=prompt or f"(ticket {row['ticket_id']})",
            completion=row["completion"],
            answered_at=row["answered_at"],
            adapter_version=row["adapter_version"],
            customer_id=row["customer_id"],
            tenant=row["tenant"],
        )
    return contexts


def upsert_examples(conn: psycopg.Connection, *, examples: Sequence[KtoExample]) -> tuple[int, int]:
    """Write prepared examples (one per answer and source); return (inserted, updated). Unchanged rows stay."""
    inserted = updated = 0
    with conn.cursor() as cur:
        for e in examples:
            cur.execute(
                _UPSERT_EXAMPLE,
                (
                    e.answer_id,
                    e.source,
                    e.ticket_id,
                    e.prompt,
                    e.completion,
                    e.label,
                    e.adapter_version,
                    e.policy_version,
                    e.decided_by,
                    list(e.signal_ids),
                    e.customer_id,
                    e.annotator_id,
                    e.tenant,
                    e.content_digest,
                    e.heldout,
                ),
            )
            row = cur.fetchone()
            if row is not None:
                inserted += bool(row[0])
                updated += not row[0]
    return inserted, updated


def relabel(
    conn: psycopg.Connection,
    *,
    answer_ids: Sequence[str],
    lookup: AnswerLookup = answer_contexts,
    settings: FeedbackSettings | None = None,
) -> RelabelStats:
    """Run the label policy over `answer_ids` and their signals; store the redacted examples."""
    settings = settings or get_feedback_settings()
    contexts = lookup(conn, answer_ids)
    signals = signals_for(conn, answer_ids=[a for a in answer_ids if a in contexts])
    examples: list[KtoExample] = []
    for answer_id, answer_signals in signals.items():
        examples += labels.label_answer(answer=contexts[answer_id], signals=answer_signals, settings=settings)
    ready = hygiene.prepare(examples, settings=settings)
    with conn.transaction():
        inserted, updated = upsert_examples(conn, examples=ready)
    return RelabelStats(
        answers=len(answer_ids),
        missing_answers=len(answer_ids) - len(contexts),
        examples=len(ready),
        inserted=inserted,
        updated=updated,
    )


def _example(row: Mapping[str, Any]) -> KtoExample:
    return KtoExample(**{**row, "signal_ids": tuple(row["signal_ids"])})


def store_gold(conn: psycopg.Connection, *, examples: Sequence[KtoExample], version: str) -> int:
    """Store gold examples (source `gold`) as already trained into adapter `version`; return how many were new."""
    with conn.transaction():
        inserted, _ = upsert_examples(conn, examples=examples)
        conn.execute(
            "UPDATE training_examples SET trained_in = %s "
            "WHERE source = 'gold' AND trained_in IS NULL AND answer_id = ANY(%s)",
            (version, [e.answer_id for e in examples]),
        )
    return inserted


def list_examples(
    conn: psycopg.Connection, *, trained: bool | None = None, heldout: bool | None = None
) -> list[KtoExample]:
    """Stored examples, oldest first: untrained (`trained=False`), trained, or both; held out or not, or both."""
    clauses = []
    if trained is not None:
        clauses.append("trained_in IS NOT NULL" if trained else "trained_in IS NULL")
    if heldout is not None:
        clauses.append("heldout" if heldout else "NOT heldout")
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(f"SELECT {_EXAMPLE_COLUMNS} FROM training_examples {where} ORDER BY id").fetchall()
    return [_example(row) for row in rows]


def pending_balance(conn: psycopg.Connection) -> ClassBalance:
    """The class balance of examples not yet trained on (held-out ones excluded): what a retrain would add."""
    return hygiene.class_balance(list_examples(conn, trained=False, heldout=False))


def mark_trained(conn: psycopg.Connection, *, digests: Iterable[str], version: str) -> int:
    """Record that the untrained examples with these content digests went into adapter `version`."""
    cur = conn.execute(
        "UPDATE training_examples SET trained_in = %s WHERE trained_in IS NULL AND content_digest = ANY(%s)",
        (version, list(set(digests))),
    )
    return max(cur.rowcount, 0)


def export_kto(
    conn: psycopg.Connection,
    *,
    out: TextIO,
    conversational: bool = True,
    lineage: bool = False,
    heldout: bool | None = None,
) -> int:
    """Write the deduplicated examples as JSON lines in TRL's KTO format; return how many."""
    examples = hygiene.deduplicate(list_examples(conn, heldout=heldout))
    for example in examples:
        out.write(json.dumps(example.to_kto(conversational=conversational, lineage=lineage), ensure_ascii=False) + "\n")
    return len(examples)


def review_event(
    *, answer: Any, kind: str, reviewer: Any, event_id: str, edited_text: str | None = None
) -> FeedbackEvent:
    """The feedback event of `reviewer`'s verdict `kind` on the draft `answer` (with the edit, for 'edited')."""
    return FeedbackEvent(
        event_id=event_id,
        answer_id=answer.answer_id,
        ticket_id=answer.ticket_id,
        kind=kind,
        edited_text=edited_text,
        adapter_version=answer.adapter,
        customer_id=answer.customer_id,
        annotator_id=reviewer.id,
        tenant=reviewer.tenant,
        occurred_at=utcnow(),
    )


def check_verdict(conn: psycopg.Connection, *, event: FeedbackEvent, draft: str | None) -> bool:
    """Apply the verdict rules to `event`: True when it is new, False when it is a retry of the stored verdict.

    One verdict per answer (a second one raises VerdictConflictError), and an edit must differ from the
    `draft` beyond whitespace and case (InvalidVerdictError); call it inside the transaction that stores it.
    """
    conn.execute("SELECT pg_advisory_xact_lock(hashtext('feedback-verdict'), hashtext(%s))", (event.answer_id,))
    previous = conn.execute(
        "SELECT kind, annotator_id, event_id FROM feedback WHERE answer_id = %s AND kind = ANY(%s) "
        "ORDER BY occurred_at, event_id LIMIT 1",
        (event.answer_id, sorted(VERDICTS)),
    ).fetchone()
    if previous is not None:
        if (previous[0], previous[2]) == (event.kind, event.event_id):
            return False
        raise VerdictConflictError(
            f"answer {event.answer_id} was already {previous[0]} by {previous[1]} (event {previous[2]}); "
            "a verdict is final — send a thumb, a reopen or a CSAT score instead"
        )
    if event.kind == "edited" and draft is not None and labels.same_text(event.edited_text or "", draft):
        raise InvalidVerdictError(
            f"the edit of answer {event.answer_id} is the same as the draft; accept the draft instead"
        )
    return True


def record_verdict(
    conn: psycopg.Connection,
    *,
    event: FeedbackEvent,
    via: str,
    reviewer: Any = None,
    publisher: Publisher | None = None,
) -> FeedbackEvent:
    """Store a verdict on a draft under the rules of `check_verdict`, from the API, the console or the topic.

    With a `reviewer`, a new verdict also gets one `answer_reviewed` audit record in the same transaction (a
    retried event id adds nothing). An accepted or edited draft is queued for delivery in that transaction
    (`deliveries`, idempotent on the answer id); with a `publisher`, the stored signal then goes out on the
    `feedback` topic and the reply on the `reply` topic (the delivery worker also delivers a queued reply whose
    record never reached the topic).
    """
    from streamdesk.agent import answers
    from streamdesk.audit import service as audit

    if event.kind not in VERDICTS:
        raise InvalidVerdictError(f"{event.kind!r} is not a verdict; use one of {', '.join(sorted(VERDICTS))}")
    clean = redacted(event)
    with conn.transaction():
        answer = answers.get_answer(conn, answer_id=event.answer_id)
        new = check_verdict(conn, event=event, draft=None if answer is None else answer.text)
        if new and store_feedback(conn, events=[clean]) and reviewer is not None and answer is not None:
            details = {"feedback_event_id": clean.event_id}
            audit.append(
                conn,
                event=answers.review_audit_event(
                    answer, reviewer=reviewer, verdict=event.kind, via=via, details=details
                ),
            )
        reply = None if answer is None else verdict_reply(answer, event=event)
        if reply is not None:
            delivery.enqueue(conn, replies=[reply])
    if publisher is not None:
        publisher.publish(FEEDBACK_TOPIC, clean.to_json(), key=clean.answer_id)
        if reply is not None:
            publisher.publish(REPLY_TOPIC, reply.to_json(), key=reply.topic_key)
        publisher.flush()
    return clean


def verdict_reply(answer: Any, *, event: FeedbackEvent) -> Reply | None:
    """The reply an accepted or edited draft goes out as (the edit as the reviewer wrote it); None for a rejection."""
    text = answer.text if event.kind == "accepted" else event.edited_text
    kind: ReplyKind = "accepted" if event.kind == "accepted" else "edited"
    if event.kind not in ("accepted", "edited") or not (text or "").strip():
        return None
    return Reply(
        reply_id=answer.answer_id,
        answer_id=answer.answer_id,
        kind=kind,
        source=answer.source,
        ticket_id=answer.ticket_id,
        tenant=answer.tenant,
        text=text,
    )


def record_signal(
    conn: psycopg.Connection, *, event: FeedbackEvent, via: str, reviewer: Any = None, publisher: Publisher | None
) -> FeedbackEvent:
    """Store any signal: verdicts through `record_verdict`, the others as received; publish it with a publisher."""
    if event.kind in VERDICTS:
        return record_verdict(conn, event=event, via=via, reviewer=reviewer, publisher=publisher)
    return submit_feedback(conn, event=event, publisher=publisher)
