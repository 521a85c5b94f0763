"""`streamdesk bench agent`: answer latency per ticket and generation speed versus plain HF generate.

A fresh embedded PostgreSQL holds the τ²-bench retail world and the retail policy as a knowledge
document. The first `tickets` cases of the τ²-bench test split are answered by the real agent (router,
retrieval, tools, policy, audit: everything but Kafka), each in a rolled-back transaction. Then up to
`bare_samples` of the model calls made are replayed with plain `model.generate` (no grammar, no prefix
cache) on the same prompt for the same number of new tokens, interleaved in the same run.

The backend is warmed first, as a worker is at start (the shared system prompt read once).
Reported: answer_p50_s / answer_p95_s (wall time per ticket), generate_tokens_per_s (new tokens over
backend wall time, all calls) and, on the replayed calls only, generate_sampled_tokens_per_s against
bare_generate_tokens_per_s.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evals import agent as evaluation
from evals import datasets
from streamdesk import db, domains
from streamdesk.agent import backends, loop, service, tools
from streamdesk.agent.answer_config import get_answer_settings
from streamdesk.agent.answers import Ticket
from streamdesk.agent.models import Generation, Message
from streamdesk.config import get_settings
from streamdesk.contracts import Access, DocumentEvent
from streamdesk.identity.models import agent_for_customer
from streamdesk.runtime.embedded import EmbeddedDatabase

TAUBENCH = Path("taubench")


class RecordingBackend(backends.LLMBackend):
    """The real backend, keeping each call's messages and generation for the bare replay."""

    def __init__(self, inner: backends.TransformersBackend) -> None:
        self.inner = inner
        self.model_name = inner.model_name
        self.context_tokens = inner.context_tokens
        self.calls: list[tuple[list[Message], Generation]] = []

    def warm(self, messages: Sequence[Message], *, adapter: str | None = None) -> None:
        """Warm the inner backend."""
        self.inner.warm(messages, adapter=adapter)

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """The inner backend's count."""
        return self.inner.count_tokens(messages)

    def text_tokens(self, text: str) -> int:
        """The inner backend's count."""
        return self.inner.text_tokens(text)

    def cut_text(self, text: str, *, tokens: int) -> str:
        """The inner backend's cut."""
        return self.inner.cut_text(text, tokens=tokens)

    def generate(self, messages: Sequence[Message], **options: Any) -> Generation:
        """Generate with the inner backend (same keyword options) and record the call."""
        generation = self.inner.generate(messages, **options)
        self.calls.append(([dict(m) for m in messages], generation))
        return generation


def bare_generate(backend: backends.TransformersBackend, messages: Sequence[Message], *, new_tokens: int) -> float:
    """Seconds plain HF `generate` takes for exactly `new_tokens` tokens after `messages` (no grammar, no cache)."""
    import torch

    inputs = backend.encode(messages)
    config = backend._generation_config(new_tokens)
    config.min_new_tokens = new_tokens
    started = time.perf_counter()
    with torch.inference_mode():
        output = backend.model.generate(**inputs, generation_config=config)
    seconds = time.perf_counter() - started
    produced = int(output.sequences.shape[1] - inputs["input_ids"].shape[1])
    if produced != new_tokens:
        raise RuntimeError(f"bare generate made {produced} tokens instead of {new_tokens}")
    return seconds


def _policy_document() -> DocumentEvent:
    return DocumentEvent(
        event_id="bench:policy",
        source="kb",
        external_id="retail-policy",
        op="upsert",
        version=[1],
        occurred_at=datetime(2026, 11, 23, tzinfo=UTC),
        title="Retail agent policy",
        body=domains.get_pack().policy_text(),
        access=Access(level="public"),
    )


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(*, shared_data: Path, tickets: int = 6, bare_samples: int = 4, max_steps: int | None = None) -> dict[str, Any]:
    """Answer `tickets` τ²-bench test tickets, replay `bare_samples` model calls bare; the measurements."""

    cases = datasets.taubench_cases(
        tasks_path=shared_data / TAUBENCH / "tau2_retail_tasks.json",
        split_path=shared_data / TAUBENCH / "tau2_retail_split_tasks.json",
        db_path=shared_data / TAUBENCH / "tau2_retail_db.json",
    )[:tickets]
    inner = backends.TransformersBackend.from_settings()
    backend = RecordingBackend(inner)
    settings = get_answer_settings()
    latencies: list[float] = []
    with tempfile.TemporaryDirectory(prefix="streamdesk-bench-agent-") as tmp:
        database = EmbeddedDatabase(Path(tmp) / "pg").start()
        try:
            db.migrate(database.url)
            with db.connect(database.url) as conn:
                with conn.transaction():
                    evaluation.load_taubench_world(conn, db_path=shared_data / TAUBENCH / "tau2_retail_db.json")
                    evaluation.index_documents(conn, [_policy_document()])
                # a running worker reads the shared system prompt once, at start (`AnswerService.from_settings`)
                loop.warm_up(
                    backend,
                    registry=tools.default_registry(),
                    principal=agent_for_customer("warm-up"),
                    settings=settings,
                )
                for case in cases:
                    ticket = Ticket(
                        source="bench",
                        ticket_id=case.id,
                        event_id=f"bench:{case.id}:{uuid.uuid4().hex[:8]}",
                        subject=case.ticket.subject,
                        body=case.ticket.body,
                        customer_id=case.ticket.customer.get("user_id"),
                    )
                    with conn.transaction(force_rollback=True):
                        principal = service.principal_for(conn, ticket=ticket)
                        if principal is None:
                            continue
                        started = time.perf_counter()
                        loop.answer_ticket(
                            conn,
                            ticket=ticket,
                            principal=principal,
                            backend=backend,
                            registry=tools.default_registry(),
                            max_steps=max_steps,
                            settings=settings,
                        )
                        latencies.append(time.perf_counter() - started)
        finally:
            database.stop()
    generations = [generation for _, generation in backend.calls]
    sampled = [call for call in backend.calls if call[1].completion_tokens > 0][:bare_samples]
    bare_seconds = [bare_generate(inner, messages, new_tokens=g.completion_tokens) for messages, g in sampled]
    sampled_tokens = sum(g.completion_tokens for _, g in sampled)
    return {
        "tickets": len(latencies),
        "answer_p50_s": round(statistics.median(latencies), 2) if latencies else None,
        "answer_p95_s": round(_percentile(latencies, 0.95), 2) if latencies else None,
        "model_calls": len(generations),
        "mean_prompt_tokens": round(statistics.mean(g.prompt_tokens for g in generations), 1) if generations else None,
        "mean_cached_prompt_tokens": (
            round(statistics.mean(g.cached_prompt_tokens for g in generations), 1) if generations else None
        ),
        "generate_tokens_per_s": _rate(generations),
        "generate_sampled_tokens_per_s": _rate([g for _, g in sampled]),
        "bare_generate_tokens_per_s": round(sampled_tokens / sum(bare_seconds), 2) if bare_seconds else None,
        "bare_samples": len(sampled),
        "torch_threads": get_settings().agent.torch_threads,
        "max_steps": max_steps or settings.max_steps,
        "max_new_tokens": settings.max_new_tokens,
    }


def _rate(generations: Sequence[Generation]) -> float | None:
    seconds = sum(g.seconds for g in generations)
    return round(sum(g.completion_tokens for g in generations) / seconds, 2) if seconds else None
