"""Following the `model` topic: each change is loaded beside the serving adapter and swapped in between tickets."""

from __future__ import annotations

import functools
import os
import shutil
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from streamdesk import db, topics
from streamdesk.agent import backends, hotswap
from streamdesk.agent.service import AnswerService
from streamdesk.config import get_settings
from streamdesk.kafka import Publisher
from streamdesk.training import registry
from tests import waiting

pytestmark = [pytest.mark.slow, pytest.mark.stack]
BASE = "smollm2-135m-instruct"
wait_for = functools.partial(waiting.wait_for, log=Path(os.devnull))  # the follower runs here: no worker log


@pytest.fixture(scope="module")
def two_adapters_backend(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> backends.TransformersBackend:
    """A backend whose adapters folder holds `kto-a` and `kto-b`, random LoRAs (r=4 on q/v) saved with peft."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    adapters = tmp_path_factory.mktemp("adapters")
    for seed, name in enumerate(("kto-a", "kto-b")):
        import torch

        torch.manual_seed(seed)
        base = AutoModelForCausalLM.from_pretrained(str(model_dir))
        config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
        get_peft_model(base, config).save_pretrained(str(adapters / name))
    return backends.TransformersBackend(model_dir=model_dir, adapters_dir=adapters, threads=1)


def model_event(action: str, version: str | None, *, base_model: str = BASE) -> dict[str, object]:
    return {
        "schema_version": 1,
        "event_id": str(uuid.uuid4()),
        "action": action,
        "version": version,
        "base_model": base_model,
        "metrics": {},
        "actor": "tests",
        "reason": "",
        "occurred_at": datetime.now(UTC).isoformat(),
    }


def test_each_promotion_and_rollback_is_prepared_for_the_next_ticket(
    topics_ready: str, two_adapters_backend: backends.TransformersBackend
) -> None:
    service = AnswerService(settings=get_settings(), backend=two_adapters_backend)
    follower = hotswap.AdapterFollower(
        bootstrap_servers=topics_ready, base_model=BASE, serving=None, prepare=service.prepare_adapter
    ).start()
    try:
        wait_for(lambda: follower.ready.is_set(), what="the follower assigned", timeout_s=60)
        in_flight = service.settings_for_next_ticket()  # a ticket under way keeps its settings to the end
        with Publisher(topics_ready, client_id="tests") as publisher:
            for event in (
                model_event("candidate", "kto-b"),  # a candidate changes nothing
                model_event("promoted", "kto-b", base_model="another-model"),  # nor another base model's change
                model_event("promoted", "kto-a"),
            ):
                publisher.publish(topics.MODEL, event, key=str(event["base_model"]))
            wait_for(lambda: follower.serving == "kto-a", what="kto-a prepared", timeout_s=120)
            assert in_flight.adapter is None and "kto-a" in two_adapters_backend._adapters
            assert service.settings_for_next_ticket().adapter == "kto-a"
            assert service.settings_for_next_ticket().adapter == "kto-a"

            publisher.publish(topics.MODEL, model_event("promoted", "kto-b"), key=BASE)
            wait_for(lambda: follower.serving == "kto-b", what="kto-b prepared", timeout_s=120)
            assert {"kto-a", "kto-b"} <= two_adapters_backend._adapters  # loaded beside: a rollback is instant
            publisher.publish(topics.MODEL, model_event("rolled_back", "kto-a"), key=BASE)
            wait_for(lambda: follower.serving == "kto-a", what="the rollback to kto-a", timeout_s=120)
            assert service.settings_for_next_ticket().adapter == "kto-a"  # two changes between tickets: the last
            publisher.publish(topics.MODEL, model_event("rolled_back", None), key=BASE)
            wait_for(lambda: follower.serving is None, what="the rollback to the base model", timeout_s=120)
        assert service.settings_for_next_ticket().adapter is None
        assert [swap.adapter for swap in follower.swaps] == ["kto-a", "kto-b", "kto-a", None]
        assert all(0 <= swap.swap_s < 120 for swap in follower.swaps)
    finally:
        follower.stop()


def test_the_registry_decides_what_serves_and_a_missing_adapter_keeps_the_old_one(
    clean_db: str, topics_ready: str, two_adapters_backend: backends.TransformersBackend, tmp_path: Path
) -> None:
    adapters = two_adapters_backend.adapters_dir
    assert adapters is not None
    service = AnswerService(settings=get_settings(), backend=two_adapters_backend)
    with db.connect(clean_db, autocommit=True) as conn, Publisher(topics_ready, client_id="tests") as publisher:

        def candidate(copy_of: str) -> str:
            shutil.copytree(adapters / copy_of, tmp_path / copy_of)
            return registry.register_candidate(
                conn, staging_dir=tmp_path / copy_of, adapters_dir=adapters, base_model=BASE, parent=None,
                dataset_digest="0" * 64, config={}, metrics={},
            ).version  # fmt: skip

        def serving() -> str | None:
            with db.connect(clean_db) as own:
                found = registry.serving(own, base_model=BASE)
            return None if found is None else found.version

        first, second = candidate("kto-a"), candidate("kto-b")
        registry.promote(conn, version=first, actor="tests")  # before the worker starts: no event for it to see
        follower = hotswap.AdapterFollower(
            bootstrap_servers=topics_ready, base_model=BASE, serving=None, prepare=service.prepare_adapter,
            resolve=serving,
        ).start()  # fmt: skip
        try:
            wait_for(lambda: follower.ready.is_set(), what="the follower assigned", timeout_s=120)
            assert follower.serving == first and service.settings_for_next_ticket().adapter == first
            shutil.rmtree(adapters / second)
            registry.promote(conn, version=second, actor="tests", publisher=publisher)
            time.sleep(5)
            assert follower.serving == first and service.settings_for_next_ticket().adapter == first  # kept
            registry.rollback(conn, base_model=BASE, actor="tests", publisher=publisher)
            registry.rollback(conn, base_model=BASE, actor="tests", publisher=publisher)  # back to the base model
            wait_for(lambda: follower.serving is None, what="the base model", timeout_s=120)
            assert service.settings_for_next_ticket().adapter is None
        finally:
            follower.stop()
