"""CSRF enforcement for screens, run by ScreenRoute before any state-changing endpoint.

Three checks, any one of which refuses the request: a cross-site Origin (or
Sec-Fetch-Site), no valid session (for any form but login: sign in again), and a
missing or wrong token. HTMX sends the token as a header (hx-headers on <body>), plain
forms as a hidden field; the login form's token is bound to its pre-session cookie.
"""

from urllib.parse import urlsplit

from starlette.requests import Request

from app.config import get_settings
from app.errors import Forbidden, Unauthorized
from app.security import csrf
from app.security.deps import Principal, PrincipalClaims
from app.security.sessions import session_key
from app.web.session import LOGIN_COOKIE, session_principal

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
HEADER = "x-csrf-token"
FIELD = "csrf_token"
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


class CsrfRejected(Forbidden):
    def __init__(self, detail: str = "This form is out of date or was not sent from Riskdesk. "
                                     "Reload the page and try again.") -> None:
        super().__init__(detail)


def token_for_request(request: Request, principal: Principal | PrincipalClaims | None = None) -> str:
    """The token a page rendered for this request must send back ("" without a session)."""
    principal = principal or session_principal(request)
    if principal is None or principal.jti is None:
        return ""
    return csrf.token_for(principal.jti, key=session_key(get_settings()))


def login_form_token(nonce: str) -> str:
    binding = csrf.login_binding(nonce)
    return csrf.token_for(binding, key=session_key(get_settings())) if binding is not None else ""


async def enforce(request: Request, *, login_form: bool = False) -> None:
    """Raise CsrfRejected (403) or Unauthorized unless this state change is the user's own."""
    _reject_cross_site(request)
    if login_form:
        binding = csrf.login_binding(request.cookies.get(LOGIN_COOKIE))
    else:
        principal = session_principal(request)
        if principal is None:
            # An expired or missing session is not an attack: send the user to sign in.
            raise Unauthorized("Your session has ended")
        binding = principal.jti
    if not csrf.is_valid(await _submitted_token(request), binding, key=session_key(get_settings())):
        raise CsrfRejected()


def _reject_cross_site(request: Request) -> None:
    if request.headers.get("sec-fetch-site") == "cross-site":
        raise CsrfRejected("Cross-site request refused.")
    origin = request.headers.get("origin")
    if origin is None:
        return
    # Host only, not scheme: behind a TLS-terminating proxy the app sees http.
    host = (request.headers.get("host") or "").lower()
    if origin == "null" or urlsplit(origin).netloc.lower() != host:
        raise CsrfRejected("Cross-site request refused.")


async def _submitted_token(request: Request) -> str | None:
    header = request.headers.get(HEADER)
    if header:
        return header
    if request.headers.get("content-type", "").startswith(_FORM_TYPES):
        # Parsed on this Request, which FastAPI's handler reuses, so the body is read once.
        value = (await request.form()).get(FIELD)
        return value if isinstance(value, str) else None
    return None
