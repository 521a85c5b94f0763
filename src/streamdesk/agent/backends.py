"""LLM backends behind one interface: local transformers (SmolLM2, xgrammar) or an OpenAI-compatible endpoint."""

from __future__ import annotations

import copy
import json
import re
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from streamdesk import config as root_config
from streamdesk import telemetry
from streamdesk.agent import model_cache
from streamdesk.agent.budget import expire
from streamdesk.agent.exceptions import AdapterNotFoundError, AnswerTimeoutError, BackendError
from streamdesk.agent.models import Generation, Message
from streamdesk.threads import torch_threads

ADAPTER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
MESSAGE_OVERHEAD_TOKENS = 8
"""Chat-template tokens around one message's content (role markers, separators), at most."""
PREFILL_CHUNK_TOKENS = 1024
"""Prompt tokens read per forward pass: bounds prefill memory, and the deadline is checked between chunks."""


class LLMBackend(ABC):
    """Chat completion with optional JSON-schema-constrained output and a named LoRA adapter.

    Token counts here are upper bounds from UTF-8 bytes (a byte-level BPE or byte-fallback token is at least
    one byte); a backend with its tokenizer at hand counts exactly.
    """

    model_name: str
    context_tokens: int
    """Tokens the model reads and writes in one call (prompt and generation together)."""

    @abstractmethod
    def generate(
        self,
        messages: Sequence[Message],
        *,
        json_schema: dict[str, Any] | None = None,
        max_new_tokens: int = 256,
        adapter: str | None = None,
        deadline: float | None = None,
    ) -> Generation:
        """Greedy completion of `messages`; with `json_schema` the text is a JSON instance of it.

        Past `deadline` (a `time.monotonic()` value) it stops with `AnswerTimeoutError`, its output dropped.
        """

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """Prompt tokens of `messages` in the chat template, ready for the assistant turn (an upper bound)."""
        return sum(self.text_tokens(m["content"]) + MESSAGE_OVERHEAD_TOKENS for m in messages) + MESSAGE_OVERHEAD_TOKENS

    def text_tokens(self, text: str) -> int:
        """Tokens of `text` alone (an upper bound: its UTF-8 bytes)."""
        return len(text.encode())

    def cut_text(self, text: str, *, tokens: int) -> str:
        """The longest prefix of `text` within `tokens` tokens (here: UTF-8 bytes, whole characters)."""
        return text.encode()[: max(tokens, 0)].decode(errors="ignore")

    def warm(self, messages: Sequence[Message], *, adapter: str | None = None) -> None:  # noqa: B027
        """Prepare for prompts that start with `messages` (a local backend reads them into its cache)."""

    def load_adapter(self, name: str | None) -> None:  # noqa: B027
        """Have adapter `name` ready beside the loaded ones (a local backend reads its weights now); None: the base."""


def recorded(generation: Generation) -> Generation:
    """`generation`, after counting its tokens and time in the model metrics (by model and adapter)."""
    telemetry.record_generation(
        model=generation.model,
        adapter=generation.adapter,
        input_tokens=generation.prompt_tokens,
        output_tokens=generation.completion_tokens,
        seconds=generation.seconds,
    )
    return generation


class PrefixCache:
    """Key/value caches of recent sequences, reused for the longest token prefix a new prompt shares with one.

    The system prompt (policy and tools, ~2,300 tokens) dominates every step's cost on CPU; a hit skips
    its prefill. A conversation's next step continues its last sequence, so that entry is handed over
    without a copy; a new conversation copies the entry and crops it to the shared prefix.
    """

    def __init__(self, *, entries: int, min_tokens: int = 16) -> None:
        self.entries = entries
        self.min_tokens = min_tokens
        self._caches: OrderedDict[tuple[str | None, tuple[int, ...]], Any] = OrderedDict()

    def take(self, *, adapter: str | None, ids: Sequence[int]) -> tuple[Any, int]:
        """A cache holding the longest stored prefix of `ids` (at most all but the last id) and its length."""
        best, shared = None, 0
        for key in self._caches:
            if key[0] == adapter:
                n = _shared_prefix(key[1], ids)
                if n > shared:
                    best, shared = key, n
        shared = min(shared, len(ids) - 1)
        if best is None or shared < self.min_tokens:
            return None, 0
        if shared == len(best[1]):
            cache = self._caches.pop(best)
        else:
            cache = copy.deepcopy(self._caches[best])
            self._caches.move_to_end(best)
        surplus = cache.get_seq_length() - shared
        if surplus:
            cache.crop(-surplus)
        return cache, shared

    def put(self, *, adapter: str | None, ids: Sequence[int], cache: Any) -> None:
        """Keep `cache` (holding `ids`), dropping the least recently used entries beyond `entries`."""
        if self.entries <= 0:
            return
        self._caches[(adapter, tuple(ids))] = cache
        self._caches.move_to_end((adapter, tuple(ids)))
        while len(self._caches) > self.entries:
            self._caches.popitem(last=False)

    def clear(self) -> None:
        """Drop every cached entry."""
        self._caches.clear()


def _shared_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


class TransformersBackend(LLMBackend):
    """A causal LM on CPU via transformers: greedy decoding, xgrammar JSON schemas, peft LoRA adapters."""

    def __init__(
        self,
        *,
        model_dir: Path,
        quantization: root_config.Quantization = "none",
        adapters_dir: Path | None = None,
        threads: int | None = None,
        prefix_cache_entries: int = 4,
        jump_forward: bool = True,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if not (model_dir / "config.json").is_file():
            raise BackendError(
                f"no model in {model_dir}; call model_cache.ensure_model() or set STREAMDESK_AGENT__MODEL_DIR"
            )
        self.threads = threads
        self._torch = torch
        self.model_name = model_dir.name
        self.adapters_dir = adapters_dir
        self.tokenizer: Any = AutoTokenizer.from_pretrained(str(model_dir))
        self.model: Any = AutoModelForCausalLM.from_pretrained(str(model_dir), **_load_options(quantization))
        self.model.eval()
        config = self.model.config
        self.context_tokens = int(getattr(config, "max_position_embeddings", 0) or self.tokenizer.model_max_length)
        self._lock = threading.Lock()
        self._grammars: dict[str, Any] = {}
        self._compiler: Any = None
        self._adapters: set[str] = set()
        self.prefix_cache = PrefixCache(entries=prefix_cache_entries)
        self._chars: Any = None
        self.jump_forward = jump_forward
        """Take text the grammar forces as a whole (tokenized by the tokenizer) without forward passes."""

    @classmethod
    def from_settings(cls, settings: root_config.AgentSettings | None = None) -> TransformersBackend:
        """The backend the agent settings describe (converting the GGUF on first use)."""
        settings = settings or root_config.agent_settings()
        return cls(
            model_dir=model_cache.ensure_model(),
            quantization=settings.quantization,
            adapters_dir=root_config.adapters_dir(),
            threads=settings.torch_threads,
            prefix_cache_entries=settings.prefix_cache_entries,
        )

    def generate(
        self,
        messages: Sequence[Message],
        *,
        json_schema: dict[str, Any] | None = None,
        max_new_tokens: int = 256,
        adapter: str | None = None,
        deadline: float | None = None,
    ) -> Generation:
        """Greedy completion of `messages`; with `json_schema` the text is a JSON instance of it.

        The deadline is checked before every forward pass (a long prompt is read in chunks), so an answer
        overruns it by at most one pass.
        """
        with self._lock, torch_threads(self.threads):
            expire(deadline, before="the model step")
            started = time.perf_counter()
            inputs = self.encode(messages)
            with self._adapter(adapter), self._torch.inference_mode():
                ids = inputs["input_ids"][0].tolist()
                cache, cached = self.prefix_cache.take(adapter=adapter, ids=ids)
                try:
                    if json_schema is not None:
                        sequence, kv = self._constrained(
                            inputs["input_ids"], json_schema=json_schema, max_new_tokens=max_new_tokens,
                            cache=cache, cached=cached, deadline=deadline,
                        )  # fmt: skip
                    else:
                        config = self._generation_config(max_new_tokens)
                        if deadline is not None:
                            config.max_time = max(deadline - time.monotonic(), 0.001)
                        output = self.model.generate(**inputs, generation_config=config, past_key_values=cache)
                        expire(deadline, before="the generation ended")
                        sequence, kv = output.sequences[0], output.past_key_values
                except AnswerTimeoutError:
                    if cache is not None:  # back to the prefix it held: the next prompt still starts warm
                        cache.crop(cached)
                        self.prefix_cache.put(adapter=adapter, ids=ids[:cached], cache=cache)
                    raise
            if kv is not None:
                kept = kv.get_seq_length()
                self.prefix_cache.put(adapter=adapter, ids=sequence[:kept].tolist(), cache=kv)
            new_tokens = sequence[inputs["input_ids"].shape[1] :]
            text = str(self.tokenizer.decode(new_tokens, skip_special_tokens=True))
            seconds = time.perf_counter() - started
        eos = self.tokenizer.eos_token_id
        return recorded(
            Generation(
                text=text,
                prompt_tokens=int(inputs["input_ids"].shape[1]),
                completion_tokens=int(new_tokens.shape[0]),
                model=self.model_name,
                adapter=adapter,
                seconds=seconds,
                finish_reason="stop" if new_tokens.shape[0] and int(new_tokens[-1]) == eos else "length",
                cached_prompt_tokens=cached,
            )
        )

    def warm(self, messages: Sequence[Message], *, adapter: str | None = None) -> None:
        """Read `messages` (the system prompt) into the prefix cache and build the grammar compiler.

        A worker calls this once at start, so its first ticket does not pay for the shared prefix.
        """
        with self._lock, torch_threads(self.threads):
            prompt = self.tokenizer.apply_chat_template(list(messages), tokenize=False)
            ids = self.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
            with self._adapter(adapter), self._torch.inference_mode():
                output = self.model(input_ids=ids, use_cache=True, logits_to_keep=1)
            self.prefix_cache.put(adapter=adapter, ids=ids[0].tolist(), cache=output.past_key_values)
            self.compiled_grammar({"type": "object"})
            self._token_chars()

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """Prompt tokens of `messages` in the chat template, ready for the assistant turn (exact)."""
        return int(self.encode(messages)["input_ids"].shape[1])

    def text_tokens(self, text: str) -> int:
        """Tokens of `text` alone, by the model's tokenizer."""
        return len(self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]) if text else 0

    def cut_text(self, text: str, *, tokens: int) -> str:
        """The longest prefix of `text` that ends on a token boundary within `tokens` tokens."""
        if tokens <= 0:
            return ""
        encoded = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        ends = [end for _, end in encoded["offset_mapping"]]
        return text if len(ends) <= tokens else text[: ends[tokens - 1]]

    def encode(self, messages: Sequence[Message]) -> dict[str, Any]:
        """Token ids (and attention mask) of `messages` in the chat template, ready for the assistant turn."""
        prompt = self.tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
        return dict(self.tokenizer(prompt, return_tensors="pt", add_special_tokens=False))

    def compiled_grammar(self, json_schema: dict[str, Any]) -> Any:
        """The xgrammar grammar of `json_schema`, compiled once per distinct schema (key order matters)."""
        import xgrammar as xgr

        key = json.dumps(json_schema, separators=(",", ":"))
        compiled = self._grammars.get(key)
        if compiled is None:
            if self._compiler is None:
                info = xgr.TokenizerInfo.from_huggingface(
                    self.tokenizer,
                    vocab_size=self.model.config.vocab_size,
                    stop_token_ids=[self.tokenizer.eos_token_id],
                )
                self._compiler = xgr.GrammarCompiler(info, max_threads=1)
            try:
                compiled = self._compiler.compile_json_schema(key, any_whitespace=False)
            except Exception as exc:
                raise BackendError(f"xgrammar cannot compile the schema {key[:200]}...: {exc}") from exc
            self._grammars[key] = compiled
        return compiled

    def _constrained(
        self,
        prompt: Any,
        *,
        json_schema: dict[str, Any],
        max_new_tokens: int,
        cache: Any,
        cached: int,
        deadline: float | None = None,
    ) -> tuple[Any, Any]:
        """Greedy decoding under the schema's grammar; returns the whole sequence and the KV cache.

        Where the grammar allows exactly one token (JSON punctuation, keys, the rest of an enum value),
        that token is taken without a forward pass; the pending tokens go through the model together at
        the next real choice. Without `jump_forward` the output is the same as token-by-token constrained
        greedy decoding (a forced token is the masked argmax either way), with fewer, wider forward passes.
        With it (the default), a forced text that several tokenizations could spell (`": "`, a const id)
        is taken whole, tokenized by the tokenizer: the same text, far fewer passes, but the model may
        then see other tokens than it would have chosen, so later choices can differ.
        """
        import xgrammar as xgr

        from streamdesk.agent.grammar import without_max_length

        torch = self._torch
        matcher = xgr.GrammarMatcher(self.compiled_grammar(without_max_length(json_schema)))
        limiter = StringLimiter(string_limits(json_schema))
        bitmask = xgr.allocate_token_bitmask(1, self.model.config.vocab_size)
        eos = self.tokenizer.eos_token_id
        pending: list[int] = prompt[0, cached:].tolist()
        generated: list[int] = []
        while len(generated) < max_new_tokens and not matcher.is_terminated():
            expire(deadline, before="the next token")
            remaining = limiter.remaining()
            if self.jump_forward and remaining is None:
                forced = self._jump(matcher, room=max_new_tokens - len(generated))
                if forced:
                    limiter.feed(self.tokenizer.decode(forced))
                    generated += forced
                    pending += forced
                    continue
            matcher.fill_next_token_bitmask(bitmask)
            token = _only_token(bitmask) if remaining is None or remaining > 0 else self._quote_token
            if token is None:
                cache, pending = self._prefill(pending, cache=cache, deadline=deadline, dtype=prompt.dtype)
                output = self.model(
                    input_ids=torch.tensor([pending], dtype=prompt.dtype),
                    past_key_values=cache,
                    use_cache=True,
                    logits_to_keep=1,
                )
                cache = output.past_key_values
                logits = output.logits[:, -1, : self.model.config.vocab_size].float()
                xgr.apply_token_bitmask_inplace(logits, bitmask)
                if remaining is not None:
                    logits[0, self._token_chars()[: logits.shape[1]] > remaining] = float("-inf")
                    logits[0, self._quote_token] = max(float(logits[0, self._quote_token]), -1e30)
                token = int(logits.argmax(dim=-1)[0])
                pending = []
            if not matcher.accept_token(token):
                raise BackendError(f"the grammar refused token {token} it had allowed; schema {json_schema}")
            limiter.feed(self._token_text(token))
            generated.append(token)
            pending.append(token)
            if token == eos:
                break
        sequence = torch.cat([prompt[0], torch.tensor(generated, dtype=prompt.dtype)])
        return sequence, cache

    def _prefill(self, pending: list[int], *, cache: Any, deadline: float | None, dtype: Any) -> tuple[Any, list[int]]:
        """Read all but the last chunk of `pending` into `cache`, a chunk per pass; the cache and what is left."""
        while len(pending) > PREFILL_CHUNK_TOKENS:
            expire(deadline, before="the rest of the prompt was read")
            chunk, pending = pending[:PREFILL_CHUNK_TOKENS], pending[PREFILL_CHUNK_TOKENS:]
            output = self.model(
                input_ids=self._torch.tensor([chunk], dtype=dtype),
                past_key_values=cache,
                use_cache=True,
                logits_to_keep=1,
            )
            cache = output.past_key_values
        return cache, pending

    def _jump(self, matcher: Any, *, room: int) -> list[int]:
        """The tokens of the text the grammar forces next (jump-forward decoding), accepted; [] when none.

        The forced text is tokenized as the tokenizer would; if the grammar refuses that tokenization
        (a token boundary it cannot cross), nothing is taken and the step decodes token by token.
        """
        forced = matcher.find_jump_forward_string()
        if not forced:
            return []
        tokens = list(self.tokenizer.encode(forced, add_special_tokens=False))[:room]
        for accepted, token in enumerate(tokens):
            if not matcher.accept_token(token):
                if accepted:
                    matcher.rollback(accepted)
                return []
        return tokens

    @property
    def _quote_token(self) -> int:
        """The token of a lone double quote (closes a JSON string)."""
        return int(self.tokenizer.convert_tokens_to_ids('"'))

    def _token_text(self, token: int) -> str:
        return str(self.tokenizer.decode([token]))

    def _token_chars(self) -> Any:
        """Characters each token decodes to (computed once): how much of a bounded string it would use."""
        if self._chars is None:
            vocab = self.model.config.vocab_size
            texts = self.tokenizer.batch_decode([[i] for i in range(len(self.tokenizer))])
            lengths = [len(text) for text in texts] + [1] * max(0, vocab - len(texts))
            self._chars = self._torch.tensor(lengths[:vocab])
        return self._chars

    def _generation_config(self, max_new_tokens: int) -> Any:
        from transformers import GenerationConfig

        eos = self.tokenizer.eos_token_id
        return GenerationConfig(
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=eos,
            pad_token_id=eos,
            return_dict_in_generate=True,
        )

    def load_adapter(self, name: str | None) -> None:
        """Load LoRA adapter `name` beside the loaded ones, between model calls; each call picks its own adapter."""
        with self._lock:
            if name is not None and name not in self._adapters:
                self._load_adapter(name)

    def _adapter(self, name: str | None) -> Any:
        """A context in which the model runs with LoRA adapter `name` (None: the base model)."""
        from contextlib import nullcontext

        if name is None:
            return self.model.disable_adapter() if self._adapters else nullcontext()
        if name not in self._adapters:
            self._load_adapter(name)
        self.model.set_adapter(name)
        return nullcontext()

    def _load_adapter(self, name: str) -> None:
        from peft import PeftModel

        if not ADAPTER_NAME.match(name):
            raise AdapterNotFoundError(f"adapter name {name!r} is not a plain folder name; use [A-Za-z0-9._-]")
        if self.adapters_dir is None or not (self.adapters_dir / name / "adapter_config.json").is_file():
            raise AdapterNotFoundError(
                f"no LoRA adapter {name!r} under {self.adapters_dir}; save one there with "
                "model.save_pretrained(<adapters_dir>/<name>) or set STREAMDESK_AGENT__ADAPTERS_DIR"
            )
        path = str(self.adapters_dir / name)
        if self._adapters:
            self.model.load_adapter(path, adapter_name=name)
        else:
            self.model = PeftModel.from_pretrained(self.model, path, adapter_name=name)
            self.model.eval()
        self._adapters.add(name)


def string_limits(schema: Any) -> dict[str, int]:
    """The `maxLength` of each string property in `schema`, by property name (the smallest where names repeat)."""
    limits: dict[str, int] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for name, prop in (node.get("properties") or {}).items():
                if isinstance(prop, dict) and prop.get("type") == "string" and "maxLength" in prop:
                    bound = int(prop["maxLength"])
                    limits[name] = min(limits.get(name, bound), bound)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return limits


class StringLimiter:
    """Follows generated JSON text and says how many more characters the open string value may take.

    xgrammar compiles a bounded string slowly (about 9 ms per character of `maxLength`, every time a
    schema changes), so the grammar gets no `maxLength` and the decoder bounds each string value by the
    `maxLength` of its property name instead.
    """

    def __init__(self, limits: dict[str, int]) -> None:
        self.limits = limits
        self._stack: list[str] = []
        self._expect_key = False
        self._in_string = False
        self._is_key = False
        self._escape = False
        self._text: list[str] = []
        self._key: str | None = None
        self._length = 0

    def feed(self, text: str) -> None:
        """Advance over generated `text`."""
        for char in text:
            if self._in_string:
                if self._escape:
                    self._escape = False
                elif char == "\\":
                    self._escape = True
                    continue
                elif char == '"':
                    self._in_string = False
                    if self._is_key:
                        self._key = "".join(self._text)
                    continue
                self._length += 1
                if self._is_key:
                    self._text.append(char)
            elif char == '"':
                self._in_string, self._is_key, self._length, self._text = True, self._expect_key, 0, []
            elif char in "{[":
                self._stack.append(char)
                self._expect_key = char == "{"
            elif char in "}]":
                if self._stack:
                    self._stack.pop()
                self._expect_key = False
            elif char == ",":
                self._expect_key = bool(self._stack) and self._stack[-1] == "{"
            elif char == ":":
                self._expect_key = False

    def remaining(self) -> int | None:
        """Characters the open string value may still take, or None (no string open, or no limit for it)."""
        if not self._in_string or self._is_key or self._key not in self.limits:
            return None
        return self.limits[self._key] - self._length


def _only_token(bitmask: Any) -> int | None:
    """The token id when the bitmask allows exactly one token, else None."""
    words = bitmask[0]
    nonzero = words.nonzero()
    if nonzero.shape[0] != 1:
        return None
    index = int(nonzero[0, 0])
    word = int(words[index]) & 0xFFFFFFFF
    if word & (word - 1):
        return None
    return index * 32 + word.bit_length() - 1


def _load_options(quantization: root_config.Quantization) -> dict[str, Any]:
    """`from_pretrained` keyword arguments: fp32 on CPU, or bitsandbytes 8-/4-bit (NF4) weights."""
    import torch

    if quantization == "none":
        return {"dtype": torch.float32}
    from transformers import BitsAndBytesConfig

    if quantization == "8bit":
        bnb = BitsAndBytesConfig(load_in_8bit=True)
    elif quantization == "4bit":
        bnb = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32)
    else:
        raise BackendError(f"quantization {quantization!r} is not known; use 'none', '8bit' or '4bit'")
    return {"quantization_config": bnb, "device_map": "cpu"}


class OpenAICompatibleBackend(LLMBackend):
    """Any OpenAI-compatible `/chat/completions` endpoint (vLLM, Ollama, TGI); adapters are served model names."""

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        schema_mode: root_config.SchemaMode = "response_format",
        context_tokens: int = 8192,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise BackendError(f"base_url {base_url!r} is not an http(s) URL; use e.g. http://localhost:8000/v1")
        self.model_name = model
        self.context_tokens = context_tokens
        self.timeout_s = timeout_s
        self.schema_mode = schema_mode
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.url = base_url.rstrip("/") + "/chat/completions"
        self._client = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(timeout_s, connect=min(10.0, timeout_s)),
        )

    @classmethod
    def from_settings(cls, settings: root_config.AgentSettings | None = None) -> OpenAICompatibleBackend:
        """The backend the agent settings describe."""
        settings = settings or root_config.agent_settings()
        if not settings.openai_base_url:
            raise BackendError("backend 'openai' needs a URL; set STREAMDESK_AGENT__OPENAI_BASE_URL")
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        return cls(
            base_url=settings.openai_base_url,
            model=settings.openai_model,
            api_key=key,
            timeout_s=settings.openai_timeout_s,
            schema_mode=settings.openai_schema_mode,
            context_tokens=settings.openai_context_tokens,
        )

    def request_body(
        self,
        messages: Sequence[Message],
        *,
        json_schema: dict[str, Any] | None = None,
        max_new_tokens: int = 256,
        adapter: str | None = None,
    ) -> dict[str, Any]:
        """The JSON body of one chat completion request."""
        body: dict[str, Any] = {
            "model": adapter or self.model_name,
            "messages": [dict(message) for message in messages],
            "max_tokens": max_new_tokens,
            "temperature": 0,
        }
        if json_schema is not None:
            if self.schema_mode == "guided_json":
                body["guided_json"] = json_schema
            elif self.schema_mode == "tgi":
                body["response_format"] = {"type": "json", "value": json_schema}
            else:
                body["response_format"] = {
                    "type": "json_schema",
                    "json_schema": {"name": "agent_step", "schema": json_schema, "strict": True},
                }
        return body

    def generate(
        self,
        messages: Sequence[Message],
        *,
        json_schema: dict[str, Any] | None = None,
        max_new_tokens: int = 256,
        adapter: str | None = None,
        deadline: float | None = None,
    ) -> Generation:
        """Greedy completion of `messages` by the endpoint; with `json_schema` the endpoint constrains it."""
        body = self.request_body(messages, json_schema=json_schema, max_new_tokens=max_new_tokens, adapter=adapter)
        url = self.url
        expire(deadline, before="the model request")
        timeout = self.timeout_s if deadline is None else min(self.timeout_s, deadline - time.monotonic())
        started = time.perf_counter()
        try:
            response = self._client.post(url, json=body, timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)))
        except httpx.HTTPError as exc:
            if isinstance(exc, httpx.TimeoutException):
                expire(deadline, before=f"POST {url} answered")
            raise BackendError(f"POST {url} failed: {exc!r}; check the endpoint is up and the timeout") from exc
        seconds = time.perf_counter() - started
        if response.status_code >= 400:
            raise BackendError(
                f"POST {url} answered {response.status_code}: {response.text[:300]}; "
                "check the model name, the API key and the schema mode"
            )
        try:
            data = response.json()
            choice = data["choices"][0]
            text = choice["message"]["content"] or ""
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise BackendError(f"POST {url} returned no chat completion: {response.text[:300]!r}") from exc
        usage = data.get("usage") or {}
        return recorded(
            Generation(
                text=text,
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or 0),
                model=str(data.get("model") or body["model"]),
                adapter=adapter,
                seconds=seconds,
                finish_reason="length" if choice.get("finish_reason") == "length" else "stop",
            )
        )

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._client.close()


def get_backend(settings: root_config.AgentSettings | None = None) -> LLMBackend:
    """The backend the agent settings select."""
    settings = settings or root_config.agent_settings()
    if settings.backend == "openai":
        return OpenAICompatibleBackend.from_settings(settings)
    return TransformersBackend.from_settings(settings)
