"""/console: server-rendered pages for support agents, supervisors, auditors and integration engineers.

Operators sign in with their API token; the console keeps only their id, a keyed fingerprint of the
token and a session id in a signed, HttpOnly cookie (itsdangerous), so a revoked or rotated token ends the
sign-in, and signing out ends it server-side (`console.sessions`): a copy of the cookie no longer works.
Every form carries the session's CSRF token. Pages call the domain services with the signed-in
principal; the policy's rule for the matching API route decides every page and button
(`console.service.PAGE_ROUTES`), and a role that may not see a page gets a 403 page.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import jinja2
from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, URLSafeTimedSerializer

from streamdesk import db, links
from streamdesk.audit import service as audit
from streamdesk.config import get_settings
from streamdesk.console import service, sessions
from streamdesk.console.config import ConsoleSettings, get_console_settings
from streamdesk.console.exceptions import (
    ConsoleError,
    CsrfRejectedError,
    InvalidReviewError,
    PageForbiddenError,
    SignInRequiredError,
)
from streamdesk.console.models import VERDICT_KINDS
from streamdesk.delivery import service as delivery
from streamdesk.feedback.exceptions import FeedbackError
from streamdesk.identity import operators
from streamdesk.identity import service as identity
from streamdesk.identity.exceptions import UnknownOperatorError
from streamdesk.identity.models import Principal
from streamdesk.policy import approvals
from streamdesk.policy.exceptions import ApprovalError, NotAnApproverError
from streamdesk.training import registry, trigger
from streamdesk.training.exceptions import AdapterVersionNotFoundError
from streamdesk.training.models import AdapterVersion
from streamdesk.web.deps import OptionalPublisherDep

HERE = Path(__file__).resolve().parent
SESSION_SALT = "streamdesk.console.session"


def _when(value: datetime | None) -> str:
    return "—" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True, undefined=jinja2.StrictUndefined
)
_environment.filters["when"] = _when
_environment.filters["safe_link"] = links.safe_link
templates = Jinja2Templates(env=_environment)


@dataclass
class ConsoleSession:
    """What the session cookie holds: who signed in (with a token fingerprint), the CSRF token, flash messages."""

    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    operator_id: str | None = None
    token_fingerprint: str | None = None
    session_id: str | None = None
    flashes: list[tuple[str, str]] = field(default_factory=list)

    def flash(self, level: str, message: str) -> None:
        """Show `message` on the next page rendered ('ok' or 'error')."""
        self.flashes.append((level, message))

    def to_json(self) -> dict[str, Any]:
        """The cookie payload."""
        return {
            "csrf": self.csrf,
            "op": self.operator_id,
            "fp": self.token_fingerprint,
            "sid": self.session_id,
            "flash": self.flashes,
        }


@dataclass(frozen=True)
class Viewer:
    """The signed-in operator of one request and their session."""

    principal: Principal
    session: ConsoleSession


def _serializer(settings: ConsoleSettings) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(settings.session_key.get_secret_value(), salt=SESSION_SALT)


def token_fingerprint(token_digest: str, *, settings: ConsoleSettings) -> str:
    """An HMAC of the SHA-256 of the operator's API token under the session key: proves the token without storing
    it, and can be checked against a database operator, of whom only that digest is kept."""
    key = settings.session_key.get_secret_value().encode()
    return hmac.new(key, token_digest.encode(), hashlib.sha256).hexdigest()


def console_session(request: Request) -> ConsoleSession:
    """The request's session from its signed cookie; a fresh one when there is none, or it is invalid, expired or
    signed out (its sign-in is no longer in `console_sessions`)."""
    cached: ConsoleSession | None = getattr(request.state, "console_session", None)
    if cached is not None:
        return cached
    settings = get_console_settings()
    session = ConsoleSession()
    raw = request.cookies.get(settings.cookie_name)
    if raw:
        try:
            data = _serializer(settings).loads(raw, max_age=settings.session_max_age_s)
            session = ConsoleSession(
                csrf=str(data["csrf"]),
                operator_id=data.get("op"),
                token_fingerprint=data.get("fp"),
                session_id=data.get("sid"),
                flashes=[(str(level), str(text)) for level, text in data.get("flash") or []],
            )
        except (BadSignature, KeyError, TypeError, ValueError):
            session = ConsoleSession()
    if session.operator_id and not _signed_in_still(session):
        session = ConsoleSession()
    request.state.console_session = session
    return session


SessionDep = Annotated[ConsoleSession, Depends(console_session)]


def _signed_in_still(session: ConsoleSession) -> bool:
    """True when the session's sign-in has not ended (signed out) or expired server-side."""
    if not session.operator_id or not session.session_id:
        return False
    with db.request_connection() as conn:
        return sessions.is_active(conn, session_id=session.session_id, operator_id=session.operator_id)


def session_principal(session: ConsoleSession) -> Principal | None:
    """The operator the session signed in, while the token they signed in with is still theirs; else None."""
    if not session.operator_id or not session.token_fingerprint:
        return None
    current = identity.credential(operator_id=session.operator_id)
    if current is None:
        return None
    expected = token_fingerprint(current.token_digest, settings=get_console_settings())
    if not hmac.compare_digest(expected, session.token_fingerprint):
        return None
    return current.principal


def signed_in(session: SessionDep) -> Viewer:
    """The signed-in operator; the browser goes to the sign-in page otherwise."""
    principal = session_principal(session)
    if principal is None:
        raise SignInRequiredError("sign in with your operator API token")
    return Viewer(principal=principal, session=session)


def page_viewer(page: str) -> Callable[[Viewer], Viewer]:
    """A dependency admitting operators whose roles may open `page` (403 page otherwise)."""

    def admitted(viewer: Annotated[Viewer, Depends(signed_in)]) -> Viewer:
        decision = service.authorize_page(viewer.principal, page)
        if not decision.allowed:
            raise PageForbiddenError(f"{service.PAGE_TITLES[page]}: {decision.reason}")
        return viewer

    return admitted


def csrf_checked(session: SessionDep, csrf_token: Annotated[str, Form()] = "") -> None:
    """Refuse a form that does not carry the session's CSRF token."""
    if not csrf_token or not hmac.compare_digest(csrf_token, session.csrf):
        raise CsrfRejectedError("the form's security token is missing or stale; reload the page and try again")


CsrfDep = Depends(csrf_checked)


def _path(request: Request, name: str, **params: Any) -> str:
    return request.url_for(name, **params).path


def _save(response: Response, request: Request, session: ConsoleSession) -> Response:
    settings = get_console_settings()
    response.set_cookie(
        settings.cookie_name,
        _serializer(settings).dumps(session.to_json()),
        max_age=settings.session_max_age_s,
        path=_path(request, "console-home").rstrip("/") or "/",
        httponly=True,
        secure=settings.secure_cookie,
        samesite="lax",
    )
    return response


def render(
    request: Request,
    template: str,
    *,
    session: ConsoleSession,
    principal: Principal | None = None,
    status_code: int = 200,
    **context: Any,
) -> Response:
    """A page of the console, with the navigation the principal may use and the pending flash messages."""
    flashes, session.flashes = session.flashes, []
    pages = service.pages_for(principal) if principal is not None else []
    page_context = {
        "principal": principal,
        "nav": [(page, service.PAGE_TITLES[page], _path(request, f"console-{page}")) for page in pages],
        "csrf_token": session.csrf,
        "flashes": flashes,
        "path": lambda name, **params: _path(request, name, **params),
        "active": context.pop("active", None),
        **context,
    }
    response = templates.TemplateResponse(request, template, page_context, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    return _save(response, request, session)


def render_page(request: Request, viewer: Viewer, page: str, **context: Any) -> Response:
    """Console page `page` (template `<page>.html`, highlighted in the navigation) for the signed-in viewer."""
    return render(request, f"{page}.html", session=viewer.session, principal=viewer.principal, active=page, **context)


def error_page(
    request: Request, *, session: ConsoleSession, principal: Principal | None, title: str, message: str
) -> Response:
    """The 403 page saying `title` and why (`message`)."""
    return render(
        request, "error.html", session=session, principal=principal, status_code=403, title=title, message=message
    )


def redirect(request: Request, url: str, *, session: ConsoleSession) -> Response:
    """A 303 to `url` (after a form post), keeping the session."""
    return _save(RedirectResponse(url, status_code=303), request, session)


class ConsoleRoute(APIRoute):
    """Turns the console's sign-in, role and CSRF refusals into a redirect or an HTML error page."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def console_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequiredError:
                session = console_session(request)
                target = _path(request, "console-login")
                if request.method == "GET":
                    target += f"?next={request.url.path}"
                return redirect(request, target, session=session)
            except (PageForbiddenError, CsrfRejectedError) as exc:
                session = console_session(request)
                title = "Access denied" if isinstance(exc, PageForbiddenError) else "Form expired"
                return error_page(
                    request, session=session, principal=session_principal(session), title=title, message=str(exc)
                )

        return console_handler


router = APIRouter(tags=["console"], route_class=ConsoleRoute, include_in_schema=False)
router.mount("/static", StaticFiles(directory=HERE / "static"), name="console-static")


@router.get("/", name="console-home")
def home(request: Request, session: SessionDep) -> Response:
    """The first page the operator may open, or the sign-in page."""
    principal = session_principal(session)
    if principal is None:
        return redirect(request, _path(request, "console-login"), session=session)
    pages = service.pages_for(principal)
    if not pages:
        return error_page(
            request,
            session=session,
            principal=principal,
            title="No console pages",
            message=f"{principal.id} holds no role that opens a console page; ask an admin for one.",
        )
    return redirect(request, _path(request, f"console-{pages[0]}"), session=session)


def _safe_next(request: Request, target: str | None) -> str:
    home_path = _path(request, "console-home")
    if target and target.startswith(home_path) and "//" not in target and "\\" not in target:
        return target
    return home_path


@router.get("/login", name="console-login")
def login_page(request: Request, session: SessionDep, next: str | None = None) -> Response:
    """The sign-in form."""
    return render(request, "login.html", session=session, next=_safe_next(request, next), error=None)


@router.post("/login", dependencies=[CsrfDep])
def login(
    request: Request, session: SessionDep, token: Annotated[str, Form()] = "", next: Annotated[str, Form()] = ""
) -> Response:
    """Sign in with an operator API token; a new session (and CSRF token) starts."""
    try:
        principal = identity.operator_for_token(token=token.strip())
    except UnknownOperatorError:
        return render(
            request,
            "login.html",
            session=session,
            status_code=401,
            next=_safe_next(request, next),
            error="That token matches no operator. Ask an admin for yours (`streamdesk operators add`).",
        )
    settings = get_console_settings()
    with db.request_connection() as conn:
        if session.session_id:
            sessions.end(conn, session_id=session.session_id)
        session_id = sessions.start(conn, operator_id=principal.id, max_age_s=settings.session_max_age_s)
    fresh = ConsoleSession(
        operator_id=principal.id,
        token_fingerprint=token_fingerprint(operators.token_digest(token.strip()), settings=settings),
        session_id=session_id,
    )
    fresh.flash("ok", f"Signed in as {principal.id} ({', '.join(principal.role_names)}).")
    request.state.console_session = fresh
    return redirect(request, _safe_next(request, next), session=fresh)


@router.post("/logout", name="console-logout", dependencies=[CsrfDep])
def logout(request: Request, session: SessionDep) -> Response:
    """Sign out: the sign-in ends server-side (copies of the cookie stop working) and an empty session starts."""
    if session.session_id:
        with db.request_connection() as conn:
            sessions.end(conn, session_id=session.session_id)
    fresh = ConsoleSession()
    fresh.flash("ok", "Signed out.")
    return redirect(request, _path(request, "console-login"), session=fresh)


ReviewViewer = Annotated[Viewer, Depends(page_viewer("review"))]
ApprovalsViewer = Annotated[Viewer, Depends(page_viewer("approvals"))]
AuditViewer = Annotated[Viewer, Depends(page_viewer("audit"))]
ModelsViewer = Annotated[Viewer, Depends(page_viewer("models"))]
IngestViewer = Annotated[Viewer, Depends(page_viewer("ingest"))]


@router.get("/review", name="console-review")
def review_page(request: Request, viewer: ReviewViewer) -> Response:
    """Drafts awaiting a verdict, with the ticket, citations and tool trace; the latest replies' deliveries."""
    with db.request_connection() as conn:
        drafts = service.review_queue(conn, tenant=viewer.principal.tenant)
        sent = delivery.list_deliveries(conn, tenant=viewer.principal.tenant, limit=20)
    return render_page(request, viewer, "review", drafts=drafts, deliveries=sent)


@router.post("/review/{answer_id}", name="console-review-decide", dependencies=[CsrfDep])
def review_decide(
    request: Request,
    answer_id: str,
    viewer: ReviewViewer,
    publisher: OptionalPublisherDep,
    verdict: Annotated[str, Form()] = "",
    edited_text: Annotated[str | None, Form()] = None,
) -> Response:
    """Accept, edit or reject a draft: feedback stored and published, an audit record written."""
    kind = VERDICT_KINDS.get(verdict)
    if kind is not None:
        decision = service.authorize_action(viewer.principal, kind)
        if not decision.allowed:
            raise PageForbiddenError(decision.reason)
    try:
        if kind is None:
            raise InvalidReviewError(f"verdict {verdict!r} is unknown; use accept, edit or reject")
        with db.request_connection() as conn:
            service.record_review(
                conn,
                answer_id=answer_id,
                kind=kind,
                operator=viewer.principal,
                edited_text=edited_text,
                publisher=publisher,
            )
        viewer.session.flash("ok", f"Draft {answer_id[:8]} {kind}; feedback recorded and audited.")
    except (ConsoleError, FeedbackError) as exc:
        viewer.session.flash("error", str(exc))
    return redirect(request, _path(request, "console-review"), session=viewer.session)


@router.get("/approvals", name="console-approvals")
def approvals_page(request: Request, viewer: ApprovalsViewer) -> Response:
    """Pending actions of the operator's tenant, and the latest decided ones."""
    with db.request_connection() as conn:
        pending = approvals.list_actions(conn, status="pending", tenant=viewer.principal.tenant)
        decided = approvals.list_actions(conn, status=None, tenant=viewer.principal.tenant, limit=200)
    decided = sorted(
        (a for a in decided if a.status != "pending"), key=lambda a: a.decided_at or a.created_at, reverse=True
    )[:20]
    may_decide = service.may_act(viewer.principal, "approve")
    return render_page(request, viewer, "approvals", pending=pending, decided=decided, may_decide=may_decide)


@router.post("/approvals/{action_id}/{decision}", name="console-approvals-decide", dependencies=[CsrfDep])
def approvals_decide(
    request: Request,
    action_id: str,
    decision: str,
    viewer: ApprovalsViewer,
    note: Annotated[str | None, Form()] = None,
) -> Response:
    """Approve or reject a pending action (supervisor or admin of its tenant, not its proposer)."""
    if decision not in ("approve", "reject"):
        viewer.session.flash("error", f"decision {decision!r} is unknown; use approve or reject")
        return redirect(request, _path(request, "console-approvals"), session=viewer.session)
    verdict = service.authorize_action(viewer.principal, decision)
    if not verdict.allowed:
        raise PageForbiddenError(verdict.reason)
    decide = approvals.approve if decision == "approve" else approvals.reject
    try:
        with db.request_connection() as conn:
            action = decide(conn, action_id=action_id, approver=viewer.principal, note=(note or "").strip() or None)
    except NotAnApproverError as exc:
        raise PageForbiddenError(str(exc)) from None
    except ApprovalError as exc:
        viewer.session.flash("error", str(exc))
    else:
        viewer.session.flash("ok", f"{action.tool_name} on {action.ticket_id} {action.status}.")
    return redirect(request, _path(request, "console-approvals"), session=viewer.session)


@router.get("/audit", name="console-audit")
def audit_page(request: Request, viewer: AuditViewer, ticket: str | None = None) -> Response:
    """Chain verification, a ticket's trail (`?ticket=`), and the latest records."""
    tenant = viewer.principal.tenant
    with db.request_connection() as conn:
        report = audit.verify(conn) if service.may_act(viewer.principal, "verify") else None
        trail = audit.trail(conn, ticket_id=ticket.strip(), tenant=tenant) if ticket and ticket.strip() else None
        recent = audit.recent(conn, tenant=tenant)
    return render_page(
        request, viewer, "audit", report=report, ticket=(ticket or "").strip(), trail=trail, recent=recent
    )


@router.get("/models", name="console-models")
def models_page(request: Request, viewer: ModelsViewer) -> Response:
    """Adapter versions with status, metrics, gate, plots and lineage; the retrain history."""
    with db.request_connection() as conn:
        versions = registry.list_versions(conn)
        runs = trigger.retrain_runs(conn) if service.may_act(viewer.principal, "retrains") else None
        lineage = service.adapter_lineage(conn, versions=[v.version for v in versions], tenant=viewer.principal.tenant)
    curves = {v.version for v in versions if service.curves_path(v) is not None}
    return render_page(request, viewer, "models", versions=versions, runs=runs, curves=curves, lineage=lineage)


def _adapter_picture(version: str, *, picture: Callable[[AdapterVersion], Response | None], missing: str) -> Response:
    """Adapter `version`'s picture as `picture` makes it; 404 saying `missing` without the adapter or the picture."""
    try:
        with db.request_connection() as conn:
            adapter = registry.get(conn, version=version)
    except AdapterVersionNotFoundError:
        return HTMLResponse(missing, status_code=404)
    response = picture(adapter)
    return HTMLResponse(missing, status_code=404) if response is None else response


def _curves_file(adapter: AdapterVersion) -> Response | None:
    path = service.curves_path(adapter)
    return None if path is None else FileResponse(path, media_type="image/png")


def _evaluation_chart(adapter: AdapterVersion) -> Response | None:
    png = service.evaluation_png(adapter)
    return None if png is None else Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.get("/models/{version}/curves.png", name="console-models-curves", response_model=None)
def model_curves(version: str, viewer: ModelsViewer) -> Response:
    """The training curves the trainer saved with adapter `version`."""
    return _adapter_picture(version, picture=_curves_file, missing="no training curves for this adapter")


@router.get("/models/{version}/evaluation.png", name="console-models-evaluation", response_model=None)
def model_evaluation(version: str, viewer: ModelsViewer) -> Response:
    """The eval gate's scores of adapter `version` against the adapter it was gated against."""
    return _adapter_picture(version, picture=_evaluation_chart, missing="no evaluation report for this adapter")


@router.get("/ingest", name="console-ingest")
def ingest_page(request: Request, viewer: IngestViewer) -> Response:
    """Consumer lag, store counts and dead letters with their reasons."""
    settings = getattr(request.app.state, "settings", None) or get_settings()
    with db.request_connection() as conn:
        health = service.ingest_health(
            conn,
            bootstrap_servers=settings.kafka.bootstrap_servers,
            with_dead_letters=service.may_act(viewer.principal, "dead_letters"),
        )
    return render_page(
        request, viewer, "ingest", health=health, dead_letters_shown=service.may_act(viewer.principal, "dead_letters")
    )
