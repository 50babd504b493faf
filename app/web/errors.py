"""Errors on screens: a readable page, an HTMX fragment, or a trip to the login page.

ScreenRoute sends every exception of a screen request here; API routes keep the JSON
handlers of app/errors.py. Nothing from an exception but its domain message is shown.
"""

import inspect
import logging
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from app.config import get_settings

# is_unavailable: the API's own rule for "database down" (503 rather than 500), shared on purpose.
from app.errors import DomainError, Unauthorized, is_unavailable
from app.security.deps import ASSERT_PRINCIPAL, Principal
from app.uow.routing import NotShownAfterCommit
from app.web.messages import error_sentences
from app.web.session import LOGIN_PATH, clear_session_cookie, session_cookie_name, session_principal, verified_principal
from app.web.templating import is_htmx, render

log = logging.getLogger("riskdesk.web")

TITLES = {
    400: "Bad request", 403: "Not allowed", 404: "Not found", 405: "Not allowed", 409: "Conflict",
    413: "Too large", 422: "Please check your input", 429: "Too many attempts", 500: "Something went wrong",
    503: "Temporarily unavailable",
}


def redirect(request: Request, url: str) -> Response:
    """Go to `url`: 303 for a plain request, HX-Redirect for HTMX (a 303 would be swapped in)."""
    if is_htmx(request):
        return Response(status_code=200, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def safe_return_path(value: str | None) -> str | None:
    """`value` if it is a same-site absolute path (never //host or a scheme), else None."""
    if not value or len(value) > 2000 or not value.startswith("/") or value.startswith("//"):
        return None
    if "\\" in value or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.path.startswith((LOGIN_PATH, "/logout")):
        return None
    return value


def _return_path(request: Request) -> str | None:
    """Where to come back to after signing in: this page, or the page that made the request."""
    if request.method == "GET" and not is_htmx(request):
        query = f"?{request.url.query}" if request.url.query else ""
        return safe_return_path(request.url.path + query)
    page = request.headers.get("hx-current-url") or request.headers.get("referer")
    if not page:
        return None
    parts = urlsplit(page)
    if parts.netloc.lower() != (request.headers.get("host") or "").lower():
        return None
    return safe_return_path(parts.path + (f"?{parts.query}" if parts.query else ""))


def login_redirect(request: Request) -> Response:
    """No valid session: to the login page, remembering where the user was."""
    back = _return_path(request)
    response = redirect(request, LOGIN_PATH + (f"?next={quote(back, safe='/')}" if back else ""))
    if is_htmx(request):
        response.status_code = 401  # htmx follows HX-Redirect whatever the status
    settings = get_settings()
    if session_cookie_name(settings) in request.cookies:
        clear_session_cookie(response, settings=settings)
    return response


def _describe(request: Request, exc: Exception) -> tuple[int, str, list[str], dict[str, str] | None]:
    """Status, message, detail lines and headers for an exception."""
    if isinstance(exc, DomainError):
        message, details = _detail_text(exc.detail)
        headers = {k: v for k, v in (exc.headers or {}).items() if k.lower() != "www-authenticate"}
        return exc.status_code, message, details, headers or None
    if isinstance(exc, RequestValidationError):
        errors = list(exc.errors())
        if errors and all(tuple(e.get("loc", ()))[:1] == ("path",) for e in errors):
            return 404, "There is no page at this address.", [], None  # /cases/abc: no such page
        return 422, "Some values are missing or invalid.", error_sentences(errors), None
    if isinstance(exc, StarletteHTTPException) and exc.status_code < 500:
        message, details = _detail_text(exc.detail)
        return exc.status_code, message, details, None
    if is_unavailable(exc):
        log.warning("database unavailable on a screen: %s", exc.__class__.__name__)
        return 503, "The database is unavailable. Try again in a moment.", [], {"Retry-After": "1"}
    log.exception("unhandled error on a screen", exc_info=exc)
    request_id = request.scope.get("state", {}).get("request_id")
    details = [f"Request id: {request_id}"] if request_id else []
    return 500, "An unexpected error occurred. It has been logged.", details, None


def _detail_text(detail: Any) -> tuple[str, list[str]]:
    if isinstance(detail, str):
        return detail, []
    generic = "The request could not be completed."
    if isinstance(detail, list):
        if all(isinstance(item, dict) and "type" in item for item in detail):
            return generic, error_sentences(detail)
        return generic, [str(item.get("msg", item)) if isinstance(item, dict) else str(item) for item in detail]
    return generic, [str(detail)] if detail else []


def _signed_in(request: Request) -> Principal | None:
    """Who the top bar shows: the verified principal, or (when the request failed before the
    unit of work checked the session) the session checked now against the users table."""
    verified = verified_principal(request)
    if verified is not None:
        return verified
    try:
        claims = session_principal(request)
        if claims is None:
            return None
        from app.db import database  # the error path only; screens get their session from the route

        with database.session() as session:
            arguments = (claims.user_id, claims.role, claims.token_version, claims.jti, claims.claimed_username)
            username = session.connection().exec_driver_sql(ASSERT_PRINCIPAL, arguments).scalar_one()
            session.rollback()
        return Principal(user_id=claims.user_id, role=claims.role, token_version=claims.token_version,
                         username=username, jti=claims.jti, expires_at=claims.expires_at)
    except Exception:  # an ended session or an unreachable database: the page shows no one signed in
        return None


def render_error(request: Request, status: int, message: str, details: list[str] | None = None,
                 headers: dict[str, str] | None = None) -> Response:
    """The error page, or for HTMX the `_error.html` fragment (409/422 are swapped in place)."""
    context = {"status": status, "title": TITLES.get(status, "Error"), "message": message, "details": details or []}
    htmx = is_htmx(request)
    principal = None if htmx else _signed_in(request)
    if not htmx and status == 403 and principal is not None and principal.role == "agent":
        return render(request, "agent.html", {"title": "Agent accounts use the API"}, status_code=403,
                      principal=principal)
    template = "_error.html" if htmx else "error.html"
    return render(request, template, context, status_code=status, headers=headers, principal=principal)


def screen_error(request: Request, exc: Exception) -> Response:
    """The response for an exception raised while serving a screen."""
    if isinstance(exc, Unauthorized):
        return login_redirect(request)
    if isinstance(exc, NotShownAfterCommit):
        # The action was saved; an error page would say otherwise. Reload the page the user
        # is on, which shows the saved state.
        log.error("page after a committed action failed to render", exc_info=exc.__cause__)
        return redirect(request, _return_path(request) or "/")
    status, message, details, headers = _describe(request, exc)
    return render_error(request, status, message, details, headers)


def install_not_found_page(app: FastAPI) -> None:
    """Browsers (Accept: text/html) get a page for unknown paths; API clients keep JSON."""
    json_handler = app.exception_handlers[StarletteHTTPException]

    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if (exc.status_code == 404 and request.method in ("GET", "HEAD")
                and "text/html" in request.headers.get("accept", "")):
            return render_error(request, 404, "There is no page at this address.")
        response = json_handler(request, exc)
        return await response if inspect.isawaitable(response) else response

    # Starlette types every handler as taking any Exception; this one is registered for HTTPException only.
    app.add_exception_handler(StarletteHTTPException, http_error)  # type: ignore[arg-type]
