"""The `search_knowledge` tool: permission-aware retrieval under the conversation's principal, never fatal.

Retrieval is its own domain; the agent calls its public `search` and turns hits into passages with
stable chunk ids. A failing search (no index yet, a migration in progress, a bug) gives the model no
passages and an error note instead of stopping the answer.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg

from streamdesk.agent.models import Tool, ToolContext, arguments_schema
from streamdesk.agent.tools import ToolRegistry
from streamdesk.identity.models import Principal

log = logging.getLogger(__name__)

SEARCH_TOOL = "search_knowledge"
SEARCH_PARAMETERS = arguments_schema(
    {
        "query": {
            "type": "string",
            "minLength": 1,
            "maxLength": 300,
            "description": "What to look up in the knowledge base.",
        }
    }
)


def chunk_id(*, document_id: str, chunk_no: int) -> str:
    """`<source>:<external_id>#<chunk_no>`: the id a reply cites a passage by."""
    return f"{document_id}#{chunk_no}"


def search(
    conn: psycopg.Connection, *, principal: Principal, query: str, k: int, mode: str, chars: int
) -> dict[str, Any]:
    """Passages the principal may read for `query`, the access filter retrieval applied, or the error.

    Each passage carries its chunk id, title, `text` (cut to `chars`, what the model reads), `full_text`
    (what an extractive answer may quote), `access_level` (only `public` passages are cited to a customer) and
    the cosine `distance` of its stored vector to the query (None when the search ran no vector arm).
    """
    try:
        from streamdesk.retrieval import service as retrieval

        with conn.transaction():
            result = retrieval.search(
                conn=conn,
                query=query,
                principal=principal,
                k=k,
                mode=mode,  # type: ignore[arg-type]
            )
    except Exception as exc:  # retrieval must never take the agent down
        log.warning("knowledge search failed, answering without passages: %s: %s", type(exc).__name__, exc)
        return {"passages": [], "error": f"knowledge search unavailable ({type(exc).__name__})", "access_filter": None}
    passages = [
        {
            "chunk_id": chunk_id(document_id=hit.citation.document_id, chunk_no=hit.citation.chunk_no),
            "title": hit.citation.title,
            "text": hit.text[:chars],
            "full_text": hit.text,
            "access_level": hit.access_level,
            "distance": hit.distance,
        }
        for hit in result.hits
    ]
    access = {
        "filter": result.applied_filter,
        "principal": result.principal,
        "mode": result.mode,
        "plan": result.plan,
        "embedding_space": result.embedding_space,
    }
    return {"passages": passages, "access_filter": access}


def search_tool(*, principal: Principal, k: int = 3, mode: str = "hybrid", chars: int = 600) -> Tool:
    """`search_knowledge(query)` bound to `principal`: it searches with that principal's access scope."""

    def search_knowledge(conn: psycopg.Connection, arguments: dict[str, Any], context: ToolContext) -> dict[str, Any]:
        return search(conn, principal=principal, query=arguments["query"], k=k, mode=mode, chars=chars)

    return Tool(
        name=SEARCH_TOOL,
        description="Search the knowledge base (policies, help articles) for passages you may cite.",
        parameters=SEARCH_PARAMETERS,
        kind="read",
        handler=search_knowledge,
    )


def bind(
    registry: ToolRegistry, *, principal: Principal, k: int = 3, mode: str = "hybrid", chars: int = 600
) -> ToolRegistry:
    """`registry` with `search_knowledge` (added when missing) searching as `principal`."""
    tool = search_tool(principal=principal, k=k, mode=mode, chars=chars)
    if SEARCH_TOOL in registry.names():
        return ToolRegistry(tool if existing.name == SEARCH_TOOL else existing for existing in registry)
    return ToolRegistry([*registry, tool])
