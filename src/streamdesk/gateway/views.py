"""POST /webhooks/{source}: the HTTP face of the gateway; 202 means PostgreSQL holds the webhook for the relay."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from streamdesk.config import Settings
from streamdesk.exceptions import StreamdeskError
from streamdesk.gateway import service
from streamdesk.gateway.signatures import SignedRequest
from streamdesk.web import deps, errors

log = logging.getLogger(__name__)
router = APIRouter(tags=["webhooks"])


SettingsDep = Annotated[Settings, Depends(deps.app_settings)]


async def read_body(request: Request, *, limit: int) -> bytes:
    """The body, refused with PayloadTooLargeError as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit():
        service.check_size(size=int(declared), limit=limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        service.check_size(size=size, limit=limit)
        chunks.append(chunk)
    return b"".join(chunks)


def request_url(request: Request) -> str:
    """The absolute URL as the sender addressed it (raw path, raw query); HubSpot signs it."""
    raw_path: bytes | None = request.scope.get("raw_path")
    path = raw_path.decode("latin-1") if raw_path else request.url.path
    query: bytes = request.scope.get("query_string", b"")
    url = f"{request.url.scheme}://{request.url.netloc}{path}"
    return f"{url}?{query.decode('latin-1')}" if query else url


@router.post("/{source}", status_code=202, summary="Receive one signed webhook")
async def receive_webhook(
    source: str,
    request: Request,
    settings: SettingsDep,
    mapping: Annotated[str | None, Query(description="Declarative mapping (generic source only).")] = None,
) -> dict[str, str]:
    """Verify and deduplicate a webhook and keep it, verbatim, for the relay to its raw topic."""
    try:
        service.get_source(name=source)
        body = await read_body(request, limit=settings.ingest.max_body_bytes)
        signed = SignedRequest(
            method=request.method, url=request_url(request), body=body, headers=dict(request.headers)
        )
        delivery = await run_in_threadpool(
            service.accept,
            source_name=source,
            request=signed,
            settings=settings,
            mapping=mapping,
        )
    except StreamdeskError as exc:
        log.warning("webhook %s refused with %d: %s", source, errors.app_status_for(request, exc), exc)
        raise
    log.info("webhook %s %s accepted to %s", source, delivery.delivery_id[:40], delivery.topic)
    return {
        "status": "accepted",
        "source": delivery.source,
        "delivery_id": delivery.delivery_id,
        "topic": delivery.topic,
        "key": delivery.key,
    }
