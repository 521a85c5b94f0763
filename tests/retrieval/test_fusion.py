"""Fusion of the lexical and vector arms, as pure functions."""

from __future__ import annotations

from streamdesk.retrieval import fusion

A, B, C = ("kb", "a", 0), ("kb", "b", 0), ("kb", "c", 0)


def test_reciprocal_rank_fusion_rewards_agreement_and_keeps_ranks() -> None:
    fused = fusion.reciprocal_rank_fusion({"vector": [A, B], "lexical": [B, C]}, weights={}, k=60)
    assert [f.key for f in fused] == [B, A, C]
    assert fused[0].ranks == {"vector": 2, "lexical": 1}


def test_score_fusion_uses_both_scores_of_every_candidate() -> None:
    rankings = {"vector": [A, B], "lexical": [C, B]}
    similarity = {A: 0.80, B: 0.78, C: 0.40}
    text_rank = {A: 0.0, B: 0.9, C: 1.0}
    fused = fusion.convex_combination(rankings, similarity=similarity, text_rank=text_rank, alpha=0.7)
    assert fused[0].key == B, "close to the best on both scores beats best on one"
    only_vector = fusion.convex_combination(rankings, similarity=similarity, text_rank=text_rank, alpha=1.0)
    assert [f.key for f in only_vector] == [A, B, C]
    minmax = fusion.convex_combination(
        rankings, similarity=similarity, text_rank=text_rank, alpha=0.5, normalisation="minmax"
    )
    assert {f.key for f in minmax} == {A, B, C} and all(0 <= f.score <= 1 for f in minmax)
