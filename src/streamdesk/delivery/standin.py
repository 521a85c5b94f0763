"""A local stand-in for Zendesk (not Zendesk): the Support API routes the delivery worker uses, for tests and `up`.

It implements `PUT /api/v2/tickets/{id}.json` (a comment and a status change) and
`GET /api/v2/tickets/{id}/comments.json` (paginated by `page`/`per_page`, as Zendesk's offset pagination),
checks each request as Zendesk documents it (authentication by `email/token` + API token or OAuth bearer;
integer ticket ids; a comment's `body` or `html_body`, `public` a boolean; the ticket statuses; a closed ticket
cannot be updated: 422 `RecordInvalid`; when asked for, a rate limit: 429 with `Retry-After`), and keeps what it
received (`/_standin/requests`, and a JSON-lines file when given) so tests and `streamdesk up` can show it.
`POST /_standin/tickets/{id}/close` closes a ticket.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, ValidationError

ZendeskStatus = Literal["new", "open", "pending", "hold", "solved", "closed"]


class CommentIn(BaseModel):
    """A ticket comment as the Tickets API takes it."""

    model_config = ConfigDict(extra="forbid")

    body: str | None = None
    html_body: str | None = None
    public: bool = True
    author_id: int | None = None


class TicketIn(BaseModel):
    """The part of a ticket update the delivery worker sends; other ticket fields are refused, to catch typos."""

    model_config = ConfigDict(extra="forbid")

    comment: CommentIn | None = None
    status: ZendeskStatus | None = None


class TicketUpdate(BaseModel):
    """`{"ticket": {...}}`."""

    model_config = ConfigDict(extra="forbid")

    ticket: TicketIn


@dataclass
class StandinState:
    """What the stand-in holds: tickets (status, comments) and every request it received."""

    received_path: Path | None = None
    delay_s: float = 0.0
    busy: int = 0
    """Answer this many ticket updates with 429 and `Retry-After: 1` (Zendesk's rate limit) before taking any."""
    tickets: dict[int, dict[str, Any]] = field(default_factory=dict)
    received: list[dict[str, Any]] = field(default_factory=list)
    next_id: int = 1000
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ticket(self, ticket_id: int) -> dict[str, Any]:
        """Ticket `ticket_id`; any integer id exists, opened on first use."""
        return self.tickets.setdefault(ticket_id, {"status": "open", "comments": []})

    def record(self, entry: dict[str, Any]) -> None:
        """Keep one received request (and append it to the JSON-lines file)."""
        self.received.append(entry)
        if self.received_path is not None:
            with self.received_path.open("a", encoding="utf-8") as out:
                out.write(json.dumps(entry) + "\n")

    def comments(self) -> list[dict[str, Any]]:
        """Every comment on every ticket, oldest first, with its ticket id."""
        return [
            {**comment, "ticket_id": ticket_id}
            for ticket_id, ticket in sorted(self.tickets.items())
            for comment in ticket["comments"]
        ]

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _error(status: int, error: str, description: str, details: dict[str, Any] | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "description": description, "details": details or {}}, status_code=status)


def _authenticated(request: Request) -> bool:
    """As Zendesk documents it: `Basic base64(email/token:api_token)` or `Bearer <oauth token>`."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        return bool(value.strip())
    if scheme.lower() != "basic":
        return False
    try:
        user, _, token = base64.b64decode(value).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return False
    return user.endswith("/token") and "@" in user and bool(token)


def create_app(state: StandinState) -> FastAPI:
    """The stand-in's HTTP app over `state`."""
    app = FastAPI(title="Zendesk stand-in (streamdesk tests and local runs; not Zendesk)")

    @app.middleware("http")
    async def keep(request: Request, call_next: Any) -> Any:
        body = await request.body()
        response = await call_next(request)
        if not request.url.path.startswith("/_standin"):
            entry = {"method": request.method, "path": request.url.path, "status": response.status_code, "at": _now()}
            if body:
                entry["body"] = json.loads(body) if body.strip().startswith(b"{") else body.decode(errors="replace")
            with state.lock:
                state.record(entry)
        return response

    @app.put("/api/v2/tickets/{ticket_id}.json")
    async def update_ticket(ticket_id: str, request: Request) -> JSONResponse:
        if not _authenticated(request):
            return _error(401, "Couldn't authenticate you", "Send email/token with an API token, or a bearer token")
        if not ticket_id.isdigit():
            return _error(404, "RecordNotFound", "Not found")
        try:
            update = TicketUpdate.model_validate_json(await request.body())
        except ValidationError as exc:
            return _error(400, "InvalidValue", "Invalid request", {"errors": exc.errors(include_url=False)})
        if state.delay_s:
            time.sleep(state.delay_s)
        if state.busy > 0:
            state.busy -= 1
            return JSONResponse({"error": "TooManyRequests"}, status_code=429, headers={"Retry-After": "1"})
        comment = update.ticket.comment
        with state.lock:
            ticket = state.ticket(int(ticket_id))
            if ticket["status"] == "closed":
                details = {"status": [{"description": "Status: closed prevents ticket update"}]}
                return _error(422, "RecordInvalid", "Record validation errors", details)
            if comment is not None and not (comment.body or comment.html_body or "").strip():
                details = {"base": [{"description": "Comment: body can't be blank"}]}
                return _error(422, "RecordInvalid", "Record validation errors", details)
            events: list[dict[str, Any]] = []
            if comment is not None:
                text = comment.body or comment.html_body or ""
                stored = {
                    "id": state._id(),
                    "type": "Comment",
                    "body": text,
                    "plain_body": text,
                    "public": comment.public,
                }
                stored |= {"author_id": comment.author_id or 1, "created_at": _now()}
                ticket["comments"].append(stored)
                events.append({k: stored[k] for k in ("id", "type", "body", "public")})
            if update.ticket.status is not None and update.ticket.status != ticket["status"]:
                events.append(
                    {
                        "id": state._id(),
                        "type": "Change",
                        "field_name": "status",
                        "value": update.ticket.status,
                        "previous_value": ticket["status"],
                    }
                )
                ticket["status"] = update.ticket.status
            audit = {"id": state._id(), "ticket_id": int(ticket_id), "created_at": _now(), "events": events}
            return JSONResponse({"ticket": {"id": int(ticket_id), "status": ticket["status"]}, "audit": audit})

    @app.get("/api/v2/tickets/{ticket_id}/comments.json")
    async def list_comments(ticket_id: str, request: Request, page: int = 1, per_page: int = 100) -> JSONResponse:
        if not _authenticated(request):
            return _error(401, "Couldn't authenticate you", "Send email/token with an API token, or a bearer token")
        if not ticket_id.isdigit() or page < 1 or not 1 <= per_page <= 100:
            return _error(404 if not ticket_id.isdigit() else 400, "InvalidValue", "Invalid request")
        with state.lock:
            comments = list(state.ticket(int(ticket_id))["comments"])
        start = (page - 1) * per_page
        base = str(request.url.remove_query_params(["page", "per_page"]))
        more = start + per_page < len(comments)
        return JSONResponse(
            {
                "comments": comments[start : start + per_page],
                "next_page": f"{base}?page={page + 1}&per_page={per_page}" if more else None,
                "previous_page": f"{base}?page={page - 1}&per_page={per_page}" if page > 1 else None,
                "count": len(comments),
            }
        )

    @app.get("/_standin/requests")
    async def requests_received() -> JSONResponse:
        with state.lock:
            return JSONResponse({"requests": state.received, "comments": state.comments()})

    @app.post("/_standin/tickets/{ticket_id}/close")
    async def close_ticket(ticket_id: int) -> JSONResponse:
        with state.lock:
            state.ticket(ticket_id)["status"] = "closed"
        return JSONResponse({"ticket": {"id": ticket_id, "status": "closed"}})

    return app


@contextmanager
def running(state: StandinState, *, host: str = "127.0.0.1", port: int) -> Iterator[str]:
    """Serve the stand-in on a thread of this process while the block runs; yields its base URL."""
    server = uvicorn.Server(uvicorn.Config(create_app(state), host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="zendesk-standin", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def serve(*, host: str = "127.0.0.1", port: int, received_path: Path | None = None, delay_s: float = 0.0) -> None:
    """Serve the stand-in in the foreground until stopped (`streamdesk standin zendesk`)."""
    state = StandinState(received_path=received_path, delay_s=delay_s)
    uvicorn.run(create_app(state), host=host, port=port, log_level="warning")
