"""Benchmark corpora: unique ~150-word passages cut from the bundled retrieval datasets."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

DATASETS = ("retrieval/tau2_banking_knowledge/corpus.jsonl", "retrieval/clapnq_dev/corpus.jsonl")


def passages(
    shared_data: Path, *, words: int = 150, datasets: Sequence[str] = DATASETS, whole_short_docs: bool = False
) -> Iterator[tuple[str, str, str]]:
    """(id, title, text) passages of about `words` words, each text distinct, from `datasets` in order.

    A passage under half of `words` is skipped, unless `whole_short_docs` and it is a whole short document.
    """
    seen: set[str] = set()
    for name in datasets:
        path = shared_data / name
        if not path.is_file():
            continue
        for line in path.read_text().splitlines():
            doc = json.loads(line)
            tokens = doc.get("text", "").split()
            for start in range(0, max(len(tokens) - words // 2, 1), words):
                text = " ".join(tokens[start : start + words])
                shortest = min(words // 2, len(tokens)) if whole_short_docs else words // 2
                if len(text.split()) < shortest or text in seen:
                    continue
                seen.add(text)
                yield f"{doc['_id']}-{start // words}", doc.get("title") or "", text
