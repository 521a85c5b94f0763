"""Answer quality on a BEIR folder with answers: ROUGE-L, declines, grounded sentences, time per answer.

`evaluate_answers` ingests `corpus.jsonl` through the real ingest path on a fresh stack (as `eval
retrieval` does), then answers each query of `queries.jsonl` (`answerable`, `answers`) through the agent's
answer path: the `search_knowledge` retrieval as the agent acting for a customer (access filter in the
SQL), the extractive answer or decline (`grounding.answer_question`) and the reply composition the loop
uses (`loop.compose_parts`). With `compose="model"` the serving model writes each reply from the same
passages instead; the result is the reply-quality gate's measurement (`reply_gate`) and is recorded.

The queries are split in two fixed halves by the sha1 of their id: even is the calibration half (the
answerability weights in `grounding` were fitted there, `--fit` refits them), odd the held-out half; the
summary gives both and the whole.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import psycopg

from evals.exceptions import DatasetError
from evals.retrieval import ingest_stack, publish_corpus
from streamdesk import db
from streamdesk.agent import grounding, knowledge_tool, loop, reply_gate
from streamdesk.agent.answer_config import AnswerSettings, get_answer_settings
from streamdesk.agent.backends import LLMBackend
from streamdesk.agent.models import Reply
from streamdesk.identity.models import Principal
from streamdesk.knowledge.embedders import get_embedder

log = logging.getLogger(__name__)

Compose = Literal["extractive", "model"]
CUSTOMER_PRINCIPAL = "agent:eval-customer"
"""The agent acting for a customer: what the ticket loop searches as (public documents only)."""
REGULARISATION = 3.0
"""Inverse L2 strength of the answerability fit (`C`), chosen by 5-fold cross-validation in the calibration half."""
FOLDS = 5
"""Cross-validation folds inside the calibration half: for `REGULARISATION` and the threshold's probabilities."""
MODEL_REPLY_CHARS = 400
MODEL_PROMPT = (
    "You answer a customer's question using only the passages below. Copy the sentences of a passage that "
    "answer it. If the passages do not answer it, say that our help articles do not answer this question."
)


@dataclass(frozen=True)
class AnswerQuery:
    """One query with whether the corpus answers it and its reference answers."""

    query_id: str
    text: str
    answerable: bool
    answers: tuple[str, ...] = ()

    @property
    def calibration(self) -> bool:
        """True for the calibration half (sha1 of the id is even); False for the held-out half."""
        return int(hashlib.sha1(self.query_id.encode()).hexdigest(), 16) % 2 == 0


@dataclass
class QueryResult:
    """How one query was answered."""

    query: AnswerQuery
    reply: str
    answer: str
    declined: bool
    rouge_l: float | None
    sentences: int
    grounded: int
    seconds: float
    features: dict[str, float] = field(default_factory=dict)


def load_queries(folder: Path) -> list[AnswerQuery]:
    """`queries.jsonl` of a BEIR folder whose queries carry `answerable` and `answers`."""
    path = folder / "queries.jsonl"
    if not (folder / "corpus.jsonl").is_file() or not path.is_file():
        raise DatasetError(f"{folder} needs corpus.jsonl and queries.jsonl (with `answerable` and `answers`)")
    queries: list[AnswerQuery] = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            queries.append(
                AnswerQuery(
                    query_id=str(record["_id"]),
                    text=str(record["text"]),
                    answerable=bool(record["answerable"]),
                    answers=tuple(str(answer) for answer in record.get("answers") or ()),
                )
            )
        except (json.JSONDecodeError, KeyError) as exc:
            raise DatasetError(f"queries.jsonl:{number} needs `_id`, `text` and `answerable`: {exc}") from exc
    return queries


@functools.cache
def _scorer() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"])


def rouge_l(candidate: str, references: Sequence[str]) -> float:
    """ROUGE-L F-measure of `candidate` against the best of `references` (the `rouge-score` package)."""
    scorer = _scorer()
    return max((scorer.score(reference, candidate)["rougeL"].fmeasure for reference in references), default=0.0)


def model_reply(
    backend: LLMBackend, *, question: str, passages: Sequence[grounding.Passage], adapter: str | None
) -> Reply:
    """The serving model's own reply to `question` from the public `passages`, citing all of them."""
    visible = grounding.customer_visible(passages)
    shown = "\n\n".join(f"[{passage.chunk_id}] {passage.title}\n{passage.text}" for passage in visible)
    schema = {
        "type": "object",
        "properties": {"message": {"type": "string", "minLength": 1, "maxLength": MODEL_REPLY_CHARS}},
        "required": ["message"],
        "additionalProperties": False,
    }
    generation = backend.generate(
        [
            {"role": "system", "content": MODEL_PROMPT},
            {"role": "user", "content": f"{shown}\n\nQuestion: {question}"},
        ],
        json_schema=schema,
        max_new_tokens=MODEL_REPLY_CHARS // 2,
        adapter=adapter,
    )
    try:
        message = str(json.loads(generation.text)["message"])
    except (json.JSONDecodeError, KeyError, TypeError):
        message = generation.text
    return Reply(message=message, citations=[passage.chunk_id for passage in visible])


def answer_query(
    conn: psycopg.Connection,
    *,
    query: AnswerQuery,
    principal: Principal,
    settings: AnswerSettings,
    compose: Compose = "extractive",
    backend: LLMBackend | None = None,
) -> QueryResult:
    """Answer one query as the loop answers a ticket's question: search, extract or decline, compose."""
    started = time.perf_counter()
    result = knowledge_tool.search(
        conn,
        principal=principal,
        query=query.text,
        k=settings.knowledge_k,
        mode=settings.search_mode,
        chars=settings.knowledge_chars,
    )
    passages = [grounding.Passage.from_result(passage) for passage in result.get("passages") or []]
    knowledge = grounding.answer_question(query.text, passages, embedder=get_embedder())
    reply = Reply(message="")
    if compose == "model" and backend is not None:
        reply = model_reply(backend, question=query.text, passages=passages, adapter=settings.adapter)
    parts = loop.compose_parts(
        reply=reply,
        trace=[],
        escalated=not knowledge.answerable and compose == "extractive",
        knowledge=None if compose == "model" else knowledge,
        model_text=compose == "model",
    )
    seconds = time.perf_counter() - started
    checked = grounding.sentence_grounding(parts, passages=passages)
    answer = reply.message if compose == "model" else knowledge.text
    declined = not knowledge.answerable if compose == "extractive" else _declines(answer)
    return QueryResult(
        query=query,
        reply=grounding.paragraphs(parts),
        answer=answer,
        declined=declined,
        rouge_l=rouge_l(answer, query.answers) if query.answerable else None,
        sentences=len(checked),
        grounded=sum(ok for _, ok in checked),
        seconds=seconds,
        features=knowledge.features,
    )


def _declines(message: str) -> bool:
    return "do not answer" in message.lower() or "does not answer" in message.lower()


def summarise(results: Sequence[QueryResult]) -> dict[str, Any]:
    """`queries`, `rougeL`, `unanswerable_declined`, `answerable_declined`, `grounded_sentence_rate`, `p50_s`.

    ROUGE-L is the mean over answerable queries of the answer against the best reference (a decline scores
    what its words score); the grounded rate pools every reply sentence.
    """
    answerable = [r for r in results if r.query.answerable]
    unanswerable = [r for r in results if not r.query.answerable]
    sentences = sum(r.sentences for r in results)
    return {
        "queries": len(results),
        "rougeL": round(statistics.fmean(r.rouge_l or 0.0 for r in answerable), 4) if answerable else None,
        "unanswerable_declined": _share(unanswerable, lambda r: r.declined),
        "answerable_declined": _share(answerable, lambda r: r.declined),
        "grounded_sentence_rate": round(sum(r.grounded for r in results) / sentences, 4) if sentences else None,
        "p50_s": round(statistics.median(r.seconds for r in results), 4) if results else None,
    }


def _share(results: Sequence[QueryResult], test: Callable[[QueryResult], bool]) -> float | None:
    return round(sum(test(r) for r in results) / len(results), 4) if results else None


def fit_answerability(results: Sequence[QueryResult]) -> dict[str, float]:
    """Logistic weights over `grounding.FEATURES` and the threshold, fitted on the calibration half's results.

    The threshold is the `grounding.ANSWERABLE_DECLINE_BUDGET` quantile of the answerable calibration queries'
    out-of-fold probabilities (`FOLDS`-fold cross-validation): the fitted model's own probabilities on the
    queries it was fitted on flatter it, and a threshold set on them declines more of the queries it never saw.
    """
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    calibration = [r for r in results if r.query.calibration and r.features]
    features = np.asarray([[r.features[name] for name in grounding.FEATURES] for r in calibration])
    labels = np.asarray([r.query.answerable for r in calibration])
    model = LogisticRegression(max_iter=5000, C=REGULARISATION)
    folds = StratifiedKFold(FOLDS, shuffle=True, random_state=0)
    held_out = cross_val_predict(model, features, labels, cv=folds, method="predict_proba")[:, 1]
    model.fit(features, labels)
    weights = {"bias": round(float(model.intercept_[0]), 4)}
    weights.update({name: round(float(w), 4) for name, w in zip(grounding.FEATURES, model.coef_[0], strict=True)})
    threshold = np.quantile(held_out[labels], grounding.ANSWERABLE_DECLINE_BUDGET)
    weights["threshold"] = round(float(threshold), 4)
    return weights


def evaluate_answers(
    folder: Path,
    *,
    limit: int | None = None,
    compose: Compose = "extractive",
    backend: LLMBackend | None = None,
    settings: AnswerSettings | None = None,
    timeout_s: float = 1800,
    on_result: Callable[[QueryResult], None] | None = None,
    fit: bool = False,
    workdir: Path | None = None,
) -> dict[str, Any]:
    """Ingest `folder` on a fresh stack (in `workdir`), answer its queries (the first `limit`), summarise by split."""
    settings = settings or get_answer_settings()
    queries = load_queries(folder)[:limit]
    principal = Principal.parse(CUSTOMER_PRINCIPAL)
    results: list[QueryResult] = []
    with (
        tempfile.TemporaryDirectory(prefix="streamdesk-answers-") as tmp,
        ingest_stack(workdir or Path(tmp)) as stack,
    ):
        published = publish_corpus(stack.bootstrap_servers, corpus=folder / "corpus.jsonl")
        waited = stack.wait_for_documents(published, timeout_s=timeout_s)
        log.info("ingested %d documents in %.1fs", published, waited)
        with db.connect(stack.database_url, autocommit=True) as conn:
            for query in queries:
                result = answer_query(
                    conn, query=query, principal=principal, settings=settings, compose=compose, backend=backend
                )
                results.append(result)
                if on_result is not None:
                    on_result(result)
    summary: dict[str, Any] = {
        **summarise(results),
        "split": {
            "calibration": summarise([r for r in results if r.query.calibration]),
            "held_out": summarise([r for r in results if not r.query.calibration]),
        },
        "compose": compose,
        "dataset": folder.name,
        "documents": published,
        "knowledge_k": settings.knowledge_k,
        "search_mode": settings.search_mode,
    }
    if fit:
        summary["fitted_weights"] = fit_answerability(results)
    if compose == "model" and backend is not None:
        calibration = summary["split"]["calibration"]
        gate = reply_gate.record(
            reply_gate.GateResult(
                model=backend.model_name,
                adapter=settings.adapter,
                rouge_l=calibration["rougeL"] or 0.0,
                grounded_sentence_rate=calibration["grounded_sentence_rate"] or 0.0,
                queries=calibration["queries"],
                dataset=folder.name,
            )
        )
        summary["gate"] = gate.to_json()
    return summary


def result_line(result: QueryResult) -> str:
    """One query's outcome as a JSON line."""
    return json.dumps(
        {
            "query": result.query.query_id,
            "answerable": result.query.answerable,
            "declined": result.declined,
            "rougeL": None if result.rouge_l is None else round(result.rouge_l, 4),
            "grounded": f"{result.grounded}/{result.sentences}",
            "seconds": round(result.seconds, 3),
            "features": {name: round(value, 4) for name, value in result.features.items()},
        }
    )
