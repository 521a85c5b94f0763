"""How the API answers errors: the status a domain error maps to (the map is `api.errors.ERROR_STATUS`, given at
`install`), what the caller is told, and validation errors that never echo a large input back.

A broker or database that does not answer is 503 with `Retry-After`; a validation error names what failed but
never echoes a large input back (a 1 MB body must not come back as a 1 MB 422).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

StatusMap = Mapping[type[Exception], int]

RETRY_AFTER_S = 5
MAX_ECHOED_CHARS = 200
"""Longest input (as JSON) a validation error repeats back; longer ones are described, not echoed."""
MAX_ERRORS = 20
"""Most validation errors listed in one 422; the rest are counted."""


def first_line(exc: BaseException) -> str:
    """The first line of the error's message, or its class name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def describe(exc: Exception) -> str:
    """What the caller is told: for a database that does not answer, that and what to do."""
    if isinstance(exc, psycopg.errors.QueryCanceled):
        return (
            f"the database did not finish in time ({first_line(exc)}); it is overloaded or a lock is held — "
            f"retry in a few seconds"
        )
    if isinstance(exc, psycopg.OperationalError):
        return (
            f"the database is not answering ({first_line(exc)}); retry in a few seconds, "
            "and check PostgreSQL if it persists (GET /readyz shows when it is back)"
        )
    return first_line(exc)


def status_for(exc: Exception, statuses: StatusMap) -> int:
    """The HTTP status of `exc`: that of its most specific class in `statuses`, else 400."""
    return next((statuses[cls] for cls in type(exc).__mro__ if cls in statuses), 400)


def install(app: FastAPI, *, statuses: StatusMap, handled: tuple[type[Exception], ...]) -> None:
    """Answer the `handled` errors of `app` by `statuses`, and validation errors with a short 422."""
    app.state.error_status = statuses
    for error in handled:
        app.add_exception_handler(error, domain_error)
    app.add_exception_handler(RequestValidationError, validation_error)


def app_status_for(request: Request, exc: Exception) -> int:
    """The status the app answering `request` gives `exc` (its map, set by `install`)."""
    return status_for(exc, getattr(request.app.state, "error_status", {}))


async def domain_error(request: Request, exc: Exception) -> JSONResponse:
    """The status of a deliberate error from a domain (by the app's map); other streamdesk errors are 400."""
    status = app_status_for(request, exc)
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
    return JSONResponse({"detail": describe(exc)}, status_code=status, headers=headers)


def _short(value: Any) -> Any:
    """`value` when its JSON is short, else a description of it (type and size)."""
    try:
        plain = jsonable_encoder(value)
    except (TypeError, ValueError):  # an object pydantic put in `ctx`, such as the ValueError a validator raised
        plain = str(value)
    encoded = json.dumps(plain, default=str)
    if len(encoded) <= MAX_ECHOED_CHARS:
        return plain
    size = f"{len(value)} items" if isinstance(value, list | dict) else f"{len(encoded)} characters as JSON"
    return f"({type(value).__name__} of {size}, not echoed)"


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """422 naming each failed location and why, with long inputs described instead of echoed."""
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    detail: list[dict[str, Any]] = []
    for error in errors[:MAX_ERRORS]:
        item = {key: error[key] for key in ("type", "loc", "msg") if key in error}
        if "input" in error:
            item["input"] = _short(error["input"])
        if "ctx" in error:
            item["ctx"] = {name: _short(value) for name, value in error["ctx"].items()}
        detail.append(jsonable_encoder(item))
    if len(errors) > MAX_ERRORS:
        detail.append(
            {"type": "too_many_errors", "loc": [], "msg": f"{len(errors) - MAX_ERRORS} more errors not listed"}
        )
    return JSONResponse({"detail": detail}, status_code=422)
