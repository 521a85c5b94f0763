"""Who searches (Principal), what narrows a search (Filters), and what comes back (SearchResult, Hit, Citation)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from urllib.parse import parse_qs

from pydantic import BaseModel, ConfigDict, Field, model_validator

from streamdesk.retrieval.config import SearchMode, VectorMode
from streamdesk.retrieval.exceptions import InvalidFiltersError, InvalidPrincipalError

PrincipalKind = Literal["user", "agent"]


class Principal(BaseModel):
    """A user (roles, groups) or the agent acting for one customer; every search carries one."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: PrincipalKind
    id: str = Field(min_length=1)
    roles: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    tenant: str = Field("default", min_length=1)
    customer_id: str | None = None

    @model_validator(mode="after")
    def _agent_needs_customer(self) -> Principal:
        if self.kind == "agent" and not self.customer_id:
            raise InvalidPrincipalError(
                f"agent principal {self.id!r} acts for no customer; give customer_id (spec `agent:CUSTOMER_ID`)"
            )
        return self

    @classmethod
    def parse(cls, spec: str) -> Principal:
        """`user:ID[?roles=a,b&groups=c&tenant=t]` or `agent:CUSTOMER_ID[?tenant=t]`."""
        head, _, query = spec.partition("?")
        kind, sep, ident = head.partition(":")
        if not sep or kind not in ("user", "agent") or not ident:
            raise InvalidPrincipalError(
                f"principal {spec!r} is not `user:ID[?roles=..&groups=..&tenant=..]` or `agent:CUSTOMER_ID`"
            )
        params = {key: ",".join(values) for key, values in parse_qs(query, strict_parsing=bool(query)).items()}
        unknown = set(params) - {"roles", "groups", "tenant"}
        if unknown:
            raise InvalidPrincipalError(
                f"principal {spec!r} has unknown option(s) {sorted(unknown)}; "
                "the form is `user:ID?roles=..&groups=..&tenant=..`"
            )

        def names(key: str) -> frozenset[str]:
            return frozenset(n.strip() for n in params.get(key, "").split(",") if n.strip())

        tenant = params.get("tenant") or "default"
        if kind == "agent":
            return cls(kind="agent", id=f"agent-for-{ident}", customer_id=ident, tenant=tenant, roles=names("roles"))
        return cls(kind="user", id=ident, roles=names("roles"), groups=names("groups"), tenant=tenant)

    def describe(self) -> str:
        """A short label for logs and the audit trail."""
        if self.kind == "agent":
            return f"agent for customer {self.customer_id} (tenant {self.tenant})"
        return f"user {self.id} roles={sorted(self.roles)} groups={sorted(self.groups)} (tenant {self.tenant})"


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
    """Where a hit comes from: document, source system, title/URL and the chunk's position in the document."""

    model_config = ConfigDict(frozen=True)

    document_id: str
    source: str
    external_id: str
    title: str
    url: str | None
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
