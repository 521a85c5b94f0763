"""BEIR metrics by hand, and `eval retrieval` end to end through the real ingest worker on a tiny corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evals import retrieval as evaluation
from evals.exceptions import DatasetError
from tests.retrieval.conftest import TOPICS


def test_metrics_match_hand_computed_values() -> None:
    relevant = {"a": 1, "b": 2}
    ranked = ["x", "b", "y", "a"]
    assert evaluation.recall_at(ranked, relevant, 2) == 0.5
    assert evaluation.recall_at(ranked, relevant, 5) == 1.0
    assert evaluation.mrr_at(ranked, relevant, 10) == 0.5
    dcg = 2 / 1.584962500721156 + 1 / 2.321928094887362
    idcg = 2 / 1 + 1 / 1.584962500721156
    assert evaluation.ndcg_at(ranked, relevant, 10) == pytest.approx(dcg / idcg)
    assert evaluation.document_ranking(["d1", "d1", "d2", "d3"], k=2) == ["d1", "d2"]


def write_beir(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    corpus = [{"_id": f"t-{name}", "title": f"{name.title()} help", "text": text} for name, text in TOPICS.items()]
    queries = [
        {"_id": "q1", "text": "how do I get my money back"},
        {"_id": "q2", "text": "I cannot remember my password"},
        {"_id": "q3", "text": "my card was declined in another country"},
    ]
    (folder / "corpus.jsonl").write_text("\n".join(json.dumps(d) for d in corpus) + "\n")
    (folder / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in queries) + "\n")
    (folder / "qrels.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\tt-refund\t1\nq2\tt-password\t1\nq3\tt-travel\t1\n"
    )
    return folder


def test_a_folder_without_qrels_is_refused(tmp_path: Path) -> None:
    folder = write_beir(tmp_path / "beir")
    (folder / "qrels.tsv").unlink()
    with pytest.raises(DatasetError, match="qrels"):
        evaluation.load_dataset(folder)


@pytest.mark.slow
@pytest.mark.stack
def test_eval_ingests_through_the_worker_and_scores_every_mode(tmp_path: Path) -> None:
    result = evaluation.evaluate_dataset(write_beir(tmp_path / "beir"), timeout_s=300, workdir=tmp_path / "stack")
    assert result["documents"] == len(TOPICS) and result["chunks"] == len(TOPICS)
    for mode in ("lexical", "vector", "hybrid"):
        assert set(result[mode]) == {"recall_at_5", "recall_at_10", "mrr_at_10", "ndcg_at_10"}
    assert result["vector"]["recall_at_5"] == 1.0 and result["hybrid"]["recall_at_5"] == 1.0
