"""`streamdesk bench retrain`: KTO + LoRA and KTO + QLoRA training throughput and peak memory on this CPU.

Each mode trains in its own process (so peak RSS is that mode's) on the same examples: Bitext
customer-support instructions with their own response (desirable) or another intent's (undesirable).
Seconds count the optimiser steps only; model loading and tokenisation are reported apart.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from streamdesk.config import REPO_ROOT
from streamdesk.feedback import hygiene
from streamdesk.feedback.models import KtoExample

BITEXT = REPO_ROOT.parent / "shared" / "data" / "support" / "bitext_customer_support_training_4514.csv"
MODES = ("lora", "qlora")


def bitext_examples(*, count: int, path: Path = BITEXT) -> list[KtoExample]:
    """`count` KTO examples from Bitext: every other one pairs an instruction with another intent's response."""
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    examples = []
    for i in range(count):
        row = rows[(i * 97) % len(rows)]
        desirable = i % 2 == 0
        other = next(r for r in rows[(i * 131) % len(rows) :] + rows if r["intent"] != row["intent"])
        completion = row["response"] if desirable else other["response"]
        example = KtoExample(
            answer_id=f"bench-{i}",
            source="draft",
            ticket_id=f"bench-{i}",
            prompt=row["instruction"],
            completion=completion,
            label=desirable,
            adapter_version=None,
            policy_version="bench",
            decided_by="bench",
            signal_ids=(),
        )
        examples.append(
            replace(example, content_digest=hygiene.content_digest(prompt=row["instruction"], completion=completion))
        )
    return examples


def train_once(*, mode: str, examples: int, max_length: int, batch_size: int, threads: int | None) -> dict[str, Any]:
    """Train one adapter in this process and report time, throughput, peak RSS and the last reward margin."""
    from streamdesk.agent import model_cache
    from streamdesk.training.kto_config import KTOTrainingConfig
    from streamdesk.training.kto_trainer import KTOAdapterTrainer

    started = time.perf_counter()
    config = KTOTrainingConfig(
        quantization="4bit" if mode == "qlora" else "none",
        max_length=max_length,
        batch_size=batch_size,
        epochs=1.0,
        threads=threads,
        progress=False,
    )
    with tempfile.TemporaryDirectory(prefix="sd-bench-retrain-") as out:
        result = KTOAdapterTrainer(config=config, model_dir=model_cache.ensure_model()).train(
            examples=bitext_examples(count=examples), output_dir=Path(out) / "adapter"
        )
    return {
        "examples": result.examples,
        "steps": result.steps,
        "seconds": round(result.seconds, 2),
        "examples_per_s": round(result.examples / result.seconds, 3),
        "wall_seconds": round(time.perf_counter() - started, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "reward_margin_last": result.metrics.get("rewards/margins"),
        "loss_last": result.metrics.get("loss"),
    }


def run(
    *, examples: int = 32, max_length: int = 128, batch_size: int = 8, threads: int | None = None
) -> dict[str, Any]:
    """Both modes, each in a child process; the JSON summary."""
    if not BITEXT.is_file():
        raise SystemExit(f"{BITEXT} not found; the benchmark trains on the Bitext support data in shared/data")
    results: dict[str, Any] = {}
    for mode in MODES:
        argv = [sys.executable, "-m", "evals.bench.retrain", "--mode", mode, "--examples", str(examples)]
        argv += ["--max-length", str(max_length), "--batch-size", str(batch_size)]
        argv += ["--threads", str(threads)] if threads else []
        env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
        done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            raise SystemExit(f"bench retrain --mode {mode} failed:\n{done.stderr[-3000:]}")
        results[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    seconds = sum(results[mode]["seconds"] for mode in MODES)
    return {
        "examples": examples,
        "max_length": max_length,
        "batch_size": batch_size,
        "cpu_count": os.cpu_count(),
        "threads": threads,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "seconds": round(seconds, 2),
        "examples_per_s": round(examples * len(MODES) / seconds, 3),
        "peak_rss_mb": max(results[mode]["peak_rss_mb"] for mode in MODES),
        **results,
    }


def main() -> None:
    """Child entry point: train one mode and print its JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=MODES, required=True)
    parser.add_argument("--examples", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    print(
        json.dumps(
            train_once(
                mode=args.mode,
                examples=args.examples,
                max_length=args.max_length,
                batch_size=args.batch_size,
                threads=args.threads,
            )
        )
    )


if __name__ == "__main__":
    main()
