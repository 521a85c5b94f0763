"""Log-likelihoods of held-out completions and general text under the base model and LoRA adapters (CPU, fp32)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from streamdesk.feedback.models import KtoExample
from streamdesk.training import gate
from streamdesk.training.config import TrainingSettings


class AdapterScorer:
    """One base model with any number of adapters loaded by name; scores run with one of them active, or none."""

    def __init__(self, *, model_dir: Path, max_length: int = 128, threads: int | None = None) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if threads:
            torch.set_num_threads(threads)
        self._torch = torch
        self.max_length = max_length
        self.tokenizer: Any = AutoTokenizer.from_pretrained(str(model_dir))
        self.model: Any = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
        self.model.eval()
        self._adapters: set[str] = set()

    def load(self, *, name: str, path: Path) -> None:
        """Load the adapter saved in `path` under `name`."""
        from peft import PeftModel

        if self._adapters:
            self.model.load_adapter(str(path), adapter_name=name)
        else:
            self.model = PeftModel.from_pretrained(self.model, str(path), adapter_name=name)
            self.model.eval()
        self._adapters.add(name)

    @contextmanager
    def active(self, adapter: str | None) -> Iterator[None]:
        """Run the block with `adapter` active (None: the base model, adapters disabled)."""
        if adapter is None:
            with self.model.disable_adapter() if self._adapters else nullcontext():
                yield
            return
        self.model.set_adapter(adapter)
        yield

    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def encode(self, example: KtoExample) -> tuple[list[int], int]:
        """Chat-template token ids of prompt + completion (cut to max_length), and where the completion starts."""
        user = [{"role": "user", "content": example.prompt}]
        prompt = self.tokenizer.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
        full = self.tokenizer.apply_chat_template(
            [*user, {"role": "assistant", "content": example.completion}], tokenize=False
        )
        prompt_ids, full_ids = self._ids(prompt), self._ids(full)
        start = next((i for i, (a, b) in enumerate(zip(prompt_ids, full_ids, strict=False)) if a != b), len(prompt_ids))
        return full_ids[: self.max_length], start

    def completion_logps(self, examples: Sequence[KtoExample], *, adapter: str | None) -> list[tuple[float, int]]:
        """(summed log-probability, token count) of each example's completion given its prompt."""
        torch = self._torch
        found = []
        with self.active(adapter), torch.inference_mode():
            for example in examples:
                ids, start = self.encode(example)
                if start >= len(ids):
                    found.append((0.0, 0))
                    continue
                tensor = torch.tensor([ids])
                logits = self.model(input_ids=tensor).logits[0, :-1]
                logps = torch.log_softmax(logits.float(), dim=-1).gather(1, tensor[0, 1:].unsqueeze(1)).squeeze(1)
                picked = logps[max(start - 1, 0) :]
                found.append((float(picked.sum()), int(picked.numel())))
        return found

    def perplexity(self, texts: Sequence[str], *, adapter: str | None, max_tokens: int = 256) -> float:
        """exp of the mean per-token negative log-likelihood of `texts`."""
        torch = self._torch
        total, count = 0.0, 0
        with self.active(adapter), torch.inference_mode():
            for text in texts:
                ids = self._ids(text)[:max_tokens]
                if len(ids) < 2:
                    continue
                tensor = torch.tensor([ids])
                loss = self.model(input_ids=tensor, labels=tensor).loss
                total += float(loss) * (len(ids) - 1)
                count += len(ids) - 1
        return math.exp(total / count) if count else float("inf")


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def score(
    scorer: AdapterScorer,
    *,
    adapter: str | None,
    heldout: Sequence[KtoExample],
    texts: Sequence[str],
    base: Sequence[tuple[float, int]],
    beta: float,
) -> gate.AdapterScore:
    """The gate's numbers for one adapter, given the base model's log-probabilities of the same completions."""
    logps = base if adapter is None else scorer.completion_logps(heldout, adapter=adapter)
    rewards = {True: [], False: []}  # type: dict[bool, list[float]]
    per_token = {True: [], False: []}  # type: dict[bool, list[float]]
    for example, (logp, tokens), (base_logp, _) in zip(heldout, logps, base, strict=True):
        if tokens:
            rewards[example.label].append(beta * (logp - base_logp))
            per_token[example.label].append(logp / tokens)
    return gate.AdapterScore(
        adapter=adapter,
        reward_margin=_mean(rewards[True]) - _mean(rewards[False]),
        desirable_logp=_mean(per_token[True]),
        undesirable_logp=_mean(per_token[False]),
        perplexity=scorer.perplexity(texts, adapter=adapter),
        examples=len(heldout),
    )


def evaluate(
    *,
    model_dir: Path,
    candidate: str,
    candidate_dir: Path,
    serving: str | None,
    serving_dir: Path | None,
    heldout: Sequence[KtoExample],
    settings: TrainingSettings,
    beta: float,
    max_length: int,
    checks: Sequence[gate.GateCheck] = (),
    threads: int | None = None,
) -> gate.GateReport:
    """Score candidate and serving adapter on the held-out set and general text, run the extra checks, decide."""
    heldout = list(heldout)[: settings.max_heldout]
    texts = gate.general_texts(limit=settings.general_texts)
    scorer = AdapterScorer(model_dir=model_dir, max_length=max_length, threads=threads)
    scorer.load(name=candidate, path=candidate_dir)
    if serving is not None and serving_dir is not None:
        scorer.load(name=serving, path=serving_dir)
    base = scorer.completion_logps(heldout, adapter=None)
    candidate_score = score(scorer, adapter=candidate, heldout=heldout, texts=texts, base=base, beta=beta)
    serving_score = score(scorer, adapter=serving, heldout=heldout, texts=texts, base=base, beta=beta)
    context = gate.GateContext(
        candidate=candidate, candidate_dir=candidate_dir, serving=serving, serving_dir=serving_dir
    )
    return gate.decide(
        candidate=candidate_score,
        serving=serving_score,
        perplexity_tolerance=settings.perplexity_tolerance,
        min_margin_gain=settings.min_margin_gain,
        checks=[check(context) for check in checks],
        heldout_problem=gate.heldout_problem(heldout, min_per_class=settings.min_heldout_per_class),
    )
