"""The trained tool scorer: ticket -> first tool call, the learning loop's task data (Bitext, τ²-bench) and metrics.

A ticket's gold answer is the agent's first step in its JSON tool-call format,
`{"tool": "<name>", "arguments": {...}}`: the τ²-bench task's first expected action (with its arguments),
or the tool a Bitext intent routes to (`bitext_tools`, from the domain pack; Bitext customers are anonymous, so no
arguments). The model's routing choice is measured the way the agent decodes a step: greedy decoding
constrained to the tool names (a token trie over `{"tool": "<name>", "arguments":` for every name), so
the model can only pick a real tool, and the pick is its own, not the rule router's.
"""

from __future__ import annotations

import csv
import json
import random
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from streamdesk.agent import packs, tools
from streamdesk.agent.models import REPLY_TOOL
from streamdesk.feedback import hygiene
from streamdesk.training.exceptions import TrainingError

BITEXT_FILE = Path("support") / "bitext_customer_support_training_4514.csv"


def bitext_tools() -> Mapping[str, tuple[str, ...]]:
    """Bitext intent -> the domain pack's tools that carry it out (the pack's `labelled_intents`)."""
    return packs.resolve_default().labelled_intents


TAU_TASKS = Path("taubench") / "tau2_retail_tasks.json"
TAU_SPLITS = Path("taubench") / "tau2_retail_split_tasks.json"
REASON_WORDS = 30
"""τ²-bench reasons for calling are cut to this many words so prompt and tool call fit short sequences."""


class RoutingDataError(TrainingError):
    """The routing data sets cannot be read or split as asked."""


@dataclass(frozen=True)
class RoutedTicket:
    """One ticket and its gold first step: where it comes from, its text, the tool and its arguments."""

    id: str
    source: str
    text: str
    tool: str
    arguments: dict[str, Any] = field(default_factory=dict)
    group: str = ""
    customer_id: str | None = None

    @property
    def completion(self) -> str:
        """The gold first step in the agent's tool-call format."""
        return tool_call(self.tool, self.arguments)


def tool_call(tool: str, arguments: Mapping[str, Any] | None = None) -> str:
    """One agent step as the agent writes it: `{"tool": "<name>", "arguments": {...}}`."""
    return json.dumps({"tool": tool, "arguments": dict(arguments or {})}, ensure_ascii=False)


def called_tool(text: str) -> str | None:
    """The tool a written step calls (None when the text is not a tool call)."""
    try:
        step = json.loads(text)
    except ValueError:
        return None
    tool = step.get("tool") if isinstance(step, dict) else None
    return tool if isinstance(tool, str) else None


def candidate_tools() -> list[str]:
    """Every name the agent's step grammar can start with: the registry's tools (desk writes aside) and `reply`."""
    names = [tool.name for tool in tools.default_registry() if tool.name not in tools.TICKET_WRITES]
    return [*names, REPLY_TOOL]


def training_text(text: str) -> str:
    """`text` as it may be stored for training: PII and postal addresses redacted."""
    return hygiene.redact_for_training(text)


@dataclass(frozen=True)
class BitextSplit:
    """Disjoint Bitext pools per intent: held-out evaluation, SFT bootstrap, and live tickets for feedback."""

    heldout: list[RoutedTicket]
    sft: list[RoutedTicket]
    feedback: list[RoutedTicket]


def bitext_split(
    *, shared_data: Path, eval_per_intent: int, train_per_intent: int, feedback_per_intent: int, seed: int
) -> BitextSplit:
    """A seeded split of the Bitext rows whose intent has a tool; no instruction is in two pools."""
    path = shared_data / BITEXT_FILE
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise RoutingDataError(f"cannot read {path}: {exc}; pass --shared-data pointing at shared/data") from None
    pools: dict[str, list[RoutedTicket]] = {"heldout": [], "sft": [], "feedback": []}
    wanted = {"heldout": eval_per_intent, "sft": train_per_intent, "feedback": feedback_per_intent}
    for intent, (tool, *_) in bitext_tools().items():
        seen: set[str] = set()
        unique = []
        for number, row in enumerate(r for r in rows if r["intent"] == intent):
            key = hygiene.normalise(row["instruction"])
            if key not in seen:
                seen.add(key)
                unique.append((number, row["instruction"].strip()))
        random.Random(f"{seed}:{intent}").shuffle(unique)
        need = sum(wanted.values())
        if len(unique) < need:
            raise RoutingDataError(
                f"intent {intent!r} has {len(unique)} distinct rows, fewer than the {need} asked for; "
                "lower --eval-per-intent, --train-per-intent or --feedback-per-intent"
            )
        start = 0
        for pool in ("heldout", "sft", "feedback"):
            for number, text in unique[start : start + wanted[pool]]:
                pools[pool].append(
                    RoutedTicket(id=f"bitext-{intent}-{number}", source="bitext", text=text, tool=tool, group=intent)
                )
            start += wanted[pool]
    return BitextSplit(**pools)


def taubench_ticket_text(instructions: Mapping[str, Any]) -> str:
    """The customer's ticket for a τ²-bench task: the reason for calling (cut short) and what they know."""
    words = str(instructions["reason_for_call"]).split()
    reason = " ".join(words[:REASON_WORDS]) + (" ..." if len(words) > REASON_WORDS else "")
    return f"{reason}\n\n{str(instructions['known_info']).strip()}"


def taubench_first_actions(*, shared_data: Path, split: str) -> list[RoutedTicket]:
    """The τ²-bench retail tasks of `split` that have actions, each with its first action as the gold step."""
    try:
        tasks = {str(task["id"]): task for task in json.loads((shared_data / TAU_TASKS).read_text())}
        splits = json.loads((shared_data / TAU_SPLITS).read_text())
    except (OSError, ValueError) as exc:
        raise RoutingDataError(f"cannot read the τ²-bench tasks under {shared_data}: {exc}") from None
    if split not in splits:
        raise RoutingDataError(f"split {split!r} is not one of {sorted(splits)}")
    tickets = []
    for task_id in splits[split]:
        task = tasks[str(task_id)]
        actions = (task.get("evaluation_criteria") or {}).get("actions") or []
        if not actions:
            continue
        first = actions[0]
        arguments = first.get("arguments") or {}
        user = arguments.get("user_id")
        tickets.append(
            RoutedTicket(
                id=f"tau2-retail-{task_id}",
                source="tau2",
                text=taubench_ticket_text(task["user_scenario"]["instructions"]),
                tool=first["name"],
                arguments=dict(arguments),
                group=first["name"],
                customer_id=str(user) if user else None,
            )
        )
    return tickets


@dataclass(frozen=True)
class Route:
    """The tool the model chose for one ticket, and its draft step when one was written."""

    tool: str
    draft: str | None = None


class ToolScorer:
    """Greedy decoding of the first step, constrained to the tool names, on a base model with LoRA adapters.

    Shares the model of an `AdapterScorer` (adapters loaded by name; None is the base model).
    """

    def __init__(self, scorer: Any, *, names: Sequence[str] | None = None, max_argument_tokens: int = 64) -> None:
        self.scorer = scorer
        self.names = list(names or candidate_tools())
        self.max_argument_tokens = max_argument_tokens
        if len(set(self.names)) != len(self.names) or any('"' in name for name in self.names):
            raise RoutingDataError(f"tool names must be distinct and quote-free: {self.names}")

    def _encode(self, prompt: str) -> tuple[list[int], dict[str, list[int]]]:
        """Token ids shared by every candidate step, and each name's remaining ids (up to its arguments)."""
        tokenizer = self.scorer.tokenizer
        head = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
        full = {
            name: list(tokenizer(head + f'{{"tool": "{name}", "arguments":', add_special_tokens=False)["input_ids"])
            for name in self.names
        }
        sequences = list(full.values())
        shared = 0
        while all(len(s) > shared and s[shared] == sequences[0][shared] for s in sequences):
            shared += 1
        return sequences[0][:shared], {name: ids[shared:] for name, ids in full.items()}

    def route(self, prompt: str, *, adapter: str | None, draft: bool = False) -> Route:
        """The tool the model picks for `prompt` with `adapter` active; with `draft`, also its whole first step."""
        torch = self.scorer._torch
        model = self.scorer.model
        shared, rests = self._encode(prompt)
        with self.scorer.active(adapter), torch.inference_mode():
            output = model(input_ids=torch.tensor([shared]), use_cache=True)
            cache, logits = output.past_key_values, output.logits[0, -1]
            alive = list(rests.items())
            position = 0
            while len(alive) > 1:
                options = sorted({rest[position] for _, rest in alive})
                token = options[int(torch.argmax(logits[options]))]
                alive = [(name, rest) for name, rest in alive if rest[position] == token]
                position += 1
                if len(alive) > 1 or draft:
                    output = model(input_ids=torch.tensor([[token]]), past_key_values=cache, use_cache=True)
                    cache, logits = output.past_key_values, output.logits[0, -1]
            name, rest = alive[0]
            if not draft:
                return Route(tool=name)
            return Route(tool=name, draft=self._write_arguments(name, rest[position:], cache, logits))

    def _write_arguments(self, name: str, forced: list[int], cache: Any, logits: Any) -> str:
        """The rest of the step after the chosen name: forced ids to `"arguments":`, then greedy until it parses.

        The forced text stops before the space: ` {` is one token in the training text, so a lone space would
        put the model off its distribution.
        """
        torch = self.scorer._torch
        model, tokenizer = self.scorer.model, self.scorer.tokenizer
        if forced:
            output = model(input_ids=torch.tensor([forced]), past_key_values=cache, use_cache=True)
            cache, logits = output.past_key_values, output.logits[0, -1]
        prefix = f'{{"tool": "{name}", "arguments":'
        generated: list[int] = []
        text = prefix
        for _ in range(self.max_argument_tokens):
            token = int(torch.argmax(logits))
            if token == tokenizer.eos_token_id:
                break
            generated.append(token)
            text = prefix + tokenizer.decode(generated, skip_special_tokens=True)
            if text.rstrip().endswith("}") and called_tool(text.strip()) == name:
                break
            output = model(input_ids=torch.tensor([[token]]), past_key_values=cache, use_cache=True)
            cache, logits = output.past_key_values, output.logits[0, -1]
        return text.strip()


def accuracy(tickets: Sequence[RoutedTicket], chosen: Sequence[str]) -> float:
    """Share of tickets whose chosen tool is the gold one (0 for none)."""
    if len(tickets) != len(chosen):
        raise RoutingDataError(f"{len(tickets)} tickets but {len(chosen)} choices")
    return round(sum(t.tool == c for t, c in zip(tickets, chosen, strict=True)) / len(tickets), 4) if tickets else 0.0


def accuracy_by_group(tickets: Sequence[RoutedTicket], chosen: Sequence[str]) -> dict[str, float]:
    """Accuracy per ticket group (Bitext intent, or τ²-bench first tool)."""
    groups: dict[str, list[bool]] = defaultdict(list)
    for ticket, tool in zip(tickets, chosen, strict=True):
        groups[ticket.group].append(ticket.tool == tool)
    return {group: round(sum(hits) / len(hits), 4) for group, hits in sorted(groups.items())}


def regressions(*, candidate: Mapping[str, float], reference: Mapping[str, float], tolerance: float = 0.0) -> list[str]:
    """The metrics (higher is better) on which `candidate` trails `reference` by more than `tolerance`."""
    return sorted(
        name for name, before in reference.items() if name in candidate and candidate[name] < before - tolerance - 1e-9
    )


def unique_texts(tickets: Iterable[RoutedTicket]) -> set[str]:
    """The normalised ticket texts of `tickets` (to check two pools never share one)."""
    return {hygiene.normalise(t.text) for t in tickets}
