"""The browser's cookies: the session (a JWT) and the login form's pre-session nonce."""

from starlette.requests import Request
from starlette.responses import Response

from app.config import Settings, get_settings
from app.security.deps import Principal, PrincipalClaims
from app.security.sessions import principal_from_session_token
from app.uow.request import WORK_SCOPE_KEY

SESSION_COOKIE = "riskdesk_session"
# In production the name carries the __Host- prefix: browsers then accept the cookie only
# when it is Secure, Path=/ and has no Domain, so no subdomain or plain-http page can plant
# or overwrite a session. Plain http on localhost cannot set a Secure cookie, so development
# and tests keep the bare name.
HOST_SESSION_COOKIE = "__Host-" + SESSION_COOKIE
LOGIN_COOKIE = "riskdesk_login"
LOGIN_PATH = "/login"
# A login form left open longer than this gets a "reload and try again" page.
LOGIN_NONCE_SECONDS = 12 * 60 * 60
_PRINCIPAL_KEY = "browser_principal"


def session_cookie_name(settings: Settings) -> str:
    """The session cookie's name: `__Host-riskdesk_session` in production, `riskdesk_session` elsewhere."""
    return HOST_SESSION_COOKIE if settings.is_production else SESSION_COOKIE


def set_session_cookie(response: Response, token: str, *, settings: Settings) -> None:
    """HttpOnly so scripts never see it; Lax so other sites cannot POST with it; Secure (and __Host-) in production."""
    response.set_cookie(
        session_cookie_name(settings), token, max_age=settings.browser_session_minutes * 60, path="/",
        httponly=True, samesite="lax", secure=settings.is_production,
    )


def clear_session_cookie(response: Response, *, settings: Settings) -> None:
    response.delete_cookie(session_cookie_name(settings), path="/", httponly=True, samesite="lax",
                           secure=settings.is_production)


def set_login_cookie(response: Response, nonce: str, *, settings: Settings) -> None:
    response.set_cookie(
        LOGIN_COOKIE, nonce, max_age=LOGIN_NONCE_SECONDS, path=LOGIN_PATH,
        httponly=True, samesite="strict", secure=settings.is_production,
    )


def clear_login_cookie(response: Response, *, settings: Settings) -> None:
    response.delete_cookie(LOGIN_COOKIE, path=LOGIN_PATH, httponly=True, samesite="strict",
                           secure=settings.is_production)


def session_principal(request: Request) -> PrincipalClaims | None:
    """The session cookie's claims: signature and expiry checked, the database not yet.

    Kept on the request so the auth dependency and the CSRF check share one object.
    """
    state = request.scope.setdefault("state", {})
    if _PRINCIPAL_KEY not in state:
        settings = get_settings()
        token = request.cookies.get(session_cookie_name(settings))
        state[_PRINCIPAL_KEY] = principal_from_session_token(token, settings)
    return state[_PRINCIPAL_KEY]


def verified_principal(request: Request) -> Principal | None:
    """The session's principal once the screen's unit of work has verified it, else None."""
    work = request.scope.get(WORK_SCOPE_KEY)
    return work.principal if work is not None else None
