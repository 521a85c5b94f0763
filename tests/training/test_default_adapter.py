"""The default adapter: bootstrap data with or without shared data, a machine-wide cache, the gate, promotion."""

from __future__ import annotations

import functools
import json
import time
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest

from streamdesk.config import REPO_ROOT
from streamdesk.feedback import service as feedback
from streamdesk.feedback.config import FeedbackSettings
from streamdesk.training import default_adapter, registry, sft
from streamdesk.training.config import TrainingSettings

UP_SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
"""What `streamdesk up` trains from (the bundled copy when it is missing): the same cache entry as `make run`."""


def entries(cache: Path) -> list[Path]:
    """The finished adapters in a bootstrap cache folder."""
    return [path for path in cache.glob("sft-*") if (path / default_adapter.MARKER).is_file()]


def test_the_bundled_tickets_are_what_their_builder_makes(shared_data: Path) -> None:
    rows = [json.loads(line) for line in default_adapter.BUNDLED_TAU_TRAIN.read_text().splitlines()]
    assert rows == default_adapter.bundled_rows(shared_data=shared_data)
    notice = (default_adapter.BUNDLED_TAU_TRAIN.parent / "NOTICE").read_text()
    assert default_adapter.BUNDLED_TAU_TRAIN.name in notice and "MIT License" in notice
    assert default_adapter.BUNDLED_TAU_TRAIN.stat().st_size < 50_000


@pytest.mark.parametrize("origin", ["bundled", "shared"])
def test_dev_tickets_are_never_trained_on_and_judge_both_ways(
    origin: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    shared = request.getfixturevalue("shared_data") if origin == "shared" else tmp_path
    data = default_adapter.bootstrap_data(shared_data=shared)
    assert data.origin == origin
    train_texts = {t.text for t in data.train}
    assert data.dev and not any(t.text in train_texts for t in data.dev)
    assert {t.source for t in data.train} == ({"tau2"} if origin == "bundled" else {"tau2", "bitext"})

    dev = default_adapter.interleaved(default_adapter.dev_examples(data.dev, settings=FeedbackSettings()))
    assert [e.label for e in dev[:4]] == [True, False, True, False]
    assert sum(e.label for e in dev) == sum(not e.label for e in dev) >= len(data.dev) - 1
    for good, bad in zip(dev[::2], dev[1::2], strict=True):
        assert good.prompt == bad.prompt and good.completion != bad.completion


def test_the_cache_key_names_base_model_data_and_training_knobs(model_dir: Path) -> None:
    config = sft.SFTTrainingConfig(max_steps=4)
    key = default_adapter.cache_key(model_dir=model_dir, digest="a" * 64, config=config)

    assert key == default_adapter.cache_key(model_dir=model_dir, digest="a" * 64, config=replace(config, threads=1))
    assert key != default_adapter.cache_key(model_dir=model_dir, digest="b" * 64, config=config)
    assert key != default_adapter.cache_key(model_dir=model_dir, digest="a" * 64, config=replace(config, max_steps=5))


@pytest.mark.slow
def test_a_tiny_bootstrap_is_trained_once_then_served_from_the_cache(
    conn: psycopg.Connection, model_dir: Path, tmp_path: Path
) -> None:
    settings = TrainingSettings(bootstrap_cache_dir=tmp_path / "cache", bootstrap_max_steps=1)
    config = replace(default_adapter.bootstrap_config(settings), batch_size=2, threads=1, progress=False)
    serve = functools.partial(
        default_adapter.serve,
        conn,
        shared_data=tmp_path,
        config=config,
        settings=settings,
        adapters_dir=tmp_path / "adapters",
    )

    first = serve()
    assert first.trained_now and first.version is not None and first.gate is not None
    [entry] = entries(tmp_path / "cache")
    assert json.loads((entry / default_adapter.MARKER).read_text())["steps"] == 1
    candidate = registry.get(conn, version=first.version)
    assert candidate.gate == first.gate and candidate.config[default_adapter.CACHE_KEY]
    assert feedback.list_examples(conn, trained=True)  # the bootstrap rows are kept as gold for later retrains
    assert first.status == ("promoted" if first.gate["passed"] else "candidate")
    if first.status == "candidate":
        assert registry.serving(conn, base_model=candidate.base_model) is None

    conn.execute("TRUNCATE adapter_versions, adapter_promotions, training_examples CASCADE")
    started = time.perf_counter()
    again = serve()
    assert not again.trained_now and time.perf_counter() - started < 30
    assert again.gate == first.gate | {"cached": True} and again.status == first.status
    assert entries(tmp_path / "cache") == [entry]


@pytest.mark.slow
def test_the_default_bootstrap_passes_the_gate_and_serves(conn: psycopg.Connection, model_dir: Path) -> None:
    """The default `up` serves, from the machine cache (trained on this machine's first run: minutes on CPU)."""
    outcome = default_adapter.serve(conn, shared_data=UP_SHARED_DATA)

    assert outcome.status == "promoted", outcome.reason
    serving = registry.serving(conn, base_model=sft.agent_config.MODEL_CACHE_NAME)
    assert serving is not None and serving.version == outcome.version
    assert "the eval gate prefers it" in outcome.describe()
    assert default_adapter.serve(conn, shared_data=UP_SHARED_DATA).status == "kept"
