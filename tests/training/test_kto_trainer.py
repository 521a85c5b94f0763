"""One tiny real KTO + LoRA step on SmolLM2, from stored feedback to a registered, gated, loadable candidate."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from streamdesk.agent.backends import TransformersBackend
from streamdesk.feedback import service as feedback
from streamdesk.feedback.config import FeedbackSettings
from streamdesk.training import registry, service, trigger
from streamdesk.training.config import TrainingSettings
from streamdesk.training.kto_config import KTOTrainingConfig
from tests.feedback.factories import answer, lookup_of, signal

pytestmark = pytest.mark.slow


def test_one_step_produces_a_registered_candidate(
    conn: psycopg.Connection, rows: list[dict[str, str]], model_dir: Path, tmp_path: Path
) -> None:
    answers = [answer(n, rows[n * 29], customer=f"c{n % 4}") for n in range(14)]
    events = []
    for n, a in enumerate(answers):
        if n % 3 == 0:
            events.append(signal(a.answer_id, "edited", edited_text=rows[n * 29 + 1]["response"][:300]))
        else:
            events.append(signal(a.answer_id, "accepted" if n % 3 == 1 else "rejected"))
    feedback.store_feedback(conn, events=events)
    feedback.relabel(
        conn,
        answer_ids=[a.answer_id for a in answers],
        lookup=lookup_of(answers),
        settings=FeedbackSettings(heldout_percent=25),
    )
    pending = feedback.pending_balance(conn)
    request = trigger.request_retrain(conn, reason="manual", pending=pending, requested_by="test")
    config = KTOTrainingConfig(max_steps=1, batch_size=4, max_length=64, threads=1, progress=False)
    settings = TrainingSettings(general_texts=2, max_heldout=8, min_heldout_per_class=1)
    adapters = tmp_path / "adapters"

    outcome = service.run_retrain(
        conn, request=request, config=config, settings=settings, adapters_dir=adapters, model_dir=model_dir
    )

    assert outcome.status in ("promoted", "candidate") and outcome.version is not None, outcome
    version = registry.get(conn, version=outcome.version)
    folder = Path(version.path)
    assert folder == adapters / version.version
    for name in ("adapter_model.safetensors", "adapter_config.json", "metrics.json", "curves.png"):
        assert (folder / name).is_file(), name
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["dataset_digest"] == version.dataset_digest and metrics["steps"] == 1
    assert metrics["examples"] == pending.total and version.metrics["new"] == pending.total
    assert version.parent is None and version.base_model == service.BASE_MODEL
    assert version.gate is not None and {"candidate", "serving", "passed"} <= set(version.gate)
    assert all(e.trained_in == version.version for e in feedback.list_examples(conn, heldout=False))
    assert all(e.trained_in is None for e in feedback.list_examples(conn, heldout=True))
    status = conn.execute("SELECT status FROM retrain_runs WHERE request_id = %s", (request.request_id,)).fetchone()
    assert status == ("finished",)

    backend = TransformersBackend(model_dir=model_dir, adapters_dir=adapters, threads=1, prefix_cache_entries=0)
    generation = backend.generate([{"role": "user", "content": "Hi"}], max_new_tokens=2, adapter=version.version)
    assert generation.adapter == version.version and generation.completion_tokens > 0
