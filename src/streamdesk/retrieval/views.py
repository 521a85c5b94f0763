"""/search: permission-aware hybrid search as the caller (their roles, groups and tenant scope the hits)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from streamdesk.identity.models import Principal as Caller
from streamdesk.retrieval import service
from streamdesk.retrieval.config import SearchMode
from streamdesk.retrieval.models import Filters, SearchResult
from streamdesk.web.auth import Gate, PrincipalDep
from streamdesk.web.deps import ConnDep

router = APIRouter(tags=["search"], dependencies=[Gate])
QueryText = Annotated[str, Field(min_length=1, max_length=1000)]


class SearchFilters(BaseModel):
    """Narrowing filters; they never widen what the caller may read."""

    sources: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list, max_length=50)
    doc_types: list[Annotated[str, Field(max_length=200)]] = Field(default_factory=list, max_length=50)
    occurred_after: datetime | None = None
    occurred_before: datetime | None = None


class SearchRequest(BaseModel):
    """A query, how many hits, the mode and filters."""

    query: QueryText
    k: int = Field(default=10, ge=1, le=100)
    mode: SearchMode = "hybrid"
    filters: SearchFilters = Field(default_factory=SearchFilters)


def _search(conn: ConnDep, caller: Caller, request: SearchRequest) -> SearchResult:
    filters = Filters(
        sources=frozenset(request.filters.sources),
        doc_types=frozenset(request.filters.doc_types),
        occurred_after=request.filters.occurred_after,
        occurred_before=request.filters.occurred_before,
    )
    return service.search(
        conn=conn, query=request.query, principal=caller, filters=filters, k=request.k, mode=request.mode
    )


@router.get("")
def search_get(
    operator: PrincipalDep,
    conn: ConnDep,
    q: Annotated[str, Query(min_length=1, max_length=1000, description="The query text.")],
    k: Annotated[int, Query(ge=1, le=100)] = 10,
    mode: SearchMode = "hybrid",
) -> SearchResult:
    """The top-k passages the caller may read for `q`, with citations and the access filter applied."""
    return _search(conn, operator, SearchRequest(query=q, k=k, mode=mode))


@router.post("")
def search_post(body: SearchRequest, operator: PrincipalDep, conn: ConnDep) -> SearchResult:
    """The same search with filters (sources, document types, time range) in the body."""
    return _search(conn, operator, body)
