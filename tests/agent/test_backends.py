"""The transformers backend on the real SmolLM2-135M: constrained tool calls, prefix cache, adapters, speed."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import jsonschema
import pytest

from streamdesk.agent import backends, grammar, prompts, tools
from streamdesk.agent.exceptions import AdapterNotFoundError
from streamdesk.agent.models import REPLY_TOOL, ToolCall

pytestmark = pytest.mark.slow

REGISTRY = tools.default_registry()
TICKET = "Cancel my order #W1234567, email x@y.com"
SHORT = [{"role": "user", "content": "Write a short note to a customer whose parcel is late."}]


def ticket_messages(allowed: list[str]) -> list[dict[str, str]]:
    permitted = [tool for tool in REGISTRY if tool.name in allowed]
    return [
        {"role": "system", "content": prompts.system_prompt(tools=permitted)},
        prompts.ticket_message(subject="Order", body=TICKET),
    ]


def test_a_simple_ticket_yields_a_valid_tool_call(backend: backends.TransformersBackend) -> None:
    schema = grammar.step_schema(tools=list(REGISTRY), allowed=REGISTRY.names())
    generation = backend.generate(ticket_messages(REGISTRY.names()), json_schema=schema, max_new_tokens=96)
    call = ToolCall.from_text(generation.text)
    print(f"\n{generation.text} ({generation.completion_tokens} tokens, {generation.seconds:.1f} s)")
    assert generation.finish_reason == "stop" and generation.prompt_tokens > 500
    assert call.is_reply or REGISTRY.validate(name=call.tool, arguments=call.arguments)
    assert "#W1234567" in generation.text or "x@y.com" in generation.text


def test_a_principal_without_write_tools_cannot_get_one_generated(backend: backends.TransformersBackend) -> None:
    reads = [tool.name for tool in REGISTRY if tool.kind == "read"]
    schema = grammar.step_schema(tools=list(REGISTRY), allowed=reads)
    generation = backend.generate(ticket_messages(reads), json_schema=schema, max_new_tokens=96)
    print(f"\n{generation.text} ({generation.finish_reason})")
    chosen = re.match(r'\{"tool": "(\w+)"', generation.text)
    assert chosen is not None and chosen.group(1) in [*reads, REPLY_TOOL]


def test_forced_tokens_skip_forward_passes_without_changing_the_output(
    backend: backends.TransformersBackend,
) -> None:
    """The backend's decoder equals plain token-by-token constrained greedy decoding (HF generate + xgrammar)."""
    import torch
    import xgrammar as xgr
    from transformers import GenerationConfig

    schema = grammar.step_schema(tools=list(REGISTRY), allowed=REGISTRY.names())
    messages = ticket_messages(REGISTRY.names())
    backend.jump_forward = False
    try:
        ours = backend.generate(messages, json_schema=schema, max_new_tokens=96)
    finally:
        backend.jump_forward = True
    jumped = backend.generate(messages, json_schema=schema, max_new_tokens=96)
    jsonschema.validate(json.loads(jumped.text), schema)
    inputs = backend.encode(messages)
    eos = backend.tokenizer.eos_token_id
    config = GenerationConfig(max_new_tokens=96, do_sample=False, eos_token_id=eos, pad_token_id=eos)
    with torch.inference_mode():
        reference = backend.model.generate(
            **inputs,
            generation_config=config,
            logits_processor=[xgr.contrib.hf.LogitsProcessor(backend.compiled_grammar(schema))],
        )
    expected = backend.tokenizer.decode(reference[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
    assert ours.text == expected
    assert ours.completion_tokens == reference.shape[1] - inputs["input_ids"].shape[1]


def test_free_text_counts_tokens_and_reports_truncation(backend: backends.TransformersBackend) -> None:
    generation = backend.generate(SHORT, max_new_tokens=8)
    assert (generation.completion_tokens, generation.finish_reason) == (8, "length")
    assert generation.text.strip() and generation.model == "smollm2-135m-instruct" and generation.adapter is None


def test_the_prefix_cache_reuses_a_prompt_without_changing_the_output(backend: backends.TransformersBackend) -> None:
    messages = [*SHORT, {"role": "assistant", "content": "Sure."}, {"role": "user", "content": "Shorter, please."}]
    first = backend.generate(messages, max_new_tokens=12)
    again = backend.generate(messages, max_new_tokens=12)
    assert again.cached_prompt_tokens == again.prompt_tokens - 1
    assert again.text == first.text


@pytest.mark.perf  # a speed ratio: run with `make test-perf` on an idle machine
def test_the_backend_keeps_pace_with_bare_generate(backend: backends.TransformersBackend) -> None:
    import torch

    inputs = backend.encode(SHORT)
    backend_s, bare_s = [], []
    for _ in range(3):
        backend.prefix_cache.clear()
        generation = backend.generate(SHORT, max_new_tokens=32)
        started = time.perf_counter()
        with torch.inference_mode():
            output = backend.model.generate(**inputs, generation_config=backend._generation_config(32))
        bare_s.append(time.perf_counter() - started)
        backend_s.append(generation.seconds)
        assert output.sequences.shape[1] - inputs["input_ids"].shape[1] == generation.completion_tokens
    ratio = min(bare_s) / min(backend_s)
    print(f"\nbackend {32 / min(backend_s):.1f} tok/s, bare {32 / min(bare_s):.1f} tok/s, ratio {ratio:.3f}")
    assert ratio >= 0.9  # fastest of 3 interleaved runs each: robust to the host's bursts of load


@pytest.fixture(scope="module")
def adapter_backend(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> backends.TransformersBackend:
    """A second backend whose adapters folder holds `tiny`, a random LoRA (r=4 on q/v) saved with peft."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    adapters = tmp_path_factory.mktemp("adapters")
    base = AutoModelForCausalLM.from_pretrained(str(model_dir))
    config = LoraConfig(r=4, lora_alpha=32, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(base, config).save_pretrained(str(adapters / "tiny"))
    del base
    return backends.TransformersBackend(model_dir=model_dir, adapters_dir=adapters, threads=1)


def test_lora_adapters_load_by_name_and_switch_off(adapter_backend: backends.TransformersBackend) -> None:
    base = adapter_backend.generate(SHORT, max_new_tokens=10)
    tuned = adapter_backend.generate(SHORT, max_new_tokens=10, adapter="tiny")
    assert tuned.adapter == "tiny" and tuned.text != base.text
    assert adapter_backend.generate(SHORT, max_new_tokens=10).text == base.text
    with pytest.raises(AdapterNotFoundError, match="no LoRA adapter 'kto-9' under"):
        adapter_backend.generate(SHORT, max_new_tokens=2, adapter="kto-9")
    with pytest.raises(AdapterNotFoundError, match="is not a plain folder name"):
        adapter_backend.generate(SHORT, max_new_tokens=2, adapter="../tiny")


def test_4bit_loading_shrinks_the_model_and_still_generates(model_dir: Path) -> None:
    small = backends.TransformersBackend(model_dir=model_dir, quantization="4bit", threads=1)
    assert small.model.get_memory_footprint() < 250e6
    generation = small.generate(SHORT, max_new_tokens=6)
    assert generation.completion_tokens == 6 and generation.text.strip()
