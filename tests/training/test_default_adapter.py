"""The default adapter: one bootstrap data source, the adapter shipped in the package, a machine cache, the gate."""

from __future__ import annotations

import functools
import json
import time
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

from streamdesk.feedback import service as feedback
from streamdesk.feedback.config import FeedbackSettings
from streamdesk.training import default_adapter, registry, sft
from streamdesk.training.config import TrainingSettings


def entries(cache: Path) -> list[Path]:
    """The finished adapters in a bootstrap cache folder."""
    return [path for path in cache.glob("sft-*") if (path / default_adapter.MARKER).is_file()]


def test_the_bundled_tickets_are_what_their_builder_makes(shared_data: Path) -> None:
    rows = [json.loads(line) for line in default_adapter.BUNDLED_TAU_TRAIN.read_text().splitlines()]
    assert rows == default_adapter.bundled_rows(shared_data=shared_data)
    notice = (default_adapter.BUNDLED_TAU_TRAIN.parent / "NOTICE").read_text()
    assert default_adapter.BUNDLED_TAU_TRAIN.name in notice and "MIT License" in notice
    assert default_adapter.BUNDLED_TAU_TRAIN.stat().st_size < 50_000


def test_dev_tickets_are_never_trained_on_and_judge_both_ways() -> None:
    data = default_adapter.bootstrap_data()
    train_texts = {t.text for t in data.train}
    assert data.dev and not any(t.text in train_texts for t in data.dev)
    assert {t.source for t in data.train} == {"tau2"}

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


def test_the_shipped_adapter_is_the_one_the_code_data_and_config_make_now(model_dir: Path) -> None:
    key = default_adapter.default_key(model_dir=model_dir, settings=TrainingSettings())
    shipped = default_adapter.shipped_entry(key)
    assert shipped is not None, (
        f"no adapter for key {key[:24]} in {default_adapter.SHIPPED}: the bootstrap's data, config or base model "
        f"changed; re-create it with `{default_adapter.SHIP_COMMAND}`"
    )
    assert [p.name for p in default_adapter.SHIPPED.iterdir()] == [shipped.name]
    info = json.loads((shipped / default_adapter.MARKER).read_text())
    assert info["steps"] == TrainingSettings().bootstrap_max_steps and info["dataset_digest"]
    [gate] = [json.loads(p.read_text()) for p in shipped.glob("gate-*.json")]
    assert gate["passed"]
    assert (shipped / "adapter_model.safetensors").stat().st_size < 5_000_000


@pytest.mark.slow
def test_the_shipped_adapter_loads_on_the_base_model_and_changes_its_answer(model_dir: Path) -> None:
    shipped = default_adapter.shipped_entry(default_adapter.default_key(model_dir=model_dir))
    assert shipped is not None
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    inputs = tokenizer("I want to return the lamp from order #W2378156.", return_tensors="pt")
    with torch.no_grad():
        base = model(**inputs).logits
        tuned = PeftModel.from_pretrained(model, shipped)(**inputs).logits
    assert base.shape == tuned.shape and not torch.allclose(base, tuned, atol=1e-3)


@pytest.mark.slow
def test_the_default_bootstrap_serves_from_the_package_on_an_empty_machine_cache(
    conn: psycopg.Connection, model_dir: Path, tmp_path: Path
) -> None:
    """A fresh machine's `up` copies the shipped adapter and its gate verdict: no training, no gating."""
    settings = TrainingSettings(bootstrap_cache_dir=tmp_path / "cache")
    started = time.perf_counter()
    outcome = default_adapter.serve(conn, settings=settings, adapters_dir=tmp_path / "adapters")

    assert outcome.status == "promoted", outcome.reason
    assert outcome.source == "package" and outcome.gate is not None and outcome.gate["cached"]
    assert time.perf_counter() - started < 60
    serving = registry.serving(conn, base_model=sft.agent_config.MODEL_CACHE_NAME)
    assert serving is not None and serving.version == outcome.version
    assert "shipped with the package" in outcome.describe() and "the eval gate prefers it" in outcome.describe()
    assert default_adapter.serve(conn, settings=settings).status == "kept"
    [entry] = entries(tmp_path / "cache")
    assert (entry / "adapter_model.safetensors").read_bytes() == next(
        default_adapter.SHIPPED.glob("*/adapter_model.safetensors")
    ).read_bytes()
