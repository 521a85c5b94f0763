"""Retrieval settings, read from `STREAMDESK_RETRIEVAL__<FIELD>`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from streamdesk.config import read_once

VectorMode = Literal["vector", "halfvec", "binary"]
SearchMode = Literal["hybrid", "vector", "lexical"]
IterativeScan = Literal["off", "relaxed_order", "strict_order"]
FusionMethod = Literal["zscore", "minmax", "rrf"]
EMPLOYEE_ROLES = frozenset({"viewer", "agent", "supervisor", "admin", "auditor"})


class RetrievalSettings(BaseSettings):
    """How searches run: index parameters, fusion, and the access rule's switches."""

    model_config = SettingsConfigDict(env_prefix="STREAMDESK_RETRIEVAL__", env_file=".env", extra="ignore", frozen=True)

    vector_mode: VectorMode = Field(
        "vector", description="Which HNSW index serves the vector arm: fp32 `vector`, `halfvec`, or `binary` + re-rank."
    )
    ef_search: int = Field(400, ge=10, le=1000, description="hnsw.ef_search: candidate list size of an HNSW scan.")
    iterative_scan: IterativeScan = Field(
        "relaxed_order", description="hnsw.iterative_scan: keep scanning the index until filtered rows fill k."
    )
    max_scan_tuples: int = Field(40_000, ge=1000, description="hnsw.max_scan_tuples: where an iterative scan stops.")
    exact_max_rows: int = Field(
        3000, ge=0, description="Filters matching at most this many chunks are searched exactly, without the index."
    )
    candidates: int = Field(40, ge=10, le=1000, description="Chunks each arm (lexical, vector) hands to fusion.")
    fusion: FusionMethod = Field(
        "zscore",
        description="How the arms are fused: a weighted sum of cosine similarity and text rank, both computed for "
        "every candidate and standardised over the pool (`zscore` or `minmax`), or `rrf` (reciprocal rank fusion).",
    )
    fusion_alpha: float = Field(
        0.7, ge=0, le=1, description="Score fusion: weight of the vector similarity (the text rank gets the rest)."
    )
    lexical_match_budget: int = Field(
        2000,
        ge=100,
        description="Chunks the lexical arm may match before ranking: query words are matched rarest first (by the "
        "planner's lexeme statistics) while their estimated matches fit; every query word still counts in the rank.",
    )
    lexical_rank_cap: int = Field(
        4000,
        ge=100,
        description="Hard cap on chunks the lexical arm ranks, for queries whose rarest words are still common.",
    )
    rrf_k: int = Field(60, ge=1, description="Reciprocal rank fusion constant: score = weight / (rrf_k + rank).")
    vector_weight: float = Field(1.0, ge=0, description="RRF: weight of the vector arm.")
    lexical_weight: float = Field(1.0, ge=0, description="RRF: weight of the lexical arm.")
    binary_oversample: int = Field(
        10, ge=1, le=100, description="Binary mode: Hamming candidates per wanted hit, re-ranked by cosine."
    )
    employee_roles: frozenset[str] = Field(
        EMPLOYEE_ROLES, description="Roles that make a user an employee, who may read `internal` documents."
    )
    customer_agent_reads_internal: bool = Field(
        False, description="Whether the agent acting for a customer may read `internal` documents."
    )


@read_once
def get_retrieval_settings() -> RetrievalSettings:
    """The retrieval settings, read from the environment once per process (`config.reset_settings` forgets them)."""
    return RetrievalSettings()
