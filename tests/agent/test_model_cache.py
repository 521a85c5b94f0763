"""The GGUF -> safetensors conversion: done once, reused, safe when several processes race for it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streamdesk.agent import model_cache
from streamdesk.agent.exceptions import ModelCacheError

CONVERT = """
import os, sys
from pathlib import Path
from streamdesk.agent import model_cache
target = model_cache.ensure_model(target=Path(sys.argv[1]))
print(model_cache.conversion_info(target)["pid"] == os.getpid())
"""


def test_the_converted_model_is_reused_with_end_of_turn_fixed(model_dir: Path) -> None:
    from transformers import AutoConfig, AutoTokenizer

    started = time.perf_counter()
    assert model_cache.ensure_model() == model_dir
    assert time.perf_counter() - started < 0.5
    info = model_cache.conversion_info(model_dir)
    assert info["format"] == model_cache.FORMAT and info["dtype"] == "torch.float32"
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    assert (tokenizer.eos_token, tokenizer.pad_token, tokenizer.model_max_length) == ("<|im_end|>", "<|im_end|>", 8192)
    assert AutoConfig.from_pretrained(str(model_dir)).quantization_config is None
    assert (model_dir / "model.safetensors").is_file()


def test_a_missing_gguf_or_an_unfinished_folder_is_reported(tmp_path: Path) -> None:
    with pytest.raises(ModelCacheError, match="does not exist; set STREAMDESK_AGENT__GGUF_PATH"):
        model_cache.ensure_model(gguf=tmp_path / "nope.gguf", target=tmp_path / "model")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    assert not model_cache.is_converted(tmp_path / "half")
    with pytest.raises(ModelCacheError, match="holds no finished conversion"):
        model_cache.conversion_info(tmp_path / "half")
    assert model_cache.bundled_gguf().name == "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.mark.slow
def test_racing_processes_convert_once(tmp_path: Path) -> None:
    target = tmp_path / "models" / "smollm2"
    racers = [
        subprocess.Popen([sys.executable, "-c", CONVERT, str(target)], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    converted = [racer.communicate(timeout=600)[0].strip().splitlines()[-1] for racer in racers]
    assert [racer.returncode for racer in racers] == [0, 0]
    assert sorted(converted) == ["False", "True"]
    info = json.loads((target / model_cache.MARKER).read_text())
    print(f"\nconversion took {info['seconds']} s")
    assert model_cache.is_converted(target)
    assert sorted(p.name for p in target.parent.iterdir()) == ["smollm2", "smollm2.lock"]
