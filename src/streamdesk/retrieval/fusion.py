"""Fusion of the lexical and vector arms: convex combination of scores, or reciprocal rank fusion."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

ChunkKey = tuple[str, str, int]


@dataclass
class Fused:
    """A chunk's fused score and its 1-based rank in each list that holds it."""

    key: ChunkKey
    score: float = 0.0
    ranks: dict[str, int] = field(default_factory=dict)


def reciprocal_rank_fusion(
    rankings: Mapping[str, Sequence[ChunkKey]], *, weights: Mapping[str, float], k: int = 60
) -> list[Fused]:
    """Fuse ranked lists: score = sum over lists of weight / (k + rank); ties keep the first list's order."""
    fused: dict[ChunkKey, Fused] = {}
    for name, ranking in rankings.items():
        weight = weights.get(name, 1.0)
        for rank, key in enumerate(ranking, start=1):
            entry = fused.setdefault(key, Fused(key))
            if name not in entry.ranks:
                entry.ranks[name] = rank
                entry.score += weight / (k + rank)
    order = {key: position for position, key in enumerate(fused)}
    return sorted(fused.values(), key=lambda f: (-f.score, order[f.key]))


def _normalised(values: Sequence[float], method: str) -> list[float]:
    """Scores standardised over the candidate pool: z-scores, or min-max to [0, 1]."""
    if not values:
        return []
    low, high = min(values), max(values)
    if method == "minmax":
        span = high - low
        return [(v - low) / span if span > 0 else 0.0 for v in values]
    mean = sum(values) / len(values)
    spread = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5
    return [(v - mean) / spread if spread > 0 else 0.0 for v in values]


def convex_combination(
    rankings: Mapping[str, Sequence[ChunkKey]],
    *,
    similarity: Mapping[ChunkKey, float],
    text_rank: Mapping[ChunkKey, float],
    alpha: float,
    normalisation: str = "zscore",
) -> list[Fused]:
    """Fuse by alpha * norm(cosine similarity) + (1 - alpha) * norm(text rank) over every candidate.

    Both scores are known for every candidate of either arm (the caller computes them for the union),
    so a chunk found by one arm only is not penalised for missing from the other list; each score is
    standardised over the candidate pool (`zscore` or `minmax`) so the two scales are comparable.
    """
    fused: dict[ChunkKey, Fused] = {}
    for name, ranking in rankings.items():
        for rank, key in enumerate(ranking, start=1):
            fused.setdefault(key, Fused(key)).ranks.setdefault(name, rank)
    keys = list(fused)
    vector = _normalised([similarity.get(key, 0.0) for key in keys], normalisation)
    text = _normalised([text_rank.get(key, 0.0) for key in keys], normalisation)
    for key, v, t in zip(keys, vector, text, strict=True):
        fused[key].score = alpha * v + (1 - alpha) * t
    order = {key: position for position, key in enumerate(keys)}
    return sorted(fused.values(), key=lambda f: (-f.score, order[f.key]))
