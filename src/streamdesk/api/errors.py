"""The API's one error map: which errors the domains raise on purpose become which HTTP status.

Bad values are 422; a conflict with what is stored (a second verdict on an answer) is 409; a broker or
database that does not answer is 503 with `Retry-After`; other deliberate streamdesk errors are 400. How the
answers are written (and validation errors) is `web.errors`; the map lives here, beside the app that gathers
every package's routes, so the HTTP plumbing imports no domain.
"""

from __future__ import annotations

import psycopg
from fastapi import FastAPI

from streamdesk.audit.exceptions import AuditTamperedError
from streamdesk.exceptions import ConfigurationError, ContractError, StreamdeskError
from streamdesk.feedback.exceptions import InvalidVerdictError, VerdictConflictError
from streamdesk.gateway import exceptions as gateway
from streamdesk.kafka import PublishError
from streamdesk.policy import exceptions as policy
from streamdesk.retrieval.exceptions import InvalidFiltersError
from streamdesk.training.exceptions import AdapterVersionNotFoundError, PromotionError
from streamdesk.web import errors as web_errors

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


def status_for(exc: Exception) -> int:
    """The HTTP status of `exc`: that of its most specific class in ERROR_STATUS, else 400."""
    return web_errors.status_for(exc, ERROR_STATUS)


def install(app: FastAPI) -> None:
    """Answer every handled error of `app` by this map (`create_app` does; so can a test's bare app)."""
    web_errors.install(app, statuses=ERROR_STATUS, handled=HANDLED)
