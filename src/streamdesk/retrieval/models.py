"""What narrows a search (Filters) and what comes back (SearchResult, Hit, Citation); who searches is an
`identity.models.PrincipalBase`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from streamdesk import links
from streamdesk.retrieval.config import SearchMode, VectorMode
from streamdesk.retrieval.exceptions import InvalidFiltersError


class Filters(BaseModel):
    """Metadata filters; each one only narrows what the principal may already read."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sources: frozenset[str] = frozenset()
    doc_types: frozenset[str] = frozenset()
    occurred_after: datetime | None = None
    occurred_before: datetime | None = None
    tenant: str | None = None

    @model_validator(mode="after")
    def _range_in_order(self) -> Filters:
        if self.occurred_after and self.occurred_before and self.occurred_after >= self.occurred_before:
            raise InvalidFiltersError(
                f"occurred_after={self.occurred_after.isoformat()} is not before "
                f"occurred_before={self.occurred_before.isoformat()}; swap or widen the range"
            )
        return self


class Citation(BaseModel):
    """Where a hit comes from: document, source system, title/URL and the chunk's position in the document.

    `url` is None unless the document's link is one a browser may follow (`links.safe_link`).
    """

    model_config = ConfigDict(frozen=True)

    document_id: str
    source: str
    external_id: str
    title: str
    url: Annotated[str | None, AfterValidator(links.safe_link)]
    chunk_no: int
    char_start: int
    char_end: int


class Hit(BaseModel):
    """One retrieved chunk with its fused score and its rank in each arm (None: not found by that arm)."""

    model_config = ConfigDict(frozen=True)

    citation: Citation
    text: str
    score: float
    vector_rank: int | None = None
    lexical_rank: int | None = None
    distance: float | None = None
    doc_type: str
    access_level: str
    occurred_at: datetime | None = None


class SearchResult(BaseModel):
    """Hits, and exactly how they were found: the access filter applied, the plan, the embedding space."""

    model_config = ConfigDict(frozen=True)

    query: str
    principal: str
    mode: SearchMode
    vector_mode: VectorMode
    plan: Literal["index", "exact", "none"]
    applied_filter: str
    embedding_space: str | None
    hits: list[Hit]
    timings_ms: dict[str, float] = Field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The result as JSON-friendly data (the audit trail stores it)."""
        return self.model_dump(mode="json")
