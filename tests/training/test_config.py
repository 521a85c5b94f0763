"""Trainer settings validate with messages that name the fix; data order, weights and replay are reproducible."""

from __future__ import annotations

from dataclasses import replace

import pytest

from streamdesk.feedback.models import KtoExample
from streamdesk.training import kto_trainer, tool_scorer
from streamdesk.training.exceptions import TrainingConfigError
from streamdesk.training.kto_config import KTOTrainingConfig
from tests.feedback.test_hygiene import example


@pytest.mark.parametrize(
    ("change", "word"),
    [({"batch_size": 2}, "batch_size"), ({"quantization": "8bit"}, "quantization"), ({"max_length": 8}, "max_length")],
)
def test_bad_settings_are_refused(change: dict[str, object], word: str) -> None:
    with pytest.raises(TrainingConfigError, match=word):
        KTOTrainingConfig(**change)  # type: ignore[arg-type]


@pytest.mark.slow
def test_help_text_is_what_the_cli_shows() -> None:
    assert "KTO" in KTOTrainingConfig.help_for("batch_size")
    trl = KTOTrainingConfig(max_steps=1).to_trl(
        output_dir=__import__("pathlib").Path("/tmp/x"), desirable_weight=1.0, undesirable_weight=2.0
    )
    assert (trl.use_cpu, trl.bf16, trl.per_device_train_batch_size, trl.undesirable_weight) == (True, False, 4, 2.0)


@pytest.mark.parametrize(
    ("desirable", "undesirable", "weights"),
    [(10, 10, (1.0, 1.0)), (30, 10, (1.0, 3.0)), (5, 20, (4.0, 1.0)), (0, 4, (1.0, 1.0))],
)
def test_class_weights_balance_the_classes(desirable: int, undesirable: int, weights: tuple[float, float]) -> None:
    assert kto_trainer.class_weights(desirable=desirable, undesirable=undesirable) == weights


def test_order_digest_and_replay_are_reproducible() -> None:
    data = [example(n, label=n % 3 == 0) for n in range(20)]
    first = kto_trainer.ordered(data, seed=7)
    assert first == kto_trainer.ordered(list(reversed(data)), seed=7)
    assert kto_trainer.dataset_digest(first) == kto_trainer.dataset_digest(kto_trainer.ordered(data, seed=7))
    assert kto_trainer.dataset_digest(first) != kto_trainer.dataset_digest(kto_trainer.ordered(data, seed=8))
    config = KTOTrainingConfig(replay_fraction=0.5, replay_max=3)
    new = [example(100 + n) for n in range(10)]
    sample = kto_trainer.replay_sample(data, new=new, config=config)
    assert len(sample) == 3 and sample == kto_trainer.replay_sample(list(reversed(data)), new=new, config=config)


def step(n: int, tool: str, *, label: bool, source: str = "draft") -> KtoExample:
    return replace(example(n, label=label), completion=tool_scorer.tool_call(tool, {"n": n}), source=source)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [7, 42, 1234])
def test_every_prefix_of_the_order_holds_the_sets_label_mix(seed: int) -> None:
    data = [example(n, label=n % 4 == 0) for n in range(40)]
    rows = kto_trainer.ordered(data, seed=seed)
    assert sorted(r.answer_id for r in rows) == sorted(e.answer_id for e in data)
    for cut in (8, 16, 20):
        assert sum(r.label for r in rows[:cut]) == cut // 4


def test_replay_anchors_the_actions_the_new_feedback_rejects() -> None:
    older = [step(n, "lookup", label=True, source="gold") for n in range(6)]
    older += [step(10 + n, "refund", label=True, source="gold") for n in range(30)]
    new = [step(100 + n, "lookup", label=False) for n in range(4)] + [step(200, "refund", label=True)]
    config = KTOTrainingConfig(replay_fraction=1.0, replay_max=5)

    sample = kto_trainer.replay_sample(older, new=new, config=config)

    assert len(sample) == 5
    assert [kto_trainer.action(e.completion) for e in sample[:4]] == ["lookup"] * 4
