"""Hot swap on the real SmolLM2: concurrent requests while promoting never fail and never mix adapters."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from streamdesk.agent.backends import TransformersBackend
from streamdesk.agent.models import Message
from streamdesk.training.hotswap import AdapterRouter, RoutedGeneration
from streamdesk.training.models import ModelEvent
from tests.training.test_trigger import NOW

pytestmark = pytest.mark.slow
PROMPTS: list[list[Message]] = [
    [{"role": "user", "content": "Where is my order?"}],
    [{"role": "user", "content": "How do I return a pair of shoes?"}],
    [{"role": "user", "content": "Can I change my shipping address?"}],
]
ADAPTERS = (None, "kto-a", "kto-b")
TOKENS = 6


@pytest.fixture(scope="module")
def backend(model_dir: Path, lora_adapters: Path) -> TransformersBackend:
    return TransformersBackend(model_dir=model_dir, adapters_dir=lora_adapters, threads=1, prefix_cache_entries=0)


@pytest.fixture(scope="module")
def reference(backend: TransformersBackend) -> dict[tuple[str | None, int], str]:
    """What each adapter answers to each prompt, one request at a time."""
    return {
        (adapter, i): backend.generate(prompt, max_new_tokens=TOKENS, adapter=adapter).text
        for adapter in ADAPTERS
        for i, prompt in enumerate(PROMPTS)
    }


def test_the_adapters_really_differ(reference: dict[tuple[str | None, int], str]) -> None:
    for i in range(len(PROMPTS)):
        assert len({reference[(adapter, i)] for adapter in ADAPTERS}) == 3, [reference[(a, i)] for a in ADAPTERS]


def test_concurrent_requests_while_promoting(
    backend: TransformersBackend, reference: dict[tuple[str | None, int], str]
) -> None:
    router = AdapterRouter(backend=backend)
    results: list[tuple[int, RoutedGeneration]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def client(k: int) -> None:
        for j in range(4):
            prompt = (k + j) % len(PROMPTS)
            try:
                routed = router.generate(PROMPTS[prompt], max_new_tokens=TOKENS)
            except BaseException as exc:
                with lock:
                    errors.append(exc)
                continue
            with lock:
                results.append((prompt, routed))

    clients = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    for thread in clients:
        thread.start()
    for adapter in ("kto-a", "kto-b", None, "kto-a", "kto-b"):
        time.sleep(0.4)
        router.activate(adapter)
    for thread in clients:
        thread.join(timeout=300)
    assert errors == []
    assert len(results) == 16
    for prompt, routed in results:
        assert routed.generation.adapter == routed.adapter
        assert routed.generation.text == reference[(routed.adapter, prompt)], (routed.adapter, prompt)
    assert len({routed.adapter for _, routed in results}) >= 2
    assert router.in_flight() == {}


def test_a_request_finishes_on_the_adapter_serving_when_it_started(backend: TransformersBackend) -> None:
    router = AdapterRouter(backend=backend, active="kto-a")
    expected = backend.generate(PROMPTS[0], max_new_tokens=24, adapter="kto-a").text
    done: list[RoutedGeneration] = []
    thread = threading.Thread(target=lambda: done.append(router.generate(PROMPTS[0], max_new_tokens=24)))
    thread.start()
    while not router.in_flight():
        time.sleep(0.01)
    event = ModelEvent(event_id="e", action="promoted", version="kto-b", base_model="m", actor="gate", occurred_at=NOW)
    assert router.apply(event) == "kto-b"
    thread.join(timeout=120)
    assert done[0].adapter == "kto-a" and done[0].generation.text == expected
    assert router.generate(PROMPTS[0], max_new_tokens=1).adapter == "kto-b"
