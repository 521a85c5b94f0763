"""What the console reads and writes, under the signed-in operator: who may see which page, drafts, reviews.

Every page and button is decided by the policy's rule for the matching API route (`routes:` in the
rules file), so the console and the API grant exactly the same. A review is a feedback signal and an
audit record written in one transaction; the signal goes out on the `feedback` topic after the commit.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from streamdesk import links
from streamdesk.agent import conversations
from streamdesk.agent.answers import Answer
from streamdesk.console.exceptions import DraftNotFoundError, InvalidReviewError
from streamdesk.console.models import (
    AdapterLineage,
    Citation,
    DeadLetterRow,
    Draft,
    IngestHealth,
)
from streamdesk.feedback import service as feedback
from streamdesk.feedback.models import FeedbackEvent
from streamdesk.identity.models import Principal
from streamdesk.ingest import status as ingest_status
from streamdesk.kafka import Publisher
from streamdesk.policy import service as policy
from streamdesk.policy.models import Decision
from streamdesk.training.kto_trainer import CURVES_FILE
from streamdesk.training.models import AdapterVersion

PAGE_ROUTES: dict[str, str] = {
    "review": "POST /answers/{answer_id}/accept",
    "approvals": "GET /approvals",
    "audit": "GET /audit",
    "models": "GET /models",
    "ingest": "GET /ingest/lag",
}
"""The API route whose rule decides who may open each page."""
ACTION_ROUTES: dict[str, str] = {
    "accepted": "POST /answers/{answer_id}/accept",
    "edited": "POST /answers/{answer_id}/edit",
    "rejected": "POST /answers/{answer_id}/reject",
    "approve": "POST /approvals/{action_id}/approve",
    "reject": "POST /approvals/{action_id}/reject",
    "verify": "GET /audit/verify",
    "retrains": "GET /models/retrains",
    "dead_letters": "GET /ingest/dead-letters",
}
"""The API route whose rule decides each button and each optional part of a page."""
PAGE_TITLES = {
    "review": "Review queue",
    "approvals": "Approvals",
    "audit": "Audit",
    "models": "Models",
    "ingest": "Ingest health",
}
VERDICTS = feedback.VERDICTS

_DRAFT_SQL = """
    SELECT a.answer_id::text AS answer_id, a.event_id, a.source, a.ticket_id, a.tenant, a.customer_id, a.status,
           a.text, a.citations, a.trace, a.model, a.adapter, a.prompt_version, a.policy_version,
           a.pending_action_ids, a.trace_id, a.created_at,
           coalesce(t.subject, '') AS ticket_subject, coalesce(e.body, '') AS ticket_body,
           t.requester ->> 'email' AS requester
      FROM answers a
      LEFT JOIN tickets t ON t.source = a.source AND t.ticket_id = a.ticket_id
      LEFT JOIN ticket_events e ON e.event_id = a.event_id
     WHERE a.tenant = %s AND {where}
     ORDER BY a.created_at, a.answer_id
     LIMIT %s
"""
_UNREVIEWED = (
    "a.status = 'draft' AND NOT EXISTS (SELECT 1 FROM feedback f WHERE f.answer_id = a.answer_id::text "
    "AND f.kind IN ('accepted', 'edited', 'rejected')) AND NOT EXISTS (SELECT 1 FROM answers later "
    "WHERE later.source = a.source AND later.ticket_id = a.ticket_id AND later.created_at > a.created_at)"
)
"""Drafts nobody reviewed yet that are their ticket's latest answer: a later message's answer (or a follow-up)
supersedes an earlier draft, which would tell the customer something the thread has moved past."""


def authorize_page(principal: Principal, page: str) -> Decision:
    """The policy's decision on the principal opening `page` (the rule of the matching API route)."""
    return policy.authorize_route(principal=principal, route=PAGE_ROUTES[page])


def may_view(principal: Principal, page: str) -> bool:
    """True when the policy lets the principal open `page`."""
    return principal.kind == "user" and authorize_page(principal, page).allowed


def authorize_action(principal: Principal, action: str) -> Decision:
    """The policy's decision on the principal taking `action` (a key of ACTION_ROUTES)."""
    return policy.authorize_route(principal=principal, route=ACTION_ROUTES[action])


def may_act(principal: Principal, action: str) -> bool:
    """True when the policy lets the principal take `action`."""
    return principal.kind == "user" and authorize_action(principal, action).allowed


def pages_for(principal: Principal) -> list[str]:
    """The pages the principal may open, in navigation order."""
    return [page for page in PAGE_TITLES if may_view(principal, page)]


def split_chunk_id(chunk_id: str) -> tuple[str, str]:
    """(source, external_id) of a cited `<source>:<external_id>#<chunk_no>` passage."""
    document_id = chunk_id.rsplit("#", 1)[0]
    source, _, external_id = document_id.partition(":")
    return source, external_id


def citations_for(conn: psycopg.Connection, *, chunk_ids: Sequence[str], tenant: str) -> list[Citation]:
    """The documents behind cited chunk ids, in citation order; unknown ones are marked not found.

    A document's URL is kept only when a browser may follow it (`links.safe_link`).
    """
    keys = [split_chunk_id(chunk_id) for chunk_id in chunk_ids]
    found: dict[tuple[str, str], tuple[str, str | None]] = {}
    if keys:
        rows = conn.execute(
            "SELECT source, external_id, title, url FROM documents WHERE tenant = %s AND NOT deleted "
            "AND (source, external_id) IN (SELECT * FROM unnest(%s::text[], %s::text[]))",
            (tenant, [k[0] for k in keys], [k[1] for k in keys]),
        ).fetchall()
        found = {(row[0], row[1]): (row[2], row[3]) for row in rows}
    citations = []
    for chunk_id, key in zip(chunk_ids, keys, strict=True):
        title, url = found.get(key, ("", None))
        citations.append(
            Citation(
                chunk_id=chunk_id,
                document_id=f"{key[0]}:{key[1]}",
                source=key[0],
                title=title or "(document not in the store)",
                url=links.safe_link(url),
                found=key in found,
            )
        )
    return citations


def _drafts(conn: psycopg.Connection, *, tenant: str, where: str, params: Sequence[Any], limit: int) -> list[Draft]:
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(_DRAFT_SQL.format(where=where), (tenant, *params, limit)).fetchall()
    drafts = []
    for row in rows:
        subject, body, requester = row.pop("ticket_subject"), row.pop("ticket_body"), row.pop("requester")
        answer = Answer(**row)
        drafts.append(
            Draft(
                answer=answer,
                subject=subject,
                body=body,
                requester=requester,
                citations=citations_for(conn, chunk_ids=answer.citations, tenant=tenant),
                earlier=earlier_messages(conn, answer=answer),
            )
        )
    return drafts


def earlier_messages(conn: psycopg.Connection, *, answer: Answer) -> list[dict[str, Any]]:
    """The ticket's conversation before the customer message `answer` replies to, oldest first."""
    thread = conversations.thread(conn, source=answer.source, ticket_id=answer.ticket_id)
    ends = [n for n, m in enumerate(thread) if m["role"] == "customer" and m["event_id"] == answer.event_id]
    return thread[: ends[0]] if ends else []


def review_queue(conn: psycopg.Connection, *, tenant: str, limit: int = 50) -> list[Draft]:
    """Draft answers of `tenant` that nobody has accepted, edited or rejected yet, oldest first."""
    return _drafts(conn, tenant=tenant, where=_UNREVIEWED, params=(), limit=limit)


def get_draft(conn: psycopg.Connection, *, answer_id: str, tenant: str) -> Draft:
    """The draft answer `answer_id` of `tenant`, reviewed or not."""
    try:
        key = uuid.UUID(answer_id)
    except ValueError:
        raise DraftNotFoundError(
            f"{answer_id!r} is not an answer id (a UUID); pick a draft in the review queue"
        ) from None
    drafts = _drafts(conn, tenant=tenant, where="a.answer_id = %s", params=(key,), limit=1)
    if not drafts:
        raise DraftNotFoundError(f"no answer {answer_id!r} in tenant {tenant!r}; pick a draft in the review queue")
    return drafts[0]


def review_feedback_id(answer_id: str) -> str:
    """The feedback event id of the console's verdict on an answer (one verdict per answer)."""
    return f"console-review:{answer_id}"


def record_review(
    conn: psycopg.Connection,
    *,
    answer_id: str,
    kind: str,
    operator: Principal,
    edited_text: str | None = None,
    publisher: Publisher | None = None,
) -> FeedbackEvent:
    """Record an operator's verdict on a draft through `feedback.record_verdict`; publish it on `feedback`.

    `kind` is 'accepted', 'edited' (with `edited_text`, which must change the draft) or 'rejected'.
    """
    if kind not in VERDICTS:
        raise InvalidReviewError(f"verdict {kind!r} is unknown; use one of {', '.join(sorted(VERDICTS))}")
    draft = get_draft(conn, answer_id=answer_id, tenant=operator.tenant)
    answer = draft.answer
    if kind == "edited" and not (edited_text and edited_text.strip()):
        raise InvalidReviewError("the edited answer is empty; write the text the customer should get")
    event = feedback.review_event(
        answer=answer,
        kind=kind,
        reviewer=operator,
        event_id=review_feedback_id(answer.answer_id),
        edited_text=edited_text.strip() if kind == "edited" and edited_text else None,
    )
    return feedback.record_verdict(conn, event=event, via="console", reviewer=operator, publisher=publisher)


def _preview(value: bytes | None, *, chars: int = 160) -> str:
    if value is None:
        return "(no value)"
    text = bytes(value).decode("utf-8", errors="replace")
    return text if len(text) <= chars else text[:chars] + "…"


def dead_letters(conn: psycopg.Connection, *, limit: int = 50) -> list[DeadLetterRow]:
    """The latest dead letters with their reasons, newest first."""
    rows = conn.execute(
        'SELECT id, topic, partition, "offset", stage, error_type, reason, value, created_at '
        "FROM dead_letters ORDER BY id DESC LIMIT %s",
        (limit,),
    ).fetchall()
    return [
        DeadLetterRow(
            id=r[0],
            topic=r[1],
            partition=r[2],
            offset=r[3],
            stage=r[4],
            error_type=r[5],
            reason=r[6],
            preview=_preview(r[7]),
            created_at=r[8],
        )
        for r in rows
    ]


def ingest_health(
    conn: psycopg.Connection, *, bootstrap_servers: str | None, with_dead_letters: bool = True, limit: int = 50
) -> IngestHealth:
    """Consumer lag of the ingest worker, store counts and (unless left out) the latest dead letters."""
    lag: dict[str, int] = {}
    lag_error: str | None = None
    if not bootstrap_servers:
        lag_error = "no broker configured: set KAFKA_BOOTSTRAP_SERVERS"
    else:
        try:
            lag = ingest_status.ingest_lag(bootstrap_servers)
        except Exception as exc:  # the page must render while the broker is down
            lag_error = f"broker unreachable at {bootstrap_servers}: {type(exc).__name__}: {exc}"
    return IngestHealth(
        lag=lag,
        lag_error=lag_error,
        counts=ingest_status.store_counts(conn),
        dead_letters=dead_letters(conn, limit=limit) if with_dead_letters else [],
    )


def curves_path(adapter: AdapterVersion) -> Path | None:
    """The training-curve PNG the trainer saved with the adapter, if there is one."""
    path = Path(adapter.path) / CURVES_FILE if adapter.path else None
    return path if path is not None and path.is_file() else None


EVALUATION_SCORES = ("reward_margin", "likelihood_gap", "perplexity")


def evaluation_png(adapter: AdapterVersion) -> bytes | None:
    """A bar chart of the eval gate's scores, candidate against the serving adapter; None without a gate report."""
    gate = adapter.gate or {}
    candidate, serving = gate.get("candidate") or {}, gate.get("serving") or {}
    if not candidate:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(EVALUATION_SCORES), figsize=(9, 2.6))
    for axis, score in zip(axes, EVALUATION_SCORES, strict=True):
        values = [serving.get(score), candidate.get(score)]
        heights = [float(v) if isinstance(v, int | float) else 0.0 for v in values]
        axis.bar(["serving", "candidate"], heights, color=["#94a3b8", "#2563eb"])
        axis.set_title(score.replace("_", " "))
        axis.grid(True, axis="y", alpha=0.3)
        axis.axhline(0, color="#475569", linewidth=0.8)
    verdict = "passed" if gate.get("passed") else "failed"
    figure.suptitle(f"eval gate {verdict}: {adapter.version}", fontsize=10)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80)
    plt.close(figure)
    return buffer.getvalue()


_LINEAGE_EXAMPLES_SQL = """
    SELECT e.trained_in AS version, count(DISTINCT e.id) AS examples,
           count(DISTINCT e.id) FILTER (WHERE e.label) AS desirable,
           count(DISTINCT e.id) FILTER (WHERE e.source = 'gold') AS gold,
           count(DISTINCT s.id) AS signals, (array_agg(DISTINCT s.id))[1:%(shown)s] AS signal_ids
      FROM training_examples e LEFT JOIN LATERAL unnest(e.signal_ids) AS s(id) ON true
     WHERE e.trained_in = ANY(%(versions)s)
     GROUP BY e.trained_in
"""
_LINEAGE_ANSWERS_SQL = """
    SELECT adapter AS version, count(*) AS answers,
           (array_agg(jsonb_build_object('answer_id', answer_id::text, 'ticket', source || ':' || ticket_id,
                                         'created_at', created_at)
                      ORDER BY created_at DESC) FILTER (WHERE tenant = %(tenant)s))[1:%(shown)s] AS recent_answers
      FROM answers WHERE adapter = ANY(%(versions)s)
     GROUP BY adapter
"""


def adapter_lineage(
    conn: psycopg.Connection, *, versions: Sequence[str], tenant: str, shown: int = 5
) -> dict[str, AdapterLineage]:
    """Per adapter: the retrain runs and feedback that trained it, the answers it wrote, its promotions and rollbacks.

    Counts cover every tenant (an adapter serves them all); only the viewer's tenant's answers are listed.
    """
    found: dict[str, dict[str, Any]] = {version: {"version": version} for version in versions}
    params = {"versions": list(versions), "tenant": tenant, "shown": shown}
    with conn.cursor(row_factory=dict_row) as cur:
        for sql in (_LINEAGE_EXAMPLES_SQL, _LINEAGE_ANSWERS_SQL):
            for row in cur.execute(sql, params).fetchall():
                found[row["version"]].update({k: v for k, v in row.items() if v is not None})
        runs = cur.execute(
            "SELECT version, array_agg(request_id ORDER BY requested_at) AS runs FROM retrain_runs "
            "WHERE version = ANY(%(versions)s) GROUP BY version",
            params,
        ).fetchall()
        for row in runs:
            found[row["version"]]["runs"] = row["runs"]
        changes = cur.execute(
            "SELECT action, version, previous, actor, reason, occurred_at FROM adapter_promotions "
            "WHERE version = ANY(%(versions)s) OR previous = ANY(%(versions)s) ORDER BY id",
            params,
        ).fetchall()
    for change in changes:
        for version in {change["version"], change["previous"]} & found.keys():
            found[version].setdefault("changes", []).append(change)
    return {version: AdapterLineage(**fields) for version, fields in found.items()}
