"""The API's one error policy: which errors become which status, and what the caller is told.

Bad values are 422; a conflict with what is stored (a second verdict on an answer) is 409; a broker or
database that does not answer is 503 with `Retry-After`; other deliberate streamdesk errors are 400. A
validation error names what failed but never echoes a large input back (a 1 MB body must not come back as a
1 MB 422).
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from streamdesk.audit.exceptions import AuditTamperedError
from streamdesk.exceptions import ConfigurationError, ContractError, StreamdeskError
from streamdesk.feedback.exceptions import InvalidVerdictError, VerdictConflictError
from streamdesk.gateway import exceptions as gateway
from streamdesk.kafka import PublishError
from streamdesk.policy import exceptions as policy
from streamdesk.retrieval.exceptions import InvalidFiltersError
from streamdesk.training.exceptions import AdapterVersionNotFoundError, PromotionError

ERROR_STATUS: dict[type[Exception], int] = {
    ContractError: 422,
    InvalidVerdictError: 422,
    InvalidFiltersError: 422,
    VerdictConflictError: 409,
    policy.ActionNotFoundError: 404,
    policy.NotAnApproverError: 403,
    policy.SelfApprovalError: 403,
    policy.ActionAlreadyDecidedError: 409,
    AdapterVersionNotFoundError: 404,
    PromotionError: 409,
    gateway.InvalidPayloadError: 400,
    gateway.SignatureError: 401,
    gateway.UnknownSourceError: 404,
    gateway.ReplayedDeliveryError: 409,
    gateway.PayloadTooLargeError: 413,
    gateway.GatewayError: 503,
    psycopg.DataError: 422,
    PublishError: 503,
    ConfigurationError: 503,
    psycopg.OperationalError: 503,
    AuditTamperedError: 503,
}
"""The one map from errors that reach the app to HTTP statuses; the most specific class listed wins (`status_for`).

Bad values are 422; an unknown id 404; a conflict with what is stored (a second verdict, a decided action) 409;
an unreachable broker or database, a webhook the gateway cannot take now, or a tampered audit trail (which takes
no more records until it is repaired) 503."""
HANDLED: tuple[type[Exception], ...] = (StreamdeskError, psycopg.DataError, psycopg.OperationalError)
"""The exception classes `domain_error` answers for (register each with the app)."""
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


def status_for(exc: Exception) -> int:
    """The HTTP status of `exc`: that of its most specific class in ERROR_STATUS, else 400."""
    return next((ERROR_STATUS[cls] for cls in type(exc).__mro__ if cls in ERROR_STATUS), 400)


def install(app: FastAPI) -> None:
    """Answer every handled error of `app` by this map (`create_app` does; so can a test's bare app)."""
    for error in HANDLED:
        app.add_exception_handler(error, domain_error)
    app.add_exception_handler(RequestValidationError, validation_error)


async def domain_error(request: Request, exc: Exception) -> JSONResponse:
    """The status of a deliberate error from a domain (see ERROR_STATUS); other streamdesk errors are 400."""
    status = status_for(exc)
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
