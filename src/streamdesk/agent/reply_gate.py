"""The reply-quality gate: may a serving backend's own words (model-written free text) reach a customer?

A backend (model + adapter) passes when `streamdesk eval answers --compose model` — the model writing the
reply from the same passages the extractive answer reads — reaches `GATE_ROUGE_L` and
`GATE_GROUNDED_RATE` on the calibration half of the data set it ran on. The result is recorded per
model and adapter in `<state_dir>/reply_gates.json`; the answer loop consults it (`AnswerSettings.model_text`):
by default a backend with no passing record never has its words in a reply.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from filelock import FileLock

from streamdesk.config import get_settings

GATE_ROUGE_L = 0.40
"""ROUGE-L (F, best of references) the model's replies need on the calibration half's answerable queries."""
GATE_GROUNDED_RATE = 0.95
"""Share of the model's reply sentences the grounding check must find supported."""
GATE_FILE = "reply_gates.json"
ModelText = Literal["gated", "always", "never"]


@dataclass(frozen=True)
class GateResult:
    """One measurement of a backend's replies against the gate."""

    model: str
    adapter: str | None
    rouge_l: float
    grounded_sentence_rate: float
    queries: int
    dataset: str
    measured_at: str = ""

    @property
    def passed(self) -> bool:
        """Both thresholds reached."""
        return self.rouge_l >= GATE_ROUGE_L and self.grounded_sentence_rate >= GATE_GROUNDED_RATE

    def to_json(self) -> dict[str, Any]:
        """The record as stored, with the verdict."""
        return {**asdict(self), "passed": self.passed}


def gate_path(path: Path | None = None) -> Path:
    """Where gate results live: `path`, or `reply_gates.json` in the state folder."""
    return path or get_settings().state_dir / GATE_FILE


def _key(model: str, adapter: str | None) -> str:
    return f"{model}|{adapter or ''}"


def _read(path: Path) -> dict[str, dict[str, Any]]:
    if not path.is_file():
        return {}
    data: dict[str, dict[str, Any]] = json.loads(path.read_text())
    return data


def record(result: GateResult, *, path: Path | None = None) -> GateResult:
    """Store `result` as the latest for its model and adapter; return it with its time."""
    path = gate_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    stamped = GateResult(**{**asdict(result), "measured_at": datetime.now(UTC).isoformat(timespec="seconds")})
    with FileLock(f"{path}.lock"):
        results = _read(path)
        results[_key(result.model, result.adapter)] = stamped.to_json()
        path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    return stamped


def lookup(*, model: str, adapter: str | None, path: Path | None = None) -> GateResult | None:
    """The latest gate result of `model` with `adapter`, or None when it was never measured."""
    found = _read(gate_path(path)).get(_key(model, adapter))
    if found is None:
        return None
    return GateResult(**{name: value for name, value in found.items() if name != "passed"})


def allows_model_text(*, model: str, adapter: str | None, policy: ModelText, path: Path | None = None) -> bool:
    """Whether a reply may carry the backend's own words: `always`, `never`, or (`gated`) a passing record."""
    if policy != "gated":
        return policy == "always"
    result = lookup(model=model, adapter=adapter, path=path)
    return result is not None and result.passed
