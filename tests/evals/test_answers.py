"""`eval answers`: ROUGE-L and the summary by hand, and end to end through the real ingest worker on a tiny corpus."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from evals import answers as evaluation
from evals.exceptions import DatasetError
from tests.retrieval.conftest import TOPICS

QUERIES = [
    {"_id": "q1", "text": "How long does a refund take?", "answerable": True, "answers": [TOPICS["refund"]]},
    {"_id": "q2", "text": "How long is the hardware warranty?", "answerable": True, "answers": [TOPICS["warranty"]]},
    {"_id": "q3", "text": "Which football club won the league in 1987?", "answerable": False, "answers": []},
]


def write_beir(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    corpus = [{"_id": f"t-{name}", "title": f"{name.title()} help", "text": text} for name, text in TOPICS.items()]
    (folder / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in corpus) + "\n")
    (folder / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in QUERIES) + "\n")
    return folder


def test_rouge_l_takes_the_best_reference_and_the_halves_are_fixed(tmp_path: Path) -> None:
    assert evaluation.rouge_l("refunds take five days", ["nothing alike", "refunds take five days"]) == 1.0
    assert evaluation.rouge_l("anything", []) == 0.0
    queries = evaluation.load_queries(write_beir(tmp_path / "beir"))
    assert [q.answerable for q in queries] == [True, True, False]
    assert [q.calibration for q in queries] == [q.calibration for q in evaluation.load_queries(tmp_path / "beir")]


def test_a_folder_without_queries_is_refused(tmp_path: Path) -> None:
    folder = write_beir(tmp_path / "beir")
    (folder / "queries.jsonl").unlink()
    with pytest.raises(DatasetError, match=r"queries\.jsonl"):
        evaluation.load_queries(folder)


@pytest.mark.slow
@pytest.mark.stack
def test_eval_answers_ingests_through_the_worker_and_answers_through_the_answer_path(tmp_path: Path) -> None:
    lines: list[str] = []
    summary = evaluation.evaluate_answers(
        write_beir(tmp_path / "beir"),
        timeout_s=300,
        workdir=tmp_path / "stack",
        on_result=lambda result: lines.append(evaluation.result_line(result)),
    )
    assert len(lines) == summary["queries"] == 3 and summary["documents"] == len(TOPICS)
    assert summary["rougeL"] >= 0.9 and summary["answerable_declined"] == 0.0
    assert summary["unanswerable_declined"] == 1.0 and summary["grounded_sentence_rate"] == 1.0
    assert summary["p50_s"] > 0 and set(summary["split"]) == {"calibration", "held_out"}
    assert json.loads(lines[0])["declined"] is False


def test_the_fit_sets_its_threshold_on_out_of_fold_probabilities() -> None:
    from streamdesk.agent import grounding

    rng = random.Random(7)
    queries = [evaluation.AnswerQuery(f"q{n}", "?", answerable=n % 2 == 0) for n in range(400)]
    results = [
        evaluation.QueryResult(
            query=query,
            reply="",
            answer="",
            declined=False,
            rouge_l=None,
            sentences=1,
            grounded=1,
            seconds=0.1,
            features={name: rng.gauss(0.6 if query.answerable else 0.4, 0.15) for name in grounding.FEATURES},
        )
        for query in queries
    ]
    weights = evaluation.fit_answerability(results)
    assert set(weights) == {"bias", "threshold", *grounding.FEATURES}
    assert all(weights[name] > 0 for name in grounding.FEATURES)
    fitted = [r for r in results if r.query.calibration and r.query.answerable]
    probability = [
        1 / (1 + math.exp(-weights["bias"] - sum(weights[n] * r.features[n] for n in grounding.FEATURES)))
        for r in fitted
    ]
    declined = sum(p < weights["threshold"] for p in probability) / len(fitted)
    assert 0 < declined <= grounding.ANSWERABLE_DECLINE_BUDGET + 0.05
